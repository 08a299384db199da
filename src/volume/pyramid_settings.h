// Checks of the pyramid settings a user gives (downsample method, voxel
// size, unit), shared by the mount options, the CLI flags and Volume, which
// checks VolumeOptions again before anything reaches the store's metadata.
// Each returns InvalidArgument saying what is expected; callers prefix the
// name of the option. Thread-safety: pure functions.
#ifndef BRICKFS_VOLUME_PYRAMID_SETTINGS_H_
#define BRICKFS_VOLUME_PYRAMID_SETTINGS_H_

#include <array>
#include <string>

#include "brickfs/status.h"

namespace brickfs {

// An OME-Zarr space unit (IsOmeSpaceUnit), e.g. "micrometer"; the message
// lists a few and suggests the full name for "um", "nm", "mm", ...
Status CheckSpaceUnit(const std::string& unit);

// "mean" or "mode" (volume/downsample.h).
Status CheckDownsampleMethod(const std::string& method);

// Three finite sizes > 0.
Status CheckVoxelSize(const std::array<double, 3>& size);

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_PYRAMID_SETTINGS_H_
