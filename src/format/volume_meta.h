// The metadata of a brickfs store, and its encoding as Zarr v3 / OME-Zarr 0.5.
//
//   STORE/zarr.json     group; attributes.ome = OME-Zarr 0.5 multiscales
//   STORE/0/zarr.json   level-0 array: regular chunk grid of bricks, one
//                       sharding_indexed codec (inner bytes+zstd+crc32c,
//                       index bytes+crc32c at the end), fill_value 0,
//                       dimension_names z,y,x; brickfs state under
//                       attributes.brickfs (format version, finalized flag,
//                       slices received as inclusive z ranges, fixed shape,
//                       and the pyramid settings when they are not the
//                       defaults: num_levels, voxel_size, unit,
//                       downsample_method).
//   STORE/L/zarr.json   level-L array (L >= 1), 2x downsampled L times: the
//                       same codecs and brick/block shapes, shape
//                       LevelShape(level-0 shape, L), attributes.brickfs.level = L.
//
// Level L voxel i covers level-0 voxels [i*2^L, (i+1)*2^L) on each axis, so
// its centre is at i*2^L + (2^L-1)/2 level-0 voxels: GroupJson writes, per
// level, scale = voxel_size * 2^L and (for L >= 1) translation =
// voxel_size * (2^L - 1) / 2, in `unit` (OME-Zarr 0.5, voxel-centre
// convention: level-0 voxel 0 is centred at the origin).
//
// Decoding accepts exactly what brickfs writes (other codec chains are
// Unsupported) and validates every number before it is used.
// Thread-safety: values.
#ifndef BRICKFS_FORMAT_VOLUME_META_H_
#define BRICKFS_FORMAT_VOLUME_META_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "common/interval_set.h"

namespace brickfs {

// Inclusive z ranges [first, last], sorted, disjoint, non-adjacent.
using ZRanges = std::vector<std::pair<uint64_t, uint64_t>>;

// Converts a presence bitmap to ranges, and counts.
ZRanges RangesFromBitmap(const std::vector<bool>& present);
// Ranges of z in [0, z_end) NOT present.
ZRanges MissingRanges(const std::vector<bool>& present, uint64_t z_end);
std::string RangesToString(const ZRanges& r);  // "0-3, 7, 9-12" or "none"
// The same with an IntervalSet, which costs nothing per slice (Z may be huge).
IntervalSet SetFromRanges(const ZRanges& r);
ZRanges RangesFromSet(const IntervalSet& s);
// Ranges of z in [0, z_end) NOT in `present`.
ZRanges MissingRanges(const IntervalSet& present, uint64_t z_end);

// Most pyramid levels a store may list: shapes are at most 2^40 voxels per
// side, so 41 levels reach one voxel with bricks of one voxel.
inline constexpr int kMaxLevels = 41;

// Shape of level `level` of a volume whose level 0 has `level0`:
// ceil(side / 2^level) per axis (0 stays 0). REQUIRES: 0 <= level < 64.
Shape3 LevelShape(const Shape3& level0, int level);

// True for the OME-Zarr 0.5 units of space axes (UDUNITS-2 lengths:
// "angstrom" ... "micrometer", "millimeter", "nanometer", ... "zettameter").
// For checking a unit the user gives before it goes into VolumeMeta::unit.
bool IsOmeSpaceUnit(const std::string& unit);

struct VolumeMeta {
  Geometry geo;           // shape[0] is the highest slice received + 1 (or fixed)
  int zstd_level = 1;
  bool fixed_shape = false;  // shape given at create: z outside it is refused
  bool finalized = false;    // set by a clean unmount
  // The journal session (journal.h kSession) of the mount that wrote this
  // metadata: a journal found with the store must be that session's (or the
  // one it replaced) to be replayed. attributes.brickfs.session, 16 hex
  // digits. 0: none recorded (created, or a store from before sessions).
  uint64_t session = 0;
  ZRanges present;           // slices received
  uint64_t format_version = 0;  // of the store read; brickfs writes its own

  // Multiresolution pyramid (DESIGN.md §8). Saved in the level-0 array's
  // attributes.brickfs, and only when one differs from its default, so the
  // documents of a single-level store are what they were before pyramids.
  int num_levels = 1;                         // levels 0..num_levels-1, in [1, kMaxLevels]
  std::array<double, 3> voxel_size{1, 1, 1};  // (z,y,x) size of a level-0 voxel in `unit`; > 0
  std::string unit;                           // OME-Zarr space unit, e.g. "micrometer"; "" = none
  std::string downsample_method = "mean";     // "mean" or "mode" (see volume/downsample.h)

  // Which array this describes: 0 = full resolution. Written as
  // attributes.brickfs.level in level arrays (L >= 1) only.
  int level = 0;

  // The metadata of level `l` (0 <= l < kMaxLevels): shape LevelShape(shape, l),
  // level = l, everything else copied except `present`, which becomes the
  // level-l slices whose whole z window [k*2^l, min((k+1)*2^l, Z)) is present.
  // LevelMeta(0) is a copy. Call it on the level-0 meta.
  VolumeMeta LevelMeta(int l) const;

  // Encoded documents (pretty JSON, trailing newline). ArrayJson is the
  // document of array `level` (STORE/<level>/zarr.json); GroupJson lists
  // levels 0..num_levels-1 and is meant for the level-0 meta. With the
  // defaults above (one level, voxel size 1, no unit, mean) both are exactly
  // the single-level documents brickfs always wrote.
  std::string ArrayJson() const;
  std::string GroupJson(const std::string& name) const;

  // Parses STORE/L/zarr.json of any level. `where` names the file in
  // messages. Pyramid settings out of range are Corruption; an unknown
  // downsample_method is Unsupported.
  static Result<VolumeMeta> FromArrayJson(const std::string& text, const std::string& where);
};

// Validates a group zarr.json (zarr_format 3, node_type group).
Status CheckGroupJson(const std::string& text, const std::string& where);

// Why `text` is not the group document (STORE/zarr.json) of a brickfs store,
// for messages: "" when it is a Zarr v3 group (CheckGroupJson) whose
// attributes.ome.multiscales is a non-empty array, as every brickfs store's
// is; else e.g. "attributes.ome.multiscales is missing" or "zarr_format is
// not 3". A store whose group fails this was rewritten by another tool (or
// is another tool's group).
std::string BrickfsGroupProblem(const std::string& text);

}  // namespace brickfs

#endif  // BRICKFS_FORMAT_VOLUME_META_H_
