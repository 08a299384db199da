// The brickfs engine: one volume, its slab buffers, its block cache, and the
// read and write paths. No FUSE here; mount/ translates requests into calls.
//
// Write path (DESIGN.md §5): IngestSlice decodes a TIFF held in memory into
// the slab buffer of its z. When every slice of a slab is present the slab is
// cut into blocks, compressed on the worker pool, and each brick it touches
// gets ONE append (new blocks + fresh index). Blocks are never read back,
// except when a slice of an already committed slab is rewritten (then that
// slab's stored slices are loaded once to re-encode it). Slab memory is
// bounded by options.mem_budget: when full, the least complete slab is parked
// in a spool file under STORE/.brickfs/spool/ and brought back when needed.
//
// Read path (DESIGN.md §6): virtual TIFF files of planes along z, y and x.
// Pixels come from slab buffers for slabs still in memory, else from the
// decoded-block cache, else from the store (blocks of one read are decoded in
// parallel on the pool).
//
// Where the code lives (one room per job; this class is the facade mount/
// calls): volume.cc opens a volume (journal sessions, recovery, slice names);
// volume_ingest.cc takes slices into slabs (the memory budget, spooling);
// slab.{h,cc} own slab memory; volume_flush.cc turns full slabs into brick
// appends, runs the committer and Finalize; volume_read.cc is the read path
// above; volume_bricks.cc reads and writes whole brick files;
// volume_pyramid.cc keeps the levels; volume_status.cc writes the status
// document. Bytes reach the store only through ShardStore over a Storage
// (src/store/storage.h), so the read path does not know where they live.
//
// Thread-safety: all public methods are thread-safe. Lock order: mu_, then
// ShardStore's locks, then BlockCache's. mu_ is never held while decoding a
// TIFF, compressing, or reading blocks from disk (spooling excepted: it is a
// rare, bounded path and keeps the slab table consistent).
#ifndef BRICKFS_VOLUME_VOLUME_H_
#define BRICKFS_VOLUME_VOLUME_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "common/interval_set.h"
#include "common/thread_pool.h"
#include "format/volume_meta.h"
#include "store/journal.h"
#include "store/shard_store.h"
#include "store/store.h"
#include "tiff/virtual_tiff.h"
#include "volume/block_cache.h"
#include "volume/block_encode.h"
#include "volume/downsample.h"
#include "volume/memory_budget.h"
#include "volume/slice_names.h"
#include "volume/sync_log.h"

