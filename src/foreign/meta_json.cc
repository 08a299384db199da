#include "foreign/meta_json.h"

#include "store/storage.h"

namespace brickfs {

Where Where::Key(std::string_view name) const {
  Where w = *this;
  if (!w.field.empty()) w.field += ".";
  w.field += "\"" + std::string(name) + "\"";
  return w;
}

Where Where::Index(size_t i) const {
  Where w = *this;
  w.field += "[" + std::to_string(i) + "]";
  return w;
}

std::string Where::Prefix() const {
  return field.empty() ? file + ": " : file + ": field " + field + ": ";
}

std::string Shown(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

Result<nlohmann::json> ParseJsonObject(std::string_view text, const std::string& file) {
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1,
    // column 7: ..."; keep the part after the bracket.
    std::string what = e.what();
    const size_t b = what.find("] ");
    if (b != std::string::npos) what = what.substr(b + 2);
    return Status::InvalidArgument(file + ": not valid JSON: " + what);
  }
  if (!v.is_object()) {
    return Status::InvalidArgument(file + ": expected a JSON object, found " +
                                   std::string(v.type_name()) + " " + Shown(v));
  }
  return v;
}

Result<nlohmann::json> ReadJsonObject(Storage* storage, const std::string& key) {
  Result<std::string> text = storage->Get(key, kMaxMetadataBytes);
  if (!text.ok()) {
    if (text.status().code() == Status::Code::kNotFound) {
      return Status::NotFound(storage->Locate(key) + ": does not exist");
    }
    return text.status();
  }
  return ParseJsonObject(*text, storage->Locate(key));
}

const nlohmann::json* Find(const nlohmann::json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

Result<const nlohmann::json*> Require(const nlohmann::json& obj, const Where& w,
                                      std::string_view name) {
  const nlohmann::json* v = Find(obj, name);
  if (!v) return w.Invalid("missing field \"" + std::string(name) + "\"");
  return v;
}

namespace {
Status WrongType(const nlohmann::json& v, const Where& w, const char* expected) {
  return w.Invalid(std::string("expected ") + expected + ", found " + Shown(v));
}
}  // namespace

Result<std::string> GetString(const nlohmann::json& v, const Where& w) {
  if (!v.is_string()) return WrongType(v, w, "a string");
  return v.get<std::string>();
}

Result<uint64_t> GetUnsigned(const nlohmann::json& v, const Where& w) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    if (v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
    return w.Invalid("expected a non-negative integer, found " + Shown(v));
  }
  return WrongType(v, w, "a non-negative integer");
}

Result<int64_t> GetInteger(const nlohmann::json& v, const Where& w) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return w.Invalid("integer " + Shown(v) + " is too large");
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return WrongType(v, w, "an integer");
}

Result<double> GetNumber(const nlohmann::json& v, const Where& w) {
  if (!v.is_number()) return WrongType(v, w, "a number");
  return v.get<double>();
}

Status ExpectObject(const nlohmann::json& v, const Where& w) {
  return v.is_object() ? Status::Ok() : WrongType(v, w, "an object");
}

Status ExpectArray(const nlohmann::json& v, const Where& w) {
  return v.is_array() ? Status::Ok() : WrongType(v, w, "an array");
}

}  // namespace brickfs
