#include "volume/volume.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>

#include "brickfs/version.h"
#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/text.h"
#include "format/json.h"
#include "tiff/tiff_decode.h"
#include "volume/block_encode.h"
#include "volume/compact.h"
#include "volume/naming.h"
#include "volume/pyramid_settings.h"
#include "volume/slab.h"
#include "volume/transpose.h"

namespace brickfs {

const char* AxisName(Axis a) {
  switch (a) {
    case Axis::kZ: return "z";
    case Axis::kY: return "y";
    case Axis::kX: return "x";
  }
  return "?";
}

namespace {

constexpr uint64_t kDefaultBlockDepth = 32;  // DefaultBlockShape(any)[0]

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

uint64_t PhysicalMemory() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 8ull << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

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

Volume::Volume(std::unique_ptr<Store> store, const VolumeOptions& options)
    : store_(std::move(store)), options_(options) {}

Volume::~Volume() {
  std::unique_ptr<ThreadPool> readahead;
  {
    std::lock_guard<std::mutex> lock(ahead_mu_);
    readahead = std::move(readahead_);
  }
  readahead.reset();  // drains and joins: no prefetch runs after this
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  pool_.reset();  // joins workers: no flush task runs after this
  {
    std::lock_guard<std::mutex> lock(commit_mu_);
    commit_stop_ = true;
  }
  commit_cv_.notify_all();
  if (committer_.joinable()) committer_.join();  // commits what the flushes queued
  io_pool_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  slabs_.clear();  // buffers return to slab_pool_ before it goes
}

namespace {

uint64_t NewSessionId() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) ^ rd() ^ static_cast<uint64_t>(::getpid());
  return id;
}

std::string SessionText(uint64_t s) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(s));
  return hex;
}

