// Volume, read path (DESIGN.md §6): virtual plane files along z, y and x,
// regions assembled from slabs, the block cache and stored blocks, readahead.
#include "volume/volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "brickfs/version.h"
#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/text.h"
#include "volume/slab.h"
#include "volume/transpose.h"


namespace brickfs {

namespace {

inline void ZeroRun(uint8_t* dst, uint64_t dst_stride, uint64_t n, uint32_t vb) {
  if (dst_stride == vb) {
    std::memset(dst, 0, n * vb);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) std::memset(dst + i * dst_stride, 0, vb);
}

// dst[i] = src[i * src_stride] for n voxels of vb bytes.
inline void GatherColumn(uint8_t* dst, const uint8_t* src, uint64_t n, uint64_t src_stride,
                         uint32_t vb) {
  switch (vb) {
    case 1:
      for (uint64_t i = 0; i < n; ++i) dst[i] = src[i * src_stride];
      break;
    case 2:
      for (uint64_t i = 0; i < n; ++i) std::memcpy(dst + 2 * i, src + i * src_stride, 2);
      break;
    case 4:
      for (uint64_t i = 0; i < n; ++i) std::memcpy(dst + 4 * i, src + i * src_stride, 4);
      break;
    default:
      for (uint64_t i = 0; i < n; ++i) std::memcpy(dst + vb * i, src + i * src_stride, vb);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Read path.

bool Volume::Level0BufferedLocked(int level, uint64_t k0, uint64_t k1) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!geo_ || slabs_.empty()) return false;
  const uint64_t bz = geo_->block[0];
  const uint64_t z0 = k0 << level, z1 = k1 << level;
  for (auto it = slabs_.lower_bound(z0 / bz); it != slabs_.end() && it->first * bz < z1; ++it) {
    if (it->second->dirty) return true;
  }
  return false;
}


std::optional<Geometry> Volume::LevelGeometry(int level) const {
  if (level < 0 || level >= LevelCount()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  if (!geo_ || geo_->shape[0] == 0) return std::nullopt;
  Geometry g = *geo_;
  g.shape = LevelShape(g.shape, level);
  return g;
}

uint64_t Volume::PlaneCount(Axis axis, int level) const {
  auto g = LevelGeometry(level);
  return g ? g->shape[static_cast<int>(axis)] : 0;
}

namespace {

// Centimetres per `unit` for the TIFF resolution unit; 0 when not a length
// TIFF can express.
double CentimetresPer(const std::string& unit) {
  static const std::map<std::string, double> kUnits = {
      {"angstrom", 1e-8},  {"picometer", 1e-10}, {"nanometer", 1e-7}, {"micrometer", 1e-4},
      {"millimeter", 0.1}, {"centimeter", 1.0},  {"decimeter", 10.0}, {"meter", 100.0}};
  auto it = kUnits.find(unit);
  return it == kUnits.end() ? 0.0 : it->second;
}

}  // namespace

std::shared_ptr<const VirtualTiffLayout> Volume::LayoutFor(Axis axis, const Geometry& g,
                                                           int level) const {
  std::array<double, 3> vs;
  std::string unit;
  {
    std::lock_guard<std::mutex> lock(mu_);
    vs = meta_.voxel_size;
    unit = meta_.unit;
  }
  std::lock_guard<std::mutex> lock(layout_mu_);
  Layouts& l = layouts_[level];
  if (l.shape != g.shape) {
    for (auto& a : l.axis) a.reset();
    l.shape = g.shape;
  }
  const int a = static_cast<int>(axis);
  if (!l.axis[a]) {
    VirtualTiffParams p;
    p.dtype = g.dtype;
    int col_axis = 2, row_axis = 1;  // the voxel axes along a row and down the rows
    switch (axis) {
      case Axis::kZ: p.width = g.shape[2]; p.height = g.shape[1]; break;
      case Axis::kY: p.width = g.shape[2]; p.height = g.shape[0]; row_axis = 0; break;
      case Axis::kX: p.width = g.shape[1]; p.height = g.shape[0]; col_axis = 1; row_axis = 0; break;
    }
    // Resolution tags: pixels per centimetre, from the voxel size at this level.
    const double cm = CentimetresPer(unit) * static_cast<double>(uint64_t{1} << level);
    if (cm > 0) {
      p.x_resolution = 1.0 / (vs[col_axis] * cm);
      p.y_resolution = 1.0 / (vs[row_axis] * cm);
      p.resolution_in_cm = true;
    }
    p.description = std::string("brickfs ") + BRICKFS_VERSION + " " + AxisName(axis) +
                    "-plane of " + ShapeToString(g.shape) + " " + std::string(DTypeName(g.dtype)) +
                    (level > 0 ? ", pyramid level " + std::to_string(level) : std::string());
    l.axis[a] = std::make_shared<VirtualTiffLayout>(p);
  }
  return l.axis[a];
}

uint64_t Volume::VirtualFileSize(Axis axis, int level) const {
  auto g = LevelGeometry(level);
  return g ? LayoutFor(axis, *g, level)->file_size() : 0;
}

uint64_t Volume::VirtualPixelOffset(Axis axis, int level) const {
  auto g = LevelGeometry(level);
  return g ? LayoutFor(axis, *g, level)->pixel_offset() : 0;
}

Result<size_t> Volume::ReadVirtualFile(Axis axis, uint64_t index, uint64_t offset, size_t len,
                                       uint8_t* out, int level) {
  auto g = LevelGeometry(level);
  if (!g || index >= g->shape[static_cast<int>(axis)]) {
    return Status::NotFound(std::string(AxisName(axis)) + " plane " + std::to_string(index) +
                            " of level " + std::to_string(level) + " does not exist");
  }
  auto layout = LayoutFor(axis, *g, level);
  const uint64_t size = layout->file_size();
  if (offset >= size) return size_t{0};
  len = static_cast<size_t>(std::min<uint64_t>(len, size - offset));
  BRICKFS_RETURN_IF_ERROR(ReadVirtualBytes(
      *layout, g->voxel_bytes(), offset, len, out,
      [&](uint64_t row, uint64_t nrows, uint8_t* dst) {
        return ReadPlaneRows(axis, index, row, nrows, dst, level);
      },
      [&](uint64_t row, uint64_t c0, uint64_t c1, uint8_t* dst) {
        const Region r = PlaneSpanRegion(*g, axis, index, row, c0, c1);
        if (level == 0) return ReadRegion(*g, r, dst, /*from_store_only=*/false);
        std::lock_guard<std::mutex> lock(pyr_mu_);
        return ReadLevelLocked(level, r, dst, /*store_only=*/false);
      }));
  return len;
}

Status ReadVirtualBytes(const VirtualTiffLayout& layout, uint64_t vb, uint64_t offset, size_t len,
                        uint8_t* out, const PlaneRowsFn& rows, const PlaneSpanFn& span) {
  const uint64_t po = layout.pixel_offset();
  size_t done = 0;
  if (offset < po) {
    done = static_cast<size_t>(std::min<uint64_t>(len, po - offset));
    std::memcpy(out, layout.header().data() + offset, done);
  }
  if (done == len) return Status::Ok();
  const uint64_t rb = layout.row_bytes();
  uint64_t pos = offset + done - po;
  const uint64_t p1 = offset + len - po;
  uint8_t* dst = out + done;
  while (pos < p1) {
    const uint64_t row = pos / rb, in_row = pos % rb;
    if (in_row == 0 && p1 - pos >= rb) {  // whole rows, straight into out
      const uint64_t nrows = (p1 - pos) / rb;
      BRICKFS_RETURN_IF_ERROR(rows(row, nrows, dst));
      pos += nrows * rb;
      dst += nrows * rb;
      continue;
    }
    const uint64_t end = std::min(p1, (row + 1) * rb);
    const uint64_t c0 = in_row / vb, c1 = CeilDiv(end - row * rb, vb);
    std::vector<uint8_t> buf((c1 - c0) * vb);
    BRICKFS_RETURN_IF_ERROR(span(row, c0, c1, buf.data()));
    std::memcpy(dst, buf.data() + (in_row - c0 * vb), end - pos);
    dst += end - pos;
    pos = end;
  }
  return Status::Ok();
}

Volume::Region Volume::PlaneSpanRegion(const Geometry& g, Axis axis, uint64_t index, uint64_t row,
                                       uint64_t c0, uint64_t c1) {
  const uint64_t vb = g.voxel_bytes();
  switch (axis) {
    case Axis::kZ:
      return {{index, row, c0}, {index + 1, row + 1, c1}, {0, 0, vb}};
    case Axis::kY:
      return {{row, index, c0}, {row + 1, index + 1, c1}, {0, 0, vb}};
    case Axis::kX:
      break;
  }
  return {{row, c0, index}, {row + 1, c1, index + 1}, {0, vb, 0}};
}

Region PlaneRegion(const Shape3& shape, uint64_t vb, Axis axis, uint64_t index, uint64_t row0,
                   uint64_t nrows) {
  const uint64_t Y = shape[1], X = shape[2];
  switch (axis) {
    case Axis::kZ:
      return {{index, row0, 0}, {index + 1, row0 + nrows, X}, {0, X * vb, vb}};
    case Axis::kY:
      return {{row0, index, 0}, {row0 + nrows, index + 1, X}, {X * vb, 0, vb}};
    case Axis::kX:
      break;
  }
  return {{row0, 0, index}, {row0 + nrows, Y, index + 1}, {Y * vb, vb, 0}};
}

Volume::Region Volume::PlaneRegion(const Geometry& g, Axis axis, uint64_t index, uint64_t row0,
                                   uint64_t nrows) {
  return brickfs::PlaneRegion(g.shape, g.voxel_bytes(), axis, index, row0, nrows);
}

void Volume::ReadAhead(const Geometry& g, Axis axis, uint64_t index, uint64_t row0,
                       uint64_t nrows, int level, std::shared_ptr<ShardStore> store) {
  const uint32_t lv = static_cast<uint32_t>(level);
  const Region r = PlaneRegion(g, axis, index, row0, nrows);
  const Shape3 first{r.lo[0] / g.block[0], r.lo[1] / g.block[1], r.lo[2] / g.block[2]};
  if (!cache_ || cache_->ContainsAnyLayout({lv, first[0], first[1], first[2]})) {
    return;  // warm: the blocks are decoded already
  }
  const uint64_t rows = axis == Axis::kZ ? g.shape[1] : g.shape[0];
  const uint64_t row_bytes = (axis == Axis::kX ? g.shape[1] : g.shape[2]) * g.voxel_bytes();
  if (row_bytes > kReadAheadBytes) return;  // huge planes: each read fetches its own part
  const uint64_t to = std::min(rows, row0 + nrows + std::max<uint64_t>(1, kReadAheadBytes / row_bytes));
  const uint64_t epoch = cache_->epoch();
  uint64_t from = row0;
  {
    std::lock_guard<std::mutex> lock(ahead_mu_);
    PlaneAhead* rec = nullptr;
    for (auto& a : ahead_) {
      if (a.level == level && a.axis == axis && a.index == index && a.epoch == epoch) rec = &a;
    }
    if (!rec) {
      rec = &ahead_[ahead_next_];
      ahead_next_ = (ahead_next_ + 1) % ahead_.size();
      *rec = {level, axis, index, epoch, row0, row0};
    }
    if (rec->from <= row0 && row0 <= rec->to) {
      from = std::max(row0, rec->to);
    } else {
      rec->from = row0;  // a jump: start a new prefetched range
    }
    if (from >= to) return;  // prefetched by an earlier read of this plane
    rec->to = to;
    if (!readahead_) readahead_ = std::make_unique<ThreadPool>(1);
    const Region ahead = PlaneRegion(g, axis, index, from, to - from);
    readahead_->Submit([this, g, ahead, level, store] {
      PrefetchRegion(g, ahead, level, store.get());
    });
  }
}

Status Volume::ReadPlaneRows(Axis axis, uint64_t index, uint64_t row0, uint64_t nrows,
                             uint8_t* out, int level) {
  auto gopt = LevelGeometry(level);
  if (!gopt) return Status::NotFound("no level " + std::to_string(level) + " (yet)");
  const Geometry& g = *gopt;
  const Region r = PlaneRegion(g, axis, index, row0, nrows);
  if (level == 0) {
    ReadAhead(g, axis, index, row0, nrows, 0, shards_);
    return ReadRegion(g, r, out, /*from_store_only=*/false);
  }
  std::lock_guard<std::mutex> lock(pyr_mu_);
  ReadAhead(g, axis, index, row0, nrows, level, LevelLocked(level).shards);
  return ReadLevelLocked(level, r, out, /*store_only=*/false);
}

Status Volume::ReadRegion(const Geometry& g, const Region& r, uint8_t* out, bool from_store_only) {
  const uint32_t vb = g.voxel_bytes();
  const uint64_t Y = g.shape[1], X = g.shape[2];
  const uint64_t bzs = g.block[0];
  // Consecutive block rows only the store has are read as one batch: one
  // parallel decode, not one per row.
  bool in_batch = false;
  uint64_t batch_lo = 0, batch_epoch = 0;
  auto read_batch = [&](uint64_t hi) {
    in_batch = false;
    Region part = r;
    part.lo[0] = batch_lo;
    part.hi[0] = hi;
    return ReadBlocksOfRegion(g, part, out + (batch_lo - r.lo[0]) * r.stride[0], batch_epoch, 0,
                              shards_.get());
  };
  for (uint64_t bz = r.lo[0] / bzs; bz * bzs < r.hi[0]; ++bz) {
    Region part = r;
    part.lo[0] = std::max(r.lo[0], bz * bzs);
    part.hi[0] = std::min(r.hi[0], (bz + 1) * bzs);
    uint8_t* part_out = out + (part.lo[0] - r.lo[0]) * r.stride[0];
    uint64_t epoch = 0;
    if (!from_store_only) {
      std::unique_lock<std::mutex> lock(mu_);
      epoch = cache_->epoch();
      auto it = slabs_.find(bz);
      if (it != slabs_.end()) {
        Slab& slab = *it->second;
        bool from_spool = !slab.buf && slab.spool_valid;
        // A slab being (re)loaded from the store is not yet the truth: the
        // store is, until loading finishes.
        bool reloading = slab.state == Slab::State::kLoading && !slab.spool_valid;
        if (!reloading && (slab.buf || from_spool)) {
          if (in_batch) BRICKFS_RETURN_IF_ERROR(read_batch(part.lo[0]));
          // Served from memory (or the spool file) — read your own writes.
          std::shared_ptr<uint8_t> buf = slab.buf;
          std::vector<uint8_t> present = slab.present;
          int fd = -1;
          if (from_spool) {
            BRICKFS_ASSIGN_OR_RETURN(fd, OpenOwnedFile(SpoolPath(bz), O_RDONLY));
          } else {
            lock.unlock();
          }
          Status s;
          std::vector<uint8_t> row;
          for (uint64_t z = part.lo[0]; z < part.hi[0]; ++z) {
            uint64_t slot = z - bz * bzs;
            for (uint64_t y = part.lo[1]; y < part.hi[1]; ++y) {
              uint8_t* dst = part_out + (z - part.lo[0]) * r.stride[0] + (y - r.lo[1]) * r.stride[1];
              uint64_t n = part.hi[2] - part.lo[2];
              uint64_t src_off = ((slot * Y + y) * X + part.lo[2]) * vb;
              if (!present[slot]) {
                ZeroRun(dst, r.stride[2], n, vb);
              } else if (buf) {
                CopyRun(dst, r.stride[2], buf.get() + src_off, n, vb);
              } else {
                row.resize(n * vb);
                s = PreadAll(fd, row.data(), n * vb, src_off, SpoolPath(bz));
                if (!s.ok()) break;
                CopyRun(dst, r.stride[2], row.data(), n, vb);
              }
            }
            if (!s.ok()) break;
          }
          if (fd >= 0) ::close(fd);
          BRICKFS_RETURN_IF_ERROR(s);
          continue;
        }
      }
    }
    if (!in_batch) {
      in_batch = true;
      batch_lo = part.lo[0];
      batch_epoch = epoch;  // the oldest: a write since then keeps the batch out of the cache
    }
  }
  if (in_batch) BRICKFS_RETURN_IF_ERROR(read_batch(r.hi[0]));
  return Status::Ok();
}

void Volume::PrefetchRegion(const Geometry& g, const Region& r, int level, ShardStore* store) {
  const Shape3 B = g.block, nb = g.blocks_per_brick();
  const uint32_t lv = static_cast<uint32_t>(level);
  std::map<Shape3, std::vector<uint64_t>> wanted;  // brick -> block indices
  for (uint64_t bz = r.lo[0] / B[0]; bz * B[0] < r.hi[0]; ++bz) {
    for (uint64_t by = r.lo[1] / B[1]; by * B[1] < r.hi[1]; ++by) {
      for (uint64_t bx = r.lo[2] / B[2]; bx * B[2] < r.hi[2]; ++bx) {
        if (cache_ && cache_->ContainsAnyLayout({lv, bz, by, bx})) continue;
        wanted[{bz / nb[0], by / nb[1], bx / nb[2]}].push_back(g.BlockIndexInBrick({bz, by, bx}));
      }
    }
  }
  for (const auto& [brick, idx] : wanted) store->Prefetch(brick, idx);
}

Status Volume::ReadBlocksOfRegion(const Geometry& g, const Region& r, uint8_t* out,
                                  uint64_t epoch, int level, ShardStore* store) {
  const uint32_t lv = static_cast<uint32_t>(level);
  // `out` points at voxel r.lo.
  const uint32_t vb = g.voxel_bytes();
  const Shape3 B = g.block;
  const uint64_t bz0 = r.lo[0] / B[0], bz1 = (r.hi[0] - 1) / B[0];
  const uint64_t by0 = r.lo[1] / B[1], by1 = (r.hi[1] - 1) / B[1];
  const uint64_t bx0 = r.lo[2] / B[2], bx1 = (r.hi[2] - 1) / B[2];
  const uint64_t nbz = bz1 - bz0 + 1, nby = by1 - by0 + 1, nbx = bx1 - bx0 + 1;
  // At most kMaxBatchBlocks blocks are held at once: bigger regions go by
  // groups of block rows.
  const uint64_t rows_per_batch = std::max<uint64_t>(1, kMaxBatchBlocks / (nby * nbx));
  if (nbz > rows_per_batch) {
    for (uint64_t z = r.lo[0]; z < r.hi[0];) {
      Region part = r;
      part.lo[0] = z;
      part.hi[0] = std::min(r.hi[0], (z / B[0] + rows_per_batch) * B[0]);
      BRICKFS_RETURN_IF_ERROR(ReadBlocksOfRegion(g, part, out + (z - r.lo[0]) * r.stride[0], epoch,
                                                 level, store));
      z = part.hi[0];
    }
    return Status::Ok();
  }
  std::vector<BlockData> blocks(nbz * nby * nbx);
  auto coords = [&](size_t slot) {
    return Shape3{bz0 + slot / (nby * nbx), by0 + slot / nbx % nby, bx0 + slot % nbx};
  };
  auto key_of = [&](size_t slot, BlockKey::Layout layout) {
    const Shape3 c = coords(slot);
    return BlockKey{lv, c[0], c[1], c[2], layout};
  };

  // A YZ plane (one x) reads cached blocks x-major (see BlockKey); a natural
  // block it finds cached is transposed then, on its second use. A block it
  // decodes now stays natural and its voxels are gathered while it is hot:
  // one YZ read does not pay for a transpose only its neighbours would use.
  const bool columns = cache_ && r.hi[2] - r.lo[2] == 1 && r.stride[1] == vb;
  const BlockKey::Layout layout = columns ? BlockKey::kColumns : BlockKey::kNatural;

  // Copies block `slot`'s part of the region to `out` (fill where null);
  // `x_major` says the block is in the kColumns layout.
  auto copy_out = [&](size_t slot, bool x_major) {
    const BlockData& data = blocks[slot];
    const Shape3 c = coords(slot);
    const uint64_t z0 = c[0] * B[0], y0 = c[1] * B[1], x0 = c[2] * B[2];
    const uint64_t zlo = std::max(r.lo[0], z0), zhi = std::min(r.hi[0], z0 + B[0]);
    const uint64_t ylo = std::max(r.lo[1], y0), yhi = std::min(r.hi[1], y0 + B[1]);
    const uint64_t xlo = std::max(r.lo[2], x0), xhi = std::min(r.hi[2], x0 + B[2]);
    const uint64_t n = xhi - xlo;
    for (uint64_t z = zlo; z < zhi; ++z) {
      const uint64_t zi = z - z0;
      uint8_t* row = out + (z - r.lo[0]) * r.stride[0] + (xlo - r.lo[2]) * r.stride[2];
      if (data && x_major) {
        // x-major: the (z, y) plane at this x is contiguous, y fastest.
        std::memcpy(row + (ylo - r.lo[1]) * vb,
                    data->data() + (((xlo - x0) * B[0] + zi) * B[1] + (ylo - y0)) * vb,
                    (yhi - ylo) * vb);
      } else if (data && n == 1 && r.stride[1] == vb) {
        // A YZ plane from a natural block: one voxel per (z, y), down the rows.
        GatherColumn(row + (ylo - r.lo[1]) * vb,
                     data->data() + ((zi * B[1] + (ylo - y0)) * B[2] + (xlo - x0)) * vb,
                     yhi - ylo, B[2] * vb, vb);
      } else {
        for (uint64_t y = ylo; y < yhi; ++y) {
          uint8_t* dst = row + (y - r.lo[1]) * r.stride[1];
          if (!data) {
            ZeroRun(dst, r.stride[2], n, vb);
          } else {
            CopyRun(dst, r.stride[2], data->data() + ((zi * B[1] + (y - y0)) * B[2] + (xlo - x0)) * vb,
                    n, vb);
          }
        }
      }
    }
  };

  // 1. Cache lookups; misses grouped by brick.
  const Shape3 nb = g.blocks_per_brick();
  std::map<Shape3, std::vector<size_t>> misses;  // brick -> slots in `blocks`
  std::vector<size_t> to_transpose;
  for (size_t slot = 0; slot < blocks.size(); ++slot) {
    if (cache_ && cache_->Lookup(key_of(slot, layout), &blocks[slot])) continue;
    if (columns && cache_->Lookup(key_of(slot, BlockKey::kNatural), &blocks[slot])) {
      if (blocks[slot]) to_transpose.push_back(slot);
      continue;
    }
    const Shape3 c = coords(slot);
    misses[{c[0] / nb[0], c[1] / nb[1], c[2] / nb[2]}].push_back(slot);
  }
  if (!to_transpose.empty()) {
    auto transpose = [&](size_t k) {
      const size_t slot = to_transpose[k];
      std::shared_ptr<BlockBuffer> t = block_pool_->Get();
      TransposeToColumns(blocks[slot]->data(), t->data(), B, vb);
      blocks[slot] = std::move(t);
    };
    if (pool_ && to_transpose.size() > 8) {
      pool_->ParallelFor(to_transpose.size(), transpose);
    } else {
      for (size_t k = 0; k < to_transpose.size(); ++k) transpose(k);
    }
    for (size_t slot : to_transpose) cache_->Insert(key_of(slot, layout), blocks[slot], epoch);
  }

  // 2. Misses: read (coalesced preads) and decoded by tasks of at most
  //    `per_task` blocks of one brick, spread over the pool and this thread,
  //    each block copied out while it is still in this core's cache. All
  //    misses are prefetched first, so their disk reads overlap.
  std::vector<uint8_t> copied(blocks.size(), 0);
  if (!misses.empty()) {
    size_t total = 0;
    for (const auto& [brick, slots] : misses) total += slots.size();
    const size_t threads = pool_ ? pool_->size() + 1 : 1;
    const size_t per_task = std::max<size_t>(1, CeilDiv(total, 4 * threads));
    struct Task {
      Shape3 brick;
      std::vector<size_t> slots;  // in `blocks`
      std::vector<uint64_t> idx;  // the blocks' positions in the brick's index
    };
    std::vector<Task> tasks;
    for (const auto& [brick, slots] : misses) {
      std::vector<uint64_t> idx;
      idx.reserve(slots.size());
      for (size_t slot : slots) idx.push_back(g.BlockIndexInBrick(coords(slot)));
      store->Prefetch(brick, idx);
      for (size_t i = 0; i < slots.size(); i += per_task) {
        const size_t n = std::min(per_task, slots.size() - i);
        tasks.push_back({brick, {slots.begin() + i, slots.begin() + i + n},
                         {idx.begin() + i, idx.begin() + i + n}});
      }
    }
    std::vector<Status> errs(tasks.size());
    auto load = [&](size_t k) {
      const Task& t = tasks[k];
      BlockCodec& codec = ThreadCodec(meta_.zstd_level);
      errs[k] = store->ReadBlocks(t.brick, t.idx, [&](size_t i, std::string_view enc) -> Status {
        const size_t slot = t.slots[i];
        std::shared_ptr<BlockBuffer> data = block_pool_->Get();
        const Status decoded = codec.Decode(reinterpret_cast<const uint8_t*>(enc.data()),
                                            enc.size(), data->data(), data->size());
        if (!decoded.ok()) {
          return decoded.WithContext(store->BrickPath(t.brick) + " block " + std::to_string(t.idx[i]));
        }
        blocks[slot] = std::move(data);
        copy_out(slot, /*x_major=*/false);
        copied[slot] = 1;
        return Status::Ok();
      });
      if (!errs[k].ok()) return;
      for (size_t slot : t.slots) {
        if (!copied[slot]) copy_out(slot, false);  // never written: fill (null)
        copied[slot] = 1;
      }
    };
    if (pool_ && tasks.size() > 1) {
      pool_->ParallelFor(tasks.size(), load);
    } else {
      for (size_t k = 0; k < tasks.size(); ++k) load(k);
    }
    for (size_t k = 0; k < tasks.size(); ++k) {
      if (!errs[k].ok()) return errs[k];
      if (!cache_) continue;
      for (size_t slot : tasks[k].slots) {
        cache_->Insert(key_of(slot, BlockKey::kNatural), blocks[slot], epoch);
      }
    }
  }
  // 3. The blocks that were cached.
  for (size_t slot = 0; slot < blocks.size(); ++slot) {
    if (!copied[slot]) copy_out(slot, columns);
  }
  return Status::Ok();
}

}  // namespace brickfs
