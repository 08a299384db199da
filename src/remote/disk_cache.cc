// The persistent cache of remote stores (see disk_cache.h): entries written
// crash-safely, checked on read, evicted LRU under a bound shared between
// processes. Over 700 lines because entry format, locking between processes,
// eviction and range assembly belong to one on-disk format and are kept in
// one place with it.
#include "remote/disk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/scope_guard.h"

namespace brickfs {

namespace {

constexpr uint32_t kEntryMagic = 0x45434642;  // "BFCE"
constexpr uint32_t kEntryVersion = 1;
constexpr size_t kFixedHeader = 24;           // up to the description
constexpr uint32_t kMaxDescription = 64 << 10;
constexpr uint32_t kUsageMagic = 0x55434642;  // "BFCU"
constexpr size_t kUsageBytes = 28;
constexpr const char* kMetaName = "meta";
// A temp file older than this is a leftover even if its pid is alive again.
constexpr int64_t kTmpMaxAgeSeconds = 24 * 3600;

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

struct timespec NowRealtime() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

void PutString(std::string* out, std::string_view s) {
  uint8_t len[4];
  PutU32(len, static_cast<uint32_t>(s.size()));
  out->append(reinterpret_cast<const char*>(len), 4);
  out->append(s);
}

bool GetString(const uint8_t** p, const uint8_t* end, std::string* out) {
  if (end - *p < 4) return false;
  const uint32_t n = GetU32(*p);
  *p += 4;
  if (static_cast<uint64_t>(end - *p) < n) return false;
  out->assign(reinterpret_cast<const char*>(*p), n);
  *p += n;
  return true;
}

// The entry file's bytes before the payload.
std::string EncodeHeader(const std::string& url, const std::string& name, const Validator& v,
                         std::string_view payload) {
  std::string desc;
  PutString(&desc, url);
  PutString(&desc, name);
  PutString(&desc, v.etag);
  PutString(&desc, v.last_modified);
  uint8_t b8[8];
  PutU64(b8, v.size);
  desc.append(reinterpret_cast<const char*>(b8), 8);
  std::string h(kFixedHeader, '\0');
  auto* p = reinterpret_cast<uint8_t*>(h.data());
  PutU32(p, kEntryMagic);
  PutU32(p + 4, kEntryVersion);
  PutU64(p + 8, payload.size());
  PutU32(p + 16, Crc32c(payload.data(), payload.size()));
  PutU32(p + 20, static_cast<uint32_t>(desc.size()));
  h += desc;
  uint8_t b4[4];
  PutU32(b4, Crc32c(h.data(), h.size()));
  h.append(reinterpret_cast<const char*>(b4), 4);
  return h;
}

struct Description {
  std::string url, name;
  Validator validator;
  uint64_t payload_len = 0;
  uint32_t payload_crc = 0;
  uint64_t payload_offset = 0;
};

// Reads and checks everything but the payload of an entry file of
// `file_size` bytes. Corruption (with the reason) when it is not a complete
// entry file.
Result<Description> ReadDescription(int fd, uint64_t file_size, const std::string& path) {
  if (file_size < kFixedHeader + 4) {
    return Status::Corruption(path + ": " + std::to_string(file_size) +
                              " bytes, shorter than an entry header");
  }
  uint8_t fixed[kFixedHeader];
  BRICKFS_RETURN_IF_ERROR(PreadAll(fd, fixed, kFixedHeader, 0, path));
  if (GetU32(fixed) != kEntryMagic || GetU32(fixed + 4) != kEntryVersion) {
    return Status::Corruption(path + ": not a cache entry (magic or version)");
  }
  const uint64_t payload_len = GetU64(fixed + 8);
  const uint32_t desc_len = GetU32(fixed + 20);
  if (desc_len > kMaxDescription) {
    return Status::Corruption(path + ": description of " + std::to_string(desc_len) +
                              " bytes, more than " + std::to_string(kMaxDescription));
  }
  const uint64_t header_len = kFixedHeader + desc_len + 4;
  if (payload_len > file_size || header_len + payload_len != file_size) {
    return Status::Corruption(path + ": " + std::to_string(file_size) + " bytes, but the header says " +
                              std::to_string(header_len) + " + " + std::to_string(payload_len));
  }
  std::string header(header_len, '\0');
  std::memcpy(header.data(), fixed, kFixedHeader);
  BRICKFS_RETURN_IF_ERROR(
      PreadAll(fd, header.data() + kFixedHeader, desc_len + 4, kFixedHeader, path));
  const auto* h = reinterpret_cast<const uint8_t*>(header.data());
  if (Crc32c(h, kFixedHeader + desc_len) != GetU32(h + kFixedHeader + desc_len)) {
    return Status::Corruption(path + ": header checksum mismatch");
  }
  Description d;
  const uint8_t* p = h + kFixedHeader;
  const uint8_t* end = p + desc_len;
  if (!GetString(&p, end, &d.url) || !GetString(&p, end, &d.name) ||
      !GetString(&p, end, &d.validator.etag) || !GetString(&p, end, &d.validator.last_modified) ||
      end - p != 8) {
    return Status::Corruption(path + ": malformed description");
  }
  d.validator.size = GetU64(p);
  d.payload_len = payload_len;
  d.payload_crc = GetU32(h + 16);
  d.payload_offset = header_len;
  return d;
}

// Opens an entry file for reading without following links; -1 with errno
// when absent or not a regular file (ENOENT / EINVAL).
int OpenEntry(const std::string& path, struct stat* st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return -1;
  if (::fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    ::close(fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

// ---- Record payload: base URL, absent flag, checked_at ------------------------

std::string EncodeRecord(const DiskCache::ObjectRecord& r) {
  std::string out;
  PutString(&out, r.base);
  uint8_t b[9];
  b[0] = r.absent ? 1 : 0;
  PutU64(b + 1, static_cast<uint64_t>(r.checked_at));
  out.append(reinterpret_cast<const char*>(b), 9);
  return out;
}

bool DecodeRecord(std::string_view payload, DiskCache::ObjectRecord* r) {
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  const uint8_t* end = p + payload.size();
  if (!GetString(&p, end, &r->base) || end - p != 9 || p[0] > 1) return false;
  r->absent = p[0] == 1;
  r->checked_at = static_cast<int64_t>(GetU64(p + 1));
  return true;
}

// ---- The usage record -------------------------------------------------------

struct UsageRecord {
  uint64_t bytes = 0, files = 0;
};

std::optional<UsageRecord> ReadUsage(int fd) {
  uint8_t b[kUsageBytes];
  const ssize_t n = ::pread(fd, b, kUsageBytes, 0);
  if (n != static_cast<ssize_t>(kUsageBytes)) return std::nullopt;
  if (GetU32(b) != kUsageMagic || Crc32c(b, 24) != GetU32(b + 24)) return std::nullopt;
  return UsageRecord{GetU64(b + 8), GetU64(b + 16)};
}

void WriteUsage(int fd, const UsageRecord& u) {
  uint8_t b[kUsageBytes] = {};
  PutU32(b, kUsageMagic);
  PutU64(b + 8, u.bytes);
  PutU64(b + 16, u.files);
  PutU32(b + 24, Crc32c(b, 24));
  // One small pwrite: a torn record fails its checksum and forces a rescan.
  if (::pwrite(fd, b, kUsageBytes, 0) != static_cast<ssize_t>(kUsageBytes)) {
    LogWarning("cache: cannot write the usage record: " + std::string(std::strerror(errno)));
  }
}

// An exclusive flock held for the scope.
class FlockGuard {
 public:
  explicit FlockGuard(int fd) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FlockGuard() { ::flock(fd_, LOCK_UN); }
  FlockGuard(const FlockGuard&) = delete;
  FlockGuard& operator=(const FlockGuard&) = delete;

 private:
  int fd_;
};

// ---- Walking the cache --------------------------------------------------------

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

struct FileInfo {
  std::string path;
  uint64_t bytes = 0;
  struct timespec mtime = {};
};

// Every object directory (objects/HH/HASH) under `root`.
std::vector<std::string> ObjectDirs(const std::string& root) {
  std::vector<std::string> out;
  const std::string objects = root + "/objects";
  for (const std::string& hh : ListDir(objects)) {
    for (const std::string& h : ListDir(objects + "/" + hh)) out.push_back(objects + "/" + hh + "/" + h);
  }
  return out;
}

// The regular files of one object directory.
std::vector<FileInfo> ObjectFiles(const std::string& dir) {
  std::vector<FileInfo> out;
  for (const std::string& name : ListDir(dir)) {
    struct stat st;
    const std::string path = dir + "/" + name;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back(FileInfo{path, static_cast<uint64_t>(st.st_size), st.st_mtim});
  }
  return out;
}

bool OlderThan(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}

// The URL and record of the object in `dir`, from its record, else from any
// entry (then base is "").
bool IdentifyObject(const std::string& dir, const std::vector<FileInfo>& files, std::string* url,
                    std::string* base) {
  std::vector<const FileInfo*> order;
  for (const FileInfo& f : files) {
    if (f.path.size() >= 5 && f.path.compare(f.path.size() - 5, 5, "/meta") == 0) {
      order.insert(order.begin(), &f);
    } else {
      order.push_back(&f);
    }
  }
  for (const FileInfo* f : order) {
    struct stat st;
    const int fd = OpenEntry(f->path, &st);
    if (fd < 0) continue;
    ScopeGuard close_fd([fd] { ::close(fd); });
    auto d = ReadDescription(fd, static_cast<uint64_t>(st.st_size), f->path);
    if (!d.ok()) continue;
    *url = d->url;
    base->clear();
    if (d->name == kMetaName && d->payload_len <= kMaxDescription) {
      std::string payload(d->payload_len, '\0');
      DiskCache::ObjectRecord r;
      if (PreadAll(fd, payload.data(), payload.size(), d->payload_offset, f->path).ok() &&
          Crc32c(payload.data(), payload.size()) == d->payload_crc && DecodeRecord(payload, &r)) {
        *base = r.base;
      }
    }
    return true;
  }
  (void)dir;
  return false;
}

// Makes `path` a directory (mode 0700) when missing.
Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  return Status::IOError("cache: cannot create " + path, errno);
}

bool PidAlive(long pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Removes temp files whose writer died (or that are very old).
void RemoveStaleTemps(const std::string& tmp_dir) {
  const int64_t now = NowRealtime().tv_sec;
  for (const std::string& name : ListDir(tmp_dir)) {
    const std::string path = tmp_dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str(), &end, 10);
    const bool ours_alive = end != nullptr && *end == '.' && pid != ::getpid() && PidAlive(pid);
    if (!ours_alive || now - st.st_mtim.tv_sec > kTmpMaxAgeSeconds) ::unlink(path.c_str());
  }
}

// Scans `root`: totals, and (when `evict_to` is given) removes the least
// recently used files until the total is at most *evict_to. Removes empty
// object directories. REQUIRES: the usage lock held.
struct ScanResult {
  UsageRecord usage;
  uint64_t evicted_files = 0, evicted_bytes = 0;
};
ScanResult ScanAndEvict(const std::string& root, std::optional<uint64_t> evict_to) {
  ScanResult r;
  std::vector<FileInfo> all;
  for (const std::string& dir : ObjectDirs(root)) {
    std::vector<FileInfo> files = ObjectFiles(dir);
    if (files.empty()) {
      ::rmdir(dir.c_str());
      continue;
    }
    for (FileInfo& f : files) {
      r.usage.bytes += f.bytes;
      r.usage.files += 1;
      if (evict_to) all.push_back(std::move(f));
    }
  }
  if (evict_to && r.usage.bytes > *evict_to) {
    std::sort(all.begin(), all.end(), [](const FileInfo& a, const FileInfo& b) {
      if (OlderThan(a.mtime, b.mtime)) return true;
      if (OlderThan(b.mtime, a.mtime)) return false;
      return a.path < b.path;
    });
    for (const FileInfo& f : all) {
      if (r.usage.bytes <= *evict_to) break;
      if (::unlink(f.path.c_str()) != 0) continue;
      r.usage.bytes -= f.bytes;
      r.usage.files -= 1;
      r.evicted_files += 1;
      r.evicted_bytes += f.bytes;
      const std::string dir = f.path.substr(0, f.path.rfind('/'));
      ::rmdir(dir.c_str());  // fails (harmlessly) while files remain
    }
  }
  return r;
}

Status CheckCacheDir(const std::string& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("cache directory " + dir + " does not exist");
    return Status::IOError("cache directory " + dir, errno);
  }
  return CheckOwnedDir(dir);
}

}  // namespace

// ---- DiskCache ------------------------------------------------------------------

DiskCache::DiskCache(std::string dir, uint64_t max_bytes, int lock_fd)
    : dir_(std::move(dir)), root_(dir_ + "/v1"), max_bytes_(max_bytes), lock_fd_(lock_fd) {}

DiskCache::~DiskCache() { ::close(lock_fd_); }

Result<std::unique_ptr<DiskCache>> DiskCache::Open(const Options& options) {
  if (options.dir.empty()) return Status::InvalidArgument("cache: no directory given");
  std::string dir = options.dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  // The parents as usual; the cache directory itself private to the user.
  const size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    BRICKFS_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  }
  BRICKFS_RETURN_IF_ERROR(MakeDir(dir));
  BRICKFS_RETURN_IF_ERROR(CheckOwnedDir(dir).WithContext("cache directory"));
  const std::string root = dir + "/v1";
  BRICKFS_RETURN_IF_ERROR(MakeDir(root));
  BRICKFS_RETURN_IF_ERROR(CheckOwnedDir(root).WithContext("cache directory"));
  BRICKFS_RETURN_IF_ERROR(MakeDir(root + "/tmp"));
  BRICKFS_RETURN_IF_ERROR(MakeDir(root + "/objects"));
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenOwnedFile(root + "/usage", O_RDWR | O_CREAT, 0600));
  std::unique_ptr<DiskCache> cache(new DiskCache(dir, options.max_bytes, fd));
  RemoveStaleTemps(root + "/tmp");
  {
    std::lock_guard<std::mutex> lock(cache->usage_mu_);
    FlockGuard flock(fd);
    const std::optional<UsageRecord> usage = ReadUsage(fd);
    if (!usage || usage->bytes > cache->max_bytes_) {
      const ScanResult scan =
          ScanAndEvict(root, usage ? std::optional<uint64_t>(cache->max_bytes_ / 10 * 9) : std::nullopt);
      WriteUsage(fd, scan.usage);
      cache->evicted_files_ += scan.evicted_files;
      cache->evicted_bytes_ += scan.evicted_bytes;
      if (scan.usage.bytes > cache->max_bytes_) {
        const ScanResult again = ScanAndEvict(root, cache->max_bytes_ / 10 * 9);
        WriteUsage(fd, again.usage);
        cache->evicted_files_ += again.evicted_files;
        cache->evicted_bytes_ += again.evicted_bytes;
      }
    }
  }
  return cache;
}

