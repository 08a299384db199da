#define FUSE_USE_VERSION 314
#include "mount/fuse_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <unordered_map>
#include <mutex>
#include <sstream>

#include "common/bytes.h"
#include "common/log.h"
#include "mount/namespace.h"
#include "mount/pyramid_options.h"
#include "volume/naming.h"

namespace brickfs {
namespace {

constexpr uint64_t kIoSize = 1 << 20;  // max_write, max_readahead, st_blksize

// Status -> errno: the only translation point on the mount side.
int ToErrno(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return 0;
    case Status::Code::kInvalidArgument: return EINVAL;
    case Status::Code::kCorruption: return EIO;
    case Status::Code::kIOError: return s.err() ? s.err() : EIO;
    case Status::Code::kNotFound: return ENOENT;
    case Status::Code::kUnsupported: return EINVAL;
    case Status::Code::kBusy: return EBUSY;
    case Status::Code::kNoSpace: return ENOSPC;
  }
  return EIO;
}

struct Handle {
  enum class Kind { kRead, kWrite, kStatus };
  Kind kind = Kind::kRead;
  Axis axis = Axis::kZ;
  uint64_t index = 0;          // kRead: plane; kWrite: z
  int level = 0;               // kRead of a plane: its pyramid level
  std::string name;            // kWrite: the writer's file name; kRead: the path
  std::vector<uint8_t> data;   // kWrite: bytes received
  uint64_t size = 0;           // kWrite: file size so far
  bool dirty = false;          // kWrite: written since the last ingest
  std::string snapshot;        // kStatus
  bool is_brick = false;       // kRead/kWrite of bricks/<name>
  bool oversized = false;      // kWrite: a write went past the allowed size
  Shape3 brick{0, 0, 0};       // its brick coordinates
};

// The file system: one instance per mount, reached through fuse_get_context.
// Handlers are thin: decode, call the volume, reply. Lock order: mu_ only
// (never held across volume calls that may block on slab memory).
class BrickFs {
 public:
  BrickFs(Volume* volume, time_t mount_time) : volume_(volume), mount_time_(mount_time) {}

  Volume* volume() { return volume_; }

  int GetAttr(const char* path, struct stat* st, fuse_file_info* fi);
  int ReadDir(const char* path, void* buf, fuse_fill_dir_t filler);
  int Open(const char* path, fuse_file_info* fi);
  int Create(const char* path, fuse_file_info* fi);
  int Read(char* buf, size_t size, off_t off, fuse_file_info* fi);
  int Write(const char* buf, size_t size, off_t off, fuse_file_info* fi);
  int Flush(fuse_file_info* fi);
  int Release(fuse_file_info* fi);
  int Truncate(const char* path, off_t size, fuse_file_info* fi);
  int Refuse(const char* op, const char* path, int err);
  int StatFs(struct statvfs* st);

 private:
  Handle* Get(fuse_file_info* fi) { return reinterpret_cast<Handle*>(fi->fh); }
  void FillFile(struct stat* st, mode_t mode, uint64_t size) const;
  void FillDir(struct stat* st, mode_t mode) const;
  int OpenWrite(const PathInfo& p, fuse_file_info* fi, bool truncate);
  int OpenPlaneRead(const char* path, const PathInfo& p, fuse_file_info* fi);
  int GetDirAttr(const PathInfo& p, struct stat* st) const;
  void FillLevelsDir(const PathInfo& p, const std::function<void(const std::string&)>& fill) const;
  // Whether the level of a path exists (always, outside levels/).
  bool LevelExists(const PathInfo& p) const { return p.level < volume_->LevelCount(); }
  int OpenBrickWrite(const PathInfo& p, const Shape3& brick, fuse_file_info* fi);
  // The brick a bricks/ name designates, if it is one of this volume's.
  std::optional<Shape3> BrickOf(const PathInfo& p) const;
  uint64_t MaxWriteBytes(const Handle& h) const;
  uint64_t MaxSliceFileBytes() const;

