// Ranks that call different collectives at the same point get an error, never a hang or wrong
// data: by default through the check byte every message tag carries; with BRAID_DEBUG=CHECK
// through an agreement round whose error describes both calls.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Rank `odd_rank` calls `odd`, every other rank `normal`; every rank must fail within 15 s
// (BRAID_TIMEOUT is 120 s), in that call or the next, with an error containing `needles`.
std::string ExpectMismatch(int rank, braidComm_t comm, int odd_rank,
                           const std::function<braidResult_t(braidComm_t)>& normal,
                           const std::function<braidResult_t(braidComm_t)>& odd,
                           const std::vector<std::string>& needles) {
  auto start = Clock::now();
  braidResult_t rc = rank == odd_rank ? odd(comm) : normal(comm);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (rc == braidSuccess) {
    // A rank whose part of the call could complete (e.g. a broadcast root that only sends) has
    // correct data by its own view; it must learn of the mismatch on its next call at the latest.
    rc = braidBarrier(comm);
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (rc == braidSuccess) return "a mismatched collective and the barrier after it succeeded";
  }
  std::string text = braidGetLastError();
  if (rc == braidTimeout || seconds > 15) return "took " + std::to_string(seconds) + " s: " + text;
  for (const auto& needle : needles) {
    if (text.find(needle) == std::string::npos) return "error lacks \"" + needle + "\": " + text;
  }
  return "";
}

RankOptions Options(bool check) {
  RankOptions options;
  // Detection without CHECK is per connection: a receive fails when the same connection carries
  // a message of the same collective with another signature. Ring and chain make every pair of
  // mismatched calls share connections; other algorithms may leave the odd rank waiting on a
  // peer that sent it nothing (then CHECK mode, below, or the timeout reports it).
  options.env = {{"BRAID_TIMEOUT", "120"}, {"BRAID_ALGO", "allreduce:ring,broadcast:chain"}};
  if (check) options.env["BRAID_DEBUG"] = "WARN,CHECK";
  return options;
}

auto AllReduceWith(braidRedOp_t op, size_t count = 1000) {
  return [op, count](braidComm_t comm) {
    std::vector<float> x(count, 1.0f);
    return braidAllReduce(x.data(), x.data(), count, braidFloat32, op, comm);
  };
}

auto BroadcastFrom(int root, size_t count = 1000) {
  return [root, count](braidComm_t comm) {
    std::vector<float> x(count, 1.0f);
    return braidBroadcast(x.data(), x.data(), count, braidFloat32, root, comm);
  };
}

TEST(Mismatch, DifferentReductionOpsWithEqualSizesFail) {
  for (int n : {2, 3}) {
    EXPECT_EQ(RunRanks(n, [](int rank, int, braidComm_t comm) {
                // Equal sizes, so only the signature can tell: sum on rank 1, max elsewhere.
                return ExpectMismatch(rank, comm, 1, AllReduceWith(braidMax), AllReduceWith(braidSum),
                                      {"mismatch"});
              }, Options(false)),
              "")
        << n << " ranks";
  }
}

TEST(Mismatch, AllReduceAgainstBroadcastFails) {
  EXPECT_EQ(RunRanks(3, [](int rank, int, braidComm_t comm) {
              return ExpectMismatch(rank, comm, 2, AllReduceWith(braidSum), BroadcastFrom(0),
                                    {"collective"});
            }, Options(false)),
            "");
}

TEST(Mismatch, DifferentBroadcastRootsFail) {
  EXPECT_EQ(RunRanks(3, [](int rank, int, braidComm_t comm) {
              return ExpectMismatch(rank, comm, 0, BroadcastFrom(1), BroadcastFrom(2), {"collective"});
            }, Options(false)),
            "");
}

TEST(Mismatch, CheckModeDescribesBothCalls) {
  EXPECT_EQ(RunRanks(3, [](int rank, int, braidComm_t comm) {
              // A matching call first: the agreement round must not disturb correct programs.
              std::vector<int32_t> v(17, rank + 1);
              if (braidAllReduce(v.data(), v.data(), v.size(), braidInt32, braidSum, comm) != braidSuccess) {
                return "matching AllReduce under CHECK: " + ResultText(braidInvalidUsage);
              }
              for (int32_t x : v) if (x != 6) return std::string("wrong sum under CHECK");
              std::vector<std::string> needles = {"BRAID_DEBUG=CHECK", "op sum", "op max",
                                                  "1000 elements"};
              if (rank == 1) needles = {"BRAID_DEBUG=CHECK", "op max", "op sum"};
              return ExpectMismatch(rank, comm, 1, AllReduceWith(braidSum), AllReduceWith(braidMax),
                                    needles);
            }, Options(true)),
            "");
}

TEST(Mismatch, CheckModeCatchesDifferentCounts) {
  EXPECT_EQ(RunRanks(2, [](int rank, int, braidComm_t comm) {
              return ExpectMismatch(rank, comm, 0, AllReduceWith(braidSum, 1000),
                                    AllReduceWith(braidSum, 999), {"999 elements", "1000 elements"});
            }, Options(true)),
            "");
}

}  // namespace
}  // namespace braid::testing