std::string DiskCache::ObjectDir(const std::string& url) const {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Fnv1a64(url)));
  return root_ + "/objects/" + std::string(hex, 2) + "/" + hex;
}

void DiskCache::CountDropped(uint64_t bytes) {
  dropped_bad_ += 1;
  AddUsage(-static_cast<int64_t>(bytes), -1);
}

void DiskCache::AddUsage(int64_t bytes, int64_t files) {
  std::lock_guard<std::mutex> lock(usage_mu_);
  FlockGuard flock(lock_fd_);
  std::optional<UsageRecord> usage = ReadUsage(lock_fd_);
  if (!usage) {
    usage = ScanAndEvict(root_, std::nullopt).usage;  // already includes this change
  } else {
    usage->bytes = bytes < 0 ? usage->bytes - std::min<uint64_t>(usage->bytes, -bytes)
                             : usage->bytes + static_cast<uint64_t>(bytes);
    usage->files = files < 0 ? usage->files - std::min<uint64_t>(usage->files, -files)
                             : usage->files + static_cast<uint64_t>(files);
  }
  if (usage->bytes > max_bytes_) {
    const ScanResult scan = ScanAndEvict(root_, max_bytes_ / 10 * 9);
    evicted_files_ += scan.evicted_files;
    evicted_bytes_ += scan.evicted_bytes;
    *usage = scan.usage;
  }
  WriteUsage(lock_fd_, *usage);
}

