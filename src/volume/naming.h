// Slice file names: which z a written file means, and canonical names.
//
// The z of a written file is the last run of digits in its name (after
// dropping a .tif/.tiff extension) minus first_index: "img_0007.tif",
// "7.tif" and "stack-v2_0007.tiff" all mean 7. Canonical names are the
// zero-padded index with at least 5 digits: "00007.tif".
#ifndef BRICKFS_VOLUME_NAMING_H_
#define BRICKFS_VOLUME_NAMING_H_

#include <cstdint>
#include <optional>
#include <string>

#include "brickfs/geometry.h"
#include "brickfs/status.h"

namespace brickfs {

// Names in z/ that are not (yet) meant as a slice: staged, held in memory,
// never ingested under their own name; a rename onto a slice name ingests
// them (README "Temporary names"). Staged is every name that
//   - starts with '.' (rsync's .NAME.XXXXXX, .goutputstream-*, .#emacs), '~'
//     or '#', or ends with '~' or '#' (editor backups and autosaves), or
//   - does not end in .tif or .tiff, any case (NAME.tmp, NAME.part,
//     NAME.tif.XXXXXX, Python's tmpXXXXXXXX, sed's sedXXXXXX, vim's 4913).
// Everything else is a slice name.
bool IsStagedName(const std::string& name);

// InvalidArgument when the name has no digits, the number has more than 15
// digits, or it is below first_index.
Result<uint64_t> SliceIndexFromName(const std::string& name, uint64_t first_index);

// "00007.tif"; width = max(5, digits of (count - 1)).
std::string CanonicalSliceName(uint64_t index, uint64_t count);

// The index of a canonical name ("00007.tif" -> 7), or nullopt.
std::optional<uint64_t> ParseCanonicalName(const std::string& name);

// Brick file names say where the brick is, in voxels (z, y, x offsets of its
// first voxel), zero-padded to `width` digits: "z0256_y0512_x0000.raw".
std::string BrickFileName(const Shape3& voxel_offset, size_t width);
// Digits used for a volume of this shape: max(4, digits of the largest dim).
size_t BrickNameWidth(const Shape3& shape);
// The voxel offsets in a brick file name (any zero padding), or nullopt.
std::optional<Shape3> ParseBrickFileName(const std::string& name);

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_NAMING_H_
