#include "format/json.h"

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace brickfs {
namespace {

// Thrown by the parser callback to stop a parse at a limit (nlohmann's parser
// lets exceptions from the callback through and frees what it built).
struct JsonLimitExceeded {
  std::string message;
};

// "syntax error while parsing value - invalid literal; last read: 'tru'" out
// of nlohmann's "[json.exception.parse_error.101] parse error at line 1,
// column 4: syntax error ...", at most 200 bytes (the last token read may be
// a whole string).
std::string ParseErrorReason(const char* what) {
  std::string msg = what;
  const size_t column = msg.find("column ");
  const size_t colon = column == std::string::npos ? std::string::npos : msg.find(": ", column);
  if (colon != std::string::npos) msg.erase(0, colon + 2);
  if (msg.size() > 200) msg = msg.substr(0, 200) + "...";
  return msg;
}

void Newline(int indent, int depth, std::string* out) {
  if (indent < 0) return;
  out->push_back('\n');
  out->append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

// A scalar: nlohmann writes it (escapes, shortest round-trip doubles); a
// double that nlohmann writes as "1.0" loses its ".0", as brickfs always
// wrote integral doubles.
void DumpScalar(const Json& v, std::string* out) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (v.is_number_float() && s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) {
    s.resize(s.size() - 2);
  }
  *out += s;
}

void DumpTo(const Json& v, int indent, int depth, std::string* out) {
  if (v.is_object()) {
    out->push_back('{');
    bool first = true;
    for (const auto& [key, member] : v.items()) {
      if (!first) out->push_back(',');
      first = false;
      Newline(indent, depth + 1, out);
      DumpScalar(Json(key), out);
      *out += indent < 0 ? ":" : ": ";
      DumpTo(member, indent, depth + 1, out);
    }
    if (!v.empty()) Newline(indent, depth, out);
    out->push_back('}');
  } else if (v.is_array()) {
    // Arrays of scalars stay on one line: shapes read as [64, 64, 64].
    bool scalars = true;
    for (const Json& e : v) scalars = scalars && !e.is_structured();
    out->push_back('[');
    bool first = true;
    for (const Json& e : v) {
      if (!first) *out += scalars && indent >= 0 ? ", " : ",";
      first = false;
      if (!scalars) Newline(indent, depth + 1, out);
      DumpTo(e, indent, depth + 1, out);
    }
    if (!scalars && !v.empty()) Newline(indent, depth, out);
    out->push_back(']');
  } else {
    DumpScalar(v, out);
  }
}

}  // namespace

Result<Json> ParseJson(std::string_view text, const std::string& what, size_t max_bytes) {
  if (text.size() > max_bytes) {
    return Status::Corruption(what + ": " + std::to_string(text.size()) +
                              " bytes, more than the " + std::to_string(max_bytes) +
                              " a JSON document may have here");
  }
  // keys[d]: the keys seen so far in the object open at depth d - 1 (the
  // callback's depth of a key is its object's depth + 1).
  std::vector<std::unordered_set<std::string>> keys;
  auto callback = [&keys](int depth, Json::parse_event_t event, Json& parsed) {
    using Event = Json::parse_event_t;
    if (event == Event::object_start || event == Event::array_start) {
      if (depth >= kMaxJsonDepth) {
        throw JsonLimitExceeded{"containers nested deeper than " + std::to_string(kMaxJsonDepth)};
      }
      if (event == Event::object_start) {
        const size_t d = static_cast<size_t>(depth) + 1;
        if (keys.size() <= d) keys.resize(d + 1);
        keys[d].clear();
      }
    } else if (event == Event::key) {
      // false drops the member: the first of repeated keys counts.
      return keys[static_cast<size_t>(depth)].insert(parsed.get<std::string>()).second;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const JsonLimitExceeded& e) {
    return Status::Corruption(what + ": invalid JSON: " + e.message);
  } catch (const Json::parse_error& e) {
    const size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    return Status::Corruption(what + ": invalid JSON at offset " + std::to_string(offset) + ": " +
                              ParseErrorReason(e.what()));
  } catch (const Json::exception& e) {
    // out_of_range.406: a number too large for a double ("1e999").
    return Status::Corruption(what + ": invalid JSON: " + ParseErrorReason(e.what()));
  }
}

std::string DumpJson(const Json& value, int indent) {
  std::string out;
  DumpTo(value, indent, 0, &out);
  return out;
}

const Json* JsonField(const Json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool JsonIsUint(const Json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

Result<uint64_t> JsonUint(const Json& obj, const std::string& key, const std::string& what) {
  const Json* v = JsonField(obj, key);
  if (!v || !JsonIsUint(*v)) {
    return Status::Corruption(what + ": \"" + key + "\" missing or not a non-negative integer");
  }
  return v->get<uint64_t>();
}

Result<std::string> JsonString(const Json& obj, const std::string& key, const std::string& what) {
  const Json* v = JsonField(obj, key);
  if (!v || !v->is_string()) return Status::Corruption(what + ": \"" + key + "\" missing or not a string");
  return v->get<std::string>();
}

}  // namespace brickfs