  Volume* const volume_;
  const time_t mount_time_;
  std::mutex mu_;
  // Writer names with open write handles -> the handle (for stat during cp).
  std::multimap<std::string, Handle*> writing_;  // guarded by mu_
  // Generation of the volume when each virtual file was last opened.
  std::unordered_map<std::string, uint64_t> opened_generation_;  // guarded by mu_
  // Recycled write buffers: touching fresh memory is slow (DESIGN §11).
  std::vector<std::vector<uint8_t>> spare_buffers_;  // guarded by mu_
};

void BrickFs::FillFile(struct stat* st, mode_t mode, uint64_t size) const {
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | mode;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(size);
  st->st_blksize = kIoSize;
  st->st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_mtime = st->st_ctime = st->st_atime = mount_time_;
}

void BrickFs::FillDir(struct stat* st, mode_t mode) const {
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFDIR | mode;
  st->st_nlink = 2;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_blksize = kIoSize;
  st->st_mtime = st->st_ctime = st->st_atime = mount_time_;
}

int BrickFs::GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (fi && fi->fh) {
    Handle* h = Get(fi);
    if (h->kind == Handle::Kind::kWrite) {
      FillFile(st, 0644, h->size);
      return 0;
    }
  }
  PathInfo p = ParsePath(path);
  const mode_t file_mode = volume_->read_only() ? 0444 : 0644;
  switch (p.kind) {
    case PathInfo::Kind::kRoot:
    case PathInfo::Kind::kAxisDir:
    case PathInfo::Kind::kStateDir:
    case PathInfo::Kind::kBricksDir:
    case PathInfo::Kind::kLevelsDir:
    case PathInfo::Kind::kLevelDir:
      return GetDirAttr(p, st);
    case PathInfo::Kind::kBrickFile:
      if (auto b = BrickOf(p)) {
        FillFile(st, file_mode, volume_->BrickFileSize(*b));
        return 0;
      }
      break;
    case PathInfo::Kind::kStatusFile:
      FillFile(st, 0444, volume_->StatusJson().size());
      return 0;
    case PathInfo::Kind::kPlaneFile:
      if (p.index < volume_->PlaneCount(p.axis, p.level)) {
        FillFile(st, IsSliceTarget(p) ? file_mode : 0444,
                 volume_->VirtualFileSize(p.axis, p.level));
        return 0;
      }
      break;
    case PathInfo::Kind::kSliceName: {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = writing_.find(p.name);
        if (it != writing_.end()) {
          FillFile(st, 0644, it->second->size);
          return 0;
        }
      }
      // A slice written under this name earlier resolves to its plane file,
      // so `cp -p` and `rsync --inplace` can stat what they wrote.
      auto z = volume_->SliceIndexForName(p.name);
      if (z.ok() && volume_->SlicePresent(*z)) {
        FillFile(st, file_mode, volume_->VirtualFileSize(Axis::kZ));
        return 0;
      }
      break;
    }
    default:
      break;
  }
  // Names of files being written elsewhere than z/ never exist.
  return -ENOENT;
}

int BrickFs::GetDirAttr(const PathInfo& p, struct stat* st) const {
  const mode_t writable = volume_->read_only() ? 0555 : 0755;
  switch (p.kind) {
    case PathInfo::Kind::kRoot:
      FillDir(st, 0755);
      return 0;
    case PathInfo::Kind::kBricksDir:
      FillDir(st, writable);
      return 0;
    case PathInfo::Kind::kAxisDir:
    case PathInfo::Kind::kLevelDir: {
      if (!LevelExists(p)) return -ENOENT;
      // Only the top-level z/ takes new files.
      const bool slices = p.kind == PathInfo::Kind::kAxisDir && p.axis == Axis::kZ && !p.in_levels;
      FillDir(st, slices ? writable : 0555);
      return 0;
    }
    default:  // .brickfs, levels
      FillDir(st, 0555);
      return 0;
  }
}

// Entries of levels/ (one per level) or of levels/L (its axes).
void BrickFs::FillLevelsDir(const PathInfo& p,
                            const std::function<void(const std::string&)>& fill) const {
  if (p.kind == PathInfo::Kind::kLevelDir) {
    for (const char* n : {"z", "y", "x"}) fill(n);
    return;
  }
  const int levels = volume_->LevelCount();
  for (int l = 0; l < levels; ++l) fill(std::to_string(l));
}

