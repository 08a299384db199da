// brickfs fsck STORE [--repair] [--deep] [--json]: the front end of volume/fsck.h.
// Exit codes: 0 clean, 1 problems found and all repaired, 4 problems left,
// 8 could not run, 2 usage.
#include <boost/filesystem.hpp>
#include <iostream>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/bytes.h"
#include "format/json.h"
#include "volume/fsck.h"

namespace brickfs {
namespace {

const char* kFsckHelp = R"(Usage: brickfs fsck STORE [--repair] [--deep] [--json]

Checks a store that is not mounted read-write, every pyramid level of it:
the group zarr.json (a brickfs group whose OME-Zarr multiscales list every
level), 0/zarr.json and each level's L/zarr.json (shape ceil(side / 2^L) of
level 0's, the same block, brick, dtype and codecs), each level's shard files
(stray files under STORE/L/c/, every index, every stored block's crc32c, zstd
frame and decoded size), pyramid levels that the metadata does not list,
spool files left by a daemon that died, and the journal of a daemon that did
not unmount cleanly (torn appends, torn records). Each problem is one line
naming the file (L/c/KZ/KY/KX for a shard of level L), the block (its index
in the shard and its z,y,x block coordinates) and the numbers found.
Without --repair nothing is modified (a shared lock is taken: a read-only
mount may stay mounted).

