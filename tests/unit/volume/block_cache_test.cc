// Tests for BlockCache: LRU order, the byte budget, null (fill) entries and
// the epoch rule that keeps stale decodes out after a write.
#include "volume/block_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace brickfs {
namespace {

BlockData Block(size_t n, uint8_t fill) {
  return MakeHeapBlock(n, fill);
}

BlockKey Key(uint64_t i) { return BlockKey{0, i, i + 1, i + 2}; }

// Payload plus the 64-byte per-entry overhead the cache charges.
constexpr uint64_t kEntry = 1000 + 64;

TEST(BlockCacheTest, MissThenInsertThenHit) {
  BlockCache cache(10 * kEntry);
  BlockData out;
  EXPECT_FALSE(cache.Lookup(Key(1), &out));
  EXPECT_TRUE(cache.Insert(Key(1), Block(1000, 7), cache.epoch()));
  ASSERT_TRUE(cache.Lookup(Key(1), &out));
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->size(), 1000u);
  EXPECT_EQ((*out)[999], 7);
  auto st = cache.GetStats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.bytes, 1000u);
  EXPECT_EQ(st.entries, 1u);
  EXPECT_EQ(st.budget, 10 * kEntry);
}

TEST(BlockCacheTest, KeysDifferingInAnyCoordinateAreDistinct) {
  BlockCache cache(100 * kEntry);
  const uint64_t e = cache.epoch();
  BlockKey base{1, 2, 3, 4};
  ASSERT_TRUE(cache.Insert(base, Block(10, 1), e));
  for (BlockKey k : {BlockKey{0, 2, 3, 4}, BlockKey{1, 3, 3, 4}, BlockKey{1, 2, 4, 4},
                     BlockKey{1, 2, 3, 5}, BlockKey{1, 4, 3, 2}}) {
    BlockData out;
    EXPECT_FALSE(cache.Lookup(k, &out)) << k.level << "/" << k.bz << "/" << k.by << "/" << k.bx;
  }
  BlockData out;
  EXPECT_TRUE(cache.Lookup(base, &out));
}

TEST(BlockCacheTest, EvictsLeastRecentlyUsedToStayWithinBudget) {
  BlockCache cache(3 * kEntry);  // exactly three 1000-byte blocks
  const uint64_t e = cache.epoch();
  ASSERT_TRUE(cache.Insert(Key(1), Block(1000, 1), e));
  ASSERT_TRUE(cache.Insert(Key(2), Block(1000, 2), e));
  ASSERT_TRUE(cache.Insert(Key(3), Block(1000, 3), e));
  EXPECT_EQ(cache.GetStats().entries, 3u);
  BlockData out;
  ASSERT_TRUE(cache.Lookup(Key(1), &out));  // 1 is now the most recent
  ASSERT_TRUE(cache.Insert(Key(4), Block(1000, 4), e));
  EXPECT_FALSE(cache.Lookup(Key(2), &out)) << "2 was least recently used";
  EXPECT_TRUE(cache.Lookup(Key(1), &out));
  EXPECT_TRUE(cache.Lookup(Key(3), &out));
  EXPECT_TRUE(cache.Lookup(Key(4), &out));
  auto st = cache.GetStats();
  EXPECT_EQ(st.entries, 3u);
  EXPECT_LE(st.bytes + 64 * st.entries, st.budget);
}

TEST(BlockCacheTest, ReinsertingAKeyRefreshesItsRecency) {
  BlockCache cache(2 * kEntry);
  const uint64_t e = cache.epoch();
  ASSERT_TRUE(cache.Insert(Key(1), Block(1000, 1), e));
  ASSERT_TRUE(cache.Insert(Key(2), Block(1000, 2), e));
  ASSERT_TRUE(cache.Insert(Key(1), Block(1000, 9), e));  // touch 1
  ASSERT_TRUE(cache.Insert(Key(3), Block(1000, 3), e));
  BlockData out;
  EXPECT_FALSE(cache.Lookup(Key(2), &out));
  EXPECT_TRUE(cache.Lookup(Key(1), &out));
  EXPECT_EQ(cache.GetStats().bytes, 2000u) << "a re-insert must not double count";
}

TEST(BlockCacheTest, NeverHoldsMoreThanTheBudget) {
  BlockCache cache(5000);
  const uint64_t e = cache.epoch();
  for (uint64_t i = 0; i < 200; ++i) {
    cache.Insert(Key(i), Block(100 + (i * 37) % 900, 1), e);
    auto st = cache.GetStats();
    ASSERT_LE(st.bytes + 64 * st.entries, 5000u) << "after insert " << i;
  }
  // A block larger than the whole budget is not kept.
  cache.Insert(Key(1000), Block(6000, 1), e);
  BlockData out;
  EXPECT_FALSE(cache.Lookup(Key(1000), &out));
  EXPECT_LE(cache.GetStats().bytes, 5000u);
}

