#include "volume/fsck.h"

#include "store/shard_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/scope_guard.h"
#include "common/thread_pool.h"
#include "format/journal.h"
#include "format/json.h"
#include "format/shard_index.h"
#include "store/journal.h"
#include "store/store.h"
#include "volume/downsample.h"
#include "volume/level_rebuild.h"

namespace brickfs {

std::string FsckProblem::Line() const {
  std::string s = path;
  if (block) {
    s += " block " + std::to_string(*block);
    if (block_zyx) s += " (block z,y,x " + ShapeToString(*block_zyx) + ")";
  }
  s += ": " + message;
  if (!action.empty()) s += (repaired ? " -- REPAIRED: " : " -- NOT REPAIRED: ") + action;
  return s;
}

uint64_t FsckReport::repaired() const {
  uint64_t n = 0;
  for (const auto& p : problems) n += p.repaired ? 1 : 0;
  return n;
}

uint64_t FsckReport::blocks_lost() const {
  uint64_t n = 0;
  for (const auto& p : problems) n += (p.block && p.repaired && p.data_lost) ? 1 : 0;
  return n;
}

namespace {

// The union of ranges, merged.
ZRanges MergeRanges(ZRanges all) {
  std::sort(all.begin(), all.end());
  ZRanges out;
  for (const auto& [a, b] : all) {
    if (!out.empty() && a <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, b);
    } else {
      out.emplace_back(a, b);
    }
  }
  return out;
}

}  // namespace

ZRanges FsckReport::lost_z() const {
  ZRanges all;
  for (const auto& p : problems) all.insert(all.end(), p.lost_z.begin(), p.lost_z.end());
  return MergeRanges(std::move(all));
}

ZRanges FsckReport::check_z() const {
  ZRanges all;
  for (const auto& p : problems) all.insert(all.end(), p.check_z.begin(), p.check_z.end());
  return MergeRanges(std::move(all));
}

int FsckReport::ExitCode() const {
  if (problems.empty()) return kFsckClean;
  return left() == 0 ? kFsckAllRepaired : kFsckProblemsLeft;
}

namespace {

constexpr uint64_t kChunk = 8u << 20;        // read/copy granularity
constexpr uint32_t kZstdMagic = 0xFD2FB528;  // first 4 bytes of every zstd frame (LE)
const char kDerived[] = "levels are derived from level 0: no data lost";

std::string BrickRel(int level, const Shape3& b) {
  return std::to_string(level) + "/c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" +
         std::to_string(b[2]);
}

std::string StripWhere(std::string m) {
  if (m.rfind(": ", 0) == 0) m.erase(0, 2);
  return m;
}

Shape3 BlockZyx(const Geometry& g, const Shape3& brick, uint64_t idx) {
  const Shape3 n = g.blocks_per_brick();
  return {brick[0] * n[0] + idx / (n[1] * n[2]), brick[1] * n[1] + (idx / n[2]) % n[1],
          brick[2] * n[2] + idx % n[2]};
}

// Slices [z0, z1) clipped to the shape, as inclusive ranges (empty if outside).
ZRanges ZSpan(const Geometry& g, uint64_t z0, uint64_t z1) {
  z1 = std::min(z1, g.shape[0]);
  if (z0 >= z1) return {};
  return {{z0, z1 - 1}};
}
ZRanges BlockZ(const Geometry& g, uint64_t bz) {
  return ZSpan(g, bz * g.block[0], (bz + 1) * g.block[0]);
}
ZRanges BrickZ(const Geometry& g, const Shape3& brick) {
  return ZSpan(g, brick[0] * g.brick[0], (brick[0] + 1) * g.brick[0]);
}
// The slices a block row or a brick holds, not clipped to any shape (for
// data lying outside it).
ZRanges BlockZAll(const Geometry& g, uint64_t bz) { return {{bz * g.block[0], (bz + 1) * g.block[0] - 1}}; }
ZRanges BrickZAll(const Geometry& g, uint64_t kz) { return {{kz * g.brick[0], (kz + 1) * g.brick[0] - 1}}; }

// A canonical chunk-key component: decimal, no sign, no leading zero.
bool ParseKey(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 15 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// KX.tmp (or KX.compact.tmp, from older versions of compact): a brick
// replaced whole (a write through bricks/, or compact) whose new file was
// never renamed over KX, so KX is still the old brick, intact.
bool IsReplacementLeftover(const std::string& name) {
  uint64_t ignored;
  for (const std::string suffix : {".compact.tmp", ".tmp"}) {
    if (EndsWith(name, suffix) && ParseKey(name.substr(0, name.size() - suffix.size()), &ignored)) return true;
  }
  return false;
}

struct DirEntry {
  std::string name;
  bool is_dir = false;
  bool is_file = false;
};

Result<std::vector<DirEntry>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::IOError("open directory " + dir, errno);
  ScopeGuard close_dir([d] { ::closedir(d); });
  std::vector<DirEntry> out;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat sb;
    DirEntry de{name};
    if (::lstat((dir + "/" + name).c_str(), &sb) == 0) {
      de.is_dir = S_ISDIR(sb.st_mode);
      de.is_file = S_ISREG(sb.st_mode);
    }
    out.push_back(std::move(de));
    errno = 0;
  }
  if (errno != 0) return Status::IOError("read directory " + dir, errno);
  std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) {
    uint64_t x, y;
    bool px = ParseKey(a.name, &x), py = ParseKey(b.name, &y);
    if (px && py) return x < y;
    if (px != py) return px;
    return a.name < b.name;
  });
  return out;
}

// Shared state of one fsck run.
struct Ctx {
  std::string store;
  std::string lost_dir;        // STORE/.brickfs/lost+found
  std::vector<Geometry> geos;  // [level]: the geometry its shards are checked against
  uint64_t n = 0;              // blocks per brick = index entries (every level)
  uint64_t index_size = 0;     // 16 n + 4
  uint64_t max_nbytes = 0;
  bool repair = false;
  const JournalState* journal = nullptr;  // null without a replayable journal

  std::mutex lost_mu;  // picking names in lost+found
};

constexpr char kLostRel[] = ".brickfs/lost+found";

// lost+found, made if missing and opened without following links (the store
// may be another user's: a lost+found or .brickfs planted as a link to
// elsewhere is refused, never written through). Returns its descriptor.
Result<int> OpenLostDir(const Ctx& ctx) {
  BRICKFS_RETURN_IF_ERROR(MakeDirsBeneath(ctx.store, kLostRel));
  return OpenDirBeneath(ctx.store, kLostRel);
}

// A fresh name in lost+found for `rel` ("0/c/1/2/3" -> "0_c_1_2_3<suffix>").
// Creates lost+found. REQUIRES: ctx.repair.
Result<std::string> LostName(Ctx& ctx, const std::string& rel, const std::string& suffix) {
  std::lock_guard<std::mutex> lock(ctx.lost_mu);
  BRICKFS_ASSIGN_OR_RETURN(const int dir_fd, OpenLostDir(ctx));
  ScopeGuard close_dir([dir_fd] { ::close(dir_fd); });
  std::string base = rel;
  std::replace(base.begin(), base.end(), '/', '_');
  base += suffix;
  std::string name = base;
  struct stat sb;
  for (int i = 1; ::fstatat(dir_fd, name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) == 0; ++i) {
    name = base + "." + std::to_string(i);
  }
  // Reserve the name so a concurrent brick cannot take it.
  int fd = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("create " + ctx.lost_dir + "/" + name, errno);
  ::close(fd);
  return name;
}

// Moves STORE/rel (a file or a directory) into lost+found; returns its new name.
Result<std::string> MoveToLost(Ctx& ctx, const std::string& rel) {
  BRICKFS_ASSIGN_OR_RETURN(std::string name, LostName(ctx, rel, ""));
  const std::string from = ctx.store + "/" + rel, to = ctx.lost_dir + "/" + name;
  const size_t slash = rel.find_last_of('/');
  const std::string from_dir = slash == std::string::npos ? "" : rel.substr(0, slash);
  const std::string from_name = rel.substr(slash + 1);
  BRICKFS_ASSIGN_OR_RETURN(const int src_fd, OpenDirBeneath(ctx.store, from_dir));
  ScopeGuard close_src([src_fd] { ::close(src_fd); });
  BRICKFS_ASSIGN_OR_RETURN(const int dst_fd, OpenLostDir(ctx));
  ScopeGuard close_dst([dst_fd] { ::close(dst_fd); });
  struct stat sb;
  if (::fstatat(src_fd, from_name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) {
    ::unlinkat(dst_fd, name.c_str(), 0);  // the reservation: rename(dir, file) is not allowed
  }
  if (::renameat(src_fd, from_name.c_str(), dst_fd, name.c_str()) != 0) {
    return Status::IOError("rename " + from + " to " + to, errno);
  }
  if (::fsync(dst_fd) != 0) return Status::IOError("fsync directory " + ctx.lost_dir, errno);
  if (::fsync(src_fd) != 0) {
    return Status::IOError("fsync directory " + from.substr(0, from.find_last_of('/')), errno);
  }
  return name;
}

// Copies bytes [from, to) of `fd` into a new lost+found file; returns its name.
Result<std::string> SaveToLost(Ctx& ctx, const std::string& rel, int fd, uint64_t from,
                               uint64_t to) {
  BRICKFS_ASSIGN_OR_RETURN(std::string name,
                           LostName(ctx, rel, ".bytes-" + std::to_string(from) + "-" + std::to_string(to)));
  const std::string path = ctx.lost_dir + "/" + name;
  // The name was just made with O_EXCL; opened again without following a
  // link someone may have swapped in since (the store may be another user's).
  BRICKFS_ASSIGN_OR_RETURN(const int dir_fd, OpenLostDir(ctx));
  ScopeGuard close_dir([dir_fd] { ::close(dir_fd); });
  BRICKFS_ASSIGN_OR_RETURN(const int out, OpenFileAt(dir_fd, name, path, O_WRONLY | O_TRUNC));
  ScopeGuard close_out([out] { ::close(out); });
  std::string buf;
  for (uint64_t pos = from; pos < to;) {
    uint64_t n = std::min(kChunk, to - pos);
    buf.resize(n);
    BRICKFS_RETURN_IF_ERROR(PreadAll(fd, buf.data(), n, pos, ctx.store + "/" + rel));
    BRICKFS_RETURN_IF_ERROR(PwriteAll(out, buf.data(), n, pos - from, path));
    pos += n;
  }
  if (::fsync(out) != 0) return Status::IOError("fsync " + path, errno);
  if (::fsync(dir_fd) != 0) return Status::IOError("fsync directory " + ctx.lost_dir, errno);
  return name;
}

// Number of zstd frame magics in bytes [from, to) of fd: the blocks (or
// block starts) in a range that is about to be cut off.
Result<uint64_t> CountFrames(int fd, uint64_t from, uint64_t to, const std::string& path) {
  uint64_t count = 0;
  std::string buf;
  for (uint64_t pos = from; pos < to;) {
    // Overlap 3 bytes so a magic across two chunks is seen once.
    uint64_t start = pos > from + 3 ? pos - 3 : from;
    uint64_t n = std::min(kChunk, to - start);
    buf.resize(n);
    BRICKFS_RETURN_IF_ERROR(PreadAll(fd, buf.data(), n, start, path));
    const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
    for (uint64_t i = 0; i + 4 <= n; ++i) count += GetU32(p + i) == kZstdMagic ? 1 : 0;
    pos = start + n;
  }
  return count;
}

Status CutShard(int fd, uint64_t length, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(length)) != 0) return Status::IOError("truncate " + path, errno);
  if (::fsync(fd) != 0) return Status::IOError("fsync " + path, errno);
  return Status::Ok();
}

