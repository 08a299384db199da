// compact of a brickfs store: rewrites shard files that carry dead bytes,
// in every pyramid level.
//
// The append protocol (DESIGN.md §4) leaves superseded indexes and rewritten
// blocks behind as dead bytes, in level 0 and in the levels above it (each
// rewrite of level 0 updates the levels over it). CompactShard rewrites one
// shard whose file is larger than its live blocks plus one index, densely,
// through ShardStore::Replace: a new file STORE/L/c/KZ/KY/KX.tmp gets the
// live blocks in index (C) order and a fresh index, is fsynced, renamed over
// the shard, and the directory is fsynced. A shard is never modified in
// place, so a crash at any point leaves either the old or the new shard
// (plus at most a stray .tmp, which `brickfs fsck --repair` deletes).
// Compact (`brickfs compact`) runs it over every shard of every level.
//
// Every block's crc32c is verified as it is copied; a corrupt block (or an
// index that does not validate) leaves that shard untouched and is reported,
// other shards are still compacted. Run `brickfs fsck --repair` for those.
//
// Compact needs the store's exclusive lock (no daemon may have it mounted)
// and an empty journal: a store that was not unmounted cleanly must be
// recovered first (mount it read-write once, or `brickfs fsck --repair`),
// because the journal's recorded shard lengths would no longer match. The
// daemon calls CompactShard on its own ShardStore and journals the
// replacement in `before_rename`.
//
// Thread-safety: Compact: one call at a time per store (the lock enforces
// it). CompactShard: as ShardStore::Replace (per brick, serialized by the
// ShardStore).
#ifndef BRICKFS_VOLUME_COMPACT_H_
#define BRICKFS_VOLUME_COMPACT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "store/shard_store.h"

namespace brickfs {

struct CompactOptions {
  bool dry_run = false;  // default: rewrite; true: only report what would be reclaimed
};

struct CompactBrick {
  int level = 0;             // the pyramid level (array) of the shard
  std::string path;          // relative to the store: "0/c/1/0/2"
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;  // == bytes_before when not compacted
  bool compacted = false;    // rewritten (or, dry run: would be)
  std::string error;         // why it was left alone (corruption, I/O); empty if fine
};

struct CompactReport {
  std::string store;
  bool dry_run = false;
  uint64_t shard_files = 0;
  uint64_t files_compacted = 0;
  uint64_t bytes_before = 0;  // all shard files
  uint64_t bytes_after = 0;
  std::vector<CompactBrick> bricks;  // every shard that was (or should be) rewritten
  // The same counts per pyramid level (the totals above are their sums).
  struct Level {
    int level = 0;
    uint64_t shard_files = 0;
    uint64_t files_compacted = 0;
    uint64_t bytes_before = 0;
    uint64_t bytes_after = 0;
  };
  std::vector<Level> levels;
  uint64_t errors() const;
};

struct ShardCompactOptions {
  bool dry_run = false;  // default: rewrite; true: only fill in what would be reclaimed
  // Rewrite only a shard whose dead bytes (file bytes past its live blocks
  // and one index) are at least this many; default: any.
  uint64_t min_dead_bytes = 1;
  // Runs after the new file is durable and before it is renamed over the
  // shard, with its length (0: the shard holds no live block and is removed
  // instead). An error leaves the shard as it was and is returned. Empty: none.
  ShardStore::BeforeRename before_rename;
};

// Compacts the shard of `brick` in the array `shards` serves (geometry `g`:
// block, brick and dtype of that array; for messages). Fills *out's bytes
// and flags (path and level are the caller's). Returns, with the shard left
// as it was: Corruption (its index or a live block fails validation: run
// fsck --repair), IOError, or what before_rename returned.
Status CompactShard(ShardStore& shards, const Geometry& g, const Shape3& brick,
                    const ShardCompactOptions& options, CompactBrick* out);

// Compacts the store at `store`, every level. Fails (nothing done) with NotFound,
// InvalidArgument (not a store, or a journal to replay first), Busy (locked),
// Corruption/Unsupported (zarr.json), IOError (a directory not readable).
// Per-shard failures are in the report, not the status.
Result<CompactReport> Compact(const std::string& store, const CompactOptions& options);

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_COMPACT_H_