namespace brickfs {

struct Slab;
class SlabPool;

enum class Axis { kZ = 0, kY = 1, kX = 2 };
const char* AxisName(Axis a);  // "z", "y", "x"

// A box of voxels [lo, hi) and the byte strides of its output buffer per
// axis (the read paths fill regions: Volume's and BlockReader's).
struct Region {
  Shape3 lo, hi;
  uint64_t stride[3];
};
// Rows [row0, row0 + nrows) of plane `index` along `axis` of an array of
// `shape` with `vb` bytes a voxel, strided as the plane's rows (row-major,
// the virtual TIFF's pixel order).
Region PlaneRegion(const Shape3& shape, uint64_t vb, Axis axis, uint64_t index, uint64_t row0,
                   uint64_t nrows);

// Reads [offset, offset + len) of a virtual TIFF with `layout` (len already
// clipped to the file): the header from the layout, whole pixel rows through
// rows(row, nrows, dst), parts of a row through span(row, c0, c1, buf) (the
// voxels [c0, c1) of that row; a row may be far larger than a read).
using PlaneRowsFn = std::function<Status(uint64_t row, uint64_t nrows, uint8_t* dst)>;
using PlaneSpanFn = std::function<Status(uint64_t row, uint64_t c0, uint64_t c1, uint8_t* dst)>;
Status ReadVirtualBytes(const VirtualTiffLayout& layout, uint64_t vb, uint64_t offset, size_t len,
                        uint8_t* out, const PlaneRowsFn& rows, const PlaneSpanFn& span);

struct VolumeOptions {
  uint64_t mem_budget = 0;              // slab buffer bytes; 0: a quarter of RAM
  uint64_t cache_budget = 512ull << 20;  // decoded block cache bytes
  uint64_t first_index = 0;             // z = number in name - first_index
  // A slice more than this many past the volume's depth is refused (a stray
  // number in a name must not declare a huge volume); brickfs create --shape
  // declares one on purpose.
  uint64_t max_growth = 65536;
  size_t threads = 0;                   // worker threads; 0: number of CPUs
  // For a volume whose first slice has not arrived yet:
  std::optional<Shape3> block;          // default: DefaultBlockShape(dtype)
  std::optional<Shape3> brick;          // default: 256^3
  int zstd_level = 1;
  // Write-ahead journal: a slab's appends are fsynced and then committed in
  // STORE/.brickfs/journal, so a crash loses no committed slab. Off only to
  // measure its cost.
  bool journal = true;
  // At finalize, shard files (of every level) changed in this session whose
  // dead bytes — superseded blocks and indexes left by the append protocol —
  // are more than this share of the file are rewritten densely. >= 1: never.
  double compact_dead_share = 0.10;
  // Multiresolution pyramid (DESIGN.md §8), built while ingesting. Off only
  // to measure its cost; a store written with it off keeps one level.
  bool pyramid = true;
  // For a new volume (an existing one keeps what its metadata says unless
  // these are given): "mean" or "mode" (see volume/downsample.h).
  std::optional<std::string> downsample;
  // Size of a level-0 voxel (z, y, x) in `unit`, for the OME-Zarr scale and
  // the virtual TIFFs' resolution tags. Given: replaces the store's.
  std::optional<std::array<double, 3>> voxel_size;
  std::optional<std::string> unit;  // an OME-Zarr space unit (IsOmeSpaceUnit)
};

// One slice file to ingest (Volume::IngestSlice).
struct SliceWrite {
  std::string name;              // the writer's file name: messages, the name table
  uint64_t z = 0;
  const uint8_t* data = nullptr;  // the TIFF file's bytes [0, size)
  size_t size = 0;
  // Byte ranges the writer wrote; null: all of [0, size). A TIFF whose
  // header, directory or any strip/tile lies partly outside them is refused.
  const IntervalSet* written = nullptr;
  bool keep_name = true;         // record `name` for z (false: a canonical name)
  int64_t mtime_ns = 0;          // the modification time it carries; 0: now
  bool record_errors = true;     // false: a failure is not put in the status (a trial)
};

// What mounting found and repaired after an unclean shutdown.
struct RecoveryReport {
  bool needed = false;
  uint64_t slices_committed = 0;    // in the journal since the last finalize
  ZRanges lost;                     // received but never committed: copy again
  uint64_t shards_truncated = 0;    // torn appends cut off
  uint64_t bytes_truncated = 0;
  uint64_t synced_slices = 0;       // fsynced slices committed by the recovery
  uint64_t leftovers_removed = 0;   // spool and sync files of the crashed session
};

class Volume {
 public:
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // Takes ownership of an opened store. Does not start threads (so a daemon
  // can fork after this); call Start() before any other method.
  // A store whose journal is not empty (unclean shutdown) is recovered here
  // when writable: shards are truncated to their committed lengths and the
  // metadata lists what is present. Read-only: Unsupported, with advice.
  static Result<std::unique_ptr<Volume>> Open(std::unique_ptr<Store> store,
                                              const VolumeOptions& options);
  void Start();
  const RecoveryReport& recovery() const { return recovery_; }

  const std::string& store_path() const { return store_->path(); }
  bool read_only() const { return store_->read_only(); }
  const VolumeOptions& options() const { return options_; }

  // Level-0 geometry; nullopt until the first slice of a new volume.
  std::optional<Geometry> geometry() const;

  // The z a file written under `name` goes to. InvalidArgument when the
  // name has no number, is below first_index, or lies outside a fixed shape.
  Result<uint64_t> SliceIndexForName(const std::string& name) const;
  // The checks of SliceIndexForName for a z already known (a canonical name).
  Result<uint64_t> CheckSliceZ(const std::string& name, uint64_t z) const;
  // True when slice z has been received (buffered or stored).
  bool SlicePresent(uint64_t z) const;

