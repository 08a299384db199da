#include "volume/block_encode.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace brickfs {

BlockCodec& ThreadCodec(int level) {
  thread_local std::unique_ptr<BlockCodec> codec;
  thread_local int codec_level = -1000;
  if (!codec || codec_level != level) {
    codec = std::make_unique<BlockCodec>(level);
    codec_level = level;
  }
  return *codec;
}

std::vector<EncodedBlock> EncodedBlocks::Views() const {
  std::vector<EncodedBlock> v;
  v.reserve(entries.size());
  for (const Entry& e : entries) {
    v.push_back({e.index_in_brick, std::string_view(bytes).substr(e.begin, e.end - e.begin)});
  }
  return v;
}

Status EncodeBlocks(const Geometry& g, int zstd_level, const Shape3& brick, const BlockSource& src,
                    const ShardIndex* existing, EncodedBlocks* out) {
  const Shape3 B = g.block;
  const Shape3 nb = g.blocks_per_brick();
  const uint32_t vb = g.voxel_bytes();
  Shape3 first, last;  // block coordinates [first, last)
  for (int a = 0; a < 3; ++a) {
    const uint64_t hi = std::min(src.hi[a], g.shape[a]);
    first[a] = std::max(brick[a] * nb[a], src.lo[a] / B[a]);
    last[a] = std::min((brick[a] + 1) * nb[a], CeilDiv(hi, B[a]));
  }
  thread_local std::vector<uint8_t> block;
  block.resize(g.block_bytes());
  BlockCodec& codec = ThreadCodec(zstd_level);
  for (uint64_t bz = first[0]; bz < last[0]; ++bz) {
    for (uint64_t by = first[1]; by < last[1]; ++by) {
      for (uint64_t bx = first[2]; bx < last[2]; ++bx) {
        const uint64_t z0 = bz * B[0], y0 = by * B[1], x0 = bx * B[2];
        const uint64_t ny = std::min(B[1], std::min(src.hi[1], g.shape[1]) - y0);
        const uint64_t nx = std::min(B[2], std::min(src.hi[2], g.shape[2]) - x0);
        if (ny < B[1] || nx < B[2]) std::fill(block.begin(), block.end(), 0);
        for (uint64_t zi = 0; zi < B[0]; ++zi) {
          uint8_t* dst = block.data() + zi * B[1] * B[2] * vb;
          const uint8_t* p = z0 + zi < src.hi[0] ? src.plane(z0 + zi) : nullptr;
          if (!p) {
            std::memset(dst, 0, B[1] * B[2] * vb);
            continue;
          }
          for (uint64_t yi = 0; yi < ny; ++yi) {
            std::memcpy(dst + yi * B[2] * vb, p + ((y0 + yi - src.lo[1]) * src.row + (x0 - src.lo[2])) * vb,
                        nx * vb);
          }
        }
        out->raw_bytes += block.size();
        const uint64_t idx = g.BlockIndexInBrick({bz, by, bx});
        if (IsAllZero(block.data(), block.size())) {
          ++out->fill_blocks;
          if (existing && !existing->at(idx).empty()) {
            out->entries.push_back({idx, out->bytes.size(), out->bytes.size()});
          }
          continue;
        }
        const size_t begin = out->bytes.size();
        BRICKFS_RETURN_IF_ERROR(codec.Encode(block.data(), block.size(), &out->bytes));
        out->entries.push_back({idx, begin, out->bytes.size()});
      }
    }
  }
  return Status::Ok();
}

}  // namespace brickfs
