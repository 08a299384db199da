#include "volume/volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "volume/naming.h"
#include "volume/pyramid_settings.h"
#include "volume/slab.h"


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

uint64_t PhysicalMemory() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 8ull << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
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

}  // namespace brickfs
