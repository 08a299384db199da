// Index arithmetic of a bricked volume: shapes, blocks, bricks, slabs.
//
// All shapes are (z, y, x) with x fastest in memory. A block is the unit of
// compression (a Zarr v3 inner chunk); a brick is a group of blocks in one
// file (a Zarr v3 shard); a slab is every block sharing one block row in z.
// Brick shape must be a multiple of block shape in every axis.
// Plain values; thread-safe to share.
#ifndef BRICKFS_GEOMETRY_H_
#define BRICKFS_GEOMETRY_H_

#include <array>
#include <cstdint>
#include <string>

#include "brickfs/dtype.h"

namespace brickfs {

using Shape3 = std::array<uint64_t, 3>;  // (z, y, x)

inline uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

inline uint64_t Product(const Shape3& s) { return s[0] * s[1] * s[2]; }

// "Z,Y,X"
std::string ShapeToString(const Shape3& s);

// Geometry of level 0 (or any level) of a volume.
struct Geometry {
  Shape3 shape{0, 0, 0};  // voxels; shape[0] may grow during ingest
  Shape3 block{0, 0, 0};  // voxels per block
  Shape3 brick{0, 0, 0};  // voxels per brick (shard), multiple of block
  DType dtype = DType::kUint8;

  uint32_t voxel_bytes() const { return DTypeSize(dtype); }
  uint64_t block_voxels() const { return Product(block); }
  uint64_t block_bytes() const { return block_voxels() * voxel_bytes(); }
  // Blocks per brick along each axis, and in total (= index entries).
  Shape3 blocks_per_brick() const {
    return {brick[0] / block[0], brick[1] / block[1], brick[2] / block[2]};
  }
  uint64_t blocks_in_brick() const { return Product(blocks_per_brick()); }
  // Number of blocks / bricks along each axis to cover `shape`.
  Shape3 block_grid() const {
    return {CeilDiv(shape[0], block[0]), CeilDiv(shape[1], block[1]),
            CeilDiv(shape[2], block[2])};
  }
  Shape3 brick_grid() const {
    return {CeilDiv(shape[0], brick[0]), CeilDiv(shape[1], brick[1]),
            CeilDiv(shape[2], brick[2])};
  }
  // Bytes of one z-slice (Y * X * voxel).
  uint64_t slice_bytes() const { return shape[1] * shape[2] * voxel_bytes(); }
  // A slab is block[0] slices.
  uint64_t slab_bytes() const { return block[0] * slice_bytes(); }
  uint64_t num_slabs() const { return CeilDiv(shape[0], block[0]); }

  // Position of block (bz,by,bx) (global block coords) inside its brick, as
  // the C-order index into the shard index.
  uint64_t BlockIndexInBrick(const Shape3& b) const {
    Shape3 n = blocks_per_brick();
    return ((b[0] % n[0]) * n[1] + (b[1] % n[1])) * n[2] + (b[2] % n[2]);
  }
  Shape3 BrickOfBlock(const Shape3& b) const {
    Shape3 n = blocks_per_brick();
    return {b[0] / n[0], b[1] / n[1], b[2] / n[2]};
  }

  // Checks block/brick consistency and every limit below (with overflow-safe
  // arithmetic, so a hostile shape cannot wrap around); empty when valid,
  // else what is wrong with the numbers.
  std::string Validate() const;
};

// Limits on what a volume may declare (README "Limits", brickfs-format(5)).
// Everything read from disk or from a name is checked against them before it
// sizes anything; no code allocates or loops in proportion to the declared
// shape, so a volume at these limits mounts, lists and reports instantly.
//   side      every axis < 2^32: a plane is a TIFF, whose ImageWidth and
//             ImageLength are 32-bit.
//   plane     the pixel bytes of any z/, y/ or x/ plane <= 2^40 (1 TiB).
//   volume    all voxels' bytes <= 2^60, so byte counts fit int64 everywhere.
//   block     each side <= 4096, at most 64 MiB of voxels.
//   brick     a multiple of the block; at most 2^20 blocks per brick (a
//             16 MiB shard index), each side < 2^32.
inline constexpr uint64_t kMaxSide = (uint64_t{1} << 32) - 1;
inline constexpr uint64_t kMaxPlaneBytes = uint64_t{1} << 40;
inline constexpr uint64_t kMaxVolumeBytes = uint64_t{1} << 60;
inline constexpr uint64_t kMaxBlockSide = 4096;
inline constexpr uint64_t kMaxBlockBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMaxBlocksPerBrick = uint64_t{1} << 20;

// Default block shape: 32x32x32 for every dtype (uint8 32 KiB, 16-bit
// 64 KiB, 32-bit 128 KiB), so planes along z, y and x cost alike.
Shape3 DefaultBlockShape(DType t);
inline constexpr Shape3 kDefaultBrick{256, 256, 256};

}  // namespace brickfs

#endif  // BRICKFS_GEOMETRY_H_