// True when the index_size bytes at p are a valid index of a shard whose data
// part is [0, data_end): every entry empty or inside it, then the crc32c.
// Entries are tested last to first before the checksum is computed: in
// compressed bytes the very first test almost always fails. `ff[j]` is the
// number of 0xFF bytes ending just before p + j (saturated), so a run of
// empty entries is skipped in one step; a window of nothing but empty entries
// is compared with `empty_crc`, the checksum of an all-empty index.
bool PlausibleIndex(const uint8_t* p, const uint16_t* ff, uint64_t n, uint64_t data_end, uint64_t max_nbytes,
                    uint32_t empty_crc) {
  bool all_empty = true;
  for (uint64_t i = n; i > 0;) {
    const uint64_t e = 16 * (i - 1);  // entry i - 1
    if (ff[e + 16] >= 16) {
      i -= std::min<uint64_t>(ff[e + 16] / 16, i);
      continue;
    }
    const uint64_t off = GetU64(p + e), nb = GetU64(p + e + 8);
    if (nb == 0 || nb > max_nbytes || off > data_end || nb > data_end - off) return false;
    all_empty = false;
    --i;
  }
  const uint32_t stored = GetU32(p + 16 * n);
  if (all_empty) return stored == empty_crc;
  return Crc32c(p, 16 * n) == stored;
}

// The end of the last valid index that ends before `end`: the largest p in
// [index_size, end) such that the index_size bytes ending at p are a valid
// index for the data part [0, p - index_size). nullopt when there is none.
//
// Every byte position is a candidate (indexes need not be aligned to
// anything), so the file is read once, backwards, in windows of kChunk bytes
// (plus index_size of overlap). Per position the cost is PlausibleIndex's
// early exit: an entry needs an offset below p and 0 < nbytes <= max_nbytes,
// i.e. about 11 zero high bytes, which compressed block bytes almost never
// have; zero bytes fail at once (nbytes 0) and runs of 0xFF bytes (empty
// entries) are skipped whole. The checksum (16 N bytes) is computed only for
// windows whose every entry is plausible: in practice old indexes and windows
// shifted by 16 k bytes inside them, O(index_size^2 / 16) per old index.
// Measured with 512-entry indexes: 200 MB of random bytes plus 64 MB of 0xFF
// scan in about 2 s. Only a crafted file (a long run repeating one plausible
// 16-byte entry) makes every 16th position pay O(N) and a checksum.
Result<std::optional<uint64_t>> FindLastValidIndex(const Ctx& ctx, int fd, uint64_t end,
                                                   const std::string& path) {
  const uint64_t isz = ctx.index_size;
  if (end <= isz) return std::optional<uint64_t>();
  std::string empty;
  ShardIndex(ctx.n).EncodeTo(&empty);
  const uint32_t empty_crc = GetU32(reinterpret_cast<const uint8_t*>(empty.data()) + 16 * ctx.n);
  std::string buf;
  std::vector<uint16_t> ff;  // ff[j]: 0xFF bytes ending just before buf[j]
  uint64_t hi = end - 1;     // candidates p in [lo, hi]
  for (;;) {
    const uint64_t lo = hi - isz >= kChunk ? hi - kChunk : isz;
    const uint64_t rd = lo - isz;  // bytes [rd, hi) hold every candidate window
    buf.resize(hi - rd);
    BRICKFS_RETURN_IF_ERROR(PreadAll(fd, buf.data(), buf.size(), rd, path));
    const auto* base = reinterpret_cast<const uint8_t*>(buf.data());
    ff.resize(buf.size() + 1);
    ff[0] = 0;
    for (size_t j = 0; j < buf.size(); ++j) {
      ff[j + 1] = base[j] == 0xFF ? static_cast<uint16_t>(std::min<uint32_t>(ff[j] + 1u, 0xFFF0)) : 0;
    }
    for (uint64_t p = hi; p >= lo; --p) {
      const uint64_t w = p - isz - rd;  // the window's start in buf
      if (PlausibleIndex(base + w, ff.data() + w, ctx.n, p - isz, ctx.max_nbytes, empty_crc)) {
        return std::optional<uint64_t>(p);
      }
      if (p == lo) break;
    }
    if (lo == isz) return std::optional<uint64_t>();
    hi = lo - 1;
  }
}


// The number of live blocks in the index at the end of a shard file (0 when
// it has none that validates): what moving the file away takes from its array.
uint64_t LiveBlocksOf(const Ctx& ctx, const std::string& path) {
  auto opened = OpenStoreFile(path, O_RDONLY);
  if (!opened.ok()) return 0;
  const int fd = *opened;
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || static_cast<uint64_t>(sb.st_size) < ctx.index_size) return 0;
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  std::string buf(ctx.index_size, '\0');
  if (!PreadAll(fd, buf.data(), buf.size(), size - ctx.index_size, path).ok()) return 0;
  auto index = ShardIndex::Decode(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), ctx.n,
                                  size - ctx.index_size, ctx.max_nbytes, "");
  return index.ok() ? index->live_blocks() : 0;
}

struct BrickResult {
  std::vector<FsckProblem> problems;
  bool file = false;
  uint64_t bytes = 0;
  uint64_t blocks = 0;
  bool unrepaired_tail = false;  // a torn append the journal knows could not be cut
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> rows;  // level 0: block z -> (blocks, an example block)
  // Level >= 1, repair: what to rebuild from the level below, and the
  // problem (index into `problems`) the rebuild repairs.
  std::vector<std::pair<size_t, Shape3>> rebuild_blocks;  // problem, block z,y,x
  std::vector<size_t> rebuild_brick;                      // problems: the whole brick
};

