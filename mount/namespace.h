// The namespace of a brickfs mount: which paths exist and what they are.
//
//   /                    directory: z, y, x, bricks, levels, .brickfs
//   /z /y /x             directories of virtual plane files, canonical names
//   /z/NNNNN.tif ...     plane files (z: also the target of slice writes)
//   /z/<any name>        a slice file being or having been written under the
//                        writer's own name (its z is the last number in it)
//   /bricks              one raw file per level-0 brick, named by its voxel
//                        offsets: z0256_y0512_x0000.raw (read, whole-file write)
//   /levels              one directory per pyramid level: 0, 1, ...
//   /levels/L            directories z, y, x of level L (read only)
//   /levels/L/A/NNNNN.tif  plane files of level L; levels/0 is the data of /z,
//                        /y and /x, read only
//   /.brickfs/status     JSON status document
//
// Level names are plain decimal numbers without leading zeros, below
// kMaxLevels; whether a level exists is the volume's business.
// ParsePath is pure (no volume access) so it is unit-tested without a mount.
// Thread-safety: stateless functions.
#ifndef BRICKFS_MOUNT_NAMESPACE_H_
#define BRICKFS_MOUNT_NAMESPACE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "volume/volume.h"

namespace brickfs {

struct PathInfo {
  enum class Kind {
    kRoot,
    kAxisDir,     // /z, /y, /x, /levels/L/{z,y,x}
    kPlaneFile,   // /A/NNNNN.tif, /levels/L/A/NNNNN.tif (canonical name;
                  // index may be out of range)
    kSliceName,   // /z/<non-canonical name> (a writer's name)
    kBricksDir,   // /bricks
    kBrickFile,   // /bricks/zZ_yY_xX.raw (voxel offsets in `offset`)
    kLevelsDir,   // /levels
    kLevelDir,    // /levels/L
    kStateDir,    // /.brickfs
    kStatusFile,  // /.brickfs/status
    kBadName,     // something in a directory that holds no such thing
    kNotFound,
  };
  Kind kind = Kind::kNotFound;
  Axis axis = Axis::kZ;
  uint64_t index = 0;      // kPlaneFile
  int level = 0;           // pyramid level: L under /levels/L, else 0
  bool in_levels = false;  // under /levels/L: read only
  Shape3 offset{0, 0, 0};  // kBrickFile: voxel offsets from the name
  std::string name;        // last component
};

PathInfo ParsePath(const std::string& path);

// True for the paths a slice can be written to: /z/NNNNN.tif and writers'
// names in /z (never anything under /levels).
bool IsSliceTarget(const PathInfo& p);

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_NAMESPACE_H_
