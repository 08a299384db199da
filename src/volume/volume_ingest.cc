// Volume, ingest: slices into slab memory (shape checks, the memory budget,
// spooling under pressure), SyncSlice / SyncAll. See volume.h.
#include "volume/volume.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/text.h"
#include "tiff/tiff_decode.h"
#include "volume/slab.h"


namespace brickfs {

namespace {

constexpr uint64_t kDefaultBlockDepth = 32;  // DefaultBlockShape(any)[0]

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

uint64_t Volume::SlotsInSlabLocked(uint64_t slab) const {
  const Geometry& g = *geo_;
  if (!meta_.fixed_shape) return g.block[0];
  uint64_t z0 = slab * g.block[0];
  return std::min(g.block[0], g.shape[0] - z0);
}

Status Volume::DefineGeometryLocked(uint64_t width, uint64_t height, DType dtype) {
  Geometry g;
  g.shape = {0, height, width};
  g.dtype = dtype;
  g.block = options_.block.value_or(DefaultBlockShape(dtype));
  g.brick = options_.brick.value_or(kDefaultBrick);
  std::string bad = g.Validate();
  if (!bad.empty()) return Status::InvalidArgument(bad);
  if (g.slab_bytes() > options_.mem_budget) {
    return Status::NoSpace("mem=" + HumanBytes(options_.mem_budget) + " is less than one slab (" +
                           std::to_string(g.block[0]) + " slices of " + std::to_string(width) +
                           "x" + std::to_string(height) + " " + std::string(DTypeName(dtype)) +
                           " = " + HumanBytes(g.slab_bytes()) + "); mount with -o mem=" +
                           std::to_string(CeilDiv(2 * g.slab_bytes(), 1 << 20)) + "M or more");
  }
  geo_ = g;
  meta_.geo = g;
  InitPyramidLocked(/*new_volume=*/true);
  shards_ = std::make_unique<ShardStore>(store_->storage(), "0", g, read_only());
  block_pool_ = BlockPool::Create(g.block_bytes());
  slab_pool_ = std::make_unique<SlabPool>(g.slab_bytes(), budget_.get());
  budget_->set_reserve(g.slab_bytes());  // <= mem_budget, checked above
  LogInfo("volume geometry: " + std::to_string(width) + "x" + std::to_string(height) + " " +
          std::string(DTypeName(dtype)) + ", block " + ShapeToString(g.block) + ", brick " +
          ShapeToString(g.brick));
  return Status::Ok();
}

Status Volume::CheckSliceShapeLocked(uint64_t width, uint64_t height, DType dtype,
                                     const std::string& name) const {
  const Geometry& g = *geo_;
  if (width != g.shape[2] || height != g.shape[1] || dtype != g.dtype) {
    return Status::InvalidArgument(
        "\"" + name + "\" is " + std::to_string(width) + "x" + std::to_string(height) + " " +
        std::string(DTypeName(dtype)) + " but the volume's slices are " +
        std::to_string(g.shape[2]) + "x" + std::to_string(g.shape[1]) + " " +
        std::string(DTypeName(g.dtype)));
  }
  return Status::Ok();
}

std::string Volume::SpoolPath(uint64_t slab) const {
  return store_->path() + "/.brickfs/spool/slab-" + std::to_string(slab);
}

Status Volume::SpoolLocked(Slab* slab) {
  const uint64_t bytes = slab_pool_->slab_bytes();
  BRICKFS_RETURN_IF_ERROR(MakeDirs(store_->path() + "/.brickfs/spool"));
  std::string path = SpoolPath(slab->index);
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenOwnedFile(path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  Status s = PwriteAll(fd, slab->buf.get(), bytes, 0, path);
  ::close(fd);
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  slab->buf.reset();
  slab->spool_valid = true;
  slab->state = Slab::State::kSpooled;
  counters_.slabs_spooled.fetch_add(1);
  LogInfo("spooled slab " + std::to_string(slab->index) + " (" + std::to_string(slab->count) +
          " slices) to " + path);
  return Status::Ok();
}

Result<std::shared_ptr<uint8_t>> Volume::AllocateBufferLocked(std::unique_lock<std::mutex>& lock,
                                                              uint64_t for_slab) {
  for (;;) {
    if (auto buf = slab_pool_->TryGet()) return buf;
    // Budget full: write out a reloaded slab (its data is complete: better
    // committed now than parked), else park the least complete idle slab,
    // else wait for a flush.
    std::shared_ptr<Slab> reloaded;
    Slab* victim = nullptr;
    bool busy = SlabBusyLocked();
    for (auto& [i, s] : slabs_) {
      if (i == for_slab || s->state != Slab::State::kFilling || s->pins || brick_holds_.count(i)) {
        continue;
      }
      if (s->reloaded && s->dirty && !s->retry) reloaded = s;
      if (!victim || s->count < victim->count ||
          (s->count == victim->count && s->last_touch < victim->last_touch)) {
        victim = s.get();
      }
    }
    if (reloaded) {
      StartFlushLocked(reloaded);
      cv_.wait_for(lock, std::chrono::milliseconds(20));
      continue;
    }
    if (victim) {
      BRICKFS_RETURN_IF_ERROR(SpoolLocked(victim));
      continue;
    }
    if (!busy) {
      return Status::NoSpace("the memory budget mem=" + HumanBytes(options_.mem_budget) +
                             " is full (" + HumanBytes(budget_->used(MemoryBudget::Kind::kFile)) +
                             " held by files being written) and no slab can be parked");
    }
    // Buffers are returned by their deleters without mu_; poll briefly.
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

Status Volume::UnspoolLocked(Slab* slab) {
  std::string path = SpoolPath(slab->index);
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenOwnedFile(path, O_RDONLY));
  Status s = PreadAll(fd, slab->buf.get(), slab_pool_->slab_bytes(), 0, path);
  ::close(fd);
  if (!s.ok()) return s;
  ::unlink(path.c_str());
  slab->spool_valid = false;
  return Status::Ok();
}

Result<std::shared_ptr<Slab>> Volume::AcquireSlabLocked(std::unique_lock<std::mutex>& lock,
                                                                uint64_t index) {
  static uint64_t tick = 0;
  for (;;) {
    WaitNoBrickHold(lock, index);
    auto it = slabs_.find(index);
    if (it != slabs_.end()) {
      std::shared_ptr<Slab> slab = it->second;
      if (slab->state == Slab::State::kLoading || slab->state == Slab::State::kFlushing) {
        cv_.wait_for(lock, std::chrono::milliseconds(20));
        continue;
      }
      if (slab->state == Slab::State::kSpooled) {
        slab->state = Slab::State::kLoading;
        auto buf = AllocateBufferLocked(lock, index);
        if (!buf.ok()) {
          slab->state = Slab::State::kSpooled;
          return buf.status();
        }
        slab->buf = std::move(*buf);
        Status s = UnspoolLocked(slab.get());
        if (!s.ok()) {
          slab->buf.reset();
          slab->state = Slab::State::kSpooled;
          cv_.notify_all();
          return s;
        }
        slab->state = Slab::State::kFilling;
        cv_.notify_all();
      }
      slab->last_touch = ++tick;
      return slab;
    }

    // A new slab: reserve its place, then load stored slices without mu_.
    BRICKFS_ASSIGN_OR_RETURN(std::shared_ptr<uint8_t> buf, AllocateBufferLocked(lock, index));
    if (slabs_.count(index)) continue;  // created while we waited
    const Geometry g = *geo_;
    auto slab = std::make_shared<Slab>(index, g.block[0]);
    slab->buf = std::move(buf);
    slab->last_touch = ++tick;
    slabs_[index] = slab;
    std::vector<uint64_t> stored;
    for (uint64_t i = 0; i < g.block[0]; ++i) {
      if (committed_.Contains(index * g.block[0] + i)) stored.push_back(i);
    }
    // A slab the store holds data of (committed slices, a brick written
    // through bricks/) is loaded whole, so that the buffer mirrors the store
    // and its flush rewrites nothing with zeros.
    lock.unlock();
    Status s;
    const bool any = !stored.empty() || SlabRowStored(g, index);
    if (any) {
      const uint64_t z0 = index * g.block[0], z1 = std::min(z0 + g.block[0], g.shape[0]);
      if (z0 < z1) {
        s = ReadRegion(g, CompactRegion({z0, 0, 0}, {z1, g.shape[1], g.shape[2]}, g.voxel_bytes()),
                       slab->buf.get(), /*from_store_only=*/true);
      }
    }
    lock.lock();
    slab->reloaded = any;
    if (any) {
      const uint64_t z0 = index * g.block[0];
      for (uint64_t i = 0; i < g.block[0] && z0 + i < g.shape[0]; ++i) slab->valid[i] = 1;
    }
    for (uint64_t i : stored) slab->present[i] = 1;
    slab->count = stored.size();
    if (!s.ok()) {
      slabs_.erase(index);
      cv_.notify_all();
      return s.WithContext("loading stored slab " + std::to_string(index) + " for a rewrite");
    }
    slab->state = Slab::State::kFilling;
    cv_.notify_all();
    return slab;
  }
}

Status Volume::WriteMetaLocked() {
  meta_.geo = *geo_;
  // The store's metadata lists what the store holds: committed slices, not
  // ones still in slab buffers (a crash would lose those).
  meta_.present = RangesFromSet(committed_);
  meta_.finalized = finalized_;
  meta_.session = session_;
  return store_->WriteMeta(meta_);
}

bool Volume::SlabRowStored(const Geometry& g, uint64_t bz) {
  const Shape3 grid = g.brick_grid(), nb = g.blocks_per_brick(), bg = g.block_grid();
  for (uint64_t ky = 0; ky < grid[1]; ++ky) {
    for (uint64_t kx = 0; kx < grid[2]; ++kx) {
      auto index = shards_->GetIndex({bz / nb[0], ky, kx});
      if (!index.ok()) return true;  // unknown: load (the read reports the problem)
      for (uint64_t by = ky * nb[1]; by < std::min((ky + 1) * nb[1], bg[1]); ++by) {
        for (uint64_t bx = kx * nb[2]; bx < std::min((kx + 1) * nb[2], bg[2]); ++bx) {
          if (!(*index)->at(g.BlockIndexInBrick({bz, by, bx})).empty()) return true;
        }
      }
    }
  }
  return false;
}

void Volume::WaitNoBrickHold(std::unique_lock<std::mutex>& lock, uint64_t s) {
  while (brick_holds_.count(s)) cv_.wait(lock);
}

bool Volume::SlabBusyLocked() const {
  for (const auto& [i, s] : slabs_) {
    if (s->state == Slab::State::kFlushing || s->state == Slab::State::kLoading || s->pins) {
      return true;
    }
  }
  return false;
}

void Volume::MakeRoomLocked(std::unique_lock<std::mutex>& lock, uint64_t want) {
  (void)lock;
  if (!slab_pool_) return;
  slab_pool_->TrimFree();
  while (budget_->used() + want > budget_->limit()) {
    Slab* victim = nullptr;
    for (auto& [i, s] : slabs_) {
      if (s->state != Slab::State::kFilling || s->pins || brick_holds_.count(i)) continue;
      if (!victim || s->count < victim->count) victim = s.get();
    }
    if (!victim || !SpoolLocked(victim).ok()) return;
    slab_pool_->TrimFree();
  }
}

Status Volume::ChargeFileMemory(uint64_t bytes) {
  if (budget_->TryCharge(bytes, MemoryBudget::Kind::kFile)) return Status::Ok();
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    MakeRoomLocked(lock, bytes);
    if (budget_->TryCharge(bytes, MemoryBudget::Kind::kFile)) return Status::Ok();
    // Wait only while a flush or load in progress will give memory back.
    if (!SlabBusyLocked() || std::chrono::steady_clock::now() > deadline) break;
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  const uint64_t held = budget_->used(MemoryBudget::Kind::kFile);
  if (!geo_ && held + bytes > options_.mem_budget) {
    // Not even the first file fits: the budget is far below one slab.
    const uint64_t depth = options_.block ? (*options_.block)[0] : kDefaultBlockDepth;
    return Status::NoSpace("mem=" + HumanBytes(options_.mem_budget) + " is less than one slab: " +
                           "it cannot even hold this file (" + HumanBytes(held + bytes) +
                           "), and a slab is " + std::to_string(depth) +
                           " slices; mount with -o mem=" +
                           std::to_string(CeilDiv(2 * depth * (held + bytes), 1 << 20)) +
                           "M or more");
  }
  return Status::NoSpace(
      "the memory budget mem=" + HumanBytes(options_.mem_budget) + " is full (" +
      HumanBytes(budget_->used(MemoryBudget::Kind::kFile)) + " held by files being written, " +
      HumanBytes(budget_->used(MemoryBudget::Kind::kSlab)) + " by slab buffers; " +
      HumanBytes(bytes) + " more asked): close files being written, or mount with a larger mem=");
}

void Volume::ReleaseFileMemory(uint64_t bytes) {
  budget_->Release(bytes, MemoryBudget::Kind::kFile);
  cv_.notify_all();
}

uint64_t Volume::MaxSliceFileBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  constexpr uint64_t kHeadroom = 16 << 20;  // headers, tags, incompressible LZW
  if (geo_) return 2 * geo_->slice_bytes() + kHeadroom;
  // Before the first slice: a slab of it must fit the budget.
  uint64_t depth = options_.block ? (*options_.block)[0] : kMaxBlockSide;
  for (DType t : {DType::kUint8, DType::kUint16, DType::kFloat32}) {
    if (!options_.block) depth = std::min(depth, DefaultBlockShape(t)[0]);
  }
  return 2 * (options_.mem_budget / std::max<uint64_t>(1, depth)) + kHeadroom;
}

void Volume::SetStagedInfo(StagedInfoFn fn) {
  std::lock_guard<std::mutex> lock(staged_mu_);
  staged_info_ = std::move(fn);
}

Status Volume::IngestSlice(const std::string& name, uint64_t z, const uint8_t* data, size_t size) {
  SliceWrite w;
  w.name = name;
  w.z = z;
  w.data = data;
  w.size = size;
  return IngestSlice(w);
}

Status Volume::IngestSlice(const SliceWrite& w) {
  counters_.bytes_received.fetch_add(w.size);
  if (read_only()) return Status::Unsupported("the mount is read-only");
  const std::string& name = w.name;
  const uint64_t z = w.z;
  // Writers of one z are ordered by their tickets (see volume.h).
  const uint64_t ticket = next_ticket_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++zwriters_[z].inflight;
  }
  ScopeGuard leave([&] {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = zwriters_.find(z);
    if (--it->second.inflight == 0) zwriters_.erase(it);
    cv_.notify_all();
  });

  std::shared_ptr<Slab> slab;  // set when decoding straight into a slab
  uint64_t slot = 0;
  bool direct = false;
  // Decode scratch (one slice, while this close is in progress; at most one
  // per FUSE thread) is not charged to mem=: it is never held.
  std::vector<uint8_t> scratch;
  auto aside = [&](uint64_t bytes) -> Result<uint8_t*> {
    scratch.resize(bytes);
    return scratch.data();
  };
  auto dest = [&](const SliceInfo& info) -> Result<uint8_t*> {
    std::unique_lock<std::mutex> lock(mu_);
    if (!geo_) {
      // First slice of a new volume: decode aside; the geometry is defined
      // only once this file has decoded completely.
      // Refuse before decoding what could never fit one slab in the budget.
      uint64_t bytes = info.width * info.height * DTypeSize(info.dtype);
      uint64_t slab_z = options_.block ? (*options_.block)[0] : DefaultBlockShape(info.dtype)[0];
      if (bytes * slab_z > options_.mem_budget) {
        return Status::NoSpace("mem=" + HumanBytes(options_.mem_budget) +
                               " is less than one slab (" + std::to_string(slab_z) +
                               " slices of " + HumanBytes(bytes) + "); mount with -o mem=" +
                               std::to_string(CeilDiv(2 * bytes * slab_z, 1 << 20)) + "M or more");
      }
      lock.unlock();
      return aside(bytes);
    }
    BRICKFS_RETURN_IF_ERROR(CheckSliceShapeLocked(info.width, info.height, info.dtype, name));
    if (geo_->slab_bytes() > options_.mem_budget) {
      return Status::NoSpace("mem=" + HumanBytes(options_.mem_budget) + " is less than one slab (" +
                             std::to_string(geo_->block[0]) + " slices = " +
                             HumanBytes(geo_->slab_bytes()) + "); mount with -o mem=" +
                             std::to_string(CeilDiv(2 * geo_->slab_bytes(), 1 << 20)) +
                             "M or more to write slices (bricks/ needs no slab)");
    }
    if (zwriters_[z].inflight == 1 && !zwriters_[z].claimed) {
      // The only writer of z: decode straight into the slab when the slot is
      // empty (no copy). Others decode aside and are ordered after.
      BRICKFS_ASSIGN_OR_RETURN(std::shared_ptr<Slab> s, AcquireSlabLocked(lock, z / geo_->block[0]));
      const uint64_t i = z % geo_->block[0];
      ZWriters& zw = zwriters_[z];
      if (!s->present[i] && zw.inflight == 1 && !zw.claimed) {
        zw.claimed = true;
        ++s->pins;
        slab = s;
        slot = i;
        direct = true;
        return s->buf.get() + i * geo_->slice_bytes();
      }
    }
    const uint64_t bytes = geo_->slice_bytes();
    lock.unlock();
    return aside(bytes);
  };

  Result<SliceInfo> decoded = DecodeTiffSlice(w.data, w.size, dest, w.written);

  std::unique_lock<std::mutex> lock(mu_);
  ZWriters& zw = zwriters_[z];
  if (direct) {
    zw.claimed = false;
    --slab->pins;
    cv_.notify_all();
  }
  Status s = decoded.status();
  bool superseded = false;
  if (s.ok() && !direct) {
    // Decoded aside (first slice, a slice already present, or a racing
    // writer): define the geometry if needed, then copy into the slab,
    // unless a writer that closed later has been applied already.
    const SliceInfo& info = *decoded;
    if (!geo_) s = DefineGeometryLocked(info.width, info.height, info.dtype);
    if (s.ok()) s = CheckSliceShapeLocked(info.width, info.height, info.dtype, name);
    while (s.ok() && zw.claimed) cv_.wait(lock);
    if (s.ok() && ticket < zw.applied) superseded = true;
    if (s.ok() && !superseded) {
      auto acquired = AcquireSlabLocked(lock, z / geo_->block[0]);
      if (acquired.ok()) {
        slab = *acquired;
        slot = z % geo_->block[0];
        std::memcpy(slab->buf.get() + slot * geo_->slice_bytes(), scratch.data(),
                    geo_->slice_bytes());
      } else {
        s = acquired.status();
      }
    }
  }
  if (!s.ok()) {
    if (direct && !slab->present[slot]) slab->valid[slot] = 0;  // partly decoded: garbage
    if (!slab && geo_) {
      auto it = slabs_.find(z / geo_->block[0]);
      if (it != slabs_.end()) slab = it->second;
    }
    if (slab && !slab->dirty && !slab->pins && slab->state == Slab::State::kFilling &&
        !brick_holds_.count(slab->index)) {
      // Loaded (or created) only for this slice: nothing new to keep.
      slabs_.erase(slab->index);
    } else if (slab) {
      MaybeCompleteLocked(slab);
    }
    cv_.notify_all();
    lock.unlock();
    Status named = s.message().find(name) == std::string::npos ? s.WithContext(name) : s;
    if (w.record_errors) RecordError(name, named.message());
    return named;
  }
  if (superseded) return Status::Ok();  // a writer of z that closed later won

  zw.applied = ticket;
  slab->valid[slot] = 1;
  slab->dirty = true;
  slab->last_write = std::chrono::steady_clock::now();
  if (!slab->present[slot]) {
    slab->present[slot] = 1;
    ++slab->count;
  }
  if (!slab->renewed[slot]) {
    slab->renewed[slot] = 1;
    ++slab->renewed_count;
  }
  slab->synced[slot] = 0;
  Geometry& g = *geo_;
  if (z >= g.shape[0]) g.shape[0] = z + 1;
  received_.Insert(z);
  counters_.slices_received.fetch_add(1);
  generation_.fetch_add(1);
  // The writer's name now designates z's content (rsync's quick check).
  std::optional<SliceName> named;
  if (w.keep_name && SliceNames::ValidName(name)) {
    named = SliceName{name, z, w.size, w.mtime_ns ? w.mtime_ns : NowNs()};
    names_.Set(*named);
  } else {
    names_.ForgetRange(z, z + 1);
  }
  if (!meta_dirty_) {
    // First change since mount: the store is no longer final until unmount.
    meta_dirty_ = true;
    finalized_ = false;
    Status m = WriteMetaLocked();
    if (!m.ok()) LogError("writing metadata: " + m.ToString());
  }
  MaybeCompleteLocked(slab);
  Status sticky = sticky_error_;
  sticky_error_ = Status::Ok();
  const bool new_geometry = counters_.slices_received.load() == 1;
  const Geometry geo_now = *geo_;
  lock.unlock();
  if (journal_) {
    std::string frames;
    if (new_geometry) AppendGeometry(geo_now, &frames);
    AppendReceived(z, &frames);
    AppendName(z, named ? named->size : 0, named ? named->mtime_ns : 0,
               named ? named->name : std::string(), &frames);
    Status j = journal_->Append(frames, /*sync=*/false);
    if (!j.ok()) LogError("journal: " + j.ToString());
  }
  if (!sticky.ok()) {
    // The slice is buffered; the error is about an earlier slab, which stays
    // in memory and is retried. Say so to the writer now.
    Status told = Status::IOError(name + " was accepted, but an earlier flush failed and is "
                                  "being retried: " + sticky.message(),
                                  sticky.err() ? sticky.err() : EIO);
    RecordError(name, told.message());
    return told;
  }
  return Status::Ok();
}

Status Volume::SyncSlice(uint64_t z) {
  if (!journal_ || !sync_log_) return Status::Ok();
  uint64_t depth;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!geo_) return Status::Ok();
    depth = geo_->block[0];
  }
  // One SyncSlice per slab at a time: its records are appended in the order
  // their bytes were taken (Scan keeps the last record of each z).
  std::lock_guard<std::mutex> stripe(sync_stripes_[(z / depth) % sync_stripes_.size()]);
  std::vector<uint8_t> copy;
  uint64_t slab_index = 0, joff = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!geo_) return Status::Ok();
    for (;;) {
      auto it = slabs_.find(z / geo_->block[0]);
      // Not in memory: committed (durable since its commit) or never received.
      if (it == slabs_.end()) return Status::Ok();
      Slab& slab = *it->second;
      const uint64_t i = z % geo_->block[0];
      if (!slab.present[i] || slab.synced[i]) return Status::Ok();
      if (slab.state == Slab::State::kFlushing || slab.state == Slab::State::kLoading) {
        cv_.wait_for(lock, std::chrono::milliseconds(20));  // its commit makes it durable
        continue;
      }
      const uint64_t n = geo_->slice_bytes();
      copy.resize(n);
      if (slab.buf) {
        std::memcpy(copy.data(), slab.buf.get() + i * n, n);
      } else {
        const std::string path = SpoolPath(slab.index);
        BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenOwnedFile(path, O_RDONLY));
        Status r = PreadAll(fd, copy.data(), n, i * n, path);
        ::close(fd);
        BRICKFS_RETURN_IF_ERROR(r);
      }
      slab.synced[i] = 1;
      slab_index = slab.index;
      joff = journal_->size();
      break;
    }
  }
  Status s = sync_log_->Append(slab_index, z, joff, copy.data(), copy.size());
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slabs_.find(slab_index);
    if (it != slabs_.end()) it->second->synced[z % geo_->block[0]] = 0;
    RecordError("fsync of slice " + std::to_string(z), s.ToString());
  }
  return s;
}

Status Volume::SyncAll() {
  std::vector<uint64_t> zs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!geo_) return Status::Ok();
    for (const auto& [i, slab] : slabs_) {
      for (uint64_t k = 0; k < slab->present.size(); ++k) {
        if (slab->present[k] && !slab->synced[k]) zs.push_back(i * geo_->block[0] + k);
      }
    }
  }
  for (uint64_t z : zs) BRICKFS_RETURN_IF_ERROR(SyncSlice(z));
  return Status::Ok();
}

}  // namespace brickfs
