#include "store/shard_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/scope_guard.h"

namespace brickfs {

ShardStore::ShardStore(std::string dir, const Geometry& geo, bool read_only)
    : dir_(std::move(dir)),
      geo_(geo),
      read_only_(read_only),
      max_block_nbytes_(BlockCodec::MaxEncodedSize(geo.block_bytes())) {}

std::string ShardStore::BrickPath(const Shape3& b) const { return dir_ + "/" + BrickRel(b); }

std::string ShardStore::BrickDirRel(const Shape3& b) {
  return "c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]);
}

std::string ShardStore::BrickRel(const Shape3& b) {
  return BrickDirRel(b) + "/" + std::to_string(b[2]);
}

ShardStore::BrickState* ShardStore::State(const Shape3& brick) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = bricks_[brick];
  if (!slot) slot = std::make_unique<BrickState>();
  return slot.get();
}

Status ShardStore::LoadLocked(const Shape3& brick, BrickState* st) {
  if (st->loaded) return Status::Ok();
  BRICKFS_ASSIGN_OR_RETURN(ShardIndex index, ReadIndex(brick, std::nullopt, &st->file_size));
  st->index = std::make_shared<ShardIndex>(std::move(index));
  st->loaded = true;
  return Status::Ok();
}

Result<ShardIndex> ShardStore::ReadIndex(const Shape3& brick, std::optional<uint64_t> length,
                                         uint64_t* file_size) const {
  const uint64_t n = geo_.blocks_in_brick();
  *file_size = 0;
  std::string path = BrickPath(brick);
  auto opened = OpenFileBeneath(dir_, BrickRel(brick), O_RDONLY);
  if (!opened.ok()) {
    // No file (or no directory yet, or no array directory): no block written.
    if (opened.status().err() == ENOENT) return ShardIndex(n);
    return opened.status();
  }
  const int fd = *opened;
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return Status::IOError("stat " + path, errno);
  uint64_t size = static_cast<uint64_t>(sb.st_size);
  if (length && *length < size) size = *length;
  uint64_t index_size = ShardIndex::EncodedSize(n);
  // Size 0: created by an append that never happened (a crash): holds no
  // block. Recovery and fsck --repair remove such files.
  if (size == 0) return ShardIndex(n);
  if (size < index_size) {
    return Status::Corruption(path + ": shard is " + std::to_string(size) +
                              " bytes, smaller than its " + std::to_string(index_size) +
                              "-byte index");
  }
  std::string buf(index_size, '\0');
  BRICKFS_RETURN_IF_ERROR(PreadAll(fd, buf.data(), index_size, size - index_size, path));
  BRICKFS_ASSIGN_OR_RETURN(
      ShardIndex index,
      ShardIndex::Decode(reinterpret_cast<const uint8_t*>(buf.data()), index_size, n,
                         size - index_size, max_block_nbytes_, path));
  *file_size = size;
  return index;
}

Status ShardStore::MakeBrickDir(const Shape3& brick) {
  const std::string parent = dir_ + "/" + BrickDirRel(brick);
  {
    std::lock_guard<std::mutex> g(mu_);
    if (made_dirs_.count(parent)) return Status::Ok();
  }
  // The array directory itself (STORE/L) may not exist yet; below it no
  // directory is created or entered through a symlink.
  BRICKFS_RETURN_IF_ERROR(MakeDirs(dir_));
  BRICKFS_RETURN_IF_ERROR(MakeDirsBeneath(dir_, BrickDirRel(brick)));
  std::lock_guard<std::mutex> g(mu_);
  made_dirs_.insert(parent);
  unsynced_dirs_.insert(parent);
  return Status::Ok();
}

Result<std::shared_ptr<const ShardIndex>> ShardStore::GetIndex(const Shape3& brick) {
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
  return st->index;
}

Status ShardStore::Append(const Shape3& brick, const std::vector<EncodedBlock>& blocks,
                          AppendStats* stats) {
  if (read_only_) return Status::Unsupported("store is mounted read-only");
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));

  std::string path = BrickPath(brick);
  BRICKFS_RETURN_IF_ERROR(MakeBrickDir(brick));

  auto index = std::make_shared<ShardIndex>(*st->index);
  std::string buf;
  size_t total = ShardIndex::EncodedSize(index->size());
  for (const auto& b : blocks) total += b.bytes.size();
  buf.reserve(total);
  uint64_t offset = st->file_size;
  for (const auto& b : blocks) {
    // An empty view clears the entry (the block became fill value).
    index->Set(b.index_in_brick, b.bytes.empty() ? BlockLocation{}
                                                 : BlockLocation{offset + buf.size(), b.bytes.size()});
    buf.append(b.bytes);
  }
  uint64_t block_bytes = buf.size();
  index->EncodeTo(&buf);

  BRICKFS_ASSIGN_OR_RETURN(const int fd,
                           OpenFileBeneath(dir_, BrickRel(brick), O_WRONLY | O_CREAT));
  Status s = PwriteAll(fd, buf.data(), buf.size(), offset, path);
  if (!s.ok()) {
    // Leave the file as it was: a valid shard ending with the old index.
    if (::ftruncate(fd, static_cast<off_t>(offset)) != 0) {
      s = s.WithContext("and truncating back failed too");
    }
    ::close(fd);
    return s;
  }
  ::close(fd);
  st->file_size = offset + buf.size();
  st->index = std::move(index);
  if (stats) {
    stats->bytes_written += buf.size();
    stats->block_bytes += block_bytes;
    stats->file_size = st->file_size;
  }
  std::lock_guard<std::mutex> g(mu_);
  dirty_.insert(brick);
  touched_.insert(brick);
  return Status::Ok();
}

