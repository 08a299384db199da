// The brickfs command: dispatch (including mount.brickfs by argv[0] and the
// fstab form), the help texts and the create, mount, umount, info and status
// subcommands (fsck, compact and cache live in cmd_*.cc; arguments are parsed
// by CLI11 through args.h). Over 700 lines because about 150 of them are the
// help texts, kept here next to the options they describe.
#include "cli/cli.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <thread>
#include <tuple>

#include "brickfs/version.h"
#include "cli/args.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "format/json.h"
#include "format/volume_meta.h"
#include "mount/fuse_mount.h"
#include "mount/pyramid_options.h"
#include "remote/remote_options.h"
#include "store/finalize_state.h"
#include "store/journal.h"
#include "store/shard_store.h"
#include "store/store.h"

namespace brickfs {
namespace {

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitTimeout = 3;  // umount --timeout: the daemon is still running

int Fail(const std::string& msg, int code = kExitFailed) {
  std::cerr << "brickfs: " << msg << "\n";
  return code;
}

std::string Absolute(const std::string& p) {
  boost::system::error_code ec;
  auto abs = boost::filesystem::weakly_canonical(boost::filesystem::absolute(p), ec);
  if (ec) return boost::filesystem::absolute(p).lexically_normal().string();
  std::string s = abs.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool ParseShape(const std::string& v, Shape3* out) {
  std::stringstream ss(v);
  std::string part;
  Shape3 s{};
  int i = 0;
  while (std::getline(ss, part, ',')) {
    if (i >= 3 || part.empty() || part.find_first_not_of("0123456789") != std::string::npos ||
        part.size() > 12) {
      return false;
    }
    s[i++] = std::stoull(part);
  }
  if (i != 3) return false;
  *out = s;
  return true;
}

// --voxel-size, --unit and --downsample of create and mount, as given.
struct PyramidArgs {
  CLI::Option* voxel_size = nullptr;
  CLI::Option* unit = nullptr;
  CLI::Option* downsample = nullptr;
  std::string voxel_size_text, unit_text, downsample_text;
};

void AddPyramidArgs(CLI::App& app, PyramidArgs* p) {
  p->voxel_size = app.add_option("--voxel-size", p->voxel_size_text);
  p->unit = app.add_option("--unit", p->unit_text);
  p->downsample = app.add_option("--downsample", p->downsample_text);
}

// The pyramid flags given, into `out` (as the mount options voxel_size=,
// unit= and downsample= do). nullopt, or the usage exit code after printing
// what is wrong.
std::optional<int> ApplyPyramidArgs(const PyramidArgs& p, VolumeOptions* out) {
  const std::tuple<const CLI::Option*, const char*, const std::string*> flags[] = {
      {p.voxel_size, "voxel_size", &p.voxel_size_text},
      {p.unit, "unit", &p.unit_text},
      {p.downsample, "downsample", &p.downsample_text}};
  for (const auto& [option, key, value] : flags) {
    if (option->count() == 0) continue;
    Status s = *SetPyramidValue(key, *value, ',', out);
    if (!s.ok()) return Fail(option->get_name() + " \"" + *value + "\": " + s.message(), kExitUsage);
  }
  return std::nullopt;
}

// "2 x 0.5 x 0.5 micrometer" (z, y, x; no unit when there is none).
std::string VoxelSizeText(const VolumeMeta& m) {
  std::ostringstream out;
  out << m.voxel_size[0] << " x " << m.voxel_size[1] << " x " << m.voxel_size[2];
  if (!m.unit.empty()) out << " " << m.unit;
  return out.str();
}

bool HasVoxelSize(const VolumeMeta& m) {
  return !m.unit.empty() || m.voxel_size != std::array<double, 3>{1, 1, 1};
}

// "160 x 600 x 512"
std::string ShapeText(const Shape3& s) {
  return std::to_string(s[0]) + " x " + std::to_string(s[1]) + " x " + std::to_string(s[2]);
}

// The pyramid keys of `brickfs info --json`.
void SetPyramidJson(const VolumeMeta& m, Json* doc) {
  (*doc)["num_levels"] = m.num_levels;
  Json shapes = Json::array();
  for (int l = 0; l < m.num_levels; ++l) shapes.push_back(LevelShape(m.geo.shape, l));
  (*doc)["level_shapes"] = std::move(shapes);
  (*doc)["voxel_size"] = m.voxel_size;
  (*doc)["unit"] = m.unit.empty() ? Json() : Json(m.unit);
  (*doc)["downsample_method"] = m.downsample_method;
}

// The pyramid lines of `brickfs info`: levels (with their shapes, and
// `notes[l]` when given, when there are several), voxel size when set.
void PrintPyramid(const VolumeMeta& m, const std::vector<std::string>& notes) {
  std::cout << "levels:       " << m.num_levels << " (downsampling: " << m.downsample_method
            << ")\n";
  for (int l = 0; m.num_levels > 1 && l < m.num_levels; ++l) {
    std::string label = "  level " + std::to_string(l) + ":";
    label.resize(std::max<size_t>(label.size() + 1, 14), ' ');
    std::cout << label << ShapeText(LevelShape(m.geo.shape, l))
              << (static_cast<size_t>(l) < notes.size() ? ", " + notes[l] : std::string()) << "\n";
  }
  if (HasVoxelSize(m)) std::cout << "voxel size:   " << VoxelSizeText(m) << " (z, y, x)\n";
}

const char* kMainHelp = R"(brickfs - a FUSE filesystem that bricks TIFF slice stacks into sharded Zarr v3 volumes

Usage:
  brickfs mount  STORE MOUNT [-o OPTIONS] [-f]   mount (creates STORE if absent)
  brickfs umount MOUNT [--timeout S]             unmount, wait until the store is final
  brickfs create STORE --shape Z,Y,X --dtype T   create a volume of fixed shape
  brickfs info   STORE|MOUNT [--json]            shape, levels, missing slices, sizes
  brickfs status MOUNT [--watch]                 live progress of a mounted volume
  brickfs fsck   STORE [--repair] [--deep] [--json]
                                                 check (and repair) an unmounted store, every level
  brickfs compact STORE [--dry-run]              rewrite shards (every level) without dead bytes
  brickfs mount  http(s)://HOST/PATH/vol.zarr MOUNT [-o OPTIONS]
                                                 mount a remote store read-only, cached locally
  brickfs cache  info | clear [URL]              the local cache of remote stores
  brickfs --version | --help | COMMAND --help

Example:
  brickfs mount vol.zarr /mnt/v
  cp stack/scan_*.tif /mnt/v/z/
  tiffinfo /mnt/v/z/00017.tif
  brickfs umount /mnt/v
  brickfs info vol.zarr
)";

const char* kMountHelp = R"(Usage: brickfs mount STORE MOUNT [-o OPTIONS] [-f]
       brickfs mount http(s)://HOST/PATH/vol.zarr MOUNT [-o OPTIONS] [-f]

Mounts the Zarr v3 store STORE on MOUNT (an existing empty directory). STORE is
created when it does not exist; its X, Y and dtype come from the first slice.
Returns once the mount is ready; the daemon finalizes the store on unmount.

A store given as an http:// or https:// URL (one brickfs wrote, served by any
web server or object store that answers range requests) is mounted read-only:
reads fetch only the shard indexes and blocks they need, with range requests,
into a local cache that later mounts reuse (see brickfs cache --help). A read
the server fails (after retries, within 60 s) gives EIO; the URL and the HTTP
status are in MOUNT/.brickfs/status and the log.

