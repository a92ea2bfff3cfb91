#include "collectives/tuning.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "collectives/collectives.h"
#include "collectives/halving_doubling.h"
#include "core/log.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

constexpr int kRoundTrips = 5;
constexpr int kBurst = 16;
constexpr int kStepTrips = 7;
// Larger than the caches: collectives reduce buffers that come from memory.
constexpr size_t kReduceBytes = 2 * 1024 * 1024;
// Bandwidth: one-way transfers of doubling size until one lasts kBulkSeconds (or reaches
// kMaxBulkBytes), the one before at least half that; the per-byte time is the slope between
// the last two. A single message the size of a switch buffer or a token bucket's burst (tc
// tbf, cloud NICs) passes at line rate, which once made the selector believe a 50 MB/s link ran
// at 280 MB/s; the slope between two transfers that both exceed every buffer measures the
// sustained rate.
constexpr size_t kFirstBulkBytes = 256 * 1024;
constexpr size_t kMaxBulkBytes = 16 * 1024 * 1024;
constexpr double kBulkSeconds = 0.01;

// Who measures with whom: pairs of consecutive ranks in the list this returns. With several
// hosts, only each host's lowest rank (its leader) takes part, paired with a leader of another
// host: the network is what the selector must know (ranks sharing a host use the hierarchical
// AllReduce, whose network part runs among the leaders), and one pair per host does not split
// a host's egress between pairs as all ranks at once would.
std::vector<int> MeasuringRanks(const CollectiveContext& ctx) {
  std::vector<int> ranks;
  std::unordered_set<std::string_view> seen;  // absl::string_view has no std::hash here.
  for (int r = 0; r < ctx.nranks; ++r) {
    // Both arms string_view: with "" the conditional would copy the name into a temporary.
    std::string_view host =
        ctx.hosts ? std::string_view((*ctx.hosts)[static_cast<size_t>(r)]) : std::string_view();
    if (seen.insert(host).second) ranks.push_back(r);
  }
  if (ranks.size() < 2) {  // one host: every rank measures, with its neighbour.
    ranks.resize(static_cast<size_t>(ctx.nranks));
    for (int r = 0; r < ctx.nranks; ++r) ranks[static_cast<size_t>(r)] = r;
  }
  return ranks;
}

}  // namespace

absl::StatusOr<LinkModel> ParseTuningFile(absl::string_view text, absl::string_view path) {
  LinkModel link;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    double value = 0;
    auto bad = [&](absl::string_view why) {
      return MakeError(absl::StatusCode::kInvalidArgument, "tuning file",
                       absl::StrCat(path, ":", line_number, ": ", why),
                       "write \"latency_us 15\", \"overhead_us 5\", \"bandwidth_gbytes 1.25\" "
                       "or \"reduce_gbytes 4\" lines (docs/tuning.md)");
    };
    if (words.size() != 2 || !absl::SimpleAtod(words[1], &value) || !(value > 0)) {
      return bad(absl::StrCat("\"", line, "\" is not \"key positive-number\""));
    }
    if (words[0] == "latency_us") link.latency_s = value * 1e-6;
    else if (words[0] == "overhead_us") link.overhead_s = value * 1e-6;
    else if (words[0] == "bandwidth_gbytes") link.per_byte_s = 1.0 / (value * 1e9);
    else if (words[0] == "reduce_gbytes") link.reduce_per_byte_s = 1.0 / (value * 1e9);
    else return bad(absl::StrCat("unknown key \"", words[0], "\""));
  }
  return link;
}

absl::StatusOr<LinkModel> LoadTuningFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return MakeError(absl::StatusCode::kNotFound, "tuning file",
                     absl::StrCat("cannot read \"", path, "\""),
                     "fix BRAID_TUNING_FILE or unset it to measure at creation");
  }
  std::stringstream text;
  text << file.rdbuf();
  return ParseTuningFile(text.str(), path);
}