// Checks (and with ctx.repair, repairs) the shard of `brick` in array
// `level`. Level 0 repairs drop what cannot be kept (and say it is lost);
// a level >= 1 asks for its blocks to be rebuilt instead (BrickResult).
BrickResult CheckBrick(Ctx& ctx, int level, const Shape3& brick) {
  BrickResult r;
  const Geometry& g = ctx.geos[level];
  const bool derived = level > 0;
  const std::string rel = BrickRel(level, brick);
  const std::string path = ctx.store + "/" + rel;
  auto add = [&](const std::string& kind, const std::string& message) -> FsckProblem& {
    FsckProblem p;
    p.kind = kind;
    p.level = level;
    p.path = rel;
    p.brick = brick;
    p.message = message;
    r.problems.push_back(std::move(p));
    return r.problems.back();
  };
  auto fail_io = [&](FsckProblem& p, const Status& s) {
    p.repaired = false;
    p.data_lost = false;
    p.lost_z.clear();
    p.action = "failed: " + s.ToString();
  };
  // A level brick whose data is gone is rebuilt from the level below.
  auto rebuild_brick = [&](size_t problem) {
    if (derived && ctx.repair) r.rebuild_brick.push_back(problem);
  };
  std::optional<uint64_t> recovered_opt;
  if (ctx.journal) {
    // As a mount recovers it (a replacement whose rename never happened
    // keeps the old file).
    const ShardStore shards(ctx.store + "/" + std::to_string(level), g, /*read_only=*/true);
    recovered_opt = shards.RecoveredLength(BrickId{static_cast<uint8_t>(level), brick}, *ctx.journal);
  }
  const bool journaled = recovered_opt.has_value();
  const uint64_t recovered = recovered_opt.value_or(0);  // the journal's committed length

  // Not by plain path: the file was lstat'ed as a regular file by the scan,
  // but the store may be another user's, who could swap in a link since.
  auto opened = OpenStoreFile(path, ctx.repair ? O_RDWR : O_RDONLY);
  if (!opened.ok()) {
    if (opened.status().code() == Status::Code::kIOError && opened.status().err() == ENOENT) {
      if (journaled && recovered > 0) {
        FsckProblem& p = add("shard_short", "the journal committed " + std::to_string(recovered) +
                                                " bytes to this brick but its file is missing");
        if (derived) {
          rebuild_brick(r.problems.size() - 1);
        } else {
          p.lost_z = BrickZ(g, brick);
          if (ctx.repair) p.action = "cannot be repaired: its committed blocks are gone";
        }
      }
    } else {
      add("io", "cannot open: " + opened.status().ToString());
    }
    return r;
  }
  const int fd = *opened;
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat sb;
  if (::fstat(fd, &sb) != 0) {
    add("io", "cannot stat: " + std::string(std::strerror(errno)));
    return r;
  }
  r.file = true;
  uint64_t size = static_cast<uint64_t>(sb.st_size);
  uint64_t end = size;  // the shard as a mount would see it

  // 1. The journal's view: the length of the last committed append.
  if (journaled && (size > recovered || recovered == 0)) {
    const uint64_t rec = recovered;
    FsckProblem& p = add(
        "torn_append",
        rec == 0 ? "file is " + std::to_string(size) +
                       " bytes but the journal committed no append to this brick (it was created by an "
                       "append torn by a crash)"
                 : "file is " + std::to_string(size) + " bytes, " + std::to_string(size - rec) +
                       " more than the " + std::to_string(rec) +
                       " bytes the journal committed (an append torn by a crash)");
    if (ctx.repair) {
      if (rec == 0) {
        ::close(fd);
        close_fd.Dismiss();
        auto moved = MoveToLost(ctx, rel);
        if (!moved.ok()) {
          fail_io(p, moved.status());
          r.unrepaired_tail = true;
          return r;
        }
        p.repaired = true;
        p.action = "the file held no committed append: moved to .brickfs/lost+found/" + *moved;
        r.file = false;
        return r;
      }
      auto saved = SaveToLost(ctx, rel, fd, rec, size);
      Status s = saved.ok() ? CutShard(fd, rec, path) : saved.status();
      if (!s.ok()) {
        fail_io(p, s);
        r.unrepaired_tail = true;
        r.bytes = size;
        return r;
      }
      p.repaired = true;
      p.action = "cut back to " + std::to_string(rec) + " bytes (the " + std::to_string(size - rec) +
                 " bytes cut are in .brickfs/lost+found/" + *saved + ")";
      size = rec;
    } else if (rec == 0) {
      r.bytes = size;
      return r;  // the brick has no committed data: nothing else to check
    }
    end = rec;
  } else if (journaled && size < recovered) {
    FsckProblem& p = add("shard_short", "file is " + std::to_string(size) + " bytes, shorter than the " +
                                            std::to_string(recovered) +
                                            " bytes the journal committed: committed data is missing");
    if (derived) {
      rebuild_brick(r.problems.size() - 1);
    } else {
      p.lost_z = BrickZ(g, brick);
      if (ctx.repair) p.action = "cannot be repaired: the missing bytes are gone";
    }
  }
  r.bytes = size;

  // 2. The index at the end, or the last valid one before it.
  auto no_index = [&](FsckProblem& p) {
    if (!derived) p.lost_z = BrickZ(g, brick);
    if (!ctx.repair) return;
    ::close(fd);
    close_fd.Dismiss();
    auto moved = MoveToLost(ctx, rel);
    if (!moved.ok()) return fail_io(p, moved.status());
    p.repaired = true;
    if (derived) {
      p.action = "moved to .brickfs/lost+found/" + *moved;
      rebuild_brick(r.problems.size() - 1);
    } else {
      p.data_lost = true;
      p.action = "moved to .brickfs/lost+found/" + *moved +
                 ": every block of this brick is LOST and reads as fill value 0";
    }
    r.file = false;
    r.bytes = 0;
  };
  std::optional<ShardIndex> index;
  if (end < ctx.index_size) {
    no_index(add("index", "shard is " + std::to_string(end) + " bytes, smaller than its " +
                              std::to_string(ctx.index_size) + "-byte index"));
    return r;
  }
  {
    std::string buf(ctx.index_size, '\0');
    Status s = PreadAll(fd, buf.data(), buf.size(), end - ctx.index_size, path);
    if (!s.ok()) {
      add("io", s.ToString());
      return r;
    }
    auto decoded = ShardIndex::Decode(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), ctx.n,
                                      end - ctx.index_size, ctx.max_nbytes, "");
    if (decoded.ok()) {
      index = std::move(*decoded);
    } else {
      const std::string why = "the index at offset " + std::to_string(end - ctx.index_size) +
                              " is invalid (" + StripWhere(decoded.status().message()) + ")";
      auto found = FindLastValidIndex(ctx, fd, end, path);
      if (!found.ok()) {
        add("io", why + "; scanning for an earlier index failed: " + found.status().ToString());
        return r;
      }
      if (!*found) {
        no_index(add("index", why + " and the file holds no earlier valid index"));
        return r;
      }
      const uint64_t p = **found;
      auto frames = CountFrames(fd, p, end, path);
      const uint64_t nframes = frames.ok() ? *frames : 0;
      FsckProblem& pr =
          add("torn_tail", why + "; the last valid index ends at offset " + std::to_string(p) + ", " +
                               std::to_string(end - p) + " bytes before the end (" +
                               (nframes ? std::to_string(nframes) + " block frames after it"
                                        : std::string("no block frame after it")) +
                               ")");
      const size_t pr_index = r.problems.size() - 1;
      if (nframes && !derived) pr.lost_z = BrickZ(g, brick);
      if (ctx.repair) {
        auto saved = SaveToLost(ctx, rel, fd, p, size);
        Status cs = saved.ok() ? CutShard(fd, p, path) : saved.status();
        if (!cs.ok()) {
          fail_io(pr, cs);
          return r;
        }
        pr.repaired = true;
        pr.action = "cut back to " + std::to_string(p) + " bytes (the " + std::to_string(size - p) +
                    " bytes cut are in .brickfs/lost+found/" + *saved + ")";
        if (derived) {
          if (nframes) rebuild_brick(pr_index);
          if (!nframes) pr.action += "; no block data was lost";
        } else {
          pr.data_lost = nframes > 0;
          pr.action += nframes ? "; blocks written after offset " + std::to_string(p) +
                                     " are LOST (their slices read as they were before that append)"
                               : std::string("; no block data was lost");
        }
        size = p;
        r.bytes = p;
      }
      end = p;
      // Re-read the index found (the scan validated it).
      Status rs = PreadAll(fd, buf.data(), buf.size(), end - ctx.index_size, path);
      if (!rs.ok()) {
        add("io", rs.ToString());
        return r;
      }
      auto again = ShardIndex::Decode(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), ctx.n,
                                      end - ctx.index_size, ctx.max_nbytes, rel);
      if (!again.ok()) {
        add("io", again.status().ToString());
        return r;
      }
      index = std::move(*again);
    }
  }

  // 3. Blocks: inside the shape, not overlapping, each one decodable.
  const Shape3 grid = g.block_grid();
  std::vector<uint64_t> live;
  for (uint64_t i = 0; i < ctx.n; ++i) {
    if (!index->at(i).empty()) live.push_back(i);
  }
  std::sort(live.begin(), live.end(),
            [&](uint64_t a, uint64_t b) { return index->at(a).offset < index->at(b).offset; });
  std::map<uint64_t, size_t> dropped;  // block index -> its problem
  auto block_problem = [&](const std::string& kind, uint64_t i, const std::string& message) -> FsckProblem& {
    FsckProblem& p = add(kind, message);
    p.block = i;
    p.block_zyx = BlockZyx(g, brick, i);
    return p;
  };
  std::vector<size_t> overlaps;  // problems naming two blocks
  std::vector<std::pair<uint64_t, uint64_t>> overlap_pairs;
  uint64_t reach_block = 0, reach_end = 0;  // the block reaching furthest so far
  for (size_t k = 0; k < live.size(); ++k) {
    const uint64_t i = live[k];
    const BlockLocation& loc = index->at(i);
    if (k > 0 && loc.offset < reach_end) {
      const BlockLocation& prev = index->at(reach_block);
      block_problem("overlap", i,
                    "bytes " + std::to_string(loc.offset) + "+" + std::to_string(loc.nbytes) +
                        " overlap block " + std::to_string(reach_block) + " (bytes " +
                        std::to_string(prev.offset) + "+" + std::to_string(prev.nbytes) + ")");
      overlaps.push_back(r.problems.size() - 1);
      overlap_pairs.emplace_back(reach_block, i);
    }
    if (loc.offset + loc.nbytes > reach_end) {
      reach_end = loc.offset + loc.nbytes;
      reach_block = i;
    }
  }
  BlockCodec codec(1);
  std::vector<uint8_t> raw(g.block_bytes());
  std::string enc;
  for (uint64_t i : live) {
    const BlockLocation& loc = index->at(i);
    const Shape3 zyx = BlockZyx(g, brick, i);
    if (zyx[0] >= grid[0] || zyx[1] >= grid[1] || zyx[2] >= grid[2]) {
      FsckProblem& p = block_problem("block_outside_shape", i,
                                     "a stored block outside the array shape " + ShapeToString(g.shape) +
                                         " (block grid " + ShapeToString(grid) + ")");
      if (!derived) p.lost_z = BlockZAll(g, zyx[0]);
      dropped[i] = r.problems.size() - 1;
      continue;
    }
    enc.resize(loc.nbytes);
    Status s = PreadAll(fd, enc.data(), enc.size(), loc.offset, path);
    if (!s.ok()) {
      block_problem("io", i, s.ToString());
      continue;
    }
    ++r.blocks;
    s = codec.Decode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size(), raw.data(), raw.size());
    if (!s.ok()) {
      FsckProblem& p = block_problem("block", i,
                                     s.message() + " at offset " + std::to_string(loc.offset) + ", " +
                                         std::to_string(loc.nbytes) + " bytes");
      if (derived) {
        // Rebuilt from the level below (a fresh copy appended), not dropped.
        if (ctx.repair) r.rebuild_blocks.emplace_back(r.problems.size() - 1, zyx);
      } else {
        p.lost_z = BlockZ(g, zyx[0]);
        dropped[i] = r.problems.size() - 1;
      }
      continue;
    }
    if (!derived) {
      auto& row = r.rows[zyx[0]];
      if (row.first++ == 0) row.second = i;
    }
  }

  // 4. Repair: one fresh index without the dropped entries, appended.
  if (ctx.repair && !dropped.empty()) {
    ShardIndex fixed = *index;
    for (const auto& [i, _] : dropped) fixed.Set(i, BlockLocation{});
    std::string buf;
    fixed.EncodeTo(&buf);
    Status ws = PwriteAll(fd, buf.data(), buf.size(), size, path);
    if (ws.ok() && ::fsync(fd) != 0) ws = Status::IOError("fsync " + path, errno);
    for (const auto& [i, k] : dropped) {
      FsckProblem& p = r.problems[k];
      if (!ws.ok()) {
        // A partial index at the end is cut off by the next fsck --repair.
        fail_io(p, ws);
        continue;
      }
      p.repaired = true;
      const std::string dropped_text =
          "dropped from the index (new index appended at offset " + std::to_string(size) + ")";
      if (derived) {
        p.action = dropped_text + "; " + kDerived;
      } else if (p.kind == "block") {
        p.data_lost = true;
        const ZRanges z = BlockZ(g, p.block_zyx->at(0));
        p.action = dropped_text + ": the block's data is LOST and reads as fill value 0" +
                   (z.empty() ? std::string() : "; copy slices z " + RangesToString(z) + " again to restore it");
      } else {
        // Outside the shape: no reader ever saw it, but it is data all the same.
        p.data_lost = true;
        const std::string z = RangesToString(p.lost_z);
        p.action = dropped_text + ": its data (slices z " + z +
                   ") is LOST to the array; no reader saw it, as it lay outside the array's shape, "
                   "but if slices z " + z + " belong to the volume, copy them again";
      }
    }
    if (ws.ok()) {
      r.bytes = size + buf.size();
      for (size_t k = 0; k < overlaps.size(); ++k) {
        const auto& [a, b] = overlap_pairs[k];
        if (dropped.count(a) || dropped.count(b)) {
          r.problems[overlaps[k]].repaired = true;
          r.problems[overlaps[k]].action = "resolved: block " + std::to_string(dropped.count(a) ? a : b) +
                                           " was dropped as corrupt";
        }
      }
    }
  }
  for (size_t k = 0; k < overlaps.size(); ++k) {
    FsckProblem& p = r.problems[overlaps[k]];
    if (!ctx.repair || p.repaired) continue;
    if (derived) {
      // Both verify, but the level below says what each must hold.
      const auto& [a, b] = overlap_pairs[k];
      r.rebuild_blocks.emplace_back(overlaps[k], BlockZyx(g, brick, a));
      r.rebuild_blocks.emplace_back(overlaps[k], BlockZyx(g, brick, b));
    } else {
      p.action = "both blocks verify; fsck cannot tell which one is misplaced (copy slices z " +
                 RangesToString(BlockZ(g, p.block_zyx->at(0))) + " again)";
    }
  }
  for (auto& p : r.problems) {
    if (ctx.repair && !p.repaired && p.action.empty() && p.kind == "io") p.action = "cannot be repaired by fsck";
  }
  return r;
}

