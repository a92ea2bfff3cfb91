// The measurements, through the public C API only: a pair of hosts measures over its own
// two-rank communicator (so a failing pair never breaks another), and the whole job measures
// AllReduce over the world communicator.
#pragma once

#include <braid/braid.h>

#include <cstddef>
#include <vector>

#include "tools/health/model.h"

namespace braid::health {

struct PairOptions {
  size_t bytes = 4u << 20;  // per bandwidth message.
  int iters = 2;            // bandwidth messages per sample (after one warm-up).
  int samples = 3;          // samples per direction; the fastest counts.
  int latency_iters = 40;   // round trips (after a few warm-ups).
};

struct PairOutcome {
  PairRecord record;
  double peer_clock_offset_ms = 0;  // the other host's wall clock minus ours.
  bool clock_known = false;
};

// Runs on both leaders of pair (a, b); `side` is 0 on host a, 1 on host b. Data is checked:
// a corrupted byte fails the pair.
PairOutcome MeasurePair(braidComm_t pair, int side, int a, int b, const PairOptions& options);

// Every rank calls it; results are meaningful on rank 0 (times are rank 0's).
std::vector<AllReduceRecord> MeasureAllReduce(braidComm_t world, int nranks,
                                              const std::vector<size_t>& sizes, int iters);

}  // namespace braid::health
