#include "mount/namespace.h"

#include "volume/naming.h"

namespace brickfs {

PathInfo ParsePath(const std::string& path) {
  PathInfo info;
  if (path == "/") {
    info.kind = PathInfo::Kind::kRoot;
    return info;
  }
  if (path.empty() || path[0] != '/') return info;
  size_t slash = path.find('/', 1);
  std::string top = path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
  std::string rest = slash == std::string::npos ? "" : path.substr(slash + 1);
  if (rest.find('/') != std::string::npos) return info;  // nothing is deeper than 2
  info.name = rest.empty() ? top : rest;
  if (top == ".brickfs") {
    if (rest.empty()) info.kind = PathInfo::Kind::kStateDir;
    else if (rest == "status") info.kind = PathInfo::Kind::kStatusFile;
    else info.kind = PathInfo::Kind::kBadName;
    return info;
  }
  if (top == "bricks") {
    if (rest.empty()) {
      info.kind = PathInfo::Kind::kBricksDir;
    } else if (auto v = ParseBrickFileName(rest)) {
      info.kind = PathInfo::Kind::kBrickFile;
      info.offset = *v;
    } else {
      info.kind = PathInfo::Kind::kBadName;
    }
    return info;
  }
  Axis axis;
  if (top == "z") axis = Axis::kZ;
  else if (top == "y") axis = Axis::kY;
  else if (top == "x") axis = Axis::kX;
  else return info;
  info.axis = axis;
  if (rest.empty()) {
    info.kind = PathInfo::Kind::kAxisDir;
    return info;
  }
  if (auto n = ParseCanonicalName(rest)) {
    info.kind = PathInfo::Kind::kPlaneFile;
    info.index = *n;
    return info;
  }
  info.kind = axis == Axis::kZ ? PathInfo::Kind::kSliceName : PathInfo::Kind::kBadName;
  return info;
}

}  // namespace brickfs
