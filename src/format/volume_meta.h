// The metadata of a brickfs store, and its encoding as Zarr v3 / OME-Zarr 0.5.
//
//   STORE/zarr.json     group; attributes.ome = OME-Zarr 0.5 multiscales
//   STORE/0/zarr.json   level-0 array: regular chunk grid of bricks, one
//                       sharding_indexed codec (inner bytes+zstd+crc32c,
//                       index bytes+crc32c at the end), fill_value 0,
//                       dimension_names z,y,x; brickfs state under
//                       attributes.brickfs (format version, finalized flag,
//                       slices received as inclusive z ranges, fixed shape).
//
// Decoding accepts exactly what brickfs writes (other codec chains are
// Unsupported) and validates every number before it is used.
// Thread-safety: values.
#ifndef BRICKFS_FORMAT_VOLUME_META_H_
#define BRICKFS_FORMAT_VOLUME_META_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"

namespace brickfs {

// Inclusive z ranges [first, last], sorted, disjoint, non-adjacent.
using ZRanges = std::vector<std::pair<uint64_t, uint64_t>>;

// Converts a presence bitmap to ranges, and counts.
ZRanges RangesFromBitmap(const std::vector<bool>& present);
// Ranges of z in [0, z_end) NOT present.
ZRanges MissingRanges(const std::vector<bool>& present, uint64_t z_end);
std::string RangesToString(const ZRanges& r);  // "0-3, 7, 9-12" or "none"

struct VolumeMeta {
  Geometry geo;           // shape[0] is the highest slice received + 1 (or fixed)
  int zstd_level = 1;
  bool fixed_shape = false;  // shape given at create: z outside it is refused
  bool finalized = false;    // set by a clean unmount
  ZRanges present;           // slices received
  uint64_t format_version = 0;  // of the store read; brickfs writes its own

  // Encoded documents (pretty JSON, trailing newline).
  std::string ArrayJson() const;
  std::string GroupJson(const std::string& name) const;

  // Parses STORE/0/zarr.json. `where` names the file in messages.
  static Result<VolumeMeta> FromArrayJson(const std::string& text, const std::string& where);
};

// Validates a group zarr.json (zarr_format 3, node_type group).
Status CheckGroupJson(const std::string& text, const std::string& where);

}  // namespace brickfs

#endif  // BRICKFS_FORMAT_VOLUME_META_H_