int BrickFs::ReadDir(const char* path, void* buf, fuse_fill_dir_t filler) {
  PathInfo p = ParsePath(path);
  if (!LevelExists(p)) return -ENOENT;
  auto fill = [&](const std::string& name) {
    filler(buf, name.c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  };
  fill(".");
  fill("..");
  switch (p.kind) {
    case PathInfo::Kind::kRoot:
      for (const char* n : {"z", "y", "x", "bricks", "levels", ".brickfs"}) fill(n);
      return 0;
    case PathInfo::Kind::kLevelsDir:
    case PathInfo::Kind::kLevelDir:
      FillLevelsDir(p, fill);
      return 0;
    case PathInfo::Kind::kBricksDir: {
      auto g = volume_->geometry();
      const Shape3 grid = volume_->BrickGrid();
      if (!g) return 0;
      const size_t width = BrickNameWidth(g->shape);
      for (uint64_t z = 0; z < grid[0]; ++z) {
        for (uint64_t y = 0; y < grid[1]; ++y) {
          for (uint64_t x = 0; x < grid[2]; ++x) {
            fill(BrickFileName({z * g->brick[0], y * g->brick[1], x * g->brick[2]}, width));
          }
        }
      }
      return 0;
    }
    case PathInfo::Kind::kStateDir:
      fill("status");
      return 0;
    case PathInfo::Kind::kAxisDir: {
      uint64_t n = volume_->PlaneCount(p.axis, p.level);
      for (uint64_t i = 0; i < n; ++i) fill(CanonicalSliceName(i, n));
      return 0;
    }
    default:
      return -ENOTDIR;
  }
}

std::optional<Shape3> BrickFs::BrickOf(const PathInfo& p) const {
  if (p.kind != PathInfo::Kind::kBrickFile) return std::nullopt;
  auto g = volume_->geometry();
  if (!g) return std::nullopt;
  const Shape3 grid = volume_->BrickGrid();
  Shape3 b;
  for (int a = 0; a < 3; ++a) {
    if (p.offset[a] % g->brick[a] != 0) return std::nullopt;
    b[a] = p.offset[a] / g->brick[a];
    if (b[a] >= grid[a]) return std::nullopt;
  }
  return b;
}

uint64_t BrickFs::MaxWriteBytes(const Handle& h) const {
  return h.is_brick ? volume_->BrickFileSize(h.brick) : MaxSliceFileBytes();
}

int BrickFs::OpenBrickWrite(const PathInfo& p, const Shape3& brick, fuse_file_info* fi) {
  if (volume_->read_only()) return Refuse("write", ("/bricks/" + p.name).c_str(), EROFS);
  auto h = std::make_unique<Handle>();
  h->kind = Handle::Kind::kWrite;
  h->is_brick = true;
  h->brick = brick;
  h->name = "bricks/" + p.name;
  h->dirty = true;  // opening a brick for writing means replacing it whole
  fi->direct_io = 1;
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  return 0;
}

uint64_t BrickFs::MaxSliceFileBytes() const {
  // A compressed TIFF can exceed the raw size a little (incompressible LZW);
  // allow twice the raw slice plus headroom, and 4 GiB before the first slice.
  auto g = volume_->geometry();
  if (!g) return 4ull << 30;
  return 2 * g->slice_bytes() + (16u << 20);
}

int BrickFs::OpenWrite(const PathInfo& p, fuse_file_info* fi, bool truncate) {
  if (volume_->read_only()) return Refuse("write", ("/z/" + p.name).c_str(), EROFS);
  auto z = volume_->SliceIndexForName(p.name);
  if (!z.ok()) {
    volume_->RecordError(p.name, z.status().message());
    return -ToErrno(z.status());
  }
  auto h = std::make_unique<Handle>();
  h->kind = Handle::Kind::kWrite;
  h->index = *z;
  h->name = p.name;
  h->dirty = truncate;  // O_TRUNC of an existing slice means "replace it"
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!spare_buffers_.empty()) {
      h->data = std::move(spare_buffers_.back());
      spare_buffers_.pop_back();
    }
    writing_.emplace(p.name, h.get());
  }
  h->data.clear();
  fi->direct_io = 1;  // writes go straight to us, in up to max_write pieces
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  return 0;
}

