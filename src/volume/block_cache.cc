#include "volume/block_cache.h"

namespace brickfs {

bool BlockCache::Lookup(const BlockKey& key, BlockData* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) {
    ++misses_;
    return false;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  *out = it->second->data;
  return true;
}

bool BlockCache::Insert(const BlockKey& key, BlockData data, uint64_t epoch_at_lookup) {
  if (budget_ == 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch_.load(std::memory_order_acquire) != epoch_at_lookup) return false;
  auto it = map_.find(key);
  if (it != map_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return true;
  }
  bytes_ += data ? data->size() : 0;
  lru_.push_front(Entry{key, std::move(data)});
  map_[key] = lru_.begin();
  EvictLocked();
  return true;
}

void BlockCache::EvictLocked() {
  // Null (fill) entries are counted as 64 bytes so the list cannot grow
  // without bound either.
  while (!lru_.empty() && bytes_ + 64 * map_.size() > budget_) {
    Entry& e = lru_.back();
    bytes_ -= e.data ? e.data->size() : 0;
    map_.erase(e.key);
    lru_.pop_back();
  }
}

void BlockCache::Invalidate(const std::vector<BlockKey>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  for (const auto& k : keys) {
    auto it = map_.find(k);
    if (it == map_.end()) continue;
    bytes_ -= it->second->data ? it->second->data->size() : 0;
    lru_.erase(it->second);
    map_.erase(it);
  }
}

BlockCache::Stats BlockCache::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{hits_, misses_, bytes_, map_.size(), budget_};
}

}  // namespace brickfs
