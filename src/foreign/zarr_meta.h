// Array metadata of foreign Zarr stores: Zarr v2 `.zarray` and Zarr v3
// `zarr.json` (node_type "array"), parsed and validated into one form that
// says how to find and decode each chunk.
//
// What is read (and everything else that a spec allows but brickfs does not
// decode is refused as Unsupported, with the file, field and value):
//   v2: shape, chunks, dtype (|<> with i1 u1 i2 u2 i4 u4 f4 f8), order C or
//       F (F is read: it is the transpose with reversed axes), fill_value
//       (number, null = 0, "NaN", "Infinity", "-Infinity"), filters null or
//       [], dimension_separator "." or "/", compressor null or blosc (cname
//       lz4 lz4hc zstd blosclz zlib; shuffle -1 0 1 2), gzip, zlib, zstd.
//   v3: shape, data_type (int8 ... float64), chunk_grid regular,
//       chunk_key_encoding default ("/" or ".") or v2 ("." or "/"),
//       fill_value (number, "NaN", "Infinity", "-Infinity", "0x..." bits),
//       codecs: transpose*, bytes (little or big), then any of gzip, zstd,
//       blosc, crc32c (at most one compressor); or sharding_indexed as the
//       array-to-bytes codec with inner codecs of that form, index_codecs
//       bytes + optional crc32c, index_location start or end. Unknown
//       top-level fields are refused unless {"must_understand": false}.
// 64-bit integers, bool, float16, complex and string types are Unsupported.
//
// Limits (geometry.h): rank 1..32; every side <= 2^32-1; a chunk (the inner
// chunk when sharded: the unit brickfs decodes) at most kMaxBlockBytes
// decoded; at most kMaxBlocksPerBrick inner chunks per shard; all voxels at
// most kMaxVolumeBytes. All checked with overflow-safe arithmetic before
// anything is sized.
//
// Thread-safety: plain values.
#ifndef BRICKFS_FOREIGN_ZARR_META_H_
#define BRICKFS_FOREIGN_ZARR_META_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "brickfs/dtype.h"
#include "brickfs/status.h"

namespace brickfs {

inline constexpr size_t kMaxZarrRank = 32;

// A bytes-to-bytes codec, in the order the writer applied them.
enum class BytesCodecKind { kGzip, kZlib, kZstd, kBlosc, kCrc32c };
std::string_view BytesCodecName(BytesCodecKind k);

// How one stored chunk becomes C-order little-endian voxels: undo the
// bytes codecs (last applied first), swap bytes when big-endian, undo the
// transposes (last applied first).
struct ChunkCodecs {
  // Each an array-to-array transpose: encoded axis i is decoded axis perm[i].
  std::vector<std::vector<size_t>> transposes;
  bool big_endian = false;
  std::vector<BytesCodecKind> bytes_codecs;
  // Whether one of bytes_codecs compresses (the size before it is unknown).
  bool compressed() const;
  // Bytes of the stored form when not compressed: raw + 4 per crc32c.
  uint64_t StoredSizeUncompressed(uint64_t raw) const;
};

struct ShardingSpec {
  std::vector<uint64_t> inner_chunk;  // the read unit
  ChunkCodecs inner;
  bool index_at_start = false;
  bool index_big_endian = false;
  bool index_crc32c = false;
  // Inner chunks per shard along each axis, and in total.
  std::vector<uint64_t> inner_per_shard;
  uint64_t inner_count = 0;
  uint64_t index_bytes() const { return inner_count * 16 + (index_crc32c ? 4 : 0); }
};

struct ZarrArrayMeta {
  int zarr_format = 0;             // 2 or 3
  std::string file;                // Locate() of the metadata, for messages
  std::vector<uint64_t> shape;
  std::vector<uint64_t> chunk;     // the stored chunk (the shard when sharded)
  DType dtype = DType::kUint8;
  std::string fill;                // one voxel, little-endian, DTypeSize bytes
  ChunkCodecs codecs;              // when not sharded
  std::optional<ShardingSpec> sharding;
  // Chunk keys: v3 "default" is "c" + sep + coords joined by sep; v2 and the
  // v3 "v2" encoding join the coords with sep ("0" for rank 0).
  bool default_key_encoding = false;
  char separator = '.';
  std::vector<std::string> dimension_names;  // v3 only; "" where null
  nlohmann::json attributes;       // v3 "attributes" (object or null)

  size_t rank() const { return shape.size(); }
  // The unit brickfs reads and decodes: the inner chunk when sharded.
  const std::vector<uint64_t>& read_chunk() const {
    return sharding ? sharding->inner_chunk : chunk;
  }
  uint64_t read_chunk_bytes() const;
  // Read units along each axis (ceil(shape / read_chunk)).
  std::vector<uint64_t> read_grid() const;
  // The key of stored chunk (shard) `coords`, relative to the array.
  std::string ChunkKey(const std::vector<uint64_t>& coords) const;
  // The fill value as text for messages ("0", "NaN", "-1.5").
  std::string FillText() const;
};

// Parses `.zarray` text. `file` names it in messages.
Result<ZarrArrayMeta> ParseZarrV2Array(std::string_view text, const std::string& file);
// Parses a v3 `zarr.json` object whose node_type is "array".
Result<ZarrArrayMeta> ParseZarrV3Array(const nlohmann::json& doc, const std::string& file);

}  // namespace brickfs

#endif  // BRICKFS_FOREIGN_ZARR_META_H_
