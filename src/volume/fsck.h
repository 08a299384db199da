// fsck of a brickfs store: checks the metadata, every shard file and the
// journal against each other and, with repair, makes the store consistent.
//
// What is checked (README "The store", DESIGN.md §4, §10):
//   metadata  STORE/zarr.json and STORE/0/zarr.json parse and validate (else
//             Fsck fails: the store cannot be checked), the group carries the
//             OME-Zarr multiscales of array "0"; every stored block lies inside
//             the array shape; a finalized store's slices_present covers every
//             slab that has stored blocks.
//   files     every entry under STORE/0/c/ is a shard KZ/KY/KX inside the
//             brick grid (else a stray file or directory).
//   shards    file size >= index size; the index at the end verifies (crc32c,
//             every entry empty or inside the data part with 0 < nbytes <=
//             the largest encoded block); live blocks do not overlap; every
//             live block's crc32c, zstd frame content size (== block bytes) and
//             decoding to exactly block bytes.
//   journal   STORE/.brickfs/journal, when present and not empty, is replayed
//             (ReplayJournal): torn tail bytes; an unclean shutdown not yet
//             recovered; shards longer than their recovered length (torn
//             appends: checked as the mount would see them, cut back) or
//             shorter (committed bytes missing).
//
// Repair (FsckOptions::repair) — only then is anything modified:
//   torn append (journal)   the shard is cut to its recovered length.
//   torn/corrupt tail       the shard is cut to the end of the last valid
//                           index found by scanning backwards (see
//                           FindLastValidIndex in fsck.cc for the cost).
//   no valid index at all   the shard is renamed into lost+found (the brick
//                           reads as fill value): data LOST.
//   corrupt block           a fresh index without that entry is appended
//                           (append protocol: the file stays a valid shard);
//                           the block reads as fill value: data LOST.
//   block outside the shape dropped from the index the same way (no data of
//                           the array is lost: readers never see it).
//   stray entries           moved into lost+found (a leftover *.compact.tmp of
//                           an interrupted compact is deleted: its shard is
//                           intact).
//   group OME attributes    rewritten (other attributes are kept).
//   unreplayed journal      recovered like a read-write mount does: shards cut
//                           to their committed lengths, slices_present and the
//                           shape updated from the journal, store marked
//                           finalized, journal emptied.
//   journal torn tail       cut off.
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
  // "block_outside_shape", "slices_present", "io".
  std::string kind;
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

  // One line: "0/c/0/0/1 block 5 (block z,y,x 0,1,1): <message> -- REPAIRED: <action>".
  std::string Line() const;
};

struct FsckReport {
  std::string store;
  bool repair = false;
  std::optional<Geometry> geometry;  // as checked (the journal's shape if larger)
  bool finalized = false;
  uint64_t shard_files = 0;    // shard files checked
  uint64_t shard_bytes = 0;    // their bytes (after repairs)
  uint64_t blocks_checked = 0;
  bool journal_present = false;  // exists and is not empty
  uint64_t journal_frames = 0;
  uint64_t journal_torn_bytes = 0;
  std::vector<std::string> notes;  // facts that are not problems
  std::vector<FsckProblem> problems;

  uint64_t repaired() const;
  uint64_t left() const { return problems.size() - repaired(); }
  uint64_t blocks_lost() const;  // block problems repaired by dropping the block
  ZRanges lost_z() const;        // union of the problems' lost_z
  // kFsckClean, kFsckAllRepaired or kFsckProblemsLeft.
  int ExitCode() const;
};

// Checks (and with options.repair, repairs) the store at `store`.
// Fails only when the check cannot run: NotFound (no store), InvalidArgument
// (not a brickfs/Zarr v3 store), Busy (locked by a brickfs daemon),
// Corruption/Unsupported (zarr.json unreadable), IOError.
Result<FsckReport> Fsck(const std::string& store, const FsckOptions& options);

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_FSCK_H_
