#include "volume/sync_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/scope_guard.h"

namespace brickfs {
namespace {

constexpr uint32_t kMagic = 0x59534642;  // "BFSY"
constexpr size_t kHeader = 40;

}  // namespace

Status SyncLog::Append(uint64_t slab, uint64_t z, uint64_t journal_offset, const uint8_t* data,
                       size_t n) {
  bool new_file = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dir_made_) {
      BRICKFS_RETURN_IF_ERROR(MakeDirs(dir_));
      dir_made_ = true;
    }
    new_file = files_.insert(slab).second;
  }
  const std::string path = PathOf(slab);
  // Private state: no link (nor a link as the directory), no other owner.
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenOwnedFile(path, O_WRONLY | O_CREAT | O_APPEND, 0600));
  ScopeGuard close_fd([fd] { ::close(fd); });
  uint8_t head[kHeader];
  PutU32(head, kMagic);
  PutU64(head + 8, session_);
  PutU64(head + 16, journal_offset);
  PutU64(head + 24, z);
  PutU64(head + 32, n);
  PutU32(head + 4, Crc32cExtend(Crc32c(head + 8, kHeader - 8), data, n));
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("stat " + path, errno);
  const uint64_t at = static_cast<uint64_t>(st.st_size);
  // One write for the whole record (header and slice together).
  std::string record(reinterpret_cast<const char*>(head), kHeader);
  record.append(reinterpret_cast<const char*>(data), n);
  Status s = PwriteAll(fd, record.data(), record.size(), at, path);
  if (s.ok() && ::fdatasync(fd) != 0) s = Status::IOError("fsync " + path, errno);
  if (!s.ok()) {
    // A partial record would only be skipped by Scan, but keep the file clean.
    if (::ftruncate(fd, static_cast<off_t>(at)) != 0) s = s.WithContext("and truncating back failed");
    return s;
  }
  if (new_file) BRICKFS_RETURN_IF_ERROR(SyncDir(dir_));
  return Status::Ok();
}

void SyncLog::Remove(uint64_t slab) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!files_.erase(slab)) return;
  }
  ::unlink(PathOf(slab).c_str());
}

std::vector<SyncLog::Record> SyncLog::Scan(const std::string& dir, uint64_t session,
                                           uint64_t slice_bytes, uint64_t slab_depth,
                                           uint64_t* skipped) {
  *skipped = 0;
  std::map<uint64_t, Record> last;  // by z
  DIR* d = ::opendir(dir.c_str());
  if (!d) return {};
  ScopeGuard close_dir([d] { ::closedir(d); });
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    uint64_t slab = 0;
    char* end = nullptr;
    errno = 0;
    if (name.rfind("slab-", 0) == 0 && name.size() > 5 && name[5] >= '0' && name[5] <= '9') {
      slab = std::strtoull(name.c_str() + 5, &end, 10);
    }
    if (!end || *end != '\0' || errno != 0) {
      ++*skipped;
      continue;
    }
    const std::string path = dir + "/" + name;
    auto opened = OpenOwnedFile(path, O_RDONLY);
    if (!opened.ok()) {
      ++*skipped;
      continue;
    }
    const int fd = *opened;
    ScopeGuard close_fd([fd] { ::close(fd); });
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ++*skipped;
      continue;
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    std::vector<uint8_t> data;
    for (uint64_t pos = 0; pos + kHeader <= size;) {
      uint8_t head[kHeader];
      if (!PreadAll(fd, head, kHeader, pos, path).ok()) break;
      const uint64_t z = GetU64(head + 24), n = GetU64(head + 32);
      if (GetU32(head) != kMagic || n != slice_bytes || n > size - pos - kHeader) break;
      data.resize(n);
      if (!PreadAll(fd, data.data(), n, pos + kHeader, path).ok()) break;
      if (Crc32cExtend(Crc32c(head + 8, kHeader - 8), data.data(), n) != GetU32(head + 4)) break;
      if (GetU64(head + 8) == session && slab_depth > 0 && z / slab_depth == slab) {
        last[z] = Record{slab, z, GetU64(head + 16), path, pos + kHeader};
      } else {
        ++*skipped;
      }
      pos += kHeader + n;
    }
  }
  std::vector<Record> out;
  for (auto& [z, r] : last) out.push_back(std::move(r));
  return out;
}

Status SyncLog::ReadData(const Record& r, uint8_t* out, size_t n) {
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenOwnedFile(r.path, O_RDONLY));
  ScopeGuard close_fd([fd] { ::close(fd); });
  return PreadAll(fd, out, n, r.offset, r.path);
}

void SyncLog::RemoveAll(const std::string& dir) {
  // Only slab files, in the directory itself: a link planted in its place
  // must not make this empty another directory.
  auto opened = OpenDirBeneath(dir, "");
  if (!opened.ok()) return;
  const int dir_fd = *opened;
  if (DIR* d = ::fdopendir(::dup(dir_fd))) {
    while (dirent* e = ::readdir(d)) {
      const char* name = e->d_name;
      if (std::strncmp(name, "slab-", 5) == 0 && name[5] >= '0' && name[5] <= '9') {
        ::unlinkat(dir_fd, name, 0);
      }
    }
    ::closedir(d);
  }
  ::close(dir_fd);
  ::rmdir(dir.c_str());
}

}  // namespace brickfs