absl::StatusOr<LinkModel> MeasureLinkModel(const CollectiveContext& ctx) {
  // measured[0..2]: one-way small-message time, per-message overhead, per-byte time.
  double measured[5] = {0, 0, 0, 0, 0};
  const std::vector<int> ranks = MeasuringRanks(ctx);
  const auto me = std::find(ranks.begin(), ranks.end(), ctx.rank);
  const size_t index = static_cast<size_t>(me - ranks.begin());
  const size_t peer_index = index ^ 1;
  if (me != ranks.end() && peer_index < ranks.size()) {
    const int peer = ranks[peer_index];
    const bool first = index % 2 == 0;
    std::vector<std::byte> buffer(kFirstBulkBytes);
    uint32_t step = 100;  // clear of the agreement's recursive-doubling steps.
    auto bounce = [&](size_t bytes) -> absl::Status {  // one round trip.
      uint32_t s = step++;
      if (first) {
        BRAID_RETURN_IF_ERROR(SendTo(ctx, peer, buffer.data(), bytes, s));
        return RecvFrom(ctx, peer, buffer.data(), bytes, s + 1000);
      }
      BRAID_RETURN_IF_ERROR(RecvFrom(ctx, peer, buffer.data(), bytes, s));
      return SendTo(ctx, peer, buffer.data(), bytes, s + 1000);
    };
    double small = 1e9;
    BRAID_RETURN_IF_ERROR(bounce(8));  // warm-up.
    for (int i = 0; i < kRoundTrips; ++i) {
      auto start = Clock::now();
      BRAID_RETURN_IF_ERROR(bounce(8));
      small = std::min(small, Seconds(Clock::now() - start) / 2);
    }
    // A burst of small messages then a reply: the burst costs one latency plus its overheads.
    auto start = Clock::now();
    uint32_t burst = step++;
    std::vector<RequestPtr> requests;
    for (int i = 0; i < kBurst; ++i) {
      auto tag = ctx.tag(burst, static_cast<uint32_t>(i));
      BRAID_ASSIGN_OR_RETURN(RequestPtr r, first ? ctx.peer(peer).isend(buffer.data(), 8, tag)
                                                 : ctx.peer(peer).irecv(buffer.data() + 8 * i, 8,
                                                                        tag));
      requests.push_back(std::move(r));
    }
    BRAID_RETURN_IF_ERROR(WaitAllWithPeer(ctx, requests, peer));
    if (first) BRAID_RETURN_IF_ERROR(RecvFrom(ctx, peer, buffer.data(), 8, step));
    else BRAID_RETURN_IF_ERROR(SendTo(ctx, peer, buffer.data(), 8, step));
    ++step;
    double burst_time = Seconds(Clock::now() - start) - 2 * small;
    // Doubling one-way transfers (acknowledged by 8 bytes); the first rank of the pair decides
    // when to stop and tells the other, so both run the same sequence.
    double previous = 0, slope = 0;
    for (size_t bytes = kFirstBulkBytes;; bytes *= 2) {
      if (buffer.size() < bytes) buffer.resize(bytes);
      uint32_t s = step++;
      double one_way = 0;
      uint64_t more = 0;
      if (first) {
        auto t0 = Clock::now();
        BRAID_RETURN_IF_ERROR(SendTo(ctx, peer, buffer.data(), bytes, s));
        BRAID_RETURN_IF_ERROR(RecvFrom(ctx, peer, &more, sizeof(more), s + 1000));
        one_way = Seconds(Clock::now() - t0) - small;
        if (bytes > kFirstBulkBytes) {
          slope = std::max(0.0, (one_way - previous) / static_cast<double>(bytes / 2));
        }
        // Both transfers of the slope must be long: the shorter one may still have ridden a
        // burst allowance, which would make the slope (not just an offset) wrong.
        more = bytes > kFirstBulkBytes && (previous >= kBulkSeconds / 2 || bytes >= kMaxBulkBytes)
                   ? 0 : 1;
        BRAID_RETURN_IF_ERROR(SendTo(ctx, peer, &more, sizeof(more), s + 2000));
      } else {
        BRAID_RETURN_IF_ERROR(RecvFrom(ctx, peer, buffer.data(), bytes, s));
        BRAID_RETURN_IF_ERROR(SendTo(ctx, peer, &more, sizeof(more), s + 1000));
        BRAID_RETURN_IF_ERROR(RecvFrom(ctx, peer, &more, sizeof(more), s + 2000));
      }
      if (first) {
        BRAID_LOG(kTrace, "link measurement with rank ", peer, ": ", bytes, " B one way in ",
                  one_way * 1e6, " us");
      }
      previous = one_way;
      if (!more) break;
    }
    measured[0] = small;
    measured[1] = std::max(0.0, burst_time / kBurst);
    measured[2] = slope;  // only the first rank of a pair has it; the agreement takes the max.
  }
  // measured[3]: one step of a small collective with every rank at once (median of a few
  // 8-byte recursive-doubling AllReduces over its step count). A quiet ping-pong between two
  // ranks (measured[0]) missed what a collective's step costs when all ranks progress at once
  // on a busy host: 68 us against 155 us on the shaped namespace cluster, which moved the
  // recursive-doubling/Rabenseifner crossover to half the size where it really is.
  {
    // Pairwise exchanges rank ^ 2^k among the largest power of two of ranks, each trip its own
    // steps (300 + ...: clear of the ping-pongs above), so no two messages share a tag.
    const int pow2 = 1 << static_cast<int>(std::floor(std::log2(ctx.nranks)));
    const int levels = static_cast<int>(std::log2(pow2));
    std::vector<double> times;
    uint64_t mine = 0, theirs = 0;
    for (int i = 0; i <= kStepTrips && ctx.rank < pow2 && levels > 0; ++i) {  // 0: warm-up.
      auto t0 = Clock::now();
      for (int k = 0; k < levels; ++k) {
        BRAID_RETURN_IF_ERROR(Exchange(ctx, ctx.rank ^ (1 << k), &mine, sizeof(mine), &theirs,
                                       sizeof(theirs), static_cast<uint32_t>(300 + i * 32 + k)));
      }
      if (i > 0) times.push_back(Seconds(Clock::now() - t0) / levels);
    }
    if (!times.empty()) {
      std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
      measured[3] = times[times.size() / 2];
    }
  }
  // measured[4]: this host's time to reduce a byte (float32 sum, the common case), median of 3.
  {
    std::vector<float> a(kReduceBytes / sizeof(float), 1.0f), b(a.size(), 2.0f);
    std::vector<double> times;
    for (int i = 0; i < 3; ++i) {
      auto t0 = Clock::now();
      Reduce(a.data(), a.data(), b.data(), a.size(), DataType::kFloat32, RedOp::kSum);
      times.push_back(Seconds(Clock::now() - t0));
    }
    std::sort(times.begin(), times.end());
    measured[4] = times[1] / static_cast<double>(kReduceBytes);
  }
  // Agree: the worst numbers, identical on every rank.
  double agreed[5];
  BRAID_RETURN_IF_ERROR(
      RecursiveDoublingAllReduce(ctx, measured, agreed, 5, DataType::kFloat64, RedOp::kMax));
  LinkModel link;
  const double step = std::max(agreed[0], agreed[3]);
  link.overhead_s = std::clamp(agreed[1], 0.2e-6, step);
  link.latency_s = std::max(0.2e-6, step - link.overhead_s);
  link.per_byte_s = std::max(agreed[2], 1.0 / 100e9);
  link.reduce_per_byte_s = agreed[4];
  return link;
}

std::string DescribeLinkModel(const LinkModel& link) {
  return absl::StrFormat("latency %.2f us, overhead %.2f us, bandwidth %.3f GB/s, reduce %.2f GB/s",
                         link.latency_s * 1e6, link.overhead_s * 1e6, 1.0 / link.per_byte_s / 1e9,
                         link.reduce_per_byte_s > 0 ? 1.0 / link.reduce_per_byte_s / 1e9 : 0.0);
}

}  // namespace braid
