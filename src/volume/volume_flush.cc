// Volume, flush and commit: full slabs become aligned brick appends, the
// committer fsyncs and journals them; Finalize and compaction. See volume.h.
#include "volume/volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/text.h"
#include "volume/block_encode.h"
#include "volume/compact.h"
#include "volume/slab.h"


namespace brickfs {

void Volume::MaybeCompleteLocked(const std::shared_ptr<Slab>& slab) {
  if (slab->state != Slab::State::kFilling || slab->pins || !slab->dirty) return;
  if (brick_holds_.count(slab->index)) return;  // the brick writer completes it
  // A reloaded slab waits for its burst of rewrites to end (RetryLoop),
  // unless every slice of it was sent again.
  const uint64_t have = slab->reloaded ? slab->renewed_count : slab->count;
  if (have < SlotsInSlabLocked(slab->index)) return;
  StartFlushLocked(slab);
}

void Volume::StartFlushLocked(const std::shared_ptr<Slab>& slab) {
  // Slots that never got a slice are fill (zeros) in every block written.
  const uint64_t slice = geo_->slice_bytes();
  for (uint64_t i = 0; i < slab->valid.size(); ++i) {
    if (!slab->valid[i]) {
      std::memset(slab->buf.get() + i * slice, 0, slice);
      slab->valid[i] = 1;
    }
  }
  slab->state = Slab::State::kFlushing;
  {
    std::lock_guard<std::mutex> g(slab->err_mu);
    slab->flush_error = Status::Ok();
    slab->appended.clear();
  }
  slab->retry = false;
  // Allocated by the first flush task (see FlushBrick); left over from a failed flush.
  NotePyramidBytes(-static_cast<int64_t>(slab->down.size()));
  slab->down = std::vector<uint8_t>();
  slab->down_from = 0;
  if (pyramid_) {
    const uint64_t z0 = slab->index * geo_->block[0];
    slab->down_from = std::min(geo_->block[0], geo_->shape[0] - std::min(z0, geo_->shape[0]));
  }
  Shape3 grid = geo_->brick_grid();
  uint64_t n = grid[1] * grid[2];
  slab->pending_bricks = n;
  for (uint64_t by = 0; by < grid[1]; ++by) {
    for (uint64_t bx = 0; bx < grid[2]; ++bx) {
      pool_->Submit([this, slab, by, bx] {
        FlushBrick(slab, by, bx);
        if (slab->pending_bricks.fetch_sub(1) == 1) FinishFlush(slab);
      });
    }
  }
}

Status Volume::AppendSlabColumn(const Geometry& geo, uint64_t bz, const uint8_t* buf,
                                uint64_t brick_y, uint64_t brick_x, Shape3* brick,
                                AppendStats* stats, EncodedBlocks* enc) {
  Geometry g = geo;
  *brick = {bz / g.blocks_per_brick()[0], brick_y, brick_x};
  const uint64_t plane_bytes = g.slice_bytes();
  BlockSource src;
  src.lo = {bz * g.block[0], 0, 0};
  src.hi = {(bz + 1) * g.block[0], g.shape[1], g.shape[2]};
  src.row = g.shape[2];
  src.plane = [&](uint64_t z) { return buf + (z - src.lo[0]) * plane_bytes; };
  g.shape[0] = std::max(g.shape[0], src.hi[0]);  // the slab's planes hold fill past the end
  EncodedBlocks local;
  if (!enc) enc = &local;
  BRICKFS_ASSIGN_OR_RETURN(auto existing, shards_->GetIndex(*brick));
  BRICKFS_RETURN_IF_ERROR(EncodeBlocks(g, meta_.zstd_level, *brick, src, existing.get(), enc));
  if (enc->entries.empty()) return Status::Ok();
  BRICKFS_RETURN_IF_ERROR(JournalBrickBase(BrickId{0, *brick}));
  return shards_->Append(*brick, enc->Views(), stats);
}

void Volume::FlushBrick(const std::shared_ptr<Slab>& slab, uint64_t brick_y, uint64_t brick_x) {
  // The geometry's block/brick/dtype never change; shape[1,2] neither.
  Geometry g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    g = *geo_;
  }
  const uint8_t* buf = slab->buf.get();
  EncodedBlocks enc;
  AppendStats stats;
  Shape3 brick;
  Status s = AppendSlabColumn(g, slab->index, buf, brick_y, brick_x, &brick, &stats, &enc);
  counters_.blocks_fill.fetch_add(enc.fill_blocks);
  if (s.ok() && stats.bytes_written > 0) {
    counters_.bytes_written.fetch_add(stats.bytes_written);
    counters_.block_bytes_written.fetch_add(stats.block_bytes);
    counters_.blocks_written.fetch_add(enc.entries.size());
    std::lock_guard<std::mutex> lock(slab->err_mu);
    slab->appended.emplace_back(brick, stats.file_size);
  }
  if (s.ok()) counters_.raw_bytes_flushed.fetch_add(enc.raw_bytes);
  if (s.ok() && slab->down_from > 0) {
    {
      std::lock_guard<std::mutex> lock(slab->err_mu);
      if (slab->down.empty()) {
        slab->down.resize(Product(DownsampledShape({slab->down_from, g.shape[1], g.shape[2]})) *
                          g.voxel_bytes());
        NotePyramidBytes(static_cast<int64_t>(slab->down.size()));
      }
    }
    // This brick column's share of the level-1 planes (brick offsets are even,
    // so the 2x2x2 windows of different columns never overlap).
    const uint64_t y0 = brick_y * g.brick[1], x0 = brick_x * g.brick[2];
    const Shape3 box{slab->down_from, std::min(g.brick[1], g.shape[1] - y0),
                     std::min(g.brick[2], g.shape[2] - x0)};
    const Shape3 up = DownsampledShape({2, g.shape[1], g.shape[2]});
    Downsample2x(g.dtype, method_, buf + (y0 * g.shape[2] + x0) * g.voxel_bytes(), box,
                 {g.shape[2], g.shape[1] * g.shape[2]},
                 slab->down.data() + (y0 / 2 * up[2] + x0 / 2) * g.voxel_bytes(),
                 {up[2], up[1] * up[2]});
  }
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(slab->err_mu);
    if (slab->flush_error.ok()) slab->flush_error = s;
  }
}

