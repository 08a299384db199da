#include "brickfs/geometry.h"

#include <optional>

namespace brickfs {

std::string ShapeToString(const Shape3& s) {
  return std::to_string(s[0]) + "," + std::to_string(s[1]) + "," +
         std::to_string(s[2]);
}

namespace {

// a * b, or nullopt when it exceeds `limit` (never overflows: checked by division).
std::optional<uint64_t> MulAtMost(uint64_t a, uint64_t b, uint64_t limit) {
  if (a != 0 && b > limit / a) return std::nullopt;
  return a * b;
}

}  // namespace

std::string Geometry::Validate() const {
  // Zero sides first, on every axis: they are the first thing to fix.
  for (int a = 0; a < 3; ++a) {
    if (block[a] == 0 || brick[a] == 0) return "block and brick sizes must be > 0";
  }
  for (int a = 0; a < 3; ++a) {
    if (block[a] > kMaxBlockSide) {
      return "block " + ShapeToString(block) + " has a side over " + std::to_string(kMaxBlockSide);
    }
    if (brick[a] > kMaxSide) return "brick " + ShapeToString(brick) + " has a side of 2^32 or more";
    if (brick[a] % block[a] != 0) {
      return "brick " + ShapeToString(brick) + " is not a multiple of block " +
             ShapeToString(block);
    }
    if (shape[a] > kMaxSide) {
      return "shape " + ShapeToString(shape) + " has a side of 2^32 or more (limit " +
             std::to_string(kMaxSide) + ")";
    }
  }
  // block sides <= 4096 and 4-byte voxels: block_bytes() cannot overflow.
  if (block_bytes() > kMaxBlockBytes) return "block " + ShapeToString(block) + " is larger than 64 MiB";
  const Shape3 n = blocks_per_brick();
  auto nb = MulAtMost(n[0], n[1], kMaxBlocksPerBrick);
  if (nb) nb = MulAtMost(*nb, n[2], kMaxBlocksPerBrick);
  if (!nb) {
    return "brick " + ShapeToString(brick) + " holds more than 2^20 blocks of " +
           ShapeToString(block);
  }
  const uint64_t vb = voxel_bytes();
  const char* names[3] = {"z", "y", "x"};
  for (int a = 0; a < 3; ++a) {
    // The plane perpendicular to axis a: the product of the other two sides.
    const int u = a == 0 ? 1 : 0, v = a == 2 ? 1 : 2;
    auto bytes = MulAtMost(shape[u], shape[v], kMaxPlaneBytes);
    if (bytes) bytes = MulAtMost(*bytes, vb, kMaxPlaneBytes);
    if (!bytes) {
      return "shape " + ShapeToString(shape) + " makes " + names[a] +
             "-planes larger than 1 TiB (limit 2^40 bytes per plane)";
    }
  }
  auto total = MulAtMost(shape[0], shape[1], kMaxVolumeBytes);
  if (total) total = MulAtMost(*total, shape[2], kMaxVolumeBytes);
  if (total) total = MulAtMost(*total, vb, kMaxVolumeBytes);
  if (!total) return "shape " + ShapeToString(shape) + " is larger than 2^60 bytes";
  return "";
}

Shape3 DefaultBlockShape(DType) {
  // Cubic for every dtype: a plane along any axis needs the same number of
  // blocks (32,32,64 uint8 blocks made a cold YZ plane 2.0-2.3x an XY one).
  return {32, 32, 32};
}

}  // namespace brickfs
