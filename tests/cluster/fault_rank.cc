// One rank of the cluster fault-injection test (fault_injection_test.sh), started in a host
// namespace by cluster_run: builds its communicator from the environment, then runs random
// collectives (random kinds, sizes, datatypes, ops, roots; every result checked exactly) until
// one fails because the script killed, stopped or cut off a rank. It then reports the error
// with its wall-clock time (CLOCK_REALTIME is the same in every namespace, so the script can
// subtract the moment of the fault), shrinks the communicator and finishes the loop on the
// smaller one, again checking every result. Usage: fault_rank SEED [MAX_COUNT]
// (MAX_COUNT: the largest element count per rank, default RandomOpLimits').
//
// Output, one line each (the script parses them):
//   FAULTRANK READY rank R of N pid P
//   FAULTRANK ERROR ns T op K: <the error text>
//   FAULTRANK FAILED_RANKS a,b,...
//   FAULTRANK SHRUNK ns T rank r of n
//   FAULTRANK FINISHED ops K
// and on anything wrong a line "FAULTRANK BAD <what>" and a non-zero exit.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "braid/braid.h"
#include "tests/multiproc/random_ops.h"
#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

constexpr int kOpsAfterShrink = 20;
// With no fault the loop would run forever: a fault the ranks never notice ends it here.
constexpr auto kLoopLimit = std::chrono::seconds(90);

long long WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Bad(const std::string& what) {
  std::printf("FAULTRANK BAD %s\n", what.c_str());
  std::fflush(stdout);
  return 1;
}

int Run(uint64_t seed, size_t max_count) {
  braidComm_t comm = nullptr;
  if (braidResult_t rc = braidCommInitFromEnv(&comm); rc != braidSuccess) {
    return Bad("braidCommInitFromEnv: " + ResultText(rc));
  }
  int rank = -1, n = -1;
  braidCommUserRank(comm, &rank);
  braidCommCount(comm, &n);
  std::printf("FAULTRANK READY rank %d of %d pid %d\n", rank, n, static_cast<int>(getpid()));
  std::fflush(stdout);

  std::mt19937_64 rng(seed);
  RandomOpLimits limits;
  if (max_count > 0) limits.max_count = max_count;
  braidResult_t rc = braidSuccess;
  std::string error;
  auto give_up = std::chrono::steady_clock::now() + kLoopLimit;
  long long op = 0;
  for (; error.empty(); ++op) {
    if (std::chrono::steady_clock::now() > give_up) {
      return Bad("no collective failed in " + std::to_string(op) + " ops: the fault went unnoticed");
    }
    error = RunRandomCollective(rng, rank, n, comm, limits, &rc);
    if (!error.empty() && rc == braidSuccess) return Bad("op " + std::to_string(op) + ": " + error);
  }
  std::printf("FAULTRANK ERROR ns %lld op %lld: %s\n", WallNs(), op, error.c_str());
  std::fflush(stdout);

  int failed[64], nfailed = 0;
  if (braidCommGetFailedRanks(comm, failed, 64, &nfailed) != braidSuccess) {
    return Bad("braidCommGetFailedRanks: " + ResultText(braidSuccess));
  }
  std::string list;
  for (int i = 0; i < nfailed && i < 64; ++i) list += (i ? "," : "") + std::to_string(failed[i]);
  std::printf("FAULTRANK FAILED_RANKS %s\n", list.c_str());
  std::fflush(stdout);

  braidComm_t smaller = nullptr;
  if (braidResult_t shrunk = braidCommShrink(comm, &smaller); shrunk != braidSuccess) {
    return Bad("braidCommShrink: " + ResultText(shrunk));
  }
  int new_rank = -1, new_size = -1;
  braidCommUserRank(smaller, &new_rank);
  braidCommCount(smaller, &new_size);
  std::printf("FAULTRANK SHRUNK ns %lld rank %d of %d\n", WallNs(), new_rank, new_size);
  std::fflush(stdout);

  // Every survivor draws the same new sequence (the old one's position differs per rank: a
  // rank may have failed one collective earlier than another).
  std::mt19937_64 after(seed ^ 0x5eed);
  for (int i = 0; i < kOpsAfterShrink; ++i) {
    if (std::string e = RunRandomCollective(after, new_rank, new_size, smaller, limits, &rc);
        !e.empty()) {
      return Bad("after shrinking, op " + std::to_string(i) + ": " + e);
    }
  }
  braidCommDestroy(smaller);
  braidCommDestroy(comm);
  std::printf("FAULTRANK FINISHED ops %d\n", kOpsAfterShrink);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace braid::testing

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s SEED [MAX_COUNT]\n", argv[0]);
    return 2;
  }
  return braid::testing::Run(std::strtoull(argv[1], nullptr, 10),
                             argc == 3 ? std::strtoull(argv[2], nullptr, 10) : 0);
}
