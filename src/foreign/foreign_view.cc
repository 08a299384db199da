#include "foreign/foreign_view.h"

namespace brickfs {

ForeignView::ForeignView(ForeignArray* array, size_t spatial, std::vector<uint64_t> fixed,
                         std::string name)
    : array_(array), spatial_(spatial), fixed_(std::move(fixed)), name_(std::move(name)) {}

Result<std::unique_ptr<ForeignView>> ForeignView::Create(ForeignArray* array, size_t spatial,
                                                         std::vector<uint64_t> fixed,
                                                         std::string name) {
  const size_t rank = array->rank();
  if ((spatial != 2 && spatial != 3) || rank != spatial + fixed.size()) {
    return Status::InvalidArgument(name + ": a view of " + std::to_string(spatial) +
                                   " spatial axes and " + std::to_string(fixed.size()) +
                                   " fixed indices does not fit an array of rank " +
                                   std::to_string(rank));
  }
  const std::vector<uint64_t>& shape = array->shape();
  const std::vector<uint64_t>& chunk = array->chunk();
  for (size_t i = 0; i < fixed.size(); ++i) {
    if (fixed[i] >= shape[i]) {
      return Status::InvalidArgument(name + ": index " + std::to_string(fixed[i]) + " of axis " +
                                     std::to_string(i) + " is outside its size " +
                                     std::to_string(shape[i]));
    }
  }
  std::unique_ptr<ForeignView> v(new ForeignView(array, spatial, std::move(fixed), std::move(name)));
  BlockSourceInfo& info = v->info_;
  const size_t s0 = rank - spatial;
  info.shape = {spatial == 3 ? shape[s0] : 1, shape[rank - 2], shape[rank - 1]};
  info.block = {spatial == 3 ? chunk[s0] : 1, chunk[rank - 2], chunk[rank - 1]};
  info.dtype = array->dtype();
  info.fill = array->fill();
  // Position of the fixed indices inside a chunk, in units of 3D blocks.
  uint64_t lead = 0;
  for (size_t i = 0; i < s0; ++i) lead = lead * chunk[i] + v->fixed_[i] % chunk[i];
  v->offset_ = lead * info.block_bytes();
  return v;
}

ChunkCoord ForeignView::ChunkOf(const Shape3& b) const {
  const std::vector<uint64_t>& chunk = array_->chunk();
  ChunkCoord c;
  c.reserve(array_->rank());
  for (size_t i = 0; i < fixed_.size(); ++i) c.push_back(fixed_[i] / chunk[i]);
  if (spatial_ == 3) c.push_back(b[0]);
  c.push_back(b[1]);
  c.push_back(b[2]);
  return c;
}

Status ForeignView::ReadBlocks(const std::vector<Shape3>& blocks, const BlockVisitor& visit,
                               ThreadPool* pool) {
  std::vector<ChunkCoord> chunks;
  chunks.reserve(blocks.size());
  for (const Shape3& b : blocks) {
    if (spatial_ == 2 && b[0] != 0) {
      return Status::InvalidArgument(name_ + ": block " + ShapeToString(b) +
                                     " of a 2D image (z must be 0)");
    }
    chunks.push_back(ChunkOf(b));
  }
  Status st = array_->ReadChunks(chunks, [&](size_t i, const uint8_t* data) {
    return visit(i, data ? data + offset_ : nullptr);
  }, pool);
  return st.ok() ? st : st.WithContext(name_);
}

void ForeignView::Prefetch(const std::vector<Shape3>& blocks) {
  std::vector<ChunkCoord> chunks;
  chunks.reserve(blocks.size());
  for (const Shape3& b : blocks) {
    if (spatial_ == 3 || b[0] == 0) chunks.push_back(ChunkOf(b));
  }
  array_->Prefetch(chunks);
}

}  // namespace brickfs
