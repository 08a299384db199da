// What identifies one version of a remote object: its ETag, else its
// Last-Modified date, plus its size. Everything cached from an object
// carries the validator it was fetched under; a different validator means
// the object changed and everything cached from it is stale.
//
// Also the parsing of the response headers that carry it (Content-Range).
// Thread-safety: values and pure functions.
#ifndef BRICKFS_REMOTE_VALIDATOR_H_
#define BRICKFS_REMOTE_VALIDATOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brickfs {

struct Validator {
  static constexpr uint64_t kUnknownSize = UINT64_MAX;

  std::string etag;           // as sent, quotes and any "W/" included; "" if none
  std::string last_modified;  // the HTTP-date as sent; "" if none
  uint64_t size = kUnknownSize;

  bool has_size() const { return size != kUnknownSize; }
  // A strong ETag can be sent in If-Match (weak ones never match there).
  bool strong_etag() const { return !etag.empty() && etag.rfind("W/", 0) != 0; }
  // True when the two describe different versions of an object: different
  // ETags (when both have one), else different Last-Modified (when both
  // have one), or different sizes (when both know it). A server that sends
  // no validator at all is judged by size alone.
  bool Conflicts(const Validator& other) const;
  bool operator==(const Validator& o) const {
    return etag == o.etag && last_modified == o.last_modified && size == o.size;
  }
  // "ETag \"5f-1a\", 4096 bytes" for messages.
  std::string ToString() const;
};

// Parses a Content-Range header value "bytes FIRST-LAST/TOTAL" (TOTAL may be
// "*") or "bytes */TOTAL" (a 416's). Leading/trailing spaces are ignored.
struct ContentRange {
  bool unsatisfied = false;  // "bytes */TOTAL"
  uint64_t first = 0, last = 0;
  uint64_t total = Validator::kUnknownSize;
};
std::optional<ContentRange> ParseContentRange(std::string_view value);

}  // namespace brickfs

#endif  // BRICKFS_REMOTE_VALIDATOR_H_