int BrickFs::Open(const char* path, fuse_file_info* fi) {
  PathInfo p = ParsePath(path);
  const bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
  if (p.kind == PathInfo::Kind::kStatusFile) {
    if (writing) return -EACCES;
    auto h = std::make_unique<Handle>();
    h->kind = Handle::Kind::kStatus;
    h->snapshot = volume_->StatusJson();
    fi->direct_io = 1;
    fi->fh = reinterpret_cast<uint64_t>(h.release());
    return 0;
  }
  if (p.kind == PathInfo::Kind::kBrickFile) {
    auto b = BrickOf(p);
    if (!b) return -ENOENT;
    if (writing) return OpenBrickWrite(p, *b, fi);
    auto h = std::make_unique<Handle>();
    h->kind = Handle::Kind::kRead;
    h->is_brick = true;
    h->brick = *b;
    fi->keep_cache = 0;
    fi->fh = reinterpret_cast<uint64_t>(h.release());
    return 0;
  }
  if (writing) {
    if (IsSliceTarget(p)) return OpenWrite(p, fi, (fi->flags & O_TRUNC) != 0);
    return Refuse("write", path, p.kind == PathInfo::Kind::kPlaneFile ? EACCES : EPERM);
  }
  if (p.kind == PathInfo::Kind::kPlaneFile || p.kind == PathInfo::Kind::kSliceName) {
    return OpenPlaneRead(path, p, fi);
  }
  return p.kind == PathInfo::Kind::kNotFound || p.kind == PathInfo::Kind::kBadName ? -ENOENT
                                                                                   : -EISDIR;
}

int BrickFs::OpenPlaneRead(const char* path, const PathInfo& p, fuse_file_info* fi) {
  uint64_t index = p.index;
  if (p.kind == PathInfo::Kind::kSliceName) {
    auto z = volume_->SliceIndexForName(p.name);
    if (!z.ok() || !volume_->SlicePresent(*z)) return -ENOENT;
    index = *z;
  }
  if (index >= volume_->PlaneCount(p.axis, p.level)) return -ENOENT;
  auto h = std::make_unique<Handle>();
  h->kind = Handle::Kind::kRead;
  h->axis = p.axis;
  h->index = index;
  h->level = p.level;
  h->name = path + 1;
  // Keep the kernel's cached pages only if nothing changed since this file
  // was last opened (always, on a read-only mount).
  {
    const uint64_t gen = volume_->generation();
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = opened_generation_.try_emplace(path, gen);
    fi->keep_cache = !inserted && it->second == gen;
    it->second = gen;
  }
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  return 0;
}

int BrickFs::Create(const char* path, fuse_file_info* fi) {
  PathInfo p = ParsePath(path);
  if (auto b = BrickOf(p)) return OpenBrickWrite(p, *b, fi);
  if (IsSliceTarget(p)) return OpenWrite(p, fi, true);
  return Refuse("create", path, volume_->read_only() ? EROFS : EPERM);
}

int BrickFs::Read(char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Handle* h = Get(fi);
  switch (h->kind) {
    case Handle::Kind::kStatus: {
      if (static_cast<uint64_t>(off) >= h->snapshot.size()) return 0;
      size_t n = std::min(size, h->snapshot.size() - static_cast<size_t>(off));
      std::memcpy(buf, h->snapshot.data() + off, n);
      return static_cast<int>(n);
    }
    case Handle::Kind::kWrite: {
      if (static_cast<uint64_t>(off) >= h->size) return 0;
      size_t n = static_cast<size_t>(std::min<uint64_t>(size, h->size - static_cast<uint64_t>(off)));
      std::memcpy(buf, h->data.data() + off, n);
      return static_cast<int>(n);
    }
    case Handle::Kind::kRead: {
      if (h->is_brick) {
        auto n = volume_->ReadBrickFile(h->brick, static_cast<uint64_t>(off), size,
                                        reinterpret_cast<uint8_t*>(buf));
        if (!n.ok()) {
          volume_->RecordError("bricks/" + ShapeToString(h->brick), "read failed: " + n.status().ToString());
          return -ToErrno(n.status());
        }
        return static_cast<int>(*n);
      }
      auto n = volume_->ReadVirtualFile(h->axis, h->index, static_cast<uint64_t>(off), size,
                                        reinterpret_cast<uint8_t*>(buf), h->level);
      if (!n.ok()) {
        volume_->RecordError(h->name, "read failed: " + n.status().ToString());
        return -ToErrno(n.status());
      }
      return static_cast<int>(*n);
    }
  }
  return -EIO;
}

