// Mounting an OME-Zarr store that brickfs did not write (issue 16): always
// read-only, served from a ForeignImage through one ForeignView and
// BlockReader per (level, t, c) (volume/block_source.h), all sharing one
// block cache, one decode pool and one readahead thread.
//
// Namespace (each non-spatial axis, in axis order, is a level of
// directories named by the axis name and the index, e.g. t0/c1/):
//   /[<a0><i>/[<a1><j>/...]]z/NNNNN.tif   XY planes of level 0
//                          y/ x/          XZ and YZ planes (3D images only)
//                          levels/L/{z,y,x}/NNNNN.tif  every multiscales level
//   /.brickfs/status       JSON: store, pid, read_only, format, axes, levels,
//                          channel names, notes, read errors
// A 2D image has z/00000.tif only (and levels/L/z/00000.tif). Plane names
// are CanonicalSliceName (volume/naming.h) of the plane count along that
// axis of that level. TIFF resolution tags carry the level's voxel size in
// pixels per centimetre when the axes' units are lengths.
//
// Thread-safety: ForeignFs handlers may run on any FUSE thread.
#ifndef BRICKFS_MOUNT_FOREIGN_FS_H_
#define BRICKFS_MOUNT_FOREIGN_FS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "mount/fuse_mount.h"
#include "volume/volume.h"

namespace brickfs {

// True when `store` is a directory holding a Zarr store that is not one of
// brickfs's own: no .brickfs/ entry, and a .zgroup, or a zarr.json whose
// group is not a brickfs group while 0/zarr.json is not a brickfs array.
// Anything else (brickfs stores, paths that do not exist yet) is false.
bool IsForeignStore(const std::string& store);

// Mounts the foreign store config.store on config.mountpoint read-only and
// serves it until unmounted. Exit code as RunMount: 0, or 2 on a setup
// error (the metadata refused, printed to stderr naming file and field).
int RunForeignMount(const MountConfig& config);

// The namespace of a foreign mount, for ParseForeignPath.
struct ForeignShape {
  std::vector<std::string> other_names;  // non-spatial axes in order ("t", "c")
  std::vector<uint64_t> other_sizes;
  size_t spatial = 3;                    // 2 or 3
  std::vector<Shape3> level_shapes;      // (z, y, x) per level; z = 1 for 2D
};

struct ForeignPath {
  enum class Kind {
    kIndexDir,   // a directory of <axis><i> entries (fixed.size() < others)
    kViewDir,    // holds z, y, x, levels (all others fixed)
    kLevelsDir,  // .../levels
    kLevelDir,   // .../levels/L
    kAxisDir,    // .../z or .../levels/L/z
    kPlane,      // .../z/NNNNN.tif (canonical, in range)
    kStateDir,   // /.brickfs
    kStatus,     // /.brickfs/status
    kNotFound,
  };
  Kind kind = Kind::kNotFound;
  std::vector<uint64_t> fixed;  // indices of the non-spatial axes given so far
  int level = 0;
  Axis axis = Axis::kZ;
  uint64_t index = 0;
};

// Parses an absolute path of the mount. Pure: unit-tested without FUSE.
ForeignPath ParseForeignPath(const ForeignShape& s, const std::string& path);

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_FOREIGN_FS_H_
