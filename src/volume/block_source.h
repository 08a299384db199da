// A read-only 3D array of blocks, and a reader that assembles any box of it
// (and so the rows of any plane along z, y or x) through the block cache.
//
// ReadOnlyBlockSource is what a reader needs of a volume: its geometry (shape, the
// block that is the unit of reading and decoding, dtype, fill value), a
// batched read that decodes blocks (in parallel when given a pool), and
// prefetch hints. A foreign OME-Zarr array's (level, t, c) view is one
// (foreign/foreign_source.h); tests use a fake.
//
// BlockReader reads boxes of one source through a BlockCache shared with
// other readers: its entries are keyed by the reader's `cache_id` (the
// BlockKey level field), which must differ between the readers sharing a
// cache. Blocks not cached are read in batches (one ReadBlocks call per at
// most kMaxBatchBytes of decoded blocks), so that a plane's blocks decode
// in parallel. A plane read whose first block is not cached hints the
// source to prefetch the blocks of the next kReadAheadBytes of that plane
// (once per advancing range of a plane).
//
// Plane orientation (the same as brickfs's own virtual files, DESIGN §3):
//   z-plane: rows along y, columns along x
//   y-plane: rows along z, columns along x
//   x-plane: rows along z, columns along y
//
// Thread-safety: ReadOnlyBlockSource implementations must be thread-safe;
// BlockReader's methods are thread-safe (the readahead record has a mutex).
#ifndef BRICKFS_VOLUME_BLOCK_SOURCE_H_
#define BRICKFS_VOLUME_BLOCK_SOURCE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "brickfs/dtype.h"
#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "tiff/virtual_tiff.h"
#include "volume/block_cache.h"
#include "volume/volume.h"

namespace brickfs {

class ThreadPool;

struct BlockSourceInfo {
  Shape3 shape{0, 0, 0};  // voxels along z, y, x (each >= 1)
  Shape3 block{1, 1, 1};  // voxels per block along z, y, x (each >= 1)
  DType dtype = DType::kUint8;
  std::string fill;       // one voxel, DTypeSize bytes, little-endian

  uint64_t block_bytes() const {
    return block[0] * block[1] * block[2] * DTypeSize(dtype);
  }
  Shape3 grid() const {
    return {CeilDiv(shape[0], block[0]), CeilDiv(shape[1], block[1]), CeilDiv(shape[2], block[2])};
  }
};

class ReadOnlyBlockSource {
 public:
  virtual ~ReadOnlyBlockSource() = default;

  virtual const BlockSourceInfo& info() const = 0;
  // Names the source in messages ("/data/img.zarr/0 t=0 c=1").
  virtual std::string name() const = 0;

  // visit(i, data) once per blocks[i], in order, from the calling thread:
  // data is the whole decoded block (info().block_bytes(), C order z, y, x,
  // little-endian, edge blocks full size), valid during the call only, or
  // nullptr for a block that is all fill value. Blocks of one batch may be
  // decoded in parallel on `pool` (may be null). The first error stops the
  // batch and is returned; the message names the source and the block.
  using BlockVisitor = std::function<Status(size_t i, const uint8_t* data)>;
  virtual Status ReadBlocks(const std::vector<Shape3>& blocks, const BlockVisitor& visit,
                            ThreadPool* pool) = 0;

  // Hints that these blocks will be read soon. Never fails.
  virtual void Prefetch(const std::vector<Shape3>& blocks) = 0;
};

// The width (voxels per row) and height (rows) of a plane along `axis` of a
// volume of `shape`.
struct PlaneDims {
  uint64_t width = 0, height = 0;
};
PlaneDims PlaneDimsOf(const Shape3& shape, Axis axis);

class BlockReader {
 public:
  static constexpr uint64_t kMaxBatchBytes = 32 << 20;
  static constexpr uint64_t kReadAheadBytes = 4 << 20;

  // REQUIRES: source, cache, pool (may be null) and readahead (may be null:
  // prefetch hints are then given inline) outlive the reader; the source's
  // info() is valid (sides >= 1, fill of DTypeSize bytes, block_bytes() at
  // most kMaxBlockBytes).
  BlockReader(ReadOnlyBlockSource* source, uint32_t cache_id, BlockCache* cache,
              std::shared_ptr<BlockPool> buffers, ThreadPool* pool, ThreadPool* readahead);

  ReadOnlyBlockSource* source() const { return source_; }
  const BlockSourceInfo& info() const { return info_; }

  // Reads the box [lo, hi) into out, C order (z, y, x), compact.
  // InvalidArgument when the box is empty or not inside the shape.
  Status ReadBox(const Shape3& lo, const Shape3& hi, uint8_t* out);

  // Reads rows [row0, row0 + nrows) of plane `index` along `axis` into out
  // (rows of PlaneDimsOf(...).width voxels). InvalidArgument when out of range.
  Status ReadPlaneRows(Axis axis, uint64_t index, uint64_t row0, uint64_t nrows, uint8_t* out);
  // Reads voxels [c0, c1) of row `row` of that plane into out.
  Status ReadPlaneSpan(Axis axis, uint64_t index, uint64_t row, uint64_t c0, uint64_t c1,
                       uint8_t* out);

  // Reads [offset, offset + len) of the virtual TIFF file `layout` (made
  // for this plane's dims and the source's dtype) of plane `index` along
  // `axis`: header bytes from the layout, pixels from the blocks. Returns
  // the bytes read: len, or fewer at the end of the file.
  Result<size_t> ReadVirtualFile(const VirtualTiffLayout& layout, Axis axis, uint64_t index,
                                 uint64_t offset, size_t len, uint8_t* out);

  // Blocks that ReadBlocks delivered to this reader (decoded or fill), for
  // tests: a box read must not read blocks it does not touch, nor a cached
  // block again.
  uint64_t blocks_read() const;

 private:
  // A box [lo, hi) and where its voxels go: voxel (z, y, x) at
  // out + (z-lo0)*stride[0] + (y-lo1)*stride[1] + (x-lo2)*stride[2].
  using Region = brickfs::Region;
  Status ReadRegion(const Region& r, uint8_t* out);
  Status CheckBox(const Shape3& lo, const Shape3& hi) const;
  // Copies the part of block `b` (data or fill when null) inside r to out.
  void CopyBlock(const Shape3& b, const uint8_t* data, const Region& r, uint8_t* out) const;
  Region PlaneRegion(Axis axis, uint64_t index, uint64_t row0, uint64_t nrows) const;
  void ReadAhead(Axis axis, uint64_t index, uint64_t row0, uint64_t nrows);

  ReadOnlyBlockSource* const source_;
  const BlockSourceInfo info_;
  const uint32_t cache_id_;
  BlockCache* const cache_;
  const std::shared_ptr<BlockPool> buffers_;
  ThreadPool* const pool_;
  ThreadPool* const readahead_;

  mutable std::mutex mu_;
  struct Ahead {
    Axis axis = Axis::kZ;
    uint64_t index = ~uint64_t{0};
    uint64_t from = 0, to = 0;  // rows hinted so far
  };
  Ahead ahead_[4];        // guarded by mu_: the planes read most recently
  size_t ahead_next_ = 0;  // guarded by mu_
  uint64_t blocks_read_ = 0;  // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_BLOCK_SOURCE_H_
