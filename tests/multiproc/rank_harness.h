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

// "" if every rank succeeded; otherwise each failing rank's report, one per line.
std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options = {});

// Shorthand for gtest: `EXPECT_EQ(RunRanks(...), "")` prints the per-rank reports on failure.
std::string ResultText(braidResult_t result);

}  // namespace braid::testing
