// Zarr v2 and v3 array metadata of foreign stores, validated field by field
// (see zarr_meta.h). A little over 700 lines: both format versions' fields,
// codecs and fill values, each refusal naming the file, field and value.
#include "foreign/zarr_meta.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "brickfs/geometry.h"
#include "foreign/meta_json.h"

namespace brickfs {

using nlohmann::json;

std::string_view BytesCodecName(BytesCodecKind k) {
  switch (k) {
    case BytesCodecKind::kGzip: return "gzip";
    case BytesCodecKind::kZlib: return "zlib";
    case BytesCodecKind::kZstd: return "zstd";
    case BytesCodecKind::kBlosc: return "blosc";
    case BytesCodecKind::kCrc32c: return "crc32c";
  }
  return "?";
}

bool ChunkCodecs::compressed() const {
  for (BytesCodecKind k : bytes_codecs) {
    if (k != BytesCodecKind::kCrc32c) return true;
  }
  return false;
}

uint64_t ChunkCodecs::StoredSizeUncompressed(uint64_t raw) const {
  return raw + 4 * bytes_codecs.size();  // only crc32c codecs when uncompressed
}

uint64_t ZarrArrayMeta::read_chunk_bytes() const {
  uint64_t n = DTypeSize(dtype);
  for (uint64_t c : read_chunk()) n *= c;  // bounded by validation
  return n;
}

std::vector<uint64_t> ZarrArrayMeta::read_grid() const {
  std::vector<uint64_t> g(rank());
  for (size_t i = 0; i < rank(); ++i) g[i] = CeilDiv(shape[i], read_chunk()[i]);
  return g;
}

std::string ZarrArrayMeta::ChunkKey(const std::vector<uint64_t>& coords) const {
  std::string key = default_key_encoding ? "c" : "";
  for (size_t i = 0; i < coords.size(); ++i) {
    if (!key.empty()) key += separator;
    key += std::to_string(coords[i]);
  }
  if (key.empty()) key = "0";  // v2 encoding of a rank-0 array
  return key;
}

std::string ZarrArrayMeta::FillText() const {
  const auto* p = reinterpret_cast<const uint8_t*>(fill.data());
  std::ostringstream out;
  switch (dtype) {
    case DType::kUint8: out << unsigned{p[0]}; break;
    case DType::kInt8: out << int{static_cast<int8_t>(p[0])}; break;
    case DType::kUint16: { uint16_t v; std::memcpy(&v, p, 2); out << v; break; }
    case DType::kInt16: { int16_t v; std::memcpy(&v, p, 2); out << v; break; }
    case DType::kUint32: { uint32_t v; std::memcpy(&v, p, 4); out << v; break; }
    case DType::kInt32: { int32_t v; std::memcpy(&v, p, 4); out << v; break; }
    case DType::kFloat32: { float v; std::memcpy(&v, p, 4); out << v; break; }
    case DType::kFloat64: { double v; std::memcpy(&v, p, 8); out << v; break; }
  }
  return out.str();
}

namespace {

// a * b, or nullopt when it passes `limit`.
std::optional<uint64_t> MulAtMost(uint64_t a, uint64_t b, uint64_t limit) {
  if (a != 0 && b > limit / a) return std::nullopt;
  const uint64_t p = a * b;
  if (p > limit) return std::nullopt;
  return p;
}

std::string ListText(const std::vector<uint64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// A list of sides: "shape" (0 allowed) or a chunk shape (>= 1).
Result<std::vector<uint64_t>> ParseSides(const json& v, const Where& w, bool allow_zero,
                                         size_t want_rank) {
  BRICKFS_RETURN_IF_ERROR(ExpectArray(v, w));
  if (v.empty() || v.size() > kMaxZarrRank) {
    return w.Invalid("has " + std::to_string(v.size()) + " dimensions; brickfs reads 1 to " +
                     std::to_string(kMaxZarrRank));
  }
  if (want_rank != 0 && v.size() != want_rank) {
    return w.Invalid("has " + std::to_string(v.size()) + " dimensions but the array has " +
                     std::to_string(want_rank) + " (shape and chunks must have the same rank)");
  }
  std::vector<uint64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    BRICKFS_ASSIGN_OR_RETURN(uint64_t s, GetUnsigned(v[i], w.Index(i)));
    if (!allow_zero && s == 0) return w.Index(i).Invalid("must be >= 1, found 0");
    if (s > kMaxSide) {
      return w.Index(i).Unsupported("side " + std::to_string(s) + " is over brickfs's limit of " +
                                    std::to_string(kMaxSide));
    }
    out.push_back(s);
  }
  return out;
}

// ---- dtypes and fill values -------------------------------------------------

Status Unsupported64(const Where& w, const std::string& name) {
  return w.Unsupported("data type " + name +
                       " (64-bit integers) is not served: brickfs serves int8, uint8, int16, "
                       "uint16, int32, uint32, float32 and float64");
}

// A v2 dtype string: byte order, kind, size.
Result<std::pair<DType, bool>> ParseV2DType(const json& v, const Where& w) {
  if (!v.is_string()) {
    return w.Unsupported("structured data type " + Shown(v) +
                         " is not served (one scalar type per array only)");
  }
  const std::string s = v.get<std::string>();
  if (s.size() < 3 || (s[0] != '<' && s[0] != '>' && s[0] != '|')) {
    return w.Invalid("\"" + s + "\" is not a Zarr v2 data type (byte order <, > or |, kind, size)");
  }
  const std::string body = s.substr(1);
  struct Known {
    const char* code;
    std::optional<DType> t;
  };
  const Known known[] = {{"i1", DType::kInt8},     {"u1", DType::kUint8},    {"i2", DType::kInt16},
                         {"u2", DType::kUint16},   {"i4", DType::kInt32},    {"u4", DType::kUint32},
                         {"f4", DType::kFloat32},  {"f8", DType::kFloat64}};
  for (const Known& k : known) {
    if (body == k.code) {
      if (s[0] == '|' && DTypeSize(*k.t) > 1) {
        return w.Invalid("\"" + s + "\": byte order '|' is only for 1-byte types");
      }
      return std::make_pair(*k.t, s[0] == '>');
    }
  }
  if (body == "i8" || body == "u8") return Unsupported64(w, "\"" + s + "\"");
  const char kind = body[0];
  if (std::string_view("biufcmMSUVO").find(kind) != std::string_view::npos) {
    return w.Unsupported("data type \"" + s +
                         "\" is not served: brickfs serves i1 u1 i2 u2 i4 u4 f4 f8");
  }
  return w.Invalid("\"" + s + "\" is not a Zarr v2 data type");
}

Result<DType> ParseV3DType(const json& v, const Where& w) {
  BRICKFS_ASSIGN_OR_RETURN(std::string s, GetString(v, w));
  if (auto t = ParseAnyDType(s)) return *t;
  if (s == "int64" || s == "uint64") return Unsupported64(w, "\"" + s + "\"");
  if (s == "bool" || s == "float16" || s == "complex64" || s == "complex128" ||
      (s.size() > 1 && s[0] == 'r' && std::isdigit(static_cast<unsigned char>(s[1])))) {
    return w.Unsupported("data type \"" + s +
                         "\" is not served: brickfs serves int8, uint8, int16, uint16, int32, "
                         "uint32, float32 and float64");
  }
  return w.Unsupported("unknown data type \"" + s + "\"");
}

template <typename T>
std::string Bytes(T v) {
  std::string out(sizeof v, '\0');
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}

// The fill value as DTypeSize little-endian bytes. `v2`: null allowed (0).
Result<std::string> ParseFill(const json& v, DType t, const Where& w, bool v2) {
  const bool is_float = t == DType::kFloat32 || t == DType::kFloat64;
  if (v.is_null()) {
    if (v2) return std::string(DTypeSize(t), '\0');
    return w.Invalid("null is not a Zarr v3 fill value");
  }
  if (is_float) {
    double d = 0;
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s == "NaN") {
        d = std::numeric_limits<double>::quiet_NaN();
      } else if (s == "Infinity") {
        d = std::numeric_limits<double>::infinity();
      } else if (s == "-Infinity") {
        d = -std::numeric_limits<double>::infinity();
      } else if (!v2 && s.size() > 2 && s[0] == '0' && s[1] == 'x') {
        const size_t digits = 2 * DTypeSize(t);
        if (s.size() != 2 + digits ||
            s.find_first_not_of("0123456789abcdefABCDEF", 2) != std::string::npos) {
          return w.Invalid("\"" + s + "\": a hex fill value of " + std::string(DTypeName(t)) +
                           " has exactly " + std::to_string(digits) + " hex digits");
        }
        const uint64_t bits = std::stoull(s.substr(2), nullptr, 16);
        if (t == DType::kFloat32) return Bytes(static_cast<uint32_t>(bits));
        return Bytes(bits);
      } else {
        return w.Invalid("\"" + s + "\" is not a fill value of " + std::string(DTypeName(t)) +
                         " (a number, \"NaN\", \"Infinity\", \"-Infinity\"" +
                         (v2 ? "" : " or \"0x\" and the bits in hex") + ")");
      }
    } else {
      BRICKFS_ASSIGN_OR_RETURN(d, GetNumber(v, w));
    }
    if (t == DType::kFloat64) return Bytes(d);
    if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
      return w.Invalid(Shown(v) + " does not fit float32");
    }
    return Bytes(static_cast<float>(d));
  }
  if (!v.is_number_integer()) {
    return w.Invalid("fill value " + Shown(v) + " of " + std::string(DTypeName(t)) +
                     " must be an integer");
  }
  int64_t lo = 0;
  uint64_t hi = 0;
  switch (t) {
    case DType::kInt8: lo = INT8_MIN, hi = INT8_MAX; break;
    case DType::kUint8: hi = UINT8_MAX; break;
    case DType::kInt16: lo = INT16_MIN, hi = INT16_MAX; break;
    case DType::kUint16: hi = UINT16_MAX; break;
    case DType::kInt32: lo = INT32_MIN, hi = INT32_MAX; break;
    case DType::kUint32: hi = UINT32_MAX; break;
    case DType::kFloat32:
    case DType::kFloat64: break;
  }
  const bool neg = !v.is_number_unsigned() && v.get<int64_t>() < 0;
  const bool in_range = neg ? v.get<int64_t>() >= lo : v.get<uint64_t>() <= hi;
  if (!in_range) {
    return w.Invalid("fill value " + Shown(v) + " is outside the range of " +
                     std::string(DTypeName(t)));
  }
  const int64_t x = neg ? v.get<int64_t>() : static_cast<int64_t>(v.get<uint64_t>());
  std::string out = Bytes(x);  // little-endian two's complement: truncate
  out.resize(DTypeSize(t));
  return out;
}

