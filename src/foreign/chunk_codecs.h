// Decompressors for the chunk codecs of foreign Zarr stores, through the
// libraries (zlib, libzstd, libblosc); nothing here is hand-written.
//
// Every function decodes `in` into exactly `out_size` bytes at `out`, the
// size the array metadata implies. A stream that is malformed, that decodes
// to fewer or more bytes, or that has bytes after its end is Corruption; the
// output is never written past out_size and nothing is sized by the stream's
// own header. Messages do not name the chunk: callers add that context
// (Status::WithContext), so success builds no text.
//
// Thread-safety: every function is thread-safe (no shared state).
#ifndef BRICKFS_FOREIGN_CHUNK_CODECS_H_
#define BRICKFS_FOREIGN_CHUNK_CODECS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "brickfs/status.h"

namespace brickfs {

// A zlib stream (RFC 1950) when !gzip, else one gzip member (RFC 1952).
Status InflateExact(std::string_view in, bool gzip, uint8_t* out, size_t out_size);

// One or more zstd frames. When every frame records its content size, the
// sum must equal out_size and one call decodes it; otherwise the frames are
// decoded as a stream into the out_size bytes, and one more byte is an error.
Status ZstdDecompressExact(std::string_view in, uint8_t* out, size_t out_size);

// A Blosc 1.x buffer (any of its internal codecs and shuffles). The header is
// validated against in.size() (blosc_cbuffer_validate) and must declare
// out_size bytes before anything is decoded.
Status BloscDecompressExact(std::string_view in, uint8_t* out, size_t out_size);

// Checks the CRC-32C (u32le) in the last 4 bytes of `in` against the bytes
// before it; returns those bytes (the payload), or Corruption.
Result<std::string_view> StripCrc32c(std::string_view in);

// Reverses the byte order of each of the n elements of `size` bytes at p.
void ByteSwapInPlace(uint8_t* p, size_t n, uint32_t size);

}  // namespace brickfs

#endif  // BRICKFS_FOREIGN_CHUNK_CODECS_H_
