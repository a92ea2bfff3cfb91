// SipHash-2-4 (Aumasson & Bernstein): the keyed hash with which ranks prove they know the
// communicator's secret without sending it (bootstrap challenge, transport hellos).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace braid {

uint64_t SipHash24(std::span<const std::byte, 16> key, std::span<const std::byte> message);

// A 16-byte key from a secret of any length: copied when it is 16 bytes, folded otherwise.
void SipKeyFromSecret(std::span<const std::byte> secret, std::span<std::byte, 16> key);

}  // namespace braid