// ---- limits -------------------------------------------------------------------

Status CheckLimits(const ZarrArrayMeta& m, const Where& w) {
  const uint64_t vb = DTypeSize(m.dtype);
  std::optional<uint64_t> bytes = vb;
  for (uint64_t c : m.read_chunk()) {
    if (bytes) bytes = MulAtMost(*bytes, c, kMaxBlockBytes);
  }
  if (!bytes) {
    return w.Unsupported("chunk " + ListText(m.read_chunk()) + " of " +
                         std::string(DTypeName(m.dtype)) + " is larger than " +
                         std::to_string(kMaxBlockBytes >> 20) +
                         " MiB decoded, brickfs's limit for one chunk");
  }
  std::optional<uint64_t> total = vb;
  for (uint64_t s : m.shape) {
    if (total) total = MulAtMost(*total, s, kMaxVolumeBytes);
  }
  if (!total) {
    return w.Unsupported("shape " + ListText(m.shape) + " is larger than 2^60 bytes");
  }
  return Status::Ok();
}

// ---- Zarr v2 ----------------------------------------------------------------

Status ParseV2Compressor(const json& v, const Where& w, ChunkCodecs* codecs) {
  if (v.is_null()) return Status::Ok();
  BRICKFS_RETURN_IF_ERROR(ExpectObject(v, w));
  BRICKFS_ASSIGN_OR_RETURN(const json* idv, Require(v, w, "id"));
  BRICKFS_ASSIGN_OR_RETURN(std::string id, GetString(*idv, w.Key("id")));
  auto level = [&](const char* name, int64_t lo, int64_t hi) -> Status {
    const json* l = Find(v, name);
    if (!l) return Status::Ok();
    BRICKFS_ASSIGN_OR_RETURN(int64_t x, GetInteger(*l, w.Key(name)));
    if (x < lo || x > hi) {
      return w.Key(name).Invalid(std::to_string(x) + " is outside " + std::to_string(lo) + ".." +
                                 std::to_string(hi));
    }
    return Status::Ok();
  };
  if (id == "blosc") {
    BRICKFS_ASSIGN_OR_RETURN(const json* cn, Require(v, w, "cname"));
    BRICKFS_ASSIGN_OR_RETURN(std::string cname, GetString(*cn, w.Key("cname")));
    if (cname != "lz4" && cname != "lz4hc" && cname != "zstd" && cname != "blosclz" &&
        cname != "zlib") {
      return w.Key("cname").Unsupported("blosc compressor \"" + cname +
                                        "\" is not read (lz4, lz4hc, zstd, blosclz, zlib are)");
    }
    BRICKFS_RETURN_IF_ERROR(level("clevel", 0, 9));
    BRICKFS_RETURN_IF_ERROR(level("shuffle", -1, 2));  // -1: numcodecs' AUTOSHUFFLE
    BRICKFS_RETURN_IF_ERROR(level("blocksize", 0, INT32_MAX));
    codecs->bytes_codecs.push_back(BytesCodecKind::kBlosc);
  } else if (id == "gzip" || id == "zlib") {
    BRICKFS_RETURN_IF_ERROR(level("level", -1, 9));
    codecs->bytes_codecs.push_back(id == "gzip" ? BytesCodecKind::kGzip : BytesCodecKind::kZlib);
  } else if (id == "zstd") {
    BRICKFS_RETURN_IF_ERROR(level("level", -131072, 22));
    codecs->bytes_codecs.push_back(BytesCodecKind::kZstd);
  } else {
    return w.Key("id").Unsupported("compressor \"" + id +
                                   "\" is not read (blosc, gzip, zlib, zstd or null are)");
  }
  return Status::Ok();
}

}  // namespace

