// Registration cache and staging pool: interval hits, LRU eviction within the byte budget,
// pinned (user) registrations, deferred invalidation of registrations in use, retry after
// out-of-memory. Registrations are recorded by fake register/deregister functions.
#include "core/reg_cache.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "core/staging_pool.h"

namespace braid {
namespace {

struct FakeDevice {
  std::set<std::pair<uintptr_t, size_t>> live;
  int registrations = 0;
  size_t limit = SIZE_MAX;  // pinnable bytes.
  size_t pinned() const {
    size_t total = 0;
    for (auto& [b, l] : live) total += l;
    return total;
  }
  RegistrationCache Make(size_t budget) {
    return RegistrationCache(
        budget,
        [this](void* base, size_t length) -> absl::StatusOr<void*> {
          if (pinned() + length > limit) return absl::ResourceExhaustedError("memlock");
          ++registrations;
          live.insert({reinterpret_cast<uintptr_t>(base), length});
          return reinterpret_cast<void*>(new std::pair<uintptr_t, size_t>(
              reinterpret_cast<uintptr_t>(base), length));
        },
        [this](void* handle) {
          auto* key = static_cast<std::pair<uintptr_t, size_t>*>(handle);
          EXPECT_EQ(live.erase(*key), 1u);
          delete key;
        });
  }
};

std::byte arena[1 << 20];
std::byte* At(size_t offset) { return arena + offset; }

TEST(RegistrationCache, CoveringRegistrationHitsAnySubrange) {
  FakeDevice dev;
  auto cache = dev.Make(1 << 20);
  auto big = cache.Acquire(At(4096), 65536);
  ASSERT_TRUE(big.ok());
  cache.Release(*big);
  // Single bytes at the start, inside and at the very end, and the whole range.
  for (auto [off, len] : std::vector<std::pair<size_t, size_t>>{
           {4096, 1}, {4097, 1}, {4096 + 65535, 1}, {4096, 65536}}) {
    auto e = cache.Acquire(At(off), len);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(*e, *big) << off;
    cache.Release(*e);
  }
  EXPECT_EQ(dev.registrations, 1);
  // One byte past the end is not covered: a new registration.
  auto past = cache.Acquire(At(4096), 65537);
  ASSERT_TRUE(past.ok());
  EXPECT_NE(*past, *big);
  cache.Release(*past);
  EXPECT_EQ(dev.registrations, 2);
  EXPECT_EQ(cache.hits(), 4u);
  EXPECT_EQ(cache.misses(), 2u);
}

TEST(RegistrationCache, EvictsLeastRecentlyUsedBeyondBudget) {
  FakeDevice dev;
  auto cache = dev.Make(3 * 4096);
  std::vector<RegistrationCache::Entry*> entries;
  for (int i = 0; i < 3; ++i) {
    auto e = cache.Acquire(At(i * 8192), 4096);
    ASSERT_TRUE(e.ok());
    entries.push_back(*e);
    cache.Release(*e);
  }
  EXPECT_EQ(cache.unused_implicit_bytes(), 3u * 4096);
  // Touch the first, so the second is now the least recently used.
  auto again = cache.Acquire(At(0), 4096);
  ASSERT_TRUE(again.ok());
  cache.Release(*again);
  auto fourth = cache.Acquire(At(3 * 8192), 4096);
  ASSERT_TRUE(fourth.ok());
  cache.Release(*fourth);
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_FALSE(dev.live.count({reinterpret_cast<uintptr_t>(At(8192)), 4096}));
  EXPECT_TRUE(dev.live.count({reinterpret_cast<uintptr_t>(At(0)), 4096}));
  EXPECT_LE(cache.unused_implicit_bytes(), 3u * 4096);
}

TEST(RegistrationCache, InUseEntriesAreNeverEvicted) {
  FakeDevice dev;
  auto cache = dev.Make(0);  // keep nothing unused.
  auto held = cache.Acquire(At(0), 100000);
  ASSERT_TRUE(held.ok());
  auto other = cache.Acquire(At(200000), 7);
  ASSERT_TRUE(other.ok());
  cache.Release(*other);  // budget 0: released at once.
  EXPECT_EQ(dev.live.size(), 1u);
  auto inner = cache.Acquire(At(17), 13);  // still hits the held one.
  ASSERT_TRUE(inner.ok());
  EXPECT_EQ(*inner, *held);
  cache.Release(*inner);
  EXPECT_EQ(dev.live.size(), 1u);
  cache.Release(*held);
  EXPECT_EQ(dev.live.size(), 0u);
}

TEST(RegistrationCache, PinnedStaysUntilRemovedAndInvalidationWaitsForUsers) {
  FakeDevice dev;
  auto cache = dev.Make(0);
  auto user = cache.AddPinned(At(0), 1 << 16);
  ASSERT_TRUE(user.ok());
  auto op = cache.Acquire(At(1000), 5000);
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(*op, *user);
  cache.Release(*op);
  EXPECT_EQ(dev.live.size(), 1u);  // pinned: not released though budget is 0.
  auto during = cache.Acquire(At(0), 10);
  ASSERT_TRUE(during.ok());
  cache.Invalidate(At(5), 1);  // overlaps: doomed, but in use.
  EXPECT_EQ(dev.live.size(), 1u);
  auto after = cache.Acquire(At(0), 10);  // a doomed entry is not handed out again.
  ASSERT_TRUE(after.ok());
  EXPECT_NE(*after, *during);
  cache.Release(*during);
  cache.Release(*after);
  EXPECT_EQ(dev.live.size(), 0u);
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(RegistrationCache, OutOfPinnableMemoryEvictsTheCacheAndRetries) {
  FakeDevice dev;
  dev.limit = 3 * 4096;
  auto cache = dev.Make(1 << 20);
  for (int i = 0; i < 3; ++i) {
    auto e = cache.Acquire(At(i * 4096 * 2), 4096);
    ASSERT_TRUE(e.ok());
    cache.Release(*e);
  }
  auto big = cache.Acquire(At(500000), 2 * 4096);
  ASSERT_TRUE(big.ok()) << big.status();
  auto too_big = cache.Acquire(At(600000), 4 * 4096);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  cache.Release(*big);
}

TEST(StagingPool, SlotsAreDisjointAlignedAndRecycled) {
  StagingPool pool(8192, 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pool.base()) % 4096, 0u);
  std::set<int> got;
  for (int i = 0; i < 5; ++i) got.insert(pool.Get());
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(pool.Get(), -1);
  pool.Put(3);
  EXPECT_EQ(pool.Get(), 3);
  EXPECT_EQ(pool.slot(1) - pool.slot(0), 8192);
}

}  // namespace
}  // namespace braid
