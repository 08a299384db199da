// Internals of fsck (volume/fsck.h), shared by its rooms. Fsck() runs one
// FsckRun, step by step; each room holds some of the steps:
//
//   fsck.cc         the report's methods; Fsck(): the store locked (step 1),
//                   then the steps in order; the journal and the geometry to
//                   check against (2, 3), the group document (4), spool files
//                   (5); the metadata helpers (OmeProblem, LevelMetaProblem,
//                   RepairedGroup).
//   fsck_brick.cc   one shard file checked, and repaired: its index, torn
//                   tails, every block (CheckBrick); lost+found; directory
//                   listing; the z ranges a block or brick covers.
//   fsck_shards.cc  the shard files of every level: strays, each shard
//                   checked in parallel, a stale shape grown, the level
//                   documents, slices_present against the stored blocks
//                   (steps 6, 7).
//   fsck_repair.cc  levels recomputed from level 0 (repairs, --deep,
//                   recovery), the metadata rewritten, the journal recovered
//                   or cut (steps 8-10).
//
// Not for use outside src/volume/fsck*.cc.
// Thread-safety: CheckBrick runs on many threads with one Ctx (lost_mu guards
// the names picked in lost+found); an FsckRun belongs to one thread.
#ifndef BRICKFS_VOLUME_FSCK_INTERNAL_H_
#define BRICKFS_VOLUME_FSCK_INTERNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "format/journal.h"
#include "format/json.h"
#include "format/volume_meta.h"
#include "store/store.h"
#include "volume/fsck.h"

namespace brickfs {
namespace fsck_internal {

inline constexpr size_t kNone = ~size_t{0};  // no problem index
inline constexpr uint64_t kChunk = 8u << 20;  // read/copy granularity
extern const char kDerived[];                 // "levels are derived from level 0: ..."

// The union of ranges, merged.
ZRanges MergeRanges(ZRanges all);

// "L/c/KZ/KY/KX", the shard of `b` in level `level`, relative to the store.
std::string BrickRel(int level, const Shape3& b);
// A message without the "where: " its Status put in front.
std::string StripWhere(std::string m);
// The z slices of block row `bz` (BlockZ: within the shape; BlockZAll: all
// of them) and of brick row `kz`.
ZRanges BlockZ(const Geometry& g, uint64_t bz);
ZRanges BlockZAll(const Geometry& g, uint64_t bz);
ZRanges BrickZAll(const Geometry& g, uint64_t kz);
// A key of a shard path: decimal digits, no leading zero.
bool ParseKey(const std::string& s, uint64_t* out);
// KX.tmp, KX.new...: what an interrupted replacement or compact leaves.
bool IsReplacementLeftover(const std::string& name);

struct DirEntry {
  std::string name;
  bool is_dir = false;
  bool is_file = false;
};
// The entries of `dir` (lstat), brick keys first in numeric order.
Result<std::vector<DirEntry>> ListDir(const std::string& dir);

// Shared state of one fsck run.
struct Ctx {
  std::string store;
  std::string lost_dir;        // STORE/.brickfs/lost+found
  std::vector<Geometry> geos;  // [level]: the geometry its shards are checked against
  uint64_t n = 0;              // blocks per brick = index entries (every level)
  uint64_t index_size = 0;     // 16 n + 4
  uint64_t max_nbytes = 0;
  bool repair = false;
  const JournalState* journal = nullptr;  // null without a replayable journal

