#include "collectives/tuning.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "collectives/collectives.h"
#include "collectives/halving_doubling.h"
#include "core/status.h"

namespace braid {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

constexpr int kRoundTrips = 5;
constexpr int kBurst = 16;
constexpr size_t kLargeBytes = 256 * 1024;
constexpr int kLargeTrips = 2;

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
                       "write \"latency_us 15\", \"overhead_us 5\" or \"bandwidth_gbytes 1.25\" "
                       "lines (docs/tuning.md)");
    };
    if (words.size() != 2 || !absl::SimpleAtod(words[1], &value) || !(value > 0)) {
      return bad(absl::StrCat("\"", line, "\" is not \"key positive-number\""));
    }
    if (words[0] == "latency_us") link.latency_s = value * 1e-6;
    else if (words[0] == "overhead_us") link.overhead_s = value * 1e-6;
    else if (words[0] == "bandwidth_gbytes") link.per_byte_s = 1.0 / (value * 1e9);
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
  double measured[3] = {0, 0, 0};
  const int peer = ctx.rank ^ 1;
  if (peer < ctx.nranks) {
    const bool first = ctx.rank % 2 == 0;
    std::vector<std::byte> buffer(kLargeBytes);
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
    double small = 1e9, large = 1e9;
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
    for (int i = 0; i < kLargeTrips; ++i) {
      auto t0 = Clock::now();
      BRAID_RETURN_IF_ERROR(bounce(kLargeBytes));
      large = std::min(large, Seconds(Clock::now() - t0) / 2);
    }
    measured[0] = small;
    measured[1] = std::max(0.0, burst_time / kBurst);
    measured[2] = std::max(0.0, (large - small) / static_cast<double>(kLargeBytes));
  }
  // Agree: the worst pair's numbers, identical on every rank.
  double agreed[3];
  BRAID_RETURN_IF_ERROR(
      RecursiveDoublingAllReduce(ctx, measured, agreed, 3, DataType::kFloat64, RedOp::kMax));
  LinkModel link;
  link.overhead_s = std::clamp(agreed[1], 0.2e-6, agreed[0]);
  link.latency_s = std::max(0.2e-6, agreed[0] - link.overhead_s);
  link.per_byte_s = std::max(agreed[2], 1.0 / 100e9);
  return link;
}

std::string DescribeLinkModel(const LinkModel& link) {
  return absl::StrFormat("latency %.2f us, overhead %.2f us, bandwidth %.3f GB/s",
                         link.latency_s * 1e6, link.overhead_s * 1e6,
                         1.0 / link.per_byte_s / 1e9);
}

}  // namespace braid