std::string StoreName(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".zarr") == 0) base.resize(base.size() - 5);
  return base;
}

// Why the group's attributes.ome does not describe the store's `num_levels`
// arrays ("" when it does).
std::string OmeProblem(const Json& group, int num_levels) {
  const Json* attrs = group.Get("attributes");
  const Json* ome = attrs ? attrs->Get("ome") : nullptr;
  const Json* ms = ome ? ome->Get("multiscales") : nullptr;
  if (!ms || !ms->is_array() || ms->as_array().empty()) return "attributes.ome.multiscales is missing";
  const Json& m0 = ms->as_array()[0];
  const Json* axes = m0.Get("axes");
  if (!axes || !axes->is_array() || axes->as_array().size() != 3) {
    return "attributes.ome.multiscales[0].axes is not 3 axes (z, y, x)";
  }
  const Json* ds = m0.Get("datasets");
  if (!ds || !ds->is_array() || ds->as_array().empty()) return "attributes.ome.multiscales[0].datasets is missing";
  std::string paths;
  bool right = ds->as_array().size() == static_cast<size_t>(num_levels);
  for (size_t i = 0; i < ds->as_array().size(); ++i) {
    const Json* p = ds->as_array()[i].Get("path");
    const std::string name = p && p->is_string() ? p->as_string() : "?";
    paths += (i ? ", " : "") + name;
    right &= name == std::to_string(i);
  }
  if (!right) {
    return "attributes.ome.multiscales[0].datasets lists " + paths + ", but 0/zarr.json has " +
           std::to_string(num_levels) + (num_levels == 1 ? " level (0)" : " levels (0-" +
                                                                              std::to_string(num_levels - 1) + ")");
  }
  return "";
}

// The group document with our attributes.ome, other attributes kept.
Result<std::string> RepairedGroup(const Json& group, const VolumeMeta& meta, const std::string& store) {
  BRICKFS_ASSIGN_OR_RETURN(Json ours, Json::Parse(meta.GroupJson(StoreName(store))));
  Json doc = group;
  const Json* old_attrs = group.Get("attributes");
  Json attrs = old_attrs && old_attrs->is_object() ? *old_attrs : Json::MakeObject();
  attrs.Set("ome", *ours.Get("attributes")->Get("ome"));
  doc.Set("attributes", std::move(attrs));
  return doc.Dump(2) + "\n";
}

// Why STORE/L/zarr.json does not describe level L of `meta` ("" when it does).
std::string LevelMetaProblem(const VolumeMeta& got, const VolumeMeta& meta, int level) {
  const Shape3 want = LevelShape(meta.geo.shape, level);
  if (got.geo.shape != want) {
    return "shape " + ShapeToString(got.geo.shape) + " is not level " + std::to_string(level) + " of 0/zarr.json's " +
           ShapeToString(meta.geo.shape) + " (want " + ShapeToString(want) + ")";
  }
  if (got.geo.block != meta.geo.block) {
    return "block (inner chunk) shape " + ShapeToString(got.geo.block) + " differs from 0/zarr.json's " +
           ShapeToString(meta.geo.block);
  }
  if (got.geo.brick != meta.geo.brick) {
    return "brick (shard) shape " + ShapeToString(got.geo.brick) + " differs from 0/zarr.json's " +
           ShapeToString(meta.geo.brick);
  }
  if (got.geo.dtype != meta.geo.dtype) {
    return "data_type " + std::string(DTypeName(got.geo.dtype)) + " differs from 0/zarr.json's " +
           std::string(DTypeName(meta.geo.dtype));
  }
  if (got.zstd_level != meta.zstd_level) {
    return "zstd level " + std::to_string(got.zstd_level) + " differs from 0/zarr.json's " +
           std::to_string(meta.zstd_level);
  }
  if (got.level != level) {
    return "attributes.brickfs.level is " + std::to_string(got.level) + ", not " + std::to_string(level);
  }
  return "";
}

}  // namespace

