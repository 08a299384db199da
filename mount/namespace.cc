#include "mount/namespace.h"

#include <vector>

#include "format/volume_meta.h"
#include "volume/naming.h"

namespace brickfs {
namespace {

using Kind = PathInfo::Kind;

// The components of an absolute path ("/a/b" -> a, b), or none when one is
// empty ("/z/", "/a//b": the kernel never asks for such paths).
std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 1;
  for (;;) {
    size_t slash = path.find('/', start);
    parts.push_back(
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (parts.back().empty()) return {};
    if (slash == std::string::npos) return parts;
    start = slash + 1;
  }
}

std::optional<Axis> AxisFromName(const std::string& name) {
  if (name == "z") return Axis::kZ;
  if (name == "y") return Axis::kY;
  if (name == "x") return Axis::kX;
  return std::nullopt;
}

// "0" .. "40": no sign, no leading zero, below kMaxLevels.
std::optional<int> LevelFromName(const std::string& name) {
  if (name.empty() || name.size() > 2 || (name.size() > 1 && name[0] == '0') ||
      name.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int level = std::stoi(name);
  if (level >= kMaxLevels) return std::nullopt;
  return level;
}

// `rest` ("" for the directory itself) inside axis directory `info->axis`.
void ParseAxisEntry(const std::string& rest, PathInfo* info) {
  const auto n = ParseCanonicalName(rest);
  const bool slices = info->axis == Axis::kZ && !info->in_levels;  // writers' names live here
  info->kind = rest.empty() ? Kind::kAxisDir
               : n          ? Kind::kPlaneFile
               : slices     ? Kind::kSliceName
                            : Kind::kBadName;
  info->index = n.value_or(0);
}

// /levels/... with `parts` its components after "levels".
void ParseLevelsPath(const std::vector<std::string>& parts, PathInfo* info) {
  info->in_levels = true;
  if (parts.empty()) {
    info->kind = Kind::kLevelsDir;
    return;
  }
  auto level = LevelFromName(parts[0]);
  if (!level) return;
  info->level = *level;
  if (parts.size() == 1) {
    info->kind = Kind::kLevelDir;
    return;
  }
  auto axis = AxisFromName(parts[1]);
  if (!axis || parts.size() > 3) return;
  info->axis = *axis;
  ParseAxisEntry(parts.size() == 3 ? parts[2] : "", info);
}

void ParseStatePath(const std::string& rest, PathInfo* info) {
  if (rest.empty()) info->kind = Kind::kStateDir;
  else if (rest == "status") info->kind = Kind::kStatusFile;
  else info->kind = Kind::kBadName;
}

void ParseBricksPath(const std::string& rest, PathInfo* info) {
  const auto offset = ParseBrickFileName(rest);
  info->kind = rest.empty() ? Kind::kBricksDir : offset ? Kind::kBrickFile : Kind::kBadName;
  if (offset) info->offset = *offset;
}

}  // namespace

PathInfo ParsePath(const std::string& path) {
  PathInfo info;
  if (path == "/") {
    info.kind = Kind::kRoot;
    return info;
  }
  if (path.empty() || path[0] != '/') return info;
  const std::vector<std::string> parts = Components(path);
  if (parts.empty()) return info;
  const std::string& top = parts[0];
  info.name = parts.back();
  if (top == "levels") {
    ParseLevelsPath({parts.begin() + 1, parts.end()}, &info);
    return info;
  }
  if (parts.size() > 2) return info;  // nothing else is deeper than 2
  const std::string rest = parts.size() == 2 ? parts[1] : "";
  if (top == ".brickfs") {
    ParseStatePath(rest, &info);
  } else if (top == "bricks") {
    ParseBricksPath(rest, &info);
  } else if (auto axis = AxisFromName(top)) {
    info.axis = *axis;
    ParseAxisEntry(rest, &info);
  }
  return info;
}

bool IsSliceTarget(const PathInfo& p) {
  return !p.in_levels && p.axis == Axis::kZ &&
         (p.kind == Kind::kPlaneFile || p.kind == Kind::kSliceName);
}

}  // namespace brickfs
