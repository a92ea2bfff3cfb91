// braidCommSplit on real forked ranks: odd groups, keys that reorder ranks, NOCOLOR ranks,
// splits of splits, and collectives on the parent and its children interleaved, every result
// checked exactly (int64 values derived from the parent rank, so each sum is known).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

int64_t Value(int parent_rank, size_t index) {
  return static_cast<int64_t>(parent_rank) * 1000003 + static_cast<int64_t>(index % 4099);
}

#define EXPECT_OK(call)                                                          \
  do {                                                                           \
    braidResult_t rc_ = (call);                                                  \
    if (rc_ != braidSuccess) return std::string(#call) + ": " + ResultText(rc_); \
  } while (0)

// AllReduce(sum) on `comm` whose members are `parents` (parent ranks); checks every element.
std::string CheckSum(braidComm_t comm, int parent_rank, const std::vector<int>& parents,
                     size_t count, const char* what) {
  std::vector<int64_t> data(count), want(count, 0);
  for (size_t i = 0; i < count; ++i) data[i] = Value(parent_rank, i);
  for (int p : parents)
    for (size_t i = 0; i < count; ++i) want[i] += Value(p, i);
  EXPECT_OK(braidAllReduce(data.data(), data.data(), count, braidInt64, braidSum, comm));
  for (size_t i = 0; i < count; ++i)
    if (data[i] != want[i])
      return std::string(what) + ": AllReduce of " + std::to_string(count) +
             " wrong at element " + std::to_string(i);
  return "";
}

// AllGather of parent ranks: the new communicator's order must be `expected` exactly.
std::string CheckOrder(braidComm_t comm, int parent_rank, const std::vector<int>& expected) {
  int size = 0, rank = -1;
  EXPECT_OK(braidCommCount(comm, &size));
  EXPECT_OK(braidCommUserRank(comm, &rank));
  if (size != static_cast<int>(expected.size()))
    return "new size " + std::to_string(size) + ", want " + std::to_string(expected.size());
  if (expected[static_cast<size_t>(rank)] != parent_rank)
    return "parent rank " + std::to_string(parent_rank) + " got new rank " + std::to_string(rank);
  std::vector<int32_t> mine{parent_rank}, all(expected.size());
  EXPECT_OK(braidAllGather(mine.data(), all.data(), 1, braidInt32, comm));
  for (size_t i = 0; i < expected.size(); ++i)
    if (all[i] != expected[i]) return "AllGather order differs at new rank " + std::to_string(i);
  return "";
}

// Members of `color` ordered by (key, parent rank).
std::vector<int> Members(int n, int color, int (*color_of)(int, int), int (*key_of)(int, int)) {
  std::vector<int> members;
  for (int r = 0; r < n; ++r)
    if (color_of(r, n) == color) members.push_back(r);
  std::stable_sort(members.begin(), members.end(),
                   [&](int a, int b) { return key_of(a, n) < key_of(b, n); });
  return members;
}

int ColorMod3(int r, int) { return r % 3; }
int KeyReverse(int r, int) { return -r; }
int ColorHalf(int r, int n) { return r < n / 2 ? 0 : 1; }
int KeyZero(int, int) { return 0; }
int ColorNoTwo(int r, int) { return r % 2 == 0 && r > 0 ? BRAID_SPLIT_NOCOLOR : 7; }
int KeyRotate(int r, int n) { return (r + 2) % n; }

class Split : public ::testing::TestWithParam<int> {};

// Groups of 3, 2, 2 (7 ranks) or 2, 1, 1 (4): ranks reversed by key; collectives on both.
TEST_P(Split, OddGroupsReorderedByKey) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t parent) -> std::string {
              braidComm_t child = nullptr;
              EXPECT_OK(braidCommSplit(parent, ColorMod3(rank, n), KeyReverse(rank, n), &child));
              if (child == nullptr) return "no communicator for a colored rank";
              auto members = Members(n, ColorMod3(rank, n), ColorMod3, KeyReverse);
              if (auto e = CheckOrder(child, rank, members); !e.empty()) return e;
              std::vector<int> everyone(static_cast<size_t>(n));
              for (int r = 0; r < n; ++r) everyone[static_cast<size_t>(r)] = r;
              for (size_t count : {size_t{0}, size_t{1}, size_t{13}, size_t{65537}}) {
                if (auto e = CheckSum(child, rank, members, count, "child"); !e.empty()) return e;
                if (auto e = CheckSum(parent, rank, everyone, count, "parent"); !e.empty())
                  return e;
              }
              EXPECT_OK(braidCommDestroy(child));
              return CheckSum(parent, rank, everyone, 1021, "parent after child destroyed");
            }),
            "");
}

