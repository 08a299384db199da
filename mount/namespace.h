// The namespace of a brickfs mount: which paths exist and what they are.
//
//   /                    directory: z, y, x, .brickfs
//   /z /y /x             directories of virtual plane files, canonical names
//   /z/NNNNN.tif ...     plane files (z: also the target of slice writes)
//   /z/<any name>        a slice file being or having been written under the
//                        writer's own name (its z is the last number in it)
//   /bricks              one raw file per level-0 brick, named by its voxel
//                        offsets: z0256_y0512_x0000.raw (read, whole-file write)
//   /.brickfs/status     JSON status document
//
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
    kAxisDir,     // /z, /y, /x
    kPlaneFile,   // /A/NNNNN.tif (canonical name; index may be out of range)
    kSliceName,   // /z/<non-canonical name> (a writer's name)
    kBricksDir,   // /bricks
    kBrickFile,   // /bricks/zZ_yY_xX.raw (voxel offsets in `offset`)
    kStateDir,    // /.brickfs
    kStatusFile,  // /.brickfs/status
    kBadName,     // something in a directory that holds no such thing
    kNotFound,
  };
  Kind kind = Kind::kNotFound;
  Axis axis = Axis::kZ;
  uint64_t index = 0;   // kPlaneFile
  Shape3 offset{0, 0, 0};  // kBrickFile: voxel offsets from the name
  std::string name;     // last component
};

PathInfo ParsePath(const std::string& path);

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_NAMESPACE_H_
