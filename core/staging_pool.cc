#include "core/staging_pool.h"

#include <cstdlib>
#include <new>

namespace braid {

StagingPool::StagingPool(size_t slot_bytes, size_t slots) : slot_bytes_(slot_bytes), slots_(slots) {
  size_t bytes = (slot_bytes * slots + 4095) / 4096 * 4096;
  base_ = std::aligned_alloc(4096, bytes == 0 ? 4096 : bytes);
  if (base_ == nullptr) throw std::bad_alloc();
  free_.reserve(slots);
  for (size_t i = slots; i > 0; --i) free_.push_back(static_cast<int>(i - 1));
}

StagingPool::~StagingPool() { std::free(base_); }

int StagingPool::Get() {
  if (free_.empty()) return -1;
  int slot = free_.back();
  free_.pop_back();
  return slot;
}

void StagingPool::Put(int slot) { free_.push_back(slot); }

}  // namespace braid
