// fsck steps 8 to 10: pyramid levels recomputed from level 0 (the repairs
// that asked for it, --deep, the recovery of a session that did not
// finish), the metadata rewritten, the journal recovered or cut. See
// fsck_internal.h.
#include "volume/fsck_internal.h"

#include "store/shard_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/scope_guard.h"
#include "common/thread_pool.h"
#include "format/journal.h"
#include "format/json.h"
#include "format/shard_index.h"
#include "store/journal.h"
#include "store/store.h"
#include "volume/downsample.h"
#include "volume/level_rebuild.h"

namespace brickfs {
namespace fsck_internal {

void FsckRun::Repair() {
  // 8. Levels recomputed from level 0: what the problems above need
  //    rebuilt (repair), every level block (--deep), and after a session
  //    that did not finish, every level block over the level-0 bricks it
  //    changed (as a read-write mount's recovery does).
  const bool recovering = options.repair && unclean != kNone && recovered && !tails_left;
  std::set<Shape3> journal_bricks;
  if (recovering) {
    for (const auto& [id, _] : js->base) {
      if (id.level == 0) journal_bricks.insert(id.brick);
    }
    for (const auto& [id, _] : js->committed) {
      if (id.level == 0) journal_bricks.insert(id.brick);
    }
  }
  LevelRebuild::Result rebuilt;
  std::string rebuild_error;
  if (num_levels > 1) {
    LevelRebuild::Options lo;
    lo.store = store_path;
    lo.level0 = *geo;
    lo.num_levels = num_levels;
    lo.method = ParseDownsampleMethod(effective->downsample_method).value_or(DownsampleMethod::kMean);
    lo.zstd_level = effective->zstd_level;
    lo.write = options.repair;
    LevelRebuild lr(lo);
    if (options.deep) {
      if (!options.repair && unclean != kNone) {
        rep.notes.push_back("--deep: levels not recomputed: the journal of the session that did not finish "
                            "must be recovered first (fsck --repair, or a read-write mount)");
      } else if (!tails_left) {
        lr.WantAll(LevelRebuild::kDeep);
      }
    }
    if (options.repair) {
      for (const auto& [k, level, zyx] : rebuild_blocks) lr.WantBlock(level, zyx, LevelRebuild::kProblem);
      for (const auto& [k, level, brick] : rebuild_bricks) lr.WantBrick(level, brick, LevelRebuild::kProblem);
      for (int level = 1; level < num_levels; ++level) {
        if (!level_missing[level]) continue;
        const Shape3 grid = ctx.geos[level].brick_grid();
        for (uint64_t z = 0; z < grid[0]; ++z) {
          for (uint64_t y = 0; y < grid[1]; ++y) {
            for (uint64_t x = 0; x < grid[2]; ++x) lr.WantBrick(level, {z, y, x}, LevelRebuild::kProblem);
          }
        }
      }
      for (const Shape3& b : journal_bricks) {
        Shape3 lo3, hi3;
        for (int a = 0; a < 3; ++a) {
          lo3[a] = std::min(b[a] * geo->brick[a], geo->shape[a]);
          hi3[a] = std::min(lo3[a] + geo->brick[a], geo->shape[a]);
        }
        lr.WantLevel0Box(lo3, hi3, LevelRebuild::kRecovery);
      }
      if (unrecorded != kNone) lr.WantAll(LevelRebuild::kRecovery);
    }
    if (!lr.empty()) {
      Status s = lr.Run(&rebuilt);
      if (!s.ok()) rebuild_error = s.ToString();
    }
  }
  rep.deep_blocks_compared = options.deep ? rebuilt.compared : 0;
  // What happened to each block, for the problems that asked for it.
  std::map<std::pair<int, Shape3>, const LevelRebuild::Block*> by_block;
  for (const auto& b : rebuilt.blocks) by_block[{b.level, b.zyx}] = &b;
  auto rebuild_action = [&](FsckProblem& p, const std::vector<const LevelRebuild::Block*>& blocks) {
    uint64_t written = 0;
    std::string error = rebuild_error;
    for (const auto* b : blocks) {
      written += b->rewritten ? 1 : 0;
      if (!b->rewritten && !b->error.empty() && error.empty()) error = b->error;
    }
    const std::string below = "level " + std::to_string(p.level - 1);
    std::string text;
    if (!error.empty()) {
      p.repaired = false;
      text = "could not be rebuilt from " + below + ": " + error;
    } else {
      p.repaired = p.action.empty() || p.repaired;
      text = written ? "rebuilt from " + below + " (" + std::to_string(written) +
                           (written == 1 ? " block" : " blocks") + " appended with a new index); " + kDerived
                     : "checked against " + below + ": nothing to rewrite; " + kDerived;
    }
    p.data_lost = false;
    p.action = p.action.empty() ? text : p.action + "; " + text;
  };
  {
    std::map<size_t, std::vector<const LevelRebuild::Block*>> per_problem;
    std::set<size_t> asked;
    for (const auto& [k, level, zyx] : rebuild_blocks) {
      asked.insert(k);
      auto it = by_block.find({level, zyx});
      if (it != by_block.end()) per_problem[k].push_back(it->second);
    }
    for (const auto& [k, level, brick] : rebuild_bricks) {
      asked.insert(k);
      for (const auto& b : rebuilt.blocks) {
        if (b.level == level && b.brick == brick) per_problem[k].push_back(&b);
      }
    }
    for (int level = 1; options.repair && level < num_levels; ++level) {
      if (!level_missing[level]) continue;  // its metadata problem asked for the whole level
      const size_t k = level_meta_problem[level];
      asked.insert(k);
      for (const auto& b : rebuilt.blocks) {
        if (b.level == level) per_problem[k].push_back(&b);
      }
    }
    for (size_t k : asked) rebuild_action(rep.problems[k], per_problem[k]);
  }
  uint64_t recovery_written = 0;
  std::string recovery_error = rebuild_error;
  uint64_t deep_not_compared = 0;
  std::string deep_why;
  for (const auto& b : rebuilt.blocks) {
    if (b.reasons & LevelRebuild::kProblem) continue;  // its problem says what happened
    if (b.reasons & LevelRebuild::kDeep) {
      if (!b.compared) {
        ++deep_not_compared;
        if (deep_why.empty()) deep_why = b.error;
        continue;
      }
      if (!b.unreadable.empty()) continue;  // a "block" problem above names it
      const std::string below = b.level == 1 ? "level 0"
                                             : "level " + std::to_string(b.level - 1) + " (as recomputed from level 0)";
      std::string msg = "differs from the reduction of " + below + " (2x2x2 " + effective->downsample_method + "): " +
                        std::to_string(b.voxels_differ) + " of its " + std::to_string(b.voxels) +
                        " voxels differ, the first at level-" + std::to_string(b.level) + " voxel z,y,x " +
                        ShapeToString(b.first) + " (stored " + b.stored_value +
                        (b.stored ? "" : ": the block is not stored") + ", expected " + b.expected_value + ")";
      FsckProblem& p = Add("level_differs", BrickRel(b.level, b.brick), msg);
      p.level = b.level;
      p.brick = b.brick;
      p.block = b.index;
      p.block_zyx = b.zyx;
      if (options.repair) {
        p.repaired = b.rewritten;
        p.action = b.rewritten ? "rewritten from the reduction of level " + std::to_string(b.level - 1) +
                                     " (appended at offset " + std::to_string(b.offset) + " with a new index); " +
                                     kDerived
                               : "failed: " + (b.error.empty() ? rebuild_error : b.error);
      }
      continue;
    }
    // kRecovery: what a read-write mount's recovery would rebuild.
    recovery_written += b.rewritten ? 1 : 0;
    if (!b.rewritten && b.compared && recovery_error.empty()) recovery_error = b.error;
    if (!b.compared && recovery_error.empty()) recovery_error = b.error;
  }
  if (deep_not_compared) {
    rep.notes.push_back("--deep: " + std::to_string(deep_not_compared) +
                        " level blocks could not be recomputed, as what lies below them cannot be read (" +
                        deep_why + "); see the problems above");
  }

  // 9. Metadata. Recovering a journal or growing the shape rewrites every
  //    document (0/zarr.json, the level arrays, the group) from the metadata
  //    recovered; otherwise each document found wrong is rewritten alone.
  std::optional<VolumeMeta> final_meta;
  if (effective) {
    final_meta = *effective;
    final_meta->geo = *geo;
  }
  // A store recovered (from its journal or, without one, from its shards) is
  // final again: a mount accepts it, and a later session starts afresh.
  const bool recovery_ok = (recovering || (options.repair && unrecorded != kNone)) && recovery_error.empty();
  if (final_meta && !present_add.empty()) {
    ZRanges all = final_meta->present;
    all.insert(all.end(), present_add.begin(), present_add.end());
    final_meta->present = MergeRanges(std::move(all));
  }
  const bool write_all = options.repair && final_meta && !tails_left &&
                         (recovery_ok || shape_problem != kNone || present_problem != kNone) &&
                         !((unclean != kNone || unrecorded != kNone) && !recovery_ok);
  Status meta_status;
  if (options.repair && group_problem != kNone && group_found) {
    // The document another tool wrote is kept for its owner.
    auto name = LostName(ctx, "zarr.json", "");
    Status s = name.ok() ? WriteFileAtomic(ctx.lost_dir + "/" + *name, *group_found) : name.status();
    if (s.ok()) {
      group_found = ".brickfs/lost+found/" + *name;
    } else {
      FsckProblem& p = rep.problems[group_problem];
      p.action = "failed: keeping the document found: " + s.ToString();
      group_problem = kNone;  // left as it is
    }
  }
  const std::string levels_text = std::to_string(num_levels) + (num_levels == 1 ? " level" : " levels");
  // What the repair of the group document did, once it was written (`s`).
  auto group_repaired = [&](FsckProblem& p, const Status& s) {
    p.repaired = s.ok();
    p.action = !s.ok() ? "failed: " + s.ToString()
               : group_whole
                   ? "rebuilt from the arrays' metadata (0/zarr.json: " + levels_text + ")" +
                         (group_found ? "; the document found is kept as " + *group_found : std::string())
                   : "attributes.ome rebuilt from the arrays' metadata (other attributes kept)";
  };
  if (write_all) {
    if (recovery_ok) final_meta->finalized = true;
    meta_status = store->WriteMeta(*final_meta);
    if (meta_status.ok()) rep.finalized = final_meta->finalized;
    for (int level = 1; level < num_levels; ++level) {
      if (level_meta_problem[level] == kNone) continue;
      FsckProblem& p = rep.problems[level_meta_problem[level]];
      const std::string before = p.action;  // a rebuild of a missing level, if any
      p.repaired = meta_status.ok() && (before.empty() || p.repaired);
      p.action = meta_status.ok() ? "rewritten from 0/zarr.json" : "failed: " + meta_status.ToString();
      if (!before.empty()) p.action += "; " + before;
    }
    if (group_problem != kNone) {
      FsckProblem& p = rep.problems[group_problem];
      Status s = meta_status;
      if (s.ok() && !group_whole) {
        // WriteMeta wrote our group document: put the other attributes back.
        auto doc = RepairedGroup(*group_doc, *final_meta, store_path);
        s = doc.ok() ? WriteFileAtomic(store_path + "/zarr.json", *doc) : doc.status();
      }
      group_repaired(p, s);
    }
  } else if (options.repair && meta) {
    for (int level = 1; level < num_levels; ++level) {
      if (level_meta_problem[level] == kNone) continue;
      FsckProblem& p = rep.problems[level_meta_problem[level]];
      Status s = MakeDirs(store_path + "/" + std::to_string(level));
      if (s.ok()) {
        s = WriteFileAtomic(store_path + "/" + std::to_string(level) + "/zarr.json",
                            meta->LevelMeta(level).ArrayJson());
      }
      const std::string before = p.action;
      p.repaired = s.ok() && (before.empty() || p.repaired);
      p.action = s.ok() ? "rewritten from 0/zarr.json" : "failed: " + s.ToString();
      if (!before.empty()) p.action += "; " + before;
    }
    if (group_problem != kNone) {
      FsckProblem& p = rep.problems[group_problem];
      Result<std::string> doc = group_whole ? Result<std::string>(meta->GroupJson(StoreName(store_path)))
                                            : RepairedGroup(*group_doc, *meta, store_path);
      Status s = doc.ok() ? WriteFileAtomic(store_path + "/zarr.json", *doc) : doc.status();
      group_repaired(p, s);
    }
  }
  if (unrecorded != kNone && options.repair) {
    FsckProblem& p = rep.problems[unrecorded];
    p.repaired = write_all && meta_status.ok();
    const std::string levels =
        num_levels > 1 ? "pyramid levels rebuilt from level 0 (" + std::to_string(recovery_written) +
                             " level blocks rewritten), "
                       : std::string();
    p.action = p.repaired ? "recovered from what the shards hold: " + levels +
                                "store marked finalized (the slices whose record was lost are named above)"
               : !recovery_error.empty()
                   ? "failed: pyramid levels could not be rebuilt (" + recovery_error + ")"
                   : "failed: " + (meta_status.ok() ? std::string("see the problems above") : meta_status.ToString());
  }
  for (size_t k : {shape_problem, present_problem}) {
    if (k == kNone || !options.repair) continue;
    FsckProblem& p = rep.problems[k];
    if (write_all && meta_status.ok()) {
      p.repaired = true;
      if (k == shape_problem) {
        p.action = "shape grown to " + std::to_string(geo->shape[0]) + " x " + std::to_string(geo->shape[1]) +
                   " x " + std::to_string(geo->shape[2]) +
                   " so that every stored block stays readable (nothing dropped); slices z " +
                   RangesToString(grown_z) + " were written by a session whose record is lost: check them";
      } else {
        p.action = "listed as present, as the stored slabs show (brickfs stores a slab before an unmount only "
                   "once all its slices arrived); nothing records that they are complete, though: check slices z " +
                   RangesToString(present_add) + " and copy again any that is wrong";
      }
    } else {
      p.action = write_all ? "failed: " + meta_status.ToString()
                           : "not repaired: the journal must be recovered first (see the problems above)";
    }
  }

  // 10. The journal: recovered (metadata above, then emptied), or its torn
  //     tail cut.
  if (options.repair && (unclean != kNone || journal_torn != kNone)) {
    Status s;
    if (unclean != kNone && tails_left) {
      s = Status::IOError("a torn shard append could not be cut back; the journal is kept", EIO);
    } else if (unclean != kNone && recovered) {
      if (!recovery_error.empty()) {
        s = Status::IOError("pyramid levels could not be rebuilt (" + recovery_error +
                                "); the journal is kept, so that a read-write mount rebuilds them",
                            EIO);
      } else {
        s = meta_status;
      }
      if (s.ok()) {
        auto j = Journal::Open(store_path, 0);
        s = j.ok() ? Status::Ok() : j.status();
      }
    } else {
      auto j = Journal::Open(store_path, unclean != kNone ? 0 : js->valid_bytes);
      s = j.ok() ? Status::Ok() : j.status();
    }
    if (unclean != kNone) {
      FsckProblem& p = rep.problems[unclean];
      p.repaired = s.ok();
      p.data_lost = s.ok() && !never_committed.empty();
      std::string levels;
      if (num_levels > 1 && recovered) {
        levels = ", pyramid levels over the " + std::to_string(journal_bricks.size()) +
                 " level-0 bricks it changed rebuilt from level 0 (" + std::to_string(recovery_written) +
                 " level blocks rewritten)";
      }
      p.action = s.ok() ? "recovered like a read-write mount: shards cut to their committed lengths, "
                          "slices_present updated" + levels + ", store marked finalized, journal emptied" +
                              (never_committed.empty()
                                   ? std::string()
                                   : "; slices z " + RangesToString(never_committed) +
                                         " were never committed: copy them again")
                        : "failed: " + s.ToString();
    }
    if (journal_torn != kNone) {
      FsckProblem& p = rep.problems[journal_torn];
      p.repaired = s.ok();
      p.action = s.ok() ? (unclean != kNone ? "journal emptied after recovery" : "cut off") : "failed: " + s.ToString();
    }
  }
}

}  // namespace fsck_internal
}  // namespace brickfs