  // Decodes the TIFF w.data[0, w.size) written as w.name and stores it as
  // slice w.z. On any error nothing stored or buffered changes, and the
  // error (naming the file) is recorded in the status. Errors:
  // InvalidArgument (bad or incomplete TIFF, wrong size or dtype), NoSpace
  // (mem budget below one slab), IOError.
  // Writers of one z are serialized: each call takes a ticket on entry, and
  // the slice holds the version of the latest ticket whose decode succeeded
  // (the last to close wins), never a mix; an older version finishing later
  // is dropped (its call still returns OK: it was superseded).
  Status IngestSlice(const SliceWrite& w);
  Status IngestSlice(const std::string& name, uint64_t z, const uint8_t* data, size_t size);

  // fsync of slice z: when this returns OK, the version z holds now survives
  // a crash (kill -9, power loss) even if its slab is not complete
  // (volume/sync_log.h). No-op for a committed slice or without a journal.
  Status SyncSlice(uint64_t z);
  // Every slice received and not yet committed, as SyncSlice (fsyncdir z/).
  Status SyncAll();

  // The writers' names (volume/slice_names.h).
  std::optional<SliceName> FindName(const std::string& name) const;
  // Sets the modification time of a name (utimens); NotFound without one.
  Status SetNameTime(const std::string& name, int64_t mtime_ns);
  // Drops a name (unlink of a writer's name: the slice stays, under its
  // canonical name). NotFound without one.
  Status ForgetName(const std::string& name);
  // The slice named `from` is named `to` now (empty: no name). NotFound.
  Status RenameName(const std::string& from, const std::string& to);

  // Memory of files being written (mount handles and staged files), charged
  // to the mem= budget. Makes room by giving back idle slab buffers,
  // spooling idle slabs and waiting for flushes in flight (at most a few
  // seconds); NoSpace with a message when the budget stays full.
  Status ChargeFileMemory(uint64_t bytes);
  void ReleaseFileMemory(uint64_t bytes);
  // The largest file that could be a valid slice of this volume (2x the raw
  // slice plus 16 MiB of headroom; before the first slice, what a slab in
  // mem= allows). Writes past it fail with EFBIG, allocating nothing.
  uint64_t MaxSliceFileBytes() const;
  // Staged (temporary) files held by the mount, for the status page: `fn`
  // returns their count and bytes (called without the volume's locks).
  using StagedInfoFn = std::function<std::pair<uint64_t, uint64_t>()>;
  void SetStagedInfo(StagedInfoFn fn);

  // Pyramid levels that can be read now (levels/0 .. levels/N-1): 1 before
  // the first slice, without a pyramid, or while the volume fits one brick.
  int LevelCount() const;

  // Number of virtual files along `axis` (Z, Y or X) of pyramid level
  // `level`; 0 before the first slice or for a level >= LevelCount().
  uint64_t PlaneCount(Axis axis, int level = 0) const;
  // Size in bytes of every virtual TIFF along `axis` of `level`; 0 as above.
  uint64_t VirtualFileSize(Axis axis, int level = 0) const;
  // Where the pixel data of those files begins (the header's size).
  uint64_t VirtualPixelOffset(Axis axis, int level = 0) const;
  // Reads [offset, offset+len) of the virtual TIFF of plane `index` along
  // `axis` of `level` into out. Returns the number of bytes read: len, or
  // fewer at EOF. NotFound for a plane or level that does not exist;
  // Corruption/IOError if stored blocks fail validation or can't be read.
  Result<size_t> ReadVirtualFile(Axis axis, uint64_t index, uint64_t offset, size_t len,
                                 uint8_t* out, int level = 0);

  // Reads rows [row0, row0+nrows) of a plane of `level` into out (row-major,
  // x or y fastest, little-endian). REQUIRES: the level exists, indices in range.
  Status ReadPlaneRows(Axis axis, uint64_t index, uint64_t row0, uint64_t nrows, uint8_t* out,
                       int level = 0);

