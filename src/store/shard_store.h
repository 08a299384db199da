// Shard files of one Zarr array (one pyramid level): STORE/L/c/KZ/KY/KX,
// reached through a Storage (store/storage.h): local files, or a remote
// store read over HTTP.
//
// Implements the append protocol (DESIGN.md §4): an append writes, at the
// current end of the brick's file, the brick's new encoded blocks followed by
// a complete new index, in one pwrite. After every append the file is again a
// valid shard; earlier indexes and replaced blocks become dead bytes.
// Blocks are never read back while writing.
//
// The index of every brick touched is cached in memory (16 bytes per block).
// Indexes read from disk are validated (checksum, every entry inside the
// file) before use.
//
// The bytes go through the storage only: reads of one brick are one batch
// of ranges (ReadRanges, which a remote storage fetches in parallel), the
// append is one positional write (WriteAt), a brick rewritten whole is a
// Replace, durability is Sync. A LocalStorage opens shard files below the
// store without following links: a brick, or a directory of the array,
// that someone replaced by a symlink is refused, never used.
//
// Thread-safety: all methods are thread-safe. Appends to one brick are
// serialized by that brick's mutex; appends to different bricks and reads run
// in parallel. Lock order: ShardStore::mu_ before BrickState::mu.
#ifndef BRICKFS_STORE_SHARD_STORE_H_
#define BRICKFS_STORE_SHARD_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "common/thread_pool.h"
#include "format/journal.h"
#include "format/shard_index.h"
#include "store/storage.h"

namespace brickfs {

struct EncodedBlock {
  uint64_t index_in_brick;  // C-order position in the brick's shard index
  std::string_view bytes;   // zstd frame + crc32c
};

struct AppendStats {
  uint64_t bytes_written = 0;  // blocks + index
  uint64_t block_bytes = 0;    // blocks only
  uint64_t file_size = 0;      // the brick's length after the append
};

class ShardStore {
 public:
  // The array whose key prefix in `storage` is `array_key` ("0" for level
  // 0 of a store; "" when the storage's root is the array directory). The
  // geometry's block/brick/dtype must not change for the life of the
  // object; shape may grow. Read-only when `read_only` or the storage is.
  ShardStore(std::shared_ptr<Storage> storage, std::string array_key, const Geometry& geo,
             bool read_only);
  // The array in the local directory `dir` (STORE/L), through a LocalStorage.
  ShardStore(std::string dir, const Geometry& geo, bool read_only);

  // Appends `blocks` (distinct index positions) to brick `brick` and writes
  // its new index. REQUIRES: !read_only.
  Status Append(const Shape3& brick, const std::vector<EncodedBlock>& blocks, AppendStats* stats);

  // Replaces the brick's file whole: `blocks` (distinct index positions; all
  // other entries empty) are written densely with a fresh index to
  // BRICK.tmp, fsynced, and renamed over the brick (the directory fsynced),
  // so readers see the old or the new brick, never a mix. No blocks: the
  // file is removed. `before_rename(new_length, inode)` runs after the new
  // file is durable and before the rename (the volume journals it there;
  // the new file's inode lets recovery tell it from the old one).
  // REQUIRES: !read_only.
  using BeforeRename = std::function<Status(uint64_t new_length, uint64_t inode)>;
  Status Replace(const Shape3& brick, const std::vector<EncodedBlock>& blocks,
                 const BeforeRename& before_rename, AppendStats* stats);

  // Bricks appended to or replaced through this object.
  std::vector<Shape3> Touched() const;

  // The brick's index (all empty when the file does not exist).
  Result<std::shared_ptr<const ShardIndex>> GetIndex(const Shape3& brick);

  // Reads the encoded bytes of the given blocks of one brick; out[i] is empty
  // for blocks never written. Corruption if the file is shorter than the
  // index says.
  Status ReadBlocks(const Shape3& brick, const std::vector<uint64_t>& indices,
                    std::vector<std::string>* out);
  // The same, without copies: visit(i, bytes) for each stored block, in file
  // order, i its position in `indices`; `bytes` lives only during the call.
  // The first error a visit returns stops the read and is returned.
  using BlockVisitor = std::function<Status(size_t i, std::string_view bytes)>;
  Status ReadBlocks(const Shape3& brick, const std::vector<uint64_t>& indices,
                    const BlockVisitor& visit);

  // Starts the kernel reading the byte runs ReadBlocks(brick, indices) would
  // pread, without waiting (posix_fadvise WILLNEED), so that one reader keeps
  // many disk reads in flight. A hint: errors are ignored.
  void Prefetch(const Shape3& brick, const std::vector<uint64_t>& indices);

