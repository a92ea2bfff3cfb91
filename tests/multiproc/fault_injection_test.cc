// Fault injection: ranks loop over random collectives (checked exactly) while the harness kills
// (SIGKILL) or stops (SIGSTOP) a random rank at a random moment. Every survivor must get an
// error naming that rank within BRAID_HEARTBEAT_TIMEOUT + 2 s, no survivor may hang, no
// process may be left behind; then the survivors shrink the communicator and finish the loop
// on the smaller one with correct results.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <random>
#include <string>

#include "tests/multiproc/random_ops.h"
#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

constexpr double kHeartbeatSeconds = 4;
constexpr double kGraceSeconds = 2;

long long NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One rank's life in a trial. The victim never gets past the loop (it is killed or stopped).
std::string Survive(uint64_t seed, int rank, int n, braidComm_t comm) {
  std::mt19937_64 rng(seed);
  RandomOpLimits limits;
  FaultState* fault = CurrentFault();
  std::string error;
  braidResult_t rc = braidSuccess;
  for (int op = 0; op < 100000; ++op) {
    std::string e = RunRandomCollective(rng, rank, n, comm, limits, &rc);
    if (e.empty()) continue;
    if (rc == braidSuccess) return "before the fault: " + e;  // wrong data: never acceptable.
    error = e;
    break;
  }
  if (error.empty()) return "100000 collectives and no error: the fault was not noticed";
  long long fault_ns = fault->fault_ns.load();
  int victim = fault->victim.load();
  if (fault_ns == 0) return "failed before any fault was injected: " + error;
  double seconds = static_cast<double>(NowNs() - fault_ns) / 1e9;
  std::fprintf(stderr, "rank %d noticed the fault of rank %d after %.2f s\n", rank, victim, seconds);
  std::string report;
  if (seconds > kHeartbeatSeconds + kGraceSeconds) {
    report += "noticed the fault after " + std::to_string(seconds) + " s; ";
  }
  std::string name = "rank " + std::to_string(victim) + " (host";
  if (error.find(name) == std::string::npos) report += "error does not name " + name + "): " + error + "; ";
  int failed[64], nfailed = 0;
  if (braidCommGetFailedRanks(comm, failed, 64, &nfailed) != braidSuccess) {
    report += "braidCommGetFailedRanks: " + ResultText(braidSuccess) + "; ";
  }
  // Recovery: shrink and run more collectives (a fresh sequence every survivor agrees on).
  braidComm_t smaller = nullptr;
  braidResult_t shrunk = braidCommShrink(comm, &smaller);
  if (shrunk != braidSuccess) return report + "braidCommShrink: " + ResultText(shrunk);
  int new_rank = -1, new_size = -1;
  braidCommUserRank(smaller, &new_rank);
  braidCommCount(smaller, &new_size);
  int want_rank = rank < victim ? rank : rank - 1;
  if (new_size != n - 1 || new_rank != want_rank) {
    report += "shrunk to rank " + std::to_string(new_rank) + " of " + std::to_string(new_size) +
              ", wanted " + std::to_string(want_rank) + " of " + std::to_string(n - 1) + "; ";
  } else {
    std::mt19937_64 after(seed ^ 0x5eed);
    for (int op = 0; op < 12; ++op) {
      if (std::string e = RunRandomCollective(after, new_rank, new_size, smaller, limits, &rc); !e.empty()) {
        report += "after shrinking: " + e;
        break;
      }
    }
  }
  braidCommDestroy(smaller);
  return report;
}

struct Case {
  int nranks;
  int signal;
  int trials;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << (c.signal == SIGKILL ? "SIGKILL" : "SIGSTOP") << " x" << c.trials << " on " << c.nranks
      << " ranks";
}

class FaultInjection : public ::testing::TestWithParam<Case> {};

// BRAID_TEST_FAULT_TRIALS caps the trials of every case: the runs on the other transport
// layouts repeat the same scenarios with fewer trials (CTest sets it for them).
int TrialCap(int trials) {
  const char* cap = std::getenv("BRAID_TEST_FAULT_TRIALS");
  return cap && std::atoi(cap) > 0 ? std::min(trials, std::atoi(cap)) : trials;
}

TEST_P(FaultInjection, SurvivorsNameTheVictimThenShrinkAndFinish) {
  Case c = GetParam();
  c.trials = TrialCap(c.trials);
  std::mt19937_64 rng(std::random_device{}());
  for (int trial = 0; trial < c.trials; ++trial) {
    uint64_t seed = rng();
    RankOptions options;
    options.timeout_seconds = 120;
    options.env = {{"BRAID_HEARTBEAT_TIMEOUT", std::to_string(kHeartbeatSeconds)},
                   {"BRAID_TIMEOUT", "60"}};
    FaultPlan fault{static_cast<int>(seed % static_cast<uint64_t>(c.nranks)), c.signal,
                    static_cast<int>((seed >> 8) % 800)};
    auto start = std::chrono::steady_clock::now();
    std::string result = RunRanksWithFault(c.nranks, [seed](int rank, int n, braidComm_t comm) {
      return Survive(seed, rank, n, comm);
    }, options, fault);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(result, "") << "trial " << trial << " seed " << seed << ": "
                          << strsignal(c.signal) << " rank " << fault.victim << " of "
                          << c.nranks << " after " << fault.delay_ms << " ms";
    EXPECT_EQ(ChildPids(getpid()).size(), 0u) << "trial " << trial << " left processes behind";
    if (!result.empty()) break;
    std::printf("trial %d: %s rank %d of %d after %d ms: ok in %.1f s\n", trial,
                strsignal(c.signal), fault.victim, c.nranks, fault.delay_ms,
                seconds);
    std::fflush(stdout);  // forked ranks must not inherit (and repeat) buffered output.
  }
}

// 50 SIGKILL trials and 12 SIGSTOP trials in all.
INSTANTIATE_TEST_SUITE_P(Ranks, FaultInjection,
                         ::testing::Values(Case{2, SIGKILL, 18}, Case{4, SIGKILL, 18},
                                           Case{8, SIGKILL, 14}, Case{2, SIGSTOP, 4},
                                           Case{4, SIGSTOP, 4}, Case{8, SIGSTOP, 4}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.signal == SIGKILL ? "kill" : "stop") +
                                  std::to_string(info.param.nranks) + "ranks";
                         });

}  // namespace
}  // namespace braid::testing
