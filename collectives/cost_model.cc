// The cost model: each algorithm's critical path in messages and bytes, under a link model
// where a message occupies its sender for overhead + bytes * per_byte and arrives latency
// later. Pipelined algorithms also pick the chunk that minimizes their time.
#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collectives/algorithms.h"
#include "collectives/ring_pipeline.h"
#include "core/status.h"

namespace braid {
namespace {

struct Names {
  Algorithm algorithm;
  absl::string_view name;
};
constexpr Names kAlgorithmNames[] = {
    {Algorithm::kAuto, "auto"},
    {Algorithm::kRing, "ring"},
    {Algorithm::kRecursiveDoubling, "recursive_doubling"},
    {Algorithm::kRabenseifner, "rabenseifner"},
    {Algorithm::kTree, "tree"},
    {Algorithm::kBruck, "bruck"},
    {Algorithm::kRecursiveHalving, "recursive_halving"},
    {Algorithm::kChain, "chain"},
};
constexpr absl::string_view kCollectiveNames[] = {"allreduce", "allgather", "reducescatter",
                                                  "broadcast"};

std::optional<Algorithm> AlgorithmFromName(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "rd") lower = "recursive_doubling";
  if (lower == "halving_doubling" || lower == "hd") lower = "rabenseifner";
  if (lower == "rh") lower = "recursive_halving";
  for (const Names& n : kAlgorithmNames) {
    if (n.name == lower) return n.algorithm;
  }
  return std::nullopt;
}

double Log2Ceil(int n) { return n <= 1 ? 0 : std::ceil(std::log2(static_cast<double>(n))); }
double Log2FloorD(int n) { return n <= 1 ? 0 : std::floor(std::log2(static_cast<double>(n))); }

// A pipeline `hops` messages deep that pushes `chunks` chunks, each rank sending `fanout`
// messages per chunk: the first chunk pays the full path, the others the busiest sender.
double Pipeline(const LinkModel& l, double hops, double chunks, double fanout, double chunk) {
  double message = l.overhead_s + chunk * l.per_byte_s;
  return hops * (l.latency_s + message) + (chunks - 1) * fanout * message;
}

// `steps` ring steps of `chunks` chunks each: the latency of the first chunk's trip around,
// or every rank's sending time, whichever is longer.
double Ring(const LinkModel& l, double steps, double chunks, double chunk) {
  double message = l.overhead_s + chunk * l.per_byte_s;
  return std::max(Pipeline(l, steps, chunks, 1, chunk), steps * chunks * message);
}

// One unpipelined exchange of `bytes` each way.
double Step(const LinkModel& l, double bytes) {
  return l.latency_s + l.overhead_s + bytes * l.per_byte_s;
}

// The largest pipeline chunk the model may pick: a chunk and the receive window behind it stay
// cache-resident, so the reduction fused with each receive runs at cache speed, not memory
// speed (which the link model cannot see). Larger chunks only save per-message overheads that
// are already small at this size.
constexpr size_t kMaxModelChunk = kDefaultChunkBytes;

double Evaluate(Collective c, Algorithm a, int n, double bytes, const LinkModel& l,
                double chunk) {
  const double p = std::exp2(Log2FloorD(n));
  const bool folded = p < n;
  const double lg = Log2FloorD(n);
  auto chunks_of = [&](double total) { return std::max(1.0, std::ceil(total / chunk)); };
  switch (c) {
    case Collective::kAllReduce:
      switch (a) {
        case Algorithm::kRing: {
          double block = bytes / n, m = chunks_of(block);
          // Each reduce-scatter step reduces a chunk before forwarding it: the pipeline's fill.
          return Ring(l, 2.0 * (n - 1), m, std::min(block, chunk)) +
                 (n - 1) * std::min(block, chunk) * l.reduce_per_byte_s;
        }
        case Algorithm::kRecursiveDoubling:
          return (lg + (folded ? 2 : 0)) * Step(l, bytes) +
                 (lg + (folded ? 1 : 0)) * bytes * l.reduce_per_byte_s;
        case Algorithm::kRabenseifner: {
          double t = 2 * (lg * (l.latency_s + l.overhead_s) + bytes * (p - 1) / p * l.per_byte_s);
          // The halving steps reduce (p-1)/p of the buffer between transfers, unoverlapped.
          t += (bytes * (p - 1) / p + (folded ? bytes : 0)) * l.reduce_per_byte_s;
          return t + (folded ? 2 * Step(l, bytes) : 0);
        }
        case Algorithm::kTree: {
          double half = bytes / 2, m = chunks_of(half), c2 = std::min(half, chunk);
          // Up and down the deeper tree. An interior rank sends 4 chunk messages per chunk
          // index (up in both trees, down to two children), but the two trees' streams
          // interfere: the simulator shows ~6 message times per chunk, and so does the model.
          return Pipeline(l, 2 * Log2Ceil(n + 1) - 2, m, 6, c2) + l.latency_s +
                 (Log2Ceil(n + 1) - 1) * c2 * l.reduce_per_byte_s;
        }
        default: break;
      }
      break;
    case Collective::kAllGather:
    case Collective::kReduceScatter: {
      double block = bytes / n;
      switch (a) {
        case Algorithm::kRing: {
          return Ring(l, n - 1.0, chunks_of(block), std::min(block, chunk));
        }
        case Algorithm::kBruck:
          return Log2Ceil(n) * (l.latency_s + l.overhead_s) + (n - 1) * block * l.per_byte_s;
        case Algorithm::kRecursiveDoubling:
        case Algorithm::kRecursiveHalving: {
          double t = lg * (l.latency_s + l.overhead_s) + block * (p - 1) * (folded ? 2 : 1) *
                                                             l.per_byte_s;
          if (c == Collective::kReduceScatter) t += block * (p - 1) * l.reduce_per_byte_s;
          return t + (folded ? Step(l, block) + Step(l, bytes) : 0);
        }
        default: break;
      }
      break;
    }
    case Collective::kBroadcast: {
      double m = chunks_of(bytes), c2 = std::min(bytes, chunk);
      if (a == Algorithm::kChain) return Pipeline(l, n - 1, m, 1, c2);
      if (a == Algorithm::kTree) return Pipeline(l, Log2Ceil(n + 1) - 1, m, 2, c2);
      break;
    }
  }
  return INFINITY;
}

bool Pipelined(Collective c, Algorithm a) {
  return a == Algorithm::kRing || a == Algorithm::kTree || a == Algorithm::kChain ||
         (c == Collective::kBroadcast);
}

}  // namespace

