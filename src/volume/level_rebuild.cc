#include "volume/level_rebuild.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "codec/block_codec.h"
#include "format/volume_meta.h"
#include "volume/block_encode.h"

namespace brickfs {

namespace {

std::string BrickRel(int level, const Shape3& b) {
  return std::to_string(level) + "/c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" +
         std::to_string(b[2]);
}

// A voxel's value as text, for messages.
std::string VoxelText(DType t, const uint8_t* p) {
  std::ostringstream out;
  switch (t) {
    case DType::kUint8:
      out << static_cast<unsigned>(p[0]);
      break;
    case DType::kUint16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      out << v;
      break;
    }
    case DType::kInt16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      out << v;
      break;
    }
    case DType::kUint32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      out << v;
      break;
    }
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      out << v;
      break;
    }
    case DType::kInt8:
      out << static_cast<int>(static_cast<int8_t>(p[0]));
      break;
    case DType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      out << v;
      break;
    }
    case DType::kFloat64: {
      double v;
      std::memcpy(&v, p, 8);
      out << v;
      break;
    }
  }
  return out.str();
}

Shape3 Min(const Shape3& a, const Shape3& b) {
  return {std::min(a[0], b[0]), std::min(a[1], b[1]), std::min(a[2], b[2])};
}

}  // namespace

LevelRebuild::LevelRebuild(Options options)
    : o_(std::move(options)),
      tile_{o_.level0.block[0], o_.level0.brick[1], o_.level0.brick[2]},
      wanted_(std::max(o_.num_levels, 1)),
      dirty_(std::max(o_.num_levels, 1)),
      raw_(o_.level0.block_bytes()) {}

Geometry LevelRebuild::LevelGeo(int level) const {
  Geometry g = o_.level0;
  g.shape = LevelShape(g.shape, level);
  return g;
}

Shape3 LevelRebuild::TileOfBlock(const Shape3& zyx) const {
  const Shape3 n = o_.level0.blocks_per_brick();
  return {zyx[0], zyx[1] / n[1], zyx[2] / n[2]};
}

void LevelRebuild::WantAll(uint8_t reason) { all_ |= reason; }

void LevelRebuild::WantBlock(int level, const Shape3& zyx, uint8_t reason) {
  if (level < 1 || level >= o_.num_levels) return;
  const Shape3 grid = LevelGeo(level).block_grid();
  if (zyx[0] >= grid[0] || zyx[1] >= grid[1] || zyx[2] >= grid[2]) return;
  wanted_[level][zyx] |= reason;
}

void LevelRebuild::WantBrick(int level, const Shape3& brick, uint8_t reason) {
  if (level < 1 || level >= o_.num_levels) return;
  const Geometry g = LevelGeo(level);
  const Shape3 n = g.blocks_per_brick(), grid = g.block_grid();
  for (uint64_t z = brick[0] * n[0]; z < std::min((brick[0] + 1) * n[0], grid[0]); ++z) {
    for (uint64_t y = brick[1] * n[1]; y < std::min((brick[1] + 1) * n[1], grid[1]); ++y) {
      for (uint64_t x = brick[2] * n[2]; x < std::min((brick[2] + 1) * n[2], grid[2]); ++x) {
        wanted_[level][{z, y, x}] |= reason;
      }
    }
  }
}

void LevelRebuild::WantLevel0Box(const Shape3& lo, const Shape3& hi, uint8_t reason) {
  Shape3 l = lo, h = hi;
  for (int level = 1; level < o_.num_levels; ++level) {
    // Level-L voxel i summarises level-(L-1) voxels 2i and 2i+1.
    for (int a = 0; a < 3; ++a) {
      l[a] /= 2;
      h[a] = CeilDiv(h[a], 2);
    }
    const Geometry g = LevelGeo(level);
    const Shape3 hc = Min(h, g.shape);
    if (l[0] >= hc[0] || l[1] >= hc[1] || l[2] >= hc[2]) return;
    for (uint64_t z = l[0] / g.block[0]; z < CeilDiv(hc[0], g.block[0]); ++z) {
      for (uint64_t y = l[1] / g.block[1]; y < CeilDiv(hc[1], g.block[1]); ++y) {
        for (uint64_t x = l[2] / g.block[2]; x < CeilDiv(hc[2], g.block[2]); ++x) {
          wanted_[level][{z, y, x}] |= reason;
        }
      }
    }
  }
}

bool LevelRebuild::empty() const {
  if (all_ && o_.num_levels > 1) return false;
  for (const auto& w : wanted_) {
    if (!w.empty()) return false;
  }
  return true;
}

uint8_t LevelRebuild::Reasons(int level, const Shape3& zyx) const {
  auto it = wanted_[level].find(zyx);
  return all_ | (it == wanted_[level].end() ? 0 : it->second);
}