  // Changes whenever what any virtual file reads may have changed (a slice
  // received, a slab committed). Equal values: identical contents, so the
  // kernel may keep its page cache.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Bricks of level 0 (DESIGN.md §7): files of raw voxels, C order (z, y, x),
  // little-endian, clipped at the volume edge.
  // Bricks along each axis; zeros before the first slice.
  Shape3 BrickGrid() const;
  // Bytes of brick `b`'s file. REQUIRES: b inside BrickGrid().
  uint64_t BrickFileSize(const Shape3& b) const;
  // Reads [offset, offset+len) of brick b's file; fewer bytes at EOF.
  Result<size_t> ReadBrickFile(const Shape3& b, uint64_t offset, size_t len, uint8_t* out);
  // Replaces brick b whole with data[0, size): encoded into a new shard file
  // renamed over the old one; the block cache is invalidated. Errors:
  // InvalidArgument (size is not exactly BrickFileSize, brick outside the
  // volume, no geometry yet, bytes never written), IOError. On error nothing
  // stored changes. The brick's z range counts as present (slices
  // received) afterwards. Brick writes and slice writes of the same slabs
  // are serialized: slices of its z range still buffered get the brick's
  // voxels too, so whichever is admitted last wins, never a mix.
  Status WriteBrick(const Shape3& b, const uint8_t* data, size_t size, const std::string& name,
                    const IntervalSet* written = nullptr);

  // Records an error about `file` for the status page (and the log). Both
  // strings may hold a name written to the mount: they are stored with
  // EscapeUntrusted (common/text.h), so the status stays valid UTF-8 JSON.
  void RecordError(const std::string& file, const std::string& message);

  // The .brickfs/status document (see README); pretty or one line.
  std::string StatusJson(bool pretty = true) const;

  // Flushes every slab (partial ones with fill for missing slices), waits
  // for all flushes, fsyncs shards, writes final metadata. Idempotent. When
  // slabs cannot be written the error is the last flush's (ENOSPC, ...);
  // the slabs stay in memory and a later call tries again.
  Status Finalize();

  // True while slices exist only in memory or in the spool (a slab not yet
  // written to the store): giving up now would lose them.
  bool HasUnwrittenSlabs() const;

 private:
  using Region = brickfs::Region;
  // The region of box [lo, hi) stored compactly (C order) in its buffer.
  static Region CompactRegion(const Shape3& lo, const Shape3& hi, uint32_t vb) {
    return {lo, hi, {(hi[1] - lo[1]) * (hi[2] - lo[2]) * vb, (hi[2] - lo[2]) * vb, vb}};
  }

  explicit Volume(std::unique_ptr<Store> store, const VolumeOptions& options);

  // Level `level`'s geometry; nullopt when it does not exist (yet).
  std::optional<Geometry> LevelGeometry(int level) const;

  // Downsample method, voxel size and unit from the options into meta_.
  Status ApplyPyramidOptions();

  // Geometry setup from the first slice. REQUIRES: mu_ held.
  Status DefineGeometryLocked(uint64_t width, uint64_t height, DType dtype);
  Status CheckSliceShapeLocked(uint64_t width, uint64_t height, DType dtype,
                               const std::string& name) const;
  uint64_t SlotsInSlabLocked(uint64_t slab) const;

  // Returns the in-memory slab for `slab`, creating (and loading stored or
  // spooled data) as needed; may wait for memory. REQUIRES: lock held.
  Result<std::shared_ptr<Slab>> AcquireSlabLocked(std::unique_lock<std::mutex>& lock,
                                                  uint64_t slab);
  // Finds a buffer for a new slab within the budget, spooling or waiting.
  Result<std::shared_ptr<uint8_t>> AllocateBufferLocked(std::unique_lock<std::mutex>& lock,
                                                        uint64_t for_slab);
  Status SpoolLocked(Slab* slab);
  Status UnspoolLocked(Slab* slab);
  std::string SpoolPath(uint64_t slab) const;

