// Reduce (tree and chain, every root) and AllToAll / AllToAllv (pairwise exchange) on real
// forked ranks through the C API, checked exactly against the reference: every datatype and
// operation, sizes 0, 1, primes, unaligned and large, uneven and zero counts, in-place.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/multiproc/rank_harness.h"
#include "tests/multiproc/reference.h"

namespace braid::testing {
namespace {

std::string Where(const char* what, braidDataType_t t, long long op, size_t count, bool inplace,
                  int root) {
  return std::string(what) + " type " + std::to_string(t) + " op " + std::to_string(op) +
         " count " + std::to_string(count) + (inplace ? " in-place" : " out-of-place") +
         " root " + std::to_string(root);
}

// Reduce of `count` elements to `root`; returns "" or what differed. Non-roots pass a null
// recvbuff (out-of-place) or their send buffer (in-place): recvbuff is ignored there.
std::string CheckReduce(int rank, int n, braidComm_t comm, braidDataType_t t, braidRedOp_t op,
                        size_t count, bool inplace, int root) {
  size_t size = TypeSize(t);
  std::vector<std::byte> input = MakeInput(t, op, rank, n, count);
  // One extra byte in front makes the buffer unaligned for wide types.
  std::vector<std::byte> storage(count * size + 1, std::byte{0xA5});
  std::byte* out = storage.data() + 1;
  const void* in = input.data();
  void* recv = rank == root ? out : nullptr;
  if (inplace) {
    if (count) std::memcpy(out, input.data(), input.size());
    in = recv = out;
  }
  braidResult_t rc = braidReduce(in, recv, count, t, op, root, comm);
  std::string where = Where("Reduce", t, op, count, inplace, root);
  if (rc != braidSuccess) return where + ": " + ResultText(rc);
  if (rank != root) {  // the send buffer (in place: also recvbuff) must be left alone.
    if (inplace && FirstMismatch(out, input.data(), count, t) >= 0) return where + ": non-root buffer changed";
    return "";
  }
  std::vector<std::byte> want(count * size);
  for (size_t i = 0; i < count; ++i) StoreExpected(want.data(), i, t, op, n);
  long long bad = FirstMismatch(out, want.data(), count, t);
  if (bad >= 0) return where + ": wrong at element " + std::to_string(bad);
  return "";
}

// Element j of the block rank `from` sends to rank `to`: small, exact in every type.
double BlockValue(int from, int to, size_t j) {
  return static_cast<double>((static_cast<size_t>(from) * 31 + static_cast<size_t>(to) * 7 + j) % 97);
}

std::string CheckAllToAll(int rank, int n, braidComm_t comm, braidDataType_t t, size_t count,
                          bool inplace) {
  size_t size = TypeSize(t), total = count * static_cast<size_t>(n);
  std::vector<std::byte> send(total * size), storage(total * size + 1, std::byte{0xA5});
  std::byte* out = storage.data() + 1;
  for (int to = 0; to < n; ++to)
    for (size_t j = 0; j < count; ++j) Store(send.data(), static_cast<size_t>(to) * count + j, t, BlockValue(rank, to, j));
  if (inplace && total) std::memcpy(out, send.data(), send.size());
  braidResult_t rc = braidAllToAll(inplace ? out : send.data(), out, count, t, comm);
  std::string where = Where("AllToAll", t, -1, count, inplace, -1);
  if (rc != braidSuccess) return where + ": " + ResultText(rc);
  std::vector<std::byte> want(total * size);
  for (int from = 0; from < n; ++from)
    for (size_t j = 0; j < count; ++j) Store(want.data(), static_cast<size_t>(from) * count + j, t, BlockValue(from, rank, j));
  long long bad = FirstMismatch(out, want.data(), total, t);
  if (bad >= 0) return where + ": wrong at element " + std::to_string(bad);
  return "";
}

// Uneven AllToAllv: rank a sends Count(a, b) elements to rank b (zero for some pairs), blocks
// laid out in reverse peer order with one-element gaps that must stay untouched.
size_t VCount(int from, int to, size_t scale) {
  return static_cast<size_t>((from * 3 + to * 5) % 4) * scale + static_cast<size_t>((from + to) % 2);
}

struct VLayout {
  std::vector<size_t> counts, displs;
  size_t extent = 0;
};

VLayout MakeLayout(int n, const std::function<size_t(int)>& count_of) {
  VLayout layout{std::vector<size_t>(static_cast<size_t>(n)), std::vector<size_t>(static_cast<size_t>(n)), 1};
  for (int r = n - 1; r >= 0; --r) {
    layout.counts[static_cast<size_t>(r)] = count_of(r);
    layout.displs[static_cast<size_t>(r)] = layout.extent;
    layout.extent += count_of(r) + 1;  // a gap after every block.
  }
  return layout;
}

std::string CheckAllToAllv(int rank, int n, braidComm_t comm, braidDataType_t t, size_t scale,
                           bool inplace) {
  size_t size = TypeSize(t);
  VLayout s = MakeLayout(n, [&](int to) { return VCount(rank, to, scale); });
  VLayout r = MakeLayout(n, [&](int from) { return VCount(from, rank, scale); });
  // In place, one buffer holds the send layout on entry and the receive layout on return.
  size_t out_elems = std::max(s.extent, r.extent);
  std::vector<std::byte> send(s.extent * size, std::byte{0x5A}), out(out_elems * size, std::byte{0xA5});
  for (int to = 0; to < n; ++to)
    for (size_t j = 0; j < s.counts[static_cast<size_t>(to)]; ++j)
      Store(send.data(), s.displs[static_cast<size_t>(to)] + j, t, BlockValue(rank, to, j));
  if (inplace) std::memcpy(out.data(), send.data(), send.size());
  std::vector<std::byte> want = out;  // gaps keep whatever was there.
  for (int from = 0; from < n; ++from)
    for (size_t j = 0; j < r.counts[static_cast<size_t>(from)]; ++j)
      Store(want.data(), r.displs[static_cast<size_t>(from)] + j, t, BlockValue(from, rank, j));
  braidResult_t rc = braidAllToAllv(inplace ? out.data() : send.data(), s.counts.data(), s.displs.data(),
                                    out.data(), r.counts.data(), r.displs.data(), t, comm);
  std::string where = Where("AllToAllv", t, -1, scale, inplace, -1);
  if (rc != braidSuccess) return where + ": " + ResultText(rc);
  // Only the receive layout is defined in place; gaps outside it hold send data, compare blocks.
  size_t compare = inplace ? r.extent : out_elems;
  if (inplace) {
    for (int from = 0; from < n; ++from) {
      size_t at = r.displs[static_cast<size_t>(from)] * size, len = r.counts[static_cast<size_t>(from)];
      long long bad = FirstMismatch(out.data() + at, want.data() + at, len, t);
      if (bad >= 0) return where + ": block from rank " + std::to_string(from) + " wrong at " + std::to_string(bad);
    }
    return "";
  }
  long long bad = FirstMismatch(out.data(), want.data(), compare, t);
  if (bad >= 0) return where + ": wrong at element " + std::to_string(bad) + " (gaps included)";
  return "";
}

class ReduceAllToAll : public ::testing::TestWithParam<int> {};

TEST_P(ReduceAllToAll, ReduceEveryTypeOpRootAndSize) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (int root = 0; root < n; ++root)
                for (braidDataType_t t : kTypes)
                  for (braidRedOp_t op : kOps)
                    for (size_t count : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{13}, size_t{1021}})
                      for (bool inplace : {false, true})
                        if (auto e = CheckReduce(rank, n, comm, t, op, count, inplace, root); !e.empty()) return e;
              return "";
            }),
            "");
}

