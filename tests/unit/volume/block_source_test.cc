#include "volume/block_source.h"

#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <random>
#include <set>

#include "common/thread_pool.h"

namespace brickfs {
namespace {

// Voxel (z, y, x) of the model, as uint16.
uint16_t Model(uint64_t z, uint64_t y, uint64_t x) {
  return static_cast<uint16_t>(z * 7919 + y * 131 + x * 3 + 1);
}

// A fake source over the model: blocks whose coordinates sum to a multiple
// of 5 are "not stored" (fill), edge blocks are padded with garbage (0xEEEE)
// that must never show. Records every block read and prefetch hint.
class FakeSource : public ReadOnlyBlockSource {
 public:
  FakeSource(Shape3 shape, Shape3 block, uint16_t fill) {
    info_.shape = shape;
    info_.block = block;
    info_.dtype = DType::kUint16;
    info_.fill.assign(reinterpret_cast<const char*>(&fill), 2);
  }
  const BlockSourceInfo& info() const override { return info_; }
  std::string name() const override { return "fake"; }
  static bool IsFill(const Shape3& b) { return (b[0] + b[1] + b[2]) % 5 == 0; }

  Status ReadBlocks(const std::vector<Shape3>& blocks, const BlockVisitor& visit,
                    ThreadPool* pool) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++batches;
      if (pool) ++batches_with_pool;
      for (const Shape3& b : blocks) reads.push_back(b);
    }
    const Shape3& bs = info_.block;
    for (size_t i = 0; i < blocks.size(); ++i) {
      const Shape3& b = blocks[i];
      const Shape3 grid = info_.grid();
      if (b[0] >= grid[0] || b[1] >= grid[1] || b[2] >= grid[2]) {
        return Status::InvalidArgument("fake: block outside the grid");
      }
      if (fail_at && b == *fail_at) return Status::Corruption("fake: block is corrupt");
      if (IsFill(b)) {
        BRICKFS_RETURN_IF_ERROR(visit(i, nullptr));
        continue;
      }
      std::vector<uint16_t> data(bs[0] * bs[1] * bs[2]);
      for (uint64_t z = 0; z < bs[0]; ++z)
        for (uint64_t y = 0; y < bs[1]; ++y)
          for (uint64_t x = 0; x < bs[2]; ++x) {
            uint64_t gz = b[0] * bs[0] + z, gy = b[1] * bs[1] + y, gx = b[2] * bs[2] + x;
            bool in = gz < info_.shape[0] && gy < info_.shape[1] && gx < info_.shape[2];
            data[(z * bs[1] + y) * bs[2] + x] = in ? Model(gz, gy, gx) : 0xEEEE;
          }
      BRICKFS_RETURN_IF_ERROR(visit(i, reinterpret_cast<const uint8_t*>(data.data())));
    }
    return Status::Ok();
  }
  void Prefetch(const std::vector<Shape3>& blocks) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Shape3& b : blocks) hinted.insert(b);
  }

  std::mutex mu_;
  std::vector<Shape3> reads;
  std::set<Shape3> hinted;
  int batches = 0, batches_with_pool = 0;
  std::optional<Shape3> fail_at;

 private:
  BlockSourceInfo info_;
};

constexpr uint16_t kFill = 4242;

uint16_t Expected(const Shape3& block, uint64_t z, uint64_t y, uint64_t x) {
  Shape3 b{z / block[0], y / block[1], x / block[2]};
  return FakeSource::IsFill(b) ? kFill : Model(z, y, x);
}

// Every plane along every axis, read as whole planes and in row pieces,
// matches the model.
void CheckAllPlanes(BlockReader* r, const Shape3& shape, const Shape3& block) {
  for (Axis axis : {Axis::kZ, Axis::kY, Axis::kX}) {
    const PlaneDims d = PlaneDimsOf(shape, axis);
    const uint64_t n = shape[static_cast<int>(axis)];
    for (uint64_t i = 0; i < n; ++i) {
      std::vector<uint16_t> plane(d.width * d.height, 0xABCD);
      // In pieces of 3 rows (the last shorter).
      for (uint64_t row = 0; row < d.height; row += 3) {
        const uint64_t rows = std::min<uint64_t>(3, d.height - row);
        Status st = r->ReadPlaneRows(axis, i, row, rows,
                                     reinterpret_cast<uint8_t*>(plane.data() + row * d.width));
        ASSERT_TRUE(st.ok()) << st.ToString();
      }
      for (uint64_t row = 0; row < d.height; ++row)
        for (uint64_t c = 0; c < d.width; ++c) {
          uint64_t z, y, x;
          switch (axis) {
            case Axis::kZ: z = i, y = row, x = c; break;
            case Axis::kY: z = row, y = i, x = c; break;
            default: z = row, y = c, x = i; break;
          }
          ASSERT_EQ(plane[row * d.width + c], Expected(block, z, y, x))
              << AxisName(axis) << " plane " << i << " row " << row << " col " << c;
        }
    }
  }
}

