// 2x2x2 downsampling kernels for the multiresolution pyramid (DESIGN.md §8).
//
// A level-L box of voxels (C order z, y, x; x fastest) becomes a level-(L+1)
// box of DownsampledShape(src) voxels: output voxel (k, j, i) summarises the
// source window z in [2k, 2k+2), y in [2j, 2j+2), x in [2i, 2i+2), clipped to
// the source. At an odd edge the window simply has fewer voxels ("the last
// voxel row averages what exists"): its count is 1, 2, 4 or 8, always a power
// of two.
//
// Methods, exactly (n = voxels in the window, s = their exact integer sum):
//
//   kMean, uint8 / uint16 / uint32: round half up,
//       out = (s + n/2) / n          (integer division; s never overflows)
//       e.g. {1,2} -> 2, {1,1,1,2} -> 1, {1,1,2,2} -> 2, {0,...,0,1} (n=8) -> 0,
//       {0,0,0,0,1,1,1,1} -> 1.
//   kMean, int16: round half away from zero,
//       out = s >= 0 ? (s + n/2) / n : -((-s + n/2) / n)
//       e.g. {-1,-2} -> -2, {1,2} -> 2, {-1,-1,-1,-2} -> -1, {-1,-1,-2,-2} -> -2.
//   kMean, float32: the plain mean s / n, summed and divided in double, then
//       rounded to the nearest float. NaN in the window gives NaN; +inf
//       and -inf together give NaN.
//   kMode (label volumes): the value occurring most often in the window; among
//       equally frequent values the smallest (signed order for int16). For
//       float32, values are equal when their bit patterns are equal and ordered
//       by IEEE 754 totalOrder (-NaN < -inf < ... < -0 < +0 < ... < +inf < NaN).
//
// To split one job (threads, or pieces of a slab), cut the source at even
// offsets in every axis: windows never straddle such a cut, so the pieces give
// the same voxels as the whole.
//
// Thread-safety: pure functions of their arguments; no shared state.
#ifndef BRICKFS_VOLUME_DOWNSAMPLE_H_
#define BRICKFS_VOLUME_DOWNSAMPLE_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "brickfs/dtype.h"
#include "brickfs/geometry.h"

namespace brickfs {

enum class DownsampleMethod : uint8_t { kMean, kMode };

// "mean" / "mode": the names VolumeMeta::downsample_method and the OME-Zarr
// multiscales "type" use.
std::string_view DownsampleMethodName(DownsampleMethod m);
std::optional<DownsampleMethod> ParseDownsampleMethod(std::string_view name);

// (ceil(z/2), ceil(y/2), ceil(x/2)); 0 stays 0.
Shape3 DownsampledShape(const Shape3& s);

// Levels of the pyramid, counting level 0: the smallest n such that level n-1
// (shape halved n-1 times, rounding up) fits in one brick in every axis.
// A volume that already fits in one brick has 1 level. Returns 1 when any
// brick side is 0 (REQUIRES: brick sides > 0).
int NumLevels(const Shape3& shape, const Shape3& brick);

// Where a box of voxels sits inside a larger C-order buffer: the distance, in
// voxels (not bytes), between consecutive rows (y) and planes (z).
struct BoxStrides {
  uint64_t row = 0;    // >= the box's x extent
  uint64_t plane = 0;  // >= (rows - 1) * row + x extent
};
// The strides of a box stored on its own, without padding.
inline BoxStrides CompactStrides(const Shape3& s) { return {s[2], s[1] * s[2]}; }

// Downsamples the src box (src_shape voxels of `dtype` in host byte order,
// i.e. little-endian as everywhere in brickfs, at `src` with `src_strides`)
// into the DownsampledShape(src_shape) box at `dst` with `dst_strides`. `src`
// and `dst` point at the first voxel of their box; voxels of the destination
// buffer outside the box are untouched.
// REQUIRES: the boxes do not overlap. Any alignment; any src_shape (odd sides
// allowed; a box with a zero side writes nothing).
void Downsample2x(DType dtype, DownsampleMethod method, const uint8_t* src, const Shape3& src_shape,
                  const BoxStrides& src_strides, uint8_t* dst, const BoxStrides& dst_strides);

// The same for a compact source and a compact destination of
// DownsampledShape(src_shape) voxels.
inline void Downsample2x(DType dtype, DownsampleMethod method, const uint8_t* src,
                         const Shape3& src_shape, uint8_t* dst) {
  Downsample2x(dtype, method, src, src_shape, CompactStrides(src_shape), dst,
               CompactStrides(DownsampledShape(src_shape)));
}

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_DOWNSAMPLE_H_
