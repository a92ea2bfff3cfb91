// Bad input, dead peers, timeouts and abort: every one a clear error within the timeout, never
// a hang or a crash. Also: an idle or waiting communicator does not burn CPU.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

using Clock = std::chrono::steady_clock;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::string Expect(braidResult_t got, braidResult_t want, const std::string& what) {
  if (got == want) return "";
  return what + ": expected " + braidGetErrorString(want) + " but got " + ResultText(got);
}

std::string ExpectMentions(const std::string& needle, const std::string& what) {
  std::string text = braidGetLastError();
  if (text.find(needle) != std::string::npos) return "";
  return what + ": error text does not mention \"" + needle + "\": " + text;
}

TEST(Failures, InvalidArgumentsAreErrorsNotCrashes) {
  EXPECT_EQ(RunRanks(2, [](int, int, braidComm_t comm) -> std::string {
              float x[4] = {};
              std::string e;
              e += Expect(braidAllReduce(nullptr, x, 4, braidFloat32, braidSum, comm), braidInvalidArgument, "null sendbuff");
              e += ExpectMentions("null", "null sendbuff");
              e += Expect(braidAllReduce(x, x, 4, static_cast<braidDataType_t>(42), braidSum, comm), braidInvalidArgument, "bad datatype");
              e += ExpectMentions("datatype 42", "bad datatype");
              e += Expect(braidAllReduce(x, x, 4, braidFloat32, static_cast<braidRedOp_t>(99), comm), braidInvalidArgument, "bad op");
              e += Expect(braidAllReduce(x, x, SIZE_MAX / 2, braidFloat32, braidSum, comm), braidInvalidArgument, "count overflow");
              e += ExpectMentions("overflows", "count overflow");
              e += Expect(braidBroadcast(x, x, 4, braidFloat32, 7, comm), braidInvalidArgument, "root out of range");
              e += Expect(braidAllReduce(x, x, 4, braidFloat32, braidSum, nullptr), braidInvalidArgument, "null comm");
              e += Expect(braidAllGather(x, nullptr, 2, braidFloat32, comm), braidInvalidArgument, "null recvbuff");
              // Overlapping buffers that are not the in-place layout would corrupt data.
              float big[8] = {};
              e += Expect(braidAllReduce(big, big + 1, 4, braidFloat32, braidSum, comm), braidInvalidArgument, "overlapping allreduce");
              e += ExpectMentions("overlap", "overlapping allreduce");
              e += Expect(braidReduceScatter(big, big + 1, 2, braidFloat32, braidSum, comm), braidInvalidArgument, "overlapping reduce-scatter");
              e += Expect(braidAllGather(big + 1, big, 2, braidFloat32, comm), braidInvalidArgument, "overlapping allgather");
              // Zero elements with null buffers is valid, as in NCCL.
              e += Expect(braidAllReduce(nullptr, nullptr, 0, braidFloat32, braidSum, comm), braidSuccess, "zero count");
              // The communicator still works after refused calls.
              e += Expect(braidAllReduce(x, x, 4, braidFloat32, braidSum, comm), braidSuccess, "valid call after errors");
              e += Expect(braidCommDestroy(comm), braidSuccess, "destroy");
              e += Expect(braidAllReduce(x, x, 4, braidFloat32, braidSum, comm), braidInvalidUsage, "use after destroy");
              e += ExpectMentions("destroyed", "use after destroy");
              int rank = 0;
              e += Expect(braidCommUserRank(comm, &rank), braidInvalidUsage, "rank after destroy");
              e += Expect(braidCommInitRank(nullptr, 2, braidUniqueId{}, 0), braidInvalidArgument, "null comm out");
              braidComm_t other = nullptr;
              e += Expect(braidCommInitRank(&other, 2, braidUniqueId{}, 0), braidInvalidArgument, "garbage unique id");
              return e;
            }, {.timeout_seconds = 120, .env = {}, .destroy = false}),
            "");
}

TEST(Failures, DeadPeerIsNamedQuickly) {
  EXPECT_EQ(RunRanks(3, [](int rank, int, braidComm_t comm) -> std::string {
              // Every rank must be past creation (which ends with collectives of its own, e.g.
              // the selector's link measurement) before rank 2 dies: a barrier, and a pause so
              // its last barrier messages leave before the process does.
              if (braidBarrier(comm) != braidSuccess) return std::string("barrier before the fault: ") + braidGetLastError();
              if (rank == 2) {
                usleep(300000);
                std::_Exit(0);  // dies without a word, sockets closed by the kernel.
              }
              std::vector<float> data(1 << 20, 1.0f);
              auto start = Clock::now();
              braidResult_t rc = braidAllReduce(data.data(), data.data(), data.size(), braidFloat32, braidSum, comm);
              double seconds = std::chrono::duration<double>(Clock::now() - start).count();
              if (rc == braidSuccess) return "AllReduce succeeded without rank 2";
              std::string text = braidGetLastError();
              if (rank == 1 && text.find("rank 2") == std::string::npos) return "error does not name rank 2: " + text;
              if (seconds > 10) return "took " + std::to_string(seconds) + " s to notice";
              braidResult_t async = braidSuccess;
              braidCommGetAsyncError(comm, &async);
              if (async == braidSuccess) return "no async error recorded";
              // Later calls fail at once with the same story.
              if (braidBarrier(comm) == braidSuccess) return "barrier succeeded on a broken communicator";
              return "";
            }, {.timeout_seconds = 120, .env = {{"BRAID_TIMEOUT", "30"}}, .destroy = true}),
            "");
}

