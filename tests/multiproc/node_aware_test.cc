// Node-aware paths on real forked ranks: ranks given fake hosts (BRAID_HOSTNAME) must get the
// hybrid transport (shm within a host, tcp between hosts) and the hierarchical AllReduce,
// exact against the reference; one host must get shm; forcing shm across hosts must fail.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/multiproc/rank_harness.h"
#include "tests/multiproc/reference.h"

namespace braid::testing {
namespace {

// A fresh directory for the ranks' logs.
std::string LogDir() {
  char pattern[] = "/tmp/braid-node-aware-XXXXXX";
  if (mkdtemp(pattern) == nullptr) std::abort();
  return pattern;
}

std::string ReadLog(const std::string& dir, int rank) {
  std::ifstream in(dir + "/rank" + std::to_string(rank) + ".log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string AllReduceExact(int rank, int n, braidComm_t comm, braidDataType_t t, braidRedOp_t op,
                           size_t count) {
  std::vector<std::byte> data = MakeInput(t, op, rank, n, count);
  std::vector<std::byte> want(data.size());
  for (size_t i = 0; i < count; ++i) StoreExpected(want.data(), i, t, op, n);
  braidResult_t rc = braidAllReduce(data.data(), data.data(), count, t, op, comm);
  std::string where = "type " + std::to_string(t) + " op " + std::to_string(op) + " count " +
                      std::to_string(count);
  if (rc != braidSuccess) return where + ": " + ResultText(rc);
  long long bad = FirstMismatch(data.data(), want.data(), count, t);
  return bad < 0 ? "" : where + ": wrong at element " + std::to_string(bad);
}

// Runs `nranks` ranks whose hosts are host_of(rank); every rank checks every type and op,
// then that its log shows the hybrid transport and the hierarchical algorithm.
std::string RunMixed(int nranks, std::function<std::string(int)> host_of, int hosts) {
  RankOptions options;
  options.env = {{"BRAID_DEBUG", "TRACE"}};
  PerRankOptions per_rank;
  per_rank.env = [host_of](int rank) {
    return std::map<std::string, std::string>{{"BRAID_HOSTNAME", host_of(rank)}};
  };
  per_rank.stderr_dir = LogDir();
  std::string result = RunRanks(nranks, [&](int rank, int n, braidComm_t comm) -> std::string {
    for (braidDataType_t t : kTypes)
      for (braidRedOp_t op : kOps)
        for (size_t count : {0, 1, 7, 1021, 65537})
          if (auto e = AllReduceExact(rank, n, comm, t, op, count); !e.empty()) return e;
    if (auto e = AllReduceExact(rank, n, comm, braidFloat32, braidSum, 3u << 20); !e.empty()) return e;
    std::string log = ReadLog(per_rank.stderr_dir, rank);
    if (log.find("transport hybrid") == std::string::npos) return "hybrid transport not chosen:\n" + log.substr(0, 2000);
    std::string hierarchical = "hierarchical over " + std::to_string(hosts) + " hosts";
    if (log.find(hierarchical) == std::string::npos) return "no \"" + hierarchical + "\" in the log";
    return "";
  }, options, per_rank);
  std::filesystem::remove_all(per_rank.stderr_dir);
  return result;
}

TEST(NodeAware, SixRanksOnTwoHostsUseTheHierarchicalAllReduce) {
  EXPECT_EQ(RunMixed(6, [](int r) { return r < 3 ? "nodeA" : "nodeB"; }, 2), "");
}

TEST(NodeAware, ThreeUnevenHosts5ranks) {
  EXPECT_EQ(RunMixed(5, [](int r) { return r < 2 ? "nodeA" : r < 4 ? "nodeB" : "nodeC"; }, 3), "");
}

TEST(NodeAware, OneHostChoosesSharedMemory) {
  RankOptions options;
  options.env = {{"BRAID_DEBUG", "INFO"}};
  PerRankOptions per_rank;
  per_rank.stderr_dir = LogDir();
  EXPECT_EQ(RunRanks(3, [&](int rank, int n, braidComm_t comm) -> std::string {
              if (auto e = AllReduceExact(rank, n, comm, braidFloat32, braidSum, 1 << 20); !e.empty()) return e;
              std::string log = ReadLog(per_rank.stderr_dir, rank);
              if (log.find("transport shm: all 3 ranks") == std::string::npos) return "shm not chosen:\n" + log.substr(0, 2000);
              if (log.find("hierarchical") != std::string::npos) return "hierarchical on one host";
              return "";
            }, options, per_rank),
            "");
  std::filesystem::remove_all(per_rank.stderr_dir);
}

// Without process_vm_readv (BRAID_SHM_CMA=0, as when ptrace rules forbid it) large messages
// are split across ring slots: exact results through that path too, unexpected ones included.
TEST(NodeAware, SharedMemoryWithoutCmaCopiesThroughTheRing) {
  RankOptions options;
  options.env = {{"BRAID_SHM_CMA", "0"}, {"BRAID_TRANSPORT", "shm"}};
  EXPECT_EQ(RunRanks(3, [](int rank, int n, braidComm_t comm) -> std::string {
              for (braidDataType_t t : {braidInt8, braidBfloat16, braidFloat32, braidFloat64})
                for (braidRedOp_t op : {braidSum, braidAvg, braidMax})
                  for (size_t count : {32768, 65537, 1048583})
                    if (auto e = AllReduceExact(rank, n, comm, t, op, count); !e.empty()) return e;
              std::vector<float> mine(300007, static_cast<float>(rank)), all(mine.size() * n);
              if (braidAllGather(mine.data(), all.data(), mine.size(), braidFloat32, comm) != braidSuccess) {
                return "AllGather failed";
              }
              for (size_t i = 0; i < all.size(); ++i) {
                if (all[i] != static_cast<float>(i / mine.size())) return "AllGather wrong at " + std::to_string(i);
              }
              return "";
            }, options),
            "");
}

TEST(NodeAware, ForcedSharedMemoryAcrossHostsIsAnError) {
  RankOptions options;
  options.timeout_seconds = 60;
  options.env = {{"BRAID_TRANSPORT", "shm"}};
  PerRankOptions per_rank;
  per_rank.env = [](int rank) {
    return std::map<std::string, std::string>{{"BRAID_HOSTNAME", rank == 0 ? "nodeA" : "nodeB"}};
  };
  std::string result =
      RunRanks(2, [](int, int, braidComm_t) { return std::string(); }, options, per_rank);
  EXPECT_NE(result.find("BRAID_TRANSPORT=shm"), std::string::npos) << result;
  EXPECT_NE(result.find("2 hosts"), std::string::npos) << result;
}

}  // namespace
}  // namespace braid::testing
