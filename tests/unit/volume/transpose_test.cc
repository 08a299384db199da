#include "volume/transpose.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace brickfs {
namespace {

// The definition, element by element.
std::vector<uint8_t> Reference(const std::vector<uint8_t>& in, uint64_t rows, uint64_t cols,
                               uint32_t vb) {
  std::vector<uint8_t> out(in.size());
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) {
      std::memcpy(&out[(c * rows + r) * vb], &in[(r * cols + c) * vb], vb);
    }
  }
  return out;
}

TEST(TransposeTest, MatchesTheDefinitionForEveryVoxelSizeAndEdge) {
  std::mt19937 rng(7);
  for (uint32_t vb : {1u, 2u, 4u, 8u}) {
    // Tile multiples, edges on one side or both, and degenerate shapes.
    for (auto [rows, cols] : std::vector<std::pair<uint64_t, uint64_t>>{
             {1024, 64}, {1024, 32}, {64, 64}, {16, 16}, {17, 33}, {33, 16}, {5, 7}, {1, 9},
             {9, 1}, {256, 48}, {100, 20}}) {
      std::vector<uint8_t> in(rows * cols * vb), out(in.size(), 0xEE);
      for (auto& b : in) b = static_cast<uint8_t>(rng());
      TransposeMatrix(in.data(), out.data(), rows, cols, vb);
      ASSERT_EQ(out, Reference(in, rows, cols, vb)) << "vb " << vb << " " << rows << "x" << cols;
    }
  }
}

TEST(TransposeTest, ColumnsLayoutOfABlock) {
  const Shape3 B{4, 3, 16};  // z, y, x
  std::vector<uint8_t> in(4 * 3 * 16 * 2), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i * 7 + 1);
  TransposeToColumns(in.data(), out.data(), B, 2);
  for (uint64_t z = 0; z < 4; ++z) {
    for (uint64_t y = 0; y < 3; ++y) {
      for (uint64_t x = 0; x < 16; ++x) {
        ASSERT_EQ(0, std::memcmp(&out[((x * 4 + z) * 3 + y) * 2], &in[((z * 3 + y) * 16 + x) * 2], 2));
      }
    }
  }
}

}  // namespace
}  // namespace brickfs