Status DiskCache::EvictTo(uint64_t target) {
  std::lock_guard<std::mutex> lock(usage_mu_);
  FlockGuard flock(lock_fd_);
  const ScanResult scan = ScanAndEvict(root_, target);
  evicted_files_ += scan.evicted_files;
  evicted_bytes_ += scan.evicted_bytes;
  WriteUsage(lock_fd_, scan.usage);
  return Status::Ok();
}

std::optional<DiskCache::ObjectRecord> DiskCache::LookupObject(const std::string& url) {
  const std::string path = ObjectDir(url) + "/" + kMetaName;
  struct stat st;
  const int fd = OpenEntry(path, &st);
  if (fd < 0) return std::nullopt;
  ScopeGuard close_fd([fd] { ::close(fd); });
  auto d = ReadDescription(fd, static_cast<uint64_t>(st.st_size), path);
  if (!d.ok() || d->payload_len > kMaxDescription) {
    if (::unlink(path.c_str()) == 0) CountDropped(static_cast<uint64_t>(st.st_size));
    return std::nullopt;
  }
  if (d->url != url || d->name != kMetaName) return std::nullopt;  // a hash collision
  std::string payload(d->payload_len, '\0');
  ObjectRecord r;
  if (!PreadAll(fd, payload.data(), payload.size(), d->payload_offset, path).ok() ||
      Crc32c(payload.data(), payload.size()) != d->payload_crc || !DecodeRecord(payload, &r)) {
    if (::unlink(path.c_str()) == 0) CountDropped(static_cast<uint64_t>(st.st_size));
    return std::nullopt;
  }
  r.validator = d->validator;
  const struct timespec times[2] = {{0, UTIME_OMIT}, NowRealtime()};
  ::futimens(fd, times);
  return r;
}