  MOUNT/z/NNNNN.tif   XY planes; copy slice TIFFs here (any name with a number)
  MOUNT/y/NNNNN.tif   XZ planes (read only)
  MOUNT/x/NNNNN.tif   YZ planes (read only)
  MOUNT/levels/L/{z,y,x}/NNNNN.tif
                      planes of pyramid level L (0: full resolution; each
                      level 2x smaller per axis than the one before; read only)
  MOUNT/.brickfs/status  JSON progress and errors

Options (-o, comma separated):
  first_index=N   z of a written file = last number in its name - N (default 0)
  mem=SIZE        slab buffer budget, e.g. 2G (default: a quarter of RAM;
                  at most the physical memory)
  cache=SIZE      decoded block cache for reads (default 512M)
  threads=N       compression/decompression threads (default: CPUs)
  block=Z,Y,X     block shape of a new volume (default 32,32,32)
  brick=Z,Y,X     brick (shard) shape of a new volume (default 256,256,256);
                  block= and brick= are checked before mounting
  zstd_level=N    zstd level of a new volume (default 1)
  nopyramid       build no pyramid levels (only to measure their cost;
                  pyramid=0|1 also works)
  downsample=M    pyramid downsampling of a new volume: mean (default) or
                  mode (the most frequent value, for label volumes)
  voxel_size=Z:Y:X  size of a voxel (or one number for all axes), e.g.
                  2:0.5:0.5; given, it replaces the store's
  unit=NAME       unit of voxel_size, an OME-Zarr space unit: micrometer,
                  nanometer, millimeter, angstrom, meter, ...
  ro              read-only mount
  nonempty        allow a mount point that is not empty
  nojournal       no write-ahead journal (only to measure its cost: a crash
                  may then leave torn shards for brickfs fsck --repair)
  log=FILE        daemon log (default STORE/.brickfs/daemon.log, for a
                  remote store CACHE_DIR/daemon.log); not a symlink, and not
                  inside MOUNT
  verbose         log progress, not only warnings
  cache_dir=DIR   remote store: the cache (default $XDG_CACHE_HOME/brickfs,
                  else ~/.cache/brickfs); not inside MOUNT
  cache_size=SIZE remote store: bound of the cache on disk, least recently
                  used first out (default 4G)
  offline         remote store: no request, read only what the cache holds
                  (anything else gives EIO)
  auth_file=FILE  remote store: "user:password" (basic auth) or
                  "bearer TOKEN" from FILE, which only its owner may read
  allow_other     let other users read the mount (default_permissions is
                  added: they cannot write); allow_root the same for root
  Other options go to libfuse; fstab options (noauto, nofail, user,
  _netdev, x-*) are ignored.
  STORE must not be inside MOUNT, nor MOUNT inside STORE.
  -f              stay in the foreground
  --voxel-size Z,Y,X, --unit NAME, --downsample M, --no-pyramid
                  the same as voxel_size=, unit=, downsample=, nopyramid

Example:
  brickfs mount vol.zarr /mnt/v -o mem=4G,first_index=1
  brickfs mount vol.zarr /mnt/v -o voxel_size=2:0.5:0.5,unit=micrometer
  brickfs mount https://example.org/data/vol.zarr /mnt/v -o cache_size=20G
)";

