#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/file_util.h"
#include "store/local_storage.h"

namespace brickfs {
namespace {

std::string StoreName(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".zarr") == 0) {
    base.resize(base.size() - 5);
  }
  return base;
}

Status WriteGroupAndArray(const std::string& path, const VolumeMeta& meta) {
  // The array directories are made without following links: one planted by
  // whoever owns the store must not send our writes elsewhere.
  BRICKFS_RETURN_IF_ERROR(MakeDirsBeneath(path, "0"));
  BRICKFS_RETURN_IF_ERROR(WriteFileAtomic(path + "/0/zarr.json", meta.ArrayJson()));
  // Pyramid levels: their arrays first, so the group never lists a level
  // whose array document is missing.
  for (int level = 1; level < meta.num_levels; ++level) {
    const std::string dir = path + "/" + std::to_string(level);
    BRICKFS_RETURN_IF_ERROR(MakeDirsBeneath(path, std::to_string(level)));
    BRICKFS_RETURN_IF_ERROR(WriteFileAtomic(dir + "/zarr.json", meta.LevelMeta(level).ArrayJson()));
  }
  return WriteFileAtomic(path + "/zarr.json", meta.GroupJson(StoreName(path)));
}

}  // namespace

Store::~Store() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status Store::Create(const std::string& path, const VolumeMeta& meta) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    return Status::InvalidArgument(path + " already exists");
  }
  std::string bad = meta.geo.Validate();
  if (!bad.empty()) return Status::InvalidArgument(bad);
  BRICKFS_RETURN_IF_ERROR(MakeDirs(path + "/.brickfs"));
  // A store just created holds nothing and is consistent: final.
  VolumeMeta m = meta;
  m.finalized = true;
  m.session = 0;
  return WriteGroupAndArray(path, m);
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path,
                                           const StoreOpenOptions& options) {
  std::unique_ptr<Store> store(new Store());
  store->path_ = path;
  store->read_only_ = options.read_only;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::IOError("stat " + path, errno);
    if (!options.create_if_missing) return Status::NotFound(path + " does not exist");
    if (options.read_only) return Status::NotFound(path + " does not exist (and the mount is read-only)");
    BRICKFS_RETURN_IF_ERROR(MakeDirs(path + "/.brickfs"));
    VolumeMeta empty;
    BRICKFS_RETURN_IF_ERROR(WriteFileAtomic(path + "/zarr.json", empty.GroupJson(StoreName(path))));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(path + " is not a directory");
  }

  store->storage_ = std::make_shared<LocalStorage>(path, options.read_only);
  BRICKFS_RETURN_IF_ERROR(store->ReadMetadata(options));

  if (options.take_lock) {
    std::string dir = path + "/.brickfs";
    if (!options.read_only) {
      // A writer keeps its private state there: a real directory of its own,
      // so that no other user can have planted files (or links) in it.
      BRICKFS_RETURN_IF_ERROR(MakeDirs(dir));
      BRICKFS_RETURN_IF_ERROR(CheckOwnedDir(dir));
    }
    std::string lock_path = dir + "/lock";
    int fd = -1;
    auto opened = options.read_only ? OpenStoreFile(lock_path, O_RDONLY)
                                    : OpenOwnedFile(lock_path, O_RDWR | O_CREAT, 0644);
    if (opened.ok()) {
      fd = *opened;
    } else if (!(options.read_only && opened.status().err() == ENOENT)) {
      return opened.status();
    }
    if (fd >= 0) {
      if (::flock(fd, (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int err = errno;
        char pid[32] = {0};
        ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
        ::close(fd);
        if (err == EWOULDBLOCK) {
          std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : "?";
          while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
          return Status::Busy(path + " is in use by another brickfs daemon (pid " + holder +
                              "); unmount it first");
        }
        return Status::IOError("lock " + lock_path, err);
      }
      if (!options.read_only) {
        std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
          int err = errno;
          ::close(fd);
          return Status::IOError("write " + lock_path, err);
        }
      }
      store->lock_fd_ = fd;
    }
  }
  return store;
}

Status Store::ReadMetadata(const StoreOpenOptions& options) {
  // The group: what makes a directory a brickfs store. When it is missing
  // or not brickfs's but array 0 is intact, another tool rewrote (or lost)
  // it, and fsck can rebuild it from the arrays' metadata.
  Storage& storage = *storage_;
  const std::string path = path_, group_path = storage.Locate("zarr.json");
  const std::string array_path = storage.Locate("0/zarr.json");
  std::string group_problem;  // "": a brickfs group
  Status not_a_store;         // the error when there is no array 0 either
  auto group = storage.Get("zarr.json", 1 << 20);
  if (!group.ok()) {
    if (group.status().code() != Status::Code::kNotFound) return group.status();
    group_problem = "is missing";
    not_a_store = Status::InvalidArgument(path + " is not a Zarr store (no zarr.json)");
  } else {
    Status zarr = CheckGroupJson(*group, group_path);
    group_problem = BrickfsGroupProblem(*group);
    if (!zarr.ok()) {
      not_a_store = zarr;
    } else if (!group_problem.empty()) {
      not_a_store = Status::InvalidArgument(path + " is a Zarr group but not a brickfs store: its zarr.json " +
                                            group_problem + " and it has no array 0/zarr.json");
    }
  }

  auto array = storage.Get("0/zarr.json", 1 << 20);
  if (array.ok()) {
    auto meta = VolumeMeta::FromArrayJson(*array, array_path);
    if (!meta.ok()) return group_problem.empty() ? meta.status() : not_a_store;
    meta_ = std::move(*meta);
  } else if (array.status().code() != Status::Code::kNotFound) {
    return array.status();
  }
  if (!group_problem.empty()) {
    if (!meta_) return not_a_store;
    if (!options.allow_bad_group) {
      return Status::Corruption(group_path + " " + group_problem + ", but " + array_path +
                                " is a brickfs array: another tool rewrote (or removed) the "
                                "group document; run `brickfs fsck --repair " + path +
                                "` to rebuild it from the arrays' metadata");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Store>> Store::OpenReadOnly(std::shared_ptr<Storage> storage) {
  std::unique_ptr<Store> store(new Store());
  store->path_ = storage->Locate("");
  store->read_only_ = true;
  store->local_ = false;
  store->storage_ = std::move(storage);
  StoreOpenOptions options;
  options.read_only = true;
  BRICKFS_RETURN_IF_ERROR(store->ReadMetadata(options));
  return store;
}

Result<std::unique_ptr<Store>> Store::OpenForMaintenance(const std::string& path,
                                                         bool read_only, bool allow_bad_group) {
  StoreOpenOptions so;
  so.read_only = read_only;
  so.take_lock = true;
  so.allow_bad_group = allow_bad_group;
  auto opened = Open(path, so);
  if (!opened.ok() && opened.status().code() == Status::Code::kBusy) {
    // Open's message speaks to a second daemon ("another"); say it once, for a tool.
    auto pid = ReadFileToString(path + "/.brickfs/lock", 64);
    std::string holder = pid.ok() && !pid->empty() ? *pid : "?";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return Status::Busy(path + " is in use by a brickfs daemon (pid " + holder + "); unmount it first");
  }
  return opened;
}

Status Store::WriteMeta(const VolumeMeta& meta) {
  if (read_only_) return Status::Unsupported("store is read-only");
  std::lock_guard<std::mutex> lock(write_mu_);
  return WriteGroupAndArray(path_, meta);
}

}  // namespace brickfs
