// Cutting a box of voxels into blocks and encoding them, for every writer of
// shards: the level-0 slab flush, brick writes, and the pyramid's levels.
//
// Thread-safety: EncodeBlocks is reentrant; ThreadCodec returns a codec
// owned by the calling thread.
#ifndef BRICKFS_VOLUME_BLOCK_ENCODE_H_
#define BRICKFS_VOLUME_BLOCK_ENCODE_H_

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "codec/block_codec.h"
#include "format/shard_index.h"
#include "store/shard_store.h"

namespace brickfs {

// Copies n voxels of vb bytes from a contiguous run to dst with stride.
inline void CopyRun(uint8_t* dst, uint64_t dst_stride, const uint8_t* src, uint64_t n,
                    uint32_t vb) {
  if (dst_stride == vb) {
    std::memcpy(dst, src, n * vb);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) std::memcpy(dst + i * dst_stride, src + i * vb, vb);
}

// The calling thread's codec at zstd `level`.
BlockCodec& ThreadCodec(int level);

// Voxels available to encode: the box [lo, hi) of one array, as planes.
// plane(z) points at voxel (z, lo[1], lo[2]) with rows `row` voxels apart,
// or is null for a plane of fill. lo must sit on block boundaries; hi too,
// or at the array's edge (the rest of an edge block is fill).
struct BlockSource {
  Shape3 lo{0, 0, 0}, hi{0, 0, 0};
  uint64_t row = 0;
  std::function<const uint8_t*(uint64_t z)> plane;
};

// Encoded blocks of one brick, ready for ShardStore::Append or Replace.
struct EncodedBlocks {
  struct Entry {
    uint64_t index_in_brick;
    size_t begin, end;  // into bytes; begin == end clears the entry (fill)
  };
  std::string bytes;
  std::vector<Entry> entries;
  uint64_t raw_bytes = 0;    // voxel bytes gathered
  uint64_t fill_blocks = 0;  // all-fill blocks (not stored)

  std::vector<EncodedBlock> Views() const;
};

// Gathers and encodes every block of `brick` that lies inside src's box
// (clipped to g.shape), appending to *out. An all-fill block is left out,
// or recorded as cleared when `existing` (the brick's current index; may be
// null for a brick written whole) has data for it.
Status EncodeBlocks(const Geometry& g, int zstd_level, const Shape3& brick, const BlockSource& src,
                    const ShardIndex* existing, EncodedBlocks* out);

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_BLOCK_ENCODE_H_
