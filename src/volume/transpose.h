// Transposes of decoded blocks, for YZ-plane reads.
//
// A YZ plane (one x) takes one voxel from every row of each block it crosses.
// Gathering those voxels reads a whole cache line per voxel; the block cache
// therefore also holds blocks x-major ("columns", BlockKey::kColumns), where
// the (z, y) plane at each x is contiguous. These functions make that layout.
#ifndef BRICKFS_VOLUME_TRANSPOSE_H_
#define BRICKFS_VOLUME_TRANSPOSE_H_

#include <cstdint>

#include "brickfs/geometry.h"

namespace brickfs {

// out[c * rows + r] = in[r * cols + c] for a rows × cols matrix of `vb`-byte
// elements (vb 1, 2, 4 or 8). SSE2 tiles (16×16 bytes, 8×8 of 2 bytes, 4×4
// of 4 bytes) where the CPU has them; the edges and other sizes element by
// element. `in` and `out` must not overlap.
void TransposeMatrix(const uint8_t* in, uint8_t* out, uint64_t rows, uint64_t cols, uint32_t vb);

// A block of shape B (z, y, x) from C order to x-major:
// out[(x * B0 + z) * B1 + y] = in[(z * B1 + y) * B2 + x].
inline void TransposeToColumns(const uint8_t* in, uint8_t* out, const Shape3& B, uint32_t vb) {
  TransposeMatrix(in, out, B[0] * B[1], B[2], vb);
}

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_TRANSPOSE_H_
