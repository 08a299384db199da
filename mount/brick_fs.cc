#include "mount/brick_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "volume/naming.h"

namespace brickfs {
namespace {

constexpr uint64_t kIoSize = 1 << 20;  // st_blksize (cp writes this much per request)

// A name in the top-level z/ directory (a slice target or a staged name).
bool InZ(const PathInfo& p) {
  return !p.in_levels && p.axis == Axis::kZ &&
         (p.kind == PathInfo::Kind::kPlaneFile || p.kind == PathInfo::Kind::kSliceName);
}

bool IsStaged(const PathInfo& p) {
  return p.kind == PathInfo::Kind::kSliceName && !p.in_levels && IsStagedName(p.name);
}

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

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

struct BrickFs::Handle {
  enum class Kind { kRead, kWrite, kStatus };
  Kind kind = Kind::kRead;
  Axis axis = Axis::kZ;
  uint64_t index = 0;  // kRead of a plane
  int level = 0;       // kRead of a plane: its pyramid level
  std::string name;    // the file's name (z/ or bricks/ component; a path for reads)
  bool is_brick = false;
  Shape3 brick{0, 0, 0};
  std::string snapshot;               // kStatus
  std::shared_ptr<WriteFile> file;    // kWrite; kRead of a staged file
  bool registered = false;            // listed in writing_
};

BrickFs::BrickFs(Volume* volume, time_t mount_time)
    : volume_(volume),
      mount_time_(mount_time),
      charger_([this](int64_t n) -> Status {
        if (n < 0) {
          volume_->ReleaseFileMemory(static_cast<uint64_t>(-n));
          return Status::Ok();
        }
        Status s = volume_->ChargeFileMemory(static_cast<uint64_t>(n));
        // Spare buffers give their memory back before a writer is refused.
        if (!s.ok() && buffers_ && buffers_->Trim() > 0) {
          s = volume_->ChargeFileMemory(static_cast<uint64_t>(n));
        }
        return s;
      }),
      buffers_(std::make_shared<BufferPool>([volume](int64_t n) -> Status {
        if (n < 0) volume->ReleaseFileMemory(static_cast<uint64_t>(-n));
        return Status::Ok();
      })) {
  volume_->SetStagedInfo([this] { return std::make_pair(staged_.count(), staged_.bytes()); });
}

BrickFs::~BrickFs() { volume_->SetStagedInfo(nullptr); }

void BrickFs::FillFile(struct stat* st, mode_t mode, uint64_t size, int64_t mtime_ns) const {
  std::memset(st, 0, sizeof *st);
  // Writable by the owner only, whatever a chmod of a staged file asked for:
  // with allow_other the kernel enforces these modes (default_permissions).
  st->st_mode = S_IFREG | (mode & 0755);
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(size);
  st->st_blksize = kIoSize;
  st->st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_mtime = st->st_ctime = st->st_atime = mount_time_;
  if (mtime_ns != 0) {
    st->st_mtim.tv_sec = static_cast<time_t>(mtime_ns / 1000000000);
    st->st_mtim.tv_nsec = static_cast<long>(mtime_ns % 1000000000);
  }
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

std::shared_ptr<WriteFile> BrickFs::WritingFile(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = writing_.find(name); it != writing_.end() && it->first == name; ++it) {
    if (auto f = it->second.lock()) return f;
  }
  return nullptr;
}

std::shared_ptr<WriteFile> BrickFs::NewFile(WriteFile::Kind kind, const std::string& name) {
  // Staged files may live long: no spare buffers for them.
  return std::make_shared<WriteFile>(kind, name, charger_,
                                     kind == WriteFile::Kind::kStaged ? nullptr : buffers_);
}

bool BrickFs::IsCanonical(const std::string& name) const {
  auto i = ParseCanonicalName(name);
  return i && name == CanonicalSliceName(*i, volume_->PlaneCount(Axis::kZ));
}

PathInfo BrickFs::Parse(const char* path) const {
  PathInfo p = ParsePath(path);
  // Only the exact canonical spelling at the current width names a plane
  // (00017.tif in a volume of 5-digit names); other all-digit names in z/
  // are writers' names (their own size and time), elsewhere nothing.
  if (p.kind == PathInfo::Kind::kPlaneFile &&
      p.name != CanonicalSliceName(p.index, volume_->PlaneCount(p.axis, p.level))) {
    p.kind = p.axis == Axis::kZ && !p.in_levels ? PathInfo::Kind::kSliceName
                                                : PathInfo::Kind::kBadName;
  }
  return p;
}

uint64_t BrickFs::CapOf(const WriteFile& f, const Shape3& brick) const {
  return f.kind() == WriteFile::Kind::kBrick ? volume_->BrickFileSize(brick)
                                             : volume_->MaxSliceFileBytes();
}

int BrickFs::GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (fi && fi->fh) {
    Handle* h = Get(fi);
    if (h->kind == Handle::Kind::kWrite && h->file) {
      FillFile(st, h->file->mode() & 07777, h->file->size(), h->file->mtime_ns());
      return 0;
    }
  }
  PathInfo p = Parse(path);
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
      if (InZ(p)) {
        if (auto f = WritingFile(p.name)) {
          FillFile(st, 0644, f->size(), f->mtime_ns());
          return 0;
        }
      }
      break;
    case PathInfo::Kind::kSliceName: {
      if (IsStaged(p)) {
        if (auto f = staged_.Find(p.name)) {
          FillFile(st, f->mode() & 07777, f->size(), f->mtime_ns());
          return 0;
        }
        break;
      }
      if (auto f = WritingFile(p.name)) {
        FillFile(st, 0644, f->size(), f->mtime_ns());
        return 0;
      }
      // A writer's name reports the size and time that writer left, so
      // that rsync -a and cp -u see an unchanged stack as unchanged.
      if (auto e = volume_->FindName(p.name)) {
        FillFile(st, file_mode, e->size, e->mtime_ns);
        return 0;
      }
      break;
    }
    default:
      break;
  }
  return -ENOENT;
}