Status DiskCache::RecordObject(const std::string& url, const ObjectRecord& record,
                               bool* invalidated) {
  if (invalidated != nullptr) *invalidated = false;
  const std::optional<ObjectRecord> old = LookupObject(url);
  if (old && (old->absent != record.absent || old->validator.Conflicts(record.validator))) {
    const std::string dir = ObjectDir(url);
    int64_t bytes = 0, files = 0;
    for (const FileInfo& f : ObjectFiles(dir)) {
      if (f.path.compare(f.path.size() - 5, 5, "/meta") == 0) continue;
      if (::unlink(f.path.c_str()) == 0) {
        bytes += static_cast<int64_t>(f.bytes);
        files += 1;
      }
    }
    if (files > 0) AddUsage(-bytes, -files);
    if (invalidated != nullptr) *invalidated = true;
  }
  return Insert(url, kMetaName, record.validator, EncodeRecord(record));
}

void DiskCache::ForgetObject(const std::string& url) {
  const std::string dir = ObjectDir(url);
  int64_t bytes = 0, files = 0;
  for (const FileInfo& f : ObjectFiles(dir)) {
    // Only this URL's files: another URL may share the directory (a hash
    // collision), and its files name it.
    struct stat st;
    const int fd = OpenEntry(f.path, &st);
    if (fd < 0) continue;
    auto d = ReadDescription(fd, static_cast<uint64_t>(st.st_size), f.path);
    ::close(fd);
    if (d.ok() && d->url != url) continue;
    if (::unlink(f.path.c_str()) == 0) {
      bytes += static_cast<int64_t>(f.bytes);
      files += 1;
    }
  }
  ::rmdir(dir.c_str());
  if (files > 0) AddUsage(-bytes, -files);
}