  std::mutex lost_mu;  // picking names in lost+found
};

// A fresh name in lost+found for `rel` ("0/c/1/2/3" -> "0_c_1_2_3<suffix>").
// Creates lost+found. REQUIRES: ctx.repair.
Result<std::string> LostName(Ctx& ctx, const std::string& rel, const std::string& suffix);
// Moves STORE/`rel` into lost+found; returns the name it got there.
Result<std::string> MoveToLost(Ctx& ctx, const std::string& rel);
// The live blocks of the shard file at `path` (0 when it has no valid index).
uint64_t LiveBlocksOf(const Ctx& ctx, const std::string& path);

struct BrickResult {
  std::vector<FsckProblem> problems;
  bool file = false;
  uint64_t bytes = 0;
  uint64_t blocks = 0;
  bool unrepaired_tail = false;  // a torn append the journal knows could not be cut
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> rows;  // level 0: block z -> (blocks, an example block)
  // Level >= 1, repair: what to rebuild from the level below, and the
  // problem (index into `problems`) the rebuild repairs.
  std::vector<std::pair<size_t, Shape3>> rebuild_blocks;  // problem, block z,y,x
  std::vector<size_t> rebuild_brick;                      // problems: the whole brick
};

// Checks (and with ctx.repair, repairs) the shard of `brick` in array
// `level`. Level 0 repairs drop what cannot be kept (and say it is lost);
// a level >= 1 asks for its blocks to be rebuilt instead (BrickResult).
BrickResult CheckBrick(Ctx& ctx, int level, const Shape3& brick);

// The group's name: the store's directory without ".zarr".
std::string StoreName(const std::string& path);
// Why the group's attributes.ome does not describe the store's `num_levels`
// arrays ("" when it does).
std::string OmeProblem(const Json& group, int num_levels);
// The group document with our attributes.ome, other attributes kept.
// REQUIRES: `group` is an object (it passed CheckGroupJson).
Result<std::string> RepairedGroup(const Json& group, const VolumeMeta& meta, const std::string& store);
// Why STORE/L/zarr.json does not describe level L of `meta` ("" when it does).
std::string LevelMetaProblem(const VolumeMeta& got, const VolumeMeta& meta, int level);

// One fsck of one store: what the steps find and decide, passed from step
// to step. The members are set in the order of the steps.
struct FsckRun {
  FsckRun(const std::string& store_path_in, const FsckOptions& options_in, std::unique_ptr<Store> store_in);

  // A new problem, appended to rep.problems.
  FsckProblem& Add(const std::string& kind, const std::string& path, const std::string& message);

  void CheckJournal();        // steps 2, 3 (fsck.cc)
  void CheckGroup();          // step 4 (fsck.cc)
  Status CheckSpool();        // step 5 (fsck.cc)
  Status CheckShards();       // steps 6, 7 (fsck_shards.cc); without geo: an empty store, the run is over
  void Repair();              // steps 8-10 (fsck_repair.cc)

  const std::string& store_path;
  const FsckOptions& options;
  std::unique_ptr<Store> store;
  const std::optional<VolumeMeta>& meta;  // store's 0/zarr.json
  FsckReport rep;
  Ctx ctx;

  // Steps 2, 3: the journal and the geometry.
  std::optional<JournalState> js;
  size_t unclean = kNone;  // index of the unclean_shutdown problem
  size_t journal_torn = kNone;
  ZRanges never_committed;
  std::optional<Geometry> geo;
  std::optional<VolumeMeta> recovered;  // the metadata after replaying the journal
  const VolumeMeta* effective = nullptr;
  int num_levels = 1;
  // A store that is not finalized may hold blocks past the shape it recorded
  // (a session whose journal was lost): they are evidence, not strays.
  bool shape_may_grow = false;

  // Step 4: the group document.
  size_t group_problem = kNone;
  bool group_whole = false;                // rebuild it whole (else: attributes.ome only)
  std::optional<std::string> group_found;  // the document found, kept when replaced
  std::optional<Json> group_doc;

  // Steps 6, 7: the shards, the shape, slices_present.
  bool tails_left = false;
  // Problems (indexes into rep.problems) whose repair is a rebuild of level blocks.
  std::vector<std::tuple<size_t, int, Shape3>> rebuild_blocks;  // problem, level, block z,y,x
  std::vector<std::tuple<size_t, int, Shape3>> rebuild_bricks;  // problem, level, brick
  size_t shape_problem = kNone;
  ZRanges grown_z;
  std::vector<size_t> level_meta_problem;  // [level]
  std::vector<bool> level_missing;         // [level]
  size_t present_problem = kNone;
  ZRanges present_add;  // slices to list as present (repair)
  size_t unrecorded = kNone;
};

}  // namespace fsck_internal
}  // namespace brickfs

#endif  // BRICKFS_VOLUME_FSCK_INTERNAL_H_