// A store whose metadata says "not finalized" must come with the journal of
// the session that wrote it: without it, which slices were committed cannot
// be known, and recovering anyway would silently drop them.
Status CheckJournalBelongs(const std::string& path, const std::optional<VolumeMeta>& meta,
                           const JournalState& js) {
  if (!meta) return Status::Ok();
  const std::string fix = "; run `brickfs fsck --repair " + path +
                          "` (it keeps every stored block and says which slices to copy again)";
  if (meta->finalized) {
    // A finalize that crashed after writing the metadata leaves its own
    // session's journal; anything else is another store's journal.
    if (js.frames > 0 && meta->session != 0 && js.session != 0 && meta->session != js.session) {
      return Status::Corruption(path + " has a journal of another session (journal " +
                                SessionText(js.session) + ", metadata " +
                                SessionText(meta->session) + "): it was copied from another "
                                "store; replaying it could cut this store's shards" + fix);
    }
    return Status::Ok();
  }
  if (js.frames == 0) {
    return Status::Corruption(path + " was not unmounted cleanly and its journal (" + path +
                              "/.brickfs/journal) is missing or empty, so which slices were "
                              "committed is unknown (was it deleted, or was the store written "
                              "with -o nojournal?)" + fix);
  }
  if (meta->session != 0 && js.session != 0 && meta->session != js.session &&
      meta->session != js.previous_session) {
    return Status::Corruption(path + " was not unmounted cleanly and its journal belongs to "
                              "another session (journal " + SessionText(js.session) +
                              ", metadata " + SessionText(meta->session) +
                              "): it was replaced or copied from another store" + fix);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Volume>> Volume::Open(std::unique_ptr<Store> store,
                                             const VolumeOptions& options) {
  VolumeOptions opts = options;
  if (opts.mem_budget == 0) opts.mem_budget = PhysicalMemory() / 4;
  if (opts.threads == 0) opts.threads = std::max<long>(1, ::sysconf(_SC_NPROCESSORS_ONLN));
  if (opts.zstd_level < -7 || opts.zstd_level > 22) {
    return Status::InvalidArgument("zstd level " + std::to_string(opts.zstd_level) +
                                   " is outside -7..22");
  }
  std::unique_ptr<Volume> v(new Volume(std::move(store), opts));
  v->budget_ = std::make_unique<MemoryBudget>(opts.mem_budget);
  const std::string& path = v->store_->path();
  // Replayed even under -o nojournal: a crashed journaled session must be
  // recovered before anything is appended.
  // A store without private state (a remote one, read-only) has no journal
  // and no writers' names: it is served as its metadata says.
  const bool local = v->store_->local();
  JournalState js;
  if (local) {
    BRICKFS_ASSIGN_OR_RETURN(js, ReadJournal(path));
    BRICKFS_RETURN_IF_ERROR(CheckJournalBelongs(path, v->store_->meta(), js));
  }
  if (js.frames > 0) {
    if (v->read_only()) {
      return Status::Unsupported(path +
                                 " was not unmounted cleanly; mount it read-write once to "
                                 "recover it (or run brickfs fsck --repair)");
    }
    BRICKFS_RETURN_IF_ERROR(v->Recover(js));
  }
  const std::optional<VolumeMeta> recovered_meta =
      v->recovery_.needed ? std::optional<VolumeMeta>(v->meta_) : v->store_->meta();
  if (recovered_meta) {
    const VolumeMeta& m = *recovered_meta;
    v->meta_ = m;
    v->geo_ = m.geo;
    v->received_ = SetFromRanges(m.present);
    v->committed_ = v->received_;
    v->shards_ = std::make_unique<ShardStore>(v->store_->storage(), "0", m.geo, v->read_only());
    v->block_pool_ = BlockPool::Create(m.geo.block_bytes());
    // A slab larger than mem= only stops slice writes (IngestSlice says so);
    // reads and brick writes of a huge volume need no slab.
    const uint64_t slab = m.geo.slab_bytes();
    if (slab > 0) {
      v->slab_pool_ = std::make_unique<SlabPool>(slab, v->budget_.get());
      if (slab <= opts.mem_budget) v->budget_->set_reserve(slab);
    }
  } else {
    v->meta_.zstd_level = opts.zstd_level;
  }
  if (local) BRICKFS_RETURN_IF_ERROR(v->LoadNames(v->recovery_.needed ? &js : nullptr));
  // Levels over every level-0 brick the crashed session touched are rebuilt
  // from level 0 once the volume starts (RebuildPyramid).
  std::set<Shape3> rebuild;
  for (const auto* m : {&js.base, &js.committed}) {
    for (const auto& [id, length] : *m) {
      if (id.level == 0) rebuild.insert(id.brick);
    }
  }
  if (!v->read_only()) {
    if (v->recovery_.needed) {
      // The crashed session's journal stays until what it protects is safe:
      // the slices fsynced after their slab's last commit go into the store
      // (their appends journaled there, so a crash now is recovered again).
      BRICKFS_ASSIGN_OR_RETURN(v->journal_, Journal::Open(path, js.valid_bytes));
      if (v->geo_) {
        IntervalSet synced;
        BRICKFS_RETURN_IF_ERROR(v->RecoverSynced(js, *v->geo_, &rebuild, &synced));
        {
          std::lock_guard<std::mutex> lock(v->mu_);
          for (const auto& [a, b] : synced) {
            v->received_.Insert(a, b);
            v->committed_.Insert(a, b);
          }
          v->finalized_ = false;
          v->session_ = js.session;  // until StartJournal: the metadata names the old session
          BRICKFS_RETURN_IF_ERROR(v->WriteMetaLocked());
        }
        ZRanges still_lost;
        for (const auto& [a, b] : v->recovery_.lost) {
          for (const auto& [x, y] : synced.Gaps(a, b + 1)) still_lost.emplace_back(x, y - 1);
        }
        v->recovery_.lost = still_lost;
        v->recovery_.synced_slices = synced.Count();
      }
      // The crashed session's journal is replaced by the new session's first
      // frame in one atomic step: a crash now leaves one or the other, never
      // an empty journal beside metadata that is not final.
      v->journaled_bricks_.clear();
      BRICKFS_RETURN_IF_ERROR(v->StartJournal(js.session, /*restart=*/true));
      if (!opts.journal) {
        BRICKFS_RETURN_IF_ERROR(v->journal_->Reset());
        v->journal_.reset();
        v->sync_log_.reset();
      }
    } else if (opts.journal) {
      BRICKFS_ASSIGN_OR_RETURN(v->journal_, Journal::Open(path, 0));
      BRICKFS_RETURN_IF_ERROR(
          v->StartJournal(v->store_->meta() ? v->store_->meta()->session : 0, /*restart=*/false));
    }
    // Spool and sync files of a crashed session: their slices are either in
    // the store now or reported lost.
    const std::string state = path + "/.brickfs/";
    for (const char* dir : {"spool", "synced"}) {
      struct stat st;
      if (::lstat((state + dir).c_str(), &st) == 0) {
        ++v->recovery_.leftovers_removed;
        SyncLog::RemoveAll(state + dir);
      }
    }
  }
  BRICKFS_RETURN_IF_ERROR(v->ApplyPyramidOptions());
  if (recovered_meta) {
    std::lock_guard<std::mutex> lock(v->mu_);
    v->InitPyramidLocked(/*new_volume=*/v->meta_.present.empty());
  }
  if (v->recovery_.needed) v->rebuild_bricks_ = std::make_unique<std::set<Shape3>>(rebuild);
  if (v->recovery_.needed) {
    LogInfo("recovered " + path + " after an unclean shutdown: " +
            std::to_string(v->recovery_.slices_committed) + " slices committed since the last "
            "finalize, " + std::to_string(v->recovery_.synced_slices) + " fsynced slices kept, " +
            std::to_string(v->recovery_.shards_truncated) + " torn shard tails cut (" +
            std::to_string(v->recovery_.bytes_truncated) + " bytes); lost (copy again): " +
            RangesToString(v->recovery_.lost));
  }
  return v;
}

Status Volume::StartJournal(uint64_t previous_session, bool restart) {
  session_ = NewSessionId();
  std::string frame;
  AppendSession(session_, previous_session, &frame);
  BRICKFS_RETURN_IF_ERROR(restart ? journal_->Restart(frame) : journal_->Append(frame, /*sync=*/true));
  sync_log_ = std::make_unique<SyncLog>(store_->path() + "/.brickfs/synced", session_);
  return Status::Ok();
}

Status Volume::LoadNames(const JournalState* js) {
  if (!geo_) return Status::Ok();
  const std::string path = store_->path() + "/.brickfs/names";
  auto bytes = ReadStoreFileToString(path, uint64_t{1} << 30);
  SliceNames names;
  if (bytes.ok()) {
    auto decoded = SliceNames::Decode(*bytes, geo_->shape[0], path);
    if (decoded.ok()) {
      names = std::move(*decoded);
    } else {
      // Names are a convenience (rsync's quick check), not data: warn, go on.
      LogError(decoded.status().ToString() + "; the writers' names are forgotten");
    }
  } else if (bytes.status().code() != Status::Code::kNotFound) {
    LogError("reading " + path + ": " + bytes.status().ToString());
  }
  if (js) {
    // A name counts when its slice made it into the store: recorded before
    // the slab's last commit. Later records of the same name and size only
    // change its time (touch, cp -p after the copy).
    for (const JournalName& n : js->names) {
      if (n.z >= geo_->shape[0]) continue;
      auto c = js->slab_commit_offset.find(n.z / geo_->block[0]);
      const bool committed = c != js->slab_commit_offset.end() && n.offset < c->second;
      auto cur = names.OfZ(n.z);
      if (committed) {
        if (n.name.empty()) {
          names.ForgetRange(n.z, n.z + 1);
        } else if (SliceNames::ValidName(n.name)) {
          names.Set({n.name, n.z, n.size, n.mtime_ns});
        }
      } else if (cur && cur->name == n.name && cur->size == n.size) {
        names.SetTime(n.name, n.mtime_ns);
      }
    }
  }
  for (const auto& [a, b] : MissingRanges(received_, geo_->shape[0])) names.ForgetRange(a, b + 1);
  names.Truncate(geo_->shape[0]);
  std::lock_guard<std::mutex> lock(mu_);
  names_ = std::move(names);
  return Status::Ok();
}

Status Volume::WriteNamesFile() {
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes = names_.Encode();
  }
  return WriteFileAtomic(store_->path() + "/.brickfs/names", bytes);
}

Status Volume::ApplyPyramidOptions() {
  if (options_.downsample) {
    BRICKFS_RETURN_IF_ERROR(CheckDownsampleMethod(*options_.downsample).WithContext("downsample"));
    if (!meta_.present.empty() && *options_.downsample != meta_.downsample_method) {
      return Status::InvalidArgument(
          store_->path() + " holds a pyramid made with downsample=" + meta_.downsample_method +
          "; it cannot change to " + *options_.downsample + " (copy the volume to a new store)");
    }
    meta_.downsample_method = *options_.downsample;
  }
  if (options_.voxel_size) {
    BRICKFS_RETURN_IF_ERROR(CheckVoxelSize(*options_.voxel_size));
    meta_.voxel_size = *options_.voxel_size;
  }
  if (options_.unit) {
    if (!options_.unit->empty()) {
      BRICKFS_RETURN_IF_ERROR(CheckSpaceUnit(*options_.unit).WithContext("unit"));
    }
    meta_.unit = *options_.unit;
  }
  return Status::Ok();
}

Status Volume::Recover(const JournalState& js) {
  // 1. Cut every shard back to its last committed length.
  std::optional<Geometry> g;
  if (store_->meta()) g = store_->meta()->geo;
  if (js.geometry) {
    if (!g) g = js.geometry;
    g->shape[0] = std::max(g->shape[0], js.geometry->shape[0]);
  }
  if (!g) return Status::Ok();  // nothing was ever written
  recovery_.needed = true;
  std::set<BrickId> ids;
  for (const auto& [id, len] : js.base) ids.insert(id);
  for (const auto& [id, len] : js.committed) ids.insert(id);
  for (const BrickId& id : ids) {
    uint64_t len = *js.RecoveredLength(id);
    ShardStore shards(store_->storage(), std::to_string(id.level), *g, /*read_only=*/false);
    const std::string path = shards.BrickPath(id.brick);
    // A replacement that never got renamed.
    BRICKFS_RETURN_IF_ERROR(shards.RemoveLeftover(id.brick).WithContext("recovery"));
    BRICKFS_ASSIGN_OR_RETURN(const std::optional<uint64_t> file_size, shards.StoredSize(id.brick));
    const bool exists = file_size.has_value();
    const std::optional<uint64_t> target = shards.RecoveredLength(id, js);
    if (auto r = js.replaced.find(id); r != js.replaced.end() && target != len) {
      LogWarning("recovery: " + path + " was being replaced (new length " +
              std::to_string(r->second.length) + ") but the rename never happened: " +
              (target ? "kept at its length before, " + std::to_string(*target) : "left as it is"));
    }
    if (!target) continue;  // replaced, but the rename never happened: as it was
    len = *target;
    if (!exists) continue;
    const uint64_t size = *file_size;
    uint64_t valid_len = 0;
    if (size > len && len > 0 && !shards.ReadIndex(id.brick, len, &valid_len).ok()) {
      // Not a length this brick's file ever had (a replacement recorded but
      // not renamed): the file is left as it is, for fsck to judge.
      LogError("recovery: " + path + " has no valid index at its journaled length " +
               std::to_string(len) + "; left unchanged (run brickfs fsck)");
      continue;
    }
    if (size > len || len == 0) {  // a brick first created this session: remove
      BRICKFS_RETURN_IF_ERROR(shards.CutTo(id.brick, len).WithContext("recovery"));
      ++recovery_.shards_truncated;
      recovery_.bytes_truncated += size - len;
    } else if (size < len) {
      LogError("recovery: " + path + " is " + std::to_string(size) + " bytes, shorter than its " +
               "committed length " + std::to_string(len) + "; run brickfs fsck");
    }
  }
  // 2. Present = what was final before + what the journal committed; the
  //    shape covers every slice ever received, so lost ones show as missing.
  VolumeMeta m = RecoveredMeta(store_->meta(), *g, js, &recovery_.lost);
  std::string bad = m.geo.Validate();
  if (!bad.empty()) return Status::Corruption(store_->path() + ": journal: " + bad);
  recovery_.slices_committed = js.committed_slices.size();
  m.finalized = false;
  m.session = js.session;
  BRICKFS_RETURN_IF_ERROR(store_->WriteMeta(m));
  meta_ = m;
  return Status::Ok();
}

Status Volume::RecoverSynced(const JournalState& js, const Geometry& g, std::set<Shape3>* bricks,
                             IntervalSet* zs) {
  uint64_t skipped = 0;
  std::vector<SyncLog::Record> records = SyncLog::Scan(
      store_->path() + "/.brickfs/synced", js.session, g.slice_bytes(), g.block[0], &skipped);
  std::map<uint64_t, std::vector<SyncLog::Record>> by_slab;
  for (SyncLog::Record& r : records) {
    // A commit of its slab after the record was taken holds this version or
    // a newer one.
    auto c = js.slab_commit_offset.find(r.slab);
    if (c != js.slab_commit_offset.end() && c->second >= r.journal_offset) continue;
    if (r.z >= g.shape[0]) continue;  // outside a fixed shape: never accepted
    by_slab[r.slab].push_back(std::move(r));
  }
  if (by_slab.empty()) return Status::Ok();
  const uint64_t slice = g.slice_bytes(), depth = g.block[0];
  std::vector<uint8_t> buf(depth * slice);
  for (const auto& [slab, recs] : by_slab) {
    // The slab as the store has it, with the fsynced slices over it.
    std::fill(buf.begin(), buf.end(), 0);
    const uint64_t z0 = slab * depth, z1 = std::min(z0 + depth, g.shape[0]);
    if (committed_.Intersects(z0, z1) || SlabRowStored(g, slab)) {
      BRICKFS_RETURN_IF_ERROR(ReadRegion(
          g, CompactRegion({z0, 0, 0}, {z1, g.shape[1], g.shape[2]}, g.voxel_bytes()), buf.data(),
          /*from_store_only=*/true));
    }
    for (const SyncLog::Record& r : recs) {
      BRICKFS_RETURN_IF_ERROR(SyncLog::ReadData(r, buf.data() + (r.z - z0) * slice, slice));
      zs->Insert(r.z);
    }
    std::vector<Shape3> touched;
    const Shape3 grid = g.brick_grid();
    for (uint64_t by = 0; by < grid[1]; ++by) {
      for (uint64_t bx = 0; bx < grid[2]; ++bx) {
        AppendStats stats;
        Shape3 brick;
        BRICKFS_RETURN_IF_ERROR(AppendSlabColumn(g, slab, buf.data(), by, bx, &brick, &stats));
        if (stats.bytes_written > 0) {
          touched.push_back(brick);
          bricks->insert(brick);
        }
      }
    }
    BRICKFS_RETURN_IF_ERROR(shards_->SyncBricks(touched));
  }
  return Status::Ok();
}

Status Volume::JournalBrickBase(const BrickId& id) {
  if (!journal_) return Status::Ok();
  std::lock_guard<std::mutex> lock(journal_mu_);
  if (journaled_bricks_.count(id)) return Status::Ok();
  ShardStore* store = id.level == 0 ? shards_.get() : LevelStore(id.level);
  BRICKFS_ASSIGN_OR_RETURN(uint64_t length, store->FileSize(id.brick));
  std::string frame;
  AppendBrickBase(id, length, &frame);
  BRICKFS_RETURN_IF_ERROR(journal_->Append(frame, /*sync=*/true));
  journaled_bricks_.insert(id);
  return Status::Ok();
}

void Volume::RetryLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto last_retry = std::chrono::steady_clock::now();
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    const bool retry_now = now - last_retry >= std::chrono::seconds(1);
    if (retry_now) last_retry = now;
    std::vector<std::shared_ptr<Slab>> todo;
    for (auto& [i, slab] : slabs_) {
      if (slab->state != Slab::State::kFilling || slab->pins || brick_holds_.count(i)) continue;
      // Failed flushes every second; reloaded slabs once their burst of
      // rewritten slices has stopped.
      if ((slab->retry && retry_now) ||
          (!slab->retry && slab->reloaded && slab->dirty && now - slab->last_write >= kBurstIdle)) {
        todo.push_back(slab);
      }
    }
    for (auto& slab : todo) {
      if (slab->retry) LogInfo("retrying the flush of slab " + std::to_string(slab->index));
      StartFlushLocked(slab);
    }
  }
}