void Volume::FinishFlush(const std::shared_ptr<Slab>& slab) {
  Status err;
  {
    std::lock_guard<std::mutex> g(slab->err_mu);
    err = slab->flush_error;
  }
  if (!err.ok() || !journal_) {
    CompleteFlush(slab, err);
    return;
  }
  // The commit (fsyncs, the journal) is the committer's: this pool thread
  // goes back to compressing at once, and slabs that finish close together
  // share one round of fsyncs.
  {
    std::lock_guard<std::mutex> lock(commit_mu_);
    commit_queue_.push_back(slab);
  }
  commit_cv_.notify_one();
}

void Volume::CommitLoop() {
  for (;;) {
    std::vector<std::shared_ptr<Slab>> batch;
    {
      std::unique_lock<std::mutex> lock(commit_mu_);
      commit_cv_.wait(lock, [&] { return commit_stop_ || !commit_queue_.empty(); });
      if (commit_queue_.empty()) return;  // stopping, nothing left
      batch.assign(commit_queue_.begin(), commit_queue_.end());
      commit_queue_.clear();
    }
    // Commit: the appends are made durable first, then the journal says so.
    std::set<Shape3> bricks;
    std::string frames;
    for (const auto& slab : batch) {
      std::vector<std::pair<Shape3, uint64_t>> appended;
      {
        std::lock_guard<std::mutex> g(slab->err_mu);
        appended = slab->appended;
      }
      for (const auto& [brick, length] : appended) {
        bricks.insert(brick);
        AppendBrickLength(BrickId{0, brick}, length, &frames);
      }
      std::vector<uint64_t> slices;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (uint64_t i = 0; i < geo_->block[0]; ++i) {
          if (slab->present[i]) slices.push_back(slab->index * geo_->block[0] + i);
        }
      }
      AppendSlabCommit(0, slab->index, slices, &frames);
    }
    Status err = shards_->SyncBricks({bricks.begin(), bricks.end()}, io_pool_.get());
    if (err.ok()) err = journal_->Append(frames, /*sync=*/true);
    for (const auto& slab : batch) CompleteFlush(slab, err);
  }
}

