// An OME-Zarr image held by a store brickfs did not write: OME-Zarr 0.4 on
// Zarr v2 (`.zgroup` + `.zattrs` "multiscales") or 0.5 on Zarr v3
// (`zarr.json` attributes.ome.multiscales), opened read-only through a
// Storage.
//
// What is read from the first multiscales entry (the default, per the
// spec; others are ignored and noted): axes (2 to 5; names, types, units;
// 2 or 3 of type "space", last; at most one "time", first), every dataset
// (a level: its array, and its scale and optional translation composed with
// the multiscale's own coordinateTransformations), and from "omero" the
// channel labels when there is one per channel. A bioformats2raw layout
// (root "bioformats2raw.layout": 3 without multiscales) opens its series 0.
// Everything is validated; refusals name the file and the field:
// InvalidArgument for what the spec does not allow, Unsupported for what
// it allows and brickfs does not read (versions before 0.4, scales stored
// in a binary array, ...), NotFound when the root is not a Zarr group.
//
// Thread-safety: immutable after Open, except the arrays (thread-safe).
#ifndef BRICKFS_FOREIGN_FOREIGN_IMAGE_H_
#define BRICKFS_FOREIGN_FOREIGN_IMAGE_H_

#include <memory>
#include <string>
#include <vector>

#include "brickfs/status.h"
#include "foreign/foreign_array.h"

namespace brickfs {

class Storage;

struct OmeAxis {
  std::string name;  // "t", "c", "z", "y", "x", ...
  std::string type;  // "space", "time", "channel", another, or "" when absent
  std::string unit;  // "micrometer", ... or "" when absent
};

struct ForeignLevel {
  std::string path;                 // the dataset path, relative to the image
  std::vector<double> scale;        // per axis: voxel size in the axis unit
  std::vector<double> translation;  // per axis: position of voxel 0
  std::unique_ptr<ForeignArray> array;
};

class ForeignImage {
 public:
  // Opens the image at `root_key` ("" for the store's root).
  // REQUIRES: `storage` outlives the image.
  static Result<std::unique_ptr<ForeignImage>> Open(Storage* storage, const std::string& root_key);

  const std::string& ome_version() const { return ome_version_; }  // "0.4" or "0.5"
  int zarr_format() const { return zarr_format_; }                  // 2 or 3
  const std::string& name() const { return name_; }                 // multiscales name, or ""
  const std::vector<OmeAxis>& axes() const { return axes_; }
  // Positions in axes() of the 2 or 3 spatial axes, and of all others, in
  // axis order.
  const std::vector<size_t>& spatial_axes() const { return spatial_; }
  const std::vector<size_t>& other_axes() const { return others_; }
  // Level 0 is full resolution (the first dataset), then as listed.
  const std::vector<ForeignLevel>& levels() const { return levels_; }
  ForeignArray* level_array(size_t level) const { return levels_[level].array.get(); }
  // One label per index of the "channel" axis, or empty.
  const std::vector<std::string>& channel_names() const { return channel_names_; }
  // Where the image is (Locate of its root) and what was read but not used.
  const std::string& location() const { return location_; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  ForeignImage() = default;
  Status ParseMultiscales(Storage* storage, const std::string& key, const nlohmann::json& ms,
                          const std::string& file, const std::string& field,
                          const nlohmann::json* omero);

  std::string ome_version_;
  int zarr_format_ = 0;
  std::string name_;
  std::vector<OmeAxis> axes_;
  std::vector<size_t> spatial_, others_;
  std::vector<ForeignLevel> levels_;
  std::vector<std::string> channel_names_;
  std::string location_;
  std::vector<std::string> notes_;
};

}  // namespace brickfs

#endif  // BRICKFS_FOREIGN_FOREIGN_IMAGE_H_
