// The multiresolution pyramid (DESIGN.md §8): levels 1..N-1, built while
// ingesting, without reading level 0 back.
//
// Ingest. A committed level-0 slab (block[0] slices) is downsampled 2x2x2
// into block[0]/2 planes of level 1. Planes fed to level L wait in the
// pending row (block[0] planes of level L) that holds them; a row whose
// planes are all present is encoded and appended like a level-0 slab, so
// every block of every level is written once. Planes fed to level L are
// carried to L+1 at once, pair by pair; the partner of a pair comes from
// the planes in hand, the pending row, or the level-L store (never level 0).
// A pair computed at the volume's current z edge (one plane) is remembered
// in edges_ and redone at finalize if the volume grew past it.
//
// Memory: ingesting in order holds half a row per level (1/8 of a level-0
// slab for level 1, 1/32 for level 2, ...: under 1/6 of one slab). Pending
// rows are capped at mem_budget/8; beyond, the least recently fed row is
// written partially (its missing planes loaded from its level's store).
//
// Brick writes and crash recovery update levels box by box
// (UpdatePyramidBoxLocked): the box is downsampled level by level, and each
// level's blocks it touches are read, patched and appended again.
//
// Levels: a new volume always feeds level 1; level L+1 starts when level L
// no longer fits one brick (the volume grew) and is first built from level L.
// Finalize lists NumLevels(shape) levels and removes the directories above.
//
// Durability: level appends are journaled like level 0's (base length before
// the first append, committed length after an fsync), so recovery cuts torn
// level shards; the levels over every level-0 brick the journal names are
// then rebuilt from level 0 (RebuildPyramid).
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "volume/block_encode.h"
#include "volume/volume.h"

namespace brickfs {

namespace {

Shape3 Sub(const Shape3& a, const Shape3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }

}  // namespace

void Volume::InitPyramidLocked(bool new_volume) {
  fixed_shape_ = meta_.fixed_shape;
  method_ = ParseDownsampleMethod(meta_.downsample_method).value_or(DownsampleMethod::kMean);
  pyramid_ = options_.pyramid && !read_only();
  // A new volume feeds level 1 from its first slab; a store with data keeps
  // the levels its metadata lists (more are built from them when needed).
  levels_built_ = pyramid_ ? (new_volume ? 2 : std::max(1, meta_.num_levels)) : 1;
  if (read_only()) levels_built_ = std::max(1, meta_.num_levels);
  levels_.clear();
  levels_.resize(kMaxLevels);
  level_count_ = levels_built_;
  // The last plane of a level over an odd number of planes below was
  // averaged from one plane; if the volume grows past it in this session it
  // is redone at finalize (FinishPyramid), like an edge made while ingesting.
  edges_.clear();
  if (geo_) {
    for (int level = 1; level < levels_built_; ++level) {
      const uint64_t below = LevelShape(geo_->shape, level - 1)[0];
      if (below % 2) edges_.insert({level, below / 2});
    }
  }
}

Shape3 Volume::Level0Shape() const {
  std::lock_guard<std::mutex> lock(mu_);
  return geo_ ? geo_->shape : Shape3{0, 0, 0};
}

Volume::Level& Volume::LevelLocked(int level) {
  std::unique_ptr<Level>& lv = levels_[level];
  Geometry g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    g = *geo_;
  }
  g.shape = LevelShape(g.shape, level);
  if (!lv) {
    lv = std::make_unique<Level>();
    lv->shards = std::make_shared<ShardStore>(store_->storage(), std::to_string(level), g, read_only());
  }
  lv->geo = g;
  return *lv;
}

Geometry Volume::LevelGeoLocked(int level) {
  if (level > 0) return LevelLocked(level).geo;
  std::lock_guard<std::mutex> lock(mu_);
  return *geo_;
}

ShardStore* Volume::LevelStore(int level) { return levels_[level]->shards.get(); }

int Volume::LevelCount() const {
  const int built = level_count_.load();
  if (built <= 1) return 1;
  std::lock_guard<std::mutex> lock(mu_);
  if (!geo_ || geo_->shape[0] == 0) return 1;
  return std::min(built, NumLevels(geo_->shape, geo_->brick));
}