Result<ZarrArrayMeta> ParseZarrV2Array(std::string_view text, const std::string& file) {
  BRICKFS_ASSIGN_OR_RETURN(json doc, ParseJsonObject(text, file));
  const Where w{file, ""};
  ZarrArrayMeta m;
  m.zarr_format = 2;
  m.file = file;
  BRICKFS_ASSIGN_OR_RETURN(const json* fmt, Require(doc, w, "zarr_format"));
  if (*fmt != 2) return w.Key("zarr_format").Invalid("expected 2, found " + Shown(*fmt));
  BRICKFS_ASSIGN_OR_RETURN(const json* shape, Require(doc, w, "shape"));
  BRICKFS_ASSIGN_OR_RETURN(m.shape, ParseSides(*shape, w.Key("shape"), true, 0));
  BRICKFS_ASSIGN_OR_RETURN(const json* chunks, Require(doc, w, "chunks"));
  BRICKFS_ASSIGN_OR_RETURN(m.chunk, ParseSides(*chunks, w.Key("chunks"), false, m.rank()));
  BRICKFS_ASSIGN_OR_RETURN(const json* dt, Require(doc, w, "dtype"));
  BRICKFS_ASSIGN_OR_RETURN(auto dtype, ParseV2DType(*dt, w.Key("dtype")));
  m.dtype = dtype.first;
  m.codecs.big_endian = dtype.second && DTypeSize(m.dtype) > 1;
  BRICKFS_ASSIGN_OR_RETURN(const json* order, Require(doc, w, "order"));
  BRICKFS_ASSIGN_OR_RETURN(std::string order_s, GetString(*order, w.Key("order")));
  if (order_s == "F") {
    // Fortran order: the chunk is stored as the C-order array of reversed axes.
    std::vector<size_t> perm(m.rank());
    for (size_t i = 0; i < m.rank(); ++i) perm[i] = m.rank() - 1 - i;
    m.codecs.transposes.push_back(perm);
  } else if (order_s != "C") {
    return w.Key("order").Invalid("\"" + order_s + "\" is not a memory order (\"C\" or \"F\")");
  }
  BRICKFS_ASSIGN_OR_RETURN(const json* fill, Require(doc, w, "fill_value"));
  BRICKFS_ASSIGN_OR_RETURN(m.fill, ParseFill(*fill, m.dtype, w.Key("fill_value"), true));
  if (const json* filters = Find(doc, "filters"); filters && !filters->is_null()) {
    BRICKFS_RETURN_IF_ERROR(ExpectArray(*filters, w.Key("filters")));
    if (!filters->empty()) {
      return w.Key("filters").Unsupported("filters " + Shown(*filters) +
                                          " are not read (null or [] only)");
    }
  }
  BRICKFS_ASSIGN_OR_RETURN(const json* comp, Require(doc, w, "compressor"));
  BRICKFS_RETURN_IF_ERROR(ParseV2Compressor(*comp, w.Key("compressor"), &m.codecs));
  if (const json* sep = Find(doc, "dimension_separator"); sep && !sep->is_null()) {
    BRICKFS_ASSIGN_OR_RETURN(std::string s, GetString(*sep, w.Key("dimension_separator")));
    if (s != "." && s != "/") {
      return w.Key("dimension_separator").Invalid("\"" + s + "\" is not \".\" or \"/\"");
    }
    m.separator = s[0];
  }
  BRICKFS_RETURN_IF_ERROR(CheckLimits(m, w));
  return m;
}