  // Hands a slab to the pool. REQUIRES: mu_ held, slab filling, not pinned.
  void StartFlushLocked(const std::shared_ptr<Slab>& slab);
  void FlushBrick(const std::shared_ptr<Slab>& slab, uint64_t brick_y, uint64_t brick_x);
  // Encodes the blocks of level-0 slab `bz` (its planes in buf) inside brick
  // column (brick_y, brick_x) and appends them to that brick (journaling its
  // base length first). *brick is the brick; stats stay zero when every
  // block was unchanged fill. `enc` (optional) receives the encoded blocks.
  Status AppendSlabColumn(const Geometry& g, uint64_t bz, const uint8_t* buf, uint64_t brick_y,
                          uint64_t brick_x, Shape3* brick, AppendStats* stats,
                          EncodedBlocks* enc = nullptr);
  // The last brick task of a slab's flush: a failed flush is completed at
  // once (kept for retry), a good one queued for the committer.
  void FinishFlush(const std::shared_ptr<Slab>& slab);
  // The committer thread: takes every slab queued, fsyncs the bricks they
  // appended to (each once, in parallel on io_pool_), journals their
  // commits with one fsync, then completes them in order.
  void CommitLoop();
  // After the commit (or its failure, `err`): the slab leaves memory and
  // feeds the levels, or stays for a retry.
  void CompleteFlush(const std::shared_ptr<Slab>& slab, const Status& err);
  void MaybeCompleteLocked(const std::shared_ptr<Slab>& slab);

  // Reads a box of level-0 voxels into out with the given byte strides.
  Status ReadRegion(const Geometry& geo, const Region& r, uint8_t* out, bool from_store_only);
  // The stored blocks of a region of array `level`, read and decoded in
  // parallel, at most kMaxBatchBlocks at a time.
  static constexpr uint64_t kMaxBatchBlocks = 2048;
  Status ReadBlocksOfRegion(const Geometry& geo, const Region& r, uint8_t* out, uint64_t epoch,
                            int level, ShardStore* store);
  // The rows [row0, row0 + nrows) of a virtual plane file, as a region.
  static Region PlaneRegion(const Geometry& geo, Axis axis, uint64_t index, uint64_t row0,
                            uint64_t nrows);
  // Voxels [c0, c1) of row `row` of a virtual plane file, as a region.
  static Region PlaneSpanRegion(const Geometry& geo, Axis axis, uint64_t index, uint64_t row,
                                uint64_t c0, uint64_t c1);
  // Plane readahead. When a read of plane rows [row0, row0 + nrows) finds
  // its first block not decoded, the stored blocks of those rows and of the
  // next kReadAheadBytes of the plane are prefetched (ShardStore::Prefetch),
  // unless an earlier read of the plane did so: a cold YZ plane then has its
  // scattered block reads in flight at once, not two or three at a time, and
  // the kernel's 128 KiB read requests find the disk reads already done.
  // The prefetch runs on `readahead_`: posix_fadvise blocks while the disk
  // queue is full, and the reader should be decoding meanwhile. For level > 0
  // the caller holds pyr_mu_.
  void ReadAhead(const Geometry& geo, Axis axis, uint64_t index, uint64_t row0, uint64_t nrows,
                 int level, std::shared_ptr<ShardStore> store);
  // Prefetches the uncached stored blocks of region `r` of array `level`.
  void PrefetchRegion(const Geometry& geo, const Region& r, int level, ShardStore* store);
  static constexpr uint64_t kReadAheadBytes = 4 << 20;
  // Block buffers a read-only mount faults in at start (a cold YZ plane of
  // 1024² uint8 decodes 64 MiB of blocks).
  static constexpr uint64_t kWarmPoolBytes = 64 << 20;