// ---------------------------------------------------------------------------
// Ingest: slabs feed level 1, levels feed the next.

Status Volume::FeedSlabLocked(uint64_t slab, uint64_t planes, const std::vector<uint8_t>& down) {
  Status s = [&]() -> Status {
    BRICKFS_RETURN_IF_ERROR(EnsureLevelsLocked());
    if (levels_built_ < 2 || down.empty()) return Status::Ok();
    const uint64_t z0 = slab * LevelGeoLocked(0).block[0];
    if (planes % 2) edges_.insert({1, (z0 + planes) / 2});  // the last pair had one plane
    BRICKFS_RETURN_IF_ERROR(FeedLevelLocked(1, z0 / 2, CeilDiv(planes, 2), down.data()));
    return CommitLevelAppendsLocked();
  }();
  if (!s.ok() && pyr_error_.ok()) pyr_error_ = s;
  return s;
}

Status Volume::FeedLevelLocked(int level, uint64_t k0, uint64_t n, const uint8_t* data) {
  Level& lv = LevelLocked(level);
  const Geometry g = lv.geo;
  const uint64_t B0 = g.block[0], plane = g.slice_bytes();
  for (uint64_t i = 0; i < n; ++i) {
    LevelRow& row = lv.rows[(k0 + i) / B0];
    if (row.slices.empty()) row.slices.resize(B0);
    std::vector<uint8_t>& p = row.slices[(k0 + i) % B0];
    if (p.empty()) {
      p.resize(plane);
      ++row.count;
      pyr_bytes_ += plane;
    }
    std::memcpy(p.data(), data + i * plane, plane);
    row.touched = ++pyr_tick_;
  }
  NotePyramidBytes(0);
  if (level + 1 < levels_built_) {
    const uint64_t j1 = std::min(CeilDiv(k0 + n, 2), CeilDiv(g.shape[0], 2));
    BRICKFS_RETURN_IF_ERROR(CarryUpLocked(level, k0 / 2, j1, k0, n, data));
  }
  // Rows now complete: every plane of the row (of the fixed shape) present.
  for (uint64_t r = k0 / B0; r * B0 < k0 + n; ++r) {
    auto it = lv.rows.find(r);
    if (it == lv.rows.end()) continue;
    const uint64_t want = fixed_shape_ ? std::min(B0, g.shape[0] - r * B0) : B0;
    if (it->second.count >= want) BRICKFS_RETURN_IF_ERROR(FlushRowLocked(level, r));
  }
  return TrimPendingLocked();
}

Status Volume::LevelPlaneLocked(int level, uint64_t k, uint64_t k0, uint64_t n,
                                const uint8_t* data, uint8_t* out) {
  const Geometry g = LevelGeoLocked(level);
  const uint64_t plane = g.slice_bytes();
  if (data && k >= k0 && k < k0 + n) {
    std::memcpy(out, data + (k - k0) * plane, plane);
    return Status::Ok();
  }
  const Region r = CompactRegion({k, 0, 0}, {k + 1, g.shape[1], g.shape[2]}, g.voxel_bytes());
  if (level == 0) return ReadRegion(g, r, out, /*from_store_only=*/false);
  return ReadLevelLocked(level, r, out, /*store_only=*/false);
}

Status Volume::CarryUpLocked(int level, uint64_t j0, uint64_t j1, uint64_t k0, uint64_t n,
                             const uint8_t* data) {
  if (j1 <= j0) return Status::Ok();
  const Geometry g = LevelGeoLocked(level);
  const uint64_t plane = g.slice_bytes();
  const Shape3 up = DownsampledShape({2, g.shape[1], g.shape[2]});
  const uint64_t up_plane = up[1] * up[2] * g.voxel_bytes();
  std::vector<uint8_t> out((j1 - j0) * up_plane), pair;
  for (uint64_t j = j0; j < j1; ++j) {
    const uint64_t a = 2 * j, count = std::min<uint64_t>(2, g.shape[0] - a);
    const uint8_t* src;
    if (data && a >= k0 && a + count <= k0 + n) {
      src = data + (a - k0) * plane;
    } else {
      pair.resize(count * plane);
      for (uint64_t c = 0; c < count; ++c) {
        BRICKFS_RETURN_IF_ERROR(LevelPlaneLocked(level, a + c, k0, n, data, pair.data() + c * plane));
      }
      src = pair.data();
    }
    Downsample2x(g.dtype, method_, src, {count, g.shape[1], g.shape[2]},
                 out.data() + (j - j0) * up_plane);
    if (count == 1) edges_.insert({level + 1, j});
  }
  return FeedLevelLocked(level + 1, j0, j1 - j0, out.data());
}

