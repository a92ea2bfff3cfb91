// Soak: for a fixed time, random collectives with random sizes and datatypes, on the whole
// group and on random subsets of it (sub-communicators built for the occasion), every result
// checked exactly against the reference: zero wrong. BRAID_SOAK_SECONDS overrides the length.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tests/multiproc/random_ops.h"
#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

int SoakSeconds() {
  const char* text = std::getenv("BRAID_SOAK_SECONDS");
  return text && atoi(text) > 0 ? atoi(text) : 20;
}

// One round on a random subset: members build a communicator (the lowest member hosts its
// root and broadcasts the id over `world`), run `ops` random collectives on it, destroy it.
std::string SubsetRound(std::mt19937_64& rng, int rank, int n, braidComm_t world, int round,
                        long long* checked) {
  std::vector<int> members;
  for (int r = 0; r < n; ++r) {
    if (rng() % 3 != 0) members.push_back(r);
  }
  if (members.empty()) members.push_back(static_cast<int>(rng() % static_cast<uint64_t>(n)));
  const int leader = members.front();
  braidUniqueId id{};
  if (rank == leader && braidGetUniqueId(&id) != braidSuccess) {
    return "round " + std::to_string(round) + ": braidGetUniqueId: " + ResultText(braidSystemError);
  }
  if (braidBroadcast(&id, &id, sizeof(id), braidUint8, leader, world) != braidSuccess) {
    return "round " + std::to_string(round) + ": id broadcast: " + ResultText(braidRemoteError);
  }
  std::mt19937_64 ops_rng(rng());  // drawn by everyone, used by members.
  const int ops = static_cast<int>(rng() % 20 + 1);
  RandomOpLimits limits;
  limits.max_count = rng() % 4 == 0 ? 300000 : 4000;
  auto me = std::find(members.begin(), members.end(), rank);
  if (me == members.end()) return "";
  braidComm_t sub = nullptr;
  if (braidCommInitRank(&sub, static_cast<int>(members.size()), id,
                        static_cast<int>(me - members.begin())) != braidSuccess) {
    return "round " + std::to_string(round) + ": subset init: " + ResultText(braidRemoteError);
  }
  std::string error;
  braidResult_t rc;
  for (int i = 0; i < ops && error.empty(); ++i, ++*checked) {
    error = RunRandomCollective(ops_rng, static_cast<int>(me - members.begin()),
                                static_cast<int>(members.size()), sub, limits, &rc);
  }
  braidCommDestroy(sub);
  return error.empty() ? "" : "round " + std::to_string(round) + " on a subset of " +
                                  std::to_string(members.size()) + ": " + error;
}

TEST(Soak, RandomCollectivesOnRandomSubsetsAreAlwaysRight) {
  const int seconds = SoakSeconds();
  RankOptions options;
  options.timeout_seconds = seconds + 300;
  options.env = {{"BRAID_TIMEOUT", "120"}};
  std::string result = RunRanks(4, [seconds](int rank, int n, braidComm_t world) -> std::string {
    std::mt19937_64 rng(20261125);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    long long checked = 0;
    RandomOpLimits limits;
    braidResult_t rc;
    for (int round = 0;; ++round) {
      // Whole group: a few random collectives, sizes up to 1M elements now and then.
      limits.max_count = rng() % 8 == 0 ? 1000000 : 5000;
      for (int i = 0; i < 10; ++i, ++checked) {
        if (auto e = RunRandomCollective(rng, rank, n, world, limits, &rc); !e.empty()) {
          return "round " + std::to_string(round) + " on the whole group: " + e;
        }
      }
      if (auto e = SubsetRound(rng, rank, n, world, round, &checked); !e.empty()) return e;
      int more = rank == 0 && std::chrono::steady_clock::now() < until;
      if (braidBroadcast(&more, &more, 1, braidInt32, 0, world) != braidSuccess) {
        return "continue flag: " + ResultText(braidRemoteError);
      }
      if (!more) break;
    }
    if (rank == 0) std::printf("soak: %lld collectives checked, 0 wrong\n", checked);
    std::fflush(stdout);
    return "";
  }, options);
  EXPECT_EQ(result, "");
}

}  // namespace
}  // namespace braid::testing
