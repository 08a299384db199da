#include "volume/pyramid_settings.h"

#include <cmath>
#include <utility>

#include "format/volume_meta.h"
#include "volume/downsample.h"

namespace brickfs {
namespace {

// The full name of a unit written as its symbol or a common short form.
const char* FullUnitName(const std::string& unit) {
  static constexpr std::pair<const char*, const char*> kShort[] = {{"um", "micrometer"},
                                                                   {"µm", "micrometer"},
                                                                   {"micron", "micrometer"},
                                                                   {"microns", "micrometer"},
                                                                   {"micrometre", "micrometer"},
                                                                   {"nm", "nanometer"},
                                                                   {"nanometre", "nanometer"},
                                                                   {"mm", "millimeter"},
                                                                   {"millimetre", "millimeter"},
                                                                   {"cm", "centimeter"},
                                                                   {"m", "meter"},
                                                                   {"metre", "meter"},
                                                                   {"pm", "picometer"},
                                                                   {"A", "angstrom"},
                                                                   {"Å", "angstrom"}};
  for (const auto& [from, to] : kShort) {
    if (unit == from) return to;
  }
  return nullptr;
}

}  // namespace

Status CheckSpaceUnit(const std::string& unit) {
  if (IsOmeSpaceUnit(unit)) return Status::Ok();
  std::string hint;
  if (const char* full = FullUnitName(unit)) hint = " (did you mean " + std::string(full) + "?)";
  return Status::InvalidArgument("\"" + unit + "\" is not an OME-Zarr space unit" + hint +
                                 "; use the full name, e.g. micrometer, nanometer, millimeter, "
                                 "angstrom or meter");
}

Status CheckDownsampleMethod(const std::string& method) {
  if (ParseDownsampleMethod(method)) return Status::Ok();
  return Status::InvalidArgument(
      "expected mean (averages, for intensities) or mode (the most "
      "frequent value, for label volumes)");
}

Status CheckVoxelSize(const std::array<double, 3>& size) {
  for (double v : size) {
    if (!(v > 0) || !std::isfinite(v)) {
      return Status::InvalidArgument("voxel sizes must be finite numbers > 0");
    }
  }
  return Status::Ok();
}

}  // namespace brickfs