TEST(Failures, SilentPeerTimesOutWithinTheTimeout) {
  EXPECT_EQ(RunRanks(2, [](int rank, int, braidComm_t comm) -> std::string {
              if (rank == 1) {
                sleep(4);  // alive, connected, but never joins the collective in time.
                return "";
              }
              braidCommSetTimeout(comm, 1.0);
              float x[16] = {};
              auto start = Clock::now();
              braidResult_t rc = braidAllReduce(x, x, 16, braidFloat32, braidSum, comm);
              double seconds = std::chrono::duration<double>(Clock::now() - start).count();
              std::string e = Expect(rc, braidTimeout, "AllReduce with a silent peer");
              e += ExpectMentions("AllReduce", "timeout text");
              e += ExpectMentions("rank 1", "timeout text");
              if (seconds < 0.9 || seconds > 3) e += "timeout took " + std::to_string(seconds) + " s, wanted ~1 s";
              return e;
            }),
            "");
}

TEST(Failures, AbortFromAnotherThreadUnblocks) {
  EXPECT_EQ(RunRanks(2, [](int rank, int, braidComm_t comm) -> std::string {
              if (rank == 1) {
                sleep(3);
                return "";
              }
              std::thread aborter([comm] {
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
                braidCommAbort(comm);
              });
              float x[16] = {};
              auto start = Clock::now();
              braidResult_t rc = braidAllReduce(x, x, 16, braidFloat32, braidSum, comm);
              double seconds = std::chrono::duration<double>(Clock::now() - start).count();
              aborter.join();
              std::string e = Expect(rc, braidAborted, "AllReduce during abort");
              if (seconds > 2) e += "abort took " + std::to_string(seconds) + " s";
              e += Expect(braidBarrier(comm), braidInvalidUsage, "call after abort");
              e += ExpectMentions("aborted", "call after abort");
              return e;
            }, {.timeout_seconds = 120, .env = {}, .destroy = false}),
            "");
}

TEST(Failures, IdleAndWaitingCommunicatorsUseLittleCpu) {
  EXPECT_EQ(RunRanks(2, [](int rank, int, braidComm_t comm) -> std::string {
              double before = CpuSeconds();
              sleep(1);  // idle: nothing in flight.
              double idle = CpuSeconds() - before;
              if (rank == 1) sleep(1);  // rank 0 waits ~1 s inside the barrier.
              before = CpuSeconds();
              if (braidBarrier(comm) != braidSuccess) return "barrier: " + std::string(braidGetLastError());
              double waiting = CpuSeconds() - before;
              std::string e;
              if (idle > 0.02) e += "idle second used " + std::to_string(idle) + " s of CPU; ";
              if (rank == 0 && waiting > 0.1) e += "waiting second used " + std::to_string(waiting) + " s of CPU";
              return e;
            }),
            "");
}

TEST(Failures, ShrinkOfAHealthyCommunicatorKeepsEveryone) {
  EXPECT_EQ(RunRanks(3, [](int rank, int n, braidComm_t comm) -> std::string {
              braidComm_t same = nullptr;
              if (braidCommShrink(comm, &same) != braidSuccess) return "shrink: " + ResultText(braidRemoteError);
              int r = -1, size = -1, nfailed = -1;
              braidCommUserRank(same, &r);
              braidCommCount(same, &size);
              braidCommGetFailedRanks(comm, nullptr, 0, &nfailed);
              std::string e;
              if (r != rank || size != n) e += "shrunk to rank " + std::to_string(r) + " of " + std::to_string(size) + "; ";
              if (nfailed != 0) e += std::to_string(nfailed) + " failed ranks reported; ";
              int32_t x = rank + 1;
              if (braidAllReduce(&x, &x, 1, braidInt32, braidSum, same) != braidSuccess || x != 6) e += "AllReduce on the shrunk communicator; ";
              braidCommDestroy(same);
              return e;
            }),
            "");
}

}  // namespace
}  // namespace braid::testing
