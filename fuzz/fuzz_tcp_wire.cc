// libFuzzer target: every decoder of the TCP transport's wire (listen blob, hello, frame
// header). Whatever decodes must re-encode to the same meaning.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "transports/tcp/wire.h"

using namespace braid::tcp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  if (auto address = DecodeListenBlob(bytes); address.ok()) {
    braid::Blob again = EncodeListenBlob(*address);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();
  }
  if (size >= kHelloBytes) {
    if (auto hello = DecodeHello(bytes.data()); hello.ok()) {
      std::byte out[kHelloBytes];
      EncodeHello(*hello, out);
      auto again = DecodeHello(out);
      if (!again.ok() || again->comm_id != hello->comm_id || again->proof != hello->proof) {
        __builtin_trap();
      }
    }
  }
  if (size >= kFrameHeaderBytes) {
    if (auto header = DecodeFrameHeader(bytes.data()); header.ok()) {
      // A decoded header's lengths are consistent: the receive path relies on it.
      if (header->seg_len > header->total_len ||
          header->offset > header->total_len - header->seg_len ||
          header->total_len > kMaxMessageBytes) {
        __builtin_trap();
      }
      std::byte out[kFrameHeaderBytes];
      EncodeFrameHeader(*header, out);
      if (std::memcmp(out, data, kFrameHeaderBytes) != 0) __builtin_trap();
    }
  }
  return 0;
}
