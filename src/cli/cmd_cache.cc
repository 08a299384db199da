// brickfs cache info | clear [URL]: the front end of the persistent cache of
// remote stores (remote/disk_cache.h).
// Exit codes: 0 done, 1 failed, 2 usage.
#include <ctime>
#include <iostream>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/bytes.h"
#include "remote/disk_cache.h"
#include "remote/remote_options.h"

namespace brickfs {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

const char* kCacheHelp = R"(Usage: brickfs cache info [--cache-dir DIR]
       brickfs cache clear [URL] [--cache-dir DIR]

The cache of remote stores (brickfs mount http(s)://... MOUNT) holds the
shard indexes, compressed blocks and metadata that reads fetched, so that
reading them again needs no download. It lives in $XDG_CACHE_HOME/brickfs
(else ~/.cache/brickfs) unless mounts are given -o cache_dir=DIR.

  info         bytes and files in the cache, per store URL
  clear        removes everything in the cache
  clear URL    removes what was cached from the store at URL (and from
               objects below URL); mounts using the cache fetch it again
  --cache-dir DIR   the cache to look at (as -o cache_dir=DIR)

Examples:
  brickfs cache info
  brickfs cache clear https://example.org/data/vol.zarr
)";

int Fail(const std::string& msg, int code = kExitFailed) {
  std::cerr << "brickfs: " << msg << "\n";
  return code;
}

std::string When(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char text[32];
  if (::localtime_r(&t, &tm) == nullptr || std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm) == 0) {
    return "-";
  }
  return text;
}

int Info(const std::string& dir) {
  auto usage = DiskCache::Inspect(dir);
  if (!usage.ok()) {
    if (usage.status().code() == Status::Code::kNotFound) {
      std::cout << "cache:   " << dir << " (empty: nothing cached yet)\n";
      return 0;
    }
    return Fail(usage.status().message());
  }
  std::cout << "cache:   " << usage->dir << "\n"
            << "size:    " << HumanBytes(usage->bytes) << " (" << usage->bytes << " bytes) in "
            << usage->files << " files, " << usage->objects << " objects\n";
  for (const DiskCache::StoreUsage& s : usage->stores) {
    std::cout << "  " << (s.base.empty() ? "(objects without a record)" : s.base) << ": "
              << HumanBytes(s.bytes) << " (" << s.bytes << " bytes) in " << s.files
              << " files, " << s.objects << " objects, last used " << When(s.last_used) << "\n";
  }
  return 0;
}

int Clear(const std::string& dir, const std::string& url) {
  std::string prefix;
  if (!url.empty()) {
    auto normalized = NormalizeStoreUrl(url);
    if (!normalized.ok()) return Fail(normalized.status().message(), kExitUsage);
    prefix = *normalized;
  }
  auto cleared = DiskCache::Clear(dir, prefix);
  if (!cleared.ok()) {
    if (cleared.status().code() == Status::Code::kNotFound) {
      std::cout << "nothing to clear: no cache in " << dir << "\n";
      return 0;
    }
    return Fail(cleared.status().message());
  }
  std::cout << "removed " << cleared->objects << " objects (" << cleared->files << " files, "
            << HumanBytes(cleared->bytes) << ") from " << dir
            << (prefix.empty() ? "" : " cached from " + prefix) << "\n";
  return 0;
}

}  // namespace

int CmdCache(const std::vector<std::string>& args) {
  ArgParser parser("cache", kCacheHelp);
  CLI::App& app = parser.app();
  std::string action, url, dir;
  app.add_option("ACTION", action);
  app.add_option("URL", url);
  app.add_option("--cache-dir", dir);
  if (auto rc = parser.Parse(args)) return *rc;
  if (!url.empty() && action != "clear") {
    return ArgParser::Usage("cache: unexpected argument " + url + " (see brickfs cache --help)");
  }
  if (action != "info" && action != "clear") {
    return ArgParser::Usage("cache needs info or clear (see brickfs cache --help)");
  }
  if (dir.empty()) {
    auto d = DefaultCacheDir();
    if (!d.ok()) return Fail(d.status().message());
    dir = *d;
  }
  return action == "info" ? Info(dir) : Clear(dir, url);
}

}  // namespace brickfs