// Above 64 KiB the chain runs (in chunks); a prime just above the threshold and multi-chunk
// sizes, from the first and the last rank.
TEST_P(ReduceAllToAll, ReduceLargeChain) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (int root : {0, n - 1})
                for (braidDataType_t t : {braidInt8, braidFloat16, braidBfloat16, braidFloat32, braidFloat64})
                  for (braidRedOp_t op : {braidSum, braidAvg, braidMax, braidProd})
                    for (size_t count : {size_t{65537}, size_t{1048583}})
                      for (bool inplace : {false, true}) {
                        // Multi-chunk sizes for a few cases: the reference is slow under sanitizers.
                        if (count > 65537 && (op == braidProd || op == braidMax || inplace || t == braidInt8)) continue;
                        if (auto e = CheckReduce(rank, n, comm, t, op, count, inplace, root); !e.empty()) return e;
                      }
              return CheckReduce(rank, n, comm, braidFloat32, braidSum, 3u << 20, false, n / 2);
            }),
            "");
}

// 1 KiB chunks: the tree pipelines many chunks, the chain runs with hundreds.
TEST_P(ReduceAllToAll, ReduceSmallChunks) {
  RankOptions options;
  options.env = {{"BRAID_CHUNK_SIZE", "1K"}};
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (int root = 0; root < n; ++root)
                for (braidDataType_t t : {braidUint8, braidFloat16, braidInt32, braidFloat64})
                  for (braidRedOp_t op : {braidSum, braidMin, braidAvg})
                    for (size_t count : {size_t{1021}, size_t{4099}, size_t{70001}})
                      if (auto e = CheckReduce(rank, n, comm, t, op, count, root % 2 == 1, root); !e.empty()) return e;
              return "";
            }, options),
            "");
}

