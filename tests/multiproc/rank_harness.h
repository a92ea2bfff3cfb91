// Runs a test body on N real ranks: forked processes that build a communicator through the
// public C API (unique id from the parent, sockets between the children) and report back.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "braid/braid.h"

namespace braid::testing {

// Returns "" on success or a description of what went wrong on this rank.
using RankBody = std::function<std::string(int rank, int nranks, braidComm_t comm)>;

struct RankOptions {
  int timeout_seconds = 120;                 // the parent kills every rank after this.
  std::map<std::string, std::string> env;   // set in every child before init.
  bool destroy = true;                      // braidCommDestroy at the end of the body.
};

// Node-aware tests: more variables for one rank (e.g. its BRAID_HOSTNAME), and a directory
// where each rank's stderr goes (rank<N>.log) so a body can check what Braid logged.
struct PerRankOptions {
  std::function<std::map<std::string, std::string>(int rank)> env;
  std::string stderr_dir;
};

// "" if every rank succeeded; otherwise each failing rank's report, one per line.
std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options = {});
std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options,
                     const PerRankOptions& per_rank);

// Shorthand for gtest: `EXPECT_EQ(RunRanks(...), "")` prints the per-rank reports on failure.
std::string ResultText(braidResult_t result);

}  // namespace braid::testing