  // fsyncs every shard appended to since the last call, and the directories
  // created. Returns the first error.
  Status SyncDirty();
  // fsyncs the given bricks' files and the directories created since the
  // last sync (with their parents up to the array directory); with `io`,
  // the fsyncs run in parallel on it (a file system commits concurrent
  // fsyncs together).
  Status SyncBricks(const std::vector<Shape3>& bricks, ThreadPool* io = nullptr);

  // The brick's current file length (0 when it has no file).
  Result<uint64_t> FileSize(const Shape3& brick);

  // The bricks inside `brick_grid` that have a file, by walking the array's
  // directories (never the grid: a declared volume may be huge).
  std::vector<Shape3> StoredBricks(const Shape3& brick_grid) const;

  // Shard files, their bytes on disk, and the bytes their current indexes
  // point at (live blocks), over every brick of `brick_grid`. The difference
  // is dead bytes: superseded indexes and rewritten blocks. For `info`.
  struct Usage {
    uint64_t files = 0;
    uint64_t file_bytes = 0;
    uint64_t live_block_bytes = 0;
    uint64_t live_blocks = 0;
    uint64_t index_bytes = 0;  // the current index of each file
  };
  // `recovered_length(brick)`, when given and set, is the length a recovery
  // would cut the brick's file to (a torn append after it is not counted).
  using LengthOf = std::function<std::optional<uint64_t>(const Shape3& brick)>;
  Result<Usage> ScanUsage(const Shape3& brick_grid, const LengthOf& recovered_length = {});

  // The validated index of the brick's file, read from disk (not the cache),
  // cut at `length` when given and shorter; *file_size is the length used
  // (0, all entries empty: no file). Corruption when no valid index ends there.
  Result<ShardIndex> ReadIndex(const Shape3& brick, std::optional<uint64_t> length,
                               uint64_t* file_size) const;

  // The length the file of brick `id.brick` (of this array) must be cut to
  // after a crash, per the journal `js`: its recovered length, or, for a
  // brick replaced whole whose rename never happened (the file at the path
  // is not the journaled inode), its length before the replacement;
  // nullopt: leave the file as it is.
  std::optional<uint64_t> RecoveredLength(const BrickId& id, const JournalState& js) const;

  // Recovery (REQUIRES: !read_only): the brick's file cut to `length`
  // (removed when 0), and a replacement's temporary file left by a crash
  // (BRICK.tmp) removed. These bypass the cached index: call them before
  // anything reads the brick through this object.
  Status CutTo(const Shape3& brick, uint64_t length);
  Status RemoveLeftover(const Shape3& brick);
  // The brick's file size on disk (uncached); nullopt when it has no file
  // (or something other than a regular file is there).
  Result<std::optional<uint64_t>> StoredSize(const Shape3& brick) const;

  std::string BrickPath(const Shape3& brick) const;
  uint64_t max_block_nbytes() const { return max_block_nbytes_; }

 private:
  struct BrickState {
    std::mutex mu;
    bool loaded = false;  // guarded by mu
    uint64_t file_size = 0;
    std::shared_ptr<const ShardIndex> index;
  };
  BrickState* State(const Shape3& brick);
  // The key of the brick's shard: ARRAY/c/KZ/KY/KX.
  std::string BrickKey(const Shape3& brick) const;
  // The preads that read blocks `indices` of a brick: `order` holds the
  // positions in `indices` of the stored blocks, by file offset; a run reads
  // file bytes [begin, end) holding blocks order[first..last).
  struct ReadPlan {
    struct Run {
      uint64_t begin, end;
      size_t first, last;
    };
    std::shared_ptr<const ShardIndex> index;
    std::vector<size_t> order;
    std::vector<Run> runs;
  };
  Status PlanReads(const Shape3& brick, const std::vector<uint64_t>& indices, ReadPlan* plan);
  // REQUIRES: st->mu held.
  Status LoadLocked(const Shape3& brick, BrickState* st);

  const std::shared_ptr<Storage> storage_;
  const std::string array_key_;
  const Geometry geo_;
  const bool read_only_;
  const uint64_t max_block_nbytes_;

  mutable std::mutex mu_;
  std::map<Shape3, std::unique_ptr<BrickState>> bricks_;  // guarded by mu_
  std::set<Shape3> dirty_;                                // guarded by mu_
  std::set<Shape3> touched_;                              // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_STORE_SHARD_STORE_H_
