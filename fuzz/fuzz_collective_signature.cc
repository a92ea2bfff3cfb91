// libFuzzer target: the collective signature of the BRAID_DEBUG=CHECK agreement round, and
// the tag fields every transport decodes for mismatch detection.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "collectives/context.h"

using namespace braid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  uint64_t sequence = 0;
  if (auto signature = DecodeSignature(bytes, &sequence); signature.ok()) {
    std::string text = DescribeSignature(*signature);  // any field values: described, not trusted.
    auto again = EncodeSignature(*signature, sequence);
    uint64_t sequence2 = 0;
    auto decoded = DecodeSignature(again, &sequence2);
    if (!decoded.ok() || sequence2 != sequence || decoded->count != signature->count ||
        decoded->name != signature->name || text.empty()) {
      __builtin_trap();
    }
  }
  if (size >= 16) {
    uint64_t a, b;
    std::memcpy(&a, data, 8);
    std::memcpy(&b, data + 8, 8);
    bool conflict = TagsConflict(a, b);
    if (conflict != TagsConflict(b, a)) __builtin_trap();  // symmetric.
    if (conflict && TagConflictError("fuzz", 0, "rank 1 (host h)", a, b).message().empty()) {
      __builtin_trap();
    }
  }
  return 0;
}
