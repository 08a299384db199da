// fsck of a brickfs store: checks the metadata, every shard file of every
// pyramid level and the journal against each other and, with repair, makes
// the store consistent.
//
// What is checked (README "The store", DESIGN.md §4, §8, §10):
//   metadata  STORE/0/zarr.json parses and validates (else Fsck fails: the
//             store cannot be checked). STORE/zarr.json is a brickfs group
//             (Zarr v3, node_type group, attributes.ome.multiscales listing
//             levels 0..num_levels-1): missing, unparseable or foreign (another
//             tool rewrote it) is a problem, not a failure. Each level's
//             STORE/L/zarr.json has shape LevelShape(level-0 shape, L) and
//             level 0's block, brick, dtype and zstd level. A finalized store's
//             slices_present covers every slab that has stored blocks.
//   files     every entry under STORE/L/c/ is a shard KZ/KY/KX inside the
//             level's brick grid (else a stray file or directory); numbered
//             directories STORE/L with L >= num_levels are strays too; files
//             under STORE/.brickfs/spool/ are slabs of a daemon that died.
//   shards    (every level) file size >= index size; the index at the end
//             verifies (crc32c, every entry empty or inside the data part with
//             0 < nbytes <= the largest encoded block); live blocks do not
//             overlap and lie inside the level's shape; every live block's
//             crc32c, zstd frame content size (== block bytes) and decoding to
//             exactly block bytes.
//   shape     a store that is not finalized (its daemon died) whose level-0
//             blocks reach past its recorded shape: the shape is stale (a
//             journal lost), the blocks are evidence.
//   journal   STORE/.brickfs/journal, when present and not empty, is replayed
//             (ReplayJournal): torn tail bytes; an unclean shutdown not yet
//             recovered; shards longer than their recovered length (torn
//             appends: checked as the mount would see them, cut back) or
//             shorter (committed bytes missing).
//   deep      (FsckOptions::deep) every level block is compared with level 0
//             reduced level by level (volume/level_rebuild.h).
//
// Repair (FsckOptions::repair) — only then is anything modified. Level 0
// holds the data; levels >= 1 are derived from it, so their problems are
// repaired by rebuilding blocks from the level below (fresh blocks and a new
// index appended, append protocol) and lose nothing:
//   torn append (journal)   the shard is cut to its recovered length.
//   torn/corrupt tail       the shard is cut to the end of the last valid
//                           index found by scanning backwards (see
//                           FindLastValidIndex in fsck_brick.cc for the cost);
//                           level 0: blocks after it LOST; a level: its
//                           blocks rebuilt.
//   no valid index at all   the shard is renamed into lost+found; level 0:
//                           the brick reads as fill value, data LOST; a
//                           level: the brick is rebuilt.
//   corrupt block           level 0: a fresh index without that entry is
//                           appended; the block reads as fill value: data
//                           LOST. A level: rebuilt.
//   block outside the shape dropped from the index the same way; level 0:
//                           its data is LOST to the array (no reader saw it),
//                           and said so with its slices.
//   stale shape (not final) the shape is grown to cover every stored block
//                           (nothing dropped); the slices it grew over are
//                           reported to be checked (check_z).
//   no journal (not final)  the daemon's record is gone: slabs with stored
//                           blocks and no listed slice are listed as present
//                           (check_z), every level is rebuilt from level 0,
//                           and the store is marked finalized.
//   stray entries           moved into lost+found (leftover *.tmp and
//                           *.compact.tmp of an interrupted brick replacement
//                           or compact are deleted: their shard is intact); a
//                           level-0 shard outside the grid that holds blocks
//                           is reported LOST to the array.
//   spool files             removed (they never held committed data).
//   level metadata          rewritten from 0/zarr.json.
//   group document          missing or foreign: rebuilt from the arrays'
//                           metadata (VolumeMeta::GroupJson), the document
//                           found kept in lost+found; wrong attributes.ome:
//                           rewritten (other attributes kept).
//   unreplayed journal      recovered like a read-write mount does: shards cut
//                           to their committed lengths, the levels over the
//                           level-0 bricks it names rebuilt from level 0,
//                           slices_present and the shape updated from the
//                           journal, store marked finalized, journal emptied.
//   journal torn tail       cut off.
//   --deep differences      the level blocks rewritten.
// Bytes cut off a shard, and shards with no valid index, are kept in
// STORE/.brickfs/lost+found/ (named after their path) for inspection.
// "Repaired" means consistent again, not that data came back: problems that
// dropped data say so (data_lost) and name the slices to copy again.
//
// Locking: the store lock is taken (shared for a check, exclusive for a
// repair), so fsck never runs on a store mounted read-write (repair: on a
// store mounted at all); Fsck then fails with Busy.
//
// Thread-safety: Fsck may run concurrently on different stores; one call
// checks bricks on a pool of threads internally.
#ifndef BRICKFS_VOLUME_FSCK_H_
#define BRICKFS_VOLUME_FSCK_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "format/volume_meta.h"