TEST(BlockSourceTest, PlaneDims) {
  const Shape3 s{3, 4, 5};
  EXPECT_EQ(PlaneDimsOf(s, Axis::kZ).width, 5u);
  EXPECT_EQ(PlaneDimsOf(s, Axis::kZ).height, 4u);
  EXPECT_EQ(PlaneDimsOf(s, Axis::kY).width, 5u);
  EXPECT_EQ(PlaneDimsOf(s, Axis::kY).height, 3u);
  EXPECT_EQ(PlaneDimsOf(s, Axis::kX).width, 4u);
  EXPECT_EQ(PlaneDimsOf(s, Axis::kX).height, 3u);
}

TEST(BlockSourceTest, EveryPlaneMatchesTheModelWithAndWithoutCacheAndPool) {
  const Shape3 shape{11, 13, 17}, block{4, 5, 3};  // nothing divides
  for (bool cached : {false, true}) {
    for (bool pooled : {false, true}) {
      SCOPED_TRACE(std::string(cached ? "cache" : "no cache") + (pooled ? ", pool" : ""));
      FakeSource src(shape, block, kFill);
      BlockCache cache(cached ? 1 << 20 : 0);
      ThreadPool pool(2);
      BlockReader r(&src, 3, &cache, BlockPool::Create(src.info().block_bytes()),
                    pooled ? &pool : nullptr, nullptr);
      CheckAllPlanes(&r, shape, block);
      if (pooled) {
        EXPECT_EQ(src.batches_with_pool, src.batches);
      }
    }
  }
}

