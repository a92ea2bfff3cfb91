// ChooseTransport with host names: shm on one host, hybrid when ranks share some hosts, the
// network transport when every rank is alone, BRAID_TRANSPORT overriding (shm refusing hosts).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "transports/transport.h"

namespace braid {
namespace {

std::string Chosen(const Config& config, const std::vector<std::string>& hosts) {
  auto entry = ChooseTransport(config, hosts);
  return entry.ok() ? (*entry)->name : std::string(entry.status().message());
}

TEST(TransportChoice, FollowsTheHostLayout) {
  Config config;
  EXPECT_EQ(Chosen(config, {"a", "a", "a"}), "shm");
  EXPECT_EQ(Chosen(config, {"a"}), "tcp");  // alone: nothing to share, no reason for shm.
  EXPECT_EQ(Chosen(config, {"a", "b", "c"}), "tcp");
  EXPECT_EQ(Chosen(config, {"a", "a", "b"}), "hybrid");
  EXPECT_EQ(Chosen(config, {"b", "a", "b", "a"}), "hybrid");
  EXPECT_EQ(Chosen(config, {}), "tcp");  // layout unknown: never host-local.
}

TEST(TransportChoice, BraidTransportOverrides) {
  Config config;
  config.transport = "tcp";
  EXPECT_EQ(Chosen(config, {"a", "a"}), "tcp");
  config.transport = "shm";
  EXPECT_EQ(Chosen(config, {"a", "a"}), "shm");
  auto refused = ChooseTransport(config, std::vector<std::string>{"a", "a", "b"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(refused.status().message()).find("2 hosts"), std::string::npos)
      << refused.status();
  config.transport = "hybrid";
  EXPECT_EQ(Chosen(config, {"a", "b"}), "hybrid");
}

}  // namespace
}  // namespace braid