Status LevelRebuild::Run(Result* out) {
  const int top = o_.num_levels - 1;
  if (top < 1 || empty() || Product(o_.level0.shape) == 0) return Status::Ok();
  shards_.clear();
  for (int level = 0; level <= top; ++level) {
    shards_.push_back(std::make_unique<ShardStore>(o_.store + "/" + std::to_string(level),
                                                   LevelGeo(level),
                                                   /*read_only=*/level == 0 || !o_.write));
  }
  // A tile is recomputed when a block wanted at its level or below lies under it.
  for (int level = 1; level <= top; ++level) {
    for (const auto& [zyx, _] : wanted_[level]) dirty_[level].insert(TileOfBlock(zyx));
    if (level + 1 <= top) {
      for (const Shape3& t : dirty_[level])
        dirty_[level + 1].insert({t[0] / 2, t[1] / 2, t[2] / 2});
    }
  }
  const Geometry g = LevelGeo(top);
  const uint32_t vb = g.voxel_bytes();
  const Shape3 tiles{CeilDiv(g.shape[0], tile_[0]), CeilDiv(g.shape[1], tile_[1]),
                     CeilDiv(g.shape[2], tile_[2])};
  std::vector<uint8_t> buf;
  for (uint64_t z = 0; z < tiles[0]; ++z) {
    for (uint64_t y = 0; y < tiles[1]; ++y) {
      for (uint64_t x = 0; x < tiles[2]; ++x) {
        const Shape3 t{z, y, x};
        if (!all_ && !dirty_[top].count(t)) continue;
        const Shape3 lo{z * tile_[0], y * tile_[1], x * tile_[2]};
        const Shape3 hi = Min({lo[0] + tile_[0], lo[1] + tile_[1], lo[2] + tile_[2]}, g.shape);
        buf.assign(Product({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]}) * vb, 0);
        Status ignored =
            Process(top, t, {buf.data(), hi[2] - lo[2], (hi[1] - lo[1]) * (hi[2] - lo[2])}, out);
        (void)ignored;  // recorded per block in *out
      }
    }
  }
  if (o_.write) {
    for (int level = 1; level <= top; ++level) BRICKFS_RETURN_IF_ERROR(shards_[level]->SyncDirty());
  }
  return Status::Ok();
}

Status LevelRebuild::Process(int level, const Shape3& t, const Box& box, Result* out) {
  const Geometry g = LevelGeo(level);
  const Shape3 lo{t[0] * tile_[0], t[1] * tile_[1], t[2] * tile_[2]};
  const Shape3 hi = Min({lo[0] + tile_[0], lo[1] + tile_[1], lo[2] + tile_[2]}, g.shape);
  if (level == 0) return ReadStored(0, lo, hi, box);

  // The level below, [2 lo, 2 hi) clipped: up to 2 x 2 x 2 tiles.
  const Geometry below = LevelGeo(level - 1);
  const uint32_t vb = g.voxel_bytes();
  const Shape3 slo{2 * lo[0], 2 * lo[1], 2 * lo[2]};
  const Shape3 shi = Min({2 * hi[0], 2 * hi[1], 2 * hi[2]}, below.shape);
  const Shape3 ss{shi[0] - slo[0], shi[1] - slo[1], shi[2] - slo[2]};
  std::vector<uint8_t> src(Product(ss) * vb, 0);
  const Box sbox{src.data(), ss[2], ss[1] * ss[2]};
  Status bad;
  for (uint64_t c = 0; c < 8; ++c) {
    const Shape3 ct{2 * t[0] + (c >> 2), 2 * t[1] + ((c >> 1) & 1), 2 * t[2] + (c & 1)};
    const Shape3 clo{ct[0] * tile_[0], ct[1] * tile_[1], ct[2] * tile_[2]};
    if (clo[0] >= shi[0] || clo[1] >= shi[1] || clo[2] >= shi[2]) continue;
    const Shape3 chi = Min({clo[0] + tile_[0], clo[1] + tile_[1], clo[2] + tile_[2]}, shi);
    const Box cbox{
        src.data() +
            (((clo[0] - slo[0]) * ss[1] + (clo[1] - slo[1])) * ss[2] + (clo[2] - slo[2])) * vb,
        sbox.row, sbox.plane};
    const bool recompute = level - 1 >= 1 && (all_ || dirty_[level - 1].count(ct));
    Status s =
        recompute ? Process(level - 1, ct, cbox, out) : ReadStored(level - 1, clo, chi, cbox);
    if (!s.ok() && bad.ok()) bad = s;
  }
  Downsample2x(g.dtype, o_.method, src.data(), ss, {sbox.row, sbox.plane}, box.data,
               {box.row, box.plane});
  if (!bad.ok()) {
    SkipTile(level, lo, hi, bad.message(), out);
    return bad;
  }
  CompareTile(level, lo, hi, box, out);
  return Status::Ok();
}

