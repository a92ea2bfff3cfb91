#include "transports/tcp/wire.h"

#include <array>
#include <cstring>

#include "core/siphash.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace braid::tcp {
namespace {

constexpr uint32_t kBlobMagic = 0x42545242;   // "BRTB"
constexpr uint32_t kHelloMagic = 0x48545242;  // "BRTH"
constexpr uint32_t kFrameMagic = 0x46545242;  // "BRTF"

template <typename T>
void Put(std::byte*& p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = std::byte((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
  p += sizeof(T);
}
template <typename T>
T Get(const std::byte*& p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  p += sizeof(T);
  return static_cast<T>(v);
}

}  // namespace

Blob EncodeListenBlob(const ListenAddress& address) {
  Blob blob(4 + 1 + 2 + 1 + address.ip.size());
  std::byte* p = blob.data();
  Put<uint32_t>(p, kBlobMagic);
  Put<uint8_t>(p, kWireVersion);
  Put<uint16_t>(p, address.port);
  Put<uint8_t>(p, static_cast<uint8_t>(address.ip.size()));
  std::memcpy(p, address.ip.data(), address.ip.size());
  return blob;
}

absl::StatusOr<ListenAddress> DecodeListenBlob(std::span<const std::byte> blob) {
  if (blob.size() < 8) {
    return absl::InvalidArgumentError(absl::StrCat("tcp listen blob too short (", blob.size(), " bytes)"));
  }
  const std::byte* p = blob.data();
  uint32_t magic = Get<uint32_t>(p);
  uint8_t version = Get<uint8_t>(p);
  if (magic != kBlobMagic || version != kWireVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tcp listen blob has magic 0x", absl::Hex(magic), " version ", version,
        " (expected 0x", absl::Hex(kBlobMagic), " version ", kWireVersion,
        "): mixed Braid versions or a different transport on the peer"));
  }
  ListenAddress address;
  address.port = Get<uint16_t>(p);
  size_t n = Get<uint8_t>(p);
  if (blob.size() != 8 + n) return absl::InvalidArgumentError("tcp listen blob has a bad length");
  address.ip.assign(reinterpret_cast<const char*>(p), n);
  return address;
}

void EncodeHello(const Hello& hello, std::byte* out) {
  std::memset(out, 0, kHelloBytes);
  std::byte* p = out;
  Put<uint32_t>(p, kHelloMagic);
  Put<uint16_t>(p, kWireVersion);
  Put<uint16_t>(p, static_cast<uint16_t>(hello.kind));
  Put<uint64_t>(p, hello.comm_id);
  Put<uint32_t>(p, static_cast<uint32_t>(hello.from_rank));
  Put<uint32_t>(p, static_cast<uint32_t>(hello.to_rank));
  Put<uint32_t>(p, hello.stream);
  Put<uint32_t>(p, hello.nstreams);
  Put<uint64_t>(p, hello.proof);
}

absl::StatusOr<Hello> DecodeHello(const std::byte* in) {
  const std::byte* p = in;
  uint32_t magic = Get<uint32_t>(p);
  uint16_t version = Get<uint16_t>(p);
  if (magic != kHelloMagic) return absl::InvalidArgumentError("not a Braid tcp hello (bad magic)");
  if (version != kWireVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("Braid tcp hello version ", version, ", expected ", kWireVersion));
  }
  Hello hello;
  uint16_t kind = Get<uint16_t>(p);
  if (kind != 1 && kind != 2) return absl::InvalidArgumentError("bad hello kind");
  hello.kind = static_cast<HelloKind>(kind);
  hello.comm_id = Get<uint64_t>(p);
  hello.from_rank = static_cast<int32_t>(Get<uint32_t>(p));
  hello.to_rank = static_cast<int32_t>(Get<uint32_t>(p));
  hello.stream = Get<uint32_t>(p);
  hello.nstreams = Get<uint32_t>(p);
  hello.proof = Get<uint64_t>(p);
  return hello;
}

uint64_t HelloProof(std::span<const std::byte> secret, const Hello& hello) {
  // Message = a label and every hello field but the proof, so a proof cannot be replayed for
  // another communicator, rank pair or stream.
  std::array<std::byte, 16> key;
  SipKeyFromSecret(secret, key);
  static constexpr char kLabel[8] = {'b', 'r', 'd', 'h', 'e', 'l', 'o', '2'};
  uint64_t words[5] = {0, hello.comm_id, static_cast<uint64_t>(hello.kind),
                       (static_cast<uint64_t>(static_cast<uint32_t>(hello.from_rank)) << 32) |
                           static_cast<uint32_t>(hello.to_rank),
                       (static_cast<uint64_t>(hello.stream) << 32) | hello.nstreams};
  std::memcpy(&words[0], kLabel, sizeof(kLabel));
  return SipHash24(key, std::as_bytes(std::span(words)));
}

void EncodeFrameHeader(const FrameHeader& h, std::byte* out) {
  std::byte* p = out;
  Put<uint32_t>(p, kFrameMagic);
  Put<uint8_t>(p, kWireVersion);
  Put<uint8_t>(p, h.flags);
  Put<uint16_t>(p, 0);
  Put<uint64_t>(p, h.seq);
  Put<uint64_t>(p, h.tag);
  Put<uint64_t>(p, h.total_len);
  Put<uint64_t>(p, h.offset);
  Put<uint64_t>(p, h.seg_len);
}

absl::StatusOr<FrameHeader> DecodeFrameHeader(const std::byte* in) {
  const std::byte* p = in;
  uint32_t magic = Get<uint32_t>(p);
  uint8_t version = Get<uint8_t>(p);
  FrameHeader h;
  h.flags = Get<uint8_t>(p);
  uint16_t reserved = Get<uint16_t>(p);
  if (magic != kFrameMagic) {
    return absl::DataLossError(absl::StrCat("frame header has bad magic 0x", absl::Hex(magic),
                                            " (stream desynchronized or corrupted)"));
  }
  if (version != kWireVersion) {
    return absl::DataLossError(absl::StrCat("frame header version ", version, ", expected ",
                                            kWireVersion, " (mixed Braid versions)"));
  }
  if ((h.flags != 0 && h.flags != kFrameStart && h.flags != kFrameGoodbye &&
       h.flags != kFrameHeartbeat) ||
      reserved != 0) {
    return absl::DataLossError(absl::StrCat("frame header has unknown flags 0x",
                                            absl::Hex(h.flags)));
  }
  h.seq = Get<uint64_t>(p);
  h.tag = Get<uint64_t>(p);
  h.total_len = Get<uint64_t>(p);
  h.offset = Get<uint64_t>(p);
  h.seg_len = Get<uint64_t>(p);
  if (h.total_len > kMaxMessageBytes || h.seg_len > h.total_len ||
      h.offset > h.total_len - h.seg_len || ((h.flags & kFrameStart) && h.offset != 0)) {
    return absl::DataLossError(absl::StrCat("frame header has inconsistent lengths (total ",
                                            h.total_len, ", offset ", h.offset, ", segment ",
                                            h.seg_len, ")"));
  }
  if (h.flags == kFrameGoodbye && (h.total_len != 0 || (h.tag > (uint64_t{1} << 31) &&
                                                         h.tag != kGoodbyeMismatch))) {
    return absl::DataLossError("goodbye frame with a payload or a bad rank");
  }
  if (h.flags == kFrameHeartbeat && (h.total_len != 0 || h.tag != 0)) {
    return absl::DataLossError("heartbeat frame with a payload or a tag");
  }
  return h;
}

}  // namespace braid::tcp
