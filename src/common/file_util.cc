#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/scope_guard.h"

namespace brickfs {
namespace {

// Reads what remains of `fd` (see ReadFileToString).
Result<std::string> ReadFd(int fd, const std::string& path, uint64_t max_bytes) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("stat " + path, errno);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::InvalidArgument(path + " is " + std::to_string(st.st_size) +
                                   " bytes, more than the " + std::to_string(max_bytes) +
                                   " allowed");
  }
  // Read to EOF, not to st_size: virtual files (a FUSE status page) may
  // grow between stat and read.
  std::string data(static_cast<size_t>(st.st_size) + 4096, '\0');
  size_t got = 0;
  for (;;) {
    if (got == data.size()) {
      if (data.size() > max_bytes) {
        return Status::InvalidArgument(path + " grew past the " + std::to_string(max_bytes) +
                                       " bytes allowed");
      }
      data.resize(data.size() * 2);
    }
    ssize_t r = ::read(fd, data.data() + got, data.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("read " + path, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  data.resize(got);
  return data;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseName(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

Status SymlinkRefused(const std::string& path) {
  return Status::InvalidArgument(path + " is a symbolic link; brickfs does not follow links "
                                 "inside a store (someone may have planted it): remove it");
}

// Why `name` in `dir_fd` (`path`) could not be opened as a directory.
Status DirRefused(int dir_fd, const char* name, const std::string& path, int err) {
  struct stat st;
  if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) return SymlinkRefused(path);
    if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(path + " is not a directory");
  }
  return Status::IOError("open directory " + path, err);
}

// Opens the directory `path` itself without following a symlink at its end.
Result<int> OpenDirNoFollow(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return DirRefused(AT_FDCWD, path.c_str(), path, errno);
  return fd;
}

// The checks every safe open makes (see OpenOwnedFile).
Result<int> OpenChecked(int dir_fd, const std::string& name, const std::string& path, int flags,
                        mode_t mode, bool require_owner) {
  // O_NONBLOCK: opening a FIFO must not wait for a peer; cleared below.
  const int open_flags = (flags & ~O_TRUNC) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  int fd = ::openat(dir_fd, name.c_str(), open_flags, mode);
  if (fd < 0) {
    const int err = errno;
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(st.st_mode)) return SymlinkRefused(path);
      if (!S_ISREG(st.st_mode)) {
        return Status::InvalidArgument(path + " is not a regular file (a FIFO, device or "
                                       "directory); brickfs refuses to use it");
      }
    }
    return Status::IOError("open " + path, err);
  }
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + " is not a regular file (a FIFO, device or "
                                   "directory); brickfs refuses to use it");
  }
  if (require_owner && st.st_uid != ::geteuid()) {
    return Status::InvalidArgument(path + " is owned by uid " + std::to_string(st.st_uid) +
                                   ", not by uid " + std::to_string(::geteuid()) +
                                   " that runs brickfs; refusing to use it (mount the store as "
                                   "its owner, or remove the file)");
  }
  const bool writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  if (writing && st.st_nlink > 1) {
    return Status::InvalidArgument(path + " has " + std::to_string(st.st_nlink) +
                                   " hard links; writing it would change the other names too: "
                                   "refusing (copy it to a file of its own)");
  }
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    return Status::IOError("fcntl " + path, errno);
  }
  if ((flags & O_TRUNC) && ::ftruncate(fd, 0) != 0) {
    return Status::IOError("truncate " + path, errno);
  }
  close_fd.Dismiss();
  return fd;
}

// Opens the file `path` in its directory, which must not be a symlink.
Result<int> OpenInOwnDir(const std::string& path, int flags, mode_t mode, bool require_owner) {
  BRICKFS_ASSIGN_OR_RETURN(int dir_fd, OpenDirNoFollow(DirName(path)));
  ScopeGuard close_dir([dir_fd] { ::close(dir_fd); });
  return OpenChecked(dir_fd, BaseName(path), path, flags, mode, require_owner);
}

// The components of a relative path ("a/b/c" -> a, b, c; empty ones skipped).
std::vector<std::string> Components(const std::string& rel) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= rel.size()) {
    size_t end = rel.find('/', begin);
    if (end == std::string::npos) end = rel.size();
    if (end > begin) out.push_back(rel.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

// Walks root/rel one directory at a time (never through a symlink), making
// the missing ones when `create`. Returns the last directory's descriptor.
Result<int> WalkDirs(const std::string& root, const std::string& rel, bool create) {
  BRICKFS_ASSIGN_OR_RETURN(int fd, OpenDirNoFollow(root));
  std::string path = root;
  for (const std::string& c : Components(rel)) {
    if (c == "." || c == "..") {
      ::close(fd);
      return Status::InvalidArgument(root + "/" + rel + ": '.' and '..' are not allowed");
    }
    path += "/" + c;
    if (create && ::mkdirat(fd, c.c_str(), 0755) != 0 && errno != EEXIST) {
      const int err = errno;
      ::close(fd);
      return Status::IOError("mkdir " + path, err);
    }
    int next = ::openat(fd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      Status s = DirRefused(fd, c.c_str(), path, errno);
      ::close(fd);
      return s;
    }
    ::close(fd);
    fd = next;
  }
  return fd;
}

}  // namespace

Result<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::IOError("open " + path, errno);
  }
  ScopeGuard close_fd([fd] { ::close(fd); });
  return ReadFd(fd, path, max_bytes);
}