// ---- Zarr v3 ----------------------------------------------------------------

namespace {

// {"name": ..., "configuration": {...}} -> name, configuration (an empty
// object when absent).
Status CodecParts(const json& c, const Where& w, std::string* name, json* config) {
  BRICKFS_RETURN_IF_ERROR(ExpectObject(c, w));
  BRICKFS_ASSIGN_OR_RETURN(const json* n, Require(c, w, "name"));
  BRICKFS_ASSIGN_OR_RETURN(*name, GetString(*n, w.Key("name")));
  *config = json::object();
  if (const json* cfg = Find(c, "configuration")) {
    BRICKFS_RETURN_IF_ERROR(ExpectObject(*cfg, w.Key("configuration")));
    *config = *cfg;
  }
  return Status::Ok();
}

Status NoConfigBeyond(const json& config, const Where& w,
                      std::initializer_list<std::string_view> known) {
  for (auto it = config.begin(); it != config.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok |= it.key() == k;
    if (!ok) return w.Key(it.key()).Invalid("unknown configuration field");
  }
  return Status::Ok();
}

Status ParseEndian(const json& config, const Where& w, DType t, bool* big) {
  const json* e = Find(config, "endian");
  *big = false;
  if (!e) {
    if (DTypeSize(t) > 1) return w.Invalid("missing field \"endian\" (required for " +
                                           std::string(DTypeName(t)) + ")");
    return Status::Ok();
  }
  BRICKFS_ASSIGN_OR_RETURN(std::string s, GetString(*e, w.Key("endian")));
  if (s != "little" && s != "big") {
    return w.Key("endian").Invalid("\"" + s + "\" is not \"little\" or \"big\"");
  }
  *big = s == "big" && DTypeSize(t) > 1;
  return Status::Ok();
}

Status IntInRange(const json& config, const Where& w, const char* name, int64_t lo, int64_t hi,
                  bool required) {
  const json* v = Find(config, name);
  if (!v) return required ? w.Invalid(std::string("missing field \"") + name + "\"") : Status::Ok();
  BRICKFS_ASSIGN_OR_RETURN(int64_t x, GetInteger(*v, w.Key(name)));
  if (x < lo || x > hi) {
    return w.Key(name).Invalid(std::to_string(x) + " is outside " + std::to_string(lo) + ".." +
                               std::to_string(hi));
  }
  return Status::Ok();
}

Status ParseBytesToBytes(const std::string& name, const json& config, const Where& w,
                         ChunkCodecs* out) {
  const Where cw = w.Key("configuration");
  if (name == "gzip") {
    BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(config, cw, {"level"}));
    BRICKFS_RETURN_IF_ERROR(IntInRange(config, cw, "level", 0, 9, true));
    out->bytes_codecs.push_back(BytesCodecKind::kGzip);
  } else if (name == "zstd") {
    BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(config, cw, {"level", "checksum"}));
    BRICKFS_RETURN_IF_ERROR(IntInRange(config, cw, "level", -131072, 22, true));
    if (const json* c = Find(config, "checksum"); c && !c->is_boolean()) {
      return cw.Key("checksum").Invalid("expected true or false, found " + Shown(*c));
    }
    out->bytes_codecs.push_back(BytesCodecKind::kZstd);
  } else if (name == "blosc") {
    BRICKFS_RETURN_IF_ERROR(
        NoConfigBeyond(config, cw, {"cname", "clevel", "shuffle", "typesize", "blocksize"}));
    BRICKFS_ASSIGN_OR_RETURN(const json* cn, Require(config, cw, "cname"));
    BRICKFS_ASSIGN_OR_RETURN(std::string cname, GetString(*cn, cw.Key("cname")));
    if (cname != "lz4" && cname != "lz4hc" && cname != "zstd" && cname != "blosclz" &&
        cname != "zlib") {
      return cw.Key("cname").Unsupported("blosc compressor \"" + cname +
                                         "\" is not read (lz4, lz4hc, zstd, blosclz, zlib are)");
    }
    BRICKFS_RETURN_IF_ERROR(IntInRange(config, cw, "clevel", 0, 9, true));
    BRICKFS_ASSIGN_OR_RETURN(const json* sh, Require(config, cw, "shuffle"));
    BRICKFS_ASSIGN_OR_RETURN(std::string shuffle, GetString(*sh, cw.Key("shuffle")));
    if (shuffle != "noshuffle" && shuffle != "shuffle" && shuffle != "bitshuffle") {
      return cw.Key("shuffle").Invalid("\"" + shuffle +
                                       "\" is not noshuffle, shuffle or bitshuffle");
    }
    BRICKFS_RETURN_IF_ERROR(IntInRange(config, cw, "typesize", 1, 255, false));
    BRICKFS_RETURN_IF_ERROR(IntInRange(config, cw, "blocksize", 0, INT32_MAX, false));
    out->bytes_codecs.push_back(BytesCodecKind::kBlosc);
  } else if (name == "crc32c") {
    BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(config, cw, {}));
    out->bytes_codecs.push_back(BytesCodecKind::kCrc32c);
  } else {
    return w.Key("name").Unsupported("codec \"" + name +
                                     "\" is not read (bytes, transpose, gzip, zstd, blosc, "
                                     "crc32c, sharding_indexed are)");
  }
  if (out->bytes_codecs.back() != BytesCodecKind::kCrc32c) {
    int compressors = 0;
    for (BytesCodecKind k : out->bytes_codecs) compressors += k != BytesCodecKind::kCrc32c;
    if (compressors > 1) {
      return w.Unsupported("a second compressor (\"" + name +
                           "\") in one codec chain is not read");
    }
  }
  return Status::Ok();
}

