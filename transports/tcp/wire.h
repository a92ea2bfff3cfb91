// On-the-wire formats of the TCP transport: the listen blob, the connection hello and the data
// frame header. All integers are little-endian; every format carries a magic and a version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "transports/transport.h"

namespace braid::tcp {

inline constexpr uint8_t kWireVersion = 3;  // 2: goodbye frames. 3: heartbeat frames.

// ---- Listen blob: where a rank accepts connections. ----
struct ListenAddress {
  std::string ip;  // numeric IPv4 or IPv6 address.
  uint16_t port = 0;
};
Blob EncodeListenBlob(const ListenAddress& address);
absl::StatusOr<ListenAddress> DecodeListenBlob(std::span<const std::byte> blob);

// ---- Hello: first bytes on every socket, both directions (mutual proof of the secret). ----
inline constexpr size_t kHelloBytes = 64;
enum class HelloKind : uint16_t { kDial = 1, kAccept = 2 };
struct Hello {
  HelloKind kind = HelloKind::kDial;
  uint64_t comm_id = 0;
  int32_t from_rank = 0;
  int32_t to_rank = 0;
  uint32_t stream = 0;
  uint32_t nstreams = 0;
  uint64_t proof = 0;  // HelloProof(secret, hello).
};
void EncodeHello(const Hello& hello, std::byte* out);  // writes kHelloBytes.
absl::StatusOr<Hello> DecodeHello(const std::byte* in);
// Keyed hash of the secret with every other hello field: proves knowledge of the secret without
// sending it: SipHash-2-4 keyed by the secret (a 64-bit tag: it keeps out strays and
// misconfigured jobs; it is not a substitute for a secured network).
uint64_t HelloProof(std::span<const std::byte> secret, const Hello& hello);

// ---- Data frame header, followed by seg_len payload bytes. ----
// A message is one or more segments: segment 0 (flag kStart, offset 0) always travels on
// stream 0 in send order, so messages are matched in order; further segments (striping) travel
// on streams 1.. and are placed by (seq, offset).
inline constexpr size_t kFrameHeaderBytes = 48;
inline constexpr uint64_t kMaxMessageBytes = uint64_t{1} << 40;  // 1 TiB sanity bound.
inline constexpr uint8_t kFrameStart = 1;
// Goodbye: the last frame a stream carries when its transport is destroyed (no payload; lengths
// zero). An end of stream after it is a clean close; one without it is a crash. Its tag is 0,
// or 1 + the rank whose failure made the sender give up, so that the receivers blame the rank
// that failed first whatever order the news arrives in.
inline constexpr uint8_t kFrameGoodbye = 2;
// Goodbye tag of a sender that gave up because it found the ranks in different collectives.
inline constexpr uint64_t kGoodbyeMismatch = uint64_t{1} << 32;
// Heartbeat: proof of life sent by the communicator's heartbeat thread when a stream has
// nothing else queued (no payload, lengths and tag zero; any stream, between frames). It
// matches no receive; its only effect is that the peer counts the connection as active.
inline constexpr uint8_t kFrameHeartbeat = 4;
struct FrameHeader {
  uint8_t flags = 0;
  uint64_t seq = 0;        // per connection and direction, counts messages from 0.
  uint64_t tag = 0;
  uint64_t total_len = 0;  // whole message.
  uint64_t offset = 0;     // of this segment within the message.
  uint64_t seg_len = 0;    // payload bytes that follow this header.
};
void EncodeFrameHeader(const FrameHeader& header, std::byte* out);  // writes kFrameHeaderBytes.
// Validates magic, version, flags and lengths; the error says what was wrong (caller adds the
// peer).
absl::StatusOr<FrameHeader> DecodeFrameHeader(const std::byte* in);

}  // namespace braid::tcp
