// libFuzzer target: the bootstrap's stream decoder (frames split at arbitrary points) and the
// payload schemas the root and the ranks read with it, plus the unique id and the recovery
// listener address.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "bootstrap/recovery.h"
#include "bootstrap/tcp/wire.h"

using namespace braid;
using namespace braid::bootstrap;

namespace {

// Reads a payload the way the root and the ranks do for its type; must never crash.
void ReadPayload(const Frame& frame) {
  WireReader r(frame.payload);
  uint32_t a = 0, b = 0;
  uint64_t u = 0;
  std::string text;
  std::vector<std::byte> blob;
  switch (frame.type) {
    case MessageType::kProof: r.U64(&u); break;
    case MessageType::kHello: r.U32(&a) && r.U32(&b) && r.String(kMaxHostnameBytes, &text); break;
    case MessageType::kWelcome:
      if (r.U32(&a)) {
        for (uint32_t i = 0; i < a && r.String(kMaxHostnameBytes, &text); ++i) {}
      }
      break;
    case MessageType::kError: r.String(kMaxErrorBytes, &text); break;
    case MessageType::kGather: r.U64(&u) && r.Bytes(kMaxBlobBytes, &blob); break;
    case MessageType::kGatherResult:
      if (r.U64(&u) && r.U32(&a)) {
        for (uint32_t i = 0; i < a && r.Bytes(kMaxBlobBytes, &blob); ++i) {}
      }
      break;
    case MessageType::kShrinkJoin:
      if (r.U32(&a) && r.U32(&b)) {
        for (uint32_t i = 0; i < b && r.U32(&a); ++i) {}
      }
      break;
    case MessageType::kShrinkResult:
      if (r.String(255, &text) && r.U32(&a) && r.Bytes(64, &blob) && r.U32(&b)) {
        for (uint32_t i = 0; i < b && r.U32(&a); ++i) {}
      }
      break;
    default: break;
  }
  r.AtEnd();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  // The first byte chooses where the stream is split, so partial headers are exercised too.
  size_t split = size ? data[0] % (size + 1) : 0;
  FrameParser parser;
  parser.Append(bytes.subspan(0, split));
  for (int pass = 0; pass < 2; ++pass) {
    while (true) {
      auto frame = parser.Next(1 << 16);
      if (!frame.ok() || !frame->has_value()) break;
      ReadPayload(**frame);
    }
    if (pass == 0) parser.Append(bytes.subspan(split));
  }
  if (auto id = DecodeUniqueId(bytes); id.ok()) {
    auto again = DecodeUniqueId(EncodeUniqueId(*id));
    if (!again.ok() || again->root_port != id->root_port || again->secret != id->secret) {
      __builtin_trap();
    }
  }
  if (auto address = DecodeRecoveryBlob(bytes); address.ok()) {
    Blob again = EncodeRecoveryBlob(address->first, address->second);
    if (again.size() != size) __builtin_trap();
  }
  return 0;
}
