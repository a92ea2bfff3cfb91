// Bootstrap encodings: the 128-byte unique id, SipHash-2-4, framing and the field codec.
#include <array>
#include <cstring>

#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp/wire.h"
#include "core/siphash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid {
namespace {

using ::testing::HasSubstr;

TEST(UniqueIdTest, RoundTripIpv4AndIpv6) {
  for (const char* host : {"10.1.2.3", "fe80::1:2", "::1", "127.0.0.1"}) {
    UniqueId id{host, 29500, {}};
    for (int i = 0; i < 16; ++i) id.secret.push_back(static_cast<std::byte>(i * 13 + 1));
    std::vector<std::byte> bytes = EncodeUniqueId(id);
    ASSERT_EQ(bytes.size(), 128u);
    EXPECT_EQ(std::memcmp(bytes.data(), "BRD1", 4), 0);
    auto decoded = DecodeUniqueId(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->root_host, host);
    EXPECT_EQ(decoded->root_port, 29500);
    EXPECT_EQ(decoded->secret, id.secret);
  }
}

TEST(UniqueIdTest, RejectsBadBytes) {
  UniqueId id{"10.0.0.1", 4000, std::vector<std::byte>(16, std::byte{5})};
  const std::vector<std::byte> good = EncodeUniqueId(id);
  auto expect_bad = [](std::vector<std::byte> bytes, const char* text) {
    auto decoded = DecodeUniqueId(bytes);
    ASSERT_FALSE(decoded.ok()) << text;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(decoded.status().message(), HasSubstr(text));
    EXPECT_THAT(decoded.status().message(), HasSubstr("invalid braid unique id"));
  };
  expect_bad(std::vector<std::byte>(good.begin(), good.begin() + 100), "expected 128 bytes");
  expect_bad(std::vector<std::byte>(128), "bad magic");
  auto b = good;
  b[4] = std::byte{2};
  expect_bad(b, "layout version 2");
  b = good;
  b[5] = std::byte{5};
  expect_bad(b, "unknown address family 5");
  b = good;
  b[100] = std::byte{1};
  expect_bad(b, "reserved byte 100");
  b = good;
  b[6] = b[7] = std::byte{0};
  expect_bad(b, "root port is 0");
  b = good;
  b[20] = std::byte{1};
  expect_bad(b, "IPv4 address field");
  // A host that is not a numeric address cannot be encoded and is caught at decode.
  expect_bad(EncodeUniqueId(UniqueId{"not-an-ip", 1, {}}), "unknown address family 0");
}

// ---- Wire codec ----

TEST(WireTest, SipHashReferenceVectors) {
  std::array<std::byte, 16> key;
  for (int i = 0; i < 16; ++i) key[i] = static_cast<std::byte>(i);
  std::vector<std::byte> message;
  EXPECT_EQ(SipHash24(key, message), 0x726fdb47dd0e0e31ull);
  for (int i = 0; i < 15; ++i) message.push_back(static_cast<std::byte>(i));
  EXPECT_EQ(SipHash24(key, message), 0xa129ca6149be45e5ull);
  // Different secrets give different proofs for the same nonce.
  std::vector<std::byte> nonce(16, std::byte{3});
  EXPECT_NE(bootstrap::ComputeProof(std::vector<std::byte>(16, std::byte{1}), nonce),
            bootstrap::ComputeProof(std::vector<std::byte>(16, std::byte{2}), nonce));
}

TEST(WireTest, FrameParserHandlesSplitsAndRejectsBadHeaders) {
  bootstrap::WireWriter w;
  w.U64(7).String("host").Bytes(std::vector<std::byte>(5, std::byte{1}));
  std::vector<std::byte> frame = bootstrap::EncodeFrame(bootstrap::MessageType::kHello, w.data());
  bootstrap::FrameParser parser;
  for (size_t i = 0; i + 1 < frame.size(); ++i) {
    parser.Append(std::span<const std::byte>(&frame[i], 1));
    auto next = parser.Next(1024);
    ASSERT_TRUE(next.ok());
    EXPECT_FALSE(next->has_value());
  }
  parser.Append(std::span<const std::byte>(&frame.back(), 1));
  auto next = parser.Next(1024);
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->type, bootstrap::MessageType::kHello);
  bootstrap::WireReader r((*next)->payload);
  uint64_t v;
  std::string s;
  std::vector<std::byte> bytes;
  ASSERT_TRUE(r.U64(&v) && r.String(16, &s) && r.Bytes(16, &bytes) && r.AtEnd());
  EXPECT_EQ(v, 7u);
  EXPECT_EQ(s, "host");
  EXPECT_EQ(bytes.size(), 5u);
  // A length above the bound is refused from the header alone.
  bootstrap::FrameParser small;
  small.Append(frame);
  EXPECT_FALSE(small.Next(4).ok());
  bootstrap::FrameParser bad;
  std::vector<std::byte> garbage(12, std::byte{'x'});
  bad.Append(garbage);
  EXPECT_THAT(bad.Next(1024).status().message(), HasSubstr("bad magic"));
  // Readers refuse to read past the end or accept over-long strings.
  bootstrap::WireReader short_reader(std::span<const std::byte>(frame.data(), 3));
  EXPECT_FALSE(short_reader.U32(reinterpret_cast<uint32_t*>(&v)));
  bootstrap::WireReader long_string((*next)->payload);
  ASSERT_TRUE(long_string.U64(&v));
  EXPECT_FALSE(long_string.String(3, &s));
}

}  // namespace
}  // namespace braid
