// fsck steps 6 and 7: the shard files of every level (strays, each shard
// checked in parallel, a stale shape grown over stored blocks, the level
// documents) and slices_present against the stored blocks. See
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

Status FsckRun::CheckShards() {
  // 6. Files under L/c of every level: shards inside the brick grid,
  //    everything else stray.
  auto stray = [&](int level, const std::string& rel, const std::string& why, bool leftover,
                   uint64_t live_blocks, const ZRanges& z) {
    std::string message = why;
    if (live_blocks) message += " (it holds " + std::to_string(live_blocks) + " stored blocks)";
    FsckProblem& p = Add("stray", rel, message);
    p.level = level;
    const bool loses = live_blocks > 0 && level == 0;
    if (loses) p.lost_z = z;
    if (!options.repair) return;
    if (leftover) {
      if (::unlink((store_path + "/" + rel).c_str()) == 0) {
        p.repaired = true;
        p.action = "deleted";
      } else {
        p.action = "failed: unlink: " + std::string(std::strerror(errno));
      }
      return;
    }
    auto moved = MoveToLost(ctx, rel);
    p.repaired = moved.ok();
    if (!moved.ok()) {
      p.action = "failed: " + moved.status().ToString();
      p.lost_z.clear();
      return;
    }
    p.action = "moved to .brickfs/lost+found/" + *moved;
    if (loses) {
      p.data_lost = true;
      const std::string zs = RangesToString(z);
      p.action += ": its " + std::to_string(live_blocks) + " stored blocks (slices z " + zs +
                  ") are LOST to the array, though their bytes are kept there; no reader saw them, as they "
                  "lay outside the array's shape, but if slices z " + zs + " belong to the volume, copy them again";
    } else if (level > 0 && live_blocks) {
      p.action += std::string(" (") + kDerived + ")";
    }
  };
  // The shards of `level` (grid: its brick grid; z_open: any z index is a
  // brick, for a level 0 whose recorded shape may be stale).
  auto list_shards = [&](int level, const Shape3& grid, bool z_open, bool have_geo,
                         std::vector<Shape3>* bricks) -> Status {
    const std::string lrel = std::to_string(level) + "/c";
    const std::string cdir = store_path + "/" + lrel;
    struct stat sb;
    if (::stat(cdir.c_str(), &sb) != 0) return Status::Ok();
    const char* axis[3] = {"z", "y", "x"};
    // Live blocks under a stray path whose keys are all brick indexes
    // (what moving it takes away), and the z of their bricks.
    auto peek = [&](const std::string& rel, int depth, uint64_t kz, uint64_t* live, ZRanges* z) {
      std::vector<std::pair<std::string, int>> todo{{rel, depth}};
      while (!todo.empty()) {
        auto [r, d] = todo.back();
        todo.pop_back();
        if (d == 3) {
          const uint64_t n = LiveBlocksOf(ctx, store_path + "/" + r);
          *live += n;
          if (n && geo) *z = MergeRanges([&] {
            ZRanges all = BrickZAll(*geo, kz);
            all.insert(all.end(), z->begin(), z->end());
            return all;
          }());
          continue;
        }
        auto list = ListDir(store_path + "/" + r);
        if (!list.ok()) continue;
        for (const auto& e : *list) {
          uint64_t v;
          if (ParseKey(e.name, &v)) todo.push_back({r + "/" + e.name, d + 1});
        }
      }
    };
    auto key_problem = [&](const DirEntry& e, int a, uint64_t* v) -> std::string {
      if (!ParseKey(e.name, v)) return "not a brick index (" + std::string(axis[a]) + ")";
      if (!have_geo) return "0/zarr.json is missing: no shard can belong to the array";
      if (*v >= grid[a] && !(a == 0 && z_open)) {
        return std::string(axis[a]) + " index " + e.name + " is outside the brick grid " + ShapeToString(grid);
      }
      return "";
    };
    auto outside = [&](const std::string& why) { return why.find("outside the brick grid") != std::string::npos; };
    BRICKFS_ASSIGN_OR_RETURN(auto l1, ListDir(cdir));
    for (const auto& e1 : l1) {
      uint64_t kz, ky, kx;
      std::string r1 = lrel + "/" + e1.name;
      std::string why = key_problem(e1, 0, &kz);
      if (why.empty() && !e1.is_dir) why = "not a directory";
      if (!why.empty()) {
        uint64_t live = 0;
        ZRanges z;
        if (outside(why) && e1.is_dir) peek(r1, 1, kz, &live, &z);
        stray(level, r1, why, false, live, z);
        continue;
      }
      BRICKFS_ASSIGN_OR_RETURN(auto l2, ListDir(store_path + "/" + r1));
      for (const auto& e2 : l2) {
        std::string r2 = r1 + "/" + e2.name;
        why = key_problem(e2, 1, &ky);
        if (why.empty() && !e2.is_dir) why = "not a directory";
        if (!why.empty()) {
          uint64_t live = 0;
          ZRanges z;
          if (outside(why) && e2.is_dir) peek(r2, 2, kz, &live, &z);
          stray(level, r2, why, false, live, z);
          continue;
        }
        BRICKFS_ASSIGN_OR_RETURN(auto l3, ListDir(store_path + "/" + r2));
        for (const auto& e3 : l3) {
          std::string r3 = r2 + "/" + e3.name;
          if (e3.is_file && IsReplacementLeftover(e3.name)) {
            stray(level, r3,
                  "leftover of an interrupted brick replacement or brickfs compact (the shard itself is intact)",
                  true, 0, {});
            continue;
          }
          why = key_problem(e3, 2, &kx);
          if (why.empty() && !e3.is_file) why = "not a regular file";
          if (!why.empty()) {
            uint64_t live = 0;
            ZRanges z;
            if (outside(why) && e3.is_file) peek(r3, 3, kz, &live, &z);
            stray(level, r3, why, false, live, z);
            continue;
          }
          bricks->push_back({kz, ky, kx});
        }
      }
    }
    // Bricks the journal names but whose files are gone.
    if (ctx.journal) {
      std::set<Shape3> have(bricks->begin(), bricks->end());
      std::set<BrickId> ids;
      for (const auto& [id, _] : js->base) ids.insert(id);
      for (const auto& [id, _] : js->committed) ids.insert(id);
      for (const BrickId& id : ids) {
        if (id.level != level || have.count(id.brick)) continue;
        if ((id.brick[0] < grid[0] || z_open) && id.brick[1] < grid[1] && id.brick[2] < grid[2]) {
          bricks->push_back(id.brick);
          have.insert(id.brick);
        }
      }
    }
    return Status::Ok();
  };
  // Checks the bricks of `level` in parallel; results in order.
  auto check_bricks = [&](int level, const std::vector<Shape3>& bricks) {
    std::vector<BrickResult> results(bricks.size());
    size_t threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    threads = std::min<size_t>(threads, std::max<size_t>(1, bricks.size()));
    ThreadPool pool(threads);
    pool.ParallelFor(bricks.size(), [&](size_t i) { results[i] = CheckBrick(ctx, level, bricks[i]); });
    return results;
  };

  // 6a. Level 0.
  if (geo) {
    ctx.n = geo->blocks_in_brick();
    ctx.index_size = ShardIndex::EncodedSize(ctx.n);
    ctx.max_nbytes = BlockCodec::MaxEncodedSize(geo->block_bytes());
  }
  Geometry g0 = geo.value_or(Geometry{});
  std::vector<Shape3> bricks0;
  BRICKFS_RETURN_IF_ERROR(list_shards(0, g0.brick_grid(), geo && shape_may_grow, geo.has_value(), &bricks0));
  if (!geo) {
    rep.notes.push_back("empty store: no slice was ever stored (no 0/zarr.json)");
    return Status::Ok();  // an empty store: Fsck() ends here
  }
  rep.num_levels = num_levels;
  const uint64_t recorded_z = geo->shape[0];  // the shape recorded (or recovered)
  ctx.geos.assign(num_levels, *geo);
  if (shape_may_grow) {
    // Checked as far as the bricks found reach; the shape is settled below.
    for (const Shape3& b : bricks0) {
      ctx.geos[0].shape[0] = std::max(ctx.geos[0].shape[0], (b[0] + 1) * geo->brick[0]);
    }
  }
  rep.levels.assign(num_levels, FsckLevelCounts{});
  auto merge = [&](int level, const std::vector<Shape3>& bricks, std::vector<BrickResult>& results,
                   std::map<uint64_t, std::pair<uint64_t, std::pair<Shape3, uint64_t>>>* rows) {
    FsckLevelCounts& c = rep.levels[level];
    c.level = level;
    for (size_t i = 0; i < bricks.size(); ++i) {
      BrickResult& r = results[i];
      c.shard_files += r.file ? 1 : 0;
      c.shard_bytes += r.bytes;
      c.blocks_checked += r.blocks;
      tails_left |= r.unrepaired_tail;
      const size_t base = rep.problems.size();
      for (auto& p : r.problems) rep.problems.push_back(std::move(p));
      for (const auto& [k, zyx] : r.rebuild_blocks) rebuild_blocks.emplace_back(base + k, level, zyx);
      for (size_t k : r.rebuild_brick) rebuild_bricks.emplace_back(base + k, level, bricks[i]);
      if (!rows) continue;
      for (const auto& [bz, row] : r.rows) {
        auto& agg = (*rows)[bz];
        if (agg.first == 0) agg.second = {bricks[i], row.second};
        agg.first += row.first;
      }
    }
  };
  std::map<uint64_t, std::pair<uint64_t, std::pair<Shape3, uint64_t>>> rows;  // block z -> count, example
  {
    std::vector<BrickResult> results = check_bricks(0, bricks0);
    merge(0, bricks0, results, &rows);
  }

  // 6b. The shape of a store that is not finalized, grown over the blocks
  //     stored past it: the shape recorded when its daemon started, never
  //     updated because the journal that would have grown it is gone.
  if (shape_may_grow && !rows.empty()) {
    const uint64_t end = (rows.rbegin()->first + 1) * geo->block[0];
    if (end > recorded_z) {
      uint64_t blocks = 0;
      for (const auto& [bz, agg] : rows) blocks += (bz + 1) * geo->block[0] > recorded_z ? agg.first : 0;
      grown_z = {{recorded_z, end - 1}};
      Geometry grown = *geo;
      grown.shape[0] = end;
      FsckProblem& p = Add("shape", "0/zarr.json",
                           "the store is not finalized (its daemon died) and " + std::to_string(blocks) +
                               " stored blocks lie past slice " + std::to_string(recorded_z) +
                               " of the recorded shape " + ShapeToString(geo->shape) + " (block rows up to z " +
                               std::to_string(end - 1) + "): the shape is stale, no journal recorded those "
                               "slices");
      p.check_z = grown_z;
      shape_problem = rep.problems.size() - 1;
      geo = grown;
    }
  }
  rep.geometry = *geo;
  for (int level = 0; level < num_levels; ++level) {
    ctx.geos[level] = *geo;
    ctx.geos[level].shape = LevelShape(geo->shape, level);
  }

  // 6c. Levels: strays at the top, their metadata, their shards.
  {
    auto root = ListDir(store_path);
    if (!root.ok()) return root.status();
    for (const auto& e : *root) {
      uint64_t l;
      if (!ParseKey(e.name, &l) || l < static_cast<uint64_t>(num_levels)) continue;
      stray(static_cast<int>(std::min<uint64_t>(l, kMaxLevels)), e.name,
            "a pyramid level that 0/zarr.json does not list (num_levels " + std::to_string(num_levels) + ")" +
                (meta && meta->finalized ? std::string()
                                         : ": built by a session that did not finish (a read-write mount "
                                           "builds the levels again when it unmounts)"),
            false, 0, {});
      if (rep.problems.back().repaired) rep.problems.back().action += std::string(" (") + kDerived + ")";
    }
  }
  level_meta_problem.assign(num_levels, kNone);
  level_missing.assign(num_levels, false);
  if (meta) {
    for (int level = 1; level < num_levels; ++level) {
      const std::string rel = std::to_string(level) + "/zarr.json";
      auto text = ReadFileToString(store_path + "/" + rel, 1 << 20);
      std::string why;
      if (!text.ok() && text.status().code() == Status::Code::kNotFound) {
        struct stat sb;
        level_missing[level] = ::stat((store_path + "/" + std::to_string(level)).c_str(), &sb) != 0;
        why = "is missing (0/zarr.json lists " + std::to_string(num_levels) + " levels)" +
              (level_missing[level] ? "; so is the level's whole directory " + std::to_string(level) + "/"
                                    : std::string());
      } else if (!text.ok()) {
        why = "cannot be read: " + text.status().ToString();
      } else {
        auto got = VolumeMeta::FromArrayJson(*text, rel);
        why = got.ok() ? LevelMetaProblem(*got, *meta, level) : StripWhere(got.status().message());
      }
      if (why.empty()) continue;
      FsckProblem& p = Add("metadata", rel, why);
      p.level = level;
      level_meta_problem[level] = rep.problems.size() - 1;
    }
  }
  for (int level = 1; level < num_levels; ++level) {
    std::vector<Shape3> bricks;
    BRICKFS_RETURN_IF_ERROR(list_shards(level, ctx.geos[level].brick_grid(), false, true, &bricks));
    std::vector<BrickResult> results = check_bricks(level, bricks);
    merge(level, bricks, results, nullptr);
  }
  for (const FsckLevelCounts& c : rep.levels) {
    rep.shard_files += c.shard_files;
    rep.shard_bytes += c.shard_bytes;
    rep.blocks_checked += c.blocks_checked;
  }

  // 7. slices_present against the stored blocks. A finalized store, or the
  //    store as its journal recovers it, lists at least one slice of every
  //    slab with stored blocks (block rows the shape grew over excepted: they
  //    are the shape problem's). A store whose daemon died without a journal
  //    to replay lists only what was committed when its session began: its
  //    slabs stored since then are evidence (before an unmount a slab is
  //    stored only once all its slices arrived) and are listed again.
  if (effective) {
    std::vector<bool> present(geo->shape[0], false);
    for (const auto& [a, b] : effective->present) {
      for (uint64_t z = a; z <= b && z < present.size(); ++z) present[z] = true;
    }
    const bool unrecorded_session = !effective->finalized && !recovered;
    uint64_t unrecorded_blocks = 0;
    std::vector<bool> add_bits(unrecorded_session ? geo->shape[0] : 0, false);
    for (const auto& [bz, agg] : rows) {
      const ZRanges z = BlockZ(*geo, bz);
      if (z.empty()) continue;
      bool any = false;
      for (uint64_t zz = z[0].first; zz <= z[0].second; ++zz) any |= present[zz];
      if (any) continue;
      if (unrecorded_session) {
        unrecorded_blocks += agg.first;
        for (uint64_t zz = z[0].first; zz <= z[0].second; ++zz) add_bits[zz] = true;
        continue;
      }
      if (!grown_z.empty() && z[0].second >= grown_z[0].first) continue;
      FsckProblem& p = Add("slices_present", "0/zarr.json",
                           "slab " + std::to_string(bz) + " (z " + RangesToString(z) + ") has " +
                               std::to_string(agg.first) + " stored blocks (e.g. " + BrickRel(0, agg.second.first) +
                               " block " + std::to_string(agg.second.second) +
                               ") but slices_present lists none of its slices");
      if (options.repair) {
        p.action = "not repaired: fsck cannot tell which slices were copied; copy slices z " + RangesToString(z) +
                   " again";
      }
    }
    present_add = RangesFromBitmap(add_bits);
    if (!present_add.empty()) {
      FsckProblem& p = Add("slices_present", "0/zarr.json",
                           "slices z " + RangesToString(present_add) + " have " +
                               std::to_string(unrecorded_blocks) +
                               " stored blocks but slices_present lists none of their slabs' slices: the "
                               "session that stored them died and no journal recorded them");
      p.check_z = present_add;
      present_problem = rep.problems.size() - 1;
    }
  }
  // Not finalized and no journal to replay: the daemon died and its record of
  // what it committed is gone (deleted, or written with -o nojournal). What
  // the shards hold is the evidence: the shape and slice list are settled
  // from them above, and the levels are rebuilt from level 0 (nothing says
  // which of their rows were still in memory).
  if (meta && !meta->finalized && !recovered) {
    Add("unclean_shutdown", "0/zarr.json",
        "the store is not finalized and has no journal to replay: its daemon died, and its record of "
        "what it committed is gone (the journal deleted, or the store written with -o nojournal)");
    unrecorded = rep.problems.size() - 1;
  }
  return Status::Ok();
}

}  // namespace fsck_internal
}  // namespace brickfs
