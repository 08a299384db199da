// A 3D view of one level of a foreign OME-Zarr image at fixed indices of its
// non-spatial axes (t, c, ...): a ReadOnlyBlockSource (volume/block_source.h)
// over the level's ForeignArray, so that the generic block reader serves its
// planes.
//
// The view's z, y, x are the image's spatial axes (a 2D image has z of size
// 1). Its block is the array's read unit along the spatial axes; because
// OME-Zarr puts the spatial axes last, the voxels of one fixed (t, c) inside
// a decoded chunk are one contiguous run, handed to the reader without a
// copy. A chunk that spans several t or c holds several views' blocks: each
// view decodes it for itself (the cache keys differ).
//
// Thread-safety: thread-safe (ForeignArray is; the view is immutable).
#ifndef BRICKFS_FOREIGN_FOREIGN_VIEW_H_
#define BRICKFS_FOREIGN_FOREIGN_VIEW_H_

#include <memory>
#include <string>
#include <vector>

#include "foreign/foreign_array.h"
#include "volume/block_source.h"

namespace brickfs {

class ForeignView : public ReadOnlyBlockSource {
 public:
  // `spatial`: the positions of the 2 or 3 spatial axes in the array (the
  // last ones, in order); `fixed`: an index for each other axis (positions
  // 0 .. rank - spatial.size() - 1), each inside the shape. `name` names the
  // view in messages. InvalidArgument when these do not fit the array, or
  // Unsupported when its dtype has no brickfs DType.
  // REQUIRES: `array` outlives the view.
  static Result<std::unique_ptr<ForeignView>> Create(ForeignArray* array, size_t spatial,
                                                     std::vector<uint64_t> fixed,
                                                     std::string name);

  const BlockSourceInfo& info() const override { return info_; }
  std::string name() const override { return name_; }
  Status ReadBlocks(const std::vector<Shape3>& blocks, const BlockVisitor& visit,
                    ThreadPool* pool) override;
  void Prefetch(const std::vector<Shape3>& blocks) override;

 private:
  ForeignView(ForeignArray* array, size_t spatial, std::vector<uint64_t> fixed, std::string name);
  ChunkCoord ChunkOf(const Shape3& b) const;

  ForeignArray* const array_;
  const size_t spatial_;               // 2 or 3
  const std::vector<uint64_t> fixed_;  // per leading (non-spatial) axis
  const std::string name_;
  BlockSourceInfo info_;
  uint64_t offset_ = 0;  // bytes from a decoded chunk's start to this view's block
};

}  // namespace brickfs

#endif  // BRICKFS_FOREIGN_FOREIGN_VIEW_H_
