// Error paths of the verbs transport that need the real soft-RoCE stack, run by
// tests/rxe/suite.sh under braidrun with BRAID_TRANSPORT=verbs. Each mode exits 0 only when the
// failure happened AND the error says what it must:
//   memlock   (every rank under a small `ulimit -l`, without CAP_IPC_LOCK): creating the
//             communicator fails, naming RLIMIT_MEMLOCK and `ulimit -l unlimited`.
//   portdown  after a checked AllReduce, rank 0 takes the rxe netdev down (IBV_EVENT_PORT_ERR
//             on every rank of the device); the next AllReduce fails and
//             braidCommGetAsyncError reports the port error. Rank 0 brings the link back up.
#include <braid/braid.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace {

int g_rank = -1;

int Fail(const std::string& why) {
  std::printf("rank %d: FAIL: %s\n", g_rank, why.c_str());
  return 1;
}

bool Contains(const std::string& text, const char* what) {
  return text.find(what) != std::string::npos;
}

int Memlock() {
  const char* rank = std::getenv("BRAID_RANK");
  g_rank = rank != nullptr ? std::atoi(rank) : -1;
  braidComm_t comm = nullptr;
  braidResult_t result = braidCommInitFromEnv(&comm);
  std::string error = braidGetLastError();
  if (result == braidSuccess) return Fail("the communicator was created under the small memlock limit");
  std::printf("rank %d: init failed as expected: %s\n", g_rank, error.c_str());
  if (!Contains(error, "RLIMIT_MEMLOCK") || !Contains(error, "ulimit -l unlimited")) {
    return Fail("the error does not name RLIMIT_MEMLOCK and `ulimit -l unlimited`");
  }
  return 0;
}

bool PortActive(const char* device) {
  std::ifstream state(std::string("/sys/class/infiniband/") + device + "/ports/1/state");
  std::string text((std::istreambuf_iterator<char>(state)), std::istreambuf_iterator<char>());
  return Contains(text, "ACTIVE");
}

int PortDown(const char* netdev, const char* device) {
  braidComm_t comm = nullptr;
  if (braidCommInitFromEnv(&comm) != braidSuccess) return Fail(braidGetLastError());
  braidCommUserRank(comm, &g_rank);
  int nranks = 0;
  braidCommCount(comm, &nranks);
  float value = static_cast<float>(g_rank + 1), sum = 0;
  if (braidAllReduce(&value, &sum, 1, braidFloat, braidSum, comm) != braidSuccess) {
    return Fail(std::string("AllReduce before the port went down: ") + braidGetLastError());
  }
  if (sum != nranks * (nranks + 1) / 2.0f) return Fail("wrong sum before the port went down");
  if (g_rank == 0) {
    std::string down = std::string("ip link set ") + netdev + " down";
    if (std::system(down.c_str()) != 0) return Fail(down + " failed");
  }
  braidResult_t result = braidAllReduce(&value, &sum, 1, braidFloat, braidSum, comm);
  std::string op_error = braidGetLastError();
  braidResult_t async = braidSuccess;
  braidResult_t got = braidCommGetAsyncError(comm, &async);
  std::string async_error = braidGetLastError();
  int rc = 0;
  if (result == braidSuccess) {
    rc = Fail("the AllReduce after the port went down succeeded");
  } else if (got != braidSuccess || async == braidSuccess) {
    rc = Fail("braidCommGetAsyncError reports no error after the port went down");
  } else {
    std::printf("rank %d: async error: %s\n", g_rank, async_error.c_str());
    if (!Contains(async_error, "port error") || !Contains(async_error, "port went down")) {
      rc = Fail("the async error does not say that the port went down (IBV_EVENT_PORT_ERR)");
    }
  }
  braidCommAbort(comm);
  if (g_rank == 0) {
    std::string up = std::string("ip link set ") + netdev + " up";
    if (std::system(up.c_str()) != 0) return Fail(up + " failed");
    // The rest of the suite needs the port back.
    for (int i = 0; i < 300 && !PortActive(device); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!PortActive(device)) return Fail("the port did not come back ACTIVE");
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "memlock") return Memlock();
  if (mode == "portdown") {
    return PortDown(argc > 2 ? argv[2] : "veth0", argc > 3 ? argv[3] : "rxe0");
  }
  std::fprintf(stderr, "usage: %s memlock | portdown [NETDEV [RDMA_DEVICE]]\n", argv[0]);
  return 2;
}
