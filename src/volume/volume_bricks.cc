// Volume, brick files: reading and writing whole aligned bricks. See volume.h.
#include "volume/volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/text.h"
#include "volume/block_encode.h"
#include "volume/slab.h"


namespace brickfs {

// ---------------------------------------------------------------------------
// Bricks.

Shape3 Volume::BrickGrid() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!geo_ || geo_->shape[0] == 0) return {0, 0, 0};
  return geo_->brick_grid();
}

namespace {
// The voxel box [lo, hi) of brick b, clipped at the volume edge.
void BrickBox(const Geometry& g, const Shape3& b, Shape3* lo, Shape3* hi) {
  for (int a = 0; a < 3; ++a) {
    (*lo)[a] = b[a] * g.brick[a];
    (*hi)[a] = std::min(g.shape[a], (*lo)[a] + g.brick[a]);
  }
}
}  // namespace

uint64_t Volume::BrickFileSize(const Shape3& b) const {
  auto g = geometry();
  if (!g) return 0;
  Shape3 lo, hi;
  BrickBox(*g, b, &lo, &hi);
  return (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]) * g->voxel_bytes();
}

Result<size_t> Volume::ReadBrickFile(const Shape3& b, uint64_t offset, size_t len, uint8_t* out) {
  auto gopt = geometry();
  if (!gopt) return Status::NotFound("volume has no slices yet");
  const Geometry& g = *gopt;
  Shape3 lo, hi;
  BrickBox(g, b, &lo, &hi);
  if (lo[0] >= hi[0] || lo[1] >= hi[1] || lo[2] >= hi[2]) {
    return Status::NotFound("brick " + ShapeToString(b) + " is outside the volume");
  }
  const uint64_t vb = g.voxel_bytes();
  const uint64_t row = (hi[2] - lo[2]) * vb, plane = (hi[1] - lo[1]) * row;
  const uint64_t size = plane * (hi[0] - lo[0]);
  if (offset >= size) return size_t{0};
  len = static_cast<size_t>(std::min<uint64_t>(len, size - offset));
  const uint64_t z0 = offset / plane, z1 = CeilDiv(offset + len, plane);
  std::vector<uint8_t> buf((z1 - z0) * plane);
  Region r{{lo[0] + z0, lo[1], lo[2]}, {lo[0] + z1, hi[1], hi[2]}, {plane, row, vb}};
  BRICKFS_RETURN_IF_ERROR(ReadRegion(g, r, buf.data(), /*from_store_only=*/false));
  std::memcpy(out, buf.data() + (offset - z0 * plane), len);
  return len;
}