Status LevelRebuild::ReadStored(int level, const Shape3& lo, const Shape3& hi, const Box& box) {
  const Geometry g = LevelGeo(level);
  const uint32_t vb = g.voxel_bytes();
  const Shape3 B = g.block;
  for (uint64_t z = lo[0]; z < hi[0]; ++z) {
    for (uint64_t y = lo[1]; y < hi[1]; ++y) {
      std::memset(box.data + ((z - lo[0]) * box.plane + (y - lo[1]) * box.row) * vb, 0,
                  (hi[2] - lo[2]) * vb);
    }
  }
  // The blocks over [lo, hi), brick by brick.
  std::map<Shape3, std::vector<uint64_t>> by_brick;
  std::map<Shape3, std::vector<Shape3>> zyx_of;
  for (uint64_t bz = lo[0] / B[0]; bz * B[0] < hi[0]; ++bz) {
    for (uint64_t by = lo[1] / B[1]; by * B[1] < hi[1]; ++by) {
      for (uint64_t bx = lo[2] / B[2]; bx * B[2] < hi[2]; ++bx) {
        const Shape3 b{bz, by, bx};
        const Shape3 brick = g.BrickOfBlock(b);
        by_brick[brick].push_back(g.BlockIndexInBrick(b));
        zyx_of[brick].push_back(b);
      }
    }
  }
  BlockCodec& codec = ThreadCodec(o_.zstd_level);
  for (const auto& [brick, indices] : by_brick) {
    const std::vector<Shape3>& zyx = zyx_of[brick];
    Status s =
        shards_[level]->ReadBlocks(brick, indices, [&](size_t i, std::string_view bytes) -> Status {
          Status d = codec.Decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                  raw_.data(), raw_.size());
          if (!d.ok())
            return d.WithContext(BrickRel(level, brick) + " block " + std::to_string(indices[i]));
          const Shape3& b = zyx[i];
          const Shape3 b0{b[0] * B[0], b[1] * B[1], b[2] * B[2]};
          const Shape3 from{std::max(b0[0], lo[0]), std::max(b0[1], lo[1]), std::max(b0[2], lo[2])};
          const Shape3 to = Min({b0[0] + B[0], b0[1] + B[1], b0[2] + B[2]}, hi);
          for (uint64_t z = from[0]; z < to[0]; ++z) {
            for (uint64_t y = from[1]; y < to[1]; ++y) {
              std::memcpy(
                  box.data +
                      ((z - lo[0]) * box.plane + (y - lo[1]) * box.row + (from[2] - lo[2])) * vb,
                  raw_.data() +
                      (((z - b0[0]) * B[1] + (y - b0[1])) * B[2] + (from[2] - b0[2])) * vb,
                  (to[2] - from[2]) * vb);
            }
          }
          return Status::Ok();
        });
    if (!s.ok()) {
      return Status::Corruption("level " + std::to_string(level) +
                                " cannot be read there: " + s.message());
    }
  }
  return Status::Ok();
}

void LevelRebuild::SkipTile(int level, const Shape3& lo, const Shape3& hi, const std::string& why,
                            Result* out) {
  const Geometry g = LevelGeo(level);
  const Shape3 B = g.block;
  for (uint64_t by = lo[1] / B[1]; by * B[1] < hi[1]; ++by) {
    for (uint64_t bx = lo[2] / B[2]; bx * B[2] < hi[2]; ++bx) {
      const Shape3 zyx{lo[0] / B[0], by, bx};
      const uint8_t reasons = Reasons(level, zyx);
      if (!reasons) continue;
      Block b;
      b.level = level;
      b.zyx = zyx;
      b.brick = g.BrickOfBlock(zyx);
      b.index = g.BlockIndexInBrick(zyx);
      b.reasons = reasons;
      b.error = why;
      out->blocks.push_back(std::move(b));
      ++out->not_compared;
    }
  }
}