bool DiskCache::Contains(const std::string& url, const std::string& name, const Validator& v) {
  const std::string path = ObjectDir(url) + "/" + name;
  struct stat st;
  const int fd = OpenEntry(path, &st);
  if (fd < 0) return false;
  ScopeGuard close_fd([fd] { ::close(fd); });
  auto d = ReadDescription(fd, static_cast<uint64_t>(st.st_size), path);
  return d.ok() && d->url == url && d->name == name && !d->validator.Conflicts(v);
}

std::optional<std::string> DiskCache::Lookup(const std::string& url, const std::string& name,
                                             const Validator& v) {
  return ReadEntry(url, name, v, /*count_miss=*/true);
}

namespace {

// Offset and length of a range entry's name ("rOFF-LEN"); false for others.
bool ParseRangeName(const std::string& name, uint64_t* offset, uint64_t* length) {
  if (name.size() < 4 || name[0] != 'r') return false;
  const size_t dash = name.find('-');
  if (dash == std::string::npos || dash == 1 || dash + 1 >= name.size() || dash > 20 ||
      name.size() - dash > 20 ||
      name.find_first_not_of("0123456789", 1) != dash ||
      name.find_first_not_of("0123456789", dash + 1) != std::string::npos) {
    return false;
  }
  *offset = std::stoull(name.substr(1, dash - 1));
  *length = std::stoull(name.substr(dash + 1));
  return *offset + *length >= *offset;
}

}  // namespace

