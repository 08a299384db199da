// Values of the pyramid settings a user gives: the mount options
// voxel_size=, unit=, downsample= and the --voxel-size, --unit and
// --downsample flags of `brickfs create` and `brickfs mount`.
//
// Each parser returns InvalidArgument with a message that says what is
// expected but not which option was given; the caller prefixes that.
// Thread-safety: pure functions.
#ifndef BRICKFS_MOUNT_PYRAMID_OPTIONS_H_
#define BRICKFS_MOUNT_PYRAMID_OPTIONS_H_

#include <array>
#include <optional>
#include <string>

#include "brickfs/status.h"
#include "volume/pyramid_settings.h"
#include "volume/volume.h"

namespace brickfs {

// "Z<sep>Y<sep>X" or one number for all three axes, where <sep> is ',' or
// ':' (one of them throughout); each a finite decimal number > 0, e.g.
// "2:0.5:0.5", "2,0.5,0.5", "0.4". `sep` is the separator the message shows.
Result<std::array<double, 3>> ParseVoxelSize(const std::string& text, char sep);

// Checks `value` and sets the pyramid setting `key` of `v`: "downsample",
// "voxel_size" (`sep` as above) or "unit", the names of the mount options.
// nullopt when `key` is none of them; else OK or InvalidArgument as above.
std::optional<Status> SetPyramidValue(const std::string& key, const std::string& value, char sep,
                                      VolumeOptions* v);

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_PYRAMID_OPTIONS_H_
