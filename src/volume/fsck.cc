#include "volume/fsck.h"

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
  for (const auto& p : problems) n += (p.kind == "block" && p.repaired && p.data_lost) ? 1 : 0;
  return n;
}

ZRanges FsckReport::lost_z() const {
  ZRanges all;
  for (const auto& p : problems) all.insert(all.end(), p.lost_z.begin(), p.lost_z.end());
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

int FsckReport::ExitCode() const {
  if (problems.empty()) return kFsckClean;
  return left() == 0 ? kFsckAllRepaired : kFsckProblemsLeft;
}

namespace {

constexpr uint64_t kChunk = 8u << 20;        // read/copy granularity
constexpr uint32_t kZstdMagic = 0xFD2FB528;  // first 4 bytes of every zstd frame (LE)

std::string BrickRel(const Shape3& b) {
  return "0/c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" + std::to_string(b[2]);
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
  std::string lost_dir;  // STORE/.brickfs/lost+found
  Geometry geo;
  uint64_t n = 0;           // blocks per brick = index entries
  uint64_t index_size = 0;  // 16 n + 4
  uint64_t max_nbytes = 0;
  bool repair = false;
  const JournalState* journal = nullptr;  // null without a replayable journal

  std::mutex lost_mu;  // picking names in lost+found
};

// A fresh name in lost+found for `rel` ("0/c/1/2/3" -> "0_c_1_2_3<suffix>").
// Creates lost+found. REQUIRES: ctx.repair.
Result<std::string> LostName(Ctx& ctx, const std::string& rel, const std::string& suffix) {
  std::lock_guard<std::mutex> lock(ctx.lost_mu);
  BRICKFS_RETURN_IF_ERROR(MakeDirs(ctx.lost_dir));
  std::string base = rel;
  std::replace(base.begin(), base.end(), '/', '_');
  base += suffix;
  std::string name = base;
  struct stat sb;
  for (int i = 1; ::lstat((ctx.lost_dir + "/" + name).c_str(), &sb) == 0; ++i) {
    name = base + "." + std::to_string(i);
  }
  // Reserve the name so a concurrent brick cannot take it.
  int fd = ::open((ctx.lost_dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("create " + ctx.lost_dir + "/" + name, errno);
  ::close(fd);
  return name;
}

// Moves STORE/rel (a file or a directory) into lost+found; returns its new name.
Result<std::string> MoveToLost(Ctx& ctx, const std::string& rel) {
  BRICKFS_ASSIGN_OR_RETURN(std::string name, LostName(ctx, rel, ""));
  const std::string from = ctx.store + "/" + rel, to = ctx.lost_dir + "/" + name;
  struct stat sb;
  if (::lstat(from.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) {
    ::unlink(to.c_str());  // the reservation: rename(dir, file) is not allowed
  }
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::IOError("rename " + from + " to " + to, errno);
  }
  BRICKFS_RETURN_IF_ERROR(SyncDir(ctx.lost_dir));
  BRICKFS_RETURN_IF_ERROR(SyncDir(from.substr(0, from.find_last_of('/'))));
  return name;
}

// Copies bytes [from, to) of `fd` into a new lost+found file; returns its name.
Result<std::string> SaveToLost(Ctx& ctx, const std::string& rel, int fd, uint64_t from,
                               uint64_t to) {
  BRICKFS_ASSIGN_OR_RETURN(std::string name,
                           LostName(ctx, rel, ".bytes-" + std::to_string(from) + "-" + std::to_string(to)));
  const std::string path = ctx.lost_dir + "/" + name;
  int out = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (out < 0) return Status::IOError("open " + path, errno);
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
  BRICKFS_RETURN_IF_ERROR(SyncDir(ctx.lost_dir));
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

struct BrickResult {
  std::vector<FsckProblem> problems;
  bool file = false;
  uint64_t bytes = 0;
  uint64_t blocks = 0;
  bool unrepaired_tail = false;  // a torn append the journal knows could not be cut
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> rows;  // block z -> (blocks, an example block)
};

BrickResult CheckBrick(Ctx& ctx, const Shape3& brick) {
  BrickResult r;
  const Geometry& g = ctx.geo;
  const std::string rel = BrickRel(brick);
  const std::string path = ctx.store + "/" + rel;
  auto add = [&](const std::string& kind, const std::string& message) -> FsckProblem& {
    FsckProblem p;
    p.kind = kind;
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
  std::optional<uint64_t> recovered_opt;
  if (ctx.journal) recovered_opt = ctx.journal->RecoveredLength(BrickId{0, brick});
  const bool journaled = recovered_opt.has_value();
  const uint64_t recovered = recovered_opt.value_or(0);  // the journal's committed length

  int fd = ::open(path.c_str(), (ctx.repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      if (journaled && recovered > 0) {
        FsckProblem& p = add("shard_short", "the journal committed " + std::to_string(recovered) +
                                                " bytes to this brick but its file is missing");
        p.lost_z = BrickZ(g, brick);
        if (ctx.repair) p.action = "cannot be repaired: its committed blocks are gone";
      }
    } else {
      add("io", "cannot open: " + std::string(std::strerror(errno)));
    }
    return r;
  }
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
    p.lost_z = BrickZ(g, brick);
    if (ctx.repair) p.action = "cannot be repaired: the missing bytes are gone";
  }
  r.bytes = size;

  // 2. The index at the end, or the last valid one before it.
  auto no_index = [&](FsckProblem& p) {
    p.lost_z = BrickZ(g, brick);
    if (!ctx.repair) return;
    ::close(fd);
    close_fd.Dismiss();
    auto moved = MoveToLost(ctx, rel);
    if (!moved.ok()) return fail_io(p, moved.status());
    p.repaired = true;
    p.data_lost = true;
    p.action = "moved to .brickfs/lost+found/" + *moved +
               ": every block of this brick is LOST and reads as fill value 0";
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
      if (nframes) pr.lost_z = BrickZ(g, brick);
      if (ctx.repair) {
        auto saved = SaveToLost(ctx, rel, fd, p, size);
        Status cs = saved.ok() ? CutShard(fd, p, path) : saved.status();
        if (!cs.ok()) {
          fail_io(pr, cs);
          return r;
        }
        pr.repaired = true;
        pr.data_lost = nframes > 0;
        pr.action = "cut back to " + std::to_string(p) + " bytes (the " + std::to_string(size - p) +
                    " bytes cut are in .brickfs/lost+found/" + *saved + ")" +
                    (nframes ? "; blocks written after offset " + std::to_string(p) +
                                   " are LOST (their slices read as they were before that append)"
                             : std::string("; no block data was lost"));
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
      block_problem("block_outside_shape", i,
                    "a stored block outside the array shape " + ShapeToString(g.shape) +
                        " (block grid " + ShapeToString(grid) + ")");
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
      p.lost_z = BlockZ(g, zyx[0]);
      dropped[i] = r.problems.size() - 1;
      continue;
    }
    auto& row = r.rows[zyx[0]];
    if (row.first++ == 0) row.second = i;
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
      if (p.kind == "block") {
        p.data_lost = true;
        const ZRanges z = BlockZ(g, p.block_zyx->at(0));
        p.action = "dropped from the index (new index appended at offset " + std::to_string(size) +
                   "): the block's data is LOST and reads as fill value 0" +
                   (z.empty() ? std::string() : "; copy slices z " + RangesToString(z) + " again to restore it");
      } else {
        p.action = "dropped from the index (new index appended at offset " + std::to_string(size) +
                   "); no data of the array was lost";
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
  for (size_t k : overlaps) {
    FsckProblem& p = r.problems[k];
    if (ctx.repair && !p.repaired) {
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

// Why the group's attributes.ome does not describe array "0" ("" when it does).
std::string OmeProblem(const Json& group) {
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
  const Json* p = ds->as_array()[0].Get("path");
  if (!p || !p->is_string() || p->as_string() != "0") {
    return "attributes.ome.multiscales[0].datasets[0].path is not \"0\"";
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

}  // namespace

Result<FsckReport> Fsck(const std::string& store_path, const FsckOptions& options) {
  FsckReport rep;
  rep.store = store_path;
  rep.repair = options.repair;

  // 1. The store, locked: no daemon may write it meanwhile.
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

  // 4. The group's OME attributes.
  if (meta) {
    auto text = ReadFileToString(store_path + "/zarr.json", 1 << 20);
    auto group = text.ok() ? Json::Parse(*text) : Result<Json>(text.status());
    if (group.ok()) {
      std::string why = OmeProblem(*group);
      if (!why.empty()) {
        FsckProblem& p = add("metadata", "zarr.json", why + " (OME-Zarr viewers will not find the volume)");
        if (options.repair) {
          auto fixed = RepairedGroup(*group, *meta, store_path);
          Status s = fixed.ok() ? WriteFileAtomic(store_path + "/zarr.json", *fixed) : fixed.status();
          p.repaired = s.ok();
          p.action = s.ok() ? "attributes.ome rewritten (other attributes kept)" : "failed: " + s.ToString();
        }
      }
    }
  }

  // 5. Files under 0/c: shards inside the brick grid, everything else stray.
  std::vector<Shape3> bricks;
  const std::string cdir = store_path + "/0/c";
  const Shape3 grid = geo ? geo->brick_grid() : Shape3{0, 0, 0};
  auto stray = [&](const std::string& rel, const std::string& why, bool compact_tmp) {
    FsckProblem& p = add("stray", rel, why);
    if (!options.repair) return;
    if (compact_tmp) {
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
    p.action = moved.ok() ? "moved to .brickfs/lost+found/" + *moved : "failed: " + moved.status().ToString();
  };
  struct stat sb;
  if (::stat(cdir.c_str(), &sb) == 0) {
    const char* axis[3] = {"z", "y", "x"};
    auto key_problem = [&](const DirEntry& e, int level, uint64_t* v) -> std::string {
      if (!ParseKey(e.name, v)) return "not a brick index (" + std::string(axis[level]) + ")";
      if (!geo) return "0/zarr.json is missing: no shard can belong to the array";
      if (*v >= grid[level]) {
        return std::string(axis[level]) + " index " + e.name + " is outside the brick grid " +
               ShapeToString(grid);
      }
      return "";
    };
    BRICKFS_ASSIGN_OR_RETURN(auto l1, ListDir(cdir));
    for (const auto& e1 : l1) {
      uint64_t kz, ky, kx;
      std::string r1 = "0/c/" + e1.name;
      std::string why = key_problem(e1, 0, &kz);
      if (why.empty() && !e1.is_dir) why = "not a directory";
      if (!why.empty()) {
        stray(r1, why, false);
        continue;
      }
      BRICKFS_ASSIGN_OR_RETURN(auto l2, ListDir(store_path + "/" + r1));
      for (const auto& e2 : l2) {
        std::string r2 = r1 + "/" + e2.name;
        why = key_problem(e2, 1, &ky);
        if (why.empty() && !e2.is_dir) why = "not a directory";
        if (!why.empty()) {
          stray(r2, why, false);
          continue;
        }
        BRICKFS_ASSIGN_OR_RETURN(auto l3, ListDir(store_path + "/" + r2));
        for (const auto& e3 : l3) {
          std::string r3 = r2 + "/" + e3.name;
          const std::string tmp_suffix = ".compact.tmp";
          uint64_t ignored;
          if (e3.is_file && e3.name.size() > tmp_suffix.size() &&
              e3.name.compare(e3.name.size() - tmp_suffix.size(), tmp_suffix.size(), tmp_suffix) == 0 &&
              ParseKey(e3.name.substr(0, e3.name.size() - tmp_suffix.size()), &ignored)) {
            stray(r3, "leftover of an interrupted brickfs compact (the shard itself is intact)", true);
            continue;
          }
          why = key_problem(e3, 2, &kx);
          if (why.empty() && !e3.is_file) why = "not a regular file";
          if (!why.empty()) {
            stray(r3, why, false);
            continue;
          }
          bricks.push_back({kz, ky, kx});
        }
      }
    }
  }
  if (!geo) {
    rep.notes.push_back("empty store: no slice was ever stored (no 0/zarr.json)");
    return rep;
  }
  rep.geometry = *geo;

  // Bricks the journal names but whose files are gone.
  if (ctx.journal) {
    std::set<Shape3> have(bricks.begin(), bricks.end());
    std::set<BrickId> ids;
    for (const auto& [id, _] : js->base) ids.insert(id);
    for (const auto& [id, _] : js->committed) ids.insert(id);
    for (const BrickId& id : ids) {
      if (id.level != 0) continue;
      if (!have.count(id.brick) && id.brick[0] < grid[0] && id.brick[1] < grid[1] && id.brick[2] < grid[2]) {
        bricks.push_back(id.brick);
        have.insert(id.brick);
      }
    }
  }

  // 6. Every shard, in parallel.
  ctx.geo = *geo;
  ctx.n = geo->blocks_in_brick();
  ctx.index_size = ShardIndex::EncodedSize(ctx.n);
  ctx.max_nbytes = BlockCodec::MaxEncodedSize(geo->block_bytes());
  std::vector<BrickResult> results(bricks.size());
  {
    size_t threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    threads = std::min<size_t>(threads, std::max<size_t>(1, bricks.size()));
    ThreadPool pool(threads);
    pool.ParallelFor(bricks.size(), [&](size_t i) { results[i] = CheckBrick(ctx, bricks[i]); });
  }
  bool tails_left = false;
  std::map<uint64_t, std::pair<uint64_t, std::pair<Shape3, uint64_t>>> rows;  // block z -> count, example
  for (size_t i = 0; i < bricks.size(); ++i) {
    BrickResult& r = results[i];
    rep.shard_files += r.file ? 1 : 0;
    rep.shard_bytes += r.bytes;
    rep.blocks_checked += r.blocks;
    tails_left |= r.unrepaired_tail;
    for (auto& p : r.problems) rep.problems.push_back(std::move(p));
    for (const auto& [bz, row] : r.rows) {
      auto& agg = rows[bz];
      if (agg.first == 0) agg.second = {bricks[i], row.second};
      agg.first += row.first;
    }
  }

  // 7. slices_present against the stored blocks (a finalized store, or the
  //    store as the journal recovers it).
  if (effective && (effective->finalized || recovered)) {
    std::vector<bool> present(geo->shape[0], false);
    for (const auto& [a, b] : effective->present) {
      for (uint64_t z = a; z <= b && z < present.size(); ++z) present[z] = true;
    }
    for (const auto& [bz, agg] : rows) {
      const ZRanges z = BlockZ(*geo, bz);
      if (z.empty()) continue;
      bool any = false;
      for (uint64_t zz = z[0].first; zz <= z[0].second; ++zz) any |= present[zz];
      if (any) continue;
      FsckProblem p;
      p.kind = "slices_present";
      p.path = "0/zarr.json";
      p.message = "slab " + std::to_string(bz) + " (z " + RangesToString(z) + ") has " +
                  std::to_string(agg.first) + " stored blocks (e.g. " + BrickRel(agg.second.first) + " block " +
                  std::to_string(agg.second.second) + ") but slices_present lists none of its slices";
      if (options.repair) {
        p.action = "not repaired: fsck cannot tell which slices were copied; copy slices z " + RangesToString(z) +
                   " again";
      }
      rep.problems.push_back(std::move(p));
    }
  }
  if (meta && !meta->finalized && !recovered) {
    rep.notes.push_back("not marked finalized and no journal to replay: written by a daemon that died "
                        "(the blocks stored are checked above)");
  }

  // 8. The journal: recover (metadata, then empty it) or cut its torn tail.
  if (options.repair && (unclean != kNone || journal_torn != kNone)) {
    Status s;
    if (unclean != kNone && tails_left) {
      s = Status::IOError("a torn shard append could not be cut back; the journal is kept", EIO);
    } else if (unclean != kNone && recovered) {
      VolumeMeta m = *recovered;
      m.finalized = true;
      s = store->WriteMeta(m);
      if (s.ok()) {
        auto j = Journal::Open(store_path, 0);
        s = j.ok() ? Status::Ok() : j.status();
      }
      if (s.ok()) rep.finalized = true;
    } else {
      auto j = Journal::Open(store_path, unclean != kNone ? 0 : js->valid_bytes);
      s = j.ok() ? Status::Ok() : j.status();
    }
    if (unclean != kNone) {
      FsckProblem& p = rep.problems[unclean];
      p.repaired = s.ok();
      p.data_lost = s.ok() && !never_committed.empty();
      p.action = s.ok() ? "recovered like a read-write mount: shards cut to their committed lengths, "
                          "slices_present updated, store marked finalized, journal emptied" +
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
