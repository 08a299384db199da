#include "store/local_storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <cerrno>
#include <cstring>

#include "common/file_util.h"
#include "common/scope_guard.h"
#include "common/thread_pool.h"

namespace brickfs {
namespace {

std::string Parent(const std::string& key) {
  const size_t slash = key.find_last_of('/');
  return slash == std::string::npos ? "" : key.substr(0, slash);
}

std::string Base(const std::string& key) { return key.substr(key.find_last_of('/') + 1); }

Status BadKey(std::string_view key, const std::string& why) {
  return Status::InvalidArgument("storage key '" + std::string(key) + "': " + why);
}

// Errors of the walk to a missing file or directory become NotFound.
Status AsNotFound(const Status& s, const std::string& path) {
  if (s.err() == ENOENT || s.err() == ENOTDIR) return Status::NotFound(path + " does not exist");
  return s;
}

}  // namespace

LocalStorage::LocalStorage(std::string root, bool read_only)
    : root_(std::move(root)), read_only_(read_only) {}

std::string LocalStorage::Locate(std::string_view key) const {
  return key.empty() ? root_ : root_ + "/" + std::string(key);
}

Result<int> LocalStorage::OpenRead(std::string_view key) const {
  if (std::string why = KeyProblem(key); !why.empty()) return BadKey(key, why);
  auto fd = OpenFileBeneath(root_, std::string(key), O_RDONLY);
  if (!fd.ok()) return AsNotFound(fd.status(), Locate(key));
  return fd;
}

Result<std::string> LocalStorage::Get(std::string_view key, uint64_t max_bytes) {
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenRead(key));
  ScopeGuard close_fd([fd] { ::close(fd); });
  const std::string path = Locate(key);
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("stat " + path, errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return Status::InvalidArgument(path + " is " + std::to_string(size) +
                                   " bytes, more than the " + std::to_string(max_bytes) +
                                   " allowed");
  }
  std::string out(size, '\0');
  BRICKFS_RETURN_IF_ERROR(PreadAll(fd, out.data(), size, 0, path));
  return out;
}

Result<uint64_t> LocalStorage::Size(std::string_view key) {
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenRead(key));
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("stat " + Locate(key), errno);
  return static_cast<uint64_t>(st.st_size);
}

Result<Storage::Tail> LocalStorage::ReadTail(std::string_view key, uint64_t n, uint64_t cut_at) {
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenRead(key));
  ScopeGuard close_fd([fd] { ::close(fd); });
  const std::string path = Locate(key);
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("stat " + path, errno);
  Tail t;
  t.size = std::min(static_cast<uint64_t>(st.st_size), cut_at);
  const uint64_t len = std::min(n, t.size);
  t.bytes.resize(len);
  BRICKFS_RETURN_IF_ERROR(PreadAll(fd, t.bytes.data(), len, t.size - len, path));
  return t;
}

Status LocalStorage::ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                                const RangeVisitor& visit) {
  if (ranges.empty()) return Status::Ok();
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenRead(key));
  ScopeGuard close_fd([fd] { ::close(fd); });
  const std::string path = Locate(key);
  // Exactly the ranges asked for: the kernel's readahead (up to the device's
  // read_ahead_kb past each) would read neighbouring blocks nobody wants.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  // Reused by this thread's reads: a fresh buffer per range would fault in
  // fresh pages every time.
  thread_local std::string bytes;
  ScopeGuard trim([] {
    if (bytes.capacity() > (8u << 20)) std::string().swap(bytes);
  });
  for (size_t i = 0; i < ranges.size(); ++i) {
    bytes.resize(ranges[i].length);
    BRICKFS_RETURN_IF_ERROR(PreadAll(fd, bytes.data(), bytes.size(), ranges[i].offset, path));
    BRICKFS_RETURN_IF_ERROR(visit(i, bytes));
  }
  return Status::Ok();
}