void Volume::CompleteFlush(const std::shared_ptr<Slab>& slab, const Status& err) {
  // The levels above follow the committed slab: it is downsampled here, its
  // buffer released below, and the levels fed after that, all under pyr_mu_
  // so feeds of one slab keep their order. A failure there is reported and
  // fails the finalize (the journal then stays and the next mount rebuilds
  // the levels), but the slab itself is safe.
  std::unique_lock<std::mutex> pyr_lock(pyr_mu_, std::defer_lock);
  if (err.ok() && pyramid_) pyr_lock.lock();
  std::unique_lock<std::mutex> lock(mu_);
  const Geometry& g = *geo_;
  if (!err.ok()) {
    NotePyramidBytes(-static_cast<int64_t>(slab->down.size()));
    slab->down = std::vector<uint8_t>();
    // Keep the slab in memory; RetryLoop retries it every second, Finalize
    // at unmount, and the next close() reports the error.
    slab->state = Slab::State::kFilling;
    slab->retry = true;
    sticky_error_ = err;
    errors_.emplace_back("slab " + std::to_string(slab->index),
                         "flush failed, kept in memory for retry: " + err.ToString());
    ++errors_total_;
    LogError("flush of slab " + std::to_string(slab->index) + " failed: " + err.ToString());
    cv_.notify_all();
    return;
  }
  for (uint64_t i = 0; i < g.block[0]; ++i) {
    if (slab->present[i]) committed_.Insert(slab->index * g.block[0] + i);
  }
  // Its fsynced slices are in the store now (the commit above is durable).
  if (sync_log_) sync_log_->Remove(slab->index);
  std::vector<BlockKey> keys;
  Shape3 grid = g.block_grid();
  keys.reserve(grid[1] * grid[2]);
  for (uint64_t by = 0; by < grid[1]; ++by) {
    for (uint64_t bx = 0; bx < grid[2]; ++bx) {
      keys.push_back({0, slab->index, by, bx, BlockKey::kNatural});
      keys.push_back({0, slab->index, by, bx, BlockKey::kColumns});
    }
  }
  cache_->Invalidate(keys);
  slab->state = Slab::State::kCommitted;
  slabs_.erase(slab->index);
  slab->buf.reset();  // back to the pool now, not when the last task lets go
  generation_.fetch_add(1);
  counters_.slabs_flushed.fetch_add(1);
  cv_.notify_all();
  lock.unlock();
  if (pyr_lock.owns_lock()) {
    Status p = FeedSlabLocked(slab->index, slab->down_from, slab->down);
    NotePyramidBytes(-static_cast<int64_t>(slab->down.size()));
    slab->down = std::vector<uint8_t>();
    if (!p.ok()) {
      RecordError("pyramid", "updating levels from slab " + std::to_string(slab->index) + ": " +
                                 p.ToString());
    }
  }
}

