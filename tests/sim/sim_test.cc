// Every algorithm's real schedule on the simulated fabric, from 2 to 4096 ranks (odd, prime and
// powers of two): results checked exactly against a sequential reference, bit-identical
// AllReduce results on every rank with random floats, deadlocks detected, and the simulated
// times checked against closed forms where the schedule is simple.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "collectives/algorithms.h"
#include "sim/scenario.h"

namespace braid::sim {
namespace {

constexpr DataType kTypes[] = {DataType::kInt8,    DataType::kUint8,   DataType::kInt32,
                               DataType::kUint32,  DataType::kInt64,   DataType::kUint64,
                               DataType::kFloat16, DataType::kBfloat16, DataType::kFloat32,
                               DataType::kFloat64};
constexpr RedOp kOps[] = {RedOp::kSum, RedOp::kProd, RedOp::kMax, RedOp::kMin, RedOp::kAvg};
constexpr Collective kCollectives[] = {Collective::kAllReduce, Collective::kAllGather,
                                       Collective::kReduceScatter, Collective::kBroadcast};

bool Reduces(Collective c) {
  return c == Collective::kAllReduce || c == Collective::kReduceScatter;
}

std::string Describe(const Scenario& s) {
  return std::string(CollectiveName(s.collective)) + " " + std::string(AlgorithmName(s.algorithm)) +
         " n=" + std::to_string(s.nranks) + " count=" + std::to_string(s.count) + " type " +
         std::string(DataTypeName(s.type)) + " op " + std::string(RedOpName(s.op)) +
         (s.inplace ? " in-place" : "") + " root " + std::to_string(s.root) + " chunk " +
         std::to_string(s.chunk_bytes);
}

// Every algorithm, datatype, op, in-place or not, sizes 0, 1, primes, on small rank counts,
// with a tiny chunk so pipelined schedules run many chunks.
class SmallRanks : public ::testing::TestWithParam<int> {};

TEST_P(SmallRanks, EveryAlgorithmTypeOpAndSize) {
  SimOptions options;
  for (Collective c : kCollectives)
    for (Algorithm a : AlgorithmsFor(c))
      for (DataType t : kTypes)
        for (RedOp op : kOps) {
          if (!Reduces(c) && op != RedOp::kSum) continue;
          for (size_t count : {0, 1, 7, 61, 1021})
            for (bool inplace : {false, true}) {
              // The many-chunk size only where a misplaced chunk shows: sums of two widths.
              bool wide = t == DataType::kInt8 || t == DataType::kFloat64;
              if (count > 61 && (!wide || op != RedOp::kSum || inplace)) continue;
              Scenario s{c, a, GetParam(), count, t, op, GetParam() / 2, inplace, false, 256};
              Outcome outcome = RunChecked(s, options);
              ASSERT_TRUE(outcome.status.ok()) << Describe(s) << ": " << outcome.status;
            }
        }
}

INSTANTIATE_TEST_SUITE_P(Sim, SmallRanks, ::testing::Values(2, 3, 4, 5, 7, 8, 16, 33),
                         [](const auto& info) { return std::to_string(info.param) + "ranks"; });

// Large rank counts: every algorithm on exact data in a narrow and a wide datatype.
class LargeRanks : public ::testing::TestWithParam<int> {};

TEST_P(LargeRanks, EveryAlgorithmExact) {
  const int n = GetParam();
  SimOptions options;
  for (Collective c : kCollectives)
    for (Algorithm a : AlgorithmsFor(c)) {
      // The ring's 2(n-1) steps move only non-empty blocks: a few hundred elements keep it fast.
      size_t count = c == Collective::kAllReduce ? 40 : 3;
      // Ring AllGather/ReduceScatter move every block through every rank: n^2 messages, 16M
      // at 4096 ranks. They are covered up to 128 ranks here and in SmallRanks.
      if (a == Algorithm::kRing && c != Collective::kAllReduce && n > 128) continue;
      for (DataType t : {DataType::kBfloat16, DataType::kInt32})
        for (RedOp op : {RedOp::kSum, RedOp::kMax}) {
          if (!Reduces(c) && op != RedOp::kSum) continue;
          Scenario s{c, a, n, count, t, op, n - 1, t == DataType::kInt32, false, 0};
          Outcome outcome = RunChecked(s, options);
          ASSERT_TRUE(outcome.status.ok()) << Describe(s) << ": " << outcome.status;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Sim, LargeRanks, ::testing::Values(127, 128, 1000, 4095, 4096),
                         [](const auto& info) { return std::to_string(info.param) + "ranks"; });

// Random floats: sums depend on order, so equal bits on every rank prove that each element is
// reduced once and copied, never reduced in different orders on different ranks.
TEST(Sim, AllReduceBitIdenticalOnEveryRank) {
  SimOptions options;
  for (int n : {3, 5, 12, 64, 100})
    for (Algorithm a : AlgorithmsFor(Collective::kAllReduce))
      for (DataType t : {DataType::kFloat32, DataType::kBfloat16, DataType::kFloat16}) {
        Scenario s{Collective::kAllReduce, a, n, 1999, t, RedOp::kSum, 0, false, true, 1024};
        Outcome outcome = RunChecked(s, options);
        ASSERT_TRUE(outcome.status.ok()) << Describe(s) << ": " << outcome.status;
      }
}

// The simulator itself: a receive nobody sends is reported as a deadlock, not a hang.
TEST(Sim, DetectsDeadlock) {
  SimResult result = Simulate(3, SimOptions{}, [](const CollectiveContext& ctx) -> absl::Status {
    if (ctx.rank != 1) return absl::OkStatus();
    char byte;
    auto request = ctx.peer(0).irecv(&byte, 1, ctx.tag(0, 0));
    if (!request.ok()) return request.status();
    return ctx.engine->Wait(*request, ctx.deadline, "test");
  });
  EXPECT_NE(result.status.message().find("deadlock"), std::string::npos) << result.status;
}

// Closed forms: recursive doubling on 2^k ranks is k exchanges; a 2-rank ring AllReduce is two
// steps of half the buffer each.
TEST(Sim, TimesMatchClosedForms) {
  SimOptions options;
  options.link = {10e-6, 1e-6, 1e-9};
  const size_t bytes = 4096;
  for (int k : {1, 3, 6}) {
    Outcome rd = RunTiming(Collective::kAllReduce, Algorithm::kRecursiveDoubling, 1 << k, bytes,
                           options);
    ASSERT_TRUE(rd.status.ok()) << rd.status;
    EXPECT_NEAR(rd.seconds, k * (10e-6 + 1e-6 + bytes * 1e-9), 1e-9) << k;
  }
  Outcome ring = RunTiming(Collective::kAllReduce, Algorithm::kRing, 2, bytes, options);
  ASSERT_TRUE(ring.status.ok()) << ring.status;
  EXPECT_NEAR(ring.seconds, 2 * (10e-6 + 1e-6 + bytes / 2 * 1e-9), 1e-9);
}

}  // namespace
}  // namespace braid::sim
