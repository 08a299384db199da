#include "store/shard_store.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "store/local_storage.h"

namespace brickfs {

ShardStore::ShardStore(std::shared_ptr<Storage> storage, std::string array_key,
                       const Geometry& geo, bool read_only)
    : storage_(std::move(storage)),
      array_key_(std::move(array_key)),
      geo_(geo),
      read_only_(read_only || storage_->read_only()),
      max_block_nbytes_(BlockCodec::MaxEncodedSize(geo.block_bytes())) {}

ShardStore::ShardStore(std::string dir, const Geometry& geo, bool read_only)
    : ShardStore(std::make_shared<LocalStorage>(std::move(dir), read_only), "", geo, read_only) {}

std::string ShardStore::BrickKey(const Shape3& b) const {
  return JoinKey(array_key_, "c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" +
                                 std::to_string(b[2]));
}

std::string ShardStore::BrickPath(const Shape3& b) const { return storage_->Locate(BrickKey(b)); }

Status ShardStore::CutTo(const Shape3& brick, uint64_t length) {
  if (read_only_) return Status::Unsupported("store is mounted read-only");
  if (length == 0) return storage_->Remove(BrickKey(brick));
  return storage_->Truncate(BrickKey(brick), length);
}

Status ShardStore::RemoveLeftover(const Shape3& brick) {
  if (read_only_) return Status::Unsupported("store is mounted read-only");
  return storage_->Remove(BrickKey(brick) + ".tmp");
}

Result<std::optional<uint64_t>> ShardStore::StoredSize(const Shape3& brick) const {
  BRICKFS_ASSIGN_OR_RETURN(const uint64_t identity, storage_->Identity(BrickKey(brick)));
  if (identity == 0) return std::optional<uint64_t>();
  auto size = storage_->Size(BrickKey(brick));
  if (!size.ok() && size.status().code() == Status::Code::kNotFound) {
    return std::optional<uint64_t>();
  }
  BRICKFS_RETURN_IF_ERROR(size.status());
  return std::optional<uint64_t>(*size);
}

ShardStore::BrickState* ShardStore::State(const Shape3& brick) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = bricks_[brick];
  if (!slot) slot = std::make_unique<BrickState>();
  return slot.get();
}

Status ShardStore::LoadLocked(const Shape3& brick, BrickState* st) {
  if (st->loaded) return Status::Ok();
  BRICKFS_ASSIGN_OR_RETURN(ShardIndex index, ReadIndex(brick, std::nullopt, &st->file_size));
  st->index = std::make_shared<ShardIndex>(std::move(index));
  st->loaded = true;
  return Status::Ok();
}

Result<ShardIndex> ShardStore::ReadIndex(const Shape3& brick, std::optional<uint64_t> length,
                                         uint64_t* file_size) const {
  const uint64_t n = geo_.blocks_in_brick();
  *file_size = 0;
  const std::string path = BrickPath(brick);
  const uint64_t index_size = ShardIndex::EncodedSize(n);
  auto tail = storage_->ReadTail(BrickKey(brick), index_size, length ? *length : UINT64_MAX);
  if (!tail.ok()) {
    // No file (or no directory yet, or no array directory): no block written.
    if (tail.status().code() == Status::Code::kNotFound) return ShardIndex(n);
    return tail.status();
  }
  const uint64_t size = tail->size;
  // Size 0: created by an append that never happened (a crash): holds no
  // block. Recovery and fsck --repair remove such files.
  if (size == 0) return ShardIndex(n);
  if (size < index_size) {
    return Status::Corruption(path + ": shard is " + std::to_string(size) +
                              " bytes, smaller than its " + std::to_string(index_size) +
                              "-byte index");
  }
  const std::string& buf = tail->bytes;
  BRICKFS_ASSIGN_OR_RETURN(
      ShardIndex index,
      ShardIndex::Decode(reinterpret_cast<const uint8_t*>(buf.data()), index_size, n,
                         size - index_size, max_block_nbytes_, path));
  *file_size = size;
  return index;
}

Result<std::shared_ptr<const ShardIndex>> ShardStore::GetIndex(const Shape3& brick) {
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
  return st->index;
}

Status ShardStore::Append(const Shape3& brick, const std::vector<EncodedBlock>& blocks,
                          AppendStats* stats) {
  if (read_only_) return Status::Unsupported("store is mounted read-only");
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));

  auto index = std::make_shared<ShardIndex>(*st->index);
  std::string buf;
  size_t total = ShardIndex::EncodedSize(index->size());
  for (const auto& b : blocks) total += b.bytes.size();
  buf.reserve(total);
  uint64_t offset = st->file_size;
  for (const auto& b : blocks) {
    // An empty view clears the entry (the block became fill value).
    index->Set(b.index_in_brick, b.bytes.empty() ? BlockLocation{}
                                                 : BlockLocation{offset + buf.size(), b.bytes.size()});
    buf.append(b.bytes);
  }
  uint64_t block_bytes = buf.size();
  index->EncodeTo(&buf);

  // On failure the file is cut back to `offset`: a valid shard ending with
  // the old index.
  BRICKFS_RETURN_IF_ERROR(storage_->WriteAt(BrickKey(brick), offset, buf));
  st->file_size = offset + buf.size();
  st->index = std::move(index);
  if (stats) {
    stats->bytes_written += buf.size();
    stats->block_bytes += block_bytes;
    stats->file_size = st->file_size;
  }
  std::lock_guard<std::mutex> g(mu_);
  dirty_.insert(brick);
  touched_.insert(brick);
  return Status::Ok();
}