  --repair   make the store consistent again (needs it unmounted):
             torn shard tails are cut back to the last committed length or
             the last valid index; a corrupt level-0 block is dropped from its
             shard's index (its data is LOST and reads as 0: copy its slices
             again); a level-0 shard with no valid index and stray files are
             moved to STORE/.brickfs/lost+found/ (as are the bytes cut off
             shards); a corrupt block or shard of a pyramid level is rebuilt
             from the level below (fresh blocks and a new index appended:
             levels are derived from level 0, so nothing is lost); wrong level
             metadata is rewritten from 0/zarr.json; a group zarr.json that is
             missing or was rewritten by another tool is rebuilt from the
             arrays' metadata (the one found is kept in lost+found); spool
             files are removed; an unclean shutdown is recovered as a
             read-write mount would (levels over the changed bricks rebuilt).
             A store that is not finalized whose blocks reach past its
             recorded shape (a journal lost) gets its shape grown to keep them;
             those slices are reported to be checked. Every data loss is said
             (LOST) with the slices to copy again.
  --deep     also recompute every pyramid level from level 0 (2x2x2, with the
             store's downsample method) and report every level block that
             differs; with --repair, rewrite those blocks. Reads every block.
  --json     print the report as JSON

Exit status:
  0  no problem found
  1  problems found and all repaired (data may have been lost: see the report)
  4  problems left (run with --repair, or see the lines marked NOT REPAIRED)
  8  fsck could not run: no store, unreadable 0/zarr.json, or the store is in
     use by a brickfs daemon

Examples:
  brickfs fsck vol.zarr
  brickfs fsck --repair vol.zarr
  brickfs fsck --deep --repair vol.zarr
  brickfs fsck --json vol.zarr > report.json
)";

std::string AbsolutePath(const std::string& p) {
  std::string s = boost::filesystem::absolute(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Json ReportJson(const FsckReport& rep, int code) {
  Json doc = Json::object();
  doc["store"] = rep.store;
  doc["repair"] = rep.repair;
  doc["deep"] = rep.deep;
  if (rep.geometry) {
    doc["shape"] = rep.geometry->shape;
    doc["dtype"] = std::string(DTypeName(rep.geometry->dtype));
    doc["block"] = rep.geometry->block;
    doc["brick"] = rep.geometry->brick;
  }
  doc["finalized"] = rep.finalized;
  doc["shard_files"] = rep.shard_files;
  doc["shard_bytes"] = rep.shard_bytes;
  doc["blocks_checked"] = rep.blocks_checked;
  doc["num_levels"] = rep.num_levels;
  Json levels = Json::array();
  for (const auto& c : rep.levels) {
    levels.push_back(Json{{"level", c.level},
                          {"shard_files", c.shard_files},
                          {"shard_bytes", c.shard_bytes},
                          {"blocks_checked", c.blocks_checked}});
  }
  doc["levels"] = std::move(levels);
  if (rep.deep) doc["deep_blocks_compared"] = rep.deep_blocks_compared;
  doc["journal"] = Json{{"present", rep.journal_present},
                        {"records", rep.journal_frames},
                        {"torn_bytes", rep.journal_torn_bytes}};
  Json problems = Json::array();
  for (const auto& p : rep.problems) {
    Json j = Json::object();
    j["kind"] = p.kind;
    j["level"] = p.level;
    j["path"] = p.path;
    j["brick"] = p.brick ? Json(*p.brick) : Json();
    j["block"] = p.block ? Json(*p.block) : Json();
    j["block_zyx"] = p.block_zyx ? Json(*p.block_zyx) : Json();
    j["message"] = p.message;
    j["repaired"] = p.repaired;
    j["data_lost"] = p.data_lost;
    j["action"] = p.action;
    j["lost_z"] = p.lost_z;
    j["check_z"] = p.check_z;
    j["line"] = p.Line();
    problems.push_back(std::move(j));
  }
  doc["problems"] = std::move(problems);
  doc["repaired"] = rep.repaired();
  doc["left"] = rep.left();
  doc["blocks_lost"] = rep.blocks_lost();
  doc["lost_z"] = rep.lost_z();
  doc["check_z"] = rep.check_z();
  doc["notes"] = rep.notes;
  doc["exit_code"] = code;
  return doc;
}

void PrintText(const FsckReport& rep, int code) {
  std::cout << "brickfs fsck" << (rep.repair ? " --repair" : "") << (rep.deep ? " --deep" : "") << " " << rep.store
            << "\n";
  if (rep.geometry) {
    const Geometry& g = *rep.geometry;
    std::cout << "array:   " << g.shape[0] << " x " << g.shape[1] << " x " << g.shape[2] << " "
              << DTypeName(g.dtype) << ", block " << ShapeToString(g.block) << ", brick "
              << ShapeToString(g.brick) << (rep.finalized ? ", finalized" : ", not finalized") << "\n";
  }
  std::cout << "journal: "
            << (rep.journal_present ? std::to_string(rep.journal_frames) + " records, " +
                                          std::to_string(rep.journal_torn_bytes) + " torn bytes"
                                    : std::string("empty"))
            << "\n";
  std::cout << "checked: " << rep.shard_files << " shard files (" << HumanBytes(rep.shard_bytes) << "), "
            << rep.blocks_checked << " blocks";
  if (rep.levels.size() > 1) {
    std::cout << ", in " << rep.levels.size() << " levels (";
    for (const auto& c : rep.levels) {
      std::cout << (c.level ? "; " : "") << "level " << c.level << ": " << c.shard_files
                << (c.shard_files == 1 ? " file, " : " files, ") << c.blocks_checked
                << (c.blocks_checked == 1 ? " block" : " blocks");
    }
    std::cout << ")";
  }
  std::cout << "\n";
  if (rep.deep) {
    std::cout << "deep:    " << rep.deep_blocks_compared
              << " level blocks recomputed from level 0 and compared\n";
  }
  for (const auto& n : rep.notes) std::cout << "note: " << n << "\n";
  for (const auto& p : rep.problems) {
    std::cout << (p.repaired ? (p.data_lost ? "LOST     " : "FIXED    ") : "PROBLEM  ") << p.Line() << "\n";
  }
  std::cout << "result:  ";
  if (rep.problems.empty()) {
    std::cout << "clean\n";
  } else {
    std::cout << rep.problems.size() << (rep.problems.size() == 1 ? " problem" : " problems") << ", "
              << rep.repaired() << " repaired, " << rep.left() << " left";
    if (rep.blocks_lost()) {
      std::cout << "; " << rep.blocks_lost() << (rep.blocks_lost() == 1 ? " block" : " blocks")
                << " LOST (reading as 0 now)";
    }
    std::cout << "\n";
    const ZRanges lost = rep.lost_z();
    if (!lost.empty()) {
      std::cout << (rep.repair ? "data lost: copy slices z " : "data at risk: slices z ") << RangesToString(lost)
                << (rep.repair ? " again to restore it (a new mount of this store)\n"
                               : " (copy them again after fsck --repair)\n");
    }
    const ZRanges check = rep.check_z();
    if (!check.empty()) {
      std::cout << "to check: slices z " << RangesToString(check)
                << (rep.repair ? " are kept as stored but not known to be complete: check them, and copy "
                                 "again what brickfs info lists as missing\n"
                               : " are stored but not known to be complete (see above)\n");
    }
    if (!rep.repair && rep.left()) std::cout << "run `brickfs fsck --repair " << rep.store << "` to repair\n";
  }
  std::cout << "exit:    " << code << "\n";
}

}  // namespace

int CmdFsck(const std::vector<std::string>& args) {
  ArgParser parser("fsck", kFsckHelp);
  CLI::App& app = parser.app();
  FsckOptions options;
  bool json = false;
  std::string store;
  app.add_option("STORE", store);
  app.add_flag("-r,--repair", options.repair);
  app.add_flag("--deep", options.deep);
  app.add_flag("--json", json);
  if (auto rc = parser.Parse(args)) return *rc;
  if (store.empty()) return ArgParser::Usage("fsck needs STORE (see brickfs fsck --help)");
  store = AbsolutePath(store);
  auto report = Fsck(store, options);
  if (!report.ok()) {
    const Status& s = report.status();
    if (json) {
      Json doc = Json::object();
      doc["store"] = store;
      doc["error"] = s.ToString();
      doc["exit_code"] = kFsckCouldNotRun;
      std::cout << DumpJson(doc, 2) << "\n";
    }
    std::cerr << "brickfs fsck: cannot check " << store << ": " << s.message() << "\n";
    return kFsckCouldNotRun;
  }
  const int code = report->ExitCode();
  if (json) {
    std::cout << DumpJson(ReportJson(*report, code), 2) << "\n";
  } else {
    PrintText(*report, code);
  }
  return code;
}

}  // namespace brickfs