const char* kCreateHelp = R"(Usage: brickfs create STORE --shape Z,Y,X --dtype T [--block Z,Y,X] [--brick Z,Y,X] [--zstd-level N]
                      [--voxel-size Z,Y,X] [--unit NAME] [--downsample mean|mode]

Creates an empty volume of fixed shape. dtype: uint8 uint16 int16 uint32 float32.
Defaults: block 32,32,32 (uint8 32 KiB, 16-bit 64 KiB, 32-bit 128 KiB raw),
brick 256,256,256, zstd level 1. Slices outside Z are refused when written.

  --voxel-size Z,Y,X  size of a voxel, or one number for all axes (default 1)
  --unit NAME         its unit, an OME-Zarr space unit: micrometer, nanometer,
                      millimeter, angstrom, meter, ... (default none)
  --downsample M      how pyramid levels are computed: mean (default) or mode
                      (the most frequent value, for label volumes)

Example:
  brickfs create vol.zarr --shape 300,2048,2048 --dtype uint16
  brickfs create labels.zarr --shape 300,2048,2048 --dtype uint32 --downsample mode \
      --voxel-size 2,0.5,0.5 --unit micrometer
)";

const char* kUmountHelp = R"(Usage: brickfs umount MOUNT [--timeout SECONDS]

Unmounts MOUNT and waits until the daemon has flushed every buffered slice,
fsynced the store and exited. Prints what it waits for on long finalizes.
When the daemon cannot finalize (a full disk: No space left on device), it
keeps the slices in memory and retries every 5 s; umount says why, what to
free, and keeps waiting.

  --timeout SECONDS   stop waiting after SECONDS and exit 3, leaving the
                      daemon running (it finishes by itself)

Exit status: 0 the store is final; 1 it could not be unmounted or is not
final; 2 usage; 3 --timeout passed while the daemon was still working.

Example:
  brickfs umount /mnt/v
  brickfs umount --timeout 600 /mnt/v
)";

const char* kInfoHelp = R"(Usage: brickfs info STORE|MOUNT [--json]

Prints a store's shape, dtype, block and brick shape, pyramid levels with
their shapes and the bytes each stores, voxel size and downsampling method,
slices present and missing (as z ranges to copy again), bytes stored in every
level (and the ratio of the volume's raw bytes to them), and whether it was
finalized. Given a mount point, prints the same for the store mounted there
(the daemon's live progress is `brickfs status MOUNT`). --json prints it as
JSON (per level: levels_stored).

Example:
  brickfs info vol.zarr
  brickfs info --json vol.zarr
)";

const char* kStatusHelp = R"(Usage: brickfs status MOUNT [--watch]

Prints one progress line for a mounted volume (slices, slabs, MB/s in and
out, memory, errors); with --watch, refreshes it every second until unmount.

Example:
  brickfs status /mnt/v --watch
)";

}  // namespace

