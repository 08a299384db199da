#define FUSE_USE_VERSION 314
#include "mount/fuse_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <boost/filesystem.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "mount/brick_fs.h"
#include "mount/fuse_session.h"
#include "mount/foreign_fs.h"
#include "mount/namespace.h"
#include "mount/pyramid_options.h"
#include "remote/http_storage.h"
#include "store/finalize_state.h"
#include "volume/naming.h"

namespace brickfs {
namespace {

constexpr uint64_t kIoSize = 1 << 20;  // max_write, max_readahead

// --- C callbacks: each runs inside one guard that turns a stray exception
// into EIO plus a log line.

BrickFs* Fs() { return static_cast<BrickFs*>(fuse_get_context()->private_data); }


void* OpInit(fuse_conn_info* conn, fuse_config* cfg) {
  conn->max_write = kIoSize;
  conn->max_readahead = kIoSize;
  conn->want |= FUSE_CAP_ATOMIC_O_TRUNC & conn->capable;
  cfg->entry_timeout = 1.0;
  cfg->attr_timeout = 1.0;
  // A name looked up and not found stays "not found" for a second, like
  // the positive entries: cp's second lookup of the file it is about to
  // create is then answered by the kernel (on this VM each FUSE round trip
  // costs ~0.5 ms of the writer's time). Names the kernel creates or renames
  // itself drop the negative entry at once.
  cfg->negative_timeout = 1.0;
  cfg->nullpath_ok = 0;
  // unlink of an open file removes the name at once (no .fuse_hidden* file
  // renamed into z/): handles reach their files by fh, not by path.
  cfg->hard_remove = 1;
  return fuse_get_context()->private_data;
}

const fuse_operations kOps = [] {
  fuse_operations ops{};
  ops.init = OpInit;
  ops.getattr = [](const char* p, struct stat* st, fuse_file_info* fi) {
    return FuseGuard("getattr", [&] { return Fs()->GetAttr(p, st, fi); });
  };
  ops.readdir = [](const char* p, void* buf, fuse_fill_dir_t filler, off_t off, fuse_file_info*,
                   fuse_readdir_flags) {
    return FuseGuard("readdir", [&] { return Fs()->ReadDir(p, buf, filler, off); });
  };
  ops.open = [](const char* p, fuse_file_info* fi) {
    return FuseGuard("open", [&] { return Fs()->Open(p, fi); });
  };
  ops.create = [](const char* p, mode_t mode, fuse_file_info* fi) {
    return FuseGuard("create", [&] { return Fs()->Create(p, mode, fi); });
  };
  ops.read = [](const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    return FuseGuard("read", [&] { return Fs()->Read(buf, size, off, fi); });
  };
  ops.write = [](const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    return FuseGuard("write", [&] { return Fs()->Write(buf, size, off, fi); });
  };
  ops.flush = [](const char*, fuse_file_info* fi) {
    return FuseGuard("flush", [&] { return Fs()->Flush(fi); });
  };
  ops.release = [](const char*, fuse_file_info* fi) {
    return FuseGuard("release", [&] { return Fs()->Release(fi); });
  };
  ops.fsync = [](const char*, int, fuse_file_info* fi) {
    return FuseGuard("fsync", [&] { return Fs()->Fsync(fi); });
  };
  ops.fsyncdir = [](const char* p, int, fuse_file_info*) {
    return FuseGuard("fsyncdir", [&] { return Fs()->FsyncDir(p); });
  };
  ops.truncate = [](const char* p, off_t size, fuse_file_info* fi) {
    return FuseGuard("truncate", [&] { return Fs()->Truncate(p, size, fi); });
  };
  ops.utimens = [](const char* p, const struct timespec tv[2], fuse_file_info* fi) {
    return FuseGuard("utimens", [&] { return Fs()->Utimens(p, tv, fi); });
  };
  ops.chmod = [](const char* p, mode_t mode, fuse_file_info* fi) {
    return FuseGuard("chmod", [&] { return Fs()->Chmod(p, mode, fi); });
  };
  ops.chown = [](const char*, uid_t, gid_t, fuse_file_info*) { return 0; };
  ops.unlink = [](const char* p) { return FuseGuard("unlink", [&] { return Fs()->Unlink(p); }); };
  ops.rmdir = [](const char* p) { return FuseGuard("rmdir", [&] { return Fs()->Refuse("rmdir", p, EPERM); }); };
  ops.mkdir = [](const char* p, mode_t) { return FuseGuard("mkdir", [&] { return Fs()->Refuse("mkdir", p, EPERM); }); };
  ops.rename = [](const char* from, const char* to, unsigned int flags) {
    return FuseGuard("rename", [&] { return Fs()->Rename(from, to, flags); });
  };
  ops.mknod = [](const char* p, mode_t, dev_t) {
    return FuseGuard("mknod", [&] { return Fs()->Refuse("mknod", p, EPERM); });
  };
  ops.link = [](const char*, const char* to) { return FuseGuard("link", [&] { return Fs()->Refuse("link", to, EPERM); }); };
  ops.symlink = [](const char*, const char* to) {
    return FuseGuard("symlink", [&] { return Fs()->Refuse("symlink", to, EPERM); });
  };
  ops.statfs = [](const char*, struct statvfs* st) {
    return FuseGuard("statfs", [&] { return Fs()->StatFs(st); });
  };
  return ops;
}();

bool ParseShapeOption(const std::string& v, Shape3* out) {
  Shape3 s;
  std::stringstream ss(v);
  std::string part;
  int i = 0;
  while (std::getline(ss, part, ',')) {
    if (i >= 3 || part.empty() || part.find_first_not_of("0123456789") != std::string::npos) return false;
    if (part.size() > 12) return false;
    s[i++] = std::stoull(part);
  }
  if (i != 3) return false;
  *out = s;
  return true;
}

// The pyramid options pyramid[=0|1], nopyramid, downsample=, voxel_size=
// and unit=; nullopt when `key` is none of them. `bare`: no '=' given.
std::optional<Status> ParsePyramidOption(const std::string& key, const std::string& val, bool bare,
                                         VolumeOptions* v) {
  if (key == "nopyramid") {
    v->pyramid = false;
  } else if (key == "pyramid") {
    if (!bare && val != "0" && val != "1") {
      return Status::InvalidArgument("expected pyramid=0 or pyramid=1");
    }
    v->pyramid = bare || val == "1";
  } else {
    return SetPyramidValue(key, val, ':', v);
  }
  return Status::Ok();
}

// True when `part`, a piece of an -o string cut at commas, is the next
// number of the Z,Y,X value begun in `prev` (block=, brick=, voxel_size=).
bool ContinuesTriple(const std::string& prev, const std::string& part) {
  if (part.empty() || part.find_first_not_of("0123456789.eE+-") != std::string::npos) return false;
  for (const char* key : {"block=", "brick=", "voxel_size="}) {
    if (prev.rfind(key, 0) == 0) return true;
  }
  return false;
}

// Refuses block=/brick= that no volume could use: Geometry::Validate fails
// for them whatever the dtype of the first slice. (A block within 64 MiB
// only for smaller voxels still fails at the first slice of a larger dtype:
// refusing it here would refuse it for the dtypes it suits.)
Status CheckShapeOptions(const VolumeOptions& v) {
  if (!v.block && !v.brick) return Status::Ok();
  std::string first_error;
  for (DType t : {DType::kUint8, DType::kUint16, DType::kInt16, DType::kUint32, DType::kFloat32}) {
    Geometry g;
    g.dtype = t;
    g.block = v.block.value_or(DefaultBlockShape(t));
    g.brick = v.brick.value_or(kDefaultBrick);
    const std::string bad = g.Validate();
    if (bad.empty()) return Status::Ok();
    if (first_error.empty()) {
      first_error = bad;
      if (!v.block) {
        first_error += " (" + ShapeToString(g.block) + " is the default block; give block= as well)";
      } else if (!v.brick) {
        first_error += " (" + ShapeToString(kDefaultBrick) +
                       " is the default brick; give brick= as well)";
      }
    }
  }
  std::string given;
  if (v.block) given = "block=" + ShapeToString(*v.block);
  if (v.brick) given += std::string(given.empty() ? "" : ",") + "brick=" + ShapeToString(*v.brick);
  return Status::InvalidArgument(std::string("mount option") + (v.block && v.brick ? "s" : "") +
                                 " \"" + given + "\": " + first_error);
}

// `p` with symlinks resolved as far as it exists and the rest normalized
// (STORE and a log file may not exist yet), without a trailing slash.
std::string ResolvedPath(const std::string& p) {
  boost::system::error_code ec;
  const auto abs = boost::filesystem::absolute(p);
  auto resolved = boost::filesystem::weakly_canonical(abs, ec);
  std::string s = ec ? abs.lexically_normal().string() : resolved.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// True when `inner` is `outer` or lies below it (both resolved).
bool IsWithin(const std::string& inner, const std::string& outer) {
  if (inner == outer || outer == "/") return true;
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
         inner[outer.size()] == '/';
}

// The path as given, and what it resolves to when that differs.
std::string Shown(const std::string& given, const std::string& resolved) {
  return given == resolved ? given : given + " (" + resolved + ")";
}

// Writes the daemon's pid into STORE/.brickfs/lock (opened again after the
// fork: the lock itself was taken before it and stays with this process).
void WriteLockPid(const std::string& store) {
  const std::string lock = store + "/.brickfs/lock";
  auto fd = OpenOwnedFile(lock, O_WRONLY);
  if (!fd.ok()) {
    LogError("cannot write the pid to " + lock + ": " + fd.status().message());
    return;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(*fd, 0) != 0 ||
      ::pwrite(*fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    LogError("cannot write the pid to " + lock + ": " + std::strerror(errno));
  }
  ::close(*fd);
}

// SIGTERM, SIGINT and SIGHUP while slices exist only in memory: noted (and
// logged), not obeyed. Restores the default actions when destroyed.
std::atomic<int> g_soft_signal{0};

class SoftSignalsIgnored {
 public:
  SoftSignalsIgnored() {
    struct sigaction sa {};
    sa.sa_handler = [](int sig) { g_soft_signal.store(sig); };
    sigemptyset(&sa.sa_mask);
    for (int sig : kSignals) ::sigaction(sig, &sa, nullptr);
  }
  ~SoftSignalsIgnored() {
    for (int sig : kSignals) ::signal(sig, SIG_DFL);
  }
  SoftSignalsIgnored(const SoftSignalsIgnored&) = delete;
  SoftSignalsIgnored& operator=(const SoftSignalsIgnored&) = delete;

 private:
  static constexpr int kSignals[] = {SIGTERM, SIGINT, SIGHUP};
};

// Finalizes; while that fails with slices only in memory, keeps them and
// tries again every kFinalizeRetrySeconds, with the error in `state` (may be
// null) for `brickfs umount`. Returns the last finalize's status: OK, or an
// error that left nothing unwritten (the journal then lets the next mount
// recover).
Status FinalizeKeepingData(Volume* vol, const std::string& store, FinalizeStateFile* state) {
  Status fin = vol->Finalize();
  if (fin.ok() || !vol->HasUnwrittenSlabs()) return fin;
  SoftSignalsIgnored signals;
  FinalizeState st;
  st.pid = ::getpid();
  st.state = "retrying";
  st.retry_seconds = kFinalizeRetrySeconds;
  st.since = ::time(nullptr);
  std::string last_error;
  for (uint64_t attempt = 1; !fin.ok() && vol->HasUnwrittenSlabs(); ++attempt) {
    st.error = fin.message();
    st.err = fin.err();
    st.attempts = attempt;
    if (state) {
      Status w = state->Write(st);
      if (!w.ok() && attempt == 1) LogError("cannot record the finalize state: " + w.message());
    }
    if (fin.message() != last_error) {
      last_error = fin.message();
      LogError("cannot finalize " + store + ": " + fin.ToString() +
               "; the slices not yet written stay in memory, retrying every " +
               std::to_string(kFinalizeRetrySeconds) + " s (kill -9 would lose them)");
    }
    for (int tick = 0; tick < kFinalizeRetrySeconds * 10; ++tick) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (int sig = g_soft_signal.exchange(0)) {
        LogWarning(std::string("ignored ") + ::sigabbrev_np(sig) +
                   ": slices not yet written are only in memory; waiting until " + store +
                   " can be finalized (kill -9 would lose them)");
      }
    }
    fin = vol->Finalize();
    if (fin.ok()) {
      LogAlways("finalized " + store + " at attempt " + std::to_string(attempt + 1) + " after " +
                std::to_string(::time(nullptr) - st.since) + " s");
    }
  }
  return fin;
}

uint64_t PeakRssKb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  uint64_t kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) kb = std::strtoull(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kb;
}

}  // namespace

Status ParseMountOptions(const std::string& opts, MountConfig* config) {
  std::stringstream ss(opts);
  std::string opt;
  // Options are comma separated; shapes contain commas, so a bare number
  // after block=/brick=/voxel_size= continues the previous option.
  std::vector<std::string> parts;
  while (std::getline(ss, opt, ',')) {
    if (!parts.empty() && ContinuesTriple(parts.back(), opt)) {
      parts.back() += "," + opt;
    } else {
      parts.push_back(opt);
    }
  }
  for (const std::string& o : parts) {
    if (o.empty()) continue;
    size_t eq = o.find('=');
    std::string key = o.substr(0, eq);
    std::string val = eq == std::string::npos ? "" : o.substr(eq + 1);
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument("mount option \"" + o + "\": " + why);
    };
    auto size_opt = [&](uint64_t* out) -> Status {
      if (!ParseSize(val, out)) return bad("expected a size such as 512M or 4G");
      return Status::Ok();
    };
    auto uint_opt = [&](uint64_t* out) -> Status {
      if (val.empty() || val.find_first_not_of("0123456789") != std::string::npos) return bad("expected a number");
      if (val.size() > 15) return bad("number too large");
      *out = std::stoull(val);
      return Status::Ok();
    };
    if (auto pyr = ParsePyramidOption(key, val, eq == std::string::npos, &config->volume)) {
      if (!pyr->ok()) return bad(pyr->message());
    } else if (key == "first_index") {
      BRICKFS_RETURN_IF_ERROR(uint_opt(&config->volume.first_index));
    } else if (key == "mem") {
      BRICKFS_RETURN_IF_ERROR(size_opt(&config->volume.mem_budget));
      if (config->volume.mem_budget == 0) return bad("must be more than 0");
      // Slab buffers are RAM: a budget beyond it would end in swap or the
      // OOM killer instead of the spool.
      const uint64_t mem = config->volume.mem_budget, phys = PhysicalMemoryBytes();
      if (phys > 0 && mem > phys) {
        return bad(HumanBytes(mem) + " (" + std::to_string(mem) +
                   " bytes) is more than the physical memory of this machine, " +
                   HumanBytes(phys) + " (" + std::to_string(phys) +
                   " bytes); slab buffers must fit in RAM: give at most mem=" +
                   std::to_string(phys >> 20) + "M (the default is a quarter of RAM)");
      }
    } else if (key == "cache") {
      BRICKFS_RETURN_IF_ERROR(size_opt(&config->volume.cache_budget));
    } else if (key == "threads") {
      uint64_t n = 0;
      BRICKFS_RETURN_IF_ERROR(uint_opt(&n));
      if (n == 0 || n > 256) return bad("expected 1..256");
      config->volume.threads = n;
    } else if (key == "block" || key == "brick") {
      Shape3 s;
      if (!ParseShapeOption(val, &s)) return bad("expected Z,Y,X");
      (key == "block" ? config->volume.block : config->volume.brick) = s;
    } else if (key == "zstd_level") {
      size_t used = 0;
      try {
        config->volume.zstd_level = std::stoi(val, &used);
      } catch (...) {
        used = 0;
      }
      if (used == 0 || used != val.size()) return bad("expected a number");
    } else if (key == "ro") {
      config->read_only = true;
      config->asked_rw = false;
    } else if (key == "rw") {
      config->read_only = false;
      config->asked_rw = true;
    } else if (key == "cache_dir" || key == "auth_file") {
      if (val.empty()) return bad(key == "cache_dir" ? "expected a directory" : "expected a file name");
      (key == "cache_dir" ? config->remote.cache_dir : config->remote.auth_file) = val;
      config->remote_options = true;
    } else if (key == "cache_size") {
      BRICKFS_RETURN_IF_ERROR(size_opt(&config->remote.cache_size));
      if (config->remote.cache_size == 0) return bad("must be more than 0");
      config->remote_options = true;
    } else if (key == "offline") {
      config->remote.offline = true;
      config->remote_options = true;
    } else if (key == "log") {
      if (val.empty()) return bad("expected a file name");
      config->log_file = val;
    } else if (key == "nonempty") {
      config->nonempty = true;
    } else if (key == "compact") {
      uint64_t pct = 0;
      BRICKFS_RETURN_IF_ERROR(uint_opt(&pct));
      if (pct > 100) return bad("expected a percentage 0..100 (100: never)");
      config->volume.compact_dead_share = static_cast<double>(pct) / 100.0;
    } else if (key == "nocompact") {
      config->volume.compact_dead_share = 1.0;
    } else if (key == "max_growth") {
      BRICKFS_RETURN_IF_ERROR(uint_opt(&config->volume.max_growth));
      if (config->volume.max_growth == 0) return bad("must be more than 0");
    } else if (key == "nojournal") {
      config->volume.journal = false;
    } else if (key == "journal") {
      config->volume.journal = true;
    } else if (key == "verbose") {
      config->verbose = true;
    } else if (key == "noauto" || key == "auto" || key == "nofail" || key == "user" ||
               key == "users" || key == "nouser" || key == "_netdev" || key == "defaults" ||
               key.rfind("x-", 0) == 0 || key == "dev" || key == "suid" || key == "exec" ||
               key == "nodev" || key == "nosuid" || key == "noexec" || key == "atime" ||
               key == "noatime" || key == "relatime") {
      // fstab/mount(8) options that mean nothing to a FUSE daemon.
    } else {
      config->fuse_opts.push_back(o);
    }
  }
  return CheckShapeOptions(config->volume);
}