Status Volume::WriteBrick(const Shape3& b, const uint8_t* data, size_t size,
                          const std::string& name, const IntervalSet* written) {
  auto fail = [&](Status s) {
    RecordError(name, s.message());
    return s;
  };
  if (read_only()) return Status::Unsupported("the mount is read-only");
  Geometry g;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!geo_ || geo_->shape[0] == 0) {
      lock.unlock();  // RecordError takes mu_
      return fail(Status::InvalidArgument(
          name + ": the volume has no shape yet; create it with brickfs create or copy a slice "
                 "into z/ first"));
    }
    g = *geo_;
  }
  const Shape3 grid = g.brick_grid();
  if (b[0] >= grid[0] || b[1] >= grid[1] || b[2] >= grid[2]) {
    return fail(Status::InvalidArgument(name + ": brick " + ShapeToString(b) +
                                        " is outside the volume's brick grid " +
                                        ShapeToString(grid)));
  }
  Shape3 lo, hi;
  BrickBox(g, b, &lo, &hi);
  const uint64_t vb = g.voxel_bytes();
  const uint64_t nz = hi[0] - lo[0], ny = hi[1] - lo[1], nx = hi[2] - lo[2];
  if (size != nz * ny * nx * vb) {
    return fail(Status::InvalidArgument(
        name + ": a brick file must be written whole: got " + std::to_string(size) +
        " bytes, expected " + std::to_string(nz * ny * nx * vb) + " (" + std::to_string(nz) +
        "x" + std::to_string(ny) + "x" + std::to_string(nx) + " " +
        std::string(DTypeName(g.dtype)) + ")"));
  }
  if (written && !written->ContainsAll(0, size)) {
    const auto gap = written->Gaps(0, size)[0];
    return fail(Status::InvalidArgument(
        name + ": bytes [" + std::to_string(gap.first) + ", " + std::to_string(gap.second) +
        ") were never written (an interrupted or out-of-order write); a brick file must be "
        "written whole"));
  }
  // Encode every block of the brick; one task per block row in z.
  const Shape3 B = g.block;
  const Shape3 nb = g.blocks_per_brick();
  const Shape3 first{b[0] * nb[0], b[1] * nb[1], b[2] * nb[2]};
  const Shape3 block_grid = g.block_grid();
  const uint64_t rows = std::min(nb[0], block_grid[0] - first[0]);
  std::vector<EncodedBlocks> encoded(rows);
  std::vector<Status> errs(rows);
  auto encode_row = [&](size_t row) {
    BlockSource src;
    src.lo = {(first[0] + row) * B[0], lo[1], lo[2]};
    src.hi = {std::min(hi[0], src.lo[0] + B[0]), hi[1], hi[2]};
    src.row = nx;
    src.plane = [&](uint64_t z) { return data + (z - lo[0]) * ny * nx * vb; };
    errs[row] = EncodeBlocks(g, meta_.zstd_level, b, src, nullptr, &encoded[row]);
  };
  if (pool_ && rows > 1) {
    pool_->ParallelFor(rows, encode_row);
  } else {
    for (size_t row = 0; row < rows; ++row) encode_row(row);
  }
  std::vector<EncodedBlock> blocks;
  for (size_t row = 0; row < rows; ++row) {
    if (!errs[row].ok()) return fail(errs[row].WithContext(name));
    for (const EncodedBlock& e : encoded[row].Views()) blocks.push_back(e);
  }
  auto journal_replace = [&](uint64_t length, uint64_t inode) -> Status {
    if (!journal_) return Status::Ok();
    std::lock_guard<std::mutex> lock(journal_mu_);
    std::string frame;
    AppendBrickReplace(BrickId{0, b}, length, inode, &frame);
    BRICKFS_RETURN_IF_ERROR(journal_->Append(frame, /*sync=*/true));
    journaled_bricks_.insert(BrickId{0, b});
    return Status::Ok();
  };

  // Admission: one writer per brick, and the slabs of its z range held, so
  // no slice is applied to them and no flush of them runs meanwhile. Whoever
  // is admitted last wins; the in-memory slabs get the brick's voxels too.
  const uint64_t s0 = lo[0] / B[0], s1 = CeilDiv(hi[0], B[0]);
  std::unique_lock<std::mutex> lock(mu_);
  while (bricks_writing_.count(b)) cv_.wait(lock);
  bricks_writing_.insert(b);
  for (uint64_t s = s0; s < s1; ++s) ++brick_holds_[s];
  for (;;) {
    bool busy = false;
    for (uint64_t s = s0; s < s1 && !busy; ++s) {
      auto it = slabs_.find(s);
      busy = it != slabs_.end() && (it->second->state == Slab::State::kLoading ||
                                    it->second->state == Slab::State::kFlushing ||
                                    it->second->pins);
    }
    if (!busy) break;
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  ScopeGuard release([&] {
    if (!lock.owns_lock()) lock.lock();
    bricks_writing_.erase(b);
    for (uint64_t s = s0; s < s1; ++s) {
      if (--brick_holds_[s] == 0) brick_holds_.erase(s);
      auto it = slabs_.find(s);
      if (it != slabs_.end() && !brick_holds_.count(s)) MaybeCompleteLocked(it->second);
    }
    cv_.notify_all();
  });
  if (!meta_dirty_) {
    meta_dirty_ = true;
    finalized_ = false;
    Status m = WriteMetaLocked();
    if (!m.ok()) LogError("writing metadata: " + m.ToString());
  }
  lock.unlock();

  AppendStats stats;
  Status s = shards_->Replace(b, blocks, journal_replace, &stats);
  if (s.ok() && journal_) {
    // Its slices hold stored data now, also for a recovery (which otherwise
    // would list them missing, and a slab later loaded for a rewrite would
    // not load them).
    std::string frame;
    AppendRangeCommit(lo[0], hi[0], &frame);
    s = journal_->Append(frame, /*sync=*/true);
  }
  if (!s.ok()) return fail(s.WithContext(name));
  counters_.bytes_written.fetch_add(stats.bytes_written);
  counters_.block_bytes_written.fetch_add(stats.block_bytes);
  counters_.blocks_written.fetch_add(blocks.size());
  counters_.bricks_written.fetch_add(1);

  std::vector<BlockKey> keys;
  for (uint64_t bz = first[0]; bz < first[0] + rows; ++bz) {
    for (uint64_t by = first[1]; by < std::min(first[1] + nb[1], block_grid[1]); ++by) {
      for (uint64_t bx = first[2]; bx < std::min(first[2] + nb[2], block_grid[2]); ++bx) {
        keys.push_back({0, bz, by, bx, BlockKey::kNatural});
        keys.push_back({0, bz, by, bx, BlockKey::kColumns});
      }
    }
  }
  lock.lock();
  cache_->Invalidate(keys);
  // Slabs of its z range still in memory mirror the store: patch them.
  // Their patched slices count as received (they read as the brick), and
  // those fsynced before are fsynced again as patched (an older record must
  // not come back over the brick after a crash).
  std::vector<uint64_t> resync;
  const uint64_t Y = g.shape[1], X = g.shape[2];
  for (uint64_t sl = s0; sl < s1; ++sl) {
    auto it = slabs_.find(sl);
    if (it == slabs_.end()) continue;
    Slab& slab = *it->second;
    int fd = -1;
    if (!slab.buf) {
      auto opened = OpenOwnedFile(SpoolPath(sl), O_WRONLY);
      if (!opened.ok()) {
        lock.unlock();  // RecordError (in fail) takes mu_
        return fail(opened.status().WithContext(name + ": patching spooled slab"));
      }
      fd = *opened;
    }
    for (uint64_t z = std::max(lo[0], sl * B[0]); z < std::min(hi[0], (sl + 1) * B[0]); ++z) {
      const uint64_t slot = z - sl * B[0];
      if (!slab.valid[slot]) {  // the rest of this plane is fill
        std::vector<uint8_t> zeros;
        if (slab.buf) {
          std::memset(slab.buf.get() + slot * Y * X * vb, 0, Y * X * vb);
        } else {
          zeros.assign(Y * X * vb, 0);
          if (Status w = PwriteAll(fd, zeros.data(), zeros.size(), slot * Y * X * vb, SpoolPath(sl));
              !w.ok()) {
            ::close(fd);
            return fail(w.WithContext(name));
          }
        }
        slab.valid[slot] = 1;
      }
      for (uint64_t y = lo[1]; y < hi[1]; ++y) {
        const uint64_t at = ((slot * Y + y) * X + lo[2]) * vb;
        const uint8_t* src = data + ((z - lo[0]) * ny + (y - lo[1])) * nx * vb;
        if (slab.buf) {
          std::memcpy(slab.buf.get() + at, src, nx * vb);
        } else if (Status w = PwriteAll(fd, src, nx * vb, at, SpoolPath(sl)); !w.ok()) {
          ::close(fd);
          return fail(w.WithContext(name));
        }
      }
      if (slab.synced[slot]) resync.push_back(z);
      slab.synced[slot] = 0;
      if (!slab.present[slot]) {
        slab.present[slot] = 1;
        ++slab.count;
      }
    }
    if (fd >= 0) ::close(fd);
    slab.dirty = true;
  }
  // Its z range now holds written data: count those slices as present; the
  // writers' names of those slices no longer describe them.
  received_.Insert(lo[0], hi[0]);
  committed_.Insert(lo[0], hi[0]);
  names_.ForgetRange(lo[0], hi[0]);
  generation_.fetch_add(1);
  lock.unlock();
  for (uint64_t z = lo[0]; z < hi[0]; ++z) JournalNameChange(z, nullptr);
  for (uint64_t z : resync) {
    if (Status r = SyncSlice(z); !r.ok()) return fail(r.WithContext(name + ": fsync of patched z"));
  }
  std::lock_guard<std::mutex> pyr_lock(pyr_mu_);
  s = UpdatePyramidBoxLocked(lo, hi, data);
  if (!s.ok()) {
    if (pyr_error_.ok()) pyr_error_ = s;
    return fail(s.WithContext(name + ": updating the pyramid levels above it"));
  }
  return Status::Ok();
}

}  // namespace brickfs
