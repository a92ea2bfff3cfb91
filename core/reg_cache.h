// Registration cache: remembers which address ranges are registered with an RDMA device so a
// buffer is pinned once, not once per operation. Lookup is by interval (any registration that
// covers the requested range hits), registrations the user asked for (braidCommRegister) stay
// until deregistered, and implicit ones are evicted least-recently-used beyond a byte budget.
// A registration in use by an operation is never dropped under it: eviction skips it and
// invalidation defers its release to the last user. Not thread-safe: its owner serializes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>

#include "absl/status/statusor.h"

namespace braid {

class RegistrationCache {
 public:
  // Registers [base, base + length) and returns the transport's handle (e.g. an ibv_mr*).
  using RegisterFn = std::function<absl::StatusOr<void*>(void* base, size_t length)>;
  using DeregisterFn = std::function<void(void* handle)>;

  struct Entry {
    uintptr_t base = 0;
    size_t length = 0;
    void* handle = nullptr;
    int users = 0;         // operations holding it (Acquire without Release).
    bool pinned = false;   // the user registered it: never evicted.
    bool doomed = false;   // invalidated while in use: released by the last user.
    std::list<Entry*>::iterator lru;  // position among unused implicit entries.
    bool in_lru = false;
    bool covers(uintptr_t start, size_t len) const {
      return start >= base && start + len <= base + length;
    }
  };

  // `budget_bytes` bounds the unused implicit registrations kept; 0 keeps none (each implicit
  // registration is released when its last user is done).
  RegistrationCache(size_t budget_bytes, RegisterFn register_fn, DeregisterFn deregister_fn);
  ~RegistrationCache();  // releases everything.
  RegistrationCache(const RegistrationCache&) = delete;
  RegistrationCache& operator=(const RegistrationCache&) = delete;

  // A registration covering [base, base + length), registering it if none does. The caller
  // holds it until Release.
  absl::StatusOr<Entry*> Acquire(const void* base, size_t length);
  void Release(Entry* entry);

  // A long-lived registration the user asked for; kept until Remove.
  absl::StatusOr<Entry*> AddPinned(void* base, size_t length);
  void Remove(Entry* entry);

  // Drops every registration overlapping the range (e.g. the memory is about to be freed).
  void Invalidate(const void* base, size_t length);

  size_t entries() const { return by_base_.size(); }
  size_t unused_implicit_bytes() const { return unused_bytes_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  Entry* Find(uintptr_t start, size_t length);
  absl::StatusOr<Entry*> Insert(void* base, size_t length, bool pinned);
  void Drop(Entry* entry);  // deregisters and forgets.
  void Unlist(Entry* entry);
  void Trim();              // evicts LRU unused entries beyond the budget.

  size_t budget_;
  RegisterFn register_;
  DeregisterFn deregister_;
  std::multimap<uintptr_t, std::unique_ptr<Entry>> by_base_;
  std::list<Entry*> lru_;   // unused implicit entries, most recently used at the front.
  size_t unused_bytes_ = 0;
  size_t longest_ = 0;      // longest entry ever: bounds the backward interval scan.
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace braid