void LocalStorage::Prefetch(std::string_view key, const std::vector<Range>& ranges) {
  if (ranges.empty()) return;
  auto fd = OpenRead(key);
  if (!fd.ok()) return;
  for (const Range& r : ranges) {
    ::posix_fadvise(*fd, static_cast<off_t>(r.offset), static_cast<off_t>(r.length),
                    POSIX_FADV_WILLNEED);
  }
  ::close(*fd);
}

Result<std::vector<std::string>> LocalStorage::List(std::string_view prefix) {
  if (!prefix.empty()) {
    if (std::string why = KeyProblem(prefix); !why.empty()) return BadKey(prefix, why);
  }
  std::vector<std::string> out;
  auto dir_fd = OpenDirBeneath(root_, std::string(prefix));
  if (!dir_fd.ok()) {
    if (dir_fd.status().err() == ENOENT || dir_fd.status().err() == ENOTDIR) return out;
    return dir_fd.status();
  }
  DIR* d = ::fdopendir(*dir_fd);
  if (!d) {
    const int err = errno;
    ::close(*dir_fd);
    return Status::IOError("open directory " + Locate(prefix), err);
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      out.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<uint64_t> LocalStorage::Identity(std::string_view key) {
  if (std::string why = KeyProblem(key); !why.empty()) return BadKey(key, why);
  const std::string k(key);
  auto dir_fd = OpenDirBeneath(root_, Parent(k));
  if (!dir_fd.ok()) {
    if (dir_fd.status().err() == ENOENT || dir_fd.status().err() == ENOTDIR) return uint64_t{0};
    return dir_fd.status();
  }
  struct stat st;
  const int rc = ::fstatat(*dir_fd, Base(k).c_str(), &st, AT_SYMLINK_NOFOLLOW);
  const int err = errno;
  ::close(*dir_fd);
  if (rc != 0) {
    if (err == ENOENT) return uint64_t{0};
    return Status::IOError("stat " + Locate(key), err);
  }
  return S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_ino) : uint64_t{0};
}

Status LocalStorage::CheckWritable(std::string_view key) const {
  if (read_only_) return Status::Unsupported(Locate(key) + ": the store is opened read-only");
  if (std::string why = KeyProblem(key); !why.empty()) return BadKey(key, why);
  return Status::Ok();
}

Status LocalStorage::MakeParents(const std::string& key) {
  const std::string parent = Parent(key);
  if (parent.empty()) return Status::Ok();
  {
    std::lock_guard<std::mutex> g(mu_);
    if (made_dirs_.count(parent)) return Status::Ok();
  }
  // The root may not exist yet; below it no directory is created or entered
  // through a symlink.
  BRICKFS_RETURN_IF_ERROR(MakeDirs(root_));
  BRICKFS_RETURN_IF_ERROR(MakeDirsBeneath(root_, parent));
  std::lock_guard<std::mutex> g(mu_);
  made_dirs_.insert(parent);
  unsynced_dirs_.insert(parent);
  return Status::Ok();
}

Result<int> LocalStorage::WithParents(const std::string& key,
                                      const std::function<Result<int>()>& open) {
  BRICKFS_RETURN_IF_ERROR(MakeParents(key));
  Result<int> opened = open();
  if (!opened.ok() && opened.status().err() == ENOENT) {
    // A directory it made was removed behind its back: make it again.
    {
      std::lock_guard<std::mutex> g(mu_);
      made_dirs_.erase(Parent(key));
    }
    BRICKFS_RETURN_IF_ERROR(MakeParents(key));
    opened = open();
  }
  return opened;
}

Status LocalStorage::WriteAt(std::string_view key, uint64_t offset, std::string_view bytes) {
  BRICKFS_RETURN_IF_ERROR(CheckWritable(key));
  const std::string k(key);
  BRICKFS_ASSIGN_OR_RETURN(
      const int fd, WithParents(k, [&] { return OpenFileBeneath(root_, k, O_WRONLY | O_CREAT); }));
  const std::string path = Locate(key);
  Status s = PwriteAll(fd, bytes.data(), bytes.size(), offset, path);
  if (!s.ok() && ::ftruncate(fd, static_cast<off_t>(offset)) != 0) {
    s = s.WithContext("and truncating back failed too");
  }
  ::close(fd);
  return s;
}

Status LocalStorage::Truncate(std::string_view key, uint64_t length) {
  BRICKFS_RETURN_IF_ERROR(CheckWritable(key));
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenFileBeneath(root_, std::string(key), O_WRONLY));
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("stat " + Locate(key), errno);
  if (static_cast<uint64_t>(st.st_size) <= length) return Status::Ok();
  if (::ftruncate(fd, static_cast<off_t>(length)) != 0) {
    return Status::IOError("truncate " + Locate(key) + " to " + std::to_string(length), errno);
  }
  // Durable before the caller forgets why it cut (recovery restarts the
  // journal next).
  if (::fdatasync(fd) != 0) return Status::IOError("fsync " + Locate(key), errno);
  return Status::Ok();
}