Status Volume::FlushRowLocked(int level, uint64_t r) {
  Level& lv = LevelLocked(level);
  auto it = lv.rows.find(r);
  if (it == lv.rows.end()) return Status::Ok();
  const Geometry g = lv.geo;
  const uint64_t B0 = g.block[0], plane = g.slice_bytes();
  const uint64_t z0 = r * B0, z1 = std::min(z0 + B0, g.shape[0]);
  LevelRow& row = it->second;
  // Planes never fed keep what the store has (a row written partially).
  std::vector<uint8_t> stored;
  if (row.count < z1 - z0) {
    stored.resize((z1 - z0) * plane);
    BRICKFS_RETURN_IF_ERROR(ReadLevelLocked(
        level, CompactRegion({z0, 0, 0}, {z1, g.shape[1], g.shape[2]}, g.voxel_bytes()),
        stored.data(), /*store_only=*/true));
  }
  BlockSource src;
  src.lo = {z0, 0, 0};
  src.hi = {z1, g.shape[1], g.shape[2]};
  src.row = g.shape[2];
  src.plane = [&](uint64_t z) -> const uint8_t* {
    const std::vector<uint8_t>& p = row.slices[z - z0];
    if (!p.empty()) return p.data();
    return stored.empty() ? nullptr : stored.data() + (z - z0) * plane;
  };
  const Shape3 grid = g.brick_grid();
  const uint64_t kz = r / g.blocks_per_brick()[0];
  std::vector<Status> errs(grid[1] * grid[2]);
  std::mutex appended_mu;
  auto write_brick = [&](size_t i) {
    const Shape3 brick{kz, i / grid[2], i % grid[2]};
    auto existing = lv.shards->GetIndex(brick);
    EncodedBlocks enc;
    Status s = existing.status();
    if (s.ok()) s = EncodeBlocks(g, meta_.zstd_level, brick, src, existing->get(), &enc);
    if (s.ok() && !enc.entries.empty()) {
      AppendStats stats;
      s = JournalBrickBase(BrickId{static_cast<uint8_t>(level), brick});
      if (s.ok()) s = lv.shards->Append(brick, enc.Views(), &stats);
      if (s.ok()) {
        pyr_bytes_written_.fetch_add(stats.bytes_written);
        std::lock_guard<std::mutex> lock(appended_mu);
        level_appended_.push_back({BrickId{static_cast<uint8_t>(level), brick}, stats.file_size});
      }
    }
    errs[i] = s;
  };
  if (pool_) {
    pool_->ParallelFor(errs.size(), write_brick);
  } else {
    for (size_t i = 0; i < errs.size(); ++i) write_brick(i);
  }
  for (const Status& s : errs) BRICKFS_RETURN_IF_ERROR(s);
  pyr_bytes_ -= row.count * plane;
  lv.rows.erase(it);
  InvalidateLevelRowLocked(level, r);
  pyr_rows_written_.fetch_add(1);
  return Status::Ok();
}

Status Volume::TrimPendingLocked() {
  const uint64_t budget = std::max<uint64_t>(options_.mem_budget / 8, 1);
  while (pyr_bytes_ > budget) {
    int oldest_level = 0;
    uint64_t oldest_row = 0, oldest_tick = ~uint64_t{0};
    for (int l = 1; l < levels_built_; ++l) {
      if (!levels_[l]) continue;
      for (const auto& [r, row] : levels_[l]->rows) {
        if (row.touched < oldest_tick) {
          oldest_tick = row.touched;
          oldest_level = l;
          oldest_row = r;
        }
      }
    }
    if (oldest_level == 0) break;
    BRICKFS_RETURN_IF_ERROR(FlushRowLocked(oldest_level, oldest_row));
  }
  return Status::Ok();
}

