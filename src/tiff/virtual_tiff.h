// The byte-exact layout of a virtual TIFF file, computed without generating
// the pixel data.
//
// Layout (classic TIFF, little-endian "II*\0"):
//   [0, 8)                 header, first IFD at offset 8
//   IFD                    entry count, entries sorted by tag, next-IFD = 0
//   out-of-line values     StripOffsets, StripByteCounts, X/YResolution,
//                          ImageDescription (each 2-byte aligned or better)
//   zero padding           up to pixel_offset(), a multiple of 4096
//   pixel data             height rows of width*voxel bytes, little-endian,
//                          uncompressed, contiguous; the file ends with it.
// Strips hold whole rows, RowsPerStrip = max(1, 65536 / row bytes) (not
// clamped to the height), so a strip is about 64 KiB; the last may be shorter.
// BigTIFF ("II+\0", 8-byte offsets) is used when the file would not fit in
// 4 GiB, or when forced (for tests).
//
// Tags: NewSubfileType 0, ImageWidth, ImageLength, BitsPerSample,
// Compression 1, Photometric 1 (MinIsBlack), StripOffsets, SamplesPerPixel 1,
// RowsPerStrip, StripByteCounts, XResolution, YResolution, PlanarConfig 1,
// ResolutionUnit, SampleFormat, and ImageDescription when non-empty.
//
// Thread-safety: immutable after construction.
#ifndef BRICKFS_TIFF_VIRTUAL_TIFF_H_
#define BRICKFS_TIFF_VIRTUAL_TIFF_H_

#include <cstdint>
#include <string>
#include <vector>

#include "brickfs/dtype.h"

namespace brickfs {

struct VirtualTiffParams {
  uint64_t width = 0;   // pixels per row
  uint64_t height = 0;  // rows
  DType dtype = DType::kUint8;
  // Pixels per unit; 0 means unknown (then 1 pixel per unit, unit "none").
  // Stored as a RATIONAL with denominator 10^6, shrunk by tens while the
  // numerator would not fit 32 bits, then reduced (2.5 -> 5/2).
  double x_resolution = 0;
  double y_resolution = 0;
  // ResolutionUnit 3 (cm) instead of 1 (none); ignored (unit "none") when
  // both resolutions are unknown.
  bool resolution_in_cm = false;
  std::string description;        // ImageDescription; empty: tag omitted
  bool force_bigtiff = false;
};

class VirtualTiffLayout {
 public:
  // REQUIRES: 0 < width, height <= 2^32-1 (ImageWidth/Length are LONG).
  explicit VirtualTiffLayout(const VirtualTiffParams& p);

  uint64_t file_size() const { return pixel_offset_ + height_ * row_bytes_; }
  uint64_t pixel_offset() const { return pixel_offset_; }
  uint64_t row_bytes() const { return row_bytes_; }
  uint64_t height() const { return height_; }
  bool bigtiff() const { return bigtiff_; }
  // Bytes [0, pixel_offset()): header, IFD, values and padding.
  const std::vector<uint8_t>& header() const { return header_; }

 private:
  uint64_t height_;
  uint64_t row_bytes_;
  uint64_t pixel_offset_;
  bool bigtiff_;
  std::vector<uint8_t> header_;
};

}  // namespace brickfs

#endif  // BRICKFS_TIFF_VIRTUAL_TIFF_H_