absl::string_view CollectiveName(Collective c) { return kCollectiveNames[static_cast<int>(c)]; }

absl::string_view AlgorithmName(Algorithm a) {
  for (const Names& n : kAlgorithmNames) {
    if (n.algorithm == a) return n.name;
  }
  return "?";
}

std::vector<Algorithm> AlgorithmsFor(Collective c) {
  switch (c) {
    case Collective::kAllReduce:
      return {Algorithm::kRing, Algorithm::kRecursiveDoubling, Algorithm::kRabenseifner,
              Algorithm::kTree};
    case Collective::kAllGather:
      return {Algorithm::kRing, Algorithm::kBruck, Algorithm::kRecursiveDoubling};
    case Collective::kReduceScatter:
      return {Algorithm::kRing, Algorithm::kRecursiveHalving};
    case Collective::kBroadcast:
      return {Algorithm::kChain, Algorithm::kTree};
  }
  return {};
}

absl::StatusOr<AlgorithmOverrides> ParseAlgorithmOverrides(absl::string_view text) {
  AlgorithmOverrides overrides;
  auto bad = [&](absl::string_view why) {
    return MakeError(absl::StatusCode::kInvalidArgument, "BRAID_ALGO",
                     absl::StrCat("\"", text, "\": ", why),
                     "use one name (ring, tree, ...) or collective:name pairs such as "
                     "allreduce:tree,allgather:bruck (docs/tuning.md)");
  };
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    if (parts.size() > 2) return bad(absl::StrCat("\"", item, "\" has more than one ':'"));
    auto algorithm = AlgorithmFromName(parts.back());
    if (!algorithm) return bad(absl::StrCat("unknown algorithm \"", parts.back(), "\""));
    bool applied = false;
    for (int c = 0; c < kNumCollectives; ++c) {
      auto collective = static_cast<Collective>(c);
      if (parts.size() == 2 && absl::AsciiStrToLower(parts[0]) != CollectiveName(collective)) {
        continue;
      }
      auto list = AlgorithmsFor(collective);
      bool known = *algorithm == Algorithm::kAuto ||
                   std::find(list.begin(), list.end(), *algorithm) != list.end();
      if (parts.size() == 2 && !known) {
        return bad(absl::StrCat(CollectiveName(collective), " has no algorithm \"",
                                parts.back(), "\""));
      }
      if (known) {
        overrides.forced[static_cast<size_t>(c)] = *algorithm;
        applied = true;
      }
    }
    if (!applied) return bad(absl::StrCat("\"", item, "\" matches no collective"));
  }
  return overrides;
}

Choice Predict(Collective c, Algorithm a, int nranks, size_t bytes, const LinkModel& link,
               size_t chunk) {
  Choice best{a, chunk, INFINITY};
  if (nranks <= 1) return {a, chunk, 0};
  const double size = static_cast<double>(bytes);
  if (chunk || !Pipelined(c, a)) {
    best.predicted_s = Evaluate(c, a, nranks, size, link,
                                static_cast<double>(chunk ? chunk : kDefaultChunkBytes));
    return best;
  }
  for (size_t candidate = 8 * 1024; candidate <= kMaxModelChunk; candidate *= 2) {
    double t = Evaluate(c, a, nranks, size, link, static_cast<double>(candidate));
    if (t < best.predicted_s * 0.999) best = {a, candidate, t};
  }
  return best;
}

Choice Select(Collective c, int nranks, size_t bytes, const Tuning& tuning) {
  Algorithm forced = tuning.overrides.For(c);
  if (forced != Algorithm::kAuto) {
    Choice choice = Predict(c, forced, nranks, bytes, tuning.link, tuning.chunk_override);
    return choice;
  }
  // Another algorithm must beat the ring by kRingMargin to displace it: over TCP the streaming
  // ring gains what the model cannot see (each link busy all along, no per-step restart of idle
  // connections, nothing to resynchronize between steps). On 8 hosts shaped to 1 Gbit/s the
  // model had Rabenseifner 0.6% ahead of the ring at 64 MiB; measured, it was 20-30% slower.
  constexpr double kRingMargin = 0.9;
  Choice best{Algorithm::kAuto, 0, INFINITY};
  for (Algorithm a : AlgorithmsFor(c)) {
    Choice choice = Predict(c, a, nranks, bytes, tuning.link, tuning.chunk_override);
    double margin = best.algorithm == Algorithm::kRing ? kRingMargin : 0.999;
    if (choice.predicted_s < best.predicted_s * margin) best = choice;
  }
  return best;
}

}  // namespace braid
