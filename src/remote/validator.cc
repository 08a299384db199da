#include "remote/validator.h"

#include <charconv>

namespace brickfs {

bool Validator::Conflicts(const Validator& other) const {
  if (has_size() && other.has_size() && size != other.size) return true;
  if (!etag.empty() && !other.etag.empty()) return etag != other.etag;
  if (!last_modified.empty() && !other.last_modified.empty()) {
    return last_modified != other.last_modified;
  }
  return false;
}

std::string Validator::ToString() const {
  std::string s;
  if (!etag.empty()) s = "ETag " + etag;
  if (!last_modified.empty()) s += (s.empty() ? "" : ", ") + std::string("Last-Modified ") + last_modified;
  if (has_size()) s += (s.empty() ? "" : ", ") + std::to_string(size) + " bytes";
  return s.empty() ? "no validator" : s;
}

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// A whole decimal number, no sign, no spaces; nullopt on anything else or
// overflow.
std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<ContentRange> ParseContentRange(std::string_view value) {
  std::string_view s = Trim(value);
  if (s.size() < 6 || s.substr(0, 6) != "bytes ") return std::nullopt;
  s = Trim(s.substr(6));
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view span = s.substr(0, slash), total = s.substr(slash + 1);
  ContentRange cr;
  if (total != "*") {
    const auto t = ParseU64(total);
    if (!t || *t == Validator::kUnknownSize) return std::nullopt;
    cr.total = *t;
  }
  if (span == "*") {
    if (total == "*") return std::nullopt;
    cr.unsatisfied = true;
    return cr;
  }
  const size_t dash = span.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto first = ParseU64(span.substr(0, dash)), last = ParseU64(span.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  if (cr.total != Validator::kUnknownSize && *last >= cr.total) return std::nullopt;
  cr.first = *first;
  cr.last = *last;
  return cr;
}

}  // namespace brickfs
