// Records of the write-ahead journal STORE/.brickfs/journal.
//
// The journal makes acknowledged work survive a crash (kill -9, power loss):
// a slab's shard appends are fsynced, then its commit is appended to the
// journal and the journal is fsynced. On the next mount the journal is
// replayed: every shard is truncated to its last committed length (a torn
// append disappears), committed slices are kept, and slices that were only
// received are reported missing. A clean unmount writes the final zarr.json
// and then empties the journal.
//
// On disk the journal is a sequence of frames, all little-endian:
//   length   u32   bytes of payload
//   crc32c   u32   CRC-32C of the payload
//   payload        type u8, then the fields of that type:
//     kBrickBase    level u8, bz u64, by u64, bx u64, length u64
//                   the brick's file length before this session's first
//                   append to it (fsynced before that append is issued)
//     kBrickLength  level u8, bz u64, by u64, bx u64, length u64
//                   the brick's length after an append (part of a commit)
//     kSlabCommit   level u8, slab u64, count u32, then count x z u64
//                   every kBrickLength since the previous commit is durable;
//                   the listed slices are now in the store. A brick's
//                   recovered length is the longest committed one: slabs
//                   may commit out of order, files only grow.
//     kReceived     z u64    a slice was accepted into a slab buffer
//     kGeometry     Z u64, Y u64, X u64, dtype u8, block 3 x u64, brick 3 x u64
//     kBrickReplace level u8, bz u64, by u64, bx u64, length u64 [, inode u64]
//                   the brick's file is about to be replaced whole (a write
//                   through bricks/ or a compaction: new file + rename);
//                   fsynced before the rename. Its recovered length becomes
//                   `length` if the file is the new one, the inode written
//                   beside the old file (records without it: a file with a
//                   valid index at that length); else the rename never
//                   happened, and the length before the replacement stands.
//     kSession      session u64, previous u64
//                   the first frame of every journal, fsynced before the
//                   store's metadata says "not finalized": the metadata of
//                   an unfinalized store names the session whose journal
//                   must be replayed (`previous`: the session the metadata
//                   may still name while the new one starts).
//     kName         z u64, size u64, mtime_ns i64, name_len u16, name bytes
//                   the name a writer gave slice z, with the size and time
//                   it left (volume/slice_names.h); name_len 0: z has no
//                   writer's name any more.
//     kRangeCommit  z0 u64, z1 u64
//                   level-0 slices [z0, z1) hold stored data now (a brick
//                   written through bricks/, after its rename; fsynced).
// Replay stops at the first frame that is short or fails its checksum (a
// torn tail); frames after it are ignored.
//
// Thread-safety: values and pure functions.
#ifndef BRICKFS_FORMAT_JOURNAL_H_
#define BRICKFS_FORMAT_JOURNAL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "format/volume_meta.h"

namespace brickfs {

enum class JournalType : uint8_t {
  kBrickBase = 1,
  kBrickLength = 2,
  kSlabCommit = 3,
  kReceived = 4,
  kGeometry = 5,
  kBrickReplace = 6,
  kSession = 7,
  kName = 8,
  kRangeCommit = 9,
};

struct BrickId {
  uint8_t level = 0;
  Shape3 brick{0, 0, 0};
  bool operator<(const BrickId& o) const {
    return level != o.level ? level < o.level : brick < o.brick;
  }
  bool operator==(const BrickId& o) const { return level == o.level && brick == o.brick; }
};

// Encoders: each appends one complete frame to *out.
void AppendBrickBase(const BrickId& id, uint64_t length, std::string* out);
void AppendBrickLength(const BrickId& id, uint64_t length, std::string* out);
void AppendSlabCommit(uint8_t level, uint64_t slab, const std::vector<uint64_t>& slices,
                      std::string* out);
void AppendReceived(uint64_t z, std::string* out);
void AppendGeometry(const Geometry& g, std::string* out);
void AppendBrickReplace(const BrickId& id, uint64_t length, uint64_t inode, std::string* out);
void AppendRangeCommit(uint64_t z0, uint64_t z1, std::string* out);
void AppendSession(uint64_t session, uint64_t previous, std::string* out);
// name empty: z loses its name. REQUIRES: name.size() < 65536.
void AppendName(uint64_t z, uint64_t size, int64_t mtime_ns, const std::string& name,
                std::string* out);

// A kName record, replayed.
struct JournalName {
  uint64_t z = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string name;  // empty: forget z's name
  uint64_t offset = 0;  // of its frame in the journal
};

// What a journal says, replayed.
struct JournalState {
  std::optional<Geometry> geometry;        // the last kGeometry record
  std::map<BrickId, uint64_t> base;        // length before this session's appends
  std::map<BrickId, uint64_t> committed;   // longest committed length
  std::set<uint64_t> committed_slices;     // level 0, by slab commits
  IntervalSet committed_ranges;            // level 0, by brick writes (kRangeCommit)
  // The last replacement of each brick: its new length and the new file's
  // inode, and the brick's recovered length before it (nullopt: none).
  struct Replacement {
    uint64_t length = 0;
    std::optional<uint64_t> inode;
    std::optional<uint64_t> before;
  };
  std::map<BrickId, Replacement> replaced;
  std::set<uint64_t> received;             // accepted, committed or not
  uint64_t session = 0;                    // of the first kSession frame; 0: none
  uint64_t previous_session = 0;
  // Level-0 slab -> offset in the journal of its last commit frame: a slice
  // fsynced (volume/sync_log.h) at a journal offset past it is newer.
  std::map<uint64_t, uint64_t> slab_commit_offset;
  std::vector<JournalName> names;          // kName records in order
  uint64_t valid_bytes = 0;                // prefix of whole, valid frames
  uint64_t torn_bytes = 0;                 // bytes after it (ignored)
  uint64_t frames = 0;

  // The length a brick's file must have: committed, else base, else none
  // (not touched by this journal).
  std::optional<uint64_t> RecoveredLength(const BrickId& id) const;
};

// The level-0 metadata a store has after replaying `js` over `meta` (what
// was final before; nullopt for a store whose array was never written) with
// geometry `g`: the shape grown to cover every slice received (unless fixed),
// the slices committed since the last finalize added to present. Slices
// received but never committed (lost: to copy again) go to *lost. Used by
// recovery at mount, fsck --repair and info, so all three agree.
VolumeMeta RecoveredMeta(const std::optional<VolumeMeta>& meta, const Geometry& g,
                         const JournalState& js, ZRanges* lost);

// Replays journal bytes. Never fails on a torn or corrupt tail (that is
// recorded in torn_bytes); fails with Corruption only for a frame that is
// intact (checksum right) but malformed (including a z or shape beyond the
// limits of geometry.h), naming `where` and the offset.
Result<JournalState> ReplayJournal(const std::string& bytes, const std::string& where);

}  // namespace brickfs

#endif  // BRICKFS_FORMAT_JOURNAL_H_