// NOCOLOR ranks get NULL, take part in the exchange, and keep using the parent.
TEST_P(Split, NoColorRanksGetNull) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t parent) -> std::string {
              braidComm_t child = reinterpret_cast<braidComm_t>(0x1);
              int color = ColorNoTwo(rank, n);
              EXPECT_OK(braidCommSplit(parent, color, KeyRotate(rank, n), &child));
              std::vector<int> everyone(static_cast<size_t>(n));
              for (int r = 0; r < n; ++r) everyone[static_cast<size_t>(r)] = r;
              if (color == BRAID_SPLIT_NOCOLOR) {
                if (child != nullptr) return "NOCOLOR rank got a communicator";
              } else {
                auto members = Members(n, color, ColorNoTwo, KeyRotate);
                if (auto e = CheckOrder(child, rank, members); !e.empty()) return e;
                if (auto e = CheckSum(child, rank, members, 4099, "child"); !e.empty()) return e;
                EXPECT_OK(braidCommDestroy(child));
              }
              return CheckSum(parent, rank, everyone, 7, "parent");
            }),
            "");
}

// Two splits of one parent and a split of a split live side by side; blocking and nonblocking
// collectives on all of them interleave in the same order on every rank.
TEST_P(Split, InterleavedWithParentAndNested) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t parent) -> std::string {
              braidComm_t a = nullptr, b = nullptr, nested = nullptr;
              EXPECT_OK(braidCommSplit(parent, ColorMod3(rank, n), KeyReverse(rank, n), &a));
              EXPECT_OK(braidCommSplit(parent, ColorHalf(rank, n), KeyZero(rank, n), &b));
              // b's members split again by parity of their new rank.
              int b_rank = -1;
              EXPECT_OK(braidCommUserRank(b, &b_rank));
              EXPECT_OK(braidCommSplit(b, b_rank % 2, 0, &nested));
              auto a_members = Members(n, ColorMod3(rank, n), ColorMod3, KeyReverse);
              auto b_members = Members(n, ColorHalf(rank, n), ColorHalf, KeyZero);
              std::vector<int> nested_members;
              for (size_t i = 0; i < b_members.size(); ++i)
                if (static_cast<int>(i % 2) == b_rank % 2) nested_members.push_back(b_members[i]);
              std::vector<int> everyone(static_cast<size_t>(n));
              for (int r = 0; r < n; ++r) everyone[static_cast<size_t>(r)] = r;
              if (auto e = CheckOrder(nested, rank, nested_members); !e.empty()) return e;
              for (int round = 0; round < 3; ++round) {
                size_t count = 1000 + static_cast<size_t>(round) * 40009;
                // A nonblocking AllReduce on a runs while blocking ones run on the others.
                std::vector<int64_t> async(count), want(count, 0);
                for (size_t i = 0; i < count; ++i) async[i] = Value(rank, i);
                for (int p : a_members)
                  for (size_t i = 0; i < count; ++i) want[i] += Value(p, i);
                braidRequest_t request = nullptr;
                EXPECT_OK(braidIallReduce(async.data(), async.data(), count, braidInt64, braidSum,
                                          a, &request));
                if (auto e = CheckSum(parent, rank, everyone, count, "parent"); !e.empty())
                  return e;
                if (auto e = CheckSum(b, rank, b_members, count, "b"); !e.empty()) return e;
                if (auto e = CheckSum(nested, rank, nested_members, count, "nested"); !e.empty())
                  return e;
                EXPECT_OK(braidWait(request));
                if (async != want) return "nonblocking AllReduce on a differs";
                if (auto e = CheckSum(a, rank, a_members, 7, "a"); !e.empty()) return e;
              }
              EXPECT_OK(braidCommDestroy(nested));
              EXPECT_OK(braidCommDestroy(b));
              EXPECT_OK(braidCommDestroy(a));
              return "";
            }),
            "");
}

// A color below -1 is refused on that rank with a clear error.
TEST(SplitArguments, NegativeColorIsRejected) {
  EXPECT_EQ(RunRanks(1, [](int, int, braidComm_t parent) -> std::string {
              braidComm_t child = nullptr;
              braidResult_t rc = braidCommSplit(parent, -5, 0, &child);
              if (rc != braidInvalidArgument) return "color -5 gave " + ResultText(rc);
              if (std::string(braidGetLastError()).find("color") == std::string::npos)
                return std::string("error does not name the color: ") + braidGetLastError();
              return "";
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(Ranks, Split, ::testing::Values(4, 7));

}  // namespace
}  // namespace braid::testing
