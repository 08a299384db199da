#define FUSE_USE_VERSION 314
#include "mount/foreign_fs.h"

#include <fcntl.h>
#include <fuse3/fuse.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "brickfs/version.h"
#include "common/log.h"
#include "common/thread_pool.h"
#include "foreign/foreign_image.h"
#include "foreign/foreign_view.h"
#include "mount/brick_fs.h"
#include "mount/fuse_session.h"
#include "store/local_storage.h"
#include "tiff/virtual_tiff.h"
#include "volume/block_cache.h"
#include "volume/block_source.h"
#include "volume/naming.h"

namespace brickfs {

namespace {

bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const size_t j = path.find('/', i);
    const size_t end = j == std::string::npos ? path.size() : j;
    if (end > i) parts.push_back(path.substr(i, end - i));
    i = end;
  }
  return parts;
}

// A decimal number without leading zeros (or "0"), at most 15 digits.
std::optional<uint64_t> PlainNumber(std::string_view s) {
  if (s.empty() || s.size() > 15 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::stoull(std::string(s));
}

std::optional<Axis> AxisOfName(const std::string& s, size_t spatial) {
  if (s == "z") return Axis::kZ;
  if (spatial == 3 && s == "y") return Axis::kY;
  if (spatial == 3 && s == "x") return Axis::kX;
  return std::nullopt;
}

// Centimetres per OME-Zarr space unit (0: not a length TIFF can express).
double CentimetresPerUnit(const std::string& unit) {
  static const std::map<std::string, double> kUnits = {
      {"angstrom", 1e-8},   {"attometer", 1e-16}, {"centimeter", 1.0},  {"decimeter", 10.0},
      {"femtometer", 1e-13}, {"foot", 30.48},     {"inch", 2.54},       {"kilometer", 1e5},
      {"meter", 100.0},     {"micrometer", 1e-4}, {"mile", 160934.4},   {"millimeter", 0.1},
      {"nanometer", 1e-7},  {"picometer", 1e-10}, {"yard", 91.44}};
  auto it = kUnits.find(unit);
  return it == kUnits.end() ? 0.0 : it->second;
}

}  // namespace

ForeignPath ParseForeignPath(const ForeignShape& s, const std::string& path) {
  ForeignPath p;
  const std::vector<std::string> parts = SplitPath(path);
  size_t i = 0;
  if (parts.empty()) {
    p.kind = s.other_names.empty() ? ForeignPath::Kind::kViewDir : ForeignPath::Kind::kIndexDir;
    return p;
  }
  if (parts[0] == ".brickfs") {
    if (parts.size() == 1) p.kind = ForeignPath::Kind::kStateDir;
    if (parts.size() == 2 && parts[1] == "status") p.kind = ForeignPath::Kind::kStatus;
    return p;
  }
  for (; i < s.other_names.size(); ++i) {
    if (i >= parts.size()) {
      p.kind = ForeignPath::Kind::kIndexDir;
      return p;
    }
    const std::string& name = s.other_names[i];
    const std::string& part = parts[i];
    if (part.size() <= name.size() || part.compare(0, name.size(), name) != 0) return p;
    std::optional<uint64_t> n = PlainNumber(std::string_view(part).substr(name.size()));
    if (!n || *n >= s.other_sizes[i]) return p;
    p.fixed.push_back(*n);
  }
  if (i == parts.size()) {
    p.kind = ForeignPath::Kind::kViewDir;
    return p;
  }
  // z/ y/ x/ or levels/L/...
  if (parts[i] == "levels") {
    if (++i == parts.size()) {
      p.kind = ForeignPath::Kind::kLevelsDir;
      return p;
    }
    std::optional<uint64_t> l = PlainNumber(parts[i]);
    if (!l || *l >= s.level_shapes.size()) return p;
    p.level = static_cast<int>(*l);
    if (++i == parts.size()) {
      p.kind = ForeignPath::Kind::kLevelDir;
      return p;
    }
  }
  std::optional<Axis> axis = AxisOfName(parts[i], s.spatial);
  if (!axis) return p;
  p.axis = *axis;
  if (++i == parts.size()) {
    p.kind = ForeignPath::Kind::kAxisDir;
    return p;
  }
  if (i + 1 != parts.size()) return p;
  const uint64_t count = s.level_shapes[static_cast<size_t>(p.level)][static_cast<int>(p.axis)];
  std::optional<uint64_t> index = ParseCanonicalName(parts[i]);
  if (!index || *index >= count || CanonicalSliceName(*index, count) != parts[i]) return p;
  p.index = *index;
  p.kind = ForeignPath::Kind::kPlane;
  return p;
}