Result<std::vector<size_t>> ParseTransposeOrder(const json& config, const Where& w, size_t rank) {
  const Where cw = w.Key("configuration");
  BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(config, cw, {"order"}));
  BRICKFS_ASSIGN_OR_RETURN(const json* o, Require(config, cw, "order"));
  const Where ow = cw.Key("order");
  if (!o->is_array()) {
    return ow.Invalid("expected a permutation of the " + std::to_string(rank) +
                      " axes (an array of integers), found " + Shown(*o));
  }
  if (o->size() != rank) {
    return ow.Invalid(Shown(*o) + " has " + std::to_string(o->size()) +
                      " entries, the array has " + std::to_string(rank) + " dimensions");
  }
  std::vector<size_t> perm;
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < rank; ++i) {
    BRICKFS_ASSIGN_OR_RETURN(uint64_t a, GetUnsigned((*o)[i], ow.Index(i)));
    if (a >= rank || seen[a]) return ow.Invalid(Shown(*o) + " is not a permutation");
    seen[a] = true;
    perm.push_back(a);
  }
  return perm;
}

struct ParsedChain {
  ChunkCodecs codecs;
  std::optional<ShardingSpec> sharding;
};

Result<ParsedChain> ParseCodecChain(const json& list, const Where& w, DType t,
                                    const std::vector<uint64_t>& chunk, bool allow_sharding);

