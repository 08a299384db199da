// JSON for zarr.json, the status document and the reports: nlohmann-json's
// ordered_json (objects keep insertion order, so the documents brickfs writes
// are stable and read in the order they were built), with brickfs's rules for
// reading untrusted documents and its layout for writing them.
//
//   ParseJson  strict RFC 8259 (nlohmann's parser: no comments, no trailing
//              commas, no NaN, well-formed UTF-8 only, numbers too large for a
//              double refused), at most `max_bytes` of input and containers
//              nested at most kMaxJsonDepth deep (counted in the parser's
//              callback, which stops the parse at the first level too deep;
//              the parser keeps its own stack, so a hostile file never
//              recurses). Integers stay exact: 0..2^64-1 are unsigned,
//              -2^63..-1 signed, larger ones doubles (JsonIsUint is false for
//              them, so a shape or count field refuses them). A key repeated
//              in one object: the first one counts, later ones are dropped.
//              Errors are Corruption naming `what` and where the parse
//              stopped.
//   DumpJson   nlohmann's escaping and shortest round-trip doubles in the
//              layout brickfs always wrote: `indent` < 0 compact, else pretty
//              with arrays of scalars on one line ("shape": [64, 64, 64]);
//              a double with an integral value without ".0" (1.0 is "1");
//              non-finite doubles as null; bytes of a string that are not
//              well-formed UTF-8 as U+FFFD (one per bad sequence).
//   JsonField, JsonIsUint, JsonUint, JsonString
//              field access for validated reads, with messages naming the
//              document and the field.
//
// JSON_USE_IMPLICIT_CONVERSIONS is 0 for every brickfs target (see
// CMakeLists.txt): values leave a Json only through get<T>() after a type
// check, because get<T>() of the wrong type throws.
// Thread-safety: pure functions of values; no shared state.
#ifndef BRICKFS_FORMAT_JSON_H_
#define BRICKFS_FORMAT_JSON_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "brickfs/status.h"

namespace brickfs {

using Json = nlohmann::ordered_json;

// Deepest nesting of arrays and objects ParseJson accepts: brickfs's own
// documents nest 8 deep at most.
inline constexpr int kMaxJsonDepth = 64;
// Default input limit of ParseJson (the largest status document of a volume
// with millions of missing ranges stays far below it).
inline constexpr size_t kMaxJsonBytes = size_t{16} << 20;

// Parses one JSON document (see the file comment). `what` names it in
// messages ("STORE/0/zarr.json"). Corruption when it is too large, too
// deep or not JSON.
Result<Json> ParseJson(std::string_view text, const std::string& what = "JSON",
                       size_t max_bytes = kMaxJsonBytes);

// Writes `value` (see the file comment); no trailing newline.
std::string DumpJson(const Json& value, int indent = -1);

// The member `key` of `obj`; nullptr when `obj` is not an object or has no
// such member.
const Json* JsonField(const Json& obj, const std::string& key);

// True for integers in [0, 2^64 - 1] (whether stored signed or unsigned);
// false for doubles, even integral ones.
bool JsonIsUint(const Json& v);

// Field readers: the value of obj[key] when it is a non-negative integer
// (a string); else Corruption "<what>: \"<key>\" missing or not ...".
Result<uint64_t> JsonUint(const Json& obj, const std::string& key, const std::string& what);
Result<std::string> JsonString(const Json& obj, const std::string& key, const std::string& what);

}  // namespace brickfs

#endif  // BRICKFS_FORMAT_JSON_H_