bool IsForeignStore(const std::string& store) {
  struct stat st;
  if (::stat(store.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if (Exists(store + "/.brickfs")) return false;
  if (Exists(store + "/.zgroup") || Exists(store + "/.zarray")) return true;
  if (!Exists(store + "/zarr.json")) return false;
  // A brickfs array says so in its attributes.
  LocalStorage storage(store, /*read_only=*/true);
  Result<std::string> array = storage.Get("0/zarr.json", 1 << 20);
  if (array.ok()) {
    const nlohmann::json doc = nlohmann::json::parse(*array, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object() && doc.contains("attributes") && doc["attributes"].is_object() &&
        doc["attributes"].contains("brickfs")) {
      return false;
    }
  }
  return true;
}

namespace {

// One (level, fixed indices) view and its reader.
struct ViewReader {
  std::unique_ptr<ForeignView> view;
  std::unique_ptr<BlockReader> reader;
};

class ForeignFs {
 public:
  ForeignFs(std::unique_ptr<LocalStorage> storage, std::unique_ptr<ForeignImage> image,
            const MountConfig& config)
      : storage_(std::move(storage)),
        image_(std::move(image)),
        config_(config),
        mount_time_(::time(nullptr)),
        cache_(config.volume.cache_budget) {
    for (size_t a : image_->other_axes()) {
      shape_.other_names.push_back(image_->axes()[a].name);
      shape_.other_sizes.push_back(image_->level_array(0)->shape()[a]);
    }
    shape_.spatial = image_->spatial_axes().size();
    for (size_t l = 0; l < image_->levels().size(); ++l) {
      const std::vector<uint64_t>& s = image_->level_array(l)->shape();
      const size_t r = s.size();
      shape_.level_shapes.push_back({shape_.spatial == 3 ? s[r - 3] : 1, s[r - 2], s[r - 1]});
      layouts_.emplace_back();
      for (Axis axis : {Axis::kZ, Axis::kY, Axis::kX}) {
        layouts_[l][static_cast<int>(axis)] = MakeLayout(l, axis);
      }
    }
  }

  // Non-spatial axes must have the same size at every level (one directory
  // tree serves them all).
  static Status CheckLevels(const ForeignImage& img) {
    const std::vector<uint64_t>& s0 = img.level_array(0)->shape();
    for (size_t l = 1; l < img.levels().size(); ++l) {
      const std::vector<uint64_t>& s = img.level_array(l)->shape();
      for (size_t a : img.other_axes()) {
        if (s[a] != s0[a]) {
          return Status::Unsupported(img.level_array(l)->meta().file + ": axis \"" +
                                     img.axes()[a].name + "\" has size " + std::to_string(s[a]) +
                                     " at level " + std::to_string(l) + " but " +
                                     std::to_string(s0[a]) +
                                     " at level 0; brickfs serves non-spatial axes of one size");
        }
      }
      if (img.level_array(l)->dtype() != img.level_array(0)->dtype()) {
        return Status::Unsupported(img.level_array(l)->meta().file +
                                   ": a level of another dtype than level 0");
      }
    }
    return Status::Ok();
  }

  // Starts the decode and readahead threads: after fuse_daemonize (threads
  // do not survive its fork), before the first request.
  void Start() {
    const size_t n = config_.volume.threads ? config_.volume.threads
                                            : std::max(1u, std::thread::hardware_concurrency());
    pool_ = std::make_unique<ThreadPool>(n);
    readahead_ = std::make_unique<ThreadPool>(1);
    // Fresh memory faults in slowly (DESIGN §11): as brickfs's read-only
    // mounts do, fault in up to 64 MiB of level 0's block buffers in the
    // background, so that the first planes read find them ready.
    const uint64_t bb = BlockSourceInfo{{1, 1, 1}, Level0Block(), image_->level_array(0)->dtype(), ""}
                            .block_bytes();
    std::shared_ptr<BlockPool> buffers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      buffers = buffers_[bb] = BlockPool::Create(bb);
    }
    const uint64_t reserve = std::min<uint64_t>(config_.volume.cache_budget, uint64_t{64} << 20);
    readahead_->Submit([buffers, reserve] { buffers->Reserve(reserve); });
  }

  int GetAttr(const char* path, struct stat* st) {
    ForeignPath p = ParseForeignPath(shape_, path);
    std::memset(st, 0, sizeof *st);
    st->st_uid = ::getuid();
    st->st_gid = ::getgid();
    st->st_atime = st->st_mtime = st->st_ctime = mount_time_;
    switch (p.kind) {
      case ForeignPath::Kind::kNotFound:
        return -ENOENT;
      case ForeignPath::Kind::kPlane:
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = static_cast<off_t>(Layout(p).file_size());
        st->st_blksize = 1 << 20;
        st->st_blocks = (st->st_size + 511) / 512;
        return 0;
      case ForeignPath::Kind::kStatus:
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = static_cast<off_t>(StatusJson().size());
        return 0;
      default:
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
    }
  }

  int ReadDir(const char* path, void* buf, fuse_fill_dir_t filler, off_t off) {
    ForeignPath p = ParseForeignPath(shape_, path);
    // Entries are numbered; each carries the number of the next one as its
    // offset, so a huge directory (t/ of a long time series, z/ of a deep
    // image) is listed in pieces, never held whole in memory (as BrickFs).
    const uint64_t next = static_cast<uint64_t>(std::max<off_t>(off, 0));
    uint64_t index = 0;
    bool full = false;
    auto emit = [&](const std::string& name) {
      if (full || index++ < next) return;
      full = filler(buf, name.c_str(), nullptr, static_cast<off_t>(index),
                    static_cast<fuse_fill_dir_flags>(0)) != 0;
    };
    // Skips up to n numbered entries that come before `next`; returns how many.
    auto skip_to = [&](uint64_t n) -> uint64_t {
      const uint64_t skipped = next > index ? std::min(n, next - index) : 0;
      index += skipped;
      return skipped;
    };
    if (p.kind == ForeignPath::Kind::kNotFound) return -ENOENT;
    if (p.kind == ForeignPath::Kind::kPlane || p.kind == ForeignPath::Kind::kStatus) return -ENOTDIR;
    emit(".");
    emit("..");
    switch (p.kind) {
      case ForeignPath::Kind::kIndexDir: {
        const size_t d = p.fixed.size();
        if (d == 0) emit(".brickfs");
        const uint64_t n = shape_.other_sizes[d];
        for (uint64_t i = skip_to(n); i < n && !full; ++i) emit(shape_.other_names[d] + std::to_string(i));
        return 0;
      }
      case ForeignPath::Kind::kViewDir:
      case ForeignPath::Kind::kLevelDir:
        if (p.kind == ForeignPath::Kind::kViewDir && shape_.other_names.empty()) emit(".brickfs");
        emit("z");
        if (shape_.spatial == 3) {
          emit("y");
          emit("x");
        }
        if (p.kind == ForeignPath::Kind::kViewDir) emit("levels");
        return 0;
      case ForeignPath::Kind::kLevelsDir:
        for (size_t l = 0; l < shape_.level_shapes.size(); ++l) emit(std::to_string(l));
        return 0;
      case ForeignPath::Kind::kAxisDir: {
        const uint64_t n = shape_.level_shapes[static_cast<size_t>(p.level)][static_cast<int>(p.axis)];
        for (uint64_t i = skip_to(n); i < n && !full; ++i) emit(CanonicalSliceName(i, n));
        return 0;
      }
      case ForeignPath::Kind::kStateDir:
        emit("status");
        return 0;
      default:
        return 0;
    }
  }

  struct Handle {
    BlockReader* reader = nullptr;
    const VirtualTiffLayout* layout = nullptr;
    Axis axis = Axis::kZ;
    uint64_t index = 0;
    std::string name;
    std::string snapshot;  // the status file
  };

  int Open(const char* path, fuse_file_info* fi) {
    ForeignPath p = ParseForeignPath(shape_, path);
    if (p.kind != ForeignPath::Kind::kPlane && p.kind != ForeignPath::Kind::kStatus) {
      return p.kind == ForeignPath::Kind::kNotFound ? -ENOENT : -EISDIR;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return -EROFS;
    auto h = std::make_unique<Handle>();
    h->name = path;
    if (p.kind == ForeignPath::Kind::kStatus) {
      h->snapshot = StatusJson();
      fi->direct_io = 1;
    } else {
      Result<BlockReader*> r = ReaderFor(p.level, p.fixed);
      if (!r.ok()) {
        RecordError(path, r.status());
        return -ToErrno(r.status());
      }
      h->reader = *r;
      h->layout = &Layout(p);
      h->axis = p.axis;
      h->index = p.index;
      fi->keep_cache = 1;  // a foreign store is served as it was at mount
    }
    fi->fh = reinterpret_cast<uint64_t>(h.release());
    return 0;
  }

  int Read(char* buf, size_t size, off_t off, fuse_file_info* fi) {
    Handle* h = reinterpret_cast<Handle*>(fi->fh);
    if (!h->reader) {
      if (static_cast<uint64_t>(off) >= h->snapshot.size()) return 0;
      const size_t n = std::min(size, h->snapshot.size() - static_cast<size_t>(off));
      std::memcpy(buf, h->snapshot.data() + off, n);
      return static_cast<int>(n);
    }
    Result<size_t> n = h->reader->ReadVirtualFile(*h->layout, h->axis, h->index,
                                                  static_cast<uint64_t>(off), size,
                                                  reinterpret_cast<uint8_t*>(buf));
    if (!n.ok()) {
      RecordError(h->name, n.status());
      return -ToErrno(n.status());
    }
    return static_cast<int>(*n);
  }

  int Release(fuse_file_info* fi) {
    delete reinterpret_cast<Handle*>(fi->fh);
    return 0;
  }

  int StatFs(struct statvfs* st) {
    std::memset(st, 0, sizeof *st);
    st->f_bsize = st->f_frsize = 4096;
    st->f_namemax = 255;
    st->f_flag = ST_RDONLY;
    return 0;
  }

  std::string StatusJson() {
    nlohmann::ordered_json j;
    j["store"] = config_.store;
    j["pid"] = ::getpid();
    j["read_only"] = true;
    j["foreign"] = true;
    j["why_read_only"] = "a store brickfs did not write is always mounted read-only";
    j["format"] = "OME-Zarr " + image_->ome_version() + " on Zarr v" +
                  std::to_string(image_->zarr_format());
    j["name"] = image_->name();
    j["dtype"] = std::string(DTypeName(image_->level_array(0)->dtype()));
    nlohmann::ordered_json axes = nlohmann::ordered_json::array();
    for (const OmeAxis& a : image_->axes()) {
      axes.push_back({{"name", a.name}, {"type", a.type}, {"unit", a.unit}});
    }
    j["axes"] = axes;
    nlohmann::ordered_json levels = nlohmann::ordered_json::array();
    for (size_t l = 0; l < image_->levels().size(); ++l) {
      const ForeignLevel& lv = image_->levels()[l];
      levels.push_back({{"path", lv.path},
                        {"shape", lv.array->shape()},
                        {"chunk", lv.array->chunk()},
                        {"scale", lv.scale},
                        {"translation", lv.translation}});
    }
    j["levels"] = levels;
    j["channel_names"] = image_->channel_names();
    j["notes"] = image_->notes();
    const BlockCache::Stats cs = cache_.GetStats();
    j["cache"] = {{"hits", cs.hits}, {"misses", cs.misses}, {"bytes", cs.bytes},
                  {"budget", cs.budget}};
    std::lock_guard<std::mutex> lock(mu_);
    j["errors"] = errors_;
    return j.dump(2) + "\n";
  }

  const ForeignImage& image() const { return *image_; }

 private:
  std::shared_ptr<const VirtualTiffLayout> MakeLayout(size_t level, Axis axis) const {
    const Shape3& s = shape_.level_shapes[level];
    const PlaneDims d = PlaneDimsOf(s, axis);
    VirtualTiffParams p;
    p.width = d.width;
    p.height = d.height;
    p.dtype = image_->level_array(level)->dtype();
    // The image axes along a row (columns) and down the rows.
    const std::vector<size_t>& sp = image_->spatial_axes();
    const size_t ax = sp.back(), ay = sp[sp.size() - 2], az = sp.size() == 3 ? sp[0] : ay;
    size_t col = ax, row = ay;
    if (axis == Axis::kY) row = az;
    if (axis == Axis::kX) col = ay, row = az;
    const std::vector<double>& scale = image_->levels()[level].scale;
    const double cm_col = CentimetresPerUnit(image_->axes()[col].unit);
    const double cm_row = CentimetresPerUnit(image_->axes()[row].unit);
    if (cm_col > 0 && cm_row > 0) {
      p.x_resolution = 1.0 / (scale[col] * cm_col);
      p.y_resolution = 1.0 / (scale[row] * cm_row);
      p.resolution_in_cm = true;
    }
    p.description = std::string("brickfs ") + BRICKFS_VERSION + " " + AxisName(axis) +
                    "-plane of " + ShapeToString(s) + " " + std::string(DTypeName(p.dtype)) +
                    ", level " + std::to_string(level) + " of " + image_->location() +
                    " (OME-Zarr " + image_->ome_version() + ")";
    return std::make_shared<VirtualTiffLayout>(p);
  }

  // The block of level 0's views (its chunk along the spatial axes).
  Shape3 Level0Block() const {
    const std::vector<uint64_t>& c = image_->level_array(0)->chunk();
    const size_t r = c.size();
    return {shape_.spatial == 3 ? c[r - 3] : 1, c[r - 2], c[r - 1]};
  }

  const VirtualTiffLayout& Layout(const ForeignPath& p) const {
    return *layouts_[static_cast<size_t>(p.level)][static_cast<int>(p.axis)];
  }

  Result<BlockReader*> ReaderFor(int level, const std::vector<uint64_t>& fixed) {
    std::lock_guard<std::mutex> lock(mu_);
    auto key = std::make_pair(level, fixed);
    auto it = readers_.find(key);
    if (it != readers_.end()) return it->second.reader.get();
    std::string name = image_->level_array(static_cast<size_t>(level))->meta().file;
    for (size_t i = 0; i < fixed.size(); ++i) {
      name += " " + shape_.other_names[i] + "=" + std::to_string(fixed[i]);
    }
    BRICKFS_ASSIGN_OR_RETURN(
        std::unique_ptr<ForeignView> view,
        ForeignView::Create(image_->level_array(static_cast<size_t>(level)), shape_.spatial,
                            fixed, name));
    const uint64_t bb = view->info().block_bytes();
    std::shared_ptr<BlockPool>& buffers = buffers_[bb];
    if (!buffers) buffers = BlockPool::Create(bb);
    ViewReader vr;
    vr.reader = std::make_unique<BlockReader>(view.get(), next_cache_id_++, &cache_, buffers,
                                              pool_.get(), readahead_.get());
    vr.view = std::move(view);
    BlockReader* r = vr.reader.get();
    readers_.emplace(std::move(key), std::move(vr));
    return r;
  }

  void RecordError(const std::string& path, const Status& s) {
    LogError(path + ": " + s.ToString());
    std::lock_guard<std::mutex> lock(mu_);
    if (errors_.size() < 100) errors_.push_back(path + ": " + s.ToString());
  }

  const std::unique_ptr<LocalStorage> storage_;
  const std::unique_ptr<ForeignImage> image_;
  const MountConfig config_;
  const time_t mount_time_;
  ForeignShape shape_;
  std::vector<std::array<std::shared_ptr<const VirtualTiffLayout>, 3>> layouts_;  // per level
  BlockCache cache_;
  std::unique_ptr<ThreadPool> pool_;  // set by Start
  std::mutex mu_;
  std::map<std::pair<int, std::vector<uint64_t>>, ViewReader> readers_;  // guarded by mu_
  std::map<uint64_t, std::shared_ptr<BlockPool>> buffers_;               // guarded by mu_
  uint32_t next_cache_id_ = 0;                                           // guarded by mu_
  std::vector<std::string> errors_;                                      // guarded by mu_
  // Last: destroyed first, so that no prefetch runs on a destroyed view.
  std::unique_ptr<ThreadPool> readahead_;  // set by Start
};

ForeignFs* Ffs() { return static_cast<ForeignFs*>(fuse_get_context()->private_data); }


const fuse_operations kForeignOps = [] {
  fuse_operations ops{};
  ops.init = [](fuse_conn_info* conn, fuse_config* cfg) -> void* {
    conn->max_readahead = 1 << 20;
    cfg->entry_timeout = 60.0;  // nothing changes while mounted
    cfg->attr_timeout = 60.0;
    cfg->negative_timeout = 60.0;
    return fuse_get_context()->private_data;
  };
  ops.getattr = [](const char* p, struct stat* st, fuse_file_info*) {
    return FuseGuard("getattr", [&] { return Ffs()->GetAttr(p, st); });
  };
  ops.readdir = [](const char* p, void* buf, fuse_fill_dir_t filler, off_t off, fuse_file_info*,
                   fuse_readdir_flags) {
    return FuseGuard("readdir", [&] { return Ffs()->ReadDir(p, buf, filler, off); });
  };
  ops.open = [](const char* p, fuse_file_info* fi) {
    return FuseGuard("open", [&] { return Ffs()->Open(p, fi); });
  };
  ops.read = [](const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    return FuseGuard("read", [&] { return Ffs()->Read(buf, size, off, fi); });
  };
  ops.release = [](const char*, fuse_file_info* fi) {
    return FuseGuard("release", [&] { return Ffs()->Release(fi); });
  };
  ops.statfs = [](const char*, struct statvfs* st) {
    return FuseGuard("statfs", [&] { return Ffs()->StatFs(st); });
  };
  // Everything that would change the store: read-only.
  ops.create = [](const char*, mode_t, fuse_file_info*) { return -EROFS; };
  ops.write = [](const char*, const char*, size_t, off_t, fuse_file_info*) { return -EROFS; };
  ops.truncate = [](const char*, off_t, fuse_file_info*) { return -EROFS; };
  ops.unlink = [](const char*) { return -EROFS; };
  ops.rmdir = [](const char*) { return -EROFS; };
  ops.mkdir = [](const char*, mode_t) { return -EROFS; };
  ops.rename = [](const char*, const char*, unsigned int) { return -EROFS; };
  ops.mknod = [](const char*, mode_t, dev_t) { return -EROFS; };
  ops.link = [](const char*, const char*) { return -EROFS; };
  ops.symlink = [](const char*, const char*) { return -EROFS; };
  ops.chmod = [](const char*, mode_t, fuse_file_info*) { return -EROFS; };
  ops.chown = [](const char*, uid_t, gid_t, fuse_file_info*) { return -EROFS; };
  ops.utimens = [](const char*, const struct timespec*, fuse_file_info*) { return -EROFS; };
  return ops;
}();

}  // namespace

int RunForeignMount(const MountConfig& given) {
  MountConfig config = given;
  config.read_only = true;
  if (config.verbose) SetLogLevel(LogLevel::kInfo);
  // Decoded chunks come and go by the thousand: keep freed heap memory in the
  // process (as RunMount does; DESIGN §11).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  Status s = CheckNotSelfMount(config);
  if (s.ok()) s = CheckMountPoint(config.mountpoint, config.nonempty);
  if (!s.ok()) {
    std::cerr << "brickfs: " << s.message() << "\n";
    return 2;
  }
  auto storage = std::make_unique<LocalStorage>(config.store, /*read_only=*/true);
  Result<std::unique_ptr<ForeignImage>> image = ForeignImage::Open(storage.get(), "");
  if (image.ok()) s = ForeignFs::CheckLevels(**image);
  if (!image.ok() || !s.ok()) {
    std::cerr << "brickfs: cannot mount " << config.store << " (a store brickfs did not write): "
              << (image.ok() ? s.message() : image.status().message()) << "\n";
    return 2;
  }
  // Nothing is ever written into a foreign store: no daemon.log there.
  if (!config.log_file.empty()) {
    Status ls = SetLogFile(config.log_file);
    if (!ls.ok()) {
      std::cerr << "brickfs: cannot use the log file: " << ls.message() << "\n";
      return 2;
    }
  }
  const std::string what = "OME-Zarr " + (*image)->ome_version() + " on Zarr v" +
                           std::to_string((*image)->zarr_format());
  ForeignFs fs(std::move(storage), std::move(*image), config);
  FuseSession session;
  if (!session.Mount(config, &kForeignOps, sizeof kForeignOps, &fs)) return 2;
  const std::string line = "mounted " + config.store + " on " + config.mountpoint +
                           " read-only: a foreign " + what +
                           " store (brickfs did not write it, so it is never written)";
  std::cerr << "brickfs: " << line << "\n";
  if (!session.Daemonize(config.foreground)) return 2;
  fs.Start();
  LogAlways(line);
  for (const std::string& n : fs.image().notes()) LogAlways("note: " + n);
  session.Loop();
  session.Destroy();
  LogAlways("unmounted " + config.store);
  return 0;
}

}  // namespace brickfs