void Volume::Start() {
  pool_ = std::make_unique<ThreadPool>(options_.threads);
  cache_ = std::make_unique<BlockCache>(options_.cache_budget);
  started_ = std::chrono::steady_clock::now();
  if (rebuild_bricks_) {
    Status s = RebuildPyramid(*rebuild_bricks_);
    if (!s.ok()) {
      // The journal stays (Finalize fails), so the next mount tries again.
      std::lock_guard<std::mutex> lock(pyr_mu_);
      pyr_error_ = s.WithContext("rebuilding the pyramid after recovery");
      RecordError("pyramid", pyr_error_.message());
    }
    rebuild_bricks_.reset();
  }
  if (!read_only()) {
    retry_thread_ = std::thread([this] { RetryLoop(); });
    io_pool_ = std::make_unique<ThreadPool>(4);
    committer_ = std::thread([this] { CommitLoop(); });
  }
  if (read_only() && block_pool_) {
    // A mount for reading: fault in the buffers of the first reads now.
    std::lock_guard<std::mutex> lock(ahead_mu_);
    readahead_ = std::make_unique<ThreadPool>(1);
    readahead_->Submit([pool = block_pool_, n = std::min(options_.cache_budget, kWarmPoolBytes)] {
      pool->Reserve(n);
    });
  }
}

