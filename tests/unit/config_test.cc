// The BRAID_* table: defaults, accepted spellings, and a clear error for every malformed value.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/config.h"

namespace braid {
namespace {

absl::StatusOr<Config> Parse(const std::map<std::string, std::string>& env) {
  return ParseConfig([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(Config, DefaultsWhenNothingIsSet) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->transport, "");
  EXPECT_EQ(config->timeout, std::chrono::minutes(5));
  EXPECT_LT(config->spin.count(), 0);  // auto
  EXPECT_EQ(config->chunk_bytes, 0u);
  EXPECT_EQ(config->log_level, LogLevel::kWarn);
}

TEST(Config, ParsesEveryKindOfValue) {
  auto config = Parse({{"BRAID_TRANSPORT", "TCP"},
                       {"BRAID_TIMEOUT", "2.5"},
                       {"BRAID_SPIN_US", "0"},
                       {"BRAID_CHUNK_SIZE", "256K"},
                       {"BRAID_TCP_STREAMS", "4"},
                       {"BRAID_TCP_MIN_STRIPE", "1M"},
                       {"BRAID_TCP_SEND_ZC", "yes"},
                       {"BRAID_DEBUG", "info"},
                       {"BRAID_SOCKET_IFNAME", "^docker,lo"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->transport, "tcp");
  EXPECT_EQ(config->timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(config->spin.count(), 0);
  EXPECT_EQ(config->chunk_bytes, 256u * 1024);
  EXPECT_EQ(config->tcp_streams, 4);
  EXPECT_EQ(config->tcp_min_stripe_bytes, 1u << 20);
  EXPECT_TRUE(config->tcp_send_zc);
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_EQ(config->socket_ifname, "^docker,lo");
}

TEST(Config, MalformedValuesNameTheVariable) {
  const std::map<std::string, std::string> bad[] = {
      {{"BRAID_TIMEOUT", "soon"}},     {{"BRAID_TIMEOUT", "-1"}},
      {{"BRAID_SPIN_US", "-5"}},       {{"BRAID_CHUNK_SIZE", "12Q"}},
      {{"BRAID_CHUNK_SIZE", "512"}},   {{"BRAID_TCP_STREAMS", "17"}},
      {{"BRAID_TCP_SEND_ZC", "maybe"}}, {{"BRAID_DEBUG", "LOUD"}},
  };
  for (const auto& env : bad) {
    auto config = Parse(env);
    const std::string& name = env.begin()->first;
    ASSERT_FALSE(config.ok()) << name << "=" << env.begin()->second << " was accepted";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(name), absl::string_view::npos)
        << config.status().message();
    EXPECT_NE(config.status().message().find("docs/tuning.md"), absl::string_view::npos);
  }
}

TEST(Config, SpinsOnlyWhenEveryLocalRankHasACpu) {
  EXPECT_EQ(SpinForHost(2, 2).count(), 50);
  EXPECT_EQ(SpinForHost(1, 8).count(), 50);
  EXPECT_EQ(SpinForHost(4, 2).count(), 0);
}

TEST(Config, DescribeNamesEveryVariable) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok());
  std::string text = DescribeConfig(*config);
  for (const ConfigVariable& variable : ConfigTable()) {
    EXPECT_NE(text.find(std::string(variable.name)), std::string::npos) << variable.name;
  }
}

TEST(Config, HeartbeatAndCheckMode) {
  auto defaults = Parse({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->heartbeat_timeout, std::chrono::seconds(30));
  EXPECT_FALSE(defaults->debug_check);
  auto config = Parse({{"BRAID_HEARTBEAT_TIMEOUT", "2.5"}, {"BRAID_DEBUG", "info, check"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->heartbeat_timeout, std::chrono::milliseconds(2500));
  EXPECT_TRUE(config->debug_check);
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  auto off = Parse({{"BRAID_HEARTBEAT_TIMEOUT", "0"}, {"BRAID_DEBUG", "CHECK"}});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->heartbeat_timeout.count(), 0);
  EXPECT_EQ(off->log_level, LogLevel::kWarn);
  EXPECT_FALSE(Parse({{"BRAID_HEARTBEAT_TIMEOUT", "-1"}}).ok());
  EXPECT_FALSE(Parse({{"BRAID_DEBUG", "INFO,LOUD"}}).ok());
}

// ofi (libfabric) transport variables.
TEST(Config, ParsesOfiVariables) {
  auto config = Parse({{"BRAID_OFI_PROVIDER", "efa"},
                       {"BRAID_OFI_NICS", "rdmap16s27-rdm,rdmap32s27-rdm"},
                       {"BRAID_OFI_STRICT", "on"},
                       {"BRAID_OFI_MAX_SEGMENT", "64K"},
                       {"BRAID_OFI_MIN_STRIPE", "1M"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ofi_provider, "efa");
  EXPECT_EQ(config->ofi_nics, "rdmap16s27-rdm,rdmap32s27-rdm");
  EXPECT_TRUE(config->ofi_strict);
  EXPECT_EQ(config->ofi_max_segment, 64u << 10);
  EXPECT_EQ(config->ofi_min_stripe_bytes, 1u << 20);
  auto tiny = Parse({{"BRAID_OFI_MAX_SEGMENT", "1K"}});
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(tiny.status().message()).find("BRAID_OFI_MAX_SEGMENT"), std::string::npos);
}

}  // namespace
}  // namespace braid
