// Every collective, on real forked ranks over the selected transport, checked exactly against
// the reference: odd and even rank counts, sizes 0, 1, primes, unaligned and large, every
// datatype and operation, in-place and out-of-place.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/multiproc/rank_harness.h"
#include "tests/multiproc/reference.h"

namespace braid::testing {
namespace {

// 0, 1, primes, a count just over the small-message threshold and a multi-chunk one.
const size_t kSmallCounts[] = {0, 1, 2, 7, 13, 1021};
const size_t kLargeCounts[] = {65537, 1048583};

std::string Where(const char* what, braidDataType_t t, braidRedOp_t op, size_t count, bool inplace) {
  return std::string(what) + " type " + std::to_string(t) + " op " + std::to_string(op) +
         " count " + std::to_string(count) + (inplace ? " in-place" : " out-of-place");
}

// AllReduce of `count` elements; returns "" or what differed.
std::string CheckAllReduce(int rank, int n, braidComm_t comm, braidDataType_t t, braidRedOp_t op,
                           size_t count, bool inplace) {
  size_t size = TypeSize(t);
  std::vector<std::byte> input = MakeInput(t, op, rank, n, count);
  // One extra element before the buffer makes the data pointer unaligned for wide types.
  std::vector<std::byte> storage((count + 1) * size + 1);
  std::byte* out = storage.data() + 1;
  const void* in = input.data();
  if (inplace) {
    if (count) std::memcpy(out, input.data(), input.size());
    in = out;
  }
  braidResult_t rc = braidAllReduce(in, out, count, t, op, comm);
  if (rc != braidSuccess) return Where("AllReduce", t, op, count, inplace) + ": " + ResultText(rc);
  std::vector<std::byte> want(count * size);
  for (size_t i = 0; i < count; ++i) StoreExpected(want.data(), i, t, op, n);
  long long bad = FirstMismatch(out, want.data(), count, t);
  if (bad >= 0) return Where("AllReduce", t, op, count, inplace) + ": wrong at element " + std::to_string(bad);
  return "";
}

class Collectives : public ::testing::TestWithParam<int> {};

TEST_P(Collectives, AllReduceEveryTypeOpAndSize) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (braidDataType_t t : kTypes)
                for (braidRedOp_t op : kOps)
                  for (size_t count : kSmallCounts)
                    for (bool inplace : {false, true})
                      if (auto e = CheckAllReduce(rank, n, comm, t, op, count, inplace); !e.empty()) return e;
              return "";
            }),
            "");
}

TEST_P(Collectives, AllReduceLargeBuffers) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (braidDataType_t t : {braidInt8, braidFloat16, braidBfloat16, braidFloat32, braidFloat64})
                for (braidRedOp_t op : {braidSum, braidAvg, braidMax})
                  for (size_t count : kLargeCounts)
                    for (bool inplace : {false, true})
                      if (auto e = CheckAllReduce(rank, n, comm, t, op, count, inplace); !e.empty()) return e;
              // 64 MiB of float32 through the ring pipeline.
              return CheckAllReduce(rank, n, comm, braidFloat32, braidSum, 16u << 20, false);
            }),
            "");
}

TEST_P(Collectives, AllGather) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (braidDataType_t t : kTypes)
                for (size_t count : {size_t{0}, size_t{1}, size_t{13}, size_t{1021}, size_t{300007}})
                  for (bool inplace : {false, true}) {
                    size_t size = TypeSize(t);
                    std::vector<std::byte> out(count * size * static_cast<size_t>(n));
                    std::vector<std::byte> want(out.size());
                    for (int r = 0; r < n; ++r)
                      for (size_t i = 0; i < count; ++i)
                        Store(want.data(), static_cast<size_t>(r) * count + i, t, InputValue(braidSum, r, n, i));
                    std::vector<std::byte> input = MakeInput(t, braidSum, rank, n, count);
                    std::byte* slot = out.data() + static_cast<size_t>(rank) * count * size;
                    if (inplace && count) std::memcpy(slot, input.data(), input.size());
                    braidResult_t rc = braidAllGather(inplace ? slot : input.data(), out.data(), count, t, comm);
                    if (rc != braidSuccess) return Where("AllGather", t, braidSum, count, inplace) + ": " + ResultText(rc);
                    long long bad = FirstMismatch(out.data(), want.data(), count * static_cast<size_t>(n), t);
                    if (bad >= 0) return Where("AllGather", t, braidSum, count, inplace) + ": wrong at " + std::to_string(bad);
                  }
              return "";
            }),
            "");
}