std::optional<uint64_t> ShardStore::RecoveredLength(const BrickId& id,
                                                    const JournalState& js) const {
  const std::optional<uint64_t> len = js.RecoveredLength(id);
  auto r = js.replaced.find(id);
  if (!len || r == js.replaced.end()) return len;
  auto identity = storage_->Identity(BrickKey(id.brick));
  const uint64_t ino = identity.ok() ? *identity : 0;
  const bool exists = ino != 0;
  bool is_new;
  if (r->second.length == 0) {
    is_new = !exists;  // replaced by nothing: the unlink happened
  } else if (!exists) {
    is_new = false;
  } else if (!r->second.inode) {
    is_new = true;  // a record from before inodes: a valid index at the length decides (caller)
  } else {
    // The new file was created beside the old one, so it has another inode;
    // the path holds it only if the rename happened. (Content cannot tell:
    // a shard is a chain of crc32c-terminated parts, whose crc32c, and any
    // crc of it, is the same for every such file of those lengths.)
    is_new = ino == *r->second.inode;
  }
  if (is_new) return len;
  return r->second.before;
}

std::vector<Shape3> ShardStore::Touched() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {touched_.begin(), touched_.end()};
}

Status ShardStore::Replace(const Shape3& brick, const std::vector<EncodedBlock>& blocks,
                           const BeforeRename& before_rename,
                           AppendStats* stats) {
  if (read_only_) return Status::Unsupported("store is mounted read-only");
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
  auto index = std::make_shared<ShardIndex>(geo_.blocks_in_brick());
  const std::string key = BrickKey(brick);
  if (blocks.empty()) {
    BRICKFS_RETURN_IF_ERROR(before_rename(0, 0));  // removal: no new file
    if (Status removed = storage_->Remove(key); !removed.ok()) {
      st->loaded = false;
      return removed;
    }
    st->file_size = 0;
    st->index = std::move(index);
    return Status::Ok();
  }
  std::string buf;
  for (const auto& b : blocks) {
    index->Set(b.index_in_brick, BlockLocation{buf.size(), b.bytes.size()});
    buf.append(b.bytes);
  }
  const uint64_t block_bytes = buf.size();
  index->EncodeTo(&buf);
  Status replaced = storage_->Replace(
      key, buf, [&](uint64_t identity) { return before_rename(buf.size(), identity); });
  if (!replaced.ok()) {
    // It may have failed after the new file took the key (its directory's
    // fsync): read the index again before the next append.
    st->loaded = false;
    return replaced;
  }
  st->file_size = buf.size();
  st->index = std::move(index);
  {
    std::lock_guard<std::mutex> g(mu_);
    touched_.insert(brick);
  }
  if (stats) {
    stats->bytes_written += buf.size();
    stats->block_bytes += block_bytes;
    stats->file_size = buf.size();
  }
  return Status::Ok();
}

Status ShardStore::PlanReads(const Shape3& brick, const std::vector<uint64_t>& indices,
                             ReadPlan* plan) {
  BrickState* st = State(brick);
  uint64_t file_size;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
    plan->index = st->index;
    file_size = st->file_size;
  }
  const ShardIndex& index = *plan->index;
  plan->order.clear();
  plan->runs.clear();
  for (size_t i = 0; i < indices.size(); ++i) {
    const BlockLocation& loc = index.at(indices[i]);
    if (loc.empty()) continue;
    if (loc.offset + loc.nbytes > file_size) {
      return Status::Corruption(BrickPath(brick) + ": block " + std::to_string(indices[i]) +
                                " lies past the end of the shard");
    }
    plan->order.push_back(i);
  }
  std::sort(plan->order.begin(), plan->order.end(), [&](size_t a, size_t b) {
    return index.at(indices[a]).offset < index.at(indices[b]).offset;
  });
  // Blocks written by one slab flush are adjacent in the file: one pread per
  // run of nearby blocks (gaps up to kMaxGap are read and dropped).
  constexpr uint64_t kMaxGap = 64 << 10, kMaxRun = 16 << 20;
  const std::vector<size_t>& order = plan->order;
  for (size_t k = 0; k < order.size();) {
    const uint64_t begin = index.at(indices[order[k]]).offset;
    uint64_t end = begin + index.at(indices[order[k]]).nbytes;
    size_t m = k + 1;
    while (m < order.size()) {
      const BlockLocation& next = index.at(indices[order[m]]);
      if (next.offset > end + kMaxGap || next.offset + next.nbytes - begin > kMaxRun) break;
      end = std::max(end, next.offset + next.nbytes);
      ++m;
    }
    plan->runs.push_back({begin, end, k, m});
    k = m;
  }
  return Status::Ok();
}