Result<ShardingSpec> ParseSharding(const json& config, const Where& w, DType t,
                                   const std::vector<uint64_t>& shard) {
  const Where cw = w.Key("configuration");
  BRICKFS_RETURN_IF_ERROR(
      NoConfigBeyond(config, cw, {"chunk_shape", "codecs", "index_codecs", "index_location"}));
  ShardingSpec s;
  BRICKFS_ASSIGN_OR_RETURN(const json* cs, Require(config, cw, "chunk_shape"));
  BRICKFS_ASSIGN_OR_RETURN(s.inner_chunk,
                           ParseSides(*cs, cw.Key("chunk_shape"), false, shard.size()));
  s.inner_count = 1;
  for (size_t i = 0; i < shard.size(); ++i) {
    if (shard[i] % s.inner_chunk[i] != 0) {
      return cw.Key("chunk_shape").Invalid(
          "inner chunk " + ListText(s.inner_chunk) + " does not divide the shard " +
          ListText(shard) + " (axis " + std::to_string(i) + ")");
    }
    s.inner_per_shard.push_back(shard[i] / s.inner_chunk[i]);
    auto n = MulAtMost(s.inner_count, s.inner_per_shard.back(), kMaxBlocksPerBrick);
    if (!n) {
      return cw.Key("chunk_shape").Unsupported(
          "shard " + ListText(shard) + " holds more than 2^20 inner chunks of " +
          ListText(s.inner_chunk) + " (brickfs's limit: a 16 MiB index)");
    }
    s.inner_count = *n;
  }
  BRICKFS_ASSIGN_OR_RETURN(const json* codecs, Require(config, cw, "codecs"));
  BRICKFS_ASSIGN_OR_RETURN(ParsedChain inner,
                           ParseCodecChain(*codecs, cw.Key("codecs"), t, s.inner_chunk, false));
  s.inner = std::move(inner.codecs);
  BRICKFS_ASSIGN_OR_RETURN(const json* ic, Require(config, cw, "index_codecs"));
  const Where iw = cw.Key("index_codecs");
  BRICKFS_RETURN_IF_ERROR(ExpectArray(*ic, iw));
  // The index is a uint64 array of shape inner_per_shard + [2]: bytes
  // (either endianness) and an optional crc32c are read.
  size_t i = 0;
  std::string name;
  json icfg;
  if (ic->empty()) return iw.Invalid("is empty (it needs an array-to-bytes codec)");
  BRICKFS_RETURN_IF_ERROR(CodecParts((*ic)[0], iw.Index(0), &name, &icfg));
  if (name != "bytes") {
    return iw.Index(0).Unsupported("index codec \"" + name +
                                   "\" is not read (bytes, then optionally crc32c)");
  }
  BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(icfg, iw.Index(0).Key("configuration"), {"endian"}));
  BRICKFS_RETURN_IF_ERROR(ParseEndian(icfg, iw.Index(0).Key("configuration"), DType::kFloat64,
                                      &s.index_big_endian));
  for (i = 1; i < ic->size(); ++i) {
    BRICKFS_RETURN_IF_ERROR(CodecParts((*ic)[i], iw.Index(i), &name, &icfg));
    if (name != "crc32c" || i != 1) {
      return iw.Index(i).Unsupported("index codec \"" + name +
                                     "\" is not read (bytes, then optionally crc32c)");
    }
    BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(icfg, iw.Index(i).Key("configuration"), {}));
    s.index_crc32c = true;
  }
  if (const json* loc = Find(config, "index_location")) {
    BRICKFS_ASSIGN_OR_RETURN(std::string l, GetString(*loc, cw.Key("index_location")));
    if (l != "start" && l != "end") {
      return cw.Key("index_location").Invalid("\"" + l + "\" is not \"start\" or \"end\"");
    }
    s.index_at_start = l == "start";
  }
  return s;
}

