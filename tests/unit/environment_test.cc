// Launcher environment detection (with an injected environment) and local address selection.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <cstdlib>
#include <map>
#include <string>

#include "bootstrap/bootstrap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid {
namespace {

using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

absl::StatusOr<LaunchEnvironment> Detect(const Env& env) {
  return DetectLaunchEnvironment([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

void ExpectError(const Env& env, const std::string& text) {
  auto result = Detect(env);
  ASSERT_FALSE(result.ok()) << "expected an error containing: " << text;
  EXPECT_THAT(result.status().message(), HasSubstr(text));
}

TEST(Environment, BraidVariables) {
  auto env =
      Detect({{"BRAID_RANK", "2"}, {"BRAID_WORLD_SIZE", "4"}, {"BRAID_ROOT", "node7:29500"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->rank, 2);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->root_host, "node7");
  EXPECT_EQ(env->root_port, 29500);
  EXPECT_EQ(env->source, "braid");
}

TEST(Environment, BraidRootIpv6) {
  auto env =
      Detect({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "1"}, {"BRAID_ROOT", "[fe80::1]:1234"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->root_host, "fe80::1");
  EXPECT_EQ(env->root_port, 1234);
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "1"}, {"BRAID_ROOT", "fe80::1:1234"}},
              "bare IPv6");
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "1"}, {"BRAID_ROOT", "[fe80::1"}},
              "unterminated");
}

TEST(Environment, BraidWinsOverEveryLauncher) {
  auto env = Detect({{"BRAID_RANK", "1"},
                     {"BRAID_WORLD_SIZE", "2"},
                     {"BRAID_ROOT", "a:1"},
                     {"RANK", "5"},
                     {"WORLD_SIZE", "8"},
                     {"MASTER_ADDR", "b"},
                     {"MASTER_PORT", "2"},
                     {"OMPI_COMM_WORLD_RANK", "3"},
                     {"OMPI_COMM_WORLD_SIZE", "4"},
                     {"SLURM_PROCID", "0"},
                     {"SLURM_NTASKS", "9"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "braid");
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->root_host, "a");  // BRAID_ROOT beats MASTER_ADDR too.
}

TEST(Environment, Torchrun) {
  auto env = Detect({{"RANK", "3"},
                     {"WORLD_SIZE", "8"},
                     {"MASTER_ADDR", "10.0.0.1"},
                     {"MASTER_PORT", "29400"},
                     {"OMPI_COMM_WORLD_RANK", "0"},
                     {"OMPI_COMM_WORLD_SIZE", "1"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "torchrun");
  EXPECT_EQ(env->rank, 3);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->root_host, "10.0.0.1");
  EXPECT_EQ(env->root_port, 29400);
}

TEST(Environment, TorchrunNeedsBothMasterVariables) {
  ExpectError({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}},
              "MASTER_ADDR is set but MASTER_PORT is not");
  ExpectError({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}},
              "MASTER_PORT is set but MASTER_ADDR is not");
}

TEST(Environment, OpenMpiWithRoot) {
  auto env = Detect(
      {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"BRAID_ROOT", "head:5000"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "openmpi");
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 2);
  EXPECT_EQ(env->root_host, "head");
  auto via_master = Detect({{"OMPI_COMM_WORLD_RANK", "0"},
                            {"OMPI_COMM_WORLD_SIZE", "2"},
                            {"MASTER_ADDR", "m"},
                            {"MASTER_PORT", "6000"}});
  ASSERT_TRUE(via_master.ok()) << via_master.status();
  EXPECT_EQ(via_master->root_port, 6000);
}

TEST(Environment, OpenMpiWithoutRootExplains) {
  auto env = Detect({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}});
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(env.status().message(), HasSubstr("openmpi launch found"));
  EXPECT_THAT(env.status().message(), HasSubstr("mpirun"));
  EXPECT_THAT(env.status().message(), HasSubstr("BRAID_ROOT"));
  EXPECT_THAT(env.status().message(), HasSubstr("MPI bootstrap"));
}