TEST_P(ReduceAllToAll, AllToAllEveryTypeAndSize) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (braidDataType_t t : kTypes)
                for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{13}, size_t{1021}, size_t{65537}})
                  for (bool inplace : {false, true})
                    if (auto e = CheckAllToAll(rank, n, comm, t, count, inplace); !e.empty()) return e;
              return CheckAllToAll(rank, n, comm, braidFloat32, 1u << 20, false);
            }),
            "");
}

TEST_P(ReduceAllToAll, AllToAllvUnevenAndZeroCounts) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (braidDataType_t t : {braidInt8, braidFloat16, braidInt64, braidFloat64})
                for (size_t scale : {size_t{0}, size_t{1}, size_t{13}, size_t{40009}})
                  for (bool inplace : {false, true})
                    if (auto e = CheckAllToAllv(rank, n, comm, t, scale, inplace); !e.empty()) return e;
              return "";
            }),
            "");
}

TEST_P(ReduceAllToAll, NonblockingForms) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              const size_t count = 30011;
              const int root = n - 1;
              std::vector<std::byte> in = MakeInput(braidInt32, braidSum, rank, n, count);
              std::vector<std::byte> reduced(count * 4), sent(count * 4 * static_cast<size_t>(n)), got(sent.size());
              for (int to = 0; to < n; ++to)
                for (size_t j = 0; j < count; ++j) Store(sent.data(), static_cast<size_t>(to) * count + j, braidInt32, BlockValue(rank, to, j));
              VLayout s = MakeLayout(n, [&](int to) { return VCount(rank, to, 5); });
              VLayout r = MakeLayout(n, [&](int from) { return VCount(from, rank, 5); });
              std::vector<std::byte> vsend(s.extent * 8), vgot(r.extent * 8);
              for (int to = 0; to < n; ++to)
                for (size_t j = 0; j < s.counts[static_cast<size_t>(to)]; ++j)
                  Store(vsend.data(), s.displs[static_cast<size_t>(to)] + j, braidFloat64, BlockValue(rank, to, j));
              braidRequest_t req[3] = {};
              if (braidIreduce(in.data(), reduced.data(), count, braidInt32, braidSum, root, comm, &req[0]) != braidSuccess) return "Ireduce: " + std::string(braidGetLastError());
              if (braidIallToAll(sent.data(), got.data(), count, braidInt32, comm, &req[1]) != braidSuccess) return "IallToAll: " + std::string(braidGetLastError());
              if (braidIallToAllv(vsend.data(), s.counts.data(), s.displs.data(), vgot.data(), r.counts.data(), r.displs.data(), braidFloat64, comm, &req[2]) != braidSuccess) return "IallToAllv: " + std::string(braidGetLastError());
              int done = 0;
              while (!done)
                if (braidResult_t rc = braidTest(req[0], &done); rc != braidSuccess) return "Test(Ireduce): " + ResultText(rc);
              for (int k = 1; k < 3; ++k)
                if (braidResult_t rc = braidWait(req[k]); rc != braidSuccess) return "Wait: " + ResultText(rc);
              std::vector<std::byte> want(count * 4);
              for (size_t i = 0; i < count; ++i) StoreExpected(want.data(), i, braidInt32, braidSum, n);
              if (rank == root && FirstMismatch(reduced.data(), want.data(), count, braidInt32) >= 0) return "Ireduce result wrong";
              for (int from = 0; from < n; ++from)
                for (size_t j = 0; j < count; ++j) {
                  int32_t v = 0;
                  std::memcpy(&v, got.data() + (static_cast<size_t>(from) * count + j) * 4, 4);
                  if (v != static_cast<int32_t>(BlockValue(from, rank, j))) return "IallToAll result wrong from rank " + std::to_string(from);
                }
              for (int from = 0; from < n; ++from)
                for (size_t j = 0; j < r.counts[static_cast<size_t>(from)]; ++j) {
                  double v = 0;
                  std::memcpy(&v, vgot.data() + (r.displs[static_cast<size_t>(from)] + j) * 8, 8);
                  if (v != BlockValue(from, rank, j)) return "IallToAllv result wrong from rank " + std::to_string(from);
                }
              return "";
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(Ranks, ReduceAllToAll, ::testing::Values(1, 2, 3, 5, 8),
                         [](const auto& info) { return std::to_string(info.param) + "ranks"; });

}  // namespace
}  // namespace braid::testing
