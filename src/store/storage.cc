#include "store/storage.h"

namespace brickfs {

std::string KeyProblem(std::string_view key) {
  if (key.empty()) return "the key is empty";
  if (key.front() == '/') return "the key starts with '/'";
  if (key.find('\0') != std::string_view::npos) return "the key holds a NUL byte";
  size_t start = 0;
  for (;;) {
    const size_t end = key.find('/', start);
    const std::string_view part =
        key.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty()) return "the key has an empty component";
    if (part == "." || part == "..") return "the key has a '" + std::string(part) + "' component";
    if (end == std::string_view::npos) return "";
    start = end + 1;
  }
}

std::string JoinKey(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  out += '/';
  out += b;
  return out;
}

Status Storage::RemoveAll(std::string_view prefix) {
  return Status::Unsupported(Locate(prefix) + ": removing a whole prefix is not supported here");
}

}  // namespace brickfs
