// fsck: the report, Fsck() step by step, and steps 1-5 (the store locked,
// the journal and the geometry to check against, the group document, spool
// files). The other steps are in fsck_shards.cc and fsck_repair.cc; see
// fsck_internal.h.
#include "volume/fsck.h"

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
#include "volume/fsck_internal.h"
#include "volume/level_rebuild.h"

namespace brickfs {

using fsck_internal::MergeRanges;

std::string FsckProblem::Line() const {
  std::string s = path;
  if (block) {
    s += " block " + std::to_string(*block);
    if (block_zyx) s += " (block z,y,x " + ShapeToString(*block_zyx) + ")";
  }
  s += ": " + message;
  if (!action.empty()) s += (repaired ? " -- REPAIRED: " : " -- NOT REPAIRED: ") + action;
  return s;
}

uint64_t FsckReport::repaired() const {
  uint64_t n = 0;
  for (const auto& p : problems) n += p.repaired ? 1 : 0;
  return n;
}

uint64_t FsckReport::blocks_lost() const {
  uint64_t n = 0;
  for (const auto& p : problems) n += (p.block && p.repaired && p.data_lost) ? 1 : 0;
  return n;
}

ZRanges FsckReport::lost_z() const {
  ZRanges all;
  for (const auto& p : problems) all.insert(all.end(), p.lost_z.begin(), p.lost_z.end());
  return MergeRanges(std::move(all));
}

ZRanges FsckReport::check_z() const {
  ZRanges all;
  for (const auto& p : problems) all.insert(all.end(), p.check_z.begin(), p.check_z.end());
  return MergeRanges(std::move(all));
}

int FsckReport::ExitCode() const {
  if (problems.empty()) return kFsckClean;
  return left() == 0 ? kFsckAllRepaired : kFsckProblemsLeft;
}

namespace fsck_internal {

FsckRun::FsckRun(const std::string& store_path_in, const FsckOptions& options_in, std::unique_ptr<Store> store_in)
    : store_path(store_path_in), options(options_in), store(std::move(store_in)), meta(store->meta()) {
  rep.store = store_path;
  rep.repair = options.repair;
  rep.deep = options.deep;
  rep.finalized = meta && meta->finalized;
  ctx.store = store_path;
  ctx.lost_dir = store_path + "/.brickfs/lost+found";
  ctx.repair = options.repair;
}

FsckProblem& FsckRun::Add(const std::string& kind, const std::string& path, const std::string& message) {
  FsckProblem p;
  p.kind = kind;
  p.path = path;
  p.message = message;
  rep.problems.push_back(std::move(p));
  return rep.problems.back();
}

void FsckRun::CheckJournal() {
  // 2. The journal.
  const std::string jpath = Journal::PathFor(store_path);
  {
    auto bytes = ReadFileToString(jpath, uint64_t{1} << 34);
    if (!bytes.ok() && bytes.status().code() != Status::Code::kNotFound) {
      Add("journal", ".brickfs/journal", "cannot be read: " + bytes.status().ToString());
    } else if (bytes.ok() && !bytes->empty()) {
      rep.journal_present = true;
      auto replayed = ReplayJournal(*bytes, ".brickfs/journal");
      if (!replayed.ok()) {
        FsckProblem& p = Add("journal", ".brickfs/journal", StripWhere(replayed.status().message()));
        if (options.repair) {
          p.action = "cannot be repaired by fsck: the journal's records cannot be trusted; move it away "
                     "and run fsck again (slices since the last clean unmount may then be listed wrongly)";
        }
      } else {
        js = std::move(*replayed);
        rep.journal_frames = js->frames;
        rep.journal_torn_bytes = js->torn_bytes;
        if (js->torn_bytes > 0) {
          Add("journal_torn", ".brickfs/journal",
              std::to_string(js->torn_bytes) + " torn bytes after " + std::to_string(js->frames) +
                  " valid records (offset " + std::to_string(js->valid_bytes) +
                  "): a record cut by a crash, ignored by replay");
          journal_torn = rep.problems.size() - 1;
        }
      }
    }
  }

  // A journal of another session (copied from another store) is not this
  // store's record: ignored, moved to lost+found by a repair.
  if (js && meta && meta->session != 0 && js->session != 0 && meta->session != js->session &&
      (meta->finalized || meta->session != js->previous_session)) {
    FsckProblem& p = Add("journal", ".brickfs/journal",
                         "belongs to another session than 0/zarr.json (it was copied from another "
                         "store or replaced); it is ignored");
    if (options.repair) {
      auto moved = MoveToLost(ctx, ".brickfs/journal");
      if (moved.ok()) {
        p.repaired = true;
        p.action = "moved to .brickfs/lost+found/" + *moved;
      } else {
        p.action = "could not move it: " + moved.status().ToString();
      }
    }
    if (journal_torn != kNone) rep.problems.erase(rep.problems.begin() + static_cast<long>(journal_torn));
    journal_torn = kNone;
    js.reset();
  }

  // 3. The geometry to check against: zarr.json, grown by the journal.
  if (meta) geo = meta->geo;
  if (js && js->geometry) {
    const Geometry& jg = *js->geometry;
    if (geo && (jg.block != geo->block || jg.brick != geo->brick || jg.dtype != geo->dtype)) {
      FsckProblem& p = Add("journal", ".brickfs/journal",
                           "its geometry (block " + ShapeToString(jg.block) + ", brick " + ShapeToString(jg.brick) +
                               ", " + std::string(DTypeName(jg.dtype)) + ") differs from 0/zarr.json (block " +
                               ShapeToString(geo->block) + ", brick " + ShapeToString(geo->brick) + ", " +
                               std::string(DTypeName(geo->dtype)) + "); the journal is ignored");
      if (options.repair) p.action = "cannot be repaired by fsck: the journal belongs to another array";
      if (journal_torn != kNone) rep.problems.erase(rep.problems.begin() + static_cast<long>(journal_torn));
      journal_torn = kNone;
      js.reset();
    } else if (!geo) {
      geo = jg;
    } else {
      geo->shape[0] = std::max(geo->shape[0], jg.shape[0]);
    }
  }
  if (js && js->frames > 0) {
    ctx.journal = &*js;
    if (geo) recovered = RecoveredMeta(meta, *geo, *js, &never_committed);
    std::string msg = "the store was not unmounted cleanly: the journal holds " + std::to_string(js->frames) +
                      " records (" + std::to_string(js->committed_slices.size()) +
                      " slices committed since the last clean unmount";
    if (!never_committed.empty()) msg += "; slices z " + RangesToString(never_committed) + " received but never committed";
    msg += ")";
    FsckProblem& p = Add("unclean_shutdown", ".brickfs/journal", msg);
    p.lost_z = never_committed;
    unclean = rep.problems.size() - 1;
    if (recovered) geo = recovered->geo;
  }
  effective = recovered ? &*recovered : meta ? &*meta : nullptr;
  num_levels = effective ? std::clamp(effective->num_levels, 1, kMaxLevels) : 1;
  // A store that is not finalized may hold blocks past the shape it recorded
  // (a session whose journal was lost): they are evidence, not strays.
  shape_may_grow = !(meta && (meta->finalized || meta->fixed_shape));
}

void FsckRun::CheckGroup() {
  // 4. The group document: ours, with the OME multiscales of every level.
  if (meta) {
    auto text = ReadFileToString(store_path + "/zarr.json", 1 << 20);
    if (!text.ok() && text.status().code() != Status::Code::kNotFound) {
      Add("io", "zarr.json", "cannot be read: " + text.status().ToString());
    } else if (!text.ok()) {
      Add("metadata", "zarr.json",
          "is missing: the store's group document, through which Zarr and OME-Zarr readers find the arrays");
      group_problem = rep.problems.size() - 1;
      group_whole = true;
    } else if (Status z = CheckGroupJson(*text, "zarr.json"); !z.ok()) {
      Add("metadata", "zarr.json",
          BrickfsGroupProblem(*text) + ": not this store's group document (another tool may have rewritten it)");
      group_problem = rep.problems.size() - 1;
      group_whole = true;
      group_found = *text;
    } else if (auto doc = ParseJson(*text, "zarr.json"); doc.ok()) {
      const std::string why = OmeProblem(*doc, num_levels);
      if (!why.empty()) {
        Add("metadata", "zarr.json", why + " (OME-Zarr viewers will not find the volume)");
        group_problem = rep.problems.size() - 1;
        group_doc = std::move(*doc);
      }
    }
  }
}

Status FsckRun::CheckSpool() {
  // 5. Spool files: slabs a daemon parked and never committed.
  {
    const std::string spool = store_path + "/.brickfs/spool";
    struct stat sb;
    if (::lstat(spool.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) {
      BRICKFS_ASSIGN_OR_RETURN(auto entries, ListDir(spool));
      for (const auto& e : entries) {
        const std::string rel = ".brickfs/spool/" + e.name;
        uint64_t slab;
        std::string what = "a file";
        if (e.name.rfind("slab-", 0) == 0 && ParseKey(e.name.substr(5), &slab)) {
          what = "slab " + e.name.substr(5) +
                 (geo ? " (slices z " + RangesToString(BlockZAll(*geo, slab)) + ")" : std::string());
        }
        FsckProblem& p = Add("spool", rel,
                             what + " parked in the spool by a brickfs daemon that did not unmount cleanly: its "
                                    "slices were never committed to the shards, and brickfs never reads the "
                                    "file back (brickfs info lists the slices to copy again)");
        if (!options.repair) continue;
        if (e.is_file) {
          if (::unlink((store_path + "/" + rel).c_str()) == 0) {
            p.repaired = true;
            p.action = "removed (it held no committed data)";
          } else {
            p.action = "failed: unlink: " + std::string(std::strerror(errno));
          }
        } else {
          auto moved = MoveToLost(ctx, rel);
          p.repaired = moved.ok();
          p.action = moved.ok() ? "moved to .brickfs/lost+found/" + *moved + " (it held no committed data)"
                                : "failed: " + moved.status().ToString();
        }
      }
      if (options.repair) ::rmdir(spool.c_str());  // only when empty
    }
  }
  return Status::Ok();
}

std::string StoreName(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".zarr") == 0) base.resize(base.size() - 5);
  return base;
}

// Why the group's attributes.ome does not describe the store's `num_levels`
// arrays ("" when it does).
std::string OmeProblem(const Json& group, int num_levels) {
  const Json* attrs = JsonField(group, "attributes");
  const Json* ome = attrs ? JsonField(*attrs, "ome") : nullptr;
  const Json* ms = ome ? JsonField(*ome, "multiscales") : nullptr;
  if (!ms || !ms->is_array() || ms->empty()) return "attributes.ome.multiscales is missing";
  const Json& m0 = (*ms)[0];
  const Json* axes = JsonField(m0, "axes");
  if (!axes || !axes->is_array() || axes->size() != 3) {
    return "attributes.ome.multiscales[0].axes is not 3 axes (z, y, x)";
  }
  const Json* ds = JsonField(m0, "datasets");
  if (!ds || !ds->is_array() || ds->empty()) return "attributes.ome.multiscales[0].datasets is missing";
  std::string paths;
  bool right = ds->size() == static_cast<size_t>(num_levels);
  for (size_t i = 0; i < ds->size(); ++i) {
    const Json* p = JsonField((*ds)[i], "path");
    const std::string name = p && p->is_string() ? p->get<std::string>() : "?";
    paths += (i ? ", " : "") + name;
    right &= name == std::to_string(i);
  }
  if (!right) {
    return "attributes.ome.multiscales[0].datasets lists " + paths + ", but 0/zarr.json has " +
           std::to_string(num_levels) + (num_levels == 1 ? " level (0)" : " levels (0-" +
                                                                              std::to_string(num_levels - 1) + ")");
  }
  return "";
}

// The group document with our attributes.ome, other attributes kept.
// REQUIRES: `group` is an object (it passed CheckGroupJson).
Result<std::string> RepairedGroup(const Json& group, const VolumeMeta& meta, const std::string& store) {
  BRICKFS_ASSIGN_OR_RETURN(Json ours, ParseJson(meta.GroupJson(StoreName(store)), "the group document"));
  Json doc = group;
  const Json* old_attrs = JsonField(group, "attributes");
  Json attrs = old_attrs && old_attrs->is_object() ? *old_attrs : Json::object();
  attrs["ome"] = ours.at("attributes").at("ome");
  doc["attributes"] = std::move(attrs);
  return DumpJson(doc, 2) + "\n";
}

// Why STORE/L/zarr.json does not describe level L of `meta` ("" when it does).
std::string LevelMetaProblem(const VolumeMeta& got, const VolumeMeta& meta, int level) {
  const Shape3 want = LevelShape(meta.geo.shape, level);
  if (got.geo.shape != want) {
    return "shape " + ShapeToString(got.geo.shape) + " is not level " + std::to_string(level) + " of 0/zarr.json's " +
           ShapeToString(meta.geo.shape) + " (want " + ShapeToString(want) + ")";
  }
  if (got.geo.block != meta.geo.block) {
    return "block (inner chunk) shape " + ShapeToString(got.geo.block) + " differs from 0/zarr.json's " +
           ShapeToString(meta.geo.block);
  }
  if (got.geo.brick != meta.geo.brick) {
    return "brick (shard) shape " + ShapeToString(got.geo.brick) + " differs from 0/zarr.json's " +
           ShapeToString(meta.geo.brick);
  }
  if (got.geo.dtype != meta.geo.dtype) {
    return "data_type " + std::string(DTypeName(got.geo.dtype)) + " differs from 0/zarr.json's " +
           std::string(DTypeName(meta.geo.dtype));
  }
  if (got.zstd_level != meta.zstd_level) {
    return "zstd level " + std::to_string(got.zstd_level) + " differs from 0/zarr.json's " +
           std::to_string(meta.zstd_level);
  }
  if (got.level != level) {
    return "attributes.brickfs.level is " + std::to_string(got.level) + ", not " + std::to_string(level);
  }
  return "";
}

}  // namespace fsck_internal

Result<FsckReport> Fsck(const std::string& store_path, const FsckOptions& options) {
  // 1. The store, locked: no daemon may write it meanwhile. A group document
  //    another tool rewrote does not stop the check: it is rebuilt below.
  BRICKFS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                           Store::OpenForMaintenance(store_path, !options.repair, /*allow_bad_group=*/true));
  fsck_internal::FsckRun run(store_path, options, std::move(store));
  run.CheckJournal();
  run.CheckGroup();
  BRICKFS_RETURN_IF_ERROR(run.CheckSpool());
  BRICKFS_RETURN_IF_ERROR(run.CheckShards());
  if (!run.geo) return std::move(run.rep);  // an empty store
  run.Repair();
  return std::move(run.rep);
}

}  // namespace brickfs
