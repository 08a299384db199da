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

  // Checks block/brick/dtype consistency; empty string when valid.
  std::string Validate() const;
};

// Default block shape: 64 KiB raw. uint8 32x32x64, uint16 32x32x32,
// 4-byte types 16x32x32.
Shape3 DefaultBlockShape(DType t);
inline constexpr Shape3 kDefaultBrick{256, 256, 256};

}  // namespace brickfs

#endif  // BRICKFS_GEOMETRY_H_
