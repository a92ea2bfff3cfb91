// braidUniqueId encoding: 128 bytes, versioned.
//   [0,4)   magic "BRD1"
//   [4]     layout version (1)
//   [5]     address family: 4 (IPv4) or 6 (IPv6)
//   [6,8)   root port, big-endian
//   [8,24)  root address (IPv4 uses the first 4 bytes, the rest zero)
//   [24,40) 16-byte secret
//   [40,128) zero
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bootstrap/bootstrap.h"
#include "core/status.h"

namespace braid {
namespace {

constexpr size_t kIdBytes = 128;
constexpr char kMagic[4] = {'B', 'R', 'D', '1'};
constexpr uint8_t kLayoutVersion = 1;
constexpr size_t kSecretOffset = 24;
constexpr size_t kSecretBytes = 16;
constexpr size_t kUsedBytes = 40;

absl::Status Bad(absl::string_view detail) {
  return MakeError(absl::StatusCode::kInvalidArgument, "invalid braid unique id", detail,
                   "pass every rank the exact bytes braidGetUniqueId returned on one process");
}

}  // namespace

std::vector<std::byte> EncodeUniqueId(const UniqueId& id) {
  std::vector<std::byte> out(kIdBytes);
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(p, kMagic, 4);
  p[4] = kLayoutVersion;
  // A host that is not a numeric address leaves family 0, which DecodeUniqueId rejects.
  if (::inet_pton(AF_INET, id.root_host.c_str(), p + 8) == 1) {
    p[5] = 4;
  } else if (::inet_pton(AF_INET6, id.root_host.c_str(), p + 8) == 1) {
    p[5] = 6;
  }
  p[6] = static_cast<unsigned char>(id.root_port >> 8);
  p[7] = static_cast<unsigned char>(id.root_port & 0xff);
  if (!id.secret.empty()) {
    std::memcpy(p + kSecretOffset, id.secret.data(), std::min(id.secret.size(), kSecretBytes));
  }
  return out;
}

absl::StatusOr<UniqueId> DecodeUniqueId(std::span<const std::byte> bytes) {
  if (bytes.size() != kIdBytes) {
    return Bad(absl::StrCat("expected ", kIdBytes, " bytes, got ", bytes.size()));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (std::memcmp(p, kMagic, 4) != 0) {
    return Bad("bad magic (expected \"BRD1\"; uninitialized or corrupted id?)");
  }
  if (p[4] != kLayoutVersion) {
    return Bad(absl::StrCat("layout version ", p[4], " is not supported (this Braid reads ",
                            kLayoutVersion, "; mixed Braid versions?)"));
  }
  UniqueId id;
  char text[INET6_ADDRSTRLEN] = {};
  if (p[5] == 4) {
    for (size_t i = 12; i < 24; ++i) {
      if (p[i] != 0) return Bad("IPv4 address field has non-zero padding");
    }
    ::inet_ntop(AF_INET, p + 8, text, sizeof(text));
  } else if (p[5] == 6) {
    ::inet_ntop(AF_INET6, p + 8, text, sizeof(text));
  } else {
    return Bad(absl::StrCat("unknown address family ", p[5], " (expected 4 or 6)"));
  }
  id.root_host = text;
  id.root_port = static_cast<uint16_t>((p[6] << 8) | p[7]);
  if (id.root_port == 0) return Bad("root port is 0");
  for (size_t i = kUsedBytes; i < kIdBytes; ++i) {
    if (p[i] != 0) return Bad(absl::StrCat("reserved byte ", i, " is not zero"));
  }
  id.secret.assign(bytes.begin() + kSecretOffset, bytes.begin() + kSecretOffset + kSecretBytes);
  return id;
}

}  // namespace braid