TEST(BlockSourceTest, BoxesReadOnlyTheBlocksTheyTouchAndCachedBlocksOnce) {
  const Shape3 shape{20, 20, 20}, block{8, 8, 8};
  FakeSource src(shape, block, kFill);
  BlockCache cache(64 << 20);
  BlockReader r(&src, 0, &cache, nullptr, nullptr, nullptr);
  std::mt19937 rng(7);
  for (int k = 0; k < 50; ++k) {
    Shape3 lo, hi;
    for (int a = 0; a < 3; ++a) {
      lo[a] = rng() % 20;
      hi[a] = lo[a] + 1 + rng() % (20 - lo[a]);
    }
    std::vector<uint16_t> box((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
    const size_t before = src.reads.size();
    ASSERT_TRUE(r.ReadBox(lo, hi, reinterpret_cast<uint8_t*>(box.data())).ok());
    for (size_t j = before; j < src.reads.size(); ++j) {
      for (int a = 0; a < 3; ++a) {
        EXPECT_GE(src.reads[j][a], lo[a] / 8);
        EXPECT_LT(src.reads[j][a], CeilDiv(hi[a], 8));
      }
    }
    size_t i = 0;
    for (uint64_t z = lo[0]; z < hi[0]; ++z)
      for (uint64_t y = lo[1]; y < hi[1]; ++y)
        for (uint64_t x = lo[2]; x < hi[2]; ++x) ASSERT_EQ(box[i++], Expected(block, z, y, x));
  }
  // 27 blocks in all: each read once, whatever the number of boxes.
  std::set<Shape3> distinct(src.reads.begin(), src.reads.end());
  EXPECT_EQ(src.reads.size(), distinct.size());
  EXPECT_EQ(r.blocks_read(), src.reads.size());
}

TEST(BlockSourceTest, DistinctCacheIdsDoNotShareBlocks) {
  const Shape3 shape{8, 8, 8}, block{8, 8, 8};
  FakeSource a(shape, block, kFill), b(shape, block, 7);
  BlockCache cache(64 << 20);
  BlockReader ra(&a, 1, &cache, nullptr, nullptr, nullptr);
  BlockReader rb(&b, 2, &cache, nullptr, nullptr, nullptr);
  std::vector<uint16_t> out(8 * 8 * 8);
  ASSERT_TRUE(ra.ReadBox({0, 0, 0}, {8, 8, 8}, reinterpret_cast<uint8_t*>(out.data())).ok());
  EXPECT_EQ(out[0], kFill);  // block (0,0,0) is fill
  ASSERT_TRUE(rb.ReadBox({0, 0, 0}, {8, 8, 8}, reinterpret_cast<uint8_t*>(out.data())).ok());
  EXPECT_EQ(out[0], 7);  // b's own fill, not a's cached block
  EXPECT_EQ(b.reads.size(), 1u);
}

TEST(BlockSourceTest, ErrorsAndBoxesOutsideTheShape) {
  const Shape3 shape{10, 10, 10}, block{4, 4, 4};
  FakeSource src(shape, block, kFill);
  src.fail_at = Shape3{1, 1, 1};
  BlockCache cache(1 << 20);
  BlockReader r(&src, 0, &cache, nullptr, nullptr, nullptr);
  std::vector<uint16_t> out(1000);
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  EXPECT_EQ(r.ReadBox({0, 0, 0}, {10, 10, 10}, o).code(), Status::Code::kCorruption);
  EXPECT_EQ(r.ReadBox({0, 0, 0}, {11, 1, 1}, o).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.ReadBox({3, 0, 0}, {3, 1, 1}, o).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.ReadPlaneRows(Axis::kX, 10, 0, 1, o).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.ReadPlaneRows(Axis::kZ, 0, 9, 2, o).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(r.ReadPlaneRows(Axis::kZ, 0, 0, 4, o).ok());  // blocks (0,0,*) only
}

TEST(BlockSourceTest, LargeReadsAreBatchedAndPlaneReadsHintTheRowsAhead) {
  // 64 KiB blocks: a 32 MiB batch holds 512; a box of 1000 blocks takes 2.
  const Shape3 shape{32 * 10, 32 * 10, 32 * 10}, block{32, 32, 32};
  FakeSource src(shape, block, kFill);
  BlockCache cache(0);
  BlockReader r(&src, 0, &cache, nullptr, nullptr, nullptr);
  std::vector<uint16_t> row(shape[2]);
  // Reading row 0 of z-plane 0 touches blocks (0, 0, *) and hints the
  // next rows of that plane: blocks (0, 1..9, *) (4 MiB is more than the plane).
  ASSERT_TRUE(r.ReadPlaneRows(Axis::kZ, 0, 0, 1, reinterpret_cast<uint8_t*>(row.data())).ok());
  EXPECT_EQ(src.reads.size(), 10u);
  EXPECT_TRUE(src.hinted.count({0, 9, 9}));
  EXPECT_FALSE(src.hinted.count({1, 0, 0}));
  BlockCache big(1 << 30);
  FakeSource src2(shape, block, kFill);
  BlockReader r2(&src2, 0, &big, nullptr, nullptr, nullptr);
  std::vector<uint16_t> box(shape[0] * shape[1] * shape[2]);
  ASSERT_TRUE(r2.ReadBox({0, 0, 0}, shape, reinterpret_cast<uint8_t*>(box.data())).ok());
  EXPECT_EQ(src2.batches, 2);
  EXPECT_EQ(src2.reads.size(), 1000u);
}

}  // namespace
}  // namespace brickfs

namespace brickfs {
namespace {

TEST(BlockSourceTest, VirtualFileIsHeaderThenPlaneRowsReadInAnyPieces) {
  const Shape3 shape{9, 70, 33}, block{4, 16, 8};
  FakeSource src(shape, block, kFill);
  BlockCache cache(1 << 20);
  BlockReader r(&src, 0, &cache, nullptr, nullptr, nullptr);
  for (Axis axis : {Axis::kZ, Axis::kY, Axis::kX}) {
    const PlaneDims d = PlaneDimsOf(shape, axis);
    VirtualTiffParams p;
    p.width = d.width;
    p.height = d.height;
    p.dtype = DType::kUint16;
    VirtualTiffLayout layout(p);
    std::vector<uint8_t> want(layout.header());
    std::vector<uint8_t> pixels(d.width * d.height * 2);
    ASSERT_TRUE(r.ReadPlaneRows(axis, 2, 0, d.height, pixels.data()).ok());
    want.insert(want.end(), pixels.begin(), pixels.end());
    ASSERT_EQ(want.size(), layout.file_size());
    for (size_t piece : {size_t{1}, size_t{37}, size_t{4096}, size_t{100000}}) {
      std::vector<uint8_t> got;
      std::vector<uint8_t> buf(piece);
      for (uint64_t off = 0;;) {
        auto n = r.ReadVirtualFile(layout, axis, 2, off, piece, buf.data());
        ASSERT_TRUE(n.ok()) << n.status().ToString();
        if (*n == 0) break;
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*n));
        off += *n;
      }
      ASSERT_EQ(got, want) << AxisName(axis) << " piece " << piece;
    }
  }
}

}  // namespace
}  // namespace brickfs
