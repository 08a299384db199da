// A small JSON value, parser and writer for zarr.json and status files.
//
// Numbers keep their integer value exactly when they are integers that fit
// int64/uint64 (shapes and byte counts), else they are doubles. Objects keep
// insertion order so the files we write are stable and readable.
// The parser is strict (RFC 8259), limits nesting depth to 64 and input size
// to what the caller passes. Thread-safety: values; no shared state.
#ifndef BRICKFS_FORMAT_JSON_H_
#define BRICKFS_FORMAT_JSON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "brickfs/status.h"

namespace brickfs {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;  // null
  Json(std::nullptr_t) {}  // NOLINT
  Json(bool b) : type_(Type::kBool), bool_(b) {}  // NOLINT
  Json(int v) : Json(static_cast<int64_t>(v)) {}  // NOLINT
  Json(int64_t v) : type_(Type::kNumber), is_int_(true), int_(v), dbl_(static_cast<double>(v)) {}  // NOLINT
  Json(uint64_t v);  // NOLINT
  Json(double v) : type_(Type::kNumber), dbl_(v) {}  // NOLINT
  Json(const char* s) : type_(Type::kString), str_(s) {}  // NOLINT
  Json(std::string s) : type_(Type::kString), str_(std::move(s)) {}  // NOLINT
  Json(Array a) : type_(Type::kArray), arr_(std::move(a)) {}  // NOLINT
  Json(Object o) : type_(Type::kObject), obj_(std::move(o)) {}  // NOLINT

  static Json MakeObject() { return Json(Object{}); }
  static Json MakeArray() { return Json(Array{}); }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }
  // True for numbers that are exact non-negative integers below 2^64.
  bool is_uint() const;

  bool as_bool() const { return bool_; }
  double as_double() const { return dbl_; }
  int64_t as_int() const { return is_int_ ? int_ : static_cast<int64_t>(dbl_); }
  uint64_t as_uint() const;
  const std::string& as_string() const { return str_; }
  const Array& as_array() const { return arr_; }
  Array& as_array() { return arr_; }
  const Object& as_object() const { return obj_; }

  // Object access. Get returns nullptr when absent or not an object.
  const Json* Get(const std::string& key) const;
  // Sets (replacing an existing key in place) and returns *this.
  Json& Set(const std::string& key, Json value);
  void Push(Json value) { arr_.push_back(std::move(value)); }

  // indent < 0: compact one line; else pretty with that many spaces.
  std::string Dump(int indent = -1) const;

  static Result<Json> Parse(const std::string& text);

 private:
  void DumpTo(std::string* out, int indent, int depth) const;

  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_int_ = false;   // int_ holds the exact value
  bool is_uint_ = false;  // uint_ holds the exact value (>= 2^63)
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  double dbl_ = 0;
  std::string str_;
  Array arr_;
  Object obj_;

  friend class JsonParser;
};

// Helpers for reading validated fields; the message names `what`.
Result<uint64_t> JsonUint(const Json& obj, const std::string& key, const std::string& what);
Result<std::string> JsonString(const Json& obj, const std::string& key, const std::string& what);

}  // namespace brickfs

#endif  // BRICKFS_FORMAT_JSON_H_