std::optional<uint64_t> ShardStore::RecoveredLength(const BrickId& id,
                                                    const JournalState& js) const {
  const std::optional<uint64_t> len = js.RecoveredLength(id);
  auto r = js.replaced.find(id);
  if (!len || r == js.replaced.end()) return len;
  const std::string path = BrickPath(id.brick);
  struct stat sb;
  const bool exists = ::lstat(path.c_str(), &sb) == 0 && S_ISREG(sb.st_mode);
  bool is_new;
  if (r->second.length == 0) {
    is_new = !exists;  // replaced by nothing: the unlink happened
  } else if (!exists) {
    is_new = false;
  } else if (!r->second.inode) {
    is_new = true;  // a record from before inodes: a valid index at the length decides (caller)
  } else {
    // The new file was created beside the old one, so it has another inode;
    // the path holds it only if the rename happened. (Content cannot tell:
    // a shard is a chain of crc32c-terminated parts, whose crc32c, and any
    // crc of it, is the same for every such file of those lengths.)
    is_new = static_cast<uint64_t>(sb.st_ino) == *r->second.inode;
  }
  if (is_new) return len;
  return r->second.before;
}

std::vector<Shape3> ShardStore::Touched() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {touched_.begin(), touched_.end()};
}

Status ShardStore::Replace(const Shape3& brick, const std::vector<EncodedBlock>& blocks,
                           const BeforeRename& before_rename,
                           AppendStats* stats) {
  if (read_only_) return Status::Unsupported("store is mounted read-only");
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
  const std::string path = BrickPath(brick);
  const std::string name = std::to_string(brick[2]), tmp_name = name + ".tmp";
  auto index = std::make_shared<ShardIndex>(geo_.blocks_in_brick());
  // Everything below happens in the brick's directory, opened without
  // following links: a link planted in the store sends nothing elsewhere.
  if (!blocks.empty()) BRICKFS_RETURN_IF_ERROR(MakeBrickDir(brick));
  auto opened_dir = OpenDirBeneath(dir_, BrickDirRel(brick));
  if (!opened_dir.ok() && !(blocks.empty() && opened_dir.status().err() == ENOENT)) {
    return opened_dir.status();
  }
  const int dir_fd = opened_dir.ok() ? *opened_dir : -1;
  ScopeGuard close_dir([dir_fd] {
    if (dir_fd >= 0) ::close(dir_fd);
  });
  if (blocks.empty()) {
    BRICKFS_RETURN_IF_ERROR(before_rename(0, 0));  // removal: no new file
    if (dir_fd >= 0 && ::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return Status::IOError("remove " + path, errno);
    }
    if (dir_fd >= 0 && st->file_size > 0 && ::fsync(dir_fd) != 0) {
      return Status::IOError("fsync the directory of " + path, errno);
    }
    st->file_size = 0;
    st->index = std::move(index);
    return Status::Ok();
  }
  std::string buf;
  for (const auto& b : blocks) {
    index->Set(b.index_in_brick, BlockLocation{buf.size(), b.bytes.size()});
    buf.append(b.bytes);
  }
  const uint64_t block_bytes = buf.size();
  index->EncodeTo(&buf);
  const std::string tmp = path + ".tmp";
  // A temporary file left by a crash, or planted: remove the name, create
  // afresh (O_EXCL).
  if (::unlinkat(dir_fd, tmp_name.c_str(), 0) != 0 && errno != ENOENT) {
    return Status::IOError("remove " + tmp, errno);
  }
  BRICKFS_ASSIGN_OR_RETURN(const int fd,
                           OpenFileAt(dir_fd, tmp_name, tmp, O_WRONLY | O_CREAT | O_EXCL));
  Status s = PwriteAll(fd, buf.data(), buf.size(), 0, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::IOError("fsync " + tmp, errno);
  // The new file's inode, for the journal: a replacement whose rename never
  // happened is told apart by it.
  uint64_t tmp_ino = 0;
  struct stat tmp_st;
  if (s.ok() && ::fstat(fd, &tmp_st) != 0) s = Status::IOError("stat " + tmp, errno);
  if (s.ok()) tmp_ino = static_cast<uint64_t>(tmp_st.st_ino);
  ::close(fd);
  if (s.ok()) s = before_rename(buf.size(), tmp_ino);
  if (s.ok() && ::renameat(dir_fd, tmp_name.c_str(), dir_fd, name.c_str()) != 0) {
    s = Status::IOError("rename " + tmp, errno);
  }
  if (!s.ok()) {
    ::unlinkat(dir_fd, tmp_name.c_str(), 0);
    return s;
  }
  if (::fsync(dir_fd) != 0) return Status::IOError("fsync the directory of " + path, errno);
  st->file_size = buf.size();
  st->index = std::move(index);
  {
    std::lock_guard<std::mutex> g(mu_);
    touched_.insert(brick);
  }
  if (stats) {
    stats->bytes_written += buf.size();
    stats->block_bytes += block_bytes;
    stats->file_size = buf.size();
  }
  return Status::Ok();
}

Status ShardStore::PlanReads(const Shape3& brick, const std::vector<uint64_t>& indices,
                             ReadPlan* plan) {
  BrickState* st = State(brick);
  uint64_t file_size;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
    plan->index = st->index;
    file_size = st->file_size;
  }
  const ShardIndex& index = *plan->index;
  plan->order.clear();
  plan->runs.clear();
  for (size_t i = 0; i < indices.size(); ++i) {
    const BlockLocation& loc = index.at(indices[i]);
    if (loc.empty()) continue;
    if (loc.offset + loc.nbytes > file_size) {
      return Status::Corruption(BrickPath(brick) + ": block " + std::to_string(indices[i]) +
                                " lies past the end of the shard");
    }
    plan->order.push_back(i);
  }
  std::sort(plan->order.begin(), plan->order.end(), [&](size_t a, size_t b) {
    return index.at(indices[a]).offset < index.at(indices[b]).offset;
  });
  // Blocks written by one slab flush are adjacent in the file: one pread per
  // run of nearby blocks (gaps up to kMaxGap are read and dropped).
  constexpr uint64_t kMaxGap = 64 << 10, kMaxRun = 16 << 20;
  const std::vector<size_t>& order = plan->order;
  for (size_t k = 0; k < order.size();) {
    const uint64_t begin = index.at(indices[order[k]]).offset;
    uint64_t end = begin + index.at(indices[order[k]]).nbytes;
    size_t m = k + 1;
    while (m < order.size()) {
      const BlockLocation& next = index.at(indices[order[m]]);
      if (next.offset > end + kMaxGap || next.offset + next.nbytes - begin > kMaxRun) break;
      end = std::max(end, next.offset + next.nbytes);
      ++m;
    }
    plan->runs.push_back({begin, end, k, m});
    k = m;
  }
  return Status::Ok();
}