TEST(BlockCacheTest, InsertRejectedAfterInvalidateBumpedTheEpoch) {
  BlockCache cache(10 * kEntry);
  const uint64_t before = cache.epoch();
  cache.Invalidate({Key(5)});
  EXPECT_GT(cache.epoch(), before);
  EXPECT_FALSE(cache.Insert(Key(5), Block(1000, 1), before)) << "stale decode inserted";
  BlockData out;
  EXPECT_FALSE(cache.Lookup(Key(5), &out));
  // An unrelated key read under the old epoch is refused too: the rule is
  // per epoch, not per key.
  EXPECT_FALSE(cache.Insert(Key(6), Block(1000, 1), before));
  EXPECT_TRUE(cache.Insert(Key(5), Block(1000, 2), cache.epoch()));
  EXPECT_TRUE(cache.Lookup(Key(5), &out));
  EXPECT_EQ((*out)[0], 2);
}

TEST(BlockCacheTest, InvalidateDropsTheGivenKeysOnly) {
  BlockCache cache(10 * kEntry);
  const uint64_t e = cache.epoch();
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(cache.Insert(Key(i), Block(1000, 1), e));
  cache.Invalidate({Key(1), Key(3), Key(99)});
  BlockData out;
  EXPECT_TRUE(cache.Lookup(Key(0), &out));
  EXPECT_FALSE(cache.Lookup(Key(1), &out));
  EXPECT_TRUE(cache.Lookup(Key(2), &out));
  EXPECT_FALSE(cache.Lookup(Key(3), &out));
  EXPECT_EQ(cache.GetStats().bytes, 2000u);
  EXPECT_EQ(cache.GetStats().entries, 2u);
}

TEST(BlockCacheTest, NullEntriesMeanFillAndAreBoundedToo) {
  BlockCache cache(640);  // ten null entries' worth of overhead
  const uint64_t e = cache.epoch();
  ASSERT_TRUE(cache.Insert(Key(0), nullptr, e));
  BlockData out = Block(1, 1);
  ASSERT_TRUE(cache.Lookup(Key(0), &out));
  EXPECT_EQ(out, nullptr) << "a cached fill block reads back as null";
  for (uint64_t i = 1; i < 100; ++i) cache.Insert(Key(i), nullptr, e);
  auto st = cache.GetStats();
  EXPECT_EQ(st.bytes, 0u);
  EXPECT_LE(st.entries, 10u);
  EXPECT_GE(st.entries, 1u);
}

TEST(BlockCacheTest, ZeroBudgetCachesNothing) {
  BlockCache cache(0);
  EXPECT_FALSE(cache.Insert(Key(1), Block(10, 1), cache.epoch()));
  BlockData out;
  EXPECT_FALSE(cache.Lookup(Key(1), &out));
}

TEST(BlockCacheTest, ConcurrentUseKeepsAccountsConsistent) {
  BlockCache cache(20 * kEntry);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (uint64_t i = 0; i < 2000; ++i) {
        BlockData out;
        uint64_t k = (i * 7 + static_cast<uint64_t>(t)) % 50;
        uint64_t e = cache.epoch();
        if (!cache.Lookup(Key(k), &out)) cache.Insert(Key(k), Block(1000, 1), e);
        if (i % 101 == 0) cache.Invalidate({Key(k)});
      }
    });
  }
  for (auto& th : threads) th.join();
  auto st = cache.GetStats();
  EXPECT_EQ(st.bytes, 1000 * st.entries);
  EXPECT_LE(st.bytes + 64 * st.entries, st.budget);
}

TEST(BlockCacheTest, ContainsAnyLayoutCountsNeitherHitNorMiss) {
  BlockCache cache(10 * kEntry);
  EXPECT_FALSE(cache.ContainsAnyLayout(Key(1)));
  ASSERT_TRUE(cache.Insert(Key(1), Block(1000, 1), cache.epoch()));
  EXPECT_TRUE(cache.ContainsAnyLayout(Key(1)));
  EXPECT_FALSE(cache.ContainsAnyLayout(Key(2)));
  BlockKey columns = Key(3);
  columns.layout = BlockKey::kColumns;
  ASSERT_TRUE(cache.Insert(columns, Block(1000, 1), cache.epoch()));
  EXPECT_TRUE(cache.ContainsAnyLayout(Key(3)));  // asked as natural, cached x-major
  auto st = cache.GetStats();
  EXPECT_EQ(st.hits, 0u);
  EXPECT_EQ(st.misses, 0u);
}

TEST(BlockPoolTest, ReserveMapsAheadAndGetUsesThoseBuffers) {
  auto pool = BlockPool::Create(64 << 10);
  EXPECT_EQ(pool->mapped_bytes(), 0u);
  pool->Reserve(40u << 20);  // two 32 MiB regions
  const uint64_t mapped = pool->mapped_bytes();
  EXPECT_GE(mapped, 40u << 20);
  std::vector<std::shared_ptr<BlockBuffer>> held;
  for (uint64_t i = 0; i < mapped / (64 << 10); ++i) {
    held.push_back(pool->Get());
    held.back()->data()[0] = static_cast<uint8_t>(i);
  }
  EXPECT_EQ(pool->mapped_bytes(), mapped);  // all came from the reserve
  held.push_back(pool->Get());
  EXPECT_GT(pool->mapped_bytes(), mapped);  // and then the pool grows
  const uint64_t grown = pool->mapped_bytes();
  pool->Reserve(1);  // already enough: maps nothing
  EXPECT_EQ(pool->mapped_bytes(), grown);
}

}  // namespace
}  // namespace brickfs
