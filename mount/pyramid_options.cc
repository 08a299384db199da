#include "mount/pyramid_options.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <vector>

#include "volume/pyramid_settings.h"

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
