#include "volume/naming.h"

#include <algorithm>
#include <cctype>

namespace brickfs {
namespace {

bool EndsWithNoCase(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsStagedName(const std::string& name) {
  if (name.empty()) return true;
  const char first = name.front(), last = name.back();
  if (first == '.' || first == '~' || first == '#' || last == '~' || last == '#') return true;
  return !EndsWithNoCase(name, ".tif") && !EndsWithNoCase(name, ".tiff");
}

Result<uint64_t> SliceIndexFromName(const std::string& name, uint64_t first_index) {
  std::string stem = name;
  for (const char* ext : {".tiff", ".tif"}) {
    if (EndsWithNoCase(stem, ext)) {
      stem.resize(stem.size() - std::char_traits<char>::length(ext));
      break;
    }
  }
  size_t end = stem.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(stem[end - 1]))) --end;
  if (end == 0) {
    return Status::InvalidArgument("\"" + name +
                                   "\" has no number in its name; slice files are numbered "
                                   "by the last run of digits (e.g. scan_0042.tif)");
  }
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(stem[begin - 1]))) --begin;
  std::string digits = stem.substr(begin, end - begin);
  size_t first_nonzero = digits.find_first_not_of('0');
  if (first_nonzero != std::string::npos && digits.size() - first_nonzero > 15) {
    return Status::InvalidArgument("\"" + name + "\": slice number " + digits + " is too large");
  }
  uint64_t n = std::stoull(digits);
  if (n < first_index) {
    return Status::InvalidArgument("\"" + name + "\": slice number " + std::to_string(n) +
                                   " is below first_index=" + std::to_string(first_index));
  }
  return n - first_index;
}

std::string CanonicalSliceName(uint64_t index, uint64_t count) {
  std::string digits = std::to_string(index);
  size_t width = std::max<size_t>(5, std::to_string(count > 0 ? count - 1 : 0).size());
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return digits + ".tif";
}

std::optional<uint64_t> ParseCanonicalName(const std::string& name) {
  if (name.size() < 9 || name.size() > 20 || name.compare(name.size() - 4, 4, ".tif") != 0) {
    return std::nullopt;
  }
  for (size_t i = 0; i + 4 < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return std::nullopt;
  }
  return std::stoull(name.substr(0, name.size() - 4));
}

std::string BrickFileName(const Shape3& v, size_t width) {
  std::string out;
  const char* axes = "zyx";
  for (int a = 0; a < 3; ++a) {
    std::string d = std::to_string(v[a]);
    if (d.size() < width) d.insert(0, width - d.size(), '0');
    if (a) out += '_';
    out += axes[a];
    out += d;
  }
  return out + ".raw";
}

size_t BrickNameWidth(const Shape3& shape) {
  uint64_t m = std::max({shape[0], shape[1], shape[2]});
  return std::max<size_t>(4, std::to_string(m).size());
}

std::optional<Shape3> ParseBrickFileName(const std::string& name) {
  // z<digits>_y<digits>_x<digits>.raw
  if (name.size() < 13 || name.compare(name.size() - 4, 4, ".raw") != 0) return std::nullopt;
  Shape3 v{};
  size_t pos = 0;
  const char* axes = "zyx";
  for (int a = 0; a < 3; ++a) {
    if (a && (pos >= name.size() || name[pos++] != '_')) return std::nullopt;
    if (pos >= name.size() || name[pos++] != axes[a]) return std::nullopt;
    size_t start = pos;
    while (pos < name.size() && std::isdigit(static_cast<unsigned char>(name[pos]))) ++pos;
    if (pos == start || pos - start > 15) return std::nullopt;
    v[a] = std::stoull(name.substr(start, pos - start));
  }
  if (pos != name.size() - 4) return std::nullopt;
  return v;
}

}  // namespace brickfs