std::vector<std::pair<uint64_t, uint64_t>> DiskCache::Covering(const std::string& url,
                                                               uint64_t offset,
                                                               uint64_t length) const {
  std::vector<std::pair<uint64_t, uint64_t>> entries;
  for (const std::string& name : ListDir(ObjectDir(url))) {
    uint64_t o = 0, n = 0;
    if (ParseRangeName(name, &o, &n) && n > 0 && o < offset + length && o + n > offset) {
      entries.emplace_back(o, n);
    }
  }
  std::sort(entries.begin(), entries.end());
  // Greedy: from `pos`, the entry starting at or before it that reaches furthest.
  std::vector<std::pair<uint64_t, uint64_t>> chosen;
  uint64_t pos = offset;
  size_t i = 0;
  while (pos < offset + length) {
    std::optional<std::pair<uint64_t, uint64_t>> best;
    for (; i < entries.size() && entries[i].first <= pos; ++i) {
      if (!best || entries[i].first + entries[i].second > best->first + best->second) best = entries[i];
    }
    if (!best || best->first + best->second <= pos) return {};
    chosen.push_back(*best);
    pos = best->first + best->second;
  }
  return chosen;
}

std::optional<std::string> DiskCache::LookupRange(const std::string& url, uint64_t offset,
                                                  uint64_t length, const Validator& v) {
  if (auto hit = ReadEntry(url, RangeEntry(offset, length), v, /*count_miss=*/false)) return hit;
  const auto pieces = Covering(url, offset, length);
  if (pieces.empty()) {
    misses_ += 1;
    return std::nullopt;
  }
  std::string out;
  out.reserve(length);
  for (const auto& [o, n] : pieces) {
    std::optional<std::string> piece = ReadEntry(url, RangeEntry(o, n), v, /*count_miss=*/false);
    if (!piece || piece->size() != n) {
      misses_ += 1;
      return std::nullopt;
    }
    const uint64_t from = offset + out.size();
    const uint64_t take = std::min<uint64_t>(o + n, offset + length) - from;
    out.append(*piece, from - o, take);
  }
  return out;
}

