// Runs one collective with one algorithm on the simulated fabric: with real data, checked
// exactly against a sequential reference and for bit-identical results on every rank, or
// timing-only at any size (the schedule runs on a proportionally scaled-down buffer).
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "collectives/algorithms.h"
#include "core/datatype.h"
#include "sim/fabric.h"

namespace braid::sim {

struct Scenario {
  Collective collective = Collective::kAllReduce;
  Algorithm algorithm = Algorithm::kRing;  // kAuto: whatever the selector picks.
  int nranks = 2;
  size_t count = 1;  // elements per rank (AllGather: sent; ReduceScatter: received).
  DataType type = DataType::kFloat32;
  RedOp op = RedOp::kSum;
  int root = 0;
  bool inplace = false;
  // Random floats instead of exact values: checks only that every rank's bits agree.
  bool random_values = false;
  size_t chunk_bytes = 0;  // 0: the selector's chunk for this size.
};

struct Outcome {
  absl::Status status;  // a wrong or non-identical result is an error naming rank and element.
  double seconds = 0;
  uint64_t messages = 0;
};

Outcome RunChecked(const Scenario& scenario, const SimOptions& options);

// Predicted time of `bytes` (nccl-tests size) with the schedule of `algorithm`; payload-free
// in effect: the buffer is scaled down to at most ~256 KiB per rank and shared by all ranks.
Outcome RunTiming(Collective collective, Algorithm algorithm, int nranks, size_t bytes,
                  const SimOptions& options, size_t chunk_bytes = 0);

}  // namespace braid::sim