uint64_t PhysicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

Status CheckNotSelfMount(const MountConfig& config) {
  const std::string mnt = ResolvedPath(config.mountpoint);
  if (IsRemoteUrl(config.store)) {
    if (!config.remote.cache_dir.empty()) {
      const std::string cache = ResolvedPath(config.remote.cache_dir);
      if (IsWithin(cache, mnt)) {
        return Status::InvalidArgument(
            "cache_dir=" + Shown(config.remote.cache_dir, cache) + " is inside the mount point " +
            Shown(config.mountpoint, mnt) +
            ": the daemon would fill its cache through its own mount and wait on itself for "
            "ever. Put the cache outside " + config.mountpoint);
      }
    }
  }
  // A remote store lies on no local path.
  const std::string store = IsRemoteUrl(config.store) ? "" : ResolvedPath(config.store);
  if (!store.empty() && IsWithin(store, mnt)) {
    return Status::InvalidArgument(
        "the store " + Shown(config.store, store) + " is inside the mount point " +
        Shown(config.mountpoint, mnt) +
        ": once mounted, the daemon would reach its own store through its own mount and wait "
        "on itself for ever. Keep the store outside " + config.mountpoint);
  }
  if (!store.empty() && IsWithin(mnt, store)) {
    return Status::InvalidArgument(
        "the mount point " + Shown(config.mountpoint, mnt) + " is inside the store " +
        Shown(config.store, store) +
        ": the mount would cover part of the store it serves. Use a mount point outside " +
        config.store);
  }
  if (!config.log_file.empty()) {
    const std::string log = ResolvedPath(config.log_file);
    if (IsWithin(log, mnt)) {
      return Status::InvalidArgument(
          "log=" + Shown(config.log_file, log) + " is inside the mount point " +
          Shown(config.mountpoint, mnt) +
          ": the daemon would write its log through its own mount and wait on itself for "
          "ever. Put the log outside " + config.mountpoint);
    }
  }
  return Status::Ok();
}