void ShardStore::Prefetch(const Shape3& brick, const std::vector<uint64_t>& indices) {
  ReadPlan plan;
  if (!PlanReads(brick, indices, &plan).ok() || plan.runs.empty()) return;
  std::vector<Storage::Range> ranges;
  ranges.reserve(plan.runs.size());
  for (const auto& run : plan.runs) ranges.push_back({run.begin, run.end - run.begin});
  storage_->Prefetch(BrickKey(brick), ranges);
}

Status ShardStore::ReadBlocks(const Shape3& brick, const std::vector<uint64_t>& indices,
                              const BlockVisitor& visit) {
  ReadPlan plan;
  BRICKFS_RETURN_IF_ERROR(PlanReads(brick, indices, &plan));
  if (plan.runs.empty()) return Status::Ok();
  std::vector<Storage::Range> ranges;
  ranges.reserve(plan.runs.size());
  for (const auto& run : plan.runs) ranges.push_back({run.begin, run.end - run.begin});
  Status s = storage_->ReadRanges(
      BrickKey(brick), ranges, [&](size_t r, std::string_view bytes) -> Status {
        const auto& run = plan.runs[r];
        for (size_t k = run.first; k < run.last; ++k) {
          const size_t i = plan.order[k];
          const BlockLocation& loc = plan.index->at(indices[i]);
          BRICKFS_RETURN_IF_ERROR(visit(i, bytes.substr(loc.offset - run.begin, loc.nbytes)));
        }
        return Status::Ok();
      });
  // The index said these blocks exist: a file gone meanwhile is damage.
  if (s.code() == Status::Code::kNotFound) {
    return Status::Corruption(BrickPath(brick) + ": the shard disappeared while its blocks " +
                              "were being read");
  }
  return s;
}

Status ShardStore::ReadBlocks(const Shape3& brick, const std::vector<uint64_t>& indices,
                              std::vector<std::string>* out) {
  out->assign(indices.size(), std::string());
  return ReadBlocks(brick, indices, [out](size_t i, std::string_view bytes) {
    (*out)[i].assign(bytes);
    return Status::Ok();
  });
}

Result<uint64_t> ShardStore::FileSize(const Shape3& brick) {
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
  return st->file_size;
}

Status ShardStore::SyncBricks(const std::vector<Shape3>& bricks, ThreadPool* io) {
  std::vector<std::string> keys;
  keys.reserve(bricks.size());
  for (const Shape3& b : bricks) keys.push_back(BrickKey(b));
  return storage_->Sync(keys, io);
}

Status ShardStore::SyncDirty() {
  std::vector<Shape3> dirty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty.assign(dirty_.begin(), dirty_.end());
    dirty_.clear();
  }
  return SyncBricks(dirty);
}

namespace {

// The decimal entries of a directory (shard key components), sorted.
std::vector<uint64_t> NumberedEntries(Storage& storage, const std::string& prefix) {
  std::vector<uint64_t> out;
  auto names = storage.List(prefix);
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    if (n.empty() || n.size() > 19) continue;
    bool digits = true;
    for (char c : n) digits = digits && c >= '0' && c <= '9';
    if (digits) out.push_back(std::strtoull(n.c_str(), nullptr, 10));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<Shape3> ShardStore::StoredBricks(const Shape3& brick_grid) const {
  std::vector<Shape3> out;
  const std::string c = JoinKey(array_key_, "c");
  for (uint64_t z : NumberedEntries(*storage_, c)) {
    if (z >= brick_grid[0]) continue;
    const std::string dz = c + "/" + std::to_string(z);
    for (uint64_t y : NumberedEntries(*storage_, dz)) {
      if (y >= brick_grid[1]) continue;
      for (uint64_t x : NumberedEntries(*storage_, dz + "/" + std::to_string(y))) {
        if (x < brick_grid[2]) out.push_back({z, y, x});
      }
    }
  }
  return out;
}

Result<ShardStore::Usage> ShardStore::ScanUsage(const Shape3& brick_grid,
                                                const LengthOf& recovered_length) {
  // The files that exist, not the grid: a declared volume may have billions
  // of bricks and hold a few.
  Usage u;
  for (const Shape3& b : StoredBricks(brick_grid)) {
    uint64_t size = 0;  // 0: no file (or an empty one)
    BRICKFS_ASSIGN_OR_RETURN(
        ShardIndex index,
        ReadIndex(b, recovered_length ? recovered_length(b) : std::nullopt, &size));
    if (size == 0) continue;
    ++u.files;
    u.file_bytes += size;
    u.live_block_bytes += index.live_bytes();
    u.live_blocks += index.live_blocks();
    u.index_bytes += ShardIndex::EncodedSize(index.size());
  }
  return u;
}

}  // namespace brickfs
