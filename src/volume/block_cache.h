// An LRU cache of decoded blocks, bounded in bytes, shared by all readers.
//
// Keys are (level, bz, by, bx) in block coordinates. A value is the decoded
// block (block_bytes, C order) or null for a block that is entirely fill
// value (never stored); null entries cost no payload memory.
//
// Invalidation: writers bump the epoch (Invalidate) after they change stored
// blocks; a reader that looked a block up under an older epoch must not
// insert it (Insert returns false), so a stale decode never outlives a write.
//
// Thread-safety: all methods are thread-safe (one mutex, held only for map
// and list updates, never during decoding).
#ifndef BRICKFS_VOLUME_BLOCK_CACHE_H_
#define BRICKFS_VOLUME_BLOCK_CACHE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace brickfs {

// The bytes of one decoded block (block_bytes, C order).
class BlockBuffer {
 public:
  BlockBuffer(uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data() const { return data_; }
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }
  uint8_t operator[](size_t i) const { return data_[i]; }

 private:
  uint8_t* data_;
  size_t size_;
};
using BlockData = std::shared_ptr<const BlockBuffer>;

// A block of n bytes set to `fill`, on the heap (tests and one-offs).
std::shared_ptr<BlockBuffer> MakeHeapBlock(size_t n, uint8_t fill = 0);

// Fixed-size block buffers carved from 32 MiB regions, reused and never
// unmapped: faulting in fresh pages is what made first reads of a new mount
// slow (DESIGN §11). A buffer returns
// to the pool when its last BlockData goes. Thread-safe.
class BlockPool : public std::enable_shared_from_this<BlockPool> {
 public:
  static std::shared_ptr<BlockPool> Create(size_t block_bytes);
  ~BlockPool();
  // An uninitialized buffer of block_bytes (heap-allocated if mapping fails).
  std::shared_ptr<BlockBuffer> Get();
  size_t block_bytes() const { return block_bytes_; }
  uint64_t mapped_bytes() const;
  // Maps and touches regions until `bytes` are mapped. Fresh memory faults
  // in slowly (a VM's host backs it on first touch, DESIGN §11); a mount
  // calls this in the background so that its first reads find buffers ready.
  void Reserve(uint64_t bytes);

 private:
  explicit BlockPool(size_t block_bytes) : block_bytes_(block_bytes) {}
  void Put(uint8_t* p);
  size_t stride() const { return (block_bytes_ + 63) & ~size_t{63}; }
  // A new region of buffers, not yet in the pool ({nullptr, 0} on failure).
  std::pair<void*, size_t> MapRegion() const;
  void AddRegionLocked(std::pair<void*, size_t> region);

  const size_t block_bytes_;
  mutable std::mutex mu_;
  std::vector<uint8_t*> free_;                      // guarded by mu_
  std::vector<std::pair<void*, size_t>> regions_;   // guarded by mu_
};

// layout kNatural: the decoded block, C order (z, y, x). kColumns: the same
// voxels x-major (x, z, y), made when YZ-plane reads hit a cached natural
// block again: the plane at any x of the block is then one contiguous run per
// block, so neighbouring x/ files (64 share a uint8 block) read like z/ files.
struct BlockKey {
  enum Layout : uint32_t { kNatural = 0, kColumns = 1 };
  uint32_t level;
  uint64_t bz, by, bx;
  uint32_t layout = kNatural;
  bool operator==(const BlockKey& o) const {
    return level == o.level && bz == o.bz && by == o.by && bx == o.bx && layout == o.layout;
  }
};

struct BlockKeyHash {
  size_t operator()(const BlockKey& k) const {
    uint64_t h = (k.level * 2 + k.layout) * 0x9E3779B97F4A7C15ull;
    h ^= k.bz + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= k.by + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= k.bx + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return static_cast<size_t>(h);
  }
};

class BlockCache {
 public:
  // `budget_bytes` bounds the payload bytes held (0 disables caching).
  explicit BlockCache(uint64_t budget_bytes) : budget_(budget_bytes) {}

  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

  // Returns true and sets *out when cached (out may be set to null = fill).
  bool Lookup(const BlockKey& key, BlockData* out);
  // Whether the block of `key` is cached in either layout (key.layout is
  // ignored); counts neither a hit nor a miss, keeps the LRU order.
  bool ContainsAnyLayout(BlockKey key) const;

  // Inserts unless the epoch moved since `epoch_at_lookup`. Evicts least
  // recently used entries to stay within budget.
  bool Insert(const BlockKey& key, BlockData data, uint64_t epoch_at_lookup);

  // Drops the given blocks and bumps the epoch.
  void Invalidate(const std::vector<BlockKey>& keys);
  // Drops every block of pyramid levels >= `level` and bumps the epoch.
  void InvalidateLevelsFrom(uint32_t level);

  struct Stats {
    uint64_t hits = 0, misses = 0, bytes = 0, entries = 0, budget = 0;
  };
  Stats GetStats() const;

 private:
  struct Entry {
    BlockKey key;
    BlockData data;
  };
  void EvictLocked();

  const uint64_t budget_;
  std::atomic<uint64_t> epoch_{0};
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recent; guarded by mu_
  std::unordered_map<BlockKey, std::list<Entry>::iterator, BlockKeyHash> map_;  // guarded by mu_
  uint64_t bytes_ = 0;    // guarded by mu_
  uint64_t hits_ = 0, misses_ = 0;  // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_BLOCK_CACHE_H_