bool DiskCache::ContainsRange(const std::string& url, uint64_t offset, uint64_t length,
                              const Validator& v) {
  if (Contains(url, RangeEntry(offset, length), v)) return true;
  const auto pieces = Covering(url, offset, length);
  if (pieces.empty()) return false;
  for (const auto& [o, n] : pieces) {
    if (!Contains(url, RangeEntry(o, n), v)) return false;
  }
  return true;
}

void DiskCache::DropRange(const std::string& url, uint64_t offset, uint64_t length) {
  std::vector<std::pair<uint64_t, uint64_t>> pieces = Covering(url, offset, length);
  pieces.emplace_back(offset, length);
  int64_t bytes = 0, files = 0;
  for (const auto& [o, n] : pieces) {
    const std::string path = ObjectDir(url) + "/" + RangeEntry(o, n);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && ::unlink(path.c_str()) == 0) {
      bytes += st.st_size;
      files += 1;
      dropped_bad_ += 1;
    }
  }
  if (files > 0) AddUsage(-bytes, -files);
}

std::optional<std::string> DiskCache::ReadEntry(const std::string& url, const std::string& name,
                                                const Validator& v, bool count_miss) {
  const std::string path = ObjectDir(url) + "/" + name;
  struct stat st;
  const int fd = OpenEntry(path, &st);
  if (fd < 0) {
    if (count_miss) misses_ += 1;
    return std::nullopt;
  }
  ScopeGuard close_fd([fd] { ::close(fd); });
  const auto drop = [&](const std::string& why) {
    LogInfo("cache: dropping " + path + " (" + url + " " + name + "): " + why);
    if (::unlink(path.c_str()) == 0) CountDropped(static_cast<uint64_t>(st.st_size));
    misses_ += 1;
    return std::nullopt;
  };
  auto d = ReadDescription(fd, static_cast<uint64_t>(st.st_size), path);
  if (!d.ok()) return drop(d.status().message());
  if (d->url != url || d->name != name) {  // another URL with the same hash
    misses_ += 1;
    return std::nullopt;
  }
  if (d->validator.Conflicts(v)) {
    return drop("stale: fetched under " + d->validator.ToString() + ", the object is now " +
                v.ToString());
  }
  std::string payload(d->payload_len, '\0');
  if (!PreadAll(fd, payload.data(), payload.size(), d->payload_offset, path).ok()) {
    return drop("short read");
  }
  if (Crc32c(payload.data(), payload.size()) != d->payload_crc) {
    return drop("payload checksum mismatch");
  }
  const struct timespec times[2] = {{0, UTIME_OMIT}, NowRealtime()};
  ::futimens(fd, times);
  hits_ += 1;
  hit_bytes_ += payload.size();
  return payload;
}

Status DiskCache::Insert(const std::string& url, const std::string& name, const Validator& v,
                         std::string_view bytes) {
  if (bytes.size() > max_bytes_ / 4) return Status::Ok();
  const std::string header = EncodeHeader(url, name, v, bytes);
  const std::string tmp = root_ + "/tmp/" + std::to_string(::getpid()) + "." +
                          std::to_string(tmp_seq_.fetch_add(1));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::IOError("cache: cannot create " + tmp, errno);
  bool renamed = false;
  ScopeGuard cleanup([&] {
    if (!renamed) ::unlink(tmp.c_str());
  });
  {
    ScopeGuard close_fd([fd] { ::close(fd); });
    Status s = PwriteAll(fd, header.data(), header.size(), 0, tmp);
    if (s.ok()) s = PwriteAll(fd, bytes.data(), bytes.size(), header.size(), tmp);
    if (!s.ok()) return s;
    const struct timespec times[2] = {{0, UTIME_OMIT}, NowRealtime()};
    ::futimens(fd, times);
  }
  const std::string dir = ObjectDir(url);
  const std::string path = dir + "/" + name;
  for (int attempt = 0;; ++attempt) {
    BRICKFS_RETURN_IF_ERROR(MakeDir(dir.substr(0, dir.rfind('/'))));
    BRICKFS_RETURN_IF_ERROR(MakeDir(dir));
    struct stat old;
    const bool replaced = ::lstat(path.c_str(), &old) == 0;
    if (::rename(tmp.c_str(), path.c_str()) == 0) {
      renamed = true;
      const uint64_t size = header.size() + bytes.size();
      if (name != kMetaName) {
        inserts_ += 1;
        insert_bytes_ += bytes.size();
      }
      AddUsage(static_cast<int64_t>(size) - (replaced ? static_cast<int64_t>(old.st_size) : 0),
               replaced ? 0 : 1);
      return Status::Ok();
    }
    // The directory may have been removed (eviction, clear) between the
    // mkdir and the rename: make it again, once.
    if (errno != ENOENT || attempt > 0) {
      return Status::IOError("cache: cannot rename " + tmp + " to " + path, errno);
    }
  }
}

