#include "volume/block_source.h"

#include <algorithm>
#include <cstring>

#include "common/thread_pool.h"
#include "volume/block_encode.h"

namespace brickfs {

PlaneDims PlaneDimsOf(const Shape3& shape, Axis axis) {
  switch (axis) {
    case Axis::kZ: return {shape[2], shape[1]};
    case Axis::kY: return {shape[2], shape[0]};
    case Axis::kX: break;
  }
  return {shape[1], shape[0]};
}

BlockReader::BlockReader(ReadOnlyBlockSource* source, uint32_t cache_id, BlockCache* cache,
                         std::shared_ptr<BlockPool> buffers, ThreadPool* pool,
                         ThreadPool* readahead)
    : source_(source),
      info_(source->info()),
      cache_id_(cache_id),
      cache_(cache),
      buffers_(std::move(buffers)),
      pool_(pool),
      readahead_(readahead) {}

uint64_t BlockReader::blocks_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocks_read_;
}

Status BlockReader::CheckBox(const Shape3& lo, const Shape3& hi) const {
  for (int a = 0; a < 3; ++a) {
    if (lo[a] >= hi[a] || hi[a] > info_.shape[a]) {
      return Status::InvalidArgument(source_->name() + ": box [" + ShapeToString(lo) + ", " +
                                     ShapeToString(hi) + ") is empty or outside the shape " +
                                     ShapeToString(info_.shape));
    }
  }
  return Status::Ok();
}

Status BlockReader::ReadBox(const Shape3& lo, const Shape3& hi, uint8_t* out) {
  BRICKFS_RETURN_IF_ERROR(CheckBox(lo, hi));
  const uint64_t vb = DTypeSize(info_.dtype);
  Region r{lo, hi, {(hi[1] - lo[1]) * (hi[2] - lo[2]) * vb, (hi[2] - lo[2]) * vb, vb}};
  return ReadRegion(r, out);
}

BlockReader::Region BlockReader::PlaneRegion(Axis axis, uint64_t index, uint64_t row0,
                                             uint64_t nrows) const {
  return brickfs::PlaneRegion(info_.shape, DTypeSize(info_.dtype), axis, index, row0, nrows);
}

Status BlockReader::ReadPlaneRows(Axis axis, uint64_t index, uint64_t row0, uint64_t nrows,
                                  uint8_t* out) {
  const Region r = PlaneRegion(axis, index, row0, nrows);
  BRICKFS_RETURN_IF_ERROR(CheckBox(r.lo, r.hi));
  ReadAhead(axis, index, row0, nrows);
  return ReadRegion(r, out);
}

Status BlockReader::ReadPlaneSpan(Axis axis, uint64_t index, uint64_t row, uint64_t c0,
                                  uint64_t c1, uint8_t* out) {
  Region r = PlaneRegion(axis, index, row, 1);
  const int col = axis == Axis::kX ? 1 : 2;
  r.lo[col] = c0;
  r.hi[col] = c1;
  BRICKFS_RETURN_IF_ERROR(CheckBox(r.lo, r.hi));
  return ReadRegion(r, out);
}

Result<size_t> BlockReader::ReadVirtualFile(const VirtualTiffLayout& layout, Axis axis,
                                            uint64_t index, uint64_t offset, size_t len,
                                            uint8_t* out) {
  const uint64_t size = layout.file_size();
  if (offset >= size) return size_t{0};
  len = static_cast<size_t>(std::min<uint64_t>(len, size - offset));
  BRICKFS_RETURN_IF_ERROR(ReadVirtualBytes(
      layout, DTypeSize(info_.dtype), offset, len, out,
      [&](uint64_t row, uint64_t nrows, uint8_t* dst) {
        return ReadPlaneRows(axis, index, row, nrows, dst);
      },
      [&](uint64_t row, uint64_t c0, uint64_t c1, uint8_t* dst) {
        return ReadPlaneSpan(axis, index, row, c0, c1, dst);
      }));
  return len;
}

void BlockReader::CopyBlock(const Shape3& b, const uint8_t* data, const Region& r,
                            uint8_t* out) const {
  const uint64_t vb = DTypeSize(info_.dtype);
  const Shape3& bs = info_.block;
  Shape3 lo, hi;
  for (int a = 0; a < 3; ++a) {
    lo[a] = std::max(r.lo[a], b[a] * bs[a]);
    hi[a] = std::min(r.hi[a], (b[a] + 1) * bs[a]);
  }
  const uint64_t n = hi[2] - lo[2];
  for (uint64_t z = lo[0]; z < hi[0]; ++z) {
    for (uint64_t y = lo[1]; y < hi[1]; ++y) {
      uint8_t* dst = out + (z - r.lo[0]) * r.stride[0] + (y - r.lo[1]) * r.stride[1] +
                     (lo[2] - r.lo[2]) * r.stride[2];
      if (!data) {
        for (uint64_t i = 0; i < n; ++i) std::memcpy(dst + i * r.stride[2], info_.fill.data(), vb);
        continue;
      }
      const uint8_t* src =
          data + (((z - b[0] * bs[0]) * bs[1] + (y - b[1] * bs[1])) * bs[2] + (lo[2] - b[2] * bs[2])) * vb;
      CopyRun(dst, r.stride[2], src, n, static_cast<uint32_t>(vb));
    }
  }
}