std::optional<Geometry> Volume::geometry() const {
  std::lock_guard<std::mutex> lock(mu_);
  return geo_;
}

Result<uint64_t> Volume::SliceIndexForName(const std::string& name) const {
  BRICKFS_ASSIGN_OR_RETURN(uint64_t z, SliceIndexFromName(name, options_.first_index));
  return CheckSliceZ(name, z);
}

Result<uint64_t> Volume::CheckSliceZ(const std::string& name, uint64_t z) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (geo_ && meta_.fixed_shape && z >= geo_->shape[0]) {
    return Status::InvalidArgument("\"" + name + "\" is slice " + std::to_string(z) +
                                   ", outside the volume's fixed depth of " +
                                   std::to_string(geo_->shape[0]) + " slices");
  }
  const uint64_t depth = geo_ ? geo_->shape[0] : 0;
  if (!meta_.fixed_shape && z >= depth && z - depth >= options_.max_growth) {
    return Status::InvalidArgument(
        "\"" + name + "\" is slice " + std::to_string(z) + ", which would grow the volume from " +
        std::to_string(depth) + " to " + std::to_string(z + 1) + " slices, more than the " +
        "limit of " + std::to_string(options_.max_growth) + " new slices at once (mount option " +
        "max_growth=N; first_index=N if the numbering does not start at 0; brickfs create " +
        "--shape declares a large volume)");
  }
  if (z >= kMaxSide) {
    return Status::InvalidArgument("\"" + name + "\" is slice " + std::to_string(z) +
                                   ", beyond the largest depth a volume may have (2^32 - 1)");
  }
  return z;
}