int CmdCreate(const std::vector<std::string>& args) {
  ArgParser parser("create", kCreateHelp);
  CLI::App& app = parser.app();
  std::string store, shape_text, dtype_text, block_text, brick_text, level_text;
  app.add_option("STORE", store);
  CLI::Option* shape_opt = app.add_option("--shape", shape_text);
  CLI::Option* dtype_opt = app.add_option("--dtype", dtype_text);
  CLI::Option* block_opt = app.add_option("--block", block_text);
  CLI::Option* brick_opt = app.add_option("--brick", brick_text);
  CLI::Option* level_opt = app.add_option("--zstd-level,--level", level_text);
  PyramidArgs pyramid_args;
  AddPyramidArgs(app, &pyramid_args);
  if (auto rc = parser.Parse(args)) return *rc;

  VolumeMeta meta;
  meta.geo.brick = kDefaultBrick;
  const bool have_shape = shape_opt->count() > 0, have_dtype = dtype_opt->count() > 0;
  const bool have_brick = brick_opt->count() > 0;
  std::optional<Shape3> block;
  if (have_shape && !ParseShape(shape_text, &meta.geo.shape)) return Fail("--shape expects Z,Y,X", kExitUsage);
  if (have_dtype) {
    if (!ParseDType(dtype_text)) return Fail("--dtype expects uint8, uint16, int16, uint32 or float32", kExitUsage);
    meta.geo.dtype = *ParseDType(dtype_text);
  }
  if (block_opt->count() > 0) {
    Shape3 b;
    if (!ParseShape(block_text, &b)) return Fail("--block expects Z,Y,X", kExitUsage);
    block = b;
  }
  if (have_brick && !ParseShape(brick_text, &meta.geo.brick)) return Fail("--brick expects Z,Y,X", kExitUsage);
  if (level_opt->count() > 0) {
    size_t used = 0;
    try {
      meta.zstd_level = std::stoi(level_text, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != level_text.size()) return Fail("--zstd-level expects a number", kExitUsage);
  }
  VolumeOptions pyramid;  // only its pyramid settings: --voxel-size, --unit, --downsample
  if (auto rc = ApplyPyramidArgs(pyramid_args, &pyramid)) return *rc;
  if (store.empty() || !have_shape || !have_dtype) {
    return Fail("create needs STORE, --shape Z,Y,X and --dtype (see brickfs create --help)", kExitUsage);
  }
  for (uint64_t d : meta.geo.shape) {
    if (d == 0) return Fail("--shape dimensions must be > 0", kExitUsage);
  }
  meta.geo.block = block.value_or(DefaultBlockShape(meta.geo.dtype));
  if (std::string bad = meta.geo.Validate(); !bad.empty()) {
    std::string given = block ? "--block " + ShapeToString(*block) : "";
    if (have_brick) {
      given += (given.empty() ? "" : " ") + ("--brick " + ShapeToString(meta.geo.brick));
    }
    if (!block) {
      bad += " (" + ShapeToString(meta.geo.block) + " is the default block of " +
             std::string(DTypeName(meta.geo.dtype)) + "; give --block as well)";
    }
    return Fail(given + ": " + bad, kExitUsage);
  }
  if (meta.zstd_level < -7 || meta.zstd_level > 22) return Fail("--zstd-level must be in -7..22", kExitUsage);
  meta.fixed_shape = true;
  meta.finalized = true;
  meta.voxel_size = pyramid.voxel_size.value_or(meta.voxel_size);
  meta.unit = pyramid.unit.value_or(meta.unit);
  meta.downsample_method = pyramid.downsample.value_or(meta.downsample_method);
  Status s = Store::Create(Absolute(store), meta);
  if (!s.ok()) return Fail("create " + store + ": " + s.message());
  std::cout << "created " << store << ": " << ShapeToString(meta.geo.shape) << " "
            << DTypeName(meta.geo.dtype) << ", block " << ShapeToString(meta.geo.block)
            << ", brick " << ShapeToString(meta.geo.brick)
            << (HasVoxelSize(meta) ? ", voxel size " + VoxelSizeText(meta) : "") << "\n";
  return kExitOk;
}

int CmdMount(const std::vector<std::string>& args) {
  ArgParser parser("mount", kMountHelp);
  CLI::App& app = parser.app();
  MountConfig config;
  std::string store, mountpoint;
  std::vector<std::string> option_lists;  // every -o, in order
  bool no_pyramid = false;
  app.add_option("STORE", store);
  app.add_option("MOUNT", mountpoint);
  app.add_option("-o", option_lists)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("-f,--foreground", config.foreground);
  app.add_flag("-v,--verbose", config.verbose);
  app.add_flag("--no-pyramid", no_pyramid);
  PyramidArgs pyramid_args;
  AddPyramidArgs(app, &pyramid_args);
  if (auto rc = parser.Parse(args)) return *rc;
  if (no_pyramid) config.volume.pyramid = false;
  if (auto rc = ApplyPyramidArgs(pyramid_args, &config.volume)) return *rc;
  // Every -o is parsed at once, after the flags: block= and brick= given in
  // two -o are checked together.
  std::string options;
  for (const std::string& o : option_lists) options += (options.empty() ? "" : ",") + o;
  if (Status s = ParseMountOptions(options, &config); !s.ok()) return Fail(s.message(), kExitUsage);
  if (mountpoint.empty()) return Fail("mount needs STORE and MOUNT (see brickfs mount --help)", kExitUsage);
  config.store = IsRemoteUrl(store) ? store : Absolute(store);
  config.mountpoint = Absolute(mountpoint);
  return RunMount(config);
}

namespace {

Result<Json> ReadLiveStatus(const std::string& mount) {
  const std::string path = mount + "/.brickfs/status";
  BRICKFS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxJsonBytes));
  return ParseJson(text, path);
}

// The daemon's pid in a live status (0 when it names none).
pid_t DaemonPid(const Json& status) {
  const Json* pid = JsonField(status, "pid");
  return pid && JsonIsUint(*pid) && pid->get<uint64_t>() <= INT32_MAX ? static_cast<pid_t>(pid->get<uint64_t>())
                                                                      : 0;
}

// The store a live status names ("" when none).
std::string StoreOf(const Json& status) {
  const Json* store = JsonField(status, "store");
  return store && store->is_string() ? store->get<std::string>() : "";
}