Result<ParsedChain> ParseCodecChain(const json& list, const Where& w, DType t,
                                    const std::vector<uint64_t>& chunk, bool allow_sharding) {
  BRICKFS_RETURN_IF_ERROR(ExpectArray(list, w));
  ParsedChain out;
  bool have_array_to_bytes = false;
  for (size_t i = 0; i < list.size(); ++i) {
    const Where cw = w.Index(i);
    std::string name;
    json config;
    BRICKFS_RETURN_IF_ERROR(CodecParts(list[i], cw, &name, &config));
    if (name == "transpose") {
      if (have_array_to_bytes) return cw.Invalid("transpose after the array-to-bytes codec");
      BRICKFS_ASSIGN_OR_RETURN(auto perm, ParseTransposeOrder(config, cw, chunk.size()));
      out.codecs.transposes.push_back(std::move(perm));
    } else if (name == "bytes" || name == "sharding_indexed") {
      if (have_array_to_bytes) return cw.Invalid("a second array-to-bytes codec (\"" + name + "\")");
      have_array_to_bytes = true;
      if (name == "bytes") {
        BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(config, cw.Key("configuration"), {"endian"}));
        BRICKFS_RETURN_IF_ERROR(
            ParseEndian(config, cw.Key("configuration"), t, &out.codecs.big_endian));
      } else {
        if (!allow_sharding) {
          return cw.Unsupported("sharding inside a shard is not read");
        }
        if (!out.codecs.transposes.empty()) {
          return cw.Unsupported("a transpose before sharding_indexed is not read");
        }
        BRICKFS_ASSIGN_OR_RETURN(ShardingSpec s, ParseSharding(config, cw, t, chunk));
        out.sharding = std::move(s);
      }
    } else if (!have_array_to_bytes &&
               (name == "gzip" || name == "zstd" || name == "blosc" || name == "crc32c")) {
      return cw.Invalid("bytes-to-bytes codec \"" + name +
                        "\" before the array-to-bytes codec (bytes or sharding_indexed)");
    } else {
      if (out.sharding) {
        return cw.Unsupported("codec \"" + name +
                              "\" after sharding_indexed (it would cover the whole shard) is not "
                              "read");
      }
      BRICKFS_RETURN_IF_ERROR(ParseBytesToBytes(name, config, cw, &out.codecs));
    }
  }
  if (!have_array_to_bytes) {
    return w.Invalid("has no array-to-bytes codec (bytes or sharding_indexed)");
  }
  return out;
}

// Fields of a v3 array that brickfs knows; others need must_understand false.
Status CheckV3Fields(const json& doc, const Where& w) {
  static const char* kKnown[] = {"zarr_format", "node_type",     "shape",
                                 "data_type",   "chunk_grid",    "chunk_key_encoding",
                                 "fill_value",  "codecs",        "attributes",
                                 "storage_transformers",         "dimension_names"};
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known |= it.key() == k;
    if (known) continue;
    const json* mu = Find(it.value(), "must_understand");
    if (mu && mu->is_boolean() && !mu->get<bool>()) continue;
    return w.Key(it.key()).Unsupported("unknown field (an extension brickfs does not read)");
  }
  return Status::Ok();
}

}  // namespace

