// Bootstrap wire format: framed, versioned messages between ranks and the rendezvous root, the
// little-endian codec they are written with, and the keyed hash that proves the secret.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/deadline.h"

namespace braid::bootstrap {

// Every frame: magic "BRDB" (u32 LE 0x42445242), version u8, type u8, reserved u16 (0),
// payload length u32, then the payload.
inline constexpr uint32_t kFrameMagic = 0x42445242;
inline constexpr uint8_t kWireVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 12;

enum class MessageType : uint8_t {
  kChallenge = 1,     // root -> rank: 16-byte nonce.
  kProof = 2,         // rank -> root: u64 SipHash-2-4(secret, label || nonce).
  kHello = 3,         // rank -> root: u32 rank, u32 nranks, string hostname.
  kWelcome = 4,       // root -> rank: u32 nranks, nranks x string hostname.
  kError = 5,         // root -> rank: string text; the root closes the connection after it.
  kGather = 6,        // rank -> root: u64 round, bytes blob.
  kGatherResult = 7,  // root -> rank: u64 round, u32 count, count x bytes blob.
  kBye = 8,           // rank -> root: empty; the rank is done with the rendezvous.
  // Shrink agreement (bootstrap/recovery.cc), between a survivor and the coordinator, after
  // the usual challenge and proof:
  kShrinkJoin = 9,    // survivor -> coordinator: u32 rank, u32 count, count x u32 failed rank.
  kShrinkResult = 10, // coordinator -> survivor: string root host, u32 port, bytes nonce,
                      // u32 count, count x u32 member (old ranks, in new rank order).
};
absl::string_view MessageTypeName(MessageType type);

inline constexpr size_t kNonceBytes = 16;
inline constexpr size_t kSecretBytes = 16;
inline constexpr size_t kMaxHostnameBytes = 255;
inline constexpr size_t kMaxErrorBytes = 4096;
inline constexpr size_t kMaxBlobBytes = 1 << 20;             // one AllGather contribution.
inline constexpr size_t kMaxGatherResultBytes = 1ull << 30;  // one AllGather result.
inline constexpr int kMaxRanks = 1 << 20;

struct Frame {
  MessageType type{};
  std::vector<std::byte> payload;
};

// Header + payload as one buffer ready to send.
std::vector<std::byte> EncodeFrame(MessageType type, std::span<const std::byte> payload);

// Incremental decoder for a byte stream (the root's non-blocking connections). Rejects a bad
// magic, version or type and any payload longer than `max_payload` as soon as the header
// arrives, so an oversized claim never makes the root buffer it.
class FrameParser {
 public:
  void Append(std::span<const std::byte> bytes);
  // The next complete frame, nullopt if more bytes are needed, or an error for bad bytes.
  absl::StatusOr<std::optional<Frame>> Next(size_t max_payload);
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::vector<std::byte> buffer_;
  size_t consumed_ = 0;
};

// Blocking, deadline-bounded frame I/O on a non-blocking socket (the rank side).
absl::Status SendFrame(int fd, MessageType type, std::span<const std::byte> payload,
                       Deadline deadline, absl::string_view what);
absl::StatusOr<Frame> ReceiveFrame(int fd, size_t max_payload, Deadline deadline,
                                   absl::string_view what);

// Appends little-endian fields; strings and byte blobs carry a u32 length prefix.
class WireWriter {
 public:
  WireWriter& U32(uint32_t value);
  WireWriter& U64(uint64_t value);
  WireWriter& Raw(std::span<const std::byte> bytes);
  WireWriter& Bytes(std::span<const std::byte> bytes);
  WireWriter& String(absl::string_view text);
  const std::vector<std::byte>& data() const { return data_; }
  std::vector<std::byte> Take() { return std::move(data_); }

 private:
  std::vector<std::byte> data_;
};

// Reads what WireWriter wrote; every getter fails (returns false) instead of reading past the
// end or accepting a length above its bound.
class WireReader {
 public:
  explicit WireReader(std::span<const std::byte> data) : data_(data) {}
  bool U32(uint32_t* value);
  bool U64(uint64_t* value);
  bool Raw(size_t length, std::span<const std::byte>* out);
  bool Bytes(size_t max_length, std::vector<std::byte>* out);
  bool String(size_t max_length, std::string* out);
  bool AtEnd() const { return offset_ == data_.size(); }

 private:
  std::span<const std::byte> data_;
  size_t offset_ = 0;
};


// The proof a rank sends for `nonce`: SipHash-2-4(secret, "braid-bootstrap-proof-v1" || nonce).
// The secret itself never crosses the network.
uint64_t ComputeProof(std::span<const std::byte> secret, std::span<const std::byte> nonce);

}  // namespace braid::bootstrap