bool Volume::SlicePresent(uint64_t z) const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_.Contains(z);
}

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

std::optional<SliceName> Volume::FindName(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return names_.Find(name);
}

Status Volume::SetNameTime(const std::string& name, int64_t mtime_ns) {
  std::optional<SliceName> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!names_.SetTime(name, mtime_ns)) return Status::NotFound(name + " is not a slice's name");
    e = names_.Find(name);
  }
  JournalNameChange(e->z, &*e);
  return Status::Ok();
}

Status Volume::RenameName(const std::string& from, const std::string& to) {
  std::optional<SliceName> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    e = names_.Find(from);
    if (!e) return Status::NotFound(from + " is not a slice's name");
    names_.Forget(from);
    if (!to.empty()) {
      e->name = to;
      names_.Set(*e);
    }
  }
  JournalNameChange(e->z, to.empty() ? nullptr : &*e);
  return Status::Ok();
}

Status Volume::ForgetName(const std::string& name) {
  std::optional<SliceName> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    e = names_.Find(name);
    if (!e) return Status::NotFound(name + " is not a slice's name");
    names_.Forget(name);
  }
  JournalNameChange(e->z, nullptr);
  return Status::Ok();
}

void Volume::JournalNameChange(uint64_t z, const SliceName* e) {
  if (!journal_) return;
  std::string frame;
  AppendName(z, e ? e->size : 0, e ? e->mtime_ns : 0, e ? e->name : std::string(), &frame);
  Status s = journal_->Append(frame, /*sync=*/false);
  if (!s.ok()) LogError("journal: " + s.ToString());
}

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
  const uint64_t po = layout->pixel_offset();
  size_t done = 0;
  if (offset < po) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, po - offset));
    std::memcpy(out, layout->header().data() + offset, n);
    done = n;
  }
  if (done == len) return len;
  const uint64_t rb = layout->row_bytes(), vb = g->voxel_bytes();
  uint64_t pos = offset + done - po;
  const uint64_t p1 = offset + len - po;
  uint8_t* dst = out + done;
  while (pos < p1) {
    const uint64_t row = pos / rb, in_row = pos % rb;
    if (in_row == 0 && p1 - pos >= rb) {  // whole rows, straight into out
      const uint64_t nrows = (p1 - pos) / rb;
      BRICKFS_RETURN_IF_ERROR(ReadPlaneRows(axis, index, row, nrows, dst, level));
      pos += nrows * rb;
      dst += nrows * rb;
      continue;
    }
    // Part of a row: only its voxels (a row may be far larger than a read).
    const uint64_t end = std::min(p1, (row + 1) * rb);
    const uint64_t c0 = in_row / vb, c1 = CeilDiv(end - row * rb, vb);
    std::vector<uint8_t> span((c1 - c0) * vb);
    const Region r = PlaneSpanRegion(*g, axis, index, row, c0, c1);
    if (level == 0) {
      BRICKFS_RETURN_IF_ERROR(ReadRegion(*g, r, span.data(), /*from_store_only=*/false));
    } else {
      std::lock_guard<std::mutex> lock(pyr_mu_);
      BRICKFS_RETURN_IF_ERROR(ReadLevelLocked(level, r, span.data(), /*store_only=*/false));
    }
    std::memcpy(dst, span.data() + (in_row - c0 * vb), end - pos);
    dst += end - pos;
    pos = end;
  }
  return len;
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

Volume::Region Volume::PlaneRegion(const Geometry& g, Axis axis, uint64_t index, uint64_t row0,
                                   uint64_t nrows) {
  const uint64_t vb = g.voxel_bytes(), Y = g.shape[1], X = g.shape[2];
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