std::string FuseOptionString(const MountConfig& config) {
  // libfuse splits -o at commas; a store path may contain them (escape with \).
  std::string fsname;
  for (char c : config.store) {
    if (c == ',' || c == '\\') fsname += '\\';
    fsname += c;
  }
  std::string opts = "fsname=" + fsname + ",subtype=brickfs";
  if (config.read_only) opts += ",ro";
  bool shared = false, checked = false;
  for (const auto& o : config.fuse_opts) {
    opts += "," + o;
    shared = shared || o == "allow_other" || o == "allow_root";
    checked = checked || o == "default_permissions";
  }
  // Without it the kernel lets anyone who may enter the mount do anything
  // brickfs accepts, whatever the modes say.
  if (shared && !checked) opts += ",default_permissions";
  return opts;
}

Status CheckMountPoint(const std::string& mountpoint, bool nonempty) {
  struct stat st, parent;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return Status::Busy(mountpoint + " is a dead FUSE mount (its daemon died); run `fusermount3 -u " +
                          mountpoint + "` first");
    }
    return Status::NotFound("mount point " + mountpoint + " does not exist; create it with mkdir -p " + mountpoint);
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument("mount point " + mountpoint + " is not a directory");
  std::string up = mountpoint + "/..";
  if (::stat(up.c_str(), &parent) == 0 && parent.st_dev != st.st_dev) {
    return Status::Busy(mountpoint + " is already a mount point; unmount it first (brickfs umount " +
                        mountpoint + ")");
  }
  if (!nonempty) {
    if (DIR* d = ::opendir(mountpoint.c_str())) {
      bool empty = true;
      while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
          empty = false;
          break;
        }
      }
      ::closedir(d);
      if (!empty) {
        return Status::InvalidArgument("mount point " + mountpoint +
                                       " is not empty; its files would be hidden while mounted. "
                                       "Use an empty directory (or -o nonempty)");
      }
    }
  }
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    return Status::Unsupported("/dev/fuse is missing or not accessible: load the fuse module "
                               "(modprobe fuse) or, in a container, pass --device /dev/fuse");
  }
  return Status::Ok();
}