TEST(Environment, Slurm) {
  auto env = Detect({{"SLURM_PROCID", "4"},
                     {"SLURM_NTASKS", "6"},
                     {"MASTER_ADDR", "n1"},
                     {"MASTER_PORT", "7000"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "slurm");
  EXPECT_EQ(env->rank, 4);
  EXPECT_EQ(env->world_size, 6);
  ExpectError({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "6"}}, "srun");
}

TEST(Environment, ValidatesNumbersAndNamesTheVariable) {
  ExpectError({{"BRAID_RANK", "4"}, {"BRAID_WORLD_SIZE", "4"}, {"BRAID_ROOT", "h:1"}},
              "BRAID_RANK=4 is not below BRAID_WORLD_SIZE=4");
  ExpectError({{"BRAID_RANK", "-1"}, {"BRAID_WORLD_SIZE", "4"}, {"BRAID_ROOT", "h:1"}},
              "BRAID_RANK=\"-1\"");
  ExpectError({{"BRAID_RANK", "x"}, {"BRAID_WORLD_SIZE", "4"}, {"BRAID_ROOT", "h:1"}},
              "BRAID_RANK=\"x\" is not an integer");
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "0"}, {"BRAID_ROOT", "h:1"}},
              "BRAID_WORLD_SIZE=\"0\"");
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "2"}, {"BRAID_ROOT", "h:0"}},
              "not a port number in 1..65535");
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "2"}, {"BRAID_ROOT", "h:65536"}},
              "not a port number");
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "2"}, {"BRAID_ROOT", "h"}},
              "has no :port");
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_WORLD_SIZE", "2"}, {"BRAID_ROOT", ":80"}},
              "has no host");
  ExpectError({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "p"}},
              "MASTER_PORT=\"p\"");
  ExpectError({{"BRAID_RANK", "0"}, {"BRAID_ROOT", "h:1"}},
              "BRAID_RANK is set but BRAID_WORLD_SIZE is not");
}

TEST(Environment, NothingSetExplainsWhatToSet) {
  auto env = Detect({});
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(env.status().message(), HasSubstr("no launcher variables found"));
  EXPECT_THAT(env.status().message(), HasSubstr("braidrun"));
  EXPECT_THAT(env.status().message(), HasSubstr("BRAID_RANK, BRAID_WORLD_SIZE and BRAID_ROOT"));
  // Empty values count as unset.
  EXPECT_FALSE(Detect({{"BRAID_RANK", ""}, {"BRAID_WORLD_SIZE", ""}}).ok());
}

TEST(Environment, ReadsTheProcessEnvironment) {
  ::setenv("BRAID_RANK", "1", 1);
  ::setenv("BRAID_WORLD_SIZE", "3", 1);
  ::setenv("BRAID_ROOT", "127.0.0.1:4242", 1);
  auto env = DetectLaunchEnvironment();
  ::unsetenv("BRAID_RANK");
  ::unsetenv("BRAID_WORLD_SIZE");
  ::unsetenv("BRAID_ROOT");
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 3);
  EXPECT_EQ(env->root_port, 4242);
}

// ---- SelectLocalAddress ----

bool LoopbackIsUp() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool up = false;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (std::string(i->ifa_name) == "lo" && (i->ifa_flags & IFF_UP)) up = true;
  }
  ::freeifaddrs(list);
  return up;
}

TEST(SelectLocalAddress, LoopbackByPrefixAndExactName) {
  if (!LoopbackIsUp()) GTEST_SKIP() << "no 'lo' interface here";
  auto prefix = SelectLocalAddress("lo", "");
  ASSERT_TRUE(prefix.ok()) << prefix.status();
  EXPECT_EQ(*prefix, "127.0.0.1");
  auto exact = SelectLocalAddress("=lo", "");
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(*exact, "127.0.0.1");
  auto listed = SelectLocalAddress("nosuchif0, lo", "");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, "127.0.0.1");
  // "=l" is an exact name, so it does not match "lo".
  EXPECT_FALSE(SelectLocalAddress("=l", "").ok());
}

TEST(SelectLocalAddress, ExcludeListSkipsLoopback) {
  auto address = SelectLocalAddress("^lo", "");
  if (!address.ok()) {
    // Only loopback exists here: the error must say what is available.
    EXPECT_THAT(address.status().message(), HasSubstr("available: lo"));
    return;
  }
  EXPECT_NE(*address, "127.0.0.1");
  EXPECT_NE(*address, "::1");
  in6_addr scratch;
  EXPECT_TRUE(::inet_pton(AF_INET, address->c_str(), &scratch) == 1 ||
              ::inet_pton(AF_INET6, address->c_str(), &scratch) == 1);
}

TEST(SelectLocalAddress, UnknownInterfaceListsAvailableOnes) {
  auto address = SelectLocalAddress("nosuchif9", "");
  ASSERT_FALSE(address.ok());
  EXPECT_THAT(address.status().message(), HasSubstr("BRAID_SOCKET_IFNAME=\"nosuchif9\""));
  EXPECT_THAT(address.status().message(), HasSubstr("matches no interface"));
  if (LoopbackIsUp()) {
    EXPECT_THAT(address.status().message(), HasSubstr("lo (127.0.0.1)"));
  }
}

TEST(SelectLocalAddress, RouteToRootAndDefault) {
  auto routed = SelectLocalAddress("", "127.0.0.1");
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(*routed, "127.0.0.1");
  auto fallback = SelectLocalAddress("", "");
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_FALSE(fallback->empty());
}

}  // namespace
}  // namespace braid