  // Pyramid (volume_pyramid.cc). Lock order: pyr_mu_ before mu_.
  struct LevelRow {  // pending slices of one block row of a level >= 1
    std::vector<std::vector<uint8_t>> slices;  // block[0] planes; empty: not fed yet
    uint64_t count = 0;                        // planes fed
    uint64_t touched = 0;                      // pyr_tick_ when last fed
  };
  struct Level {
    Geometry geo;  // shape LevelShape(level-0 shape, L)
    std::shared_ptr<ShardStore> shards;
    std::map<uint64_t, LevelRow> rows;  // by block row
  };
  // Geometry of level L (level 0's for L = 0). REQUIRES: pyr_mu_.
  Geometry LevelGeoLocked(int level);
  // Plane k of level L into out: from `data` (planes [k0, k0+n)), a
  // pending row, or the store.
  Status LevelPlaneLocked(int level, uint64_t k, uint64_t k0, uint64_t n, const uint8_t* data,
                          uint8_t* out);
  void RemoveLevelsFromLocked(int first);
  // Sets up levels_ once the geometry is known. REQUIRES: mu_ held.
  void InitPyramidLocked(bool new_volume);
  Shape3 Level0Shape() const;  // takes mu_
  // Level `level`'s state with its shape brought up to date. REQUIRES: pyr_mu_.
  Level& LevelLocked(int level);
  ShardStore* LevelStore(int level);  // REQUIRES: level built
  // A committed level-0 slab's first `planes` slices, downsampled (`down`),
  // fed into level 1 and on up.
  Status FeedSlabLocked(uint64_t slab, uint64_t planes, const std::vector<uint8_t>& down);
  // Slices [k0, k0+n) of level L (whole planes, C order) go into their
  // pending rows; complete rows are written; pairs are carried to L+1.
  Status FeedLevelLocked(int level, uint64_t k0, uint64_t n, const uint8_t* data);
  // Level L+1 slices [j0, j1) recomputed from level L (data holds level-L
  // slices [k0, k0+n) in hand; other slices come from pending rows or the store).
  Status CarryUpLocked(int level, uint64_t j0, uint64_t j1, uint64_t k0, uint64_t n,
                       const uint8_t* data);
  // Writes a pending row (missing slices loaded from the store when partial).
  Status FlushRowLocked(int level, uint64_t row);
  Status TrimPendingLocked();
  // Downsampled slab planes in flight (+) or released (-), for the peak.
  void NotePyramidBytes(int64_t delta);
  // Level-L voxels of a region: the store overlaid with pending rows, and
  // (unless store_only) planes over level-0 slices still in slab buffers
  // computed from the level below.
  Status ReadLevelLocked(int level, const Region& r, uint8_t* out, bool store_only);
  Status ReadLevelStoredLocked(int level, const Region& r, uint8_t* out, bool store_only);
  // True when a level-`level` plane in [k0, k1) depends on a level-0 slab
  // with data not yet in the store. Takes mu_.
  bool Level0BufferedLocked(int level, uint64_t k0, uint64_t k1);
  // Region r of level `level` (>= 1) downsampled from the level below.
  Status ComputeLevelRegionLocked(int level, const Region& r, uint8_t* out);
  // Level 0's box [lo, hi) changed to `data` (C order): levels above are updated.
  Status UpdatePyramidBoxLocked(const Shape3& lo, const Shape3& hi, const uint8_t* data);
  Status WriteLevelBoxLocked(int level, const Shape3& lo, const Shape3& hi, const uint8_t* data);
  // Builds levels up to what the current shape needs (from the level below).
  Status EnsureLevelsLocked();
  // Makes level appends durable and journals their lengths.
  Status CommitLevelAppendsLocked();
  // At finalize: pending rows written, edges redone, unneeded levels removed.
  Status FinishPyramid();
  // After a crash: levels rebuilt over the level-0 bricks the crashed
  // session (and the recovery itself) changed.
  Status RebuildPyramid(const std::set<Shape3>& bricks);
  void InvalidateLevelRowLocked(int level, uint64_t bz);

