#include "format/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/text.h"

namespace brickfs {

Json::Json(uint64_t v) : type_(Type::kNumber), dbl_(static_cast<double>(v)) {
  if (v <= static_cast<uint64_t>(INT64_MAX)) {
    is_int_ = true;
    int_ = static_cast<int64_t>(v);
  } else {
    is_uint_ = true;
    uint_ = v;
  }
}

bool Json::is_uint() const {
  if (type_ != Type::kNumber) return false;
  if (is_uint_) return true;
  if (is_int_) return int_ >= 0;
  return false;
}

uint64_t Json::as_uint() const {
  if (is_uint_) return uint_;
  if (is_int_) return static_cast<uint64_t>(int_);
  return static_cast<uint64_t>(dbl_);
}

const Json* Json::Get(const std::string& key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& [k, v] : obj_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Json& Json::Set(const std::string& key, Json value) {
  if (type_ != Type::kObject) {
    *this = MakeObject();
  }
  for (auto& [k, v] : obj_) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  obj_.emplace_back(key, std::move(value));
  return *this;
}

namespace {

// Writes `s` as a JSON string. Bytes that are not well-formed UTF-8 (a file
// name can hold any) become U+FFFD: RFC 8259 requires UTF-8, and strict
// readers (Python's json, browsers) refuse anything else.
void EscapeString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        *out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      } else {
        out->append(s, i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void Newline(std::string* out, int indent, int depth) {
  if (indent < 0) return;
  out->push_back('\n');
  out->append(static_cast<size_t>(indent * depth), ' ');
}

}  // namespace

void Json::DumpTo(std::string* out, int indent, int depth) const {
  switch (type_) {
    case Type::kNull: *out += "null"; break;
    case Type::kBool: *out += bool_ ? "true" : "false"; break;
    case Type::kNumber:
      if (is_int_) {
        *out += std::to_string(int_);
      } else if (is_uint_) {
        *out += std::to_string(uint_);
      } else if (!std::isfinite(dbl_)) {
        *out += "null";
      } else {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", dbl_);
        // Prefer the shortest representation that round-trips.
        for (int prec = 6; prec < 17; ++prec) {
          char shorter[40];
          std::snprintf(shorter, sizeof shorter, "%.*g", prec, dbl_);
          if (std::strtod(shorter, nullptr) == dbl_) {
            std::snprintf(buf, sizeof buf, "%s", shorter);
            break;
          }
        }
        *out += buf;
      }
      break;
    case Type::kString: EscapeString(str_, out); break;
    case Type::kArray: {
      // Arrays of scalars stay on one line: shapes read as [64, 64, 64].
      bool scalars = true;
      for (const auto& v : arr_) scalars = scalars && !v.is_array() && !v.is_object();
      out->push_back('[');
      for (size_t i = 0; i < arr_.size(); ++i) {
        if (i) *out += scalars || indent < 0 ? (indent < 0 ? "," : ", ") : ",";
        if (!scalars) Newline(out, indent, depth + 1);
        arr_[i].DumpTo(out, indent, depth + 1);
      }
      if (!scalars && !arr_.empty()) Newline(out, indent, depth);
      out->push_back(']');
      break;
    }
    case Type::kObject: {
      out->push_back('{');
      for (size_t i = 0; i < obj_.size(); ++i) {
        if (i) out->push_back(',');
        Newline(out, indent, depth + 1);
        EscapeString(obj_[i].first, out);
        *out += indent < 0 ? ":" : ": ";
        obj_[i].second.DumpTo(out, indent, depth + 1);
      }
      if (!obj_.empty()) Newline(out, indent, depth);
      out->push_back('}');
      break;
    }
  }
}

std::string Json::Dump(int indent) const {
  std::string out;
  DumpTo(&out, indent, 0);
  return out;
}

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}

  Result<Json> ParseDocument() {
    Json v;
    BRICKFS_RETURN_IF_ERROR(ParseValue(&v, 0));
    SkipWs();
    if (pos_ != s_.size()) return Error("trailing characters");
    return v;
  }

 private:
  Status Error(const std::string& what) {
    return Status::Corruption("JSON: " + what + " at offset " + std::to_string(pos_));
  }
  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Consume(const char* lit) {
    size_t n = std::char_traits<char>::length(lit);
    if (s_.compare(pos_, n, lit) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  Status ParseValue(Json* out, int depth) {
    if (depth >= 64) return Error("nesting deeper than 64");
    SkipWs();
    if (pos_ >= s_.size()) return Error("unexpected end");
    char c = s_[pos_];
    if (c == '{') return ParseObject(out, depth);
    if (c == '[') return ParseArray(out, depth);
    if (c == '"') {
      std::string str;
      BRICKFS_RETURN_IF_ERROR(ParseString(&str));
      *out = Json(std::move(str));
      return Status::Ok();
    }
    if (Consume("true")) { *out = Json(true); return Status::Ok(); }
    if (Consume("false")) { *out = Json(false); return Status::Ok(); }
    if (Consume("null")) { *out = Json(); return Status::Ok(); }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
    return Error(std::string("unexpected character '") + c + "'");
  }

  Status ParseNumber(Json* out) {
    size_t start = pos_;
    bool integer = true;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[pos_]))) return Error("bad number");
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (isdigit(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && pos_ > start)) {
        integer = false;
        ++pos_;
      } else {
        break;
      }
    }
    std::string text = s_.substr(start, pos_ - start);
    // RFC 8259: no leading zeros, digits after '.', digits in the exponent.
    size_t lead = text[0] == '-' ? 1 : 0;
    if (text.size() > lead + 1 && text[lead] == '0' && isdigit(static_cast<unsigned char>(text[lead + 1]))) {
      return Error("number with a leading zero");
    }
    for (size_t i = 0; i < text.size(); ++i) {
      if ((text[i] == '.' || text[i] == 'e' || text[i] == 'E') &&
          (i + 1 >= text.size() || !(isdigit(static_cast<unsigned char>(text[i + 1])) ||
                                     (text[i] != '.' && (text[i + 1] == '+' || text[i + 1] == '-'))))) {
        return Error("malformed number '" + text + "'");
      }
    }
    errno = 0;
    if (integer) {
      char* end = nullptr;
      if (text[0] == '-') {
        long long v = std::strtoll(text.c_str(), &end, 10);
        if (errno == 0 && *end == 0) { *out = Json(static_cast<int64_t>(v)); return Status::Ok(); }
      } else {
        unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (errno == 0 && *end == 0) { *out = Json(static_cast<uint64_t>(v)); return Status::Ok(); }
      }
      errno = 0;
    }
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(text.c_str(), &end);
    if (*end != 0) return Error("bad number '" + text + "'");
    if (!std::isfinite(d)) return Error("number '" + text + "' is out of range");
    *out = Json(d);
    return Status::Ok();
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status ParseHex4(uint32_t* cp) {
    if (pos_ + 4 > s_.size()) return Error("short \\u escape");
    *cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      *cp <<= 4;
      if (c >= '0' && c <= '9') *cp |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') *cp |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') *cp |= static_cast<uint32_t>(c - 'A' + 10);
      else return Error("bad \\u escape");
    }
    return Status::Ok();
  }

  Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return Status::Ok();
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          BRICKFS_RETURN_IF_ERROR(ParseHex4(&cp));
          if (cp >= 0xD800 && cp < 0xDC00 && Consume("\\u")) {
            uint32_t lo;
            BRICKFS_RETURN_IF_ERROR(ParseHex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default: return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  Status ParseArray(Json* out, int depth) {
    ++pos_;
    Json::Array arr;
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      *out = Json(std::move(arr));
      return Status::Ok();
    }
    for (;;) {
      Json v;
      BRICKFS_RETURN_IF_ERROR(ParseValue(&v, depth + 1));
      arr.push_back(std::move(v));
      SkipWs();
      if (pos_ >= s_.size()) return Error("unterminated array");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == ']') { ++pos_; break; }
      return Error("expected ',' or ']'");
    }
    *out = Json(std::move(arr));
    return Status::Ok();
  }

  Status ParseObject(Json* out, int depth) {
    ++pos_;
    Json obj = Json::MakeObject();
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      *out = std::move(obj);
      return Status::Ok();
    }
    for (;;) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected a key");
      std::string key;
      BRICKFS_RETURN_IF_ERROR(ParseString(&key));
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      Json v;
      BRICKFS_RETURN_IF_ERROR(ParseValue(&v, depth + 1));
      obj.obj_.emplace_back(std::move(key), std::move(v));
      SkipWs();
      if (pos_ >= s_.size()) return Error("unterminated object");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == '}') { ++pos_; break; }
      return Error("expected ',' or '}'");
    }
    *out = std::move(obj);
    return Status::Ok();
  }

  const std::string& s_;
  size_t pos_ = 0;
};

Result<Json> Json::Parse(const std::string& text) { return JsonParser(text).ParseDocument(); }

Result<uint64_t> JsonUint(const Json& obj, const std::string& key, const std::string& what) {
  const Json* v = obj.Get(key);
  if (!v || !v->is_uint()) {
    return Status::Corruption(what + ": \"" + key + "\" missing or not a non-negative integer");
  }
  return v->as_uint();
}

Result<std::string> JsonString(const Json& obj, const std::string& key, const std::string& what) {
  const Json* v = obj.Get(key);
  if (!v || !v->is_string()) return Status::Corruption(what + ": \"" + key + "\" missing or not a string");
  return v->as_string();
}

}  // namespace brickfs
