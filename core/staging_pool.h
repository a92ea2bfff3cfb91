// A pool of equal staging slots carved from one page-aligned buffer, so a transport registers
// the buffer once and copies small messages from unregistered user memory through its slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace braid {

class StagingPool {
 public:
  StagingPool(size_t slot_bytes, size_t slots);
  ~StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  void* base() const { return base_; }
  size_t bytes() const { return slot_bytes_ * slots_; }
  size_t slot_bytes() const { return slot_bytes_; }
  size_t slots() const { return slots_; }
  size_t free_slots() const { return free_.size(); }

  // A free slot's index, or -1 when all are in use (the caller queues and retries on Put).
  int Get();
  void Put(int slot);
  char* slot(int index) const { return static_cast<char*>(base_) + index * slot_bytes_; }

 private:
  size_t slot_bytes_, slots_;
  void* base_ = nullptr;
  std::vector<int> free_;  // LIFO: the most recently used slot is warm in cache.
};

}  // namespace braid