  Status WriteMetaLocked();
  Status Recover(const JournalState& journal);
  // Recovery: slices fsynced after their slab's last commit (sync_log.h) are
  // written into the store; returns the level-0 bricks touched and their z.
  Status RecoverSynced(const JournalState& js, const Geometry& g, std::set<Shape3>* bricks,
                       IntervalSet* zs);
  // Starts this mount's journal: a fresh session frame, fsynced (restart:
  // replacing the old journal atomically).
  Status StartJournal(uint64_t previous_session, bool restart);
  // Journals a change of z's name (empty name: forgotten). REQUIRES: mu_ not held.
  void JournalNameChange(uint64_t z, const SliceName* entry);
  // Loads STORE/.brickfs/names and the journal's name records.
  Status LoadNames(const JournalState* js);
  Status WriteNamesFile();
  // Waits until slab `s` may take a slice or start a flush (no brick writer
  // holds it). REQUIRES: lock holds mu_.
  void WaitNoBrickHold(std::unique_lock<std::mutex>& lock, uint64_t s);
  // True when the store holds a block of level-0 block row `bz` (reads
  // shard indexes; call without mu_).
  bool SlabRowStored(const Geometry& g, uint64_t bz);
  // Memory: gives back idle slab buffers and spools idle slabs until `want`
  // bytes could be charged. REQUIRES: lock holds mu_.
  void MakeRoomLocked(std::unique_lock<std::mutex>& lock, uint64_t want);
  bool SlabBusyLocked() const;  // flushes or loads in progress
  // At finalize: shards of every level whose dead bytes pass the threshold
  // are rewritten densely (journaled as replacements).
  Status CompactDirtyShards();
  // Journals the brick's pre-append length once per session, durably,
  // before its first append (so recovery can undo a torn first append).
  Status JournalBrickBase(const BrickId& id);
  void RetryLoop();
  // The layout of level `level` (whose geometry is g) along axis.
  std::shared_ptr<const VirtualTiffLayout> LayoutFor(Axis axis, const Geometry& g, int level) const;

  std::unique_ptr<Store> store_;
  const VolumeOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ThreadPool> io_pool_;  // fsyncs of a commit, in parallel
  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::deque<std::shared_ptr<Slab>> commit_queue_;  // guarded by commit_mu_
  bool commit_stop_ = false;                         // guarded by commit_mu_
  std::thread committer_;
  std::unique_ptr<BlockCache> cache_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // slab state changes, memory freed
  std::optional<Geometry> geo_;                 // guarded by mu_
  VolumeMeta meta_;                             // guarded by mu_ (present kept in bitmaps)
  std::shared_ptr<ShardStore> shards_;          // set once with geo_
  std::unique_ptr<MemoryBudget> budget_;        // set by Open; outlives slab_pool_
  std::unique_ptr<SlabPool> slab_pool_;         // set once with geo_
  std::shared_ptr<BlockPool> block_pool_;       // set once with geo_: decoded blocks
  std::map<uint64_t, std::shared_ptr<Slab>> slabs_;  // guarded by mu_
  IntervalSet received_;   // slices received (buffered or stored); guarded by mu_
  IntervalSet committed_;  // slices whose slab is in the store; guarded by mu_
  // Writers of one z in flight (IngestSlice): the latest ticket applied and
  // whether one of them decodes straight into the slab. An entry lives while
  // inflight > 0. Guarded by mu_.
  struct ZWriters {
    uint64_t inflight = 0;
    uint64_t applied = 0;  // ticket of the version the slot holds (0: none this burst)
    bool claimed = false;  // a writer decodes into the slab buffer directly
  };
  std::map<uint64_t, ZWriters> zwriters_;
  std::atomic<uint64_t> next_ticket_{1};
  // Slabs held by brick writers (WriteBrick): no slice is applied to them and
  // no flush starts while held. Guarded by mu_.
  std::map<uint64_t, int> brick_holds_;
  std::set<Shape3> bricks_writing_;  // one writer per brick at a time; guarded by mu_
  SliceNames names_;                 // guarded by mu_
  uint64_t session_ = 0;             // this mount's journal session (0: read-only / no journal)
  std::unique_ptr<SyncLog> sync_log_;
  mutable std::mutex staged_mu_;
  StagedInfoFn staged_info_;  // guarded by staged_mu_
  std::array<std::mutex, 16> sync_stripes_;  // SyncSlice of one slab, in order
  // A slab reloaded to take rewritten slices is flushed when every slice was
  // re-sent or when none arrived for this long (one re-encode per burst).
  static constexpr std::chrono::milliseconds kBurstIdle{1500};
  std::atomic<uint64_t> generation_{0};
  std::unique_ptr<Journal> journal_;
  std::mutex journal_mu_;              // serializes JournalBrickBase
  std::set<BrickId> journaled_bricks_;  // guarded by journal_mu_
  RecoveryReport recovery_;
  Status sticky_error_;                // a failed flush, for the next close; guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::thread retry_thread_;