Status LocalStorage::Replace(std::string_view key, std::string_view bytes,
                             const BeforeVisible& before_visible) {
  BRICKFS_RETURN_IF_ERROR(CheckWritable(key));
  const std::string k(key), path = Locate(key);
  const std::string name = Base(k), tmp_name = name + ".tmp", tmp = path + ".tmp";
  // Everything below happens in the object's directory, opened without
  // following links: a link planted in the store sends nothing elsewhere.
  BRICKFS_ASSIGN_OR_RETURN(const int dir_fd,
                           WithParents(k, [&] { return OpenDirBeneath(root_, Parent(k)); }));
  ScopeGuard close_dir([dir_fd] { ::close(dir_fd); });
  // A temporary file left by a crash, or planted: remove the name, create
  // afresh (O_EXCL).
  if (::unlinkat(dir_fd, tmp_name.c_str(), 0) != 0 && errno != ENOENT) {
    return Status::IOError("remove " + tmp, errno);
  }
  BRICKFS_ASSIGN_OR_RETURN(const int fd,
                           OpenFileAt(dir_fd, tmp_name, tmp, O_WRONLY | O_CREAT | O_EXCL));
  Status s = PwriteAll(fd, bytes.data(), bytes.size(), 0, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::IOError("fsync " + tmp, errno);
  // The new file's inode: a replacement whose rename never happened is told
  // apart by it (the journal records it).
  uint64_t ino = 0;
  struct stat st;
  if (s.ok() && ::fstat(fd, &st) != 0) s = Status::IOError("stat " + tmp, errno);
  if (s.ok()) ino = static_cast<uint64_t>(st.st_ino);
  ::close(fd);
  // Directories made for it are durable before anything (the journal)
  // refers to the object.
  if (s.ok()) s = SyncNewDirs();
  if (s.ok() && before_visible) s = before_visible(ino);
  if (s.ok() && ::renameat(dir_fd, tmp_name.c_str(), dir_fd, name.c_str()) != 0) {
    s = Status::IOError("rename " + tmp, errno);
  }
  if (!s.ok()) {
    ::unlinkat(dir_fd, tmp_name.c_str(), 0);
    return s;
  }
  if (::fsync(dir_fd) != 0) {
    return Status::IOError("fsync the directory of " + path + " (the new object is in place)",
                           errno);
  }
  return Status::Ok();
}

Status LocalStorage::Remove(std::string_view key) {
  BRICKFS_RETURN_IF_ERROR(CheckWritable(key));
  const std::string k(key), path = Locate(key);
  auto dir_fd = OpenDirBeneath(root_, Parent(k));
  if (!dir_fd.ok()) {
    if (dir_fd.status().err() == ENOENT) return Status::Ok();
    return dir_fd.status();
  }
  ScopeGuard close_dir([fd = *dir_fd] { ::close(fd); });
  if (::unlinkat(*dir_fd, Base(k).c_str(), 0) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::IOError("remove " + path, errno);
  }
  if (::fsync(*dir_fd) != 0) return Status::IOError("fsync the directory of " + path, errno);
  return Status::Ok();
}

Status LocalStorage::Sync(const std::vector<std::string>& keys, ThreadPool* io) {
  std::vector<Status> errs(keys.size());
  auto sync_one = [&](size_t i) {
    if (std::string why = KeyProblem(keys[i]); !why.empty()) {
      errs[i] = BadKey(keys[i], why);
      return;
    }
    auto opened = OpenFileBeneath(root_, keys[i], O_RDONLY);
    if (!opened.ok()) {
      errs[i] = opened.status();
      return;
    }
    const int rc = ::fdatasync(*opened);
    const int err = errno;
    ::close(*opened);
    if (rc != 0) errs[i] = Status::IOError("fsync " + Locate(keys[i]), err);
  };
  if (io && keys.size() > 1) {
    io->ParallelFor(keys.size(), sync_one);
  } else {
    for (size_t i = 0; i < keys.size(); ++i) sync_one(i);
  }
  for (const Status& s : errs) {
    if (!s.ok()) return s;  // the new directories stay pending for the next call
  }
  return SyncNewDirs();
}

Status LocalStorage::SyncNewDirs() {
  std::set<std::string> dirs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirs.swap(unsynced_dirs_);
  }
  if (dirs.empty()) return Status::Ok();
  // Each new directory and its parents up to the root, and the root's
  // parent (the root itself may be new).
  std::set<std::string> all;
  for (std::string d : dirs) {
    while (!d.empty()) {
      all.insert(root_ + "/" + d);
      d = Parent(d);
    }
  }
  all.insert(root_);
  const size_t slash = root_.find_last_of('/');
  if (slash != std::string::npos && slash > 0) all.insert(root_.substr(0, slash));
  for (const auto& d : all) {
    Status s = SyncDir(d);
    if (!s.ok() && !(s.code() == Status::Code::kIOError && s.err() == ENOENT)) {
      std::lock_guard<std::mutex> lock(mu_);
      unsynced_dirs_.insert(dirs.begin(), dirs.end());  // all again, next time
      return s;
    }
  }
  return Status::Ok();
}