Status BlockReader::ReadRegion(const Region& r, uint8_t* out) {
  const Shape3& bs = info_.block;
  const Shape3 b0{r.lo[0] / bs[0], r.lo[1] / bs[1], r.lo[2] / bs[2]};
  const Shape3 b1{CeilDiv(r.hi[0], bs[0]), CeilDiv(r.hi[1], bs[1]), CeilDiv(r.hi[2], bs[2])};
  const uint64_t epoch = cache_ ? cache_->epoch() : 0;
  std::vector<Shape3> missing;
  for (uint64_t bz = b0[0]; bz < b1[0]; ++bz) {
    for (uint64_t by = b0[1]; by < b1[1]; ++by) {
      for (uint64_t bx = b0[2]; bx < b1[2]; ++bx) {
        const Shape3 b{bz, by, bx};
        BlockData data;
        if (cache_ && cache_->Lookup({cache_id_, bz, by, bx}, &data)) {
          CopyBlock(b, data ? data->data() : nullptr, r, out);
        } else {
          missing.push_back(b);
        }
      }
    }
  }
  const uint64_t block_bytes = info_.block_bytes();
  const size_t per_batch = static_cast<size_t>(std::max<uint64_t>(1, kMaxBatchBytes / block_bytes));
  for (size_t start = 0; start < missing.size(); start += per_batch) {
    const std::vector<Shape3> batch(missing.begin() + static_cast<ptrdiff_t>(start),
                                    missing.begin() + static_cast<ptrdiff_t>(std::min(missing.size(), start + per_batch)));
    Status st = source_->ReadBlocks(batch, [&](size_t i, const uint8_t* data) {
      const Shape3& b = batch[i];
      CopyBlock(b, data, r, out);
      if (cache_) {
        BlockData kept;
        if (data) {
          std::shared_ptr<BlockBuffer> buf = buffers_ ? buffers_->Get() : MakeHeapBlock(block_bytes);
          std::memcpy(buf->data(), data, block_bytes);
          kept = std::move(buf);
        }
        cache_->Insert({cache_id_, b[0], b[1], b[2]}, std::move(kept), epoch);
      }
      return Status::Ok();
    }, pool_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocks_read_ += batch.size();
    }
    BRICKFS_RETURN_IF_ERROR(st);
  }
  return Status::Ok();
}

void BlockReader::ReadAhead(Axis axis, uint64_t index, uint64_t row0, uint64_t nrows) {
  const Shape3& bs = info_.block;
  const Region r = PlaneRegion(axis, index, row0, nrows);
  const Shape3 first{r.lo[0] / bs[0], r.lo[1] / bs[1], r.lo[2] / bs[2]};
  if (!cache_ || cache_->ContainsAnyLayout({cache_id_, first[0], first[1], first[2]})) return;
  const PlaneDims d = PlaneDimsOf(info_.shape, axis);
  const uint64_t row_bytes = d.width * DTypeSize(info_.dtype);
  if (row_bytes > kReadAheadBytes) return;  // huge planes: each read fetches its own part
  const uint64_t to =
      std::min(d.height, row0 + nrows + std::max<uint64_t>(1, kReadAheadBytes / row_bytes));
  uint64_t from = row0 + nrows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Ahead* rec = nullptr;
    for (Ahead& a : ahead_) {
      if (a.axis == axis && a.index == index) rec = &a;
    }
    if (!rec) {
      rec = &ahead_[ahead_next_];
      ahead_next_ = (ahead_next_ + 1) % 4;
      *rec = {axis, index, row0, row0};
    }
    if (rec->from <= row0 && row0 <= rec->to) {
      from = std::max(from, rec->to);
    } else {
      rec->from = row0;  // a jump: a new range
    }
    if (from >= to) return;
    rec->to = to;
  }
  const Region ahead = PlaneRegion(axis, index, from, to - from);
  std::vector<Shape3> blocks;
  for (uint64_t bz = ahead.lo[0] / bs[0]; bz < CeilDiv(ahead.hi[0], bs[0]); ++bz)
    for (uint64_t by = ahead.lo[1] / bs[1]; by < CeilDiv(ahead.hi[1], bs[1]); ++by)
      for (uint64_t bx = ahead.lo[2] / bs[2]; bx < CeilDiv(ahead.hi[2], bs[2]); ++bx)
        blocks.push_back({bz, by, bx});
  if (readahead_) {
    ReadOnlyBlockSource* src = source_;
    readahead_->Submit([src, blocks = std::move(blocks)] { src->Prefetch(blocks); });
  } else {
    source_->Prefetch(blocks);
  }
}

}  // namespace brickfs