void ShardStore::Prefetch(const Shape3& brick, const std::vector<uint64_t>& indices) {
  ReadPlan plan;
  if (!PlanReads(brick, indices, &plan).ok() || plan.runs.empty()) return;
  auto opened = OpenFileBeneath(dir_, BrickRel(brick), O_RDONLY);
  if (!opened.ok()) return;
  const int fd = *opened;
  for (const auto& run : plan.runs) {
    ::posix_fadvise(fd, static_cast<off_t>(run.begin), static_cast<off_t>(run.end - run.begin),
                    POSIX_FADV_WILLNEED);
  }
  ::close(fd);
}

Status ShardStore::ReadBlocks(const Shape3& brick, const std::vector<uint64_t>& indices,
                              const BlockVisitor& visit) {
  ReadPlan plan;
  BRICKFS_RETURN_IF_ERROR(PlanReads(brick, indices, &plan));
  if (plan.runs.empty()) return Status::Ok();
  std::string path = BrickPath(brick);
  BRICKFS_ASSIGN_OR_RETURN(const int fd, OpenFileBeneath(dir_, BrickRel(brick), O_RDONLY));
  ScopeGuard close_fd([fd] { ::close(fd); });
  // Exactly the runs asked for: the kernel's readahead (up to the device's
  // read_ahead_kb past each) would read neighbouring blocks nobody wants.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  // Reused by this thread's reads: a fresh buffer per run would fault in
  // fresh pages every time.
  thread_local std::string bytes;
  ScopeGuard trim([] {
    if (bytes.capacity() > (8u << 20)) std::string().swap(bytes);
  });
  for (const auto& run : plan.runs) {
    bytes.resize(run.end - run.begin);
    BRICKFS_RETURN_IF_ERROR(PreadAll(fd, bytes.data(), bytes.size(), run.begin, path));
    for (size_t k = run.first; k < run.last; ++k) {
      const size_t i = plan.order[k];
      const BlockLocation& loc = plan.index->at(indices[i]);
      BRICKFS_RETURN_IF_ERROR(
          visit(i, std::string_view(bytes).substr(loc.offset - run.begin, loc.nbytes)));
    }
  }
  return Status::Ok();
}

