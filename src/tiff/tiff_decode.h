// Decoding one TIFF slice held in memory, with libtiff.
//
// The writer of a slice sends its bytes through FUSE; on close() the whole
// file is in memory and is decoded here. Accepted: one image (one IFD), one
// sample per pixel (MinIsBlack or MinIsWhite; values are kept as stored),
// uint8 / uint16 / int16 / uint32 / float32, any compression libtiff can read
// (none, deflate, LZW, PackBits, ...), strips or tiles, classic or BigTIFF,
// either byte order (samples come out in host = little-endian order).
//
// Everything in the file is untrusted: dimensions are checked by the caller's
// `dest` callback (against the volume) before any pixel buffer is touched,
// and libtiff's messages are captured per call, never printed.
//
// Thread-safety: DecodeTiffSlice is reentrant; calls may run concurrently.
#ifndef BRICKFS_TIFF_TIFF_DECODE_H_
#define BRICKFS_TIFF_TIFF_DECODE_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "brickfs/dtype.h"
#include "brickfs/status.h"
#include "common/interval_set.h"

namespace brickfs {

struct SliceInfo {
  uint64_t width = 0;   // X
  uint64_t height = 0;  // Y
  DType dtype = DType::kUint8;
};

// Called once the header is parsed and the image is known to be decodable.
// Returns where to put the pixels: width*height*DTypeSize(dtype) bytes, rows
// contiguous, x fastest; or a non-OK Status (e.g. wrong size for the volume),
// which DecodeTiffSlice returns unchanged.
using SliceDestFn = std::function<Result<uint8_t*>(const SliceInfo&)>;

// Decodes the TIFF in data[0, size) into the buffer `dest` returns.
// Returns the slice's info, or:
//   InvalidArgument  not a TIFF, truncated/corrupt data, more than one
//                    image, more than one sample (RGB...), a palette or other
//                    non-grayscale photometric, a bit depth or sample format
//                    not listed above, a side over 2^20 pixels or more than
//                    16 GiB of pixels, a compression libtiff cannot decode;
//                    the message names no file (the caller adds the path),
//                    says which and carries the numbers ("is RGB/multi-sample
//                    (3 samples per pixel)...", "is truncated or corrupt:
//                    strip 3 of 8 could not be decoded (libtiff: ...)";
//                    strip and tile numbers are 0-based, as in libtiff's
//                    own text).
//   InvalidArgument  `written` given and a byte the decoder needs was never
//                    written: the header, the directory, a tag's value or
//                    any byte of a strip or tile ("is incomplete: bytes
//                    [a, b) of strip 3 of 25 were never written"); holes
//                    elsewhere (libtiff's own alignment gaps) are fine.
//   whatever `dest` returned, if it failed.
// `dest` is called at most once, and only after all header checks passed
// (also those of strip/tile positions against `size`). On failure the
// destination may have been partly written.
Result<SliceInfo> DecodeTiffSlice(const uint8_t* data, size_t size,
                                  const SliceDestFn& dest,
                                  const IntervalSet* written = nullptr);

}  // namespace brickfs

#endif  // BRICKFS_TIFF_TIFF_DECODE_H_
