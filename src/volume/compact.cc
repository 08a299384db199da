#include "volume/compact.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "format/shard_index.h"
#include "format/volume_meta.h"
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

std::string BrickRel(int level, const Shape3& b) {
  return std::to_string(level) + "/c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" +
         std::to_string(b[2]);
}

}  // namespace

Status CompactShard(ShardStore& shards, const Geometry& g, const Shape3& brick,
                    const ShardCompactOptions& options, CompactBrick* out) {
  out->compacted = false;
  BRICKFS_ASSIGN_OR_RETURN(uint64_t size, shards.FileSize(brick));
  out->bytes_before = out->bytes_after = size;
  if (size == 0) return Status::Ok();  // no file
  BRICKFS_ASSIGN_OR_RETURN(std::shared_ptr<const ShardIndex> index, shards.GetIndex(brick));
  // Dense: the live blocks and one index; a shard with no live block has no file.
  const uint64_t dense =
      index->live_blocks() ? index->live_bytes() + ShardIndex::EncodedSize(index->size()) : 0;
  if (size <= dense || size - dense < std::max<uint64_t>(options.min_dead_bytes, 1))
    return Status::Ok();
  if (options.dry_run) {
    out->compacted = true;
    out->bytes_after = dense;
    return Status::Ok();
  }
  // The live blocks in index order, each verified on the way.
  std::vector<uint64_t> indices;
  for (uint64_t i = 0; i < index->size(); ++i) {
    if (!index->at(i).empty()) indices.push_back(i);
  }
  std::string bytes;
  bytes.reserve(index->live_bytes());
  std::vector<std::pair<size_t, size_t>> spans(indices.size());  // into bytes
  const Shape3 nb = g.blocks_per_brick();
  BRICKFS_RETURN_IF_ERROR(
      shards.ReadBlocks(brick, indices, [&](size_t k, std::string_view b) -> Status {
        const auto* p = reinterpret_cast<const uint8_t*>(b.data());
        const uint32_t stored = b.size() >= 4 ? GetU32(p + b.size() - 4) : 0;
        const uint32_t actual = b.size() >= 4 ? Crc32c(p, b.size() - 4) : ~stored;
        if (stored != actual) {
          const uint64_t i = indices[k];
          const Shape3 zyx{brick[0] * nb[0] + i / (nb[1] * nb[2]),
                           brick[1] * nb[1] + (i / nb[2]) % nb[1], brick[2] * nb[2] + i % nb[2]};
          return Status::Corruption(
              "block " + std::to_string(i) + " (block z,y,x " + ShapeToString(zyx) +
              ") at offset " + std::to_string(index->at(i).offset) + ", " +
              std::to_string(b.size()) + " bytes: crc32c mismatch (stored " +
              std::to_string(stored) + ", computed " + std::to_string(actual) + ")");
        }
        spans[k] = {bytes.size(), b.size()};
        bytes.append(b);
        return Status::Ok();
      }));
  std::vector<EncodedBlock> blocks;
  blocks.reserve(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    blocks.push_back({indices[k], std::string_view(bytes).substr(spans[k].first, spans[k].second)});
  }
  AppendStats stats;
  BRICKFS_RETURN_IF_ERROR(shards.Replace(
      brick, blocks,
      [&](uint64_t length, uint64_t inode) {
        return options.before_rename ? options.before_rename(length, inode) : Status::Ok();
      },
      &stats));
  out->compacted = true;
  out->bytes_after = blocks.empty() ? 0 : stats.file_size;
  return Status::Ok();
}

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
      return Status::InvalidArgument(
          store_path +
          " was not unmounted cleanly (its journal is not empty): mount it read-write "
          "once, or run brickfs fsck --repair, before compacting");
    }
  }
  if (!store->meta()) return rep;  // nothing stored yet
  const VolumeMeta& meta = *store->meta();
  ShardCompactOptions so;
  so.dry_run = options.dry_run;
  for (int level = 0; level < std::clamp(meta.num_levels, 1, kMaxLevels); ++level) {
    Geometry g = meta.geo;
    g.shape = LevelShape(meta.geo.shape, level);
    ShardStore shards(store->ArrayDir(level), g, /*read_only=*/options.dry_run);
    CompactReport::Level lv;
    lv.level = level;
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
          b.level = level;
          b.path = BrickRel(level, brick);
          b.bytes_before = b.bytes_after = static_cast<uint64_t>(sb.st_size);
          Status s = CompactShard(shards, g, brick, so, &b);
          if (!s.ok()) {
            b.compacted = false;
            b.bytes_after = b.bytes_before;
            b.error = s.message() + "; the shard was left as it was" +
                      (s.code() == Status::Code::kCorruption ? " (run brickfs fsck --repair)" : "");
          }
          ++lv.shard_files;
          lv.bytes_before += b.bytes_before;
          lv.bytes_after += b.bytes_after;
          if (b.compacted) ++lv.files_compacted;
          if (b.compacted || !b.error.empty()) rep.bricks.push_back(std::move(b));
        }
      }
    }
    rep.shard_files += lv.shard_files;
    rep.files_compacted += lv.files_compacted;
    rep.bytes_before += lv.bytes_before;
    rep.bytes_after += lv.bytes_after;
    rep.levels.push_back(lv);
  }
  return rep;
}

}  // namespace brickfs
