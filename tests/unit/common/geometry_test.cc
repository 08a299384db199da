// Tests for the index arithmetic of bricked volumes and the dtype helpers.
#include "brickfs/geometry.h"

#include <gtest/gtest.h>

#include <set>

#include "brickfs/dtype.h"

namespace brickfs {
namespace {

Geometry MakeGeo(Shape3 shape, Shape3 block, Shape3 brick, DType t = DType::kUint16) {
  Geometry g;
  g.shape = shape;
  g.block = block;
  g.brick = brick;
  g.dtype = t;
  return g;
}

TEST(GeometryTest, CeilDivAndProduct) {
  EXPECT_EQ(CeilDiv(0, 4), 0u);
  EXPECT_EQ(CeilDiv(1, 4), 1u);
  EXPECT_EQ(CeilDiv(4, 4), 1u);
  EXPECT_EQ(CeilDiv(5, 4), 2u);
  EXPECT_EQ(Product({2, 3, 5}), 30u);
  EXPECT_EQ(ShapeToString({13, 19, 23}), "13,19,23");
}

TEST(GeometryTest, SizesOfBlocksSlicesAndSlabs) {
  Geometry g = MakeGeo({13, 19, 23}, {4, 8, 8}, {8, 16, 16});
  EXPECT_EQ(g.voxel_bytes(), 2u);
  EXPECT_EQ(g.block_voxels(), 256u);
  EXPECT_EQ(g.block_bytes(), 512u);
  EXPECT_EQ(g.blocks_per_brick(), (Shape3{2, 2, 2}));
  EXPECT_EQ(g.blocks_in_brick(), 8u);
  EXPECT_EQ(g.slice_bytes(), 19u * 23 * 2);
  EXPECT_EQ(g.slab_bytes(), 4u * 19 * 23 * 2);
  EXPECT_EQ(g.num_slabs(), 4u);
}

TEST(GeometryTest, GridsRoundUpPartialBlocksAndBricks) {
  Geometry g = MakeGeo({13, 19, 23}, {4, 8, 8}, {8, 16, 16});
  EXPECT_EQ(g.block_grid(), (Shape3{4, 3, 3}));
  EXPECT_EQ(g.brick_grid(), (Shape3{2, 2, 2}));
  Geometry exact = MakeGeo({8, 16, 16}, {4, 8, 8}, {8, 16, 16});
  EXPECT_EQ(exact.block_grid(), (Shape3{2, 2, 2}));
  EXPECT_EQ(exact.brick_grid(), (Shape3{1, 1, 1}));
  Geometry empty = MakeGeo({0, 19, 23}, {4, 8, 8}, {8, 16, 16});
  EXPECT_EQ(empty.block_grid()[0], 0u);
  EXPECT_EQ(empty.num_slabs(), 0u);
}

TEST(GeometryTest, BlockIndexInBrickIsCOrderWithinTheBrick) {
  // 2 x 3 x 4 blocks per brick.
  Geometry g = MakeGeo({100, 100, 100}, {2, 2, 2}, {4, 6, 8});
  ASSERT_EQ(g.blocks_per_brick(), (Shape3{2, 3, 4}));
  EXPECT_EQ(g.BlockIndexInBrick({0, 0, 0}), 0u);
  EXPECT_EQ(g.BlockIndexInBrick({0, 0, 1}), 1u);
  EXPECT_EQ(g.BlockIndexInBrick({0, 1, 0}), 4u);
  EXPECT_EQ(g.BlockIndexInBrick({1, 0, 0}), 12u);
  EXPECT_EQ(g.BlockIndexInBrick({1, 2, 3}), 23u);
  // The same position in another brick has the same index.
  EXPECT_EQ(g.BlockIndexInBrick({3, 5, 7}), 23u);
  EXPECT_EQ(g.BlockIndexInBrick({2, 3, 4}), 0u);
  EXPECT_EQ(g.BrickOfBlock({3, 5, 7}), (Shape3{1, 1, 1}));
  EXPECT_EQ(g.BrickOfBlock({2, 3, 4}), (Shape3{1, 1, 1}));
  EXPECT_EQ(g.BrickOfBlock({1, 2, 3}), (Shape3{0, 0, 0}));
}

TEST(GeometryTest, BlockIndexInBrickIsABijectionOverOneBrick) {
  Geometry g = MakeGeo({64, 64, 64}, {4, 8, 8}, {8, 16, 32});
  std::set<uint64_t> seen;
  Shape3 n = g.blocks_per_brick();
  for (uint64_t z = 0; z < n[0]; ++z) {
    for (uint64_t y = 0; y < n[1]; ++y) {
      for (uint64_t x = 0; x < n[2]; ++x) {
        // Block coordinates of brick (1, 2, 1).
        Shape3 b{n[0] + z, 2 * n[1] + y, n[2] + x};
        uint64_t i = g.BlockIndexInBrick(b);
        EXPECT_LT(i, g.blocks_in_brick());
        seen.insert(i);
        EXPECT_EQ(g.BrickOfBlock(b), (Shape3{1, 2, 1}));
      }
    }
  }
  EXPECT_EQ(seen.size(), g.blocks_in_brick());
}

TEST(GeometryTest, ValidateAcceptsConsistentGeometry) {
  EXPECT_EQ(MakeGeo({1, 1, 1}, {4, 8, 8}, {8, 16, 16}).Validate(), "");
  EXPECT_EQ(MakeGeo({0, 0, 0}, {32, 32, 32}, kDefaultBrick).Validate(), "");
  EXPECT_EQ(MakeGeo({0, 0, 0}, {1, 1, 1}, {1, 1, 1}).Validate(), "");
}

TEST(GeometryTest, ValidateRejectsBrickNotMultipleOfBlock) {
  std::string e = MakeGeo({1, 1, 1}, {4, 8, 8}, {8, 16, 12}).Validate();
  EXPECT_NE(e, "");
  EXPECT_NE(e.find("8,16,12"), std::string::npos) << e;
  EXPECT_NE(e.find("4,8,8"), std::string::npos) << e;
  EXPECT_NE(MakeGeo({1, 1, 1}, {4, 8, 8}, {2, 16, 16}).Validate(), "");
}

TEST(GeometryTest, ValidateRejectsZeroAndOversizedBlocks) {
  EXPECT_NE(MakeGeo({1, 1, 1}, {0, 8, 8}, {8, 16, 16}).Validate(), "");
  EXPECT_NE(MakeGeo({1, 1, 1}, {4, 8, 8}, {8, 0, 16}).Validate(), "");
  EXPECT_NE(MakeGeo({1, 1, 1}, {1, 1, 8192}, {1, 1, 8192}).Validate(), "");
  // 4096 * 4096 * 4 bytes = 64 MiB exactly is allowed, more is not.
  EXPECT_EQ(MakeGeo({1, 1, 1}, {1, 4096, 4096}, {1, 4096, 4096}, DType::kFloat32).Validate(), "");
  EXPECT_NE(MakeGeo({1, 1, 1}, {2, 4096, 4096}, {2, 4096, 4096}, DType::kFloat32).Validate(), "");
}

TEST(GeometryTest, ValidateRejectsTooManyBlocksPerBrick) {
  EXPECT_EQ(MakeGeo({1, 1, 1}, {1, 1, 1}, {16, 256, 256}).Validate(), "");  // 2^20
  EXPECT_NE(MakeGeo({1, 1, 1}, {1, 1, 1}, {32, 256, 256}).Validate(), "");  // 2^21
}

TEST(GeometryTest, DefaultBlockShapeIsCubic) {
  for (DType t : {DType::kUint8, DType::kUint16, DType::kInt16, DType::kUint32,
                  DType::kFloat32}) {
    Geometry g = MakeGeo({0, 0, 0}, DefaultBlockShape(t), kDefaultBrick, t);
    EXPECT_EQ(g.block_bytes(), 32u * 32 * 32 * DTypeSize(t)) << DTypeName(t);
    EXPECT_EQ(g.Validate(), "") << DTypeName(t);
  }
  EXPECT_EQ(DefaultBlockShape(DType::kUint8), (Shape3{32, 32, 32}));
  EXPECT_EQ(DefaultBlockShape(DType::kUint16), (Shape3{32, 32, 32}));
  EXPECT_EQ(DefaultBlockShape(DType::kFloat32), (Shape3{32, 32, 32}));
}

TEST(DTypeTest, SizesNamesAndParsing) {
  EXPECT_EQ(DTypeSize(DType::kUint8), 1u);
  EXPECT_EQ(DTypeSize(DType::kInt16), 2u);
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  for (DType t : {DType::kUint8, DType::kUint16, DType::kInt16, DType::kUint32,
                  DType::kFloat32}) {
    auto back = ParseDType(DTypeName(t));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, t);
  }
  // Foreign-store types: named and parsed by ParseAnyDType, not store types.
  EXPECT_FALSE(ParseDType("int8").has_value());
  EXPECT_FALSE(ParseDType("int32").has_value());
  EXPECT_FALSE(ParseDType("float64").has_value());
  for (DType t : kAllDTypes) {
    auto back = ParseAnyDType(DTypeName(t));
    ASSERT_TRUE(back.has_value()) << DTypeName(t);
    EXPECT_EQ(*back, t);
    EXPECT_EQ(IsStoreDType(t), ParseDType(DTypeName(t)).has_value()) << DTypeName(t);
  }
  EXPECT_FALSE(ParseAnyDType("int64").has_value());
  EXPECT_EQ(DTypeSize(DType::kInt8), 1u);
  EXPECT_EQ(DTypeSize(DType::kInt32), 4u);
  EXPECT_EQ(DTypeSize(DType::kFloat64), 8u);
  EXPECT_EQ(DTypeTiffSampleFormat(DType::kInt8), 2);
  EXPECT_EQ(DTypeTiffSampleFormat(DType::kInt32), 2);
  EXPECT_EQ(DTypeTiffSampleFormat(DType::kFloat64), 3);
  EXPECT_FALSE(ParseDType("UINT8").has_value());
  EXPECT_EQ(DTypeTiffSampleFormat(DType::kInt16), 2);
  EXPECT_EQ(DTypeTiffSampleFormat(DType::kFloat32), 3);
  EXPECT_EQ(DTypeTiffSampleFormat(DType::kUint32), 1);
}

}  // namespace
}  // namespace brickfs
