#include "bootstrap/tcp/wire.h"

#include "core/siphash.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bootstrap/tcp/socket.h"
#include "core/status.h"

namespace braid::bootstrap {
namespace {

void PutLe(std::vector<std::byte>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::byte>(value >> (8 * i)));
}

uint64_t GetLe(const std::byte* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return value;
}

struct Header {
  MessageType type;
  uint32_t length;
};

absl::Status BadBytes(absl::string_view detail) {
  return MakeError(absl::StatusCode::kDataLoss, "bootstrap message rejected", detail);
}

// Validates the 12 header bytes.
absl::StatusOr<Header> DecodeHeader(const std::byte* p, size_t max_payload) {
  if (GetLe(p, 4) != kFrameMagic) return BadBytes("bad magic (not a Braid bootstrap peer)");
  uint8_t version = static_cast<uint8_t>(p[4]);
  if (version != kWireVersion) {
    return BadBytes(absl::StrCat("wire version ", version, ", expected ", kWireVersion,
                                 " (mixed Braid versions?)"));
  }
  uint8_t type = static_cast<uint8_t>(p[5]);
  if (type < static_cast<uint8_t>(MessageType::kChallenge) ||
      type > static_cast<uint8_t>(MessageType::kShrinkResult)) {
    return BadBytes(absl::StrCat("unknown message type ", type));
  }
  if (GetLe(p + 6, 2) != 0) return BadBytes("non-zero reserved header bits");
  uint32_t length = static_cast<uint32_t>(GetLe(p + 8, 4));
  if (length > max_payload) {
    return BadBytes(absl::StrCat(MessageTypeName(static_cast<MessageType>(type)), " of ", length,
                                 " bytes exceeds the limit of ", max_payload));
  }
  return Header{static_cast<MessageType>(type), length};
}

}  // namespace

absl::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kChallenge:
      return "challenge";
    case MessageType::kProof:
      return "proof";
    case MessageType::kHello:
      return "hello";
    case MessageType::kWelcome:
      return "welcome";
    case MessageType::kError:
      return "error";
    case MessageType::kGather:
      return "gather";
    case MessageType::kGatherResult:
      return "gather result";
    case MessageType::kBye:
      return "bye";
    case MessageType::kShrinkJoin:
      return "shrink join";
    case MessageType::kShrinkResult:
      return "shrink result";
  }
  return "unknown";
}

std::vector<std::byte> EncodeFrame(MessageType type, std::span<const std::byte> payload) {
  std::vector<std::byte> out;
  out.reserve(kFrameHeaderBytes + payload.size());
  PutLe(out, kFrameMagic, 4);
  PutLe(out, kWireVersion, 1);
  PutLe(out, static_cast<uint8_t>(type), 1);
  PutLe(out, 0, 2);
  PutLe(out, payload.size(), 4);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

void FrameParser::Append(std::span<const std::byte> bytes) {
  if (consumed_ > 0 && consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

absl::StatusOr<std::optional<Frame>> FrameParser::Next(size_t max_payload) {
  if (buffered() < kFrameHeaderBytes) return std::optional<Frame>();
  BRAID_ASSIGN_OR_RETURN(Header header, DecodeHeader(buffer_.data() + consumed_, max_payload));
  if (buffered() < kFrameHeaderBytes + header.length) return std::optional<Frame>();
  const std::byte* begin = buffer_.data() + consumed_ + kFrameHeaderBytes;
  Frame frame{header.type, std::vector<std::byte>(begin, begin + header.length)};
  consumed_ += kFrameHeaderBytes + header.length;
  if (consumed_ > (1u << 16) && consumed_ * 2 > buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  return std::optional<Frame>(std::move(frame));
}

absl::Status SendFrame(int fd, MessageType type, std::span<const std::byte> payload,
                       Deadline deadline, absl::string_view what) {
  std::vector<std::byte> frame = EncodeFrame(type, payload);
  return WriteFully(fd, frame, deadline, what);
}

absl::StatusOr<Frame> ReceiveFrame(int fd, size_t max_payload, Deadline deadline,
                                   absl::string_view what) {
  std::byte header_bytes[kFrameHeaderBytes];
  BRAID_RETURN_IF_ERROR(ReadFully(fd, header_bytes, deadline, what));
  absl::StatusOr<Header> header = DecodeHeader(header_bytes, max_payload);
  if (!header.ok()) {
    return MakeError(absl::StatusCode::kDataLoss, absl::StrCat("receiving ", what),
                     header.status().message());
  }
  Frame frame{header->type, std::vector<std::byte>(header->length)};
  BRAID_RETURN_IF_ERROR(ReadFully(fd, frame.payload, deadline, what));
  return frame;
}

WireWriter& WireWriter::U32(uint32_t value) {
  PutLe(data_, value, 4);
  return *this;
}
WireWriter& WireWriter::U64(uint64_t value) {
  PutLe(data_, value, 8);
  return *this;
}
WireWriter& WireWriter::Raw(std::span<const std::byte> bytes) {
  data_.insert(data_.end(), bytes.begin(), bytes.end());
  return *this;
}
WireWriter& WireWriter::Bytes(std::span<const std::byte> bytes) {
  U32(static_cast<uint32_t>(bytes.size()));
  return Raw(bytes);
}
WireWriter& WireWriter::String(absl::string_view text) {
  return Bytes(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

bool WireReader::U32(uint32_t* value) {
  if (data_.size() - offset_ < 4) return false;
  *value = static_cast<uint32_t>(GetLe(data_.data() + offset_, 4));
  offset_ += 4;
  return true;
}
bool WireReader::U64(uint64_t* value) {
  if (data_.size() - offset_ < 8) return false;
  *value = GetLe(data_.data() + offset_, 8);
  offset_ += 8;
  return true;
}
bool WireReader::Raw(size_t length, std::span<const std::byte>* out) {
  if (data_.size() - offset_ < length) return false;
  *out = data_.subspan(offset_, length);
  offset_ += length;
  return true;
}
bool WireReader::Bytes(size_t max_length, std::vector<std::byte>* out) {
  uint32_t length = 0;
  std::span<const std::byte> raw;
  if (!U32(&length) || length > max_length || !Raw(length, &raw)) return false;
  out->assign(raw.begin(), raw.end());
  return true;
}
bool WireReader::String(size_t max_length, std::string* out) {
  uint32_t length = 0;
  std::span<const std::byte> raw;
  if (!U32(&length) || length > max_length || !Raw(length, &raw)) return false;
  out->assign(reinterpret_cast<const char*>(raw.data()), raw.size());
  return true;
}

uint64_t ComputeProof(std::span<const std::byte> secret, std::span<const std::byte> nonce) {
  std::array<std::byte, 16> key{};
  SipKeyFromSecret(secret, key);
  static constexpr absl::string_view kLabel = "braid-bootstrap-proof-v1";
  std::vector<std::byte> message(kLabel.size() + nonce.size());
  std::memcpy(message.data(), kLabel.data(), kLabel.size());
  std::memcpy(message.data() + kLabel.size(), nonce.data(), nonce.size());
  return SipHash24(key, message);
}

}  // namespace braid::bootstrap