void Volume::NotePyramidBytes(int64_t delta) {
  if (delta != 0) pyr_down_bytes_.fetch_add(static_cast<uint64_t>(delta));
  const uint64_t now = pyr_bytes_.load() + pyr_down_bytes_.load();
  uint64_t peak = pyr_peak_bytes_.load();
  while (now > peak && !pyr_peak_bytes_.compare_exchange_weak(peak, now)) {
  }
}

void Volume::InvalidateLevelRowLocked(int level, uint64_t bz) {
  const Shape3 grid = levels_[level]->geo.block_grid();
  std::vector<BlockKey> keys;
  keys.reserve(2 * grid[1] * grid[2]);
  for (uint64_t by = 0; by < grid[1]; ++by) {
    for (uint64_t bx = 0; bx < grid[2]; ++bx) {
      keys.push_back({static_cast<uint32_t>(level), bz, by, bx, BlockKey::kNatural});
      keys.push_back({static_cast<uint32_t>(level), bz, by, bx, BlockKey::kColumns});
    }
  }
  if (cache_) cache_->Invalidate(keys);
  generation_.fetch_add(1);
}

Status Volume::CommitLevelAppendsLocked() {
  if (level_appended_.empty()) return Status::Ok();
  std::map<int, std::vector<Shape3>> bricks;
  std::string frames;
  for (const auto& [id, length] : level_appended_) {
    bricks[id.level].push_back(id.brick);
    AppendBrickLength(id, length, &frames);
  }
  level_appended_.clear();
  if (!journal_) return Status::Ok();
  for (const auto& [level, list] : bricks) {
    BRICKFS_RETURN_IF_ERROR(LevelStore(level)->SyncBricks(list));
  }
  return journal_->Append(frames, /*sync=*/true);
}

// ---------------------------------------------------------------------------
// Reads.

Status Volume::ComputeLevelRegionLocked(int level, const Region& r, uint8_t* out) {
  const Geometry below = LevelGeoLocked(level - 1);
  const uint32_t vb = below.voxel_bytes();
  Shape3 ilo, ihi;
  for (int a = 0; a < 3; ++a) {
    ilo[a] = 2 * r.lo[a];
    ihi[a] = std::min(2 * r.hi[a], below.shape[a]);
  }
  const Shape3 box = Sub(ihi, ilo);
  std::vector<uint8_t> in(Product(box) * vb);
  const Region rin = CompactRegion(ilo, ihi, vb);
  if (level == 1) {
    BRICKFS_RETURN_IF_ERROR(ReadRegion(below, rin, in.data(), /*from_store_only=*/false));
  } else {
    BRICKFS_RETURN_IF_ERROR(ReadLevelLocked(level - 1, rin, in.data(), /*store_only=*/false));
  }
  const Shape3 n = DownsampledShape(box);
  std::vector<uint8_t> down(Product(n) * vb);
  Downsample2x(below.dtype, method_, in.data(), box, down.data());
  for (uint64_t z = 0; z < n[0]; ++z) {
    for (uint64_t y = 0; y < n[1]; ++y) {
      CopyRun(out + z * r.stride[0] + y * r.stride[1], r.stride[2],
              down.data() + (z * n[1] + y) * n[2] * vb, n[2], vb);
    }
  }
  return Status::Ok();
}

