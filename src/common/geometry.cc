#include "brickfs/geometry.h"

namespace brickfs {

std::string ShapeToString(const Shape3& s) {
  return std::to_string(s[0]) + "," + std::to_string(s[1]) + "," +
         std::to_string(s[2]);
}

std::string Geometry::Validate() const {
  for (int a = 0; a < 3; ++a) {
    if (block[a] == 0 || brick[a] == 0) return "block and brick sizes must be > 0";
    if (brick[a] % block[a] != 0) {
      return "brick " + ShapeToString(brick) + " is not a multiple of block " +
             ShapeToString(block);
    }
    if (block[a] > 4096) return "block dimension larger than 4096";
  }
  if (block_bytes() > (64u << 20)) return "block larger than 64 MiB";
  if (blocks_in_brick() > (1u << 20)) return "more than 2^20 blocks per brick";
  return "";
}

Shape3 DefaultBlockShape(DType t) {
  switch (DTypeSize(t)) {
    case 1: return {32, 32, 64};
    case 2: return {32, 32, 32};
    default: return {16, 32, 32};
  }
}

}  // namespace brickfs
