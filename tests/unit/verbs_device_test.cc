// Verbs device selection without RDMA hardware: BRAID_IB_HCA parsing and matching (NCCL_IB_HCA
// semantics) and RoCE v2 GID selection over a fake sysfs port directory.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "transports/verbs/verbs_device.h"


namespace braid::verbs {
namespace {

TEST(HcaFilter, EmptySelectsEverything) {
  HcaFilter f = ParseHcaFilter("");
  EXPECT_TRUE(HcaSelected(f, "mlx5_0", 1));
  EXPECT_TRUE(HcaSelected(f, "rxe0", 2));
}

TEST(HcaFilter, PrefixesAndPorts) {
  HcaFilter f = ParseHcaFilter("mlx5_1:2, rxe");
  EXPECT_FALSE(f.exclude);
  EXPECT_FALSE(f.exact);
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_TRUE(HcaSelected(f, "mlx5_1", 2));
  EXPECT_FALSE(HcaSelected(f, "mlx5_1", 1));
  EXPECT_TRUE(HcaSelected(f, "mlx5_10", 2));  // prefix match, as NCCL does.
  EXPECT_TRUE(HcaSelected(f, "rxe0", 1));
  EXPECT_FALSE(HcaSelected(f, "mlx5_0", 2));
}

TEST(HcaFilter, ExactAndExclude) {
  HcaFilter exact = ParseHcaFilter("=mlx5_1");
  EXPECT_TRUE(exact.exact);
  EXPECT_TRUE(HcaSelected(exact, "mlx5_1", 1));
  EXPECT_FALSE(HcaSelected(exact, "mlx5_10", 1));
  HcaFilter exclude = ParseHcaFilter("^mlx5_0:1");
  EXPECT_TRUE(exclude.exclude);
  EXPECT_FALSE(HcaSelected(exclude, "mlx5_0", 1));
  EXPECT_TRUE(HcaSelected(exclude, "mlx5_0", 2));
  EXPECT_TRUE(HcaSelected(exclude, "rxe0", 1));
  HcaFilter both = ParseHcaFilter("^=rxe0");
  EXPECT_TRUE(both.exclude && both.exact);
  EXPECT_FALSE(HcaSelected(both, "rxe0", 1));
  EXPECT_TRUE(HcaSelected(both, "rxe01", 1));
}

TEST(HcaFilter, MalformedPortMatchesNothing) {
  HcaFilter f = ParseHcaFilter("mlx5_0:x");
  EXPECT_FALSE(HcaSelected(f, "mlx5_0", 1));
}

class FakePort {
 public:
  FakePort() {
    dir_ = std::filesystem::temp_directory_path() /
           ("braid_gid_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_ / "gids");
    std::filesystem::create_directories(dir_ / "gid_attrs/types");
  }
  ~FakePort() { std::filesystem::remove_all(dir_); }
  // type empty: an unused entry (sysfs fails to read its type).
  void Add(int index, const std::string& gid, const std::string& type) {
    std::ofstream(dir_ / "gids" / std::to_string(index)) << gid << "\n";
    if (!type.empty()) std::ofstream(dir_ / "gid_attrs/types" / std::to_string(index)) << type << "\n";
  }
  std::string path() const { return dir_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

constexpr char kZero[] = "0000:0000:0000:0000:0000:0000:0000:0000";
constexpr char kLinkLocal[] = "fe80:0000:0000:0000:9072:c4ff:fe72:ebdd";
constexpr char kV4a[] = "0000:0000:0000:0000:0000:ffff:c612:0001";  // 198.18.0.1
constexpr char kV4b[] = "0000:0000:0000:0000:0000:ffff:0a00:0005";  // 10.0.0.5

TEST(RoceGid, PrefersTheV2IPv4MappedGidOfTheDataPathAddress) {
  FakePort port;
  port.Add(0, kLinkLocal, "IB/RoCE v1");
  port.Add(1, kLinkLocal, "RoCE v2");
  port.Add(2, kV4b, "IB/RoCE v1");
  port.Add(3, kV4b, "RoCE v2");
  port.Add(4, kV4a, "IB/RoCE v1");
  port.Add(5, kV4a, "RoCE v2");
  port.Add(6, kZero, "");
  auto chosen = SelectRoceGid(port.path(), "198.18.0.1");
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(*chosen, 5);
  chosen = SelectRoceGid(port.path(), "10.0.0.5");
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(*chosen, 3);
  // Unknown address: the first IPv4-mapped v2 entry beats the link-local one.
  chosen = SelectRoceGid(port.path(), "");
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(*chosen, 3);
}

TEST(RoceGid, TheRxeLayoutPicksIndexOne) {
  // What soft-RoCE on a veth with 198.18.0.1 shows: 0 = link-local, 1 = IPv4-mapped, both v2.
  FakePort port;
  port.Add(0, kLinkLocal, "RoCE v2");
  port.Add(1, kV4a, "RoCE v2");
  port.Add(2, kZero, "");
  auto chosen = SelectRoceGid(port.path(), "198.18.0.1");
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(*chosen, 1);
}

TEST(RoceGid, NoV2EntryIsANamedError) {
  FakePort port;
  port.Add(0, kLinkLocal, "IB/RoCE v1");
  port.Add(1, kZero, "");
  auto chosen = SelectRoceGid(port.path(), "198.18.0.1");
  ASSERT_FALSE(chosen.ok());
  EXPECT_EQ(chosen.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(chosen.status().message()).find("BRAID_IB_GID_INDEX"), std::string::npos)
      << chosen.status();
}

}  // namespace
}  // namespace braid::verbs