Result<ZarrArrayMeta> ParseZarrV3Array(const json& doc, const std::string& file) {
  const Where w{file, ""};
  ZarrArrayMeta m;
  m.zarr_format = 3;
  m.file = file;
  BRICKFS_ASSIGN_OR_RETURN(const json* fmt, Require(doc, w, "zarr_format"));
  if (*fmt != 3) return w.Key("zarr_format").Invalid("expected 3, found " + Shown(*fmt));
  BRICKFS_ASSIGN_OR_RETURN(const json* nt, Require(doc, w, "node_type"));
  if (*nt != "array") return w.Key("node_type").Invalid("expected \"array\", found " + Shown(*nt));
  BRICKFS_RETURN_IF_ERROR(CheckV3Fields(doc, w));
  BRICKFS_ASSIGN_OR_RETURN(const json* shape, Require(doc, w, "shape"));
  BRICKFS_ASSIGN_OR_RETURN(m.shape, ParseSides(*shape, w.Key("shape"), true, 0));
  BRICKFS_ASSIGN_OR_RETURN(const json* dt, Require(doc, w, "data_type"));
  BRICKFS_ASSIGN_OR_RETURN(m.dtype, ParseV3DType(*dt, w.Key("data_type")));

  BRICKFS_ASSIGN_OR_RETURN(const json* grid, Require(doc, w, "chunk_grid"));
  {
    const Where gw = w.Key("chunk_grid");
    std::string name;
    json config;
    BRICKFS_RETURN_IF_ERROR(CodecParts(*grid, gw, &name, &config));
    if (name != "regular") {
      return gw.Key("name").Unsupported("chunk grid \"" + name + "\" is not read (regular is)");
    }
    BRICKFS_ASSIGN_OR_RETURN(const json* cs, Require(config, gw.Key("configuration"), "chunk_shape"));
    BRICKFS_ASSIGN_OR_RETURN(
        m.chunk, ParseSides(*cs, gw.Key("configuration").Key("chunk_shape"), false, m.rank()));
  }
  BRICKFS_ASSIGN_OR_RETURN(const json* cke, Require(doc, w, "chunk_key_encoding"));
  {
    const Where kw = w.Key("chunk_key_encoding");
    std::string name;
    json config;
    BRICKFS_RETURN_IF_ERROR(CodecParts(*cke, kw, &name, &config));
    if (name == "default") {
      m.default_key_encoding = true;
      m.separator = '/';
    } else if (name == "v2") {
      m.separator = '.';
    } else {
      return kw.Key("name").Unsupported("chunk key encoding \"" + name +
                                        "\" is not read (default and v2 are)");
    }
    BRICKFS_RETURN_IF_ERROR(NoConfigBeyond(config, kw.Key("configuration"), {"separator"}));
    if (const json* sep = Find(config, "separator")) {
      const Where sw = kw.Key("configuration").Key("separator");
      BRICKFS_ASSIGN_OR_RETURN(std::string s, GetString(*sep, sw));
      if (s != "." && s != "/") return sw.Invalid("\"" + s + "\" is not \".\" or \"/\"");
      m.separator = s[0];
    }
  }
  BRICKFS_ASSIGN_OR_RETURN(const json* fill, Require(doc, w, "fill_value"));
  BRICKFS_ASSIGN_OR_RETURN(m.fill, ParseFill(*fill, m.dtype, w.Key("fill_value"), false));
  BRICKFS_ASSIGN_OR_RETURN(const json* codecs, Require(doc, w, "codecs"));
  BRICKFS_ASSIGN_OR_RETURN(ParsedChain chain,
                           ParseCodecChain(*codecs, w.Key("codecs"), m.dtype, m.chunk, true));
  m.codecs = std::move(chain.codecs);
  m.sharding = std::move(chain.sharding);
  if (const json* st = Find(doc, "storage_transformers"); st && !st->is_null()) {
    BRICKFS_RETURN_IF_ERROR(ExpectArray(*st, w.Key("storage_transformers")));
    if (!st->empty()) {
      return w.Key("storage_transformers").Unsupported(Shown(*st) + " are not read");
    }
  }
  if (const json* dn = Find(doc, "dimension_names"); dn && !dn->is_null()) {
    const Where dw = w.Key("dimension_names");
    BRICKFS_RETURN_IF_ERROR(ExpectArray(*dn, dw));
    if (dn->size() != m.rank()) {
      return dw.Invalid("has " + std::to_string(dn->size()) + " names for " +
                        std::to_string(m.rank()) + " dimensions");
    }
    for (size_t i = 0; i < dn->size(); ++i) {
      if ((*dn)[i].is_null()) {
        m.dimension_names.emplace_back();
      } else {
        BRICKFS_ASSIGN_OR_RETURN(std::string n, GetString((*dn)[i], dw.Index(i)));
        m.dimension_names.push_back(std::move(n));
      }
    }
  }
  if (const json* attrs = Find(doc, "attributes")) {
    if (!attrs->is_object()) return w.Key("attributes").Invalid("expected an object, found " + Shown(*attrs));
    m.attributes = *attrs;
  }
  BRICKFS_RETURN_IF_ERROR(CheckLimits(m, w));
  return m;
}

}  // namespace brickfs
