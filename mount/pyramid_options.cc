#include "mount/pyramid_options.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "format/volume_meta.h"
#include "volume/downsample.h"

namespace brickfs {
namespace {

// A finite number > 0 spelled out exactly (no sign, blanks or suffix).
bool ParsePositive(const std::string& s, double* out) {
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '.')) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out,
                                   std::chars_format::fixed | std::chars_format::scientific);
  return ec == std::errc() && ptr == end && std::isfinite(*out) && *out > 0;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t next; (next = s.find(sep, start)) != std::string::npos; start = next + 1) {
    parts.push_back(s.substr(start, next - start));
  }
  parts.push_back(s.substr(start));
  return parts;
}

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

Result<std::array<double, 3>> ParseVoxelSize(const std::string& text, char sep) {
  const char used = text.find(':') != std::string::npos ? ':' : ',';
  std::vector<std::string> parts = Split(text, used);
  std::array<double, 3> size{};
  bool ok = parts.size() == 1 || parts.size() == 3;
  for (size_t a = 0; ok && a < parts.size(); ++a) ok = ParsePositive(parts[a], &size[a]);
  if (!ok) {
    const std::string s(1, sep);
    return Status::InvalidArgument("expected Z" + s + "Y" + s +
                                   "X or one number for all three, each a "
                                   "finite number > 0 (e.g. 2" +
                                   s + "0.5" + s + "0.5 or 0.4)");
  }
  if (parts.size() == 1) size = {size[0], size[0], size[0]};
  return size;
}

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

std::optional<Status> SetPyramidValue(const std::string& key, const std::string& value, char sep,
                                      VolumeOptions* v) {
  if (key == "downsample") {
    BRICKFS_RETURN_IF_ERROR(CheckDownsampleMethod(value));
    v->downsample = value;
  } else if (key == "voxel_size") {
    BRICKFS_ASSIGN_OR_RETURN(v->voxel_size, ParseVoxelSize(value, sep));
  } else if (key == "unit") {
    BRICKFS_RETURN_IF_ERROR(CheckSpaceUnit(value));
    v->unit = value;
  } else {
    return std::nullopt;
  }
  return Status::Ok();
}

}  // namespace brickfs