Status ShardStore::ReadBlocks(const Shape3& brick, const std::vector<uint64_t>& indices,
                              std::vector<std::string>* out) {
  out->assign(indices.size(), std::string());
  return ReadBlocks(brick, indices, [out](size_t i, std::string_view bytes) {
    (*out)[i].assign(bytes);
    return Status::Ok();
  });
}

Result<uint64_t> ShardStore::FileSize(const Shape3& brick) {
  BrickState* st = State(brick);
  std::lock_guard<std::mutex> lock(st->mu);
  BRICKFS_RETURN_IF_ERROR(LoadLocked(brick, st));
  return st->file_size;
}

Status ShardStore::SyncBricks(const std::vector<Shape3>& bricks, ThreadPool* io) {
  std::set<std::string> dirs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirs.swap(unsynced_dirs_);
  }
  std::vector<Status> errs(bricks.size());
  auto sync_one = [&](size_t i) {
    auto opened = OpenFileBeneath(dir_, BrickRel(bricks[i]), O_RDONLY);
    if (!opened.ok()) {
      errs[i] = opened.status();
      return;
    }
    const int fd = *opened;
    const std::string path = BrickPath(bricks[i]);
    int rc = ::fdatasync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) errs[i] = Status::IOError("fsync " + path, err);
  };
  if (io && bricks.size() > 1) {
    io->ParallelFor(bricks.size(), sync_one);
  } else {
    for (size_t i = 0; i < bricks.size(); ++i) sync_one(i);
  }
  for (const Status& s : errs) BRICKFS_RETURN_IF_ERROR(s);
  // New directories: each and its parents up to the array directory.
  std::set<std::string> all;
  for (std::string d : dirs) {
    while (d.size() > dir_.size()) {
      all.insert(d);
      d = d.substr(0, d.find_last_of('/'));
    }
    all.insert(dir_);
    all.insert(dir_.substr(0, dir_.find_last_of('/')));
  }
  for (const auto& d : all) BRICKFS_RETURN_IF_ERROR(SyncDir(d));
  return Status::Ok();
}

Status ShardStore::SyncDirty() {
  std::vector<Shape3> dirty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty.assign(dirty_.begin(), dirty_.end());
    dirty_.clear();
  }
  return SyncBricks(dirty);
}

namespace {

// The decimal entries of a directory (shard key components), sorted.
std::vector<uint64_t> NumberedEntries(const std::string& dir) {
  std::vector<uint64_t> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const char* n = e->d_name;
    if (!*n || std::strlen(n) > 19) continue;
    bool digits = true;
    for (const char* c = n; *c; ++c) digits = digits && *c >= '0' && *c <= '9';
    if (digits) out.push_back(std::strtoull(n, nullptr, 10));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<Shape3> ShardStore::StoredBricks(const Shape3& brick_grid) const {
  std::vector<Shape3> out;
  const std::string c = dir_ + "/c";
  for (uint64_t z : NumberedEntries(c)) {
    if (z >= brick_grid[0]) continue;
    const std::string dz = c + "/" + std::to_string(z);
    for (uint64_t y : NumberedEntries(dz)) {
      if (y >= brick_grid[1]) continue;
      for (uint64_t x : NumberedEntries(dz + "/" + std::to_string(y))) {
        if (x < brick_grid[2]) out.push_back({z, y, x});
      }
    }
  }
  return out;
}

Result<ShardStore::Usage> ShardStore::ScanUsage(const Shape3& brick_grid,
                                                const LengthOf& recovered_length) {
  // The files that exist, not the grid: a declared volume may have billions
  // of bricks and hold a few.
  Usage u;
  for (const Shape3& b : StoredBricks(brick_grid)) {
    uint64_t size = 0;  // 0: no file (or an empty one)
    BRICKFS_ASSIGN_OR_RETURN(
        ShardIndex index,
        ReadIndex(b, recovered_length ? recovered_length(b) : std::nullopt, &size));
    if (size == 0) continue;
    ++u.files;
    u.file_bytes += size;
    u.live_block_bytes += index.live_bytes();
    u.live_blocks += index.live_blocks();
    u.index_bytes += ShardIndex::EncodedSize(index.size());
  }
  return u;
}

}  // namespace brickfs