void LevelRebuild::CompareTile(int level, const Shape3& lo, const Shape3& hi, const Box& box,
                               Result* out) {
  const Geometry g = LevelGeo(level);
  const uint32_t vb = g.voxel_bytes();
  const Shape3 B = g.block;
  const uint64_t bz = lo[0] / B[0];
  BlockCodec& codec = ThreadCodec(o_.zstd_level);
  // The tile is one block row of one brick.
  const Shape3 brick = g.BrickOfBlock({bz, lo[1] / B[1], lo[2] / B[2]});
  auto index = shards_[level]->GetIndex(brick);
  std::vector<Block> found;
  std::vector<std::string> expected;  // raw blocks to write, as found[i]
  for (uint64_t by = lo[1] / B[1]; by * B[1] < hi[1]; ++by) {
    for (uint64_t bx = lo[2] / B[2]; bx * B[2] < hi[2]; ++bx) {
      const Shape3 zyx{bz, by, bx};
      const uint8_t reasons = Reasons(level, zyx);
      if (!reasons) continue;
      Block b;
      b.level = level;
      b.zyx = zyx;
      b.brick = brick;
      b.index = g.BlockIndexInBrick(zyx);
      b.reasons = reasons;
      if (!index.ok()) {
        b.error = "its shard's index cannot be read: " + index.status().message();
        found.push_back(std::move(b));
        expected.emplace_back();
        ++out->not_compared;
        continue;
      }
      ++out->compared;
      b.compared = true;
      // The expected block: the tile's voxels, fill past the level's shape.
      const Shape3 b0{bz * B[0], by * B[1], bx * B[2]};
      const Shape3 b1 = Min({b0[0] + B[0], b0[1] + B[1], b0[2] + B[2]}, hi);
      std::string want(g.block_bytes(), '\0');
      for (uint64_t z = b0[0]; z < b1[0]; ++z) {
        for (uint64_t y = b0[1]; y < b1[1]; ++y) {
          std::memcpy(
              want.data() + (((z - b0[0]) * B[1] + (y - b0[1])) * B[2]) * vb,
              box.data + ((z - lo[0]) * box.plane + (y - lo[1]) * box.row + (b0[2] - lo[2])) * vb,
              (b1[2] - b0[2]) * vb);
        }
      }
      // The stored block (fill when not stored).
      std::fill(raw_.begin(), raw_.end(), 0);
      b.stored = !(*index)->at(b.index).empty();
      if (b.stored) {
        std::vector<std::string> bytes;
        Status s = shards_[level]->ReadBlocks(brick, {b.index}, &bytes);
        if (s.ok()) {
          s = codec.Decode(reinterpret_cast<const uint8_t*>(bytes[0].data()), bytes[0].size(),
                           raw_.data(), raw_.size());
        }
        if (!s.ok()) b.unreadable = s.message();
      }
      if (b.unreadable.empty()) {
        for (uint64_t z = b0[0]; z < b1[0]; ++z) {
          for (uint64_t y = b0[1]; y < b1[1]; ++y) {
            for (uint64_t x = b0[2]; x < b1[2]; ++x) {
              const uint64_t at = (((z - b0[0]) * B[1] + (y - b0[1])) * B[2] + (x - b0[2])) * vb;
              ++b.voxels;
              if (std::memcmp(raw_.data() + at, want.data() + at, vb) == 0) continue;
              if (b.voxels_differ++ == 0) {
                b.first = {z, y, x};
                b.stored_value = VoxelText(g.dtype, raw_.data() + at);
                b.expected_value =
                    VoxelText(g.dtype, reinterpret_cast<const uint8_t*>(want.data()) + at);
              }
            }
          }
        }
        if (b.voxels_differ == 0) continue;
      }
      found.push_back(std::move(b));
      expected.push_back(std::move(want));
    }
  }
  if (o_.write) {
    std::string bytes;
    std::vector<std::pair<size_t, size_t>> spans;  // found[i]: bytes [first, second)
    std::vector<size_t> which;
    for (size_t i = 0; i < found.size(); ++i) {
      if (!found[i].compared) continue;
      const size_t begin = bytes.size();
      const auto* raw = reinterpret_cast<const uint8_t*>(expected[i].data());
      // An all-fill block is not stored: its entry is cleared.
      if (!IsAllZero(raw, expected[i].size())) {
        Status s = codec.Encode(raw, expected[i].size(), &bytes);
        if (!s.ok()) {
          found[i].error = "encoding: " + s.message();
          continue;
        }
      }
      spans.emplace_back(begin, bytes.size());
      which.push_back(i);
    }
    if (!which.empty()) {
      std::vector<EncodedBlock> blocks;
      for (size_t k = 0; k < which.size(); ++k) {
        blocks.push_back(
            {found[which[k]].index,
             std::string_view(bytes).substr(spans[k].first, spans[k].second - spans[k].first)});
      }
      auto before = shards_[level]->FileSize(brick);
      Status s = before.ok() ? shards_[level]->Append(brick, blocks, nullptr) : before.status();
      for (size_t i : which) {
        if (s.ok()) {
          found[i].rewritten = true;
          found[i].offset = *before;
          ++out->rewritten;
        } else {
          found[i].error = "appending to " + BrickRel(level, brick) + ": " + s.message();
        }
      }
    }
  }
  for (auto& b : found) out->blocks.push_back(std::move(b));
}

}  // namespace brickfs