int BrickFs::GetDirAttr(const PathInfo& p, struct stat* st) const {
  const mode_t writable = volume_->read_only() ? 0555 : 0755;
  switch (p.kind) {
    case PathInfo::Kind::kRoot:  // nothing can be created or removed there
      FillDir(st, 0555);
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

int BrickFs::ReadDir(const char* path, void* buf, fuse_fill_dir_t filler, off_t off) {
  PathInfo p = Parse(path);
  if (!LevelExists(p)) return -ENOENT;
  // Entries are numbered; each carries the number of the next one as its
  // offset, so a huge directory (z/ of a deep volume, bricks/ of a large
  // one) is listed in pieces, never held whole in memory.
  uint64_t next = static_cast<uint64_t>(std::max<off_t>(off, 0));
  uint64_t index = 0;
  bool full = false;
  auto emit = [&](const std::string& name) {
    if (full) return;
    if (index++ < next) return;
    if (filler(buf, name.c_str(), nullptr, static_cast<off_t>(index),
               static_cast<fuse_fill_dir_flags>(0)) != 0) {
      full = true;
    }
  };
  // Skips `n` entries at once (without naming them) when they come before `next`.
  auto skip_to = [&](uint64_t n) -> uint64_t {
    const uint64_t skipped = next > index ? std::min(n, next - index) : 0;
    index += skipped;
    return skipped;
  };
  emit(".");
  emit("..");
  switch (p.kind) {
    case PathInfo::Kind::kRoot:
      for (const char* n : {"z", "y", "x", "bricks", "levels", ".brickfs"}) emit(n);
      return 0;
    case PathInfo::Kind::kLevelsDir:
    case PathInfo::Kind::kLevelDir:
      FillLevelsDir(p, emit);
      return 0;
    case PathInfo::Kind::kBricksDir: {
      auto g = volume_->geometry();
      const Shape3 grid = volume_->BrickGrid();
      if (!g) return 0;
      const size_t width = BrickNameWidth(g->shape);
      const uint64_t n = grid[0] * grid[1] * grid[2];  // <= 2^60 by the limits
      for (uint64_t k = skip_to(n); k < n && !full; ++k) {
        const uint64_t z = k / (grid[1] * grid[2]), y = k / grid[2] % grid[1], x = k % grid[2];
        emit(BrickFileName({z * g->brick[0], y * g->brick[1], x * g->brick[2]}, width));
      }
      return 0;
    }
    case PathInfo::Kind::kStateDir:
      emit("status");
      return 0;
    case PathInfo::Kind::kAxisDir: {
      const uint64_t n = volume_->PlaneCount(p.axis, p.level);
      for (uint64_t i = skip_to(n); i < n && !full; ++i) emit(CanonicalSliceName(i, n));
      if (p.axis == Axis::kZ && !p.in_levels) {
        for (const std::string& name : staged_.Names()) emit(name);
      }
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

int BrickFs::NewHandle(std::unique_ptr<Handle> h, fuse_file_info* fi) {
  if (h->kind == Handle::Kind::kWrite && h->file && h->file->kind() != WriteFile::Kind::kStaged) {
    std::lock_guard<std::mutex> lock(mu_);
    writing_.emplace(h->name, h->file);
    h->registered = true;
  }
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  return 0;
}

int BrickFs::OpenBrickWrite(const PathInfo& p, const Shape3& brick, fuse_file_info* fi,
                            bool truncate) {
  if (volume_->read_only()) return Refuse("write", ("/bricks/" + p.name).c_str(), EROFS);
  auto h = std::make_unique<Handle>();
  h->kind = Handle::Kind::kWrite;
  h->is_brick = true;
  h->brick = brick;
  h->name = "bricks/" + p.name;
  h->file = NewFile(WriteFile::Kind::kBrick, h->name);
  if (truncate) {
    h->file->set_dirty(true);  // O_TRUNC or a new file: replaced whole at close
  } else {
    // Opened for update: it starts as the brick's voxels (fetched if needed).
    Volume* v = volume_;
    h->file->SetPreload(volume_->BrickFileSize(brick), [v, brick](uint8_t* out, uint64_t n) {
      return v->ReadBrickFile(brick, 0, n, out).status();
    });
  }
  fi->direct_io = 1;
  return NewHandle(std::move(h), fi);
}

PreloadFn BrickFs::SliceContent(uint64_t z) {
  Volume* v = volume_;
  return [v, z](uint8_t* out, uint64_t n) {
    return v->ReadVirtualFile(Axis::kZ, z, 0, n, out).status();
  };
}

int BrickFs::OpenSliceWrite(const PathInfo& p, fuse_file_info* fi, bool truncate) {
  if (volume_->read_only()) return Refuse("write", ("/z/" + p.name).c_str(), EROFS);
  const bool canonical = p.kind == PathInfo::Kind::kPlaneFile;
  auto z = canonical ? volume_->CheckSliceZ(p.name, p.index) : volume_->SliceIndexForName(p.name);
  if (!z.ok()) {
    volume_->RecordError(p.name, z.status().message());
    return -ToErrno(z.status());
  }
  auto h = std::make_unique<Handle>();
  h->kind = Handle::Kind::kWrite;
  h->name = p.name;
  h->file = NewFile(WriteFile::Kind::kSlice, p.name);
  h->file->BecomeSlice(p.name, *z);
  h->file->set_dirty(truncate);  // O_TRUNC of an existing slice means "replace it"
  if (!truncate) {
    // Opened for update: the file starts as the bytes it shows (the virtual
    // TIFF), fetched when first read or written (`touch` fetches nothing).
    const bool exists = canonical ? *z < volume_->PlaneCount(Axis::kZ)
                                  : volume_->FindName(p.name).has_value();
    if (exists) h->file->SetPreload(volume_->VirtualFileSize(Axis::kZ), SliceContent(*z));
  }
  fi->direct_io = 1;  // writes go straight to us, in up to max_write pieces
  return NewHandle(std::move(h), fi);
}

int BrickFs::OpenStaged(const PathInfo& p, std::shared_ptr<WriteFile> file, fuse_file_info* fi,
                        bool writing) {
  auto h = std::make_unique<Handle>();
  h->kind = writing ? Handle::Kind::kWrite : Handle::Kind::kRead;
  h->name = p.name;
  h->file = std::move(file);
  fi->direct_io = 1;
  return NewHandle(std::move(h), fi);
}

int BrickFs::Open(const char* path, fuse_file_info* fi) {
  PathInfo p = Parse(path);
  const bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
  const bool truncate = (fi->flags & O_TRUNC) != 0;
  if (p.kind == PathInfo::Kind::kStatusFile) {
    if (writing) return -EACCES;
    auto h = std::make_unique<Handle>();
    h->kind = Handle::Kind::kStatus;
    h->snapshot = volume_->StatusJson();
    fi->direct_io = 1;
    return NewHandle(std::move(h), fi);
  }
  if (p.kind == PathInfo::Kind::kBrickFile) {
    auto b = BrickOf(p);
    if (!b) return -ENOENT;
    if (writing) return OpenBrickWrite(p, *b, fi, truncate);
    auto h = std::make_unique<Handle>();
    h->kind = Handle::Kind::kRead;
    h->is_brick = true;
    h->brick = *b;
    h->name = path + 1;
    fi->keep_cache = 0;
    return NewHandle(std::move(h), fi);
  }
  if (IsStaged(p)) {
    auto f = staged_.Find(p.name);
    if (!f) return -ENOENT;
    if (writing && volume_->read_only()) return -EROFS;
    if (writing && truncate) {
      Status s = f->Truncate(0, volume_->MaxSliceFileBytes());
      if (!s.ok()) return -ToErrno(s);
      }
    return OpenStaged(p, std::move(f), fi, writing);
  }
  if (writing) {
    if (IsSliceTarget(p)) return OpenSliceWrite(p, fi, truncate);
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
    auto e = volume_->FindName(p.name);
    if (!e) return -ENOENT;
    index = e->z;
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
  return NewHandle(std::move(h), fi);
}

int BrickFs::Create(const char* path, mode_t mode, fuse_file_info* fi) {
  PathInfo p = Parse(path);
  if (volume_->read_only()) return Refuse("create", path, EROFS);
  if (auto b = BrickOf(p)) return OpenBrickWrite(p, *b, fi, true);
  if (IsStaged(p)) {
    auto f = NewFile(WriteFile::Kind::kStaged, p.name);
    f->set_mode(mode & 07777);
    staged_.Put(p.name, f);
    return OpenStaged(p, std::move(f), fi, true);
  }
  if (IsSliceTarget(p)) return OpenSliceWrite(p, fi, true);
  return Refuse("create", path, EPERM);
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
    case Handle::Kind::kWrite:
    case Handle::Kind::kRead:
      break;
  }
  if (h->file) {
    auto n = h->file->Read(static_cast<uint64_t>(off), reinterpret_cast<uint8_t*>(buf), size);
    if (!n.ok()) {
      volume_->RecordError(h->name, "read failed: " + n.status().ToString());
      return -ToErrno(n.status());
    }
    return static_cast<int>(*n);
  }
  if (h->is_brick) {
    auto n = volume_->ReadBrickFile(h->brick, static_cast<uint64_t>(off), size,
                                    reinterpret_cast<uint8_t*>(buf));
    if (!n.ok()) {
      volume_->RecordError(h->name, "read failed: " + n.status().ToString());
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

int BrickFs::Write(const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Handle* h = Get(fi);
  if (h->kind != Handle::Kind::kWrite || !h->file) return -EBADF;
  WriteFile& f = *h->file;
  const bool was_oversized = f.oversized();
  Status s = f.Write(static_cast<uint64_t>(off), reinterpret_cast<const uint8_t*>(buf), size,
                     CapOf(f, h->brick));
  if (!s.ok()) {
    if (!was_oversized || s.code() != Status::Code::kIOError) {
      volume_->RecordError(h->name, s.message() +
                                        (h->is_brick ? " (the size of this brick)"
                                                     : s.code() == Status::Code::kIOError
                                                           ? " (2x a slice of this volume + 16 MiB)"
                                                           : ""));
    }
    return -ToErrno(s);
  }
  return static_cast<int>(size);
}

int BrickFs::IngestFile(const std::shared_ptr<WriteFile>& f, bool from_fsync) {
  const std::string name = f->name();
  const uint64_t z = f->z();
  f->set_dirty(false);
  if (f->oversized()) {
    volume_->RecordError(name, "written past its size; nothing stored");
    return -EFBIG;
  }
  if (f->write_failed()) return -ENOSPC;  // the status says why already
  if (f->size() == 0) {
    if (from_fsync) {  // nothing written yet: nothing to make durable
      f->set_dirty(true);
      return 0;
    }
    volume_->RecordError(name, "empty file: not a TIFF");
    return -EINVAL;
  }
  const int64_t mtime = f->mtime_ns();
  const uint64_t pixels_from = volume_->VirtualPixelOffset(Axis::kZ);
  Status s = f->WithContent([&](const WriteFile::Content& c) {
    // A file opened for update counts its original bytes as there, unless
    // the writer wrote into its pixel data: then it is rewriting the file,
    // and every strip must be its own (an interrupted in-place rewrite is
    // not half new, half old).
    IntervalSet there = c.written;
    if (!c.preloaded.empty() && !c.written.Intersects(pixels_from, c.preloaded.End())) {
      for (const auto& [lo, hi] : c.preloaded) there.Insert(lo, hi);
    }
    SliceWrite w;
    w.name = name;
    w.z = z;
    w.data = c.data;
    w.size = c.size;
    w.written = &there;
    w.keep_name = !IsCanonical(name);
    w.mtime_ns = mtime;
    w.record_errors = !from_fsync;
    return volume_->IngestSlice(w);
  });
  if (from_fsync && s.code() == Status::Code::kInvalidArgument) {
    // Not a whole TIFF yet (an fsync while writing): nothing is stored, and
    // the close will try again.
    f->set_dirty(true);
    return 0;
  }
  return -ToErrno(s);
}

int BrickFs::WriteBrickFile(const std::shared_ptr<WriteFile>& f, const Shape3& brick) {
  f->set_dirty(false);
  const std::string name = f->name();
  if (f->oversized()) {
    volume_->RecordError(name, "written past its size; nothing stored");
    return -EFBIG;
  }
  if (f->write_failed()) return -ENOSPC;
  // A brick is replaced whole: what its writer wrote must be all of it (the
  // bytes it was opened with only serve reads).
  Status s = f->WithContent([&](const WriteFile::Content& c) {
    return volume_->WriteBrick(brick, c.data, c.size, name, &c.written);
  });
  return -ToErrno(s);
}

int BrickFs::Flush(fuse_file_info* fi) {
  Handle* h = Get(fi);
  if (h->kind != Handle::Kind::kWrite || !h->file || !h->file->dirty()) return 0;
  switch (h->file->kind()) {
    case WriteFile::Kind::kStaged:
      return 0;  // held until renamed onto a slice name (or dropped)
    case WriteFile::Kind::kSlice:
      return IngestFile(h->file, /*from_fsync=*/false);
    case WriteFile::Kind::kBrick:
      return WriteBrickFile(h->file, h->brick);
  }
  return 0;
}

int BrickFs::Fsync(fuse_file_info* fi) {
  Handle* h = Get(fi);
  if (h->kind != Handle::Kind::kWrite || !h->file) return 0;
  switch (h->file->kind()) {
    case WriteFile::Kind::kStaged:
      // Never stored as it is; its rename onto a slice name makes it durable.
      h->file->set_fsynced();
      return 0;
    case WriteFile::Kind::kSlice:
      if (h->file->dirty()) {
        if (int rc = IngestFile(h->file, /*from_fsync=*/true)) return rc;
        if (h->file->dirty()) return 0;  // not a whole TIFF yet: nothing stored
      }
      return -ToErrno(volume_->SyncSlice(h->file->z()));
    case WriteFile::Kind::kBrick:
      // A brick is durable once written, which needs all of it.
      if (h->file->dirty() && h->file->size() == volume_->BrickFileSize(h->brick)) {
        return WriteBrickFile(h->file, h->brick);
      }
      return 0;
  }
  return 0;
}

int BrickFs::FsyncDir(const char* path) {
  PathInfo p = Parse(path);
  if (p.kind == PathInfo::Kind::kAxisDir && p.axis == Axis::kZ && !p.in_levels) {
    return -ToErrno(volume_->SyncAll());
  }
  return 0;
}

int BrickFs::Release(fuse_file_info* fi) {
  std::unique_ptr<Handle> h(Get(fi));
  if (h->registered) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = writing_.find(h->name); it != writing_.end() && it->first == h->name; ++it) {
      if (it->second.lock() == h->file) {
        writing_.erase(it);
        break;
      }
    }
  }
  return 0;
}

int BrickFs::Truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (size < 0) return -EINVAL;
  std::shared_ptr<WriteFile> f;
  Shape3 brick{0, 0, 0};
  std::string name = path;
  if (fi && fi->fh && Get(fi)->file && Get(fi)->kind == Handle::Kind::kWrite) {
    f = Get(fi)->file;
    brick = Get(fi)->brick;
    name = Get(fi)->name;
  } else {
    PathInfo p = Parse(path);
    if (IsStaged(p)) f = staged_.Find(p.name);
    if (!f) {
      // A slice or brick is replaced by writing it whole (O_TRUNC), never
      // cut in place.
      return Refuse("truncate", path, volume_->read_only() ? EROFS : EPERM);
    }
  }
  Status s = f->Truncate(static_cast<uint64_t>(size), CapOf(*f, brick));
  if (!s.ok()) {
    volume_->RecordError(name, "truncate: " + s.message());
    return -ToErrno(s);
  }
  return 0;
}

int BrickFs::Rename(const char* from, const char* to, unsigned int flags) {
  const PathInfo pf = Parse(from), pt = Parse(to);
  if (volume_->read_only()) return Refuse("rename", from, EROFS);
  if (flags & RENAME_EXCHANGE) return Refuse("rename (exchange)", from, EINVAL);
  if (!InZ(pf) || !InZ(pt)) return Refuse("rename", from, EPERM);
  const bool noreplace = (flags & RENAME_NOREPLACE) != 0;
  auto slice_z = [&](const PathInfo& p) {
    return p.kind == PathInfo::Kind::kPlaneFile ? volume_->CheckSliceZ(p.name, p.index)
                                                : volume_->SliceIndexForName(p.name);
  };
  auto target_exists = [&]() -> bool {
    if (IsStaged(pt)) return staged_.Find(pt.name) != nullptr;
    if (pt.kind == PathInfo::Kind::kPlaneFile) return pt.index < volume_->PlaneCount(Axis::kZ);
    if (volume_->FindName(pt.name)) return true;
    // Another name of a slice that holds data: replacing it is replacing.
    auto z = volume_->SliceIndexForName(pt.name);
    return z.ok() && volume_->SlicePresent(*z);
  };
  if (noreplace && target_exists()) return -EEXIST;

  if (IsStaged(pf)) {
    auto f = staged_.Find(pf.name);
    if (!f) return -ENOENT;
    if (IsStaged(pt)) {
      staged_.Rename(pf.name, pt.name);
        return 0;
    }
    // Onto a slice name: ingested at that z now; the old slice stays
    // readable until this returns. On failure nothing changes.
    auto z = slice_z(pt);
    if (!z.ok()) {
      volume_->RecordError(pt.name, z.status().message());
      return -ToErrno(z.status());
    }
    // It becomes that slice's file: writes through a handle still open on
    // it are ingested again at its close.
    const std::string from_name = f->name();
    f->BecomeSlice(pt.name, *z);
    if (int rc = IngestFile(f, /*from_fsync=*/false)) {
      f->BecomeStaged(from_name);
      return rc;
    }
    staged_.Remove(pf.name);
    // Write, fsync, rename: the rename makes it durable, as on a disk.
    if (f->fsynced()) return -ToErrno(volume_->SyncSlice(*z));
    return 0;
  }
  // From a slice name.
  if (pf.kind == PathInfo::Kind::kPlaneFile) {
    return Refuse("rename of a canonical slice name (slices cannot be moved or removed)", from,
                  EPERM);
  }
  auto e = volume_->FindName(pf.name);
  if (!e) return -ENOENT;
  if (IsStaged(pt)) {
    // An editor's backup (rename NAME NAME~): a staged copy of the slice,
    // taken now (charged to mem=); the slice stays, under its canonical name.
    auto f = NewFile(WriteFile::Kind::kStaged, pt.name);
    f->SetPreload(volume_->VirtualFileSize(Axis::kZ), SliceContent(e->z));
    if (Status s = f->WithContent([](const WriteFile::Content&) { return Status::Ok(); });
        !s.ok()) {
      volume_->RecordError(pt.name, s.message());
      return -ToErrno(s);
    }
    f->set_mtime_ns(e->mtime_ns);
    staged_.Put(pt.name, std::move(f));
    volume_->ForgetName(pf.name).IgnoreError();
    return 0;
  }
  auto z = slice_z(pt);
  if (!z.ok()) return -ToErrno(z.status());
  if (*z != e->z) {
    return Refuse(("rename to another z (" + std::to_string(*z) + "); copy the slice there")
                      .c_str(),
                  from, EPERM);
  }
  return -ToErrno(volume_->RenameName(pf.name, IsCanonical(pt.name) ? "" : pt.name));
}

int BrickFs::Unlink(const char* path) {
  const PathInfo p = Parse(path);
  if (volume_->read_only()) return Refuse("unlink", path, EROFS);
  if (IsStaged(p)) {
    if (!staged_.Remove(p.name)) return -ENOENT;
    return 0;
  }
  if (p.kind == PathInfo::Kind::kSliceName && !p.in_levels) {
    // A writer's name goes; the slice stays, under its canonical name.
    return volume_->ForgetName(p.name).ok() ? 0 : -ENOENT;
  }
  return Refuse("unlink (slices cannot be removed; their canonical names always exist)", path,
                EPERM);
}

int BrickFs::Utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi) {
  if (tv && tv[1].tv_nsec == UTIME_OMIT) return 0;
  const int64_t t = !tv || tv[1].tv_nsec == UTIME_NOW
                        ? NowNs()
                        : int64_t{tv[1].tv_sec} * 1000000000 + tv[1].tv_nsec;
  if (fi && fi->fh && Get(fi)->file) {
    Get(fi)->file->set_mtime_ns(t);
    return 0;
  }
  const PathInfo p = Parse(path);
  if (IsStaged(p)) {
    auto f = staged_.Find(p.name);
    if (!f) return -ENOENT;
    f->set_mtime_ns(t);
    return 0;
  }
  if (p.kind == PathInfo::Kind::kSliceName && !p.in_levels) {
    if (auto f = WritingFile(p.name)) {
      f->set_mtime_ns(t);
      return 0;
    }
    return volume_->SetNameTime(p.name, t).ok() ? 0 : -ENOENT;
  }
  // Other files keep their times; accepted so that cp -p and touch succeed.
  return 0;
}

int BrickFs::Chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  std::shared_ptr<WriteFile> f;
  if (fi && fi->fh) f = Get(fi)->file;
  if (!f) {
    const PathInfo p = Parse(path);
    if (IsStaged(p)) f = staged_.Find(p.name);
  }
  if (f && f->kind() == WriteFile::Kind::kStaged) f->set_mode(mode & 07777);
  return 0;  // other files keep their modes (accepted for cp -p, rsync -a)
}

int BrickFs::Refuse(const char* op, const char* path, int err) {
  volume_->RecordError(path, std::string(op) + " refused: " + std::strerror(err) +
                                 (err == EROFS ? " (read-only mount)"
                                               : " (only z/ slices and bricks/ files can be "
                                                 "written, whole; see README)"));
  return -err;
}

int BrickFs::StatFs(struct statvfs* st) {
  if (::statvfs(volume_->store_path().c_str(), st) != 0) return -errno;
  return 0;
}

size_t BrickFs::DropStaged() {
  const std::vector<std::string> names = staged_.DropAll();
  for (const std::string& name : names) {
    volume_->RecordError(name, "a staged (temporary-named) file never renamed to a slice name: "
                               "dropped at unmount, nothing stored");
  }
  return names.size();
}

}  // namespace brickfs