namespace brickfs {

struct FsckOptions {
  bool repair = false;  // default: check only, modify nothing
  // Also recompute every pyramid level from level 0 (2x2x2 with the store's
  // downsample method, level by level) and compare every level block with
  // it: reads and decodes every stored block of every level once.
  bool deep = false;
  size_t threads = 0;   // bricks checked in parallel; 0: number of CPUs
};

// Exit codes of `brickfs fsck` (FsckReport::ExitCode, and kFsckCouldNotRun
// when Fsck fails).
inline constexpr int kFsckClean = 0;
inline constexpr int kFsckAllRepaired = 1;
inline constexpr int kFsckProblemsLeft = 4;
inline constexpr int kFsckCouldNotRun = 8;

struct FsckProblem {
  // What is wrong, a stable word for scripts: "metadata", "stray",
  // "shard_too_small", "index", "torn_tail", "torn_append", "shard_short",
  // "journal", "journal_torn", "unclean_shutdown", "overlap", "block",
  // "block_outside_shape", "slices_present", "shape", "spool",
  // "level_differs" (--deep), "io".
  std::string kind;
  int level = 0;     // the pyramid level (array) `path` belongs to
  std::string path;  // relative to the store: "0/c/1/0/2", "zarr.json", ...
  std::optional<Shape3> brick;
  std::optional<uint64_t> block;    // C-order index of the block in its brick
  std::optional<Shape3> block_zyx;  // the block's global block coordinates
  std::string message;              // the problem, with its numbers
  bool repaired = false;
  bool data_lost = false;  // the repair dropped stored data (it reads as fill now)
  std::string action;      // what the repair did, or why it did not (empty: check only)
  // Slices whose stored data may be gone (to copy again); set with data_lost.
  ZRanges lost_z;
  // Slices whose stored data was kept but is not known to be complete (a
  // session's record was lost): to check, and to copy again where wrong.
  ZRanges check_z;

  // One line: "0/c/0/0/1 block 5 (block z,y,x 0,1,1): <message> -- REPAIRED: <action>".
  std::string Line() const;
};

// What was checked in one pyramid level (array).
struct FsckLevelCounts {
  int level = 0;
  uint64_t shard_files = 0;
  uint64_t shard_bytes = 0;
  uint64_t blocks_checked = 0;
};

struct FsckReport {
  std::string store;
  bool repair = false;
  bool deep = false;
  std::optional<Geometry> geometry;  // as checked (the journal's shape if larger)
  bool finalized = false;
  uint64_t shard_files = 0;    // shard files checked
  uint64_t shard_bytes = 0;    // their bytes (after repairs)
  uint64_t blocks_checked = 0;
  int num_levels = 0;                   // levels the metadata lists
  std::vector<FsckLevelCounts> levels;  // per level; the three counts above are their sums
  uint64_t deep_blocks_compared = 0;    // --deep: level blocks recomputed and compared
  bool journal_present = false;  // exists and is not empty
  uint64_t journal_frames = 0;
  uint64_t journal_torn_bytes = 0;
  std::vector<std::string> notes;  // facts that are not problems
  std::vector<FsckProblem> problems;

  uint64_t repaired() const;
  uint64_t left() const { return problems.size() - repaired(); }
  uint64_t blocks_lost() const;  // problems naming a block whose repair dropped its data
  ZRanges lost_z() const;        // union of the problems' lost_z
  ZRanges check_z() const;       // union of the problems' check_z
  // kFsckClean, kFsckAllRepaired or kFsckProblemsLeft.
  int ExitCode() const;
};

// Checks (and with options.repair, repairs) the store at `store`.
// Fails only when the check cannot run: NotFound (no store), InvalidArgument
// (not a brickfs/Zarr v3 store: neither a brickfs group nor an array 0),
// Busy (locked by a brickfs daemon), Corruption/Unsupported (0/zarr.json
// unreadable), IOError.
Result<FsckReport> Fsck(const std::string& store, const FsckOptions& options);

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_FSCK_H_