DiskCache::Stats DiskCache::stats() const {
  Stats s;
  s.hits = hits_;
  s.misses = misses_;
  s.hit_bytes = hit_bytes_;
  s.inserts = inserts_;
  s.insert_bytes = insert_bytes_;
  s.dropped_bad = dropped_bad_;
  s.evicted_files = evicted_files_;
  s.evicted_bytes = evicted_bytes_;
  return s;
}

// ---- Administration -------------------------------------------------------------

Result<DiskCache::Usage> DiskCache::Inspect(const std::string& dir) {
  BRICKFS_RETURN_IF_ERROR(CheckCacheDir(dir));
  const std::string root = dir + "/v1";
  struct stat st;
  if (::lstat(root.c_str(), &st) != 0) return Status::NotFound("no brickfs cache in " + dir);
  Usage u;
  u.dir = dir;
  std::map<std::string, StoreUsage> by_base;
  for (const std::string& odir : ObjectDirs(root)) {
    const std::vector<FileInfo> files = ObjectFiles(odir);
    if (files.empty()) continue;
    std::string url, base;
    IdentifyObject(odir, files, &url, &base);
    StoreUsage& s = by_base[base];
    s.base = base;
    s.objects += 1;
    u.objects += 1;
    for (const FileInfo& f : files) {
      s.files += 1;
      s.bytes += f.bytes;
      s.last_used = std::max<int64_t>(s.last_used, f.mtime.tv_sec);
      u.files += 1;
      u.bytes += f.bytes;
    }
  }
  for (auto& [base, s] : by_base) u.stores.push_back(std::move(s));
  return u;
}

Result<DiskCache::Cleared> DiskCache::Clear(const std::string& dir, const std::string& url_prefix) {
  BRICKFS_RETURN_IF_ERROR(CheckCacheDir(dir));
  const std::string root = dir + "/v1";
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenOwnedFile(root + "/usage", O_RDWR | O_CREAT, 0600));
  ScopeGuard close_fd([fd] { ::close(fd); });
  std::string prefix = url_prefix;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  const auto matches = [&](const std::string& url, const std::string& base) {
    if (prefix.empty()) return true;
    if (base == prefix) return true;
    return url == prefix || (url.size() > prefix.size() && url.compare(0, prefix.size(), prefix) == 0 &&
                             url[prefix.size()] == '/');
  };
  FlockGuard flock(fd);
  Cleared c;
  for (const std::string& odir : ObjectDirs(root)) {
    const std::vector<FileInfo> files = ObjectFiles(odir);
    std::string url, base;
    if (!files.empty() && !IdentifyObject(odir, files, &url, &base) && !prefix.empty()) continue;
    if (!files.empty() && !matches(url, base)) continue;
    if (!files.empty()) c.objects += 1;
    for (const FileInfo& f : files) {
      if (::unlink(f.path.c_str()) == 0) {
        c.files += 1;
        c.bytes += f.bytes;
      }
    }
    ::rmdir(odir.c_str());
  }
  if (prefix.empty()) RemoveStaleTemps(root + "/tmp");
  WriteUsage(fd, ScanAndEvict(root, std::nullopt).usage);
  return c;
}

}  // namespace brickfs
