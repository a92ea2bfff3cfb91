// Runs a test body on N real ranks: forked processes that build a communicator through the
// public C API (unique id from the parent, sockets between the children) and report back.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "braid/braid.h"

namespace braid::testing {

// Returns "" on success or a description of what went wrong on this rank.
using RankBody = std::function<std::string(int rank, int nranks, braidComm_t comm)>;

// Fault injection: once every rank has created its communicator, wait `delay_ms`, then send
// `signal` (SIGKILL, SIGSTOP) to rank `victim`. The victim's exit is not a failure; once every
// other rank finished, it is killed (SIGKILL) and reaped, so no process is left behind.
struct FaultPlan {
  int victim = -1;  // -1: no fault.
  int signal = 0;
  int delay_ms = 0;
};

// What a rank can learn about the injected fault (shared memory with the parent).
struct FaultState {
  std::atomic<int> ready{0};            // ranks whose communicator exists.
  std::atomic<long long> fault_ns{0};   // steady_clock time of the signal, 0 before it.
  std::atomic<int> victim{-1};
};
// In a rank process: the shared fault state of this run (nullptr without a FaultPlan).
FaultState* CurrentFault();

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
// The same, injecting `fault` (see FaultPlan).
std::string RunRanksWithFault(int nranks, const RankBody& body, const RankOptions& options,
                              const FaultPlan& fault);

// Pids of the live processes whose parent is `parent` (from /proc).
std::vector<int> ChildPids(int parent);
std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options,
                     const PerRankOptions& per_rank);

// Shorthand for gtest: `EXPECT_EQ(RunRanks(...), "")` prints the per-rank reports on failure.
std::string ResultText(braidResult_t result);

}  // namespace braid::testing
