// fsck, one shard file: its index, torn tails and every block checked and
// repaired (CheckBrick), and the helpers the other rooms share. See
// fsck_internal.h.
#include "volume/fsck_internal.h"

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
namespace fsck_internal {

const char kDerived[] = "levels are derived from level 0: no data lost";

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

constexpr uint32_t kZstdMagic = 0xFD2FB528;  // first 4 bytes of every zstd frame (LE)

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

}  // namespace fsck_internal
}  // namespace brickfs