Status Volume::ReadLevelLocked(int level, const Region& r, uint8_t* out, bool store_only) {
  if (!store_only && Level0BufferedLocked(level, r.lo[0], r.hi[0])) {
    // Planes over level-0 slices still in slab buffers: computed from the
    // level below now (the levels get them when the slab commits), so a
    // level reads right as soon as its slices are in, committed or not.
    for (uint64_t k = r.lo[0]; k < r.hi[0];) {
      uint64_t e = k + 1;
      const bool buffered = Level0BufferedLocked(level, k, e);
      while (e < r.hi[0] && Level0BufferedLocked(level, e, e + 1) == buffered) ++e;
      Region part = r;
      part.lo[0] = k;
      part.hi[0] = e;
      uint8_t* dst = out + (k - r.lo[0]) * r.stride[0];
      if (buffered) {
        BRICKFS_RETURN_IF_ERROR(ComputeLevelRegionLocked(level, part, dst));
      } else {
        BRICKFS_RETURN_IF_ERROR(ReadLevelStoredLocked(level, part, dst, false));
      }
      k = e;
    }
    return Status::Ok();
  }
  return ReadLevelStoredLocked(level, r, out, store_only);
}

Status Volume::ReadLevelStoredLocked(int level, const Region& r, uint8_t* out, bool store_only) {
  Level& lv = LevelLocked(level);
  const Geometry g = lv.geo;
  const uint32_t vb = g.voxel_bytes();
  const uint64_t B0 = g.block[0], X = g.shape[2];
  const uint64_t epoch = cache_ ? cache_->epoch() : 0;
  // 1. The store, for block rows not wholly pending; consecutive ones as one
  //    batch (one parallel decode).
  auto all_pending = [&](uint64_t bz) {
    auto it = store_only ? lv.rows.end() : lv.rows.find(bz);
    if (it == lv.rows.end()) return false;
    for (uint64_t z = std::max(r.lo[0], bz * B0); z < std::min(r.hi[0], (bz + 1) * B0); ++z) {
      if (it->second.slices[z - bz * B0].empty()) return false;
    }
    return true;
  };
  for (uint64_t bz = r.lo[0] / B0; bz * B0 < r.hi[0];) {
    if (all_pending(bz)) {
      ++bz;
      continue;
    }
    uint64_t end = bz + 1;
    while (end * B0 < r.hi[0] && !all_pending(end)) ++end;
    Region part = r;
    part.lo[0] = std::max(r.lo[0], bz * B0);
    part.hi[0] = std::min(r.hi[0], end * B0);
    BRICKFS_RETURN_IF_ERROR(ReadBlocksOfRegion(g, part, out + (part.lo[0] - r.lo[0]) * r.stride[0],
                                               epoch, level, lv.shards.get()));
    bz = end;
  }
  // 2. Pending planes over it.
  if (store_only) return Status::Ok();
  for (uint64_t bz = r.lo[0] / B0; bz * B0 < r.hi[0]; ++bz) {
    auto it = lv.rows.find(bz);
    if (it == lv.rows.end()) continue;
    for (uint64_t z = std::max(r.lo[0], bz * B0); z < std::min(r.hi[0], (bz + 1) * B0); ++z) {
      const std::vector<uint8_t>& p = it->second.slices[z - bz * B0];
      if (p.empty()) continue;
      for (uint64_t y = r.lo[1]; y < r.hi[1]; ++y) {
        CopyRun(out + (z - r.lo[0]) * r.stride[0] + (y - r.lo[1]) * r.stride[1], r.stride[2],
                p.data() + (y * X + r.lo[2]) * vb, r.hi[2] - r.lo[2], vb);
      }
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Box updates: brick writes and recovery.

Status Volume::UpdatePyramidBoxLocked(const Shape3& lo, const Shape3& hi, const uint8_t* data) {
  if (!pyramid_ || levels_built_ < 2) return Status::Ok();
  Shape3 clo = lo, chi = hi;
  std::vector<uint8_t> cur;
  const uint8_t* cd = data;
  for (int level = 1; level < levels_built_; ++level) {
    const Geometry below = LevelGeoLocked(level - 1);
    const uint32_t vb = below.voxel_bytes();
    Shape3 nlo, nhi, ilo, ihi;
    for (int a = 0; a < 3; ++a) {
      nlo[a] = clo[a] / 2;
      nhi[a] = CeilDiv(chi[a], 2);
      ilo[a] = 2 * nlo[a];
      ihi[a] = std::min(2 * nhi[a], below.shape[a]);
    }
    // The box's 2x2x2 windows may reach past it (odd offsets): read them.
    std::vector<uint8_t> in;
    const uint8_t* src = cd;
    if (ilo != clo || ihi != chi) {
      in.resize(Product(Sub(ihi, ilo)) * vb);
      const Region r = CompactRegion(ilo, ihi, vb);
      if (level == 1) {
        BRICKFS_RETURN_IF_ERROR(ReadRegion(below, r, in.data(), /*from_store_only=*/false));
      } else {
        BRICKFS_RETURN_IF_ERROR(ReadLevelLocked(level - 1, r, in.data(), /*store_only=*/false));
      }
      src = in.data();
    }
    std::vector<uint8_t> out(Product(DownsampledShape(Sub(ihi, ilo))) * vb);
    Downsample2x(below.dtype, method_, src, Sub(ihi, ilo), out.data());
    BRICKFS_RETURN_IF_ERROR(WriteLevelBoxLocked(level, nlo, nhi, out.data()));
    clo = nlo;
    chi = nhi;
    cur = std::move(out);
    cd = cur.data();
  }
  return CommitLevelAppendsLocked();
}

Status Volume::WriteLevelBoxLocked(int level, const Shape3& lo, const Shape3& hi,
                                   const uint8_t* data) {
  Level& lv = LevelLocked(level);
  const Geometry g = lv.geo;
  const uint32_t vb = g.voxel_bytes();
  const Shape3 B = g.block, bs = Sub(hi, lo);
  // Pending planes hold newer data than the store: patch them too.
  for (uint64_t z = lo[0]; z < hi[0]; ++z) {
    auto it = lv.rows.find(z / B[0]);
    if (it == lv.rows.end() || it->second.slices[z % B[0]].empty()) continue;
    uint8_t* p = it->second.slices[z % B[0]].data();
    for (uint64_t y = lo[1]; y < hi[1]; ++y) {
      std::memcpy(p + (y * g.shape[2] + lo[2]) * vb, data + ((z - lo[0]) * bs[1] + (y - lo[1])) * bs[2] * vb,
                  bs[2] * vb);
    }
  }
  // The box grown to whole blocks: the stored voxels around it, patched.
  Shape3 elo, ehi;
  for (int a = 0; a < 3; ++a) {
    elo[a] = lo[a] / B[a] * B[a];
    ehi[a] = std::min(CeilDiv(hi[a], B[a]) * B[a], g.shape[a]);
  }
  const Shape3 es = Sub(ehi, elo);
  std::vector<uint8_t> buf(Product(es) * vb);
  if (elo != lo || ehi != hi) {
    BRICKFS_RETURN_IF_ERROR(
        ReadLevelLocked(level, CompactRegion(elo, ehi, vb), buf.data(), /*store_only=*/true));
  }
  for (uint64_t z = lo[0]; z < hi[0]; ++z) {
    for (uint64_t y = lo[1]; y < hi[1]; ++y) {
      std::memcpy(buf.data() + (((z - elo[0]) * es[1] + (y - elo[1])) * es[2] + (lo[2] - elo[2])) * vb,
                  data + ((z - lo[0]) * bs[1] + (y - lo[1])) * bs[2] * vb, bs[2] * vb);
    }
  }
  BlockSource src;
  src.lo = elo;
  src.hi = ehi;
  src.row = es[2];
  src.plane = [&](uint64_t z) { return buf.data() + (z - elo[0]) * es[1] * es[2] * vb; };
  const Shape3 K = g.brick;
  for (uint64_t kz = elo[0] / K[0]; kz * K[0] < ehi[0]; ++kz) {
    for (uint64_t ky = elo[1] / K[1]; ky * K[1] < ehi[1]; ++ky) {
      for (uint64_t kx = elo[2] / K[2]; kx * K[2] < ehi[2]; ++kx) {
        const Shape3 brick{kz, ky, kx};
        BRICKFS_ASSIGN_OR_RETURN(auto existing, lv.shards->GetIndex(brick));
        EncodedBlocks enc;
        BRICKFS_RETURN_IF_ERROR(EncodeBlocks(g, meta_.zstd_level, brick, src, existing.get(), &enc));
        if (enc.entries.empty()) continue;
        const BrickId id{static_cast<uint8_t>(level), brick};
        BRICKFS_RETURN_IF_ERROR(JournalBrickBase(id));
        AppendStats stats;
        BRICKFS_RETURN_IF_ERROR(lv.shards->Append(brick, enc.Views(), &stats));
        pyr_bytes_written_.fetch_add(stats.bytes_written);
        level_appended_.push_back({id, stats.file_size});
      }
    }
  }
  for (uint64_t bz = elo[0] / B[0]; bz * B[0] < ehi[0]; ++bz) InvalidateLevelRowLocked(level, bz);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Levels appearing and disappearing, finalize, recovery.

void Volume::RemoveLevelsFromLocked(int first) {
  for (int level = first; level < kMaxLevels; ++level) {
    if (levels_[level]) {
      for (const auto& [r, row] : levels_[level]->rows) {
        pyr_bytes_ -= row.count * levels_[level]->geo.slice_bytes();
      }
      levels_[level].reset();
    }
    // Through the storage: it forgets the directories it made there, and
    // no link in the store is followed.
    Status s = store_->storage()->RemoveAll(std::to_string(level));
    if (!s.ok()) LogError("removing level " + std::to_string(level) + ": " + s.ToString());
  }
  if (cache_) cache_->InvalidateLevelsFrom(static_cast<uint32_t>(first));
  generation_.fetch_add(1);
}

Status Volume::EnsureLevelsLocked() {
  const Shape3 s0 = Level0Shape();
  if (s0[0] == 0 || levels_built_ < 1) return Status::Ok();
  const int needed = NumLevels(s0, LevelGeoLocked(0).brick);
  while (levels_built_ < needed) {
    const int level = levels_built_;
    RemoveLevelsFromLocked(level);  // leftovers of an earlier, larger pyramid
    const Geometry below = LevelGeoLocked(level - 1);
    const uint32_t vb = below.voxel_bytes();
    LogInfo("pyramid: building level " + std::to_string(level) + " from level " +
            std::to_string(level - 1) + " (" + ShapeToString(below.shape) + ")");
    // Only what the level below holds: its stored bricks and its pending
    // rows (work and memory follow the data, not the declared shape).
    std::vector<std::pair<Shape3, Shape3>> boxes;
    ShardStore* below_store = level == 1 ? shards_.get() : LevelLocked(level - 1).shards.get();
    for (const Shape3& b : below_store->StoredBricks(below.brick_grid())) {
      Shape3 lo, hi;
      for (int a = 0; a < 3; ++a) {
        lo[a] = b[a] * below.brick[a];
        hi[a] = std::min(lo[a] + below.brick[a], below.shape[a]);
      }
      if (lo[0] < hi[0] && lo[1] < hi[1] && lo[2] < hi[2]) boxes.push_back({lo, hi});
    }
    if (level >= 2) {
      for (const auto& [r, row] : LevelLocked(level - 1).rows) {
        const uint64_t z0 = r * below.block[0], z1 = std::min(z0 + below.block[0], below.shape[0]);
        if (z0 < z1) boxes.push_back({{z0, 0, 0}, {z1, below.shape[1], below.shape[2]}});
      }
    }
    std::vector<uint8_t> in, out;
    for (const auto& [blo, bhi] : boxes) {
      // Whole 2x2x2 windows: even offsets, the end grown to even (or the edge).
      Shape3 lo, hi, nlo, nhi;
      for (int a = 0; a < 3; ++a) {
        lo[a] = blo[a] / 2 * 2;
        hi[a] = std::min(CeilDiv(bhi[a], 2) * 2, below.shape[a]);
        nlo[a] = lo[a] / 2;
        nhi[a] = CeilDiv(hi[a], 2);
      }
      const Shape3 box = Sub(hi, lo);
      in.resize(Product(box) * vb);
      const Region r = CompactRegion(lo, hi, vb);
      if (level == 1) {
        BRICKFS_RETURN_IF_ERROR(ReadRegion(below, r, in.data(), /*from_store_only=*/false));
      } else {
        BRICKFS_RETURN_IF_ERROR(ReadLevelLocked(level - 1, r, in.data(), /*store_only=*/false));
      }
      out.resize(Product(DownsampledShape(box)) * vb);
      Downsample2x(below.dtype, method_, in.data(), box, out.data());
      BRICKFS_RETURN_IF_ERROR(WriteLevelBoxLocked(level, nlo, nhi, out.data()));
    }
    if (below.shape[0] % 2) edges_.insert({level, below.shape[0] / 2});
    BRICKFS_RETURN_IF_ERROR(CommitLevelAppendsLocked());
    levels_built_ = level + 1;
    level_count_ = levels_built_;
  }
  return Status::Ok();
}

Status Volume::FinishPyramid() {
  std::lock_guard<std::mutex> lock(pyr_mu_);
  if (!pyr_error_.ok()) return pyr_error_.WithContext("pyramid");
  if (!pyramid_) {
    RemoveLevelsFromLocked(1);
    levels_built_ = 1;
    level_count_ = 1;
    std::lock_guard<std::mutex> m(mu_);
    meta_.num_levels = 1;
    return Status::Ok();
  }
  BRICKFS_RETURN_IF_ERROR(EnsureLevelsLocked());
  // Pairs averaged at a z edge the volume has since grown past.
  while (!edges_.empty()) {
    const auto [level, j] = *edges_.begin();
    edges_.erase(edges_.begin());
    if (level >= levels_built_) continue;
    if (2 * j + 1 >= LevelGeoLocked(level - 1).shape[0]) continue;  // still the edge
    BRICKFS_RETURN_IF_ERROR(CarryUpLocked(level - 1, j, j + 1, 0, 0, nullptr));
  }
  for (int level = 1; level < levels_built_; ++level) {
    while (!LevelLocked(level).rows.empty()) {
      BRICKFS_RETURN_IF_ERROR(FlushRowLocked(level, levels_[level]->rows.begin()->first));
    }
  }
  BRICKFS_RETURN_IF_ERROR(CommitLevelAppendsLocked());
  for (int level = 1; level < levels_built_; ++level) {
    BRICKFS_RETURN_IF_ERROR(LevelStore(level)->SyncDirty());
  }
  const Shape3 s0 = Level0Shape();
  const int needed = s0[0] == 0 ? 1 : NumLevels(s0, LevelGeoLocked(0).brick);
  if (needed < levels_built_) {
    RemoveLevelsFromLocked(needed);
    levels_built_ = needed;
    level_count_ = needed;
  }
  std::lock_guard<std::mutex> m(mu_);
  meta_.num_levels = std::min(needed, levels_built_);
  return Status::Ok();
}

Status Volume::RebuildPyramid(const std::set<Shape3>& bricks) {
  std::lock_guard<std::mutex> lock(pyr_mu_);
  if (!pyramid_) return Status::Ok();
  // Levels above what the metadata lists are a crashed session's leftovers.
  RemoveLevelsFromLocked(levels_built_);
  if (levels_built_ < 2) return Status::Ok();
  const Geometry g0 = LevelGeoLocked(0);
  LogInfo("recovery: rebuilding pyramid levels over " + std::to_string(bricks.size()) +
          " bricks changed since the last clean unmount");
  std::vector<uint8_t> data;
  for (const Shape3& b : bricks) {
    Shape3 lo, hi;
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(b[a] * g0.brick[a], g0.shape[a]);
      hi[a] = std::min(lo[a] + g0.brick[a], g0.shape[a]);
    }
    if (Product(Sub(hi, lo)) == 0) continue;
    data.resize(Product(Sub(hi, lo)) * g0.voxel_bytes());
    BRICKFS_RETURN_IF_ERROR(
        ReadRegion(g0, CompactRegion(lo, hi, g0.voxel_bytes()), data.data(), /*from_store_only=*/true));
    BRICKFS_RETURN_IF_ERROR(UpdatePyramidBoxLocked(lo, hi, data.data()));
  }
  return Status::Ok();
}

}  // namespace brickfs
