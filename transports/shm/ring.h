// The shared-memory layout of the shm transport: one ring per direction of each peer pair, in a
// memfd the producer (sender) creates and passes to the consumer over the pair's unix socket.
//
// A ring is kSlots fixed-size slots, each a cache-line header followed by inline payload. The
// producer fills the slot at `tail`, then publishes it by advancing `tail` (release); the
// consumer handles the slot at `head` and frees it by advancing `head` (release). The two
// counters and the two sleep flags each live on their own cache line, so the producer and the
// consumer never write to the same line in the steady state.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace braid::shm {

inline constexpr size_t kCacheLine = 64;
inline constexpr uint32_t kSlots = 64;
inline constexpr size_t kSlotBytes = 32 << 10;  // header + inline payload.
inline constexpr uint64_t kRingMagic = 0x4252414944534852ull;  // "BRAIDSHR"

// What a slot carries.
enum class SlotKind : uint32_t {
  kEager = 1,  // a segment of a message copied through the ring (offset 0 starts it).
  kRndv = 2,   // a large message the consumer reads straight from the producer (CMA).
  kAck = 3,    // the consumer read a kRndv message: the producer's send is complete.
};

struct alignas(kCacheLine) SlotHeader {
  SlotKind kind;
  uint32_t reserved;
  uint64_t tag;
  uint64_t total_len;  // bytes of the whole message.
  uint64_t offset;     // kEager: where this segment goes in the message.
  uint64_t seg_len;    // kEager: payload bytes in this slot.
  uint64_t send_id;    // kRndv, kAck: the producer's id for the send.
  uint64_t address;    // kRndv: the send buffer in the producer's address space.
};
static_assert(sizeof(SlotHeader) == kCacheLine);
inline constexpr size_t kSlotPayload = kSlotBytes - sizeof(SlotHeader);

struct RingControl {
  alignas(kCacheLine) uint64_t magic;
  uint64_t producer_address;  // where the producer mapped this ring (the consumer's CMA probe).
  alignas(kCacheLine) std::atomic<uint64_t> tail;  // written by the producer only.
  alignas(kCacheLine) std::atomic<uint64_t> head;  // written by the consumer only.
  // Set by the consumer before it sleeps; a producer that publishes a slot and finds it set
  // clears it and writes a wake byte on the socket.
  alignas(kCacheLine) std::atomic<uint32_t> consumer_sleeping;
  // Set by a producer that found the ring full before it sleeps; the consumer that frees a
  // slot and finds it set clears it and writes a wake byte.
  alignas(kCacheLine) std::atomic<uint32_t> producer_waiting;
  // Set by the consumer once it proved it can read the producer's memory (process_vm_readv):
  // from then on the producer may send large messages by reference (kRndv).
  alignas(kCacheLine) std::atomic<uint32_t> consumer_reads_producer;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

struct Ring {
  RingControl control;
  alignas(kCacheLine) unsigned char slots[kSlots][kSlotBytes];

  SlotHeader* slot(uint64_t index) {
    return reinterpret_cast<SlotHeader*>(slots[index % kSlots]);
  }
  static unsigned char* payload(SlotHeader* header) {
    return reinterpret_cast<unsigned char*>(header) + sizeof(SlotHeader);
  }
};

inline constexpr size_t kRingBytes = (sizeof(Ring) + 4095) / 4096 * 4096;

}  // namespace braid::shm