  // Plane readahead (ReadAhead).
  struct PlaneAhead {  // prefetched rows [from, to) of a plane under a cache epoch
    int level = -1;
    Axis axis = Axis::kZ;
    uint64_t index = 0, epoch = 0, from = 0, to = 0;
  };
  std::mutex ahead_mu_;
  std::array<PlaneAhead, 8> ahead_;        // guarded by ahead_mu_; recent planes, round robin
  size_t ahead_next_ = 0;                  // guarded by ahead_mu_
  std::unique_ptr<ThreadPool> readahead_;  // one thread (also warms the block pool); guarded by ahead_mu_
  bool meta_dirty_ = false;      // store metadata not yet marked unfinalized
  bool finalized_ = false;

  // Pyramid state; all guarded by pyr_mu_ (levels_built_ also readable
  // through level_count_ without it).
  mutable std::mutex pyr_mu_;
  bool pyramid_ = false;                       // this store has (or gets) levels
  DownsampleMethod method_ = DownsampleMethod::kMean;
  std::vector<std::unique_ptr<Level>> levels_;  // [L], L >= 1 (index 0 unused)
  int levels_built_ = 1;                        // levels 1..levels_built_-1 kept current
  std::atomic<int> level_count_{1};             // LevelCount()
  std::set<std::pair<int, uint64_t>> edges_;    // (L, j): level-L slice j averaged at an edge
  std::vector<std::pair<BrickId, uint64_t>> level_appended_;  // not yet journaled
  uint64_t pyr_tick_ = 0;
  std::atomic<uint64_t> pyr_bytes_{0};       // pending level rows
  std::atomic<uint64_t> pyr_down_bytes_{0};  // downsampled slabs not yet fed
  std::atomic<uint64_t> pyr_peak_bytes_{0};  // of the two together
  std::atomic<uint64_t> pyr_rows_written_{0};
  std::atomic<uint64_t> pyr_bytes_written_{0};  // level shards: blocks + indexes
  bool fixed_shape_ = false;  // meta_.fixed_shape, readable without mu_
  Status pyr_error_;  // a failed pyramid update: finalize fails, the journal stays
  std::unique_ptr<std::set<Shape3>> rebuild_bricks_;  // recovered: Start() rebuilds levels

  // Virtual TIFF layouts per level and axis, rebuilt when the shape changes.
  mutable std::mutex layout_mu_;
  struct Layouts {
    Shape3 shape{0, 0, 0};
    std::shared_ptr<const VirtualTiffLayout> axis[3];
  };
  mutable std::map<int, Layouts> layouts_;

  struct Counters {
    std::atomic<uint64_t> slices_received{0};
    std::atomic<uint64_t> bytes_received{0};
    std::atomic<uint64_t> bytes_written{0};
    std::atomic<uint64_t> block_bytes_written{0};
    std::atomic<uint64_t> raw_bytes_flushed{0};
    std::atomic<uint64_t> slabs_flushed{0};
    std::atomic<uint64_t> slabs_spooled{0};
    std::atomic<uint64_t> blocks_written{0};
    std::atomic<uint64_t> blocks_fill{0};
    std::atomic<uint64_t> bricks_written{0};
  } counters_;
  std::vector<std::pair<std::string, std::string>> errors_;  // guarded by mu_
  uint64_t errors_total_ = 0;                                // guarded by mu_
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_VOLUME_H_
