// The choreography of one health check across all ranks: world communicator, host discovery,
// pair rounds with per-round deadlines (a dead host costs its partners one round, never more),
// reports to host 0, then AllReduce over everyone. Everything ends within the time budget.
#pragma once

#include <string>
#include <vector>

#include "tools/health/measure.h"
#include "tools/health/model.h"

namespace braid::health {

struct RunOptions {
  std::string transport;  // empty: Braid's choice.
  double budget_seconds = 120;
  PairOptions pair;
  std::vector<size_t> allreduce_sizes{1u << 20, 16u << 20};
  int allreduce_iters = 5;
  Thresholds thresholds;
  std::string json_path, html_path;
  bool progress = true;
};

struct RunResult {
  bool is_reporter = false;  // rank 0, or every rank when the job could not even start.
  FabricMeasurements fabric;
};

RunResult RunHealthCheck(const RunOptions& options);

}  // namespace braid::health
