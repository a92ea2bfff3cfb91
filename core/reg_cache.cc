#include "core/reg_cache.h"

#include <algorithm>
#include <vector>

namespace braid {

RegistrationCache::RegistrationCache(size_t budget_bytes, RegisterFn register_fn,
                                     DeregisterFn deregister_fn)
    : budget_(budget_bytes), register_(std::move(register_fn)),
      deregister_(std::move(deregister_fn)) {}

RegistrationCache::~RegistrationCache() {
  for (auto& [base, entry] : by_base_) deregister_(entry->handle);
}

RegistrationCache::Entry* RegistrationCache::Find(uintptr_t start, size_t length) {
  // Entries start at or before `start`; none longer than longest_ can reach it, so the scan
  // stops at start - longest_.
  auto it = by_base_.upper_bound(start);
  while (it != by_base_.begin()) {
    --it;
    Entry* entry = it->second.get();
    if (start - entry->base > longest_) break;
    if (!entry->doomed && entry->covers(start, length)) return entry;
  }
  return nullptr;
}

absl::StatusOr<RegistrationCache::Entry*> RegistrationCache::Insert(void* base, size_t length,
                                                                    bool pinned) {
  auto handle = register_(base, length);
  if (!handle.ok()) {
    // Out of pinnable memory is often only our own cache's doing: drop it and retry once.
    if (unused_bytes_ == 0) return handle.status();
    size_t saved = budget_;
    budget_ = 0;
    Trim();
    budget_ = saved;
    handle = register_(base, length);
    if (!handle.ok()) return handle.status();
  }
  auto entry = std::make_unique<Entry>();
  entry->base = reinterpret_cast<uintptr_t>(base);
  entry->length = length;
  entry->handle = *handle;
  entry->pinned = pinned;
  longest_ = std::max(longest_, length);
  Entry* raw = entry.get();
  by_base_.emplace(raw->base, std::move(entry));
  return raw;
}

absl::StatusOr<RegistrationCache::Entry*> RegistrationCache::Acquire(const void* base,
                                                                     size_t length) {
  uintptr_t start = reinterpret_cast<uintptr_t>(base);
  Entry* entry = Find(start, length);
  if (entry != nullptr) {
    ++hits_;
    Unlist(entry);
  } else {
    ++misses_;
    auto inserted = Insert(const_cast<void*>(base), length, /*pinned=*/false);
    if (!inserted.ok()) return inserted.status();
    entry = *inserted;
  }
  ++entry->users;
  return entry;
}

void RegistrationCache::Release(Entry* entry) {
  if (--entry->users > 0) return;
  if (entry->doomed) return Drop(entry);
  if (entry->pinned) return;
  lru_.push_front(entry);
  entry->lru = lru_.begin();
  entry->in_lru = true;
  unused_bytes_ += entry->length;
  Trim();
}

absl::StatusOr<RegistrationCache::Entry*> RegistrationCache::AddPinned(void* base,
                                                                       size_t length) {
  return Insert(base, length, /*pinned=*/true);
}

void RegistrationCache::Remove(Entry* entry) {
  if (entry->users > 0) {
    entry->doomed = true;
    return;
  }
  Drop(entry);
}

void RegistrationCache::Invalidate(const void* base, size_t length) {
  uintptr_t start = reinterpret_cast<uintptr_t>(base), end = start + length;
  std::vector<Entry*> overlapping;
  for (auto& [entry_base, entry] : by_base_) {
    if (entry_base >= end) break;
    if (entry_base + entry->length > start) overlapping.push_back(entry.get());
  }
  for (Entry* entry : overlapping) Remove(entry);
}

void RegistrationCache::Unlist(Entry* entry) {
  if (!entry->in_lru) return;
  lru_.erase(entry->lru);
  entry->in_lru = false;
  unused_bytes_ -= entry->length;
}

void RegistrationCache::Drop(Entry* entry) {
  Unlist(entry);
  deregister_(entry->handle);
  auto [first, last] = by_base_.equal_range(entry->base);
  for (auto it = first; it != last; ++it) {
    if (it->second.get() == entry) {
      by_base_.erase(it);
      break;
    }
  }
}

void RegistrationCache::Trim() {
  while (unused_bytes_ > budget_ && !lru_.empty()) Drop(lru_.back());
}

}  // namespace braid