Result<FsckReport> Fsck(const std::string& store_path, const FsckOptions& options) {
  FsckReport rep;
  rep.store = store_path;
  rep.repair = options.repair;
  rep.deep = options.deep;

  // 1. The store, locked: no daemon may write it meanwhile. A group document
  //    another tool rewrote does not stop the check: it is rebuilt below.
  BRICKFS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                           Store::OpenForMaintenance(store_path, !options.repair, /*allow_bad_group=*/true));
  const std::optional<VolumeMeta>& meta = store->meta();
  rep.finalized = meta && meta->finalized;

  Ctx ctx;
  ctx.store = store_path;
  ctx.lost_dir = store_path + "/.brickfs/lost+found";
  ctx.repair = options.repair;

  // 2. The journal.
  const std::string jpath = Journal::PathFor(store_path);
  std::optional<JournalState> js;
  constexpr size_t kNone = ~size_t{0};
  size_t unclean = kNone;  // index of the unclean_shutdown problem
  size_t journal_torn = kNone;
  ZRanges never_committed;
  auto add = [&](const std::string& kind, const std::string& path, const std::string& message) -> FsckProblem& {
    FsckProblem p;
    p.kind = kind;
    p.path = path;
    p.message = message;
    rep.problems.push_back(std::move(p));
    return rep.problems.back();
  };
  {
    auto bytes = ReadFileToString(jpath, uint64_t{1} << 34);
    if (!bytes.ok() && bytes.status().code() != Status::Code::kNotFound) {
      add("journal", ".brickfs/journal", "cannot be read: " + bytes.status().ToString());
    } else if (bytes.ok() && !bytes->empty()) {
      rep.journal_present = true;
      auto replayed = ReplayJournal(*bytes, ".brickfs/journal");
      if (!replayed.ok()) {
        FsckProblem& p = add("journal", ".brickfs/journal", StripWhere(replayed.status().message()));
        if (options.repair) {
          p.action = "cannot be repaired by fsck: the journal's records cannot be trusted; move it away "
                     "and run fsck again (slices since the last clean unmount may then be listed wrongly)";
        }
      } else {
        js = std::move(*replayed);
        rep.journal_frames = js->frames;
        rep.journal_torn_bytes = js->torn_bytes;
        if (js->torn_bytes > 0) {
          add("journal_torn", ".brickfs/journal",
              std::to_string(js->torn_bytes) + " torn bytes after " + std::to_string(js->frames) +
                  " valid records (offset " + std::to_string(js->valid_bytes) +
                  "): a record cut by a crash, ignored by replay");
          journal_torn = rep.problems.size() - 1;
        }
      }
    }
  }

  // A journal of another session (copied from another store) is not this
  // store's record: ignored, moved to lost+found by a repair.
  if (js && meta && meta->session != 0 && js->session != 0 && meta->session != js->session &&
      (meta->finalized || meta->session != js->previous_session)) {
    FsckProblem& p = add("journal", ".brickfs/journal",
                         "belongs to another session than 0/zarr.json (it was copied from another "
                         "store or replaced); it is ignored");
    if (options.repair) {
      auto moved = MoveToLost(ctx, ".brickfs/journal");
      if (moved.ok()) {
        p.repaired = true;
        p.action = "moved to .brickfs/lost+found/" + *moved;
      } else {
        p.action = "could not move it: " + moved.status().ToString();
      }
    }
    if (journal_torn != kNone) rep.problems.erase(rep.problems.begin() + static_cast<long>(journal_torn));
    journal_torn = kNone;
    js.reset();
  }

  // 3. The geometry to check against: zarr.json, grown by the journal.
  std::optional<Geometry> geo;
  if (meta) geo = meta->geo;
  if (js && js->geometry) {
    const Geometry& jg = *js->geometry;
    if (geo && (jg.block != geo->block || jg.brick != geo->brick || jg.dtype != geo->dtype)) {
      FsckProblem& p = add("journal", ".brickfs/journal",
                           "its geometry (block " + ShapeToString(jg.block) + ", brick " + ShapeToString(jg.brick) +
                               ", " + std::string(DTypeName(jg.dtype)) + ") differs from 0/zarr.json (block " +
                               ShapeToString(geo->block) + ", brick " + ShapeToString(geo->brick) + ", " +
                               std::string(DTypeName(geo->dtype)) + "); the journal is ignored");
      if (options.repair) p.action = "cannot be repaired by fsck: the journal belongs to another array";
      if (journal_torn != kNone) rep.problems.erase(rep.problems.begin() + static_cast<long>(journal_torn));
      journal_torn = kNone;
      js.reset();
    } else if (!geo) {
      geo = jg;
    } else {
      geo->shape[0] = std::max(geo->shape[0], jg.shape[0]);
    }
  }
  std::optional<VolumeMeta> recovered;  // the metadata after replaying the journal
  if (js && js->frames > 0) {
    ctx.journal = &*js;
    if (geo) recovered = RecoveredMeta(meta, *geo, *js, &never_committed);
    std::string msg = "the store was not unmounted cleanly: the journal holds " + std::to_string(js->frames) +
                      " records (" + std::to_string(js->committed_slices.size()) +
                      " slices committed since the last clean unmount";
    if (!never_committed.empty()) msg += "; slices z " + RangesToString(never_committed) + " received but never committed";
    msg += ")";
    FsckProblem& p = add("unclean_shutdown", ".brickfs/journal", msg);
    p.lost_z = never_committed;
    unclean = rep.problems.size() - 1;
    if (recovered) geo = recovered->geo;
  }
  const VolumeMeta* effective = recovered ? &*recovered : meta ? &*meta : nullptr;
  const int num_levels = effective ? std::clamp(effective->num_levels, 1, kMaxLevels) : 1;
  // A store that is not finalized may hold blocks past the shape it recorded
  // (a session whose journal was lost): they are evidence, not strays.
  const bool shape_may_grow = !(meta && (meta->finalized || meta->fixed_shape));

  // 4. The group document: ours, with the OME multiscales of every level.
  size_t group_problem = kNone;
  bool group_whole = false;         // rebuild it whole (else: attributes.ome only)
  std::optional<std::string> group_found;  // the document found, kept when replaced
  std::optional<Json> group_doc;
  if (meta) {
    auto text = ReadFileToString(store_path + "/zarr.json", 1 << 20);
    if (!text.ok() && text.status().code() != Status::Code::kNotFound) {
      add("io", "zarr.json", "cannot be read: " + text.status().ToString());
    } else if (!text.ok()) {
      add("metadata", "zarr.json",
          "is missing: the store's group document, through which Zarr and OME-Zarr readers find the arrays");
      group_problem = rep.problems.size() - 1;
      group_whole = true;
    } else if (Status z = CheckGroupJson(*text, "zarr.json"); !z.ok()) {
      add("metadata", "zarr.json",
          BrickfsGroupProblem(*text) + ": not this store's group document (another tool may have rewritten it)");
      group_problem = rep.problems.size() - 1;
      group_whole = true;
      group_found = *text;
    } else if (auto doc = Json::Parse(*text); doc.ok()) {
      const std::string why = OmeProblem(*doc, num_levels);
      if (!why.empty()) {
        add("metadata", "zarr.json", why + " (OME-Zarr viewers will not find the volume)");
        group_problem = rep.problems.size() - 1;
        group_doc = std::move(*doc);
      }
    }
  }

  // 5. Spool files: slabs a daemon parked and never committed.
  {
    const std::string spool = store_path + "/.brickfs/spool";
    struct stat sb;
    if (::lstat(spool.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) {
      BRICKFS_ASSIGN_OR_RETURN(auto entries, ListDir(spool));
      for (const auto& e : entries) {
        const std::string rel = ".brickfs/spool/" + e.name;
        uint64_t slab;
        std::string what = "a file";
        if (e.name.rfind("slab-", 0) == 0 && ParseKey(e.name.substr(5), &slab)) {
          what = "slab " + e.name.substr(5) +
                 (geo ? " (slices z " + RangesToString(BlockZAll(*geo, slab)) + ")" : std::string());
        }
        FsckProblem& p = add("spool", rel,
                             what + " parked in the spool by a brickfs daemon that did not unmount cleanly: its "
                                    "slices were never committed to the shards, and brickfs never reads the "
                                    "file back (brickfs info lists the slices to copy again)");
        if (!options.repair) continue;
        if (e.is_file) {
          if (::unlink((store_path + "/" + rel).c_str()) == 0) {
            p.repaired = true;
            p.action = "removed (it held no committed data)";
          } else {
            p.action = "failed: unlink: " + std::string(std::strerror(errno));
          }
        } else {
          auto moved = MoveToLost(ctx, rel);
          p.repaired = moved.ok();
          p.action = moved.ok() ? "moved to .brickfs/lost+found/" + *moved + " (it held no committed data)"
                                : "failed: " + moved.status().ToString();
        }
      }
      if (options.repair) ::rmdir(spool.c_str());  // only when empty
    }
  }

  // 6. Files under L/c of every level: shards inside the brick grid,
  //    everything else stray.
  auto stray = [&](int level, const std::string& rel, const std::string& why, bool leftover,
                   uint64_t live_blocks, const ZRanges& z) {
    std::string message = why;
    if (live_blocks) message += " (it holds " + std::to_string(live_blocks) + " stored blocks)";
    FsckProblem& p = add("stray", rel, message);
    p.level = level;
    const bool loses = live_blocks > 0 && level == 0;
    if (loses) p.lost_z = z;
    if (!options.repair) return;
    if (leftover) {
      if (::unlink((store_path + "/" + rel).c_str()) == 0) {
        p.repaired = true;
        p.action = "deleted";
      } else {
        p.action = "failed: unlink: " + std::string(std::strerror(errno));
      }
      return;
    }
    auto moved = MoveToLost(ctx, rel);
    p.repaired = moved.ok();
    if (!moved.ok()) {
      p.action = "failed: " + moved.status().ToString();
      p.lost_z.clear();
      return;
    }
    p.action = "moved to .brickfs/lost+found/" + *moved;
    if (loses) {
      p.data_lost = true;
      const std::string zs = RangesToString(z);
      p.action += ": its " + std::to_string(live_blocks) + " stored blocks (slices z " + zs +
                  ") are LOST to the array, though their bytes are kept there; no reader saw them, as they "
                  "lay outside the array's shape, but if slices z " + zs + " belong to the volume, copy them again";
    } else if (level > 0 && live_blocks) {
      p.action += std::string(" (") + kDerived + ")";
    }
  };
  // The shards of `level` (grid: its brick grid; z_open: any z index is a
  // brick, for a level 0 whose recorded shape may be stale).
  auto list_shards = [&](int level, const Shape3& grid, bool z_open, bool have_geo,
                         std::vector<Shape3>* bricks) -> Status {
    const std::string lrel = std::to_string(level) + "/c";
    const std::string cdir = store_path + "/" + lrel;
    struct stat sb;
    if (::stat(cdir.c_str(), &sb) != 0) return Status::Ok();
    const char* axis[3] = {"z", "y", "x"};
    // Live blocks under a stray path whose keys are all brick indexes
    // (what moving it takes away), and the z of their bricks.
    auto peek = [&](const std::string& rel, int depth, uint64_t kz, uint64_t* live, ZRanges* z) {
      std::vector<std::pair<std::string, int>> todo{{rel, depth}};
      while (!todo.empty()) {
        auto [r, d] = todo.back();
        todo.pop_back();
        if (d == 3) {
          const uint64_t n = LiveBlocksOf(ctx, store_path + "/" + r);
          *live += n;
          if (n && geo) *z = MergeRanges([&] {
            ZRanges all = BrickZAll(*geo, kz);
            all.insert(all.end(), z->begin(), z->end());
            return all;
          }());
          continue;
        }
        auto list = ListDir(store_path + "/" + r);
        if (!list.ok()) continue;
        for (const auto& e : *list) {
          uint64_t v;
          if (ParseKey(e.name, &v)) todo.push_back({r + "/" + e.name, d + 1});
        }
      }
    };
    auto key_problem = [&](const DirEntry& e, int a, uint64_t* v) -> std::string {
      if (!ParseKey(e.name, v)) return "not a brick index (" + std::string(axis[a]) + ")";
      if (!have_geo) return "0/zarr.json is missing: no shard can belong to the array";
      if (*v >= grid[a] && !(a == 0 && z_open)) {
        return std::string(axis[a]) + " index " + e.name + " is outside the brick grid " + ShapeToString(grid);
      }
      return "";
    };
    auto outside = [&](const std::string& why) { return why.find("outside the brick grid") != std::string::npos; };
    BRICKFS_ASSIGN_OR_RETURN(auto l1, ListDir(cdir));
    for (const auto& e1 : l1) {
      uint64_t kz, ky, kx;
      std::string r1 = lrel + "/" + e1.name;
      std::string why = key_problem(e1, 0, &kz);
      if (why.empty() && !e1.is_dir) why = "not a directory";
      if (!why.empty()) {
        uint64_t live = 0;
        ZRanges z;
        if (outside(why) && e1.is_dir) peek(r1, 1, kz, &live, &z);
        stray(level, r1, why, false, live, z);
        continue;
      }
      BRICKFS_ASSIGN_OR_RETURN(auto l2, ListDir(store_path + "/" + r1));
      for (const auto& e2 : l2) {
        std::string r2 = r1 + "/" + e2.name;
        why = key_problem(e2, 1, &ky);
        if (why.empty() && !e2.is_dir) why = "not a directory";
        if (!why.empty()) {
          uint64_t live = 0;
          ZRanges z;
          if (outside(why) && e2.is_dir) peek(r2, 2, kz, &live, &z);
          stray(level, r2, why, false, live, z);
          continue;
        }
        BRICKFS_ASSIGN_OR_RETURN(auto l3, ListDir(store_path + "/" + r2));
        for (const auto& e3 : l3) {
          std::string r3 = r2 + "/" + e3.name;
          if (e3.is_file && IsReplacementLeftover(e3.name)) {
            stray(level, r3,
                  "leftover of an interrupted brick replacement or brickfs compact (the shard itself is intact)",
                  true, 0, {});
            continue;
          }
          why = key_problem(e3, 2, &kx);
          if (why.empty() && !e3.is_file) why = "not a regular file";
          if (!why.empty()) {
            uint64_t live = 0;
            ZRanges z;
            if (outside(why) && e3.is_file) peek(r3, 3, kz, &live, &z);
            stray(level, r3, why, false, live, z);
            continue;
          }
          bricks->push_back({kz, ky, kx});
        }
      }
    }
    // Bricks the journal names but whose files are gone.
    if (ctx.journal) {
      std::set<Shape3> have(bricks->begin(), bricks->end());
      std::set<BrickId> ids;
      for (const auto& [id, _] : js->base) ids.insert(id);
      for (const auto& [id, _] : js->committed) ids.insert(id);
      for (const BrickId& id : ids) {
        if (id.level != level || have.count(id.brick)) continue;
        if ((id.brick[0] < grid[0] || z_open) && id.brick[1] < grid[1] && id.brick[2] < grid[2]) {
          bricks->push_back(id.brick);
          have.insert(id.brick);
        }
      }
    }
    return Status::Ok();
  };
  // Checks the bricks of `level` in parallel; results in order.
  auto check_bricks = [&](int level, const std::vector<Shape3>& bricks) {
    std::vector<BrickResult> results(bricks.size());
    size_t threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    threads = std::min<size_t>(threads, std::max<size_t>(1, bricks.size()));
    ThreadPool pool(threads);
    pool.ParallelFor(bricks.size(), [&](size_t i) { results[i] = CheckBrick(ctx, level, bricks[i]); });
    return results;
  };

  // 6a. Level 0.
  if (geo) {
    ctx.n = geo->blocks_in_brick();
    ctx.index_size = ShardIndex::EncodedSize(ctx.n);
    ctx.max_nbytes = BlockCodec::MaxEncodedSize(geo->block_bytes());
  }
  Geometry g0 = geo.value_or(Geometry{});
  std::vector<Shape3> bricks0;
  BRICKFS_RETURN_IF_ERROR(list_shards(0, g0.brick_grid(), geo && shape_may_grow, geo.has_value(), &bricks0));
  if (!geo) {
    rep.notes.push_back("empty store: no slice was ever stored (no 0/zarr.json)");
    return rep;
  }
  rep.num_levels = num_levels;
  const uint64_t recorded_z = geo->shape[0];  // the shape recorded (or recovered)
  ctx.geos.assign(num_levels, *geo);
  if (shape_may_grow) {
    // Checked as far as the bricks found reach; the shape is settled below.
    for (const Shape3& b : bricks0) {
      ctx.geos[0].shape[0] = std::max(ctx.geos[0].shape[0], (b[0] + 1) * geo->brick[0]);
    }
  }
  bool tails_left = false;
  // Problems (indexes into rep.problems) whose repair is a rebuild of level blocks.
  std::vector<std::tuple<size_t, int, Shape3>> rebuild_blocks;  // problem, level, block z,y,x
  std::vector<std::tuple<size_t, int, Shape3>> rebuild_bricks;  // problem, level, brick
  rep.levels.assign(num_levels, FsckLevelCounts{});
  auto merge = [&](int level, const std::vector<Shape3>& bricks, std::vector<BrickResult>& results,
                   std::map<uint64_t, std::pair<uint64_t, std::pair<Shape3, uint64_t>>>* rows) {
    FsckLevelCounts& c = rep.levels[level];
    c.level = level;
    for (size_t i = 0; i < bricks.size(); ++i) {
      BrickResult& r = results[i];
      c.shard_files += r.file ? 1 : 0;
      c.shard_bytes += r.bytes;
      c.blocks_checked += r.blocks;
      tails_left |= r.unrepaired_tail;
      const size_t base = rep.problems.size();
      for (auto& p : r.problems) rep.problems.push_back(std::move(p));
      for (const auto& [k, zyx] : r.rebuild_blocks) rebuild_blocks.emplace_back(base + k, level, zyx);
      for (size_t k : r.rebuild_brick) rebuild_bricks.emplace_back(base + k, level, bricks[i]);
      if (!rows) continue;
      for (const auto& [bz, row] : r.rows) {
        auto& agg = (*rows)[bz];
        if (agg.first == 0) agg.second = {bricks[i], row.second};
        agg.first += row.first;
      }
    }
  };
  std::map<uint64_t, std::pair<uint64_t, std::pair<Shape3, uint64_t>>> rows;  // block z -> count, example
  {
    std::vector<BrickResult> results = check_bricks(0, bricks0);
    merge(0, bricks0, results, &rows);
  }

  // 6b. The shape of a store that is not finalized, grown over the blocks
  //     stored past it: the shape recorded when its daemon started, never
  //     updated because the journal that would have grown it is gone.
  size_t shape_problem = kNone;
  ZRanges grown_z;
  if (shape_may_grow && !rows.empty()) {
    const uint64_t end = (rows.rbegin()->first + 1) * geo->block[0];
    if (end > recorded_z) {
      uint64_t blocks = 0;
      for (const auto& [bz, agg] : rows) blocks += (bz + 1) * geo->block[0] > recorded_z ? agg.first : 0;
      grown_z = {{recorded_z, end - 1}};
      Geometry grown = *geo;
      grown.shape[0] = end;
      FsckProblem& p = add("shape", "0/zarr.json",
                           "the store is not finalized (its daemon died) and " + std::to_string(blocks) +
                               " stored blocks lie past slice " + std::to_string(recorded_z) +
                               " of the recorded shape " + ShapeToString(geo->shape) + " (block rows up to z " +
                               std::to_string(end - 1) + "): the shape is stale, no journal recorded those "
                               "slices");
      p.check_z = grown_z;
      shape_problem = rep.problems.size() - 1;
      geo = grown;
    }
  }
  rep.geometry = *geo;
  for (int level = 0; level < num_levels; ++level) {
    ctx.geos[level] = *geo;
    ctx.geos[level].shape = LevelShape(geo->shape, level);
  }

  // 6c. Levels: strays at the top, their metadata, their shards.
  {
    auto root = ListDir(store_path);
    if (!root.ok()) return root.status();
    for (const auto& e : *root) {
      uint64_t l;
      if (!ParseKey(e.name, &l) || l < static_cast<uint64_t>(num_levels)) continue;
      stray(static_cast<int>(std::min<uint64_t>(l, kMaxLevels)), e.name,
            "a pyramid level that 0/zarr.json does not list (num_levels " + std::to_string(num_levels) + ")" +
                (meta && meta->finalized ? std::string()
                                         : ": built by a session that did not finish (a read-write mount "
                                           "builds the levels again when it unmounts)"),
            false, 0, {});
      if (rep.problems.back().repaired) rep.problems.back().action += std::string(" (") + kDerived + ")";
    }
  }
  std::vector<size_t> level_meta_problem(num_levels, kNone);
  std::vector<bool> level_missing(num_levels, false);
  if (meta) {
    for (int level = 1; level < num_levels; ++level) {
      const std::string rel = std::to_string(level) + "/zarr.json";
      auto text = ReadFileToString(store_path + "/" + rel, 1 << 20);
      std::string why;
      if (!text.ok() && text.status().code() == Status::Code::kNotFound) {
        struct stat sb;
        level_missing[level] = ::stat((store_path + "/" + std::to_string(level)).c_str(), &sb) != 0;
        why = "is missing (0/zarr.json lists " + std::to_string(num_levels) + " levels)" +
              (level_missing[level] ? "; so is the level's whole directory " + std::to_string(level) + "/"
                                    : std::string());
      } else if (!text.ok()) {
        why = "cannot be read: " + text.status().ToString();
      } else {
        auto got = VolumeMeta::FromArrayJson(*text, rel);
        why = got.ok() ? LevelMetaProblem(*got, *meta, level) : StripWhere(got.status().message());
      }
      if (why.empty()) continue;
      FsckProblem& p = add("metadata", rel, why);
      p.level = level;
      level_meta_problem[level] = rep.problems.size() - 1;
    }
  }
  for (int level = 1; level < num_levels; ++level) {
    std::vector<Shape3> bricks;
    BRICKFS_RETURN_IF_ERROR(list_shards(level, ctx.geos[level].brick_grid(), false, true, &bricks));
    std::vector<BrickResult> results = check_bricks(level, bricks);
    merge(level, bricks, results, nullptr);
  }
  for (const FsckLevelCounts& c : rep.levels) {
    rep.shard_files += c.shard_files;
    rep.shard_bytes += c.shard_bytes;
    rep.blocks_checked += c.blocks_checked;
  }

  // 7. slices_present against the stored blocks. A finalized store, or the
  //    store as its journal recovers it, lists at least one slice of every
  //    slab with stored blocks (block rows the shape grew over excepted: they
  //    are the shape problem's). A store whose daemon died without a journal
  //    to replay lists only what was committed when its session began: its
  //    slabs stored since then are evidence (before an unmount a slab is
  //    stored only once all its slices arrived) and are listed again.
  size_t present_problem = kNone;
  ZRanges present_add;  // slices to list as present (repair)
  if (effective) {
    std::vector<bool> present(geo->shape[0], false);
    for (const auto& [a, b] : effective->present) {
      for (uint64_t z = a; z <= b && z < present.size(); ++z) present[z] = true;
    }
    const bool unrecorded = !effective->finalized && !recovered;
    uint64_t unrecorded_blocks = 0;
    std::vector<bool> add_bits(unrecorded ? geo->shape[0] : 0, false);
    for (const auto& [bz, agg] : rows) {
      const ZRanges z = BlockZ(*geo, bz);
      if (z.empty()) continue;
      bool any = false;
      for (uint64_t zz = z[0].first; zz <= z[0].second; ++zz) any |= present[zz];
      if (any) continue;
      if (unrecorded) {
        unrecorded_blocks += agg.first;
        for (uint64_t zz = z[0].first; zz <= z[0].second; ++zz) add_bits[zz] = true;
        continue;
      }
      if (!grown_z.empty() && z[0].second >= grown_z[0].first) continue;
      FsckProblem& p = add("slices_present", "0/zarr.json",
                           "slab " + std::to_string(bz) + " (z " + RangesToString(z) + ") has " +
                               std::to_string(agg.first) + " stored blocks (e.g. " + BrickRel(0, agg.second.first) +
                               " block " + std::to_string(agg.second.second) +
                               ") but slices_present lists none of its slices");
      if (options.repair) {
        p.action = "not repaired: fsck cannot tell which slices were copied; copy slices z " + RangesToString(z) +
                   " again";
      }
    }
    present_add = RangesFromBitmap(add_bits);
    if (!present_add.empty()) {
      FsckProblem& p = add("slices_present", "0/zarr.json",
                           "slices z " + RangesToString(present_add) + " have " +
                               std::to_string(unrecorded_blocks) +
                               " stored blocks but slices_present lists none of their slabs' slices: the "
                               "session that stored them died and no journal recorded them");
      p.check_z = present_add;
      present_problem = rep.problems.size() - 1;
    }
  }
  // Not finalized and no journal to replay: the daemon died and its record of
  // what it committed is gone (deleted, or written with -o nojournal). What
  // the shards hold is the evidence: the shape and slice list are settled
  // from them above, and the levels are rebuilt from level 0 (nothing says
  // which of their rows were still in memory).
  size_t unrecorded = kNone;
  if (meta && !meta->finalized && !recovered) {
    add("unclean_shutdown", "0/zarr.json",
        "the store is not finalized and has no journal to replay: its daemon died, and its record of "
        "what it committed is gone (the journal deleted, or the store written with -o nojournal)");
    unrecorded = rep.problems.size() - 1;
  }

  // 8. Levels recomputed from level 0: what the problems above need
  //    rebuilt (repair), every level block (--deep), and after a session
  //    that did not finish, every level block over the level-0 bricks it
  //    changed (as a read-write mount's recovery does).
  const bool recovering = options.repair && unclean != kNone && recovered && !tails_left;
  std::set<Shape3> journal_bricks;
  if (recovering) {
    for (const auto& [id, _] : js->base) {
      if (id.level == 0) journal_bricks.insert(id.brick);
    }
    for (const auto& [id, _] : js->committed) {
      if (id.level == 0) journal_bricks.insert(id.brick);
    }
  }
  LevelRebuild::Result rebuilt;
  std::string rebuild_error;
  if (num_levels > 1) {
    LevelRebuild::Options lo;
    lo.store = store_path;
    lo.level0 = *geo;
    lo.num_levels = num_levels;
    lo.method = ParseDownsampleMethod(effective->downsample_method).value_or(DownsampleMethod::kMean);
    lo.zstd_level = effective->zstd_level;
    lo.write = options.repair;
    LevelRebuild lr(lo);
    if (options.deep) {
      if (!options.repair && unclean != kNone) {
        rep.notes.push_back("--deep: levels not recomputed: the journal of the session that did not finish "
                            "must be recovered first (fsck --repair, or a read-write mount)");
      } else if (!tails_left) {
        lr.WantAll(LevelRebuild::kDeep);
      }
    }
    if (options.repair) {
      for (const auto& [k, level, zyx] : rebuild_blocks) lr.WantBlock(level, zyx, LevelRebuild::kProblem);
      for (const auto& [k, level, brick] : rebuild_bricks) lr.WantBrick(level, brick, LevelRebuild::kProblem);
      for (int level = 1; level < num_levels; ++level) {
        if (!level_missing[level]) continue;
        const Shape3 grid = ctx.geos[level].brick_grid();
        for (uint64_t z = 0; z < grid[0]; ++z) {
          for (uint64_t y = 0; y < grid[1]; ++y) {
            for (uint64_t x = 0; x < grid[2]; ++x) lr.WantBrick(level, {z, y, x}, LevelRebuild::kProblem);
          }
        }
      }
      for (const Shape3& b : journal_bricks) {
        Shape3 lo3, hi3;
        for (int a = 0; a < 3; ++a) {
          lo3[a] = std::min(b[a] * geo->brick[a], geo->shape[a]);
          hi3[a] = std::min(lo3[a] + geo->brick[a], geo->shape[a]);
        }
        lr.WantLevel0Box(lo3, hi3, LevelRebuild::kRecovery);
      }
      if (unrecorded != kNone) lr.WantAll(LevelRebuild::kRecovery);
    }
    if (!lr.empty()) {
      Status s = lr.Run(&rebuilt);
      if (!s.ok()) rebuild_error = s.ToString();
    }
  }
  rep.deep_blocks_compared = options.deep ? rebuilt.compared : 0;
  // What happened to each block, for the problems that asked for it.
  std::map<std::pair<int, Shape3>, const LevelRebuild::Block*> by_block;
  for (const auto& b : rebuilt.blocks) by_block[{b.level, b.zyx}] = &b;
  auto rebuild_action = [&](FsckProblem& p, const std::vector<const LevelRebuild::Block*>& blocks) {
    uint64_t written = 0;
    std::string error = rebuild_error;
    for (const auto* b : blocks) {
      written += b->rewritten ? 1 : 0;
      if (!b->rewritten && !b->error.empty() && error.empty()) error = b->error;
    }
    const std::string below = "level " + std::to_string(p.level - 1);
    std::string text;
    if (!error.empty()) {
      p.repaired = false;
      text = "could not be rebuilt from " + below + ": " + error;
    } else {
      p.repaired = p.action.empty() || p.repaired;
      text = written ? "rebuilt from " + below + " (" + std::to_string(written) +
                           (written == 1 ? " block" : " blocks") + " appended with a new index); " + kDerived
                     : "checked against " + below + ": nothing to rewrite; " + kDerived;
    }
    p.data_lost = false;
    p.action = p.action.empty() ? text : p.action + "; " + text;
  };
  {
    std::map<size_t, std::vector<const LevelRebuild::Block*>> per_problem;
    std::set<size_t> asked;
    for (const auto& [k, level, zyx] : rebuild_blocks) {
      asked.insert(k);
      auto it = by_block.find({level, zyx});
      if (it != by_block.end()) per_problem[k].push_back(it->second);
    }
    for (const auto& [k, level, brick] : rebuild_bricks) {
      asked.insert(k);
      for (const auto& b : rebuilt.blocks) {
        if (b.level == level && b.brick == brick) per_problem[k].push_back(&b);
      }
    }
    for (int level = 1; options.repair && level < num_levels; ++level) {
      if (!level_missing[level]) continue;  // its metadata problem asked for the whole level
      const size_t k = level_meta_problem[level];
      asked.insert(k);
      for (const auto& b : rebuilt.blocks) {
        if (b.level == level) per_problem[k].push_back(&b);
      }
    }
    for (size_t k : asked) rebuild_action(rep.problems[k], per_problem[k]);
  }
  uint64_t recovery_written = 0;
  std::string recovery_error = rebuild_error;
  uint64_t deep_not_compared = 0;
  std::string deep_why;
  for (const auto& b : rebuilt.blocks) {
    if (b.reasons & LevelRebuild::kProblem) continue;  // its problem says what happened
    if (b.reasons & LevelRebuild::kDeep) {
      if (!b.compared) {
        ++deep_not_compared;
        if (deep_why.empty()) deep_why = b.error;
        continue;
      }
      if (!b.unreadable.empty()) continue;  // a "block" problem above names it
      const std::string below = b.level == 1 ? "level 0"
                                             : "level " + std::to_string(b.level - 1) + " (as recomputed from level 0)";
      std::string msg = "differs from the reduction of " + below + " (2x2x2 " + effective->downsample_method + "): " +
                        std::to_string(b.voxels_differ) + " of its " + std::to_string(b.voxels) +
                        " voxels differ, the first at level-" + std::to_string(b.level) + " voxel z,y,x " +
                        ShapeToString(b.first) + " (stored " + b.stored_value +
                        (b.stored ? "" : ": the block is not stored") + ", expected " + b.expected_value + ")";
      FsckProblem& p = add("level_differs", BrickRel(b.level, b.brick), msg);
      p.level = b.level;
      p.brick = b.brick;
      p.block = b.index;
      p.block_zyx = b.zyx;
      if (options.repair) {
        p.repaired = b.rewritten;
        p.action = b.rewritten ? "rewritten from the reduction of level " + std::to_string(b.level - 1) +
                                     " (appended at offset " + std::to_string(b.offset) + " with a new index); " +
                                     kDerived
                               : "failed: " + (b.error.empty() ? rebuild_error : b.error);
      }
      continue;
    }
    // kRecovery: what a read-write mount's recovery would rebuild.
    recovery_written += b.rewritten ? 1 : 0;
    if (!b.rewritten && b.compared && recovery_error.empty()) recovery_error = b.error;
    if (!b.compared && recovery_error.empty()) recovery_error = b.error;
  }
  if (deep_not_compared) {
    rep.notes.push_back("--deep: " + std::to_string(deep_not_compared) +
                        " level blocks could not be recomputed, as what lies below them cannot be read (" +
                        deep_why + "); see the problems above");
  }

  // 9. Metadata. Recovering a journal or growing the shape rewrites every
  //    document (0/zarr.json, the level arrays, the group) from the metadata
  //    recovered; otherwise each document found wrong is rewritten alone.
  std::optional<VolumeMeta> final_meta;
  if (effective) {
    final_meta = *effective;
    final_meta->geo = *geo;
  }
  // A store recovered (from its journal or, without one, from its shards) is
  // final again: a mount accepts it, and a later session starts afresh.
  const bool recovery_ok = (recovering || (options.repair && unrecorded != kNone)) && recovery_error.empty();
  if (final_meta && !present_add.empty()) {
    ZRanges all = final_meta->present;
    all.insert(all.end(), present_add.begin(), present_add.end());
    final_meta->present = MergeRanges(std::move(all));
  }
  const bool write_all = options.repair && final_meta && !tails_left &&
                         (recovery_ok || shape_problem != kNone || present_problem != kNone) &&
                         !((unclean != kNone || unrecorded != kNone) && !recovery_ok);
  Status meta_status;
  if (options.repair && group_problem != kNone && group_found) {
    // The document another tool wrote is kept for its owner.
    auto name = LostName(ctx, "zarr.json", "");
    Status s = name.ok() ? WriteFileAtomic(ctx.lost_dir + "/" + *name, *group_found) : name.status();
    if (s.ok()) {
      group_found = ".brickfs/lost+found/" + *name;
    } else {
      FsckProblem& p = rep.problems[group_problem];
      p.action = "failed: keeping the document found: " + s.ToString();
      group_problem = kNone;  // left as it is
    }
  }
  const std::string levels_text = std::to_string(num_levels) + (num_levels == 1 ? " level" : " levels");
  if (write_all) {
    if (recovery_ok) final_meta->finalized = true;
    meta_status = store->WriteMeta(*final_meta);
    if (meta_status.ok()) rep.finalized = final_meta->finalized;
    for (int level = 1; level < num_levels; ++level) {
      if (level_meta_problem[level] == kNone) continue;
      FsckProblem& p = rep.problems[level_meta_problem[level]];
      const std::string before = p.action;  // a rebuild of a missing level, if any
      p.repaired = meta_status.ok() && (before.empty() || p.repaired);
      p.action = meta_status.ok() ? "rewritten from 0/zarr.json" : "failed: " + meta_status.ToString();
      if (!before.empty()) p.action += "; " + before;
    }
    if (group_problem != kNone) {
      FsckProblem& p = rep.problems[group_problem];
      Status s = meta_status;
      if (s.ok() && !group_whole) {
        // WriteMeta wrote our group document: put the other attributes back.
        auto doc = RepairedGroup(*group_doc, *final_meta, store_path);
        s = doc.ok() ? WriteFileAtomic(store_path + "/zarr.json", *doc) : doc.status();
      }
      p.repaired = s.ok();
      p.action = !s.ok() ? "failed: " + s.ToString()
                 : group_whole
                     ? "rebuilt from the arrays' metadata (0/zarr.json: " + levels_text + ")" +
                           (group_found ? "; the document found is kept as " + *group_found : std::string())
                     : "attributes.ome rebuilt from the arrays' metadata (other attributes kept)";
    }
  } else if (options.repair && meta) {
    for (int level = 1; level < num_levels; ++level) {
      if (level_meta_problem[level] == kNone) continue;
      FsckProblem& p = rep.problems[level_meta_problem[level]];
      Status s = MakeDirs(store_path + "/" + std::to_string(level));
      if (s.ok()) {
        s = WriteFileAtomic(store_path + "/" + std::to_string(level) + "/zarr.json",
                            meta->LevelMeta(level).ArrayJson());
      }
      const std::string before = p.action;
      p.repaired = s.ok() && (before.empty() || p.repaired);
      p.action = s.ok() ? "rewritten from 0/zarr.json" : "failed: " + s.ToString();
      if (!before.empty()) p.action += "; " + before;
    }
    if (group_problem != kNone) {
      FsckProblem& p = rep.problems[group_problem];
      Result<std::string> doc = group_whole ? Result<std::string>(meta->GroupJson(StoreName(store_path)))
                                            : RepairedGroup(*group_doc, *meta, store_path);
      Status s = doc.ok() ? WriteFileAtomic(store_path + "/zarr.json", *doc) : doc.status();
      p.repaired = s.ok();
      p.action = !s.ok() ? "failed: " + s.ToString()
                 : group_whole
                     ? "rebuilt from the arrays' metadata (0/zarr.json: " + levels_text + ")" +
                           (group_found ? "; the document found is kept as " + *group_found : std::string())
                     : "attributes.ome rebuilt from the arrays' metadata (other attributes kept)";
    }
  }
  if (unrecorded != kNone && options.repair) {
    FsckProblem& p = rep.problems[unrecorded];
    p.repaired = write_all && meta_status.ok();
    const std::string levels =
        num_levels > 1 ? "pyramid levels rebuilt from level 0 (" + std::to_string(recovery_written) +
                             " level blocks rewritten), "
                       : std::string();
    p.action = p.repaired ? "recovered from what the shards hold: " + levels +
                                "store marked finalized (the slices whose record was lost are named above)"
               : !recovery_error.empty()
                   ? "failed: pyramid levels could not be rebuilt (" + recovery_error + ")"
                   : "failed: " + (meta_status.ok() ? std::string("see the problems above") : meta_status.ToString());
  }
  for (size_t k : {shape_problem, present_problem}) {
    if (k == kNone || !options.repair) continue;
    FsckProblem& p = rep.problems[k];
    if (write_all && meta_status.ok()) {
      p.repaired = true;
      if (k == shape_problem) {
        p.action = "shape grown to " + std::to_string(geo->shape[0]) + " x " + std::to_string(geo->shape[1]) +
                   " x " + std::to_string(geo->shape[2]) +
                   " so that every stored block stays readable (nothing dropped); slices z " +
                   RangesToString(grown_z) + " were written by a session whose record is lost: check them";
      } else {
        p.action = "listed as present, as the stored slabs show (brickfs stores a slab before an unmount only "
                   "once all its slices arrived); nothing records that they are complete, though: check slices z " +
                   RangesToString(present_add) + " and copy again any that is wrong";
      }
    } else {
      p.action = write_all ? "failed: " + meta_status.ToString()
                           : "not repaired: the journal must be recovered first (see the problems above)";
    }
  }

  // 10. The journal: recovered (metadata above, then emptied), or its torn
  //     tail cut.
  if (options.repair && (unclean != kNone || journal_torn != kNone)) {
    Status s;
    if (unclean != kNone && tails_left) {
      s = Status::IOError("a torn shard append could not be cut back; the journal is kept", EIO);
    } else if (unclean != kNone && recovered) {
      if (!recovery_error.empty()) {
        s = Status::IOError("pyramid levels could not be rebuilt (" + recovery_error +
                                "); the journal is kept, so that a read-write mount rebuilds them",
                            EIO);
      } else {
        s = meta_status;
      }
      if (s.ok()) {
        auto j = Journal::Open(store_path, 0);
        s = j.ok() ? Status::Ok() : j.status();
      }
    } else {
      auto j = Journal::Open(store_path, unclean != kNone ? 0 : js->valid_bytes);
      s = j.ok() ? Status::Ok() : j.status();
    }
    if (unclean != kNone) {
      FsckProblem& p = rep.problems[unclean];
      p.repaired = s.ok();
      p.data_lost = s.ok() && !never_committed.empty();
      std::string levels;
      if (num_levels > 1 && recovered) {
        levels = ", pyramid levels over the " + std::to_string(journal_bricks.size()) +
                 " level-0 bricks it changed rebuilt from level 0 (" + std::to_string(recovery_written) +
                 " level blocks rewritten)";
      }
      p.action = s.ok() ? "recovered like a read-write mount: shards cut to their committed lengths, "
                          "slices_present updated" + levels + ", store marked finalized, journal emptied" +
                              (never_committed.empty()
                                   ? std::string()
                                   : "; slices z " + RangesToString(never_committed) +
                                         " were never committed: copy them again")
                        : "failed: " + s.ToString();
    }
    if (journal_torn != kNone) {
      FsckProblem& p = rep.problems[journal_torn];
      p.repaired = s.ok();
      p.action = s.ok() ? (unclean != kNone ? "journal emptied after recovery" : "cut off") : "failed: " + s.ToString();
    }
  }
  return rep;
}

}  // namespace brickfs