TEST_P(Collectives, ReduceScatter) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (braidDataType_t t : kTypes)
                for (braidRedOp_t op : kOps)
                  for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{1021}, size_t{200003}})
                    for (bool inplace : {false, true}) {
                      if (count > 1021 && op != braidSum) continue;
                      size_t size = TypeSize(t), total = count * static_cast<size_t>(n);
                      std::vector<std::byte> input = MakeInput(t, op, rank, n, total);
                      std::vector<std::byte> separate(count * size);
                      std::byte* out = inplace ? input.data() + static_cast<size_t>(rank) * count * size : separate.data();
                      braidResult_t rc = braidReduceScatter(input.data(), out, count, t, op, comm);
                      if (rc != braidSuccess) return Where("ReduceScatter", t, op, count, inplace) + ": " + ResultText(rc);
                      std::vector<std::byte> want(count * size);
                      for (size_t i = 0; i < count; ++i)  // this rank's block starts at rank*count.
                        StoreExpected(want.data(), i, t, op, n, static_cast<size_t>(rank) * count + i);
                      long long bad = FirstMismatch(out, want.data(), count, t);
                      if (bad >= 0) return Where("ReduceScatter", t, op, count, inplace) + ": wrong at " + std::to_string(bad);
                    }
              return "";
            }),
            "");
}

TEST_P(Collectives, BroadcastFromEveryRoot) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (int root = 0; root < n; ++root)
                for (braidDataType_t t : {braidInt8, braidFloat16, braidFloat64})
                  for (size_t count : {size_t{0}, size_t{1}, size_t{13}, size_t{1000003}})
                    for (bool inplace : {false, true}) {
                      std::vector<std::byte> input = MakeInput(t, braidSum, root, n, count);
                      std::vector<std::byte> out(input.size());
                      if (inplace && rank == root) out = input;
                      const void* send = rank == root ? (inplace ? out.data() : input.data()) : nullptr;
                      braidResult_t rc = braidBroadcast(send, out.data(), count, t, root, comm);
                      if (rc != braidSuccess) return Where("Broadcast", t, braidSum, count, inplace) + ": " + ResultText(rc);
                      long long bad = FirstMismatch(out.data(), input.data(), count, t);
                      if (bad >= 0) return Where("Broadcast", t, braidSum, count, inplace) + " root " + std::to_string(root) + ": wrong at " + std::to_string(bad);
                    }
              return "";
            }),
            "");
}

TEST_P(Collectives, BarrierAndNonblockingForms) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (int i = 0; i < 5; ++i)
                if (braidResult_t rc = braidBarrier(comm); rc != braidSuccess) return "Barrier: " + ResultText(rc);
              // Several nonblocking AllReduces in flight, completed with test and wait.
              const size_t count = 100003;
              std::vector<std::vector<std::byte>> inputs, outputs;
              std::vector<braidRequest_t> requests(4);
              for (int k = 0; k < 4; ++k) {
                inputs.push_back(MakeInput(braidFloat32, braidSum, rank, n, count));
                outputs.emplace_back(count * 4);
              }
              for (int k = 0; k < 4; ++k) {
                braidResult_t rc = braidIallReduce(inputs[k].data(), outputs[k].data(), count, braidFloat32, braidSum, comm, &requests[k]);
                if (rc != braidSuccess) return "IallReduce: " + ResultText(rc);
              }
              int done = 0;
              while (!done) {
                if (braidResult_t rc = braidTest(requests[0], &done); rc != braidSuccess) return "Test: " + ResultText(rc);
              }
              for (int k = 1; k < 4; ++k)
                if (braidResult_t rc = braidWait(requests[k]); rc != braidSuccess) return "Wait: " + ResultText(rc);
              std::vector<std::byte> want(count * 4);
              for (size_t i = 0; i < count; ++i) StoreExpected(want.data(), i, braidFloat32, braidSum, n);
              for (int k = 0; k < 4; ++k)
                if (FirstMismatch(outputs[k].data(), want.data(), count, braidFloat32) >= 0) return "IallReduce result wrong";
              braidRequest_t barrier;
              if (braidIbarrier(comm, &barrier) != braidSuccess || braidWait(barrier) != braidSuccess) return "Ibarrier: " + std::string(braidGetLastError());
              // A blocking call after nonblocking ones runs after them, in issue order.
              std::vector<std::byte> gathered(static_cast<size_t>(n) * 8);
              braidRequest_t gather;
              std::vector<std::byte> mine = MakeInput(braidInt64, braidSum, rank, n, 1);
              if (braidIallGather(mine.data(), gathered.data(), 1, braidInt64, comm, &gather) != braidSuccess) return "IallGather failed";
              if (braidBarrier(comm) != braidSuccess) return "Barrier after IallGather failed";
              if (braidWait(gather) != braidSuccess) return "IallGather wait failed";
              return "";
            }),
            "");
}

// BRAID_TEST_RANK_COUNTS="2,3,4" replaces the rank counts (the rxe guest runs those on verbs).
std::vector<int> RankCounts() {
  std::vector<int> counts;
  const char* env = std::getenv("BRAID_TEST_RANK_COUNTS");
  for (const char* p = env; p != nullptr && *p != '\0';) {
    char* end = nullptr;
    long n = std::strtol(p, &end, 10);
    if (end == p) break;
    if (n > 0) counts.push_back(static_cast<int>(n));
    p = *end == ',' ? end + 1 : end;
  }
  if (counts.empty()) counts = {1, 2, 3, 5, 8};
  return counts;
}

INSTANTIATE_TEST_SUITE_P(Ranks, Collectives, ::testing::ValuesIn(RankCounts()),
                         [](const auto& info) { return std::to_string(info.param) + "ranks"; });

}  // namespace
}  // namespace braid::testing