int BrickFs::Write(const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Handle* h = Get(fi);
  if (h->kind != Handle::Kind::kWrite) return -EBADF;
  uint64_t end = static_cast<uint64_t>(off) + size;
  if (end > MaxWriteBytes(*h)) {
    volume_->RecordError(h->name, "file grows past " + std::to_string(MaxWriteBytes(*h)) +
                                      (h->is_brick ? " bytes, the size of this brick"
                                                   : " bytes, more than a slice of this volume can be"));
    h->oversized = true;
    return -EFBIG;
  }
  if (h->data.size() < end) {
    if (h->data.capacity() < end) h->data.reserve(std::max<uint64_t>(end, h->data.capacity() * 2));
    h->data.resize(end);
  }
  std::memcpy(h->data.data() + off, buf, size);
  h->size = std::max(h->size, end);
  h->dirty = true;
  return static_cast<int>(size);
}

int BrickFs::Flush(fuse_file_info* fi) {
  Handle* h = Get(fi);
  if (h->kind != Handle::Kind::kWrite || !h->dirty) return 0;
  h->dirty = false;
  if (h->oversized) {
    volume_->RecordError(h->name, "written past its size; nothing stored");
    return -EFBIG;
  }
  if (h->is_brick) {
    return -ToErrno(volume_->WriteBrick(h->brick, h->data.data(), h->size, h->name));
  }
  if (h->size == 0) {
    volume_->RecordError(h->name, "empty file: not a TIFF");
    return -EINVAL;
  }
  Status s = volume_->IngestSlice(h->name, h->index, h->data.data(), h->size);
  return -ToErrno(s);
}

int BrickFs::Release(fuse_file_info* fi) {
  std::unique_ptr<Handle> h(Get(fi));
  if (h->kind == Handle::Kind::kWrite) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = writing_.find(h->name); it != writing_.end() && it->first == h->name; ++it) {
      if (it->second == h.get()) {
        writing_.erase(it);
        break;
      }
    }
    if (spare_buffers_.size() < 4 && h->data.capacity() <= (256u << 20)) {
      spare_buffers_.push_back(std::move(h->data));
    }
  }
  return 0;
}

int BrickFs::Truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (fi && fi->fh && Get(fi)->kind == Handle::Kind::kWrite) {
    Handle* h = Get(fi);
    h->data.resize(static_cast<size_t>(size));
    h->size = static_cast<uint64_t>(size);
    h->dirty = true;
    return 0;
  }
  PathInfo p = ParsePath(path);
  // Truncating a slice or brick to 0 precedes rewriting it (O_TRUNC).
  if (size == 0 && BrickOf(p) && !volume_->read_only()) return 0;
  if (size == 0 && IsSliceTarget(p) && !volume_->read_only()) return 0;
  return Refuse("truncate", path, volume_->read_only() ? EROFS : EPERM);
}

int BrickFs::Refuse(const char* op, const char* path, int err) {
  volume_->RecordError(path, std::string(op) + " refused: " + std::strerror(err) +
                                 (err == EROFS ? " (read-only mount)"
                                               : " (only z/ slices and bricks/ files can be written, whole)"));
  return -err;
}

int BrickFs::StatFs(struct statvfs* st) {
  if (::statvfs(volume_->store_path().c_str(), st) != 0) return -errno;
  return 0;
}

// --- C callbacks: each runs inside one guard that turns a stray exception
// into EIO plus a log line.

