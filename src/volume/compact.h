// compact of a brickfs store: rewrites shard files that carry dead bytes.
//
// The append protocol (DESIGN.md §4) leaves superseded indexes and rewritten
// blocks behind as dead bytes. Compact rewrites every shard whose file is
// larger than its live blocks plus one index, densely: a new file
// STORE/0/c/KZ/KY/KX.compact.tmp gets the live blocks in index (C) order and
// a fresh index, is fsynced, renamed over the shard, and the directory is
// fsynced. A shard is never modified in place, so a crash at any point
// leaves either the old or the new shard (plus at most a stray .compact.tmp,
// which `brickfs fsck --repair` deletes).
//
// Every block's crc32c is verified as it is copied; a corrupt block (or an
// index that does not validate) leaves that shard untouched and is reported,
// other shards are still compacted. Run `brickfs fsck --repair` for those.
//
// Needs the store's exclusive lock (no daemon may have it mounted) and an
// empty journal: a store that was not unmounted cleanly must be recovered
// first (mount it read-write once, or `brickfs fsck --repair`), because the
// journal's recorded shard lengths would no longer match.
//
// Thread-safety: one call at a time per store (the lock enforces it).
#ifndef BRICKFS_VOLUME_COMPACT_H_
#define BRICKFS_VOLUME_COMPACT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"

namespace brickfs {

struct CompactOptions {
  bool dry_run = false;  // default: rewrite; true: only report what would be reclaimed
};

struct CompactBrick {
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
  uint64_t errors() const;
};

// Compacts the store at `store`. Fails (nothing done) with NotFound,
// InvalidArgument (not a store, or a journal to replay first), Busy (locked),
// Corruption/Unsupported (zarr.json), IOError (a directory not readable).
// Per-shard failures are in the report, not the status.
Result<CompactReport> Compact(const std::string& store, const CompactOptions& options);

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_COMPACT_H_
