#include "foreign/dir_storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace brickfs {

namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Reads exactly n bytes at off, or says why not.
Status PreadAll(int fd, char* out, uint64_t n, uint64_t off, const std::string& where) {
  uint64_t done = 0;
  while (done < n) {
    const ssize_t r = pread(fd, out + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(where + ": read at offset " + std::to_string(off + done), errno);
    }
    if (r == 0) {
      return Status::Corruption(where + ": ends at " + std::to_string(off + done) +
                                " while reading " + std::to_string(n) + " bytes at " +
                                std::to_string(off));
    }
    done += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

}  // namespace

namespace {
std::string WithoutTrailingSlash(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}
}  // namespace

ReadOnlyDirStorage::ReadOnlyDirStorage(std::string root)
    : root_(WithoutTrailingSlash(std::move(root))) {}

std::string ReadOnlyDirStorage::Locate(std::string_view key) const {
  return key.empty() ? root_ : root_ + "/" + std::string(key);
}

Result<int> ReadOnlyDirStorage::Open(std::string_view key, uint64_t* size) const {
  if (const std::string bad = KeyProblem(key); !bad.empty()) {
    return Status::InvalidArgument(root_ + ": bad key \"" + std::string(key) + "\": " + bad);
  }
  const std::string path = Locate(key);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound(path + ": does not exist");
    return Status::IOError(path + ": open", errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    close(fd);
    return Status::IOError(path + ": fstat", e);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    // A directory where a chunk would be (nested keys): not an object.
    if (S_ISDIR(st.st_mode)) return Status::NotFound(path + ": is a directory, not a file");
    return Status::InvalidArgument(path + ": not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

Result<std::string> ReadOnlyDirStorage::Get(std::string_view key, uint64_t max_bytes) {
  uint64_t size = 0;
  BRICKFS_ASSIGN_OR_RETURN(int fd, Open(key, &size));
  Fd guard{fd};
  if (size > max_bytes) {
    return Status::InvalidArgument(Locate(key) + ": has " + std::to_string(size) +
                                   " bytes, more than the " + std::to_string(max_bytes) +
                                   " expected at most");
  }
  std::string out(size, '\0');
  BRICKFS_RETURN_IF_ERROR(PreadAll(fd, out.data(), size, 0, Locate(key)));
  return out;
}

Result<uint64_t> ReadOnlyDirStorage::Size(std::string_view key) {
  uint64_t size = 0;
  BRICKFS_ASSIGN_OR_RETURN(int fd, Open(key, &size));
  Fd guard{fd};
  return size;
}

Result<Storage::Tail> ReadOnlyDirStorage::ReadTail(std::string_view key, uint64_t n,
                                                   uint64_t cut_at) {
  uint64_t size = 0;
  BRICKFS_ASSIGN_OR_RETURN(int fd, Open(key, &size));
  Fd guard{fd};
  if (cut_at != UINT64_MAX) size = std::min(size, cut_at);
  Tail t;
  t.size = size;
  const uint64_t take = std::min(n, size);
  t.bytes.resize(take);
  BRICKFS_RETURN_IF_ERROR(PreadAll(fd, t.bytes.data(), take, size - take, Locate(key)));
  return t;
}

Status ReadOnlyDirStorage::ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                                      const RangeVisitor& visit) {
  uint64_t size = 0;
  BRICKFS_ASSIGN_OR_RETURN(int fd, Open(key, &size));
  Fd guard{fd};
  std::string buf;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    if (r.offset > size || r.length > size - r.offset) {
      return Status::Corruption(Locate(key) + ": range [" + std::to_string(r.offset) + ", +" +
                                std::to_string(r.length) + ") passes the end (" +
                                std::to_string(size) + " bytes)");
    }
    buf.resize(r.length);
    BRICKFS_RETURN_IF_ERROR(PreadAll(fd, buf.data(), r.length, r.offset, Locate(key)));
    BRICKFS_RETURN_IF_ERROR(visit(i, buf));
  }
  return Status::Ok();
}

void ReadOnlyDirStorage::Prefetch(std::string_view key, const std::vector<Range>& ranges) {
  uint64_t size = 0;
  Result<int> fd = Open(key, &size);
  if (!fd.ok()) return;
  Fd guard{*fd};
  for (const Range& r : ranges) {
    posix_fadvise(*fd, static_cast<off_t>(r.offset), static_cast<off_t>(r.length),
                  POSIX_FADV_WILLNEED);
  }
}

Result<std::vector<std::string>> ReadOnlyDirStorage::List(std::string_view prefix) {
  if (!prefix.empty()) {
    if (const std::string bad = KeyProblem(prefix); !bad.empty()) {
      return Status::InvalidArgument(root_ + ": bad prefix \"" + std::string(prefix) + "\": " + bad);
    }
  }
  std::vector<std::string> names;
  DIR* d = opendir(Locate(prefix).c_str());
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR) return names;
    return Status::IOError(Locate(prefix) + ": opendir", errno);
  }
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<uint64_t> ReadOnlyDirStorage::Identity(std::string_view key) {
  if (const std::string bad = KeyProblem(key); !bad.empty()) {
    return Status::InvalidArgument(root_ + ": bad key \"" + std::string(key) + "\": " + bad);
  }
  struct stat st;
  if (lstat(Locate(key).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return uint64_t{0};
  return static_cast<uint64_t>(st.st_ino);
}

Status ReadOnlyDirStorage::ReadOnly(std::string_view key) const {
  return Status::Unsupported(Locate(key) + ": the store is read-only");
}
Status ReadOnlyDirStorage::WriteAt(std::string_view key, uint64_t, std::string_view) {
  return ReadOnly(key);
}
Status ReadOnlyDirStorage::Truncate(std::string_view key, uint64_t) { return ReadOnly(key); }
Status ReadOnlyDirStorage::Replace(std::string_view key, std::string_view, const BeforeVisible&) {
  return ReadOnly(key);
}
Status ReadOnlyDirStorage::Remove(std::string_view key) { return ReadOnly(key); }
Status ReadOnlyDirStorage::Sync(const std::vector<std::string>&, ThreadPool*) {
  return ReadOnly("");
}

}  // namespace brickfs
