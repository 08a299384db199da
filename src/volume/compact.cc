#include "volume/compact.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/scope_guard.h"
#include "format/shard_index.h"
#include "store/journal.h"
#include "store/shard_store.h"
#include "store/store.h"

namespace brickfs {

uint64_t CompactReport::errors() const {
  uint64_t n = 0;
  for (const auto& b : bricks) n += b.error.empty() ? 0 : 1;
  return n;
}

namespace {

constexpr size_t kFlushBytes = 8u << 20;  // output buffered up to this much per write

std::string BrickRel(const Shape3& b) {
  return "0/c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" + std::to_string(b[2]);
}

// Writes the live blocks of `index` from `src_fd` into a new dense shard at
// `tmp`, in index order, verifying each block's crc32c. Returns the new size.
Result<uint64_t> WriteDense(int src_fd, const std::string& src, const ShardIndex& index, const Geometry& g,
                            const Shape3& brick, const std::string& tmp) {
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return Status::IOError("create " + tmp, errno);
  ScopeGuard close_out([out] { ::close(out); });
  ShardIndex fresh(index.size());
  std::string buf;
  uint64_t written = 0;
  const Shape3 nb = g.blocks_per_brick();
  for (uint64_t i = 0; i < index.size(); ++i) {
    const BlockLocation& loc = index.at(i);
    if (loc.empty()) continue;
    const size_t at = buf.size();
    buf.resize(at + loc.nbytes);
    BRICKFS_RETURN_IF_ERROR(PreadAll(src_fd, buf.data() + at, loc.nbytes, loc.offset, src));
    const auto* p = reinterpret_cast<const uint8_t*>(buf.data() + at);
    const uint32_t stored = loc.nbytes >= 4 ? GetU32(p + loc.nbytes - 4) : 0;
    const uint32_t actual = loc.nbytes >= 4 ? Crc32c(p, loc.nbytes - 4) : ~stored;
    if (stored != actual) {
      const Shape3 zyx{brick[0] * nb[0] + i / (nb[1] * nb[2]), brick[1] * nb[1] + (i / nb[2]) % nb[1],
                       brick[2] * nb[2] + i % nb[2]};
      return Status::Corruption("block " + std::to_string(i) + " (block z,y,x " + ShapeToString(zyx) +
                                ") at offset " + std::to_string(loc.offset) + ", " + std::to_string(loc.nbytes) +
                                " bytes: crc32c mismatch (stored " + std::to_string(stored) + ", computed " +
                                std::to_string(actual) + ")");
    }
    fresh.Set(i, BlockLocation{written + at, loc.nbytes});
    if (buf.size() >= kFlushBytes) {
      BRICKFS_RETURN_IF_ERROR(PwriteAll(out, buf.data(), buf.size(), written, tmp));
      written += buf.size();
      buf.clear();
    }
  }
  fresh.EncodeTo(&buf);
  BRICKFS_RETURN_IF_ERROR(PwriteAll(out, buf.data(), buf.size(), written, tmp));
  written += buf.size();
  if (::fsync(out) != 0) return Status::IOError("fsync " + tmp, errno);
  return written;
}

// Compacts one shard if it has dead bytes; fills *b.
void CompactBrickFile(ShardStore& shards, const Geometry& g, const Shape3& brick, bool dry_run,
                      CompactBrick* b) {
  const std::string path = shards.BrickPath(brick);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    b->error = "open: " + Status::IOError(path, errno).message();
    return;
  }
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat sb;
  if (::fstat(fd, &sb) != 0) {
    b->error = Status::IOError("stat " + path, errno).message();
    return;
  }
  b->bytes_before = b->bytes_after = static_cast<uint64_t>(sb.st_size);
  auto index = shards.GetIndex(brick);
  if (!index.ok()) {
    b->error = index.status().message() + " (run brickfs fsck)";
    return;
  }
  const uint64_t dense = (*index)->live_bytes() + ShardIndex::EncodedSize((*index)->size());
  if (b->bytes_before <= dense) return;  // nothing dead
  b->compacted = true;
  if (dry_run) {
    b->bytes_after = dense;
    return;
  }
  const std::string tmp = path + ".compact.tmp";
  auto size = WriteDense(fd, path, **index, g, brick, tmp);
  Status s = size.ok() ? Status::Ok() : size.status();
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::IOError("rename " + tmp + " to " + path, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    b->compacted = false;
    b->error = s.message() + "; the shard was left as it was" +
               (s.code() == Status::Code::kCorruption ? " (run brickfs fsck --repair)" : "");
    return;
  }
  b->bytes_after = *size;
  s = SyncDir(path.substr(0, path.find_last_of('/')));
  if (!s.ok()) b->error = s.message() + " (the shard was replaced but the rename may not be durable yet)";
}

}  // namespace

Result<CompactReport> Compact(const std::string& store_path, const CompactOptions& options) {
  CompactReport rep;
  rep.store = store_path;
  rep.dry_run = options.dry_run;
  BRICKFS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                           Store::OpenForMaintenance(store_path, options.dry_run));
  // An unrecovered journal records shard lengths that compaction changes.
  struct stat jsb;
  if (::stat(Journal::PathFor(store_path).c_str(), &jsb) == 0 && jsb.st_size > 0) {
    auto js = ReadJournal(store_path);
    if (!js.ok() || js->frames > 0 || js->torn_bytes > 0) {
      return Status::InvalidArgument(store_path +
                                     " was not unmounted cleanly (its journal is not empty): mount it read-write "
                                     "once, or run brickfs fsck --repair, before compacting");
    }
  }
  if (!store->meta()) return rep;  // nothing stored yet
  const Geometry& g = store->meta()->geo;
  ShardStore shards(store->ArrayDir(0), g, /*read_only=*/true);
  const Shape3 grid = g.brick_grid();
  for (uint64_t z = 0; z < grid[0]; ++z) {
    for (uint64_t y = 0; y < grid[1]; ++y) {
      for (uint64_t x = 0; x < grid[2]; ++x) {
        const Shape3 brick{z, y, x};
        struct stat sb;
        if (::stat(shards.BrickPath(brick).c_str(), &sb) != 0) {
          if (errno == ENOENT) continue;
          return Status::IOError("stat " + shards.BrickPath(brick), errno);
        }
        CompactBrick b;
        b.path = BrickRel(brick);
        CompactBrickFile(shards, g, brick, options.dry_run, &b);
        ++rep.shard_files;
        rep.bytes_before += b.bytes_before;
        rep.bytes_after += b.bytes_after;
        if (b.compacted) ++rep.files_compacted;
        if (b.compacted || !b.error.empty()) rep.bricks.push_back(std::move(b));
      }
    }
  }
  return rep;
}

}  // namespace brickfs