Result<std::string> ReadStoreFileToString(const std::string& path, uint64_t max_bytes) {
  auto fd = OpenStoreFile(path, O_RDONLY);
  if (!fd.ok()) {
    if (fd.status().err() == ENOENT) return Status::NotFound(path + " does not exist");
    return fd.status();
  }
  ScopeGuard close_fd([fd = *fd] { ::close(fd); });
  return ReadFd(*fd, path, max_bytes);
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open directory " + dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("fsync directory " + dir, err);
  return Status::Ok();
}

Status PwriteAll(int fd, const void* buf, size_t n, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("write " + path + " at offset " + std::to_string(offset), errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status PreadAll(int fd, void* buf, size_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("read " + path + " at offset " + std::to_string(offset), errno);
    }
    if (r == 0) {
      return Status::Corruption(path + ": unexpected end of file at offset " +
                                std::to_string(offset) + " (" + std::to_string(n) +
                                " more bytes expected)");
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const std::string& data) {
  const std::string dir = DirName(path), tmp = path + ".tmp", tmp_name = BaseName(tmp);
  auto opened_dir = OpenDirNoFollow(dir);
  if (!opened_dir.ok()) {
    if (opened_dir.status().code() == Status::Code::kIOError) {
      return Status::IOError("create " + tmp + " (its directory)", opened_dir.status().err());
    }
    return opened_dir.status();
  }
  const int dir_fd = *opened_dir;
  ScopeGuard close_dir([dir_fd] { ::close(dir_fd); });
  // A temporary file left by a crash, or planted (a link to a file elsewhere):
  // unlinkat removes the name only, and O_EXCL then makes a fresh file.
  if (::unlinkat(dir_fd, tmp_name.c_str(), 0) != 0 && errno != ENOENT) {
    return Status::IOError("remove " + tmp, errno);
  }
  int fd = ::openat(dir_fd, tmp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0644);
  if (fd < 0) return Status::IOError("create " + tmp, errno);
  Status s = PwriteAll(fd, data.data(), data.size(), 0, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::IOError("fsync " + tmp, errno);
  ::close(fd);
  if (s.ok() && ::renameat(dir_fd, tmp_name.c_str(), dir_fd, BaseName(path).c_str()) != 0) {
    s = Status::IOError("rename " + tmp + " to " + path, errno);
  }
  if (!s.ok()) {
    ::unlinkat(dir_fd, tmp_name.c_str(), 0);
    return s;
  }
  if (::fsync(dir_fd) != 0) return Status::IOError("fsync directory " + dir, errno);
  return Status::Ok();
}

Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::Ok();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return Status::InvalidArgument(path + " exists and is not a directory");
  }
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    BRICKFS_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash)));
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::IOError("mkdir " + path, errno);
  }
  return Status::Ok();
}


Result<int> OpenOwnedFile(const std::string& path, int flags, mode_t mode) {
  return OpenInOwnDir(path, flags, mode, /*require_owner=*/true);
}

Result<int> OpenStoreFile(const std::string& path, int flags, mode_t mode) {
  return OpenInOwnDir(path, flags, mode, /*require_owner=*/false);
}

Result<int> OpenDirBeneath(const std::string& root, const std::string& rel) {
  return WalkDirs(root, rel, /*create=*/false);
}

Result<int> OpenFileAt(int dir_fd, const std::string& name, const std::string& path, int flags,
                       mode_t mode) {
  return OpenChecked(dir_fd, name, path, flags, mode, /*require_owner=*/false);
}

Result<int> OpenFileBeneath(const std::string& root, const std::string& rel, int flags,
                            mode_t mode) {
  const size_t slash = rel.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : rel.substr(0, slash);
  BRICKFS_ASSIGN_OR_RETURN(int dir_fd, OpenDirBeneath(root, dir));
  ScopeGuard close_dir([dir_fd] { ::close(dir_fd); });
  return OpenFileAt(dir_fd, rel.substr(slash + 1), root + "/" + rel, flags, mode);
}

Status MakeDirsBeneath(const std::string& root, const std::string& rel) {
  BRICKFS_ASSIGN_OR_RETURN(int fd, WalkDirs(root, rel, /*create=*/true));
  ::close(fd);
  return Status::Ok();
}

Status CheckOwnedDir(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Status::IOError("stat " + path, errno);
  if (S_ISLNK(st.st_mode)) return SymlinkRefused(path);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(path + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    return Status::InvalidArgument(path + " is owned by uid " + std::to_string(st.st_uid) +
                                   ", not by uid " + std::to_string(::geteuid()) +
                                   " that runs brickfs; refusing to keep brickfs's private "
                                   "state there (mount the store as its owner, or read it "
                                   "with -o ro)");
  }
  return Status::Ok();
}

}  // namespace brickfs
