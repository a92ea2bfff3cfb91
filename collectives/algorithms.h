// The algorithm catalogue, the cost model that predicts each algorithm's time from a link model
// (latency, per-message overhead, bandwidth) and the selector built on it. Every rank evaluates
// the same pure functions on the same agreed inputs, so every rank picks the same algorithm.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace braid {

enum class Collective { kAllReduce = 0, kAllGather, kReduceScatter, kBroadcast };
inline constexpr int kNumCollectives = 4;

enum class Algorithm {
  kAuto = 0,
  kRing,               // AllReduce, AllGather, ReduceScatter
  kRecursiveDoubling,  // AllReduce, AllGather
  kRabenseifner,       // AllReduce (recursive halving-doubling)
  kTree,               // AllReduce (double binary tree), Broadcast (pipelined binary tree)
  kBruck,              // AllGather
  kRecursiveHalving,   // ReduceScatter
  kChain,              // Broadcast
};

absl::string_view CollectiveName(Collective c);  // "allreduce", "allgather", ...
absl::string_view AlgorithmName(Algorithm a);    // "ring", "recursive_doubling", ...
// The algorithms implemented for a collective, in a fixed order.
std::vector<Algorithm> AlgorithmsFor(Collective c);

// BRAID_ALGO: "tree" (every collective that has it), or "allreduce:tree,allgather:bruck".
struct AlgorithmOverrides {
  std::array<Algorithm, kNumCollectives> forced{};  // kAuto = let the selector choose.
  Algorithm For(Collective c) const { return forced[static_cast<size_t>(c)]; }
};
absl::StatusOr<AlgorithmOverrides> ParseAlgorithmOverrides(absl::string_view text);

// One transport's costs: a message of b bytes occupies its sender for overhead + b * per_byte
// and arrives latency later. Defaults describe 10 GbE TCP.
struct LinkModel {
  double latency_s = 15e-6;
  double overhead_s = 5e-6;
  double per_byte_s = 1.0 / 1.25e9;
  // Time to reduce one byte on this host's CPU. Algorithms that reduce a whole step's data
  // before sending on (recursive doubling, Rabenseifner) pay it in full; pipelined ones (ring,
  // tree) hide it behind the next chunk's transfer. 0 = free (the simulator's fabric).
  // Without it two ranks tie recursive doubling (reduces the whole buffer) with the ring
  // (half), and 64 MiB AllReduces over shm ran 1.5-3x slower with recursive doubling.
  double reduce_per_byte_s = 0;
};

struct Choice {
  Algorithm algorithm = Algorithm::kRing;
  size_t chunk_bytes = 0;  // pipeline chunk; 0 = not pipelined.
  double predicted_s = 0;
};

// Predicted time of one call moving `bytes` (the nccl-tests size: the whole buffer for
// AllReduce/Broadcast, the gathered/scattered total for AllGather/ReduceScatter). `chunk` 0
// lets the model pick the best pipeline chunk.
Choice Predict(Collective c, Algorithm a, int nranks, size_t bytes, const LinkModel& link,
               size_t chunk = 0);

// What the selector knows: the link model (measured or from a tuning file), BRAID_ALGO and
// BRAID_CHUNK_SIZE.
struct Tuning {
  LinkModel link;
  AlgorithmOverrides overrides;
  size_t chunk_override = 0;
  std::string source = "defaults";  // "measured", "file <path>" or "defaults".
  // The last choice logged per collective: BRAID_DEBUG=INFO logs a choice when it changes.
  // Written only by the communicator's collectives, which run one at a time.
  mutable std::array<std::pair<Algorithm, size_t>, kNumCollectives> last_logged{};
};

// The algorithm and chunk for one call: the forced one if BRAID_ALGO names one for this
// collective, else the cheapest by the cost model.
Choice Select(Collective c, int nranks, size_t bytes, const Tuning& tuning);

}  // namespace braid