// True while `pid` runs. A zombie has finished: the daemon is reparented to
// PID 1 when it daemonizes, and some init processes (containers) reap it
// only after a second or more.
bool ProcessAlive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  auto stat = ReadFileToString("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat.ok()) return true;
  const size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] != 'Z';
}

// Runs a program, waits, returns its exit status (-1 if it could not run).
int RunProgram(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execvp(a[0], a.data());
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

namespace {

// The mount point of the filesystem that holds `path` (which exists).
std::string FilesystemOf(const std::string& path) {
  std::string cur = path;
  struct stat st;
  if (::stat(cur.c_str(), &st) != 0) return path;
  while (cur != "/") {
    std::string parent = cur.substr(0, cur.find_last_of('/'));
    if (parent.empty()) parent = "/";
    struct stat pst;
    if (::stat(parent.c_str(), &pst) != 0 || pst.st_dev != st.st_dev) break;
    cur = parent;
  }
  return cur;
}

// What `brickfs umount` prints about a daemon whose finalize keeps failing.
std::string FinalizeProblem(const std::string& store, pid_t pid, const FinalizeState& st) {
  std::string why;
  if (st.err != 0) {
    const char* name = ::strerrorname_np(st.err);
    why = std::string(std::strerror(st.err)) + " (" +
          (name ? name : "errno " + std::to_string(st.err)) + "): ";
  }
  std::string msg = "cannot finalize " + store + ": " + why + st.error + "; the daemon (pid " +
                    std::to_string(pid) + ") keeps the data in memory and retries every " +
                    std::to_string(st.retry_seconds) + " s: ";
  if (st.err == ENOSPC || st.err == EDQUOT) {
    const std::string fs = FilesystemOf(store);
    struct statvfs vfs;
    std::string avail;
    if (::statvfs(store.c_str(), &vfs) == 0) {
      avail = ": " + HumanBytes(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize) + " available";
    }
    const char* what = st.err == EDQUOT ? "raise the quota or free space" : "free space";
    msg += std::string(what) + " on " + fs + " (df -h " + fs + avail + ")";
  } else {
    msg += "fix the cause (see " + store + "/.brickfs/daemon.log)";
  }
  return msg;
}

}  // namespace

int CmdUmount(const std::vector<std::string>& args) {
  ArgParser parser("umount", kUmountHelp);
  CLI::App& app = parser.app();
  std::string mount, timeout_text;
  app.add_option("MOUNT", mount);
  CLI::Option* timeout_opt = app.add_option("--timeout", timeout_text);
  if (auto rc = parser.Parse(args)) return *rc;
  std::optional<double> timeout;
  if (timeout_opt->count() > 0) {
    size_t used = 0;
    double secs = -1;
    try {
      secs = std::stod(timeout_text, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != timeout_text.size() || !(secs >= 0)) {
      return Fail("--timeout expects a number of seconds, not \"" + timeout_text + "\"", kExitUsage);
    }
    timeout = secs;
  }
  if (mount.empty()) return Fail("umount needs MOUNT (see brickfs umount --help)", kExitUsage);
  mount = Absolute(mount);
  auto status = ReadLiveStatus(mount);
  if (!status.ok()) {
    return Fail(mount + " is not a mounted brickfs volume (" + status.status().message() + ")");
  }
  const pid_t pid = DaemonPid(*status);
  const std::string store = StoreOf(*status);
  int rc = RunProgram({"fusermount3", "-u", mount});
  if (rc != 0) {
    if (::umount2(mount.c_str(), 0) != 0) {
      return Fail("could not unmount " + mount + ": " + std::strerror(errno) +
                  " (is a file open there? see `fuser -m " + mount + "`)");
    }
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto last_note = start, last_state = start;
  std::string shown;  // the finalize error last printed
  while (pid > 0 && ProcessAlive(pid)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto now = Clock::now();
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
    // The daemon says in STORE/.brickfs/finalize when its finalize fails.
    if (!store.empty() && now - last_state >= std::chrono::milliseconds(500)) {
      last_state = now;
      auto st = ReadFinalizeState(store);
      if (st && st->pid == pid && st->state == "retrying" && st->error != shown) {
        shown = st->error;
        last_note = now;
        std::cerr << "brickfs: " << FinalizeProblem(store, pid, *st) << "\n";
      }
    }
    if (timeout && now - start >= std::chrono::duration<double>(*timeout)) {
      const std::string daemon = "the daemon (pid " + std::to_string(pid) + ")";
      return Fail("gave up waiting after " + std::to_string(waited) + " s (--timeout): " +
                      daemon + " is still running; it keeps the slices not yet written to " +
                      store + " in memory and exits by itself once the store is final (follow " +
                      store + "/.brickfs/daemon.log; kill -9 would lose those slices)",
                  kExitTimeout);
    }
    if (now - last_note > std::chrono::seconds(shown.empty() ? 3 : 30)) {
      last_note = now;
      std::cerr << "brickfs: waiting for the daemon (pid " << pid << ") to "
                << (shown.empty() ? "flush and fsync " : "finalize ") << store << " (" << waited
                << " s)\n";
    }
  }
  if (!store.empty()) {
    StoreOpenOptions so;
    so.read_only = true;
    so.take_lock = false;
    auto st = Store::Open(store, so);
    if (st.ok() && (*st)->meta() && !(*st)->meta()->finalized) {
      auto fin = ReadFinalizeState(store);
      return Fail("the daemon exited but " + store + " is not marked final" +
                  (fin && fin->pid == pid && !fin->error.empty() ? ": " + fin->error : "") +
                  "; see " + store + "/.brickfs/daemon.log (mounting it again recovers it)");
    }
  }
  return kExitOk;
}

int CmdInfo(const std::vector<std::string>& args) {
  ArgParser parser("info", kInfoHelp);
  CLI::App& app = parser.app();
  bool json = false;
  std::string path;
  app.add_option("STORE|MOUNT", path);
  app.add_flag("--json", json);
  if (auto rc = parser.Parse(args)) return *rc;
  if (path.empty()) return Fail("info needs STORE or MOUNT (see brickfs info --help)", kExitUsage);
  path = Absolute(path);
  // A mount point: the summary of the store it shows (as `brickfs umount`
  // finds it, from the status); its live progress is `brickfs status`.
  std::string mountpoint;
  int64_t daemon_pid = 0;
  struct stat st;
  if (::stat((path + "/.brickfs/status").c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      ::stat((path + "/zarr.json").c_str(), &st) != 0) {
    auto status = ReadLiveStatus(path);
    if (!status.ok()) return Fail(path + " looks like a brickfs mount, but " + status.status().message());
    const std::string store = StoreOf(*status);
    if (store.empty()) return Fail(path + "/.brickfs/status names no store");
    daemon_pid = DaemonPid(*status);
    mountpoint = path;
    path = store;
  }
  StoreOpenOptions so;
  so.read_only = true;
  so.take_lock = false;
  auto store = Store::Open(path, so);
  if (!store.ok()) return Fail(store.status().message());
  if (!(*store)->meta()) {
    if (json) {
      Json doc = Json::object();
      doc["store"] = path;
      doc["shape"] = Json();
      doc["finalized"] = false;
      if (!mountpoint.empty()) doc["mountpoint"] = mountpoint;
      std::cout << DumpJson(doc, 2) << "\n";
    } else {
      std::cout << path << ": empty store (no slice received yet)"
                << (mountpoint.empty() ? "" : ", mounted at " + mountpoint) << "\n";
    }
    return kExitOk;
  }
  // An unclean shutdown leaves a journal: show what a recovery would keep
  // (and which slices it would report lost), as a read-write mount does.
  auto journal = ReadJournal(path);
  if (!journal.ok()) return Fail(journal.status().ToString());
  const bool recovery_pending = journal->frames > 0;
  ZRanges lost;
  const VolumeMeta m = recovery_pending
                           ? RecoveredMeta((*store)->meta(), (*store)->meta()->geo, *journal, &lost)
                           : *(*store)->meta();
  const Geometry& g = m.geo;
  std::vector<bool> present(g.shape[0], false);
  for (const auto& [a, b] : m.present) {
    for (uint64_t z = a; z <= b && z < present.size(); ++z) present[z] = true;
  }
  uint64_t npresent = 0;
  for (bool b : present) npresent += b;
  ZRanges missing = MissingRanges(present, g.shape[0]);
  // Every level's shards. A torn append (the crash, or an append under way
  // in a live mount) is not counted: recovery cuts it off.
  const int num_levels = std::clamp(m.num_levels, 1, kMaxLevels);
  std::vector<ShardStore::Usage> levels(num_levels);
  ShardStore::Usage usage;
  for (int level = 0; level < num_levels; ++level) {
    Geometry lg = g;
    lg.shape = LevelShape(g.shape, level);
    ShardStore shards((*store)->ArrayDir(level), lg, true);
    auto scanned = shards.ScanUsage(lg.brick_grid(), [&](const Shape3& b) -> std::optional<uint64_t> {
      if (!recovery_pending) return std::nullopt;
      return journal->RecoveredLength(BrickId{static_cast<uint8_t>(level), b});
    });
    if (!scanned.ok()) return Fail(scanned.status().ToString() + " (run brickfs fsck)");
    levels[level] = *scanned;
    usage.files += scanned->files;
    usage.file_bytes += scanned->file_bytes;
    usage.live_block_bytes += scanned->live_block_bytes;
    usage.live_blocks += scanned->live_blocks;
    usage.index_bytes += scanned->index_bytes;
  }
  auto dead_of = [](const ShardStore::Usage& u) { return u.file_bytes - u.live_block_bytes - u.index_bytes; };
  // The volume's raw bytes (level 0) per byte stored in every level.
  uint64_t raw = Product(g.shape) * g.voxel_bytes();
  double ratio = usage.file_bytes ? static_cast<double>(raw) / usage.file_bytes : 0.0;
  uint64_t dead = dead_of(usage);
  if (json) {
    Json doc = Json::object();
    doc["store"] = path;
    if (!mountpoint.empty()) {
      doc["mountpoint"] = mountpoint;
      doc["daemon_pid"] = daemon_pid;
    }
    doc["shape"] = g.shape;
    doc["dtype"] = std::string(DTypeName(g.dtype));
    doc["block"] = g.block;
    doc["brick"] = g.brick;
    doc["zstd_level"] = m.zstd_level;
    doc["fixed_shape"] = m.fixed_shape;
    SetPyramidJson(m, &doc);
    doc["slices_present"] = npresent;
    doc["missing"] = missing;
    doc["shard_files"] = usage.files;
    doc["bytes_stored"] = usage.file_bytes;
    doc["bytes_live_blocks"] = usage.live_block_bytes;
    doc["blocks_stored"] = usage.live_blocks;
    doc["bytes_dead"] = dead;
    Json lj = Json::array();
    for (int level = 0; level < num_levels; ++level) {
      const ShardStore::Usage& u = levels[level];
      lj.push_back(Json{{"level", level},
                        {"shard_files", u.files},
                        {"bytes_stored", u.file_bytes},
                        {"bytes_live_blocks", u.live_block_bytes},
                        {"blocks_stored", u.live_blocks},
                        {"bytes_dead", dead_of(u)},
                        {"bytes_raw", Product(LevelShape(g.shape, level)) * g.voxel_bytes()}});
    }
    doc["levels_stored"] = std::move(lj);
    doc["bytes_raw"] = raw;
    doc["compression_ratio"] = ratio;
    doc["finalized"] = m.finalized && !recovery_pending;
    doc["recovery_pending"] = recovery_pending;
    doc["format_version"] = m.format_version;
    std::cout << DumpJson(doc, 2) << "\n";
    return kExitOk;
  }
  char ratio_s[32];
  std::snprintf(ratio_s, sizeof ratio_s, "%.2f", ratio);
  auto files_text = [](uint64_t n) { return std::to_string(n) + (n == 1 ? " shard file" : " shard files"); };
  std::cout << "store:        " << path << "\n";
  if (!mountpoint.empty()) {
    std::cout << "mounted:      at " << mountpoint << " (daemon pid " << daemon_pid
              << "; live progress: brickfs status " << mountpoint << ")\n";
  }
  std::cout << "shape:        " << ShapeText(g.shape) << " (z, y, x)" << (m.fixed_shape ? ", fixed" : "") << "\n"
            << "dtype:        " << DTypeName(g.dtype) << "\n"
            << "block:        " << ShapeToString(g.block) << " (" << HumanBytes(g.block_bytes())
            << " raw, zstd level " << m.zstd_level << ")\n"
            << "brick:        " << ShapeToString(g.brick) << " (one shard file per brick, "
            << g.blocks_in_brick() << " blocks)\n";
  std::vector<std::string> level_notes;
  for (const auto& u : levels) level_notes.push_back(HumanBytes(u.file_bytes) + " in " + files_text(u.files));
  PrintPyramid(m, level_notes);
  std::cout << "slices:       " << npresent << " of " << g.shape[0] << " present\n"
            << "missing z:    " << RangesToString(missing) << "\n"
            << "stored:       " << HumanBytes(usage.file_bytes) << " in " << files_text(usage.files)
            << (num_levels > 1 ? ", all " + std::to_string(num_levels) + " levels (raw level 0 "
                               : std::string(" (raw "))
            << HumanBytes(raw) << ", ratio " << ratio_s << ")\n"
            << "blocks:       " << usage.live_blocks << " stored (" << HumanBytes(usage.live_block_bytes) << "), "
            << HumanBytes(dead) << " dead bytes (superseded indexes and blocks)\n"
            << "finalized:    "
            << (m.finalized && !recovery_pending
                    ? "yes"
                    : !mountpoint.empty() ? "no: mounted (the daemon finalizes it at unmount)"
                    : recovery_pending    ? "no: not unmounted cleanly (or still mounted); mounting it "
                                            "read-write recovers it"
                                          : "no (still mounted, or the daemon died)")
            << "\n";
  return kExitOk;
}

int CmdStatus(const std::vector<std::string>& args) {
  ArgParser parser("status", kStatusHelp);
  CLI::App& app = parser.app();
  bool watch = false;
  std::string mount;
  app.add_option("MOUNT", mount);
  app.add_flag("-w,--watch", watch);
  if (auto rc = parser.Parse(args)) return *rc;
  if (mount.empty()) return Fail("status needs MOUNT (see brickfs status --help)", kExitUsage);
  mount = Absolute(mount);
  uint64_t last_in = 0, last_out = 0;
  auto last_t = std::chrono::steady_clock::now();
  bool first = true;
  for (;;) {
    auto status = ReadLiveStatus(mount);
    if (!status.ok()) {
      if (!first) {
        std::cout << "\n";
        return kExitOk;  // unmounted while watching
      }
      return Fail(mount + " is not a mounted brickfs volume");
    }
    const Json& s = *status;
    auto u = [](const Json* o, const char* k) -> uint64_t {
      const Json* v = o ? JsonField(*o, k) : nullptr;
      return v && JsonIsUint(*v) ? v->get<uint64_t>() : 0;
    };
    const Json* slices = JsonField(s, "slices");
    const Json* slabs = JsonField(s, "slabs");
    const Json* mem = JsonField(s, "memory");
    const Json* bytes = JsonField(s, "bytes");
    uint64_t in = u(bytes, "received"), out = u(bytes, "written");
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - last_t).count();
    const Json* elapsed_s = JsonField(s, "elapsed_s");
    const double elapsed = elapsed_s && elapsed_s->is_number() ? elapsed_s->get<double>() : 0;
    double in_rate = first ? (elapsed > 0 ? in / elapsed : 0) : (in - last_in) / std::max(dt, 1e-3);
    double out_rate = first ? (elapsed > 0 ? out / elapsed : 0) : (out - last_out) / std::max(dt, 1e-3);
    const Json* expected_field = slices ? JsonField(*slices, "expected") : nullptr;
    // expected: the slice count of a fixed shape (has_expected false when open-ended).
    const bool has_expected = expected_field && JsonIsUint(*expected_field);
    const uint64_t expected = has_expected ? expected_field->get<uint64_t>() : 0;
    uint64_t present = u(slices, "present");
    std::string eta;
    if (has_expected && in_rate > 0 && present > 0 && expected > present) {
      double per_slice = static_cast<double>(in) / present;
      double secs = (expected - present) * per_slice / in_rate;
      eta = ", ETA " + std::to_string(static_cast<int>(secs)) + " s";
    }
    char line[512];
    std::snprintf(line, sizeof line,
                  "slices %llu%s | slabs %llu buffered, %llu flushed, %llu spooled | in %.1f MB/s, out %.1f MB/s | mem %s of %s | errors %llu%s",
                  static_cast<unsigned long long>(present),
                  has_expected ? (" of " + std::to_string(expected)).c_str() : "",
                  static_cast<unsigned long long>(u(slabs, "buffered")),
                  static_cast<unsigned long long>(u(slabs, "flushed")),
                  static_cast<unsigned long long>(u(slabs, "spooled")), in_rate / 1e6, out_rate / 1e6,
                  HumanBytes(u(mem, "used")).c_str(), HumanBytes(u(mem, "budget")).c_str(),
                  static_cast<unsigned long long>(u(&s, "errors_total")), eta.c_str());
    if (!watch) {
      std::cout << line << "\n";
      return kExitOk;
    }
    std::cout << "\r\033[K" << line << std::flush;
    first = false;
    last_in = in;
    last_out = out;
    last_t = now;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int RunCli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string self = argc > 0 ? argv[0] : "brickfs";
  self = self.substr(self.find_last_of('/') + 1);
  if (self == "mount.brickfs" || self == "mount.fuse.brickfs") {
    // mount(8) calls: mount.brickfs STORE MOUNT [-sfnv] [-o options]
    std::vector<std::string> margs;
    for (const auto& a : args) {
      if (a == "-s" || a == "-n" || a == "-v") continue;  // sloppy, no-mtab, verbose
      if (a == "-f") return kExitOk;  // mount -f: fake, do not mount
      margs.push_back(a);
    }
    return CmdMount(margs);
  }
  if (args.empty()) {
    std::cerr << kMainHelp;
    return kExitUsage;
  }
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--version" || cmd == "-V" || cmd == "version") {
    std::cout << "brickfs " << BRICKFS_VERSION << " (store format " << BRICKFS_FORMAT_VERSION
              << ": Zarr v3 sharded, OME-Zarr 0.5)\n";
    return kExitOk;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kMainHelp;
    return kExitOk;
  }
  if (cmd == "create") return CmdCreate(rest);
  if (cmd == "mount") return CmdMount(rest);
  if (cmd == "umount" || cmd == "unmount") return CmdUmount(rest);
  if (cmd == "info") return CmdInfo(rest);
  if (cmd == "status") return CmdStatus(rest);
  if (cmd == "fsck") return CmdFsck(rest);
  if (cmd == "compact") return CmdCompact(rest);
  if (cmd == "cache") return CmdCache(rest);
  // mount.fuse3 (`mount -t fuse.brickfs`, fstab type fuse.brickfs) runs
  // `brickfs STORE MOUNT -o OPTIONS`: no subcommand, exactly two paths, and -o
  // or a STORE that exists or has a '/' (so a mistyped command is not a mount).
  size_t paths = 0;
  bool opts = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-o") {
      opts = true;
      ++i;
    } else if (!args[i].empty() && args[i][0] != '-') {
      ++paths;
    }
  }
  struct stat cmd_st;
  if (paths == 2 && cmd[0] != '-' &&
      (opts || cmd.find('/') != std::string::npos || ::stat(cmd.c_str(), &cmd_st) == 0)) {
    return CmdMount(args);
  }
  std::cerr << "brickfs: unknown command \"" << cmd << "\"\n\n" << kMainHelp;
  return kExitUsage;
}

}  // namespace brickfs