namespace {

// Removes `name` in `dir_fd` and, for a directory, everything below it,
// through descriptors only (a link is removed, never followed).
Status RemoveTreeAt(int dir_fd, const std::string& name, const std::string& path, int depth) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::IOError("stat " + path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    if (depth > 64) return Status::InvalidArgument(path + ": directories nested too deep");
    const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Status::IOError("open directory " + path, errno);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      const int err = errno;
      ::close(fd);
      return Status::IOError("open directory " + path, err);
    }
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    Status s;
    for (const std::string& n : names) {
      s = RemoveTreeAt(::dirfd(d), n, path + "/" + n, depth + 1);
      if (!s.ok()) break;
    }
    ::closedir(d);
    BRICKFS_RETURN_IF_ERROR(s);
    if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return Status::IOError("remove " + path, errno);
    }
    return Status::Ok();
  }
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return Status::IOError("remove " + path, errno);
  }
  return Status::Ok();
}

}  // namespace

Status LocalStorage::RemoveAll(std::string_view prefix) {
  BRICKFS_RETURN_IF_ERROR(CheckWritable(prefix));
  const std::string k(prefix);
  {
    // Forgotten first: a directory made again after this is made for real.
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* set : {&made_dirs_, &unsynced_dirs_}) {
      for (auto it = set->begin(); it != set->end();) {
        if (*it == k || it->rfind(k + "/", 0) == 0) {
          it = set->erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  auto dir_fd = OpenDirBeneath(root_, Parent(k));
  if (!dir_fd.ok()) {
    if (dir_fd.status().err() == ENOENT) return Status::Ok();
    return dir_fd.status();
  }
  ScopeGuard close_dir([fd = *dir_fd] { ::close(fd); });
  BRICKFS_RETURN_IF_ERROR(RemoveTreeAt(*dir_fd, Base(k), Locate(prefix), 0));
  if (::fsync(*dir_fd) != 0) return Status::IOError("fsync the directory of " + Locate(prefix), errno);
  return Status::Ok();
}

}  // namespace brickfs
