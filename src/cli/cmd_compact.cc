// brickfs compact STORE [--dry-run]: the front end of volume/compact.h.
// Exit codes: 0 done, 4 some shards left alone (corrupt or I/O errors),
// 8 could not run, 2 usage.
#include <boost/filesystem.hpp>
#include <iostream>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/bytes.h"
#include "volume/compact.h"

namespace brickfs {
namespace {

constexpr int kExitSomeLeft = 4;
constexpr int kExitCouldNotRun = 8;

const char* kCompactHelp = R"(Usage: brickfs compact STORE [--dry-run]

Rewrites every shard file that carries dead bytes (indexes superseded by later
appends, blocks replaced by rewrites), in every pyramid level (STORE/L/c/),
densely: the live blocks in index order and one fresh index, written to
KX.tmp beside the shard, fsynced and renamed over it; a shard is never
modified in place. Every block's crc32c is checked as it is copied: a shard
with a corrupt block is left as it was and reported (run brickfs fsck
--repair). Needs the store unmounted, and a store that was not unmounted
cleanly recovered first (mount it once, or fsck --repair).

  --dry-run   only report what would be reclaimed

Exit status: 0 done, 4 some shards left alone (see the messages),
8 could not run (no store, in use by a brickfs daemon, journal to recover).

Examples:
  brickfs compact vol.zarr
  brickfs compact --dry-run vol.zarr
)";

std::string AbsolutePath(const std::string& p) {
  std::string s = boost::filesystem::absolute(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

int CmdCompact(const std::vector<std::string>& args) {
  ArgParser parser("compact", kCompactHelp);
  CLI::App& app = parser.app();
  CompactOptions options;
  std::string store;
  app.add_option("STORE", store);
  app.add_flag("-n,--dry-run", options.dry_run);
  if (auto rc = parser.Parse(args)) return *rc;
  if (store.empty()) return ArgParser::Usage("compact needs STORE (see brickfs compact --help)");
  store = AbsolutePath(store);
  auto rep = Compact(store, options);
  if (!rep.ok()) {
    std::cerr << "brickfs compact: cannot compact " << store << ": " << rep.status().message() << "\n";
    return kExitCouldNotRun;
  }
  const char* verb = options.dry_run ? "would compact" : "compacted";
  for (const auto& b : rep->bricks) {
    if (!b.error.empty()) {
      std::cerr << "brickfs compact: " << b.path << ": " << b.error << "\n";
    } else if (b.compacted) {
      std::cout << verb << " " << b.path << ": " << b.bytes_before << " -> " << b.bytes_after << " bytes\n";
    }
  }
  if (rep->levels.size() > 1) {
    for (const auto& lv : rep->levels) {
      std::cout << "level " << lv.level << ": " << lv.files_compacted << " of " << lv.shard_files
                << " shard files, " << HumanBytes(lv.bytes_before) << " -> " << HumanBytes(lv.bytes_after) << "\n";
    }
  }
  const uint64_t saved = rep->bytes_before - rep->bytes_after;
  std::cout << (options.dry_run ? "dry run: " : "") << verb << " " << rep->files_compacted << " of "
            << rep->shard_files << " shard files"
            << (rep->levels.size() > 1 ? " (" + std::to_string(rep->levels.size()) + " levels)" : std::string())
            << ": " << HumanBytes(rep->bytes_before) << " ("
            << rep->bytes_before << " bytes) -> " << HumanBytes(rep->bytes_after) << " (" << rep->bytes_after
            << " bytes), " << HumanBytes(saved) << " of dead bytes "
            << (options.dry_run ? "to reclaim" : "reclaimed") << "\n";
  if (rep->errors()) {
    std::cerr << "brickfs compact: " << rep->errors() << " shard files left alone (see above)\n";
    return kExitSomeLeft;
  }
  return 0;
}

}  // namespace brickfs
