// Reading the JSON metadata of foreign Zarr / OME-Zarr stores with
// nlohmann::json, with messages that name the file, the field and the value.
//
// A `Where` names the metadata object being read: the file (as
// Storage::Locate gives it) and the path of fields inside it, so that every
// refusal reads like
//   "/data/img.zarr/0/.zarray: field "chunks"[2]: must be >= 1, found 0".
// Thread-safety: plain functions and values.
#ifndef BRICKFS_FOREIGN_META_JSON_H_
#define BRICKFS_FOREIGN_META_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "brickfs/status.h"

namespace brickfs {

class Storage;

// The largest metadata object read (.zarray, .zattrs, zarr.json).
inline constexpr uint64_t kMaxMetadataBytes = uint64_t{16} << 20;

struct Where {
  std::string file;   // Locate(key)
  std::string field;  // "" for the top level, else "\"codecs\"[1].\"configuration\""

  // The field `name` (or element `i`) inside this one.
  Where Key(std::string_view name) const;
  Where Index(size_t i) const;
  // "FILE: field F: " (or "FILE: " at the top level).
  std::string Prefix() const;
  Status Invalid(const std::string& what) const { return Status::InvalidArgument(Prefix() + what); }
  Status Unsupported(const std::string& what) const { return Status::Unsupported(Prefix() + what); }
};

// A JSON value in short form for messages (at most ~80 characters).
std::string Shown(const nlohmann::json& v);

// Reads `key` from `storage` and parses it as a JSON object. NotFound when
// the object does not exist (message names it); InvalidArgument when it is
// larger than kMaxMetadataBytes, not JSON (with the parser's position), or
// not an object.
Result<nlohmann::json> ReadJsonObject(Storage* storage, const std::string& key);
// The same on text already read.
Result<nlohmann::json> ParseJsonObject(std::string_view text, const std::string& file);

// Field access on an object `obj` at `w`. Required fields that are absent
// are InvalidArgument "missing field"; present fields of the wrong type are
// InvalidArgument naming the type expected and the value found.
const nlohmann::json* Find(const nlohmann::json& obj, std::string_view name);
Result<const nlohmann::json*> Require(const nlohmann::json& obj, const Where& w,
                                      std::string_view name);
Result<std::string> GetString(const nlohmann::json& v, const Where& w);
// A non-negative integer (JSON integers only: 3.0 is refused).
Result<uint64_t> GetUnsigned(const nlohmann::json& v, const Where& w);
Result<int64_t> GetInteger(const nlohmann::json& v, const Where& w);
Result<double> GetNumber(const nlohmann::json& v, const Where& w);
Status ExpectObject(const nlohmann::json& v, const Where& w);
Status ExpectArray(const nlohmann::json& v, const Where& w);

}  // namespace brickfs

#endif  // BRICKFS_FOREIGN_META_JSON_H_