Status Volume::Finalize() {
  if (read_only()) return Status::Ok();
  std::unique_lock<std::mutex> lock(mu_);
  if (!geo_) return Status::Ok();  // nothing was ever written
  for (int attempt = 0;; ++attempt) {
    // Wait for writers and flushes in progress.
    for (;;) {
      bool busy = false;
      for (auto& [i, s] : slabs_) {
        busy = busy || s->state == Slab::State::kFlushing || s->state == Slab::State::kLoading ||
               s->pins;
      }
      if (!busy) break;
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    if (slabs_.empty()) break;
    if (attempt >= 3) {
      // The cause (ENOSPC, ...) is what the caller needs to report.
      const std::string what = "finalize: " + std::to_string(slabs_.size()) +
                               " slabs could not be written";
      if (!sticky_error_.ok()) return sticky_error_.WithContext(what);
      return Status::IOError(what + " (see status errors)", EIO);
    }
    // Flush every remaining slab, partial ones too (missing slices = fill).
    std::vector<std::shared_ptr<Slab>> todo;
    for (auto it = slabs_.begin(); it != slabs_.end();) {
      if (!it->second->dirty) {
        it = slabs_.erase(it);  // nothing the store lacks
      } else {
        todo.push_back(it->second);
        ++it;
      }
    }
    for (auto& s : todo) {
      auto acquired = AcquireSlabLocked(lock, s->index);  // unspools
      if (!acquired.ok()) return acquired.status().WithContext("finalize");
      if ((*acquired)->state == Slab::State::kFilling && !(*acquired)->pins) {
        StartFlushLocked(*acquired);
      }
      // Wait so at most one unspooled slab is held beyond the budget.
      while ((*acquired)->state == Slab::State::kFlushing) {
        cv_.wait_for(lock, std::chrono::milliseconds(20));
      }
    }
  }
  lock.unlock();
  BRICKFS_RETURN_IF_ERROR(FinishPyramid());
  BRICKFS_RETURN_IF_ERROR(CompactDirtyShards());
  BRICKFS_RETURN_IF_ERROR(shards_->SyncDirty());
  BRICKFS_RETURN_IF_ERROR(WriteNamesFile());
  lock.lock();
  finalized_ = true;
  meta_dirty_ = false;
  BRICKFS_RETURN_IF_ERROR(WriteMetaLocked());
  if (journal_) BRICKFS_RETURN_IF_ERROR(journal_->Reset());
  lock.unlock();
  ::rmdir((store_->path() + "/.brickfs/spool").c_str());
  SyncLog::RemoveAll(store_->path() + "/.brickfs/synced");
  LogInfo("finalized " + store_->path());
  return Status::Ok();
}

Status Volume::CompactDirtyShards() {
  // A shard whose dead bytes (superseded blocks and indexes) pass this
  // share of its file is rewritten densely: re-copies and rewrites then
  // leave the store about the size of a fresh ingest.
  const double kMaxDeadShare = options_.compact_dead_share;
  if (kMaxDeadShare >= 1.0) return Status::Ok();
  std::vector<std::pair<int, ShardStore*>> stores{{0, shards_.get()}};
  {
    std::lock_guard<std::mutex> lock(pyr_mu_);
    for (int level = 1; level < levels_built_; ++level) {
      if (levels_[level]) stores.emplace_back(level, levels_[level]->shards.get());
    }
  }
  uint64_t reclaimed = 0, files = 0;
  for (const auto& [level, store] : stores) {
    for (const Shape3& brick : store->Touched()) {
      const BrickId id{static_cast<uint8_t>(level), brick};
      auto journal_replace = [&](uint64_t length, uint64_t inode) -> Status {
        if (!journal_) return Status::Ok();
        std::lock_guard<std::mutex> lock(journal_mu_);
        std::string frame;
        AppendBrickReplace(id, length, inode, &frame);
        BRICKFS_RETURN_IF_ERROR(journal_->Append(frame, /*sync=*/true));
        journaled_bricks_.insert(id);
        return Status::Ok();
      };
      BRICKFS_ASSIGN_OR_RETURN(uint64_t size, store->FileSize(brick));
      ShardCompactOptions co;
      co.min_dead_bytes = static_cast<uint64_t>(kMaxDeadShare * static_cast<double>(size)) + 1;
      co.before_rename = journal_replace;
      CompactBrick done;
      BRICKFS_RETURN_IF_ERROR(CompactShard(*store, *geo_, brick, co, &done)
                                  .WithContext("compacting " + store->BrickPath(brick) +
                                               " at unmount"));
      if (done.compacted) {
        reclaimed += done.bytes_before - done.bytes_after;
        ++files;
        counters_.bytes_written.fetch_add(done.bytes_after);
      }
    }
  }
  if (files) {
    LogInfo("compacted " + std::to_string(files) + " shard files at unmount, " +
            HumanBytes(reclaimed) + " of dead bytes reclaimed");
  }
  return Status::Ok();
}

}  // namespace brickfs