namespace {

// Settles the configuration of a remote store (read-only, absolute paths:
// the daemon runs from "/") and refuses remote options for a local one.
Status SettleRemote(MountConfig* config) {
  if (!IsRemoteUrl(config->store)) {
    if (config->remote_options) {
      return Status::InvalidArgument(
          "mount options cache_dir=, cache_size=, offline and auth_file= are for a remote "
          "store (an http:// or https:// URL); " + config->store + " is a local directory");
    }
    return Status::Ok();
  }
  BRICKFS_ASSIGN_OR_RETURN(config->store, NormalizeStoreUrl(config->store));
  if (config->asked_rw) {
    return Status::InvalidArgument("mount option \"rw\": a remote store (" + config->store +
                                   ") is mounted read-only");
  }
  config->read_only = true;
  for (std::string* p : {&config->remote.cache_dir, &config->remote.auth_file}) {
    if (!p->empty()) *p = boost::filesystem::absolute(*p).lexically_normal().string();
  }
  return Status::Ok();
}

}  // namespace

int RunMount(const MountConfig& given) {
  MountConfig config = given;
  // A store brickfs did not write (OME-Zarr 0.4/0.5): read-only, its own path
  // (remote options given for it are refused below, as for any local store).
  if (!IsRemoteUrl(config.store) && !config.remote_options && IsForeignStore(config.store)) {
    if (config.asked_rw) {
      std::cerr << "brickfs: mount option \"rw\": " << config.store
                << " is a store brickfs did not write, mounted read-only\n";
      return 2;
    }
    return RunForeignMount(config);
  }
  if (config.verbose) SetLogLevel(LogLevel::kInfo);
  // Decoded blocks come and go by the thousand: keep freed heap memory in the
  // process instead of returning it to the kernel, since faulting fresh pages
  // in costs several times a reuse (DESIGN §11).
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // Before anything is created: a store the mount would cover hangs the
  // daemon on its own mount.
  Status s = SettleRemote(&config);
  if (s.ok()) s = CheckNotSelfMount(config);
  if (s.ok()) s = CheckMountPoint(config.mountpoint, config.nonempty);
  if (!s.ok()) {
    std::cerr << "brickfs: " << s.message() << "\n";
    return 2;
  }
  // A remote store: its metadata is read (revalidated) now, through the cache.
  std::shared_ptr<HttpStorage> http;
  Result<std::unique_ptr<Store>> store = Status::InvalidArgument("no store");
  if (IsRemoteUrl(config.store)) {
    auto opened = HttpStorage::Open(config.store, config.remote);
    if (opened.ok()) {
      http = std::move(*opened);
      store = Store::OpenReadOnly(http);
    } else {
      store = opened.status();
    }
  } else {
    StoreOpenOptions so;
    so.create_if_missing = !config.read_only;
    so.read_only = config.read_only;
    store = Store::Open(config.store, so);
  }
  if (!store.ok()) {
    std::cerr << "brickfs: cannot open store: " << store.status().message() << "\n";
    return 2;
  }
  auto volume = Volume::Open(std::move(*store), config.volume);
  if (!volume.ok()) {
    std::cerr << "brickfs: " << volume.status().message() << "\n";
    return 2;
  }
  Volume* vol = volume->get();
  if (vol->recovery().needed) {
    const RecoveryReport& r = vol->recovery();
    std::cerr << "brickfs: " << config.store << " was not unmounted cleanly; recovered "
              << r.slices_committed << " committed slices, cut " << r.shards_truncated
              << " torn shard tails. Slices to copy again: " << RangesToString(r.lost)
              << " (brickfs info lists every missing slice)\n";
  }
  // The log is opened before mounting, so that a log file brickfs refuses
  // (a symlink, a file of another user) stops the mount with the reason on
  // the terminal. An explicit log= path may go through symlinked directories
  // the user chose: those are resolved here; the file itself is not followed.
  std::string log_file = config.log_file;
  if (log_file.empty() && !config.foreground && http) {
    log_file = http->options().cache_dir + "/daemon.log";
  } else if (log_file.empty() && !config.foreground && !config.read_only) {
    log_file = config.store + "/.brickfs/daemon.log";
  } else if (!log_file.empty()) {
    const size_t slash = log_file.find_last_of('/');
    const std::string dir = ResolvedPath(
        slash == std::string::npos ? "." : log_file.substr(0, std::max<size_t>(slash, 1)));
    log_file = (dir == "/" ? "" : dir) + "/" + log_file.substr(slash + 1);
  }
  if (!log_file.empty()) {
    Status ls = SetLogFile(log_file);
    if (!ls.ok()) {
      std::cerr << "brickfs: cannot use the log file: " << ls.message() << "\n";
      return 2;
    }
  }
  BrickFs fs(vol, ::time(nullptr));

  FuseSession session;
  if (!session.Mount(config, &kOps, sizeof kOps, &fs)) return 2;
  // The fork does not keep threads: the HTTP client's starts again after it.
  if (http) http->Suspend();
  if (!session.Daemonize(config.foreground)) return 2;
  std::unique_ptr<FinalizeStateFile> finalize_state;
  if (!config.read_only) {  // the lock names the daemon: this process, after the fork
    WriteLockPid(config.store);
    FinalizeState st;
    st.pid = ::getpid();
    auto created = FinalizeStateFile::Create(config.store, st);
    if (created.ok()) {
      finalize_state = std::move(*created);
    } else {
      LogError("brickfs umount will not see finalize errors: " + created.status().message());
    }
  }
  LogAlways("mounted " + config.store + " on " + config.mountpoint);
  if (vol->recovery().needed) {
    LogAlways("recovered after an unclean shutdown: " +
              std::to_string(vol->recovery().slices_committed) + " committed slices kept, " +
              std::to_string(vol->recovery().shards_truncated) + " torn shard tails cut; lost: " +
              RangesToString(vol->recovery().lost));
  }
  vol->Start();
  session.Loop();
  fs.DropStaged();
  LogInfo("unmounted; finalizing " + config.store);
  Status fin = FinalizeKeepingData(vol, config.store, finalize_state.get());
  session.Destroy();
  LogAlways(std::string(fin.ok() ? "finalized" : "FINALIZE FAILED") + " " + config.store +
            " peak_rss_kb=" + std::to_string(PeakRssKb()) + " status=" + vol->StatusJson(false));
  if (!fin.ok()) {
    LogError("finalize failed: " + fin.ToString());
    if (finalize_state) {
      FinalizeState st;
      st.pid = ::getpid();
      st.state = "failed";
      st.error = fin.message();
      st.err = fin.err();
      st.attempts = 1;
      st.since = ::time(nullptr);
      (void)finalize_state->Write(st).ok();
    }
    std::cerr << "brickfs: finalize failed: " << fin.ToString() << "\n";
    return 1;
  }
  if (finalize_state) {
    Status r = finalize_state->Remove();
    if (!r.ok()) LogError(r.message());
  }
  return 0;
}

}  // namespace brickfs