BrickFs* Fs() { return static_cast<BrickFs*>(fuse_get_context()->private_data); }

template <typename F>
int Guard(const char* op, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    LogError(std::string(op) + ": out of memory");
    return -ENOMEM;
  } catch (const std::exception& e) {
    LogError(std::string(op) + ": unexpected exception: " + e.what());
    return -EIO;
  } catch (...) {
    LogError(std::string(op) + ": unexpected exception");
    return -EIO;
  }
}

void* OpInit(fuse_conn_info* conn, fuse_config* cfg) {
  conn->max_write = kIoSize;
  conn->max_readahead = kIoSize;
  conn->want |= FUSE_CAP_ATOMIC_O_TRUNC & conn->capable;
  cfg->entry_timeout = 1.0;
  cfg->attr_timeout = 1.0;
  cfg->negative_timeout = 0.0;
  cfg->nullpath_ok = 0;
  return fuse_get_context()->private_data;
}

const fuse_operations kOps = [] {
  fuse_operations ops{};
  ops.init = OpInit;
  ops.getattr = [](const char* p, struct stat* st, fuse_file_info* fi) {
    return Guard("getattr", [&] { return Fs()->GetAttr(p, st, fi); });
  };
  ops.readdir = [](const char* p, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info*,
                   fuse_readdir_flags) {
    return Guard("readdir", [&] { return Fs()->ReadDir(p, buf, filler); });
  };
  ops.open = [](const char* p, fuse_file_info* fi) {
    return Guard("open", [&] { return Fs()->Open(p, fi); });
  };
  ops.create = [](const char* p, mode_t, fuse_file_info* fi) {
    return Guard("create", [&] { return Fs()->Create(p, fi); });
  };
  ops.read = [](const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    return Guard("read", [&] { return Fs()->Read(buf, size, off, fi); });
  };
  ops.write = [](const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    return Guard("write", [&] { return Fs()->Write(buf, size, off, fi); });
  };
  ops.flush = [](const char*, fuse_file_info* fi) {
    return Guard("flush", [&] { return Fs()->Flush(fi); });
  };
  ops.release = [](const char*, fuse_file_info* fi) {
    return Guard("release", [&] { return Fs()->Release(fi); });
  };
  ops.fsync = [](const char*, int, fuse_file_info*) { return 0; };
  ops.truncate = [](const char* p, off_t size, fuse_file_info* fi) {
    return Guard("truncate", [&] { return Fs()->Truncate(p, size, fi); });
  };
  // Metadata changes are accepted and ignored on files that exist, so that
  // `cp -p`, `rsync --inplace` and `touch` of a written slice succeed.
  ops.utimens = [](const char*, const struct timespec*, fuse_file_info*) { return 0; };
  ops.chmod = [](const char*, mode_t, fuse_file_info*) { return 0; };
  ops.chown = [](const char*, uid_t, gid_t, fuse_file_info*) { return 0; };
  ops.unlink = [](const char* p) { return Guard("unlink", [&] { return Fs()->Refuse("unlink", p, EPERM); }); };
  ops.rmdir = [](const char* p) { return Guard("rmdir", [&] { return Fs()->Refuse("rmdir", p, EPERM); }); };
  ops.mkdir = [](const char* p, mode_t) { return Guard("mkdir", [&] { return Fs()->Refuse("mkdir", p, EPERM); }); };
  ops.rename = [](const char* from, const char*, unsigned int) {
    return Guard("rename", [&] { return Fs()->Refuse("rename", from, EPERM); });
  };
  ops.mknod = [](const char* p, mode_t, dev_t) {
    return Guard("mknod", [&] { return Fs()->Refuse("mknod", p, EPERM); });
  };
  ops.link = [](const char*, const char* to) { return Guard("link", [&] { return Fs()->Refuse("link", to, EPERM); }); };
  ops.symlink = [](const char*, const char* to) {
    return Guard("symlink", [&] { return Fs()->Refuse("symlink", to, EPERM); });
  };
  ops.statfs = [](const char*, struct statvfs* st) {
    return Guard("statfs", [&] { return Fs()->StatFs(st); });
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
    } else if (key == "rw") {
      config->read_only = false;
    } else if (key == "log") {
      if (val.empty()) return bad("expected a file name");
      config->log_file = val;
    } else if (key == "nonempty") {
      config->nonempty = true;
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
  return Status::Ok();
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

int RunMount(const MountConfig& config) {
  if (config.verbose) SetLogLevel(LogLevel::kInfo);
  // Decoded blocks come and go by the thousand: keep freed heap memory in the
  // process instead of returning it to the kernel, since faulting fresh pages
  // in costs several times a reuse (DESIGN §11).
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  Status s = CheckMountPoint(config.mountpoint, config.nonempty);
  if (!s.ok()) {
    std::cerr << "brickfs: " << s.message() << "\n";
    return 2;
  }
  StoreOpenOptions so;
  so.create_if_missing = !config.read_only;
  so.read_only = config.read_only;
  auto store = Store::Open(config.store, so);
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
  BrickFs fs(vol, ::time(nullptr));

  // libfuse splits -o at commas; a store path may contain them (escape with \).
  std::string fsname;
  for (char c : config.store) {
    if (c == ',' || c == '\\') fsname += '\\';
    fsname += c;
  }
  std::vector<std::string> argv_s = {"brickfs", "-o", "fsname=" + fsname + ",subtype=brickfs"};
  if (config.read_only) argv_s.back() += ",ro";
  for (const auto& o : config.fuse_opts) argv_s.back() += "," + o;
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse* f = fuse_new(&args, &kOps, sizeof kOps, &fs);
  if (!f) {
    std::cerr << "brickfs: libfuse rejected the options (" << argv_s.back() << ")\n";
    return 2;
  }
  if (fuse_mount(f, config.mountpoint.c_str()) != 0) {
    std::cerr << "brickfs: mounting " << config.mountpoint
              << " failed (is fuse3 installed and /dev/fuse usable?)\n";
    fuse_destroy(f);
    fuse_opt_free_args(&args);
    return 2;
  }
  std::string log_file = config.log_file;
  if (log_file.empty() && !config.foreground && !config.read_only) {
    log_file = config.store + "/.brickfs/daemon.log";
  }
  if (fuse_daemonize(config.foreground ? 1 : 0) != 0) {
    fuse_unmount(f);
    fuse_destroy(f);
    fuse_opt_free_args(&args);
    return 2;
  }
  if (!log_file.empty()) SetLogFile(log_file);
  if (!config.read_only) {  // the lock names the daemon: this process, after the fork
    std::string pid = std::to_string(::getpid()) + "\n", lock = config.store + "/.brickfs/lock";
    int fd = ::open(lock.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || ::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
      LogError("cannot write the pid to " + lock);
    }
    if (fd >= 0) ::close(fd);
  }
  LogAlways("mounted " + config.store + " on " + config.mountpoint);
  if (vol->recovery().needed) {
    LogAlways("recovered after an unclean shutdown: " +
              std::to_string(vol->recovery().slices_committed) + " committed slices kept, " +
              std::to_string(vol->recovery().shards_truncated) + " torn shard tails cut; lost: " +
              RangesToString(vol->recovery().lost));
  }
  vol->Start();
  fuse_session* se = fuse_get_session(f);
  fuse_set_signal_handlers(se);
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(loop, 16);
  int rc = fuse_loop_mt(f, loop);
  fuse_loop_cfg_destroy(loop);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  LogInfo("unmounted; finalizing " + config.store);
  Status fin = vol->Finalize();
  fuse_destroy(f);
  fuse_opt_free_args(&args);
  LogAlways(std::string(fin.ok() ? "finalized" : "FINALIZE FAILED") + " " + config.store +
            " peak_rss_kb=" + std::to_string(PeakRssKb()) + " status=" + vol->StatusJson(false));
  if (!fin.ok()) {
    LogError("finalize failed: " + fin.ToString());
    std::cerr << "brickfs: finalize failed: " << fin.ToString() << "\n";
    return 1;
  }
  return rc == 0 ? 0 : 0;
}

}  // namespace brickfs
