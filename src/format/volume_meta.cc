#include "format/volume_meta.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "brickfs/version.h"
#include "format/json.h"

namespace brickfs {

ZRanges RangesFromBitmap(const std::vector<bool>& present) {
  ZRanges r;
  for (uint64_t z = 0; z < present.size(); ++z) {
    if (!present[z]) continue;
    if (!r.empty() && r.back().second + 1 == z) {
      r.back().second = z;
    } else {
      r.emplace_back(z, z);
    }
  }
  return r;
}

ZRanges MissingRanges(const std::vector<bool>& present, uint64_t z_end) {
  std::vector<bool> missing(z_end);
  for (uint64_t z = 0; z < z_end; ++z) missing[z] = z >= present.size() || !present[z];
  return RangesFromBitmap(missing);
}

IntervalSet SetFromRanges(const ZRanges& r) {
  IntervalSet s;
  for (const auto& [a, b] : r) {
    if (b != UINT64_MAX) s.Insert(a, b + 1);
  }
  return s;
}

ZRanges RangesFromSet(const IntervalSet& s) {
  ZRanges r;
  for (const auto& [a, b] : s) r.emplace_back(a, b - 1);
  return r;
}

ZRanges MissingRanges(const IntervalSet& present, uint64_t z_end) {
  ZRanges r;
  for (const auto& [a, b] : present.Gaps(0, z_end)) r.emplace_back(a, b - 1);
  return r;
}

std::string RangesToString(const ZRanges& r) {
  if (r.empty()) return "none";
  std::string s;
  for (const auto& [a, b] : r) {
    if (!s.empty()) s += ", ";
    s += std::to_string(a);
    if (b != a) s += "-" + std::to_string(b);
  }
  return s;
}

Shape3 LevelShape(const Shape3& level0, int level) {
  if (level <= 0) return level0;
  if (level >= 64) level = 63;
  const uint64_t f = uint64_t{1} << level;
  Shape3 s;
  for (int a = 0; a < 3; ++a) s[a] = level0[a] / f + (level0[a] % f != 0);  // no overflow
  return s;
}

bool IsOmeSpaceUnit(const std::string& unit) {
  static constexpr const char* kUnits[] = {
      "angstrom",   "attometer",  "centimeter", "decimeter",  "exameter",  "femtometer", "foot",
      "gigameter",  "hectometer", "inch",       "kilometer",  "megameter", "meter",      "micrometer",
      "mile",       "millimeter", "nanometer",  "parsec",     "petameter", "picometer",  "terameter",
      "yard",       "yoctometer", "yottameter", "zeptometer", "zettameter"};
  for (const char* u : kUnits) {
    if (unit == u) return true;
  }
  return false;
}

namespace {

// Level-`level` slices whose whole window of level-0 slices is in `r`; z0 is
// the level-0 depth (the last window is clipped to it).
ZRanges LevelRanges(const ZRanges& r, uint64_t z0, int level) {
  ZRanges out;
  if (z0 == 0) return out;
  const uint64_t f = uint64_t{1} << level;
  const uint64_t nz = LevelShape({z0, 1, 1}, level)[0];
  for (auto [a, b] : r) {
    if (a >= z0) continue;
    b = std::min(b, z0 - 1);
    const uint64_t first = a / f + (a % f != 0);
    uint64_t end;  // one past the last level slice fully covered
    if (b == z0 - 1) {
      end = nz;
    } else {
      end = (b + 1) / f;
    }
    if (first < end) out.emplace_back(first, end - 1);
  }
  return out;
}

Json BytesCodec() { return Json{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}}; }

Json NamedCodec(const char* name) { return Json{{"name", name}}; }

// The array of JSON array `v` when it has `n` elements, else nullptr.
const Json* ArrayOf(const Json* v, size_t n) { return v && v->is_array() && v->size() == n ? v : nullptr; }

Result<Shape3> ParseShape(const Json* v, const std::string& what, const std::string& where) {
  if (!ArrayOf(v, 3)) return Status::Corruption(where + ": " + what + " must be an array of 3 integers");
  Shape3 s;
  for (int i = 0; i < 3; ++i) {
    const Json& e = (*v)[i];
    if (!JsonIsUint(e) || e.get<uint64_t>() > (uint64_t{1} << 40)) {
      return Status::Corruption(where + ": " + what + " has a bad dimension");
    }
    s[i] = e.get<uint64_t>();
  }
  return s;
}

// True when `v` is the string `s`.
bool IsString(const Json* v, const char* s) { return v && v->is_string() && v->get_ref<const std::string&>() == s; }

bool IsCodec(const Json& c, const char* name) { return IsString(JsonField(c, "name"), name); }

// True when `v` is the integer 3 (a Zarr v3 zarr_format).
bool IsZarrV3(const Json* v) { return v && JsonIsUint(*v) && v->get<uint64_t>() == 3; }

bool IsKnownMethod(const std::string& m) { return m == "mean" || m == "mode"; }

// True when the pyramid settings differ from the defaults, i.e. when the
// level-0 array must record them.
bool HasPyramidSettings(const VolumeMeta& m) {
  return m.num_levels != 1 || m.voxel_size != std::array<double, 3>{1, 1, 1} || !m.unit.empty() ||
         m.downsample_method != "mean";
}

// The OME-Zarr "metadata" of the downsampling, for readers and people.
Json DownsampleMetadata(const std::string& method) {
  const char* description =
      method == "mode"
          ? "2x2x2 mode: the most frequent value of each window of up to 8 voxels "
            "(clipped at odd edges); ties go to the smallest value"
          : "2x2x2 mean of each window of up to 8 voxels (clipped at odd edges): unsigned "
            "integers round half up, int16 rounds half away from zero, float32 plain mean";
  return Json{{"description", description}, {"method", "brickfs"}, {"version", BRICKFS_VERSION}};
}

}  // namespace

VolumeMeta VolumeMeta::LevelMeta(int l) const {
  VolumeMeta m = *this;
  if (l <= 0) return m;
  if (l >= kMaxLevels) l = kMaxLevels - 1;
  m.level = l;
  m.geo.shape = LevelShape(geo.shape, l);
  m.present = LevelRanges(present, geo.shape[0], l);
  return m;
}

std::string VolumeMeta::ArrayJson() const {
  Json brickfs_attrs = Json::object();
  brickfs_attrs["format_version"] = int64_t{BRICKFS_FORMAT_VERSION};
  brickfs_attrs["writer"] = "brickfs " BRICKFS_VERSION;
  brickfs_attrs["finalized"] = finalized;
  if (session != 0) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(session));
    brickfs_attrs["session"] = hex;
  }
  brickfs_attrs["fixed_shape"] = fixed_shape;
  brickfs_attrs["slices_present"] = present;
  if (level > 0) {
    brickfs_attrs["level"] = level;
  } else if (HasPyramidSettings(*this)) {
    brickfs_attrs["num_levels"] = num_levels;
    brickfs_attrs["voxel_size"] = voxel_size;
    brickfs_attrs["unit"] = unit;
    brickfs_attrs["downsample_method"] = downsample_method;
  }

  Json zstd{{"name", "zstd"}, {"configuration", {{"level", zstd_level}, {"checksum", false}}}};
  Json shard_cfg = Json::object();
  shard_cfg["chunk_shape"] = geo.block;
  shard_cfg["codecs"] = Json::array({BytesCodec(), std::move(zstd), NamedCodec("crc32c")});
  shard_cfg["index_codecs"] = Json::array({BytesCodec(), NamedCodec("crc32c")});
  shard_cfg["index_location"] = "end";

  Json doc = Json::object();
  doc["zarr_format"] = 3;
  doc["node_type"] = "array";
  doc["shape"] = geo.shape;
  doc["data_type"] = std::string(DTypeName(geo.dtype));
  doc["chunk_grid"] = Json{{"name", "regular"}, {"configuration", {{"chunk_shape", Json(geo.brick)}}}};
  doc["chunk_key_encoding"] = Json{{"name", "default"}, {"configuration", {{"separator", "/"}}}};
  doc["fill_value"] = 0;
  doc["codecs"] = Json::array({Json{{"name", "sharding_indexed"}, {"configuration", std::move(shard_cfg)}}});
  doc["dimension_names"] = Json::array({"z", "y", "x"});
  doc["attributes"] = Json{{"brickfs", std::move(brickfs_attrs)}};
  return DumpJson(doc, 2) + "\n";
}

std::string VolumeMeta::GroupJson(const std::string& name) const {
  Json axes = Json::array();
  for (const char* a : {"z", "y", "x"}) {
    Json axis{{"name", a}, {"type", "space"}};
    if (!unit.empty()) axis["unit"] = unit;
    axes.push_back(std::move(axis));
  }
  const int levels = std::clamp(num_levels, 1, kMaxLevels);
  Json datasets = Json::array();
  for (int l = 0; l < levels; ++l) {
    const double f = std::ldexp(1.0, l);  // 2^l, exact
    std::array<double, 3> scale, shift;
    for (int a = 0; a < 3; ++a) {
      scale[a] = voxel_size[a] * f;
      shift[a] = voxel_size[a] * (f - 1) / 2;  // voxel centres; 0 at level 0
    }
    Json transforms = Json::array({Json{{"type", "scale"}, {"scale", Json(scale)}}});
    if (l > 0) transforms.push_back(Json{{"type", "translation"}, {"translation", Json(shift)}});
    datasets.push_back(Json{{"path", std::to_string(l)}, {"coordinateTransformations", std::move(transforms)}});
  }
  Json multiscale = Json::object();
  multiscale["name"] = name;
  multiscale["axes"] = std::move(axes);
  multiscale["datasets"] = std::move(datasets);
  if (levels > 1) {
    multiscale["type"] = downsample_method;
    multiscale["metadata"] = DownsampleMetadata(downsample_method);
  }
  Json ome{{"version", "0.5"}, {"multiscales", Json::array({std::move(multiscale)})}};
  Json doc = Json::object();
  doc["zarr_format"] = 3;
  doc["node_type"] = "group";
  doc["attributes"] = Json{{"ome", std::move(ome)}};
  return DumpJson(doc, 2) + "\n";
}

Status CheckGroupJson(const std::string& text, const std::string& where) {
  BRICKFS_ASSIGN_OR_RETURN(Json doc, ParseJson(text, where));
  if (!IsZarrV3(JsonField(doc, "zarr_format"))) {
    return Status::Unsupported(where + ": not a Zarr v3 document (zarr_format is not 3)");
  }
  if (!IsString(JsonField(doc, "node_type"), "group")) {
    return Status::Unsupported(where + ": node_type is not \"group\"");
  }
  return Status::Ok();
}

std::string BrickfsGroupProblem(const std::string& text) {
  auto doc = ParseJson(text, "zarr.json");
  if (!doc.ok()) return "is not valid JSON (" + doc.status().message() + ")";
  if (!IsZarrV3(JsonField(*doc, "zarr_format"))) return "is not a Zarr v3 document (zarr_format is not 3)";
  if (!IsString(JsonField(*doc, "node_type"), "group")) {
    return "is not a group (node_type is not \"group\")";
  }
  const Json* attrs = JsonField(*doc, "attributes");
  const Json* ome = attrs ? JsonField(*attrs, "ome") : nullptr;
  const Json* ms = ome ? JsonField(*ome, "multiscales") : nullptr;
  if (!ms || !ms->is_array() || ms->empty()) {
    return "is not a brickfs group (attributes.ome.multiscales is missing)";
  }
  return "";
}

Result<VolumeMeta> VolumeMeta::FromArrayJson(const std::string& text, const std::string& where) {
  BRICKFS_ASSIGN_OR_RETURN(const Json doc, ParseJson(text, where));
  if (!IsZarrV3(JsonField(doc, "zarr_format"))) {
    return Status::Unsupported(where + ": not a Zarr v3 array (zarr_format is not 3)");
  }
  if (!IsString(JsonField(doc, "node_type"), "array")) {
    return Status::Corruption(where + ": node_type is not \"array\"");
  }
  VolumeMeta m;
  BRICKFS_ASSIGN_OR_RETURN(m.geo.shape, ParseShape(JsonField(doc, "shape"), "shape", where));
  BRICKFS_ASSIGN_OR_RETURN(std::string dtype_name, JsonString(doc, "data_type", where));
  auto dtype = ParseDType(dtype_name);
  if (!dtype) return Status::Unsupported(where + ": data_type \"" + dtype_name + "\" is not supported");
  m.geo.dtype = *dtype;

  const Json* grid = JsonField(doc, "chunk_grid");
  if (!grid || !IsCodec(*grid, "regular")) {
    return Status::Unsupported(where + ": chunk_grid must be \"regular\"");
  }
  const Json* grid_cfg = JsonField(*grid, "configuration");
  BRICKFS_ASSIGN_OR_RETURN(m.geo.brick, ParseShape(grid_cfg ? JsonField(*grid_cfg, "chunk_shape") : nullptr,
                                                   "chunk_grid chunk_shape", where));
  const Json* fill = JsonField(doc, "fill_value");
  if (!fill || !fill->is_number() || fill->get<double>() != 0) {
    return Status::Unsupported(where + ": fill_value must be 0");
  }
  const Json* key_enc = JsonField(doc, "chunk_key_encoding");
  const Json* key_cfg = key_enc ? JsonField(*key_enc, "configuration") : nullptr;
  const Json* sep = key_cfg ? JsonField(*key_cfg, "separator") : nullptr;
  if (!key_enc || !IsCodec(*key_enc, "default") || (sep && !IsString(sep, "/"))) {
    return Status::Unsupported(where + ": chunk_key_encoding must be \"default\" with separator \"/\"");
  }

  const Json* codecs = ArrayOf(JsonField(doc, "codecs"), 1);
  if (!codecs || !IsCodec((*codecs)[0], "sharding_indexed")) {
    return Status::Unsupported(where + ": codecs must be a single sharding_indexed codec");
  }
  const Json* cfg = JsonField((*codecs)[0], "configuration");
  if (!cfg) return Status::Corruption(where + ": sharding_indexed has no configuration");
  BRICKFS_ASSIGN_OR_RETURN(m.geo.block,
                           ParseShape(JsonField(*cfg, "chunk_shape"), "sharding chunk_shape", where));
  const Json* inner = ArrayOf(JsonField(*cfg, "codecs"), 3);
  if (!inner || !IsCodec((*inner)[0], "bytes") || !IsCodec((*inner)[1], "zstd") ||
      !IsCodec((*inner)[2], "crc32c")) {
    return Status::Unsupported(where + ": inner codecs must be [bytes, zstd, crc32c]");
  }
  const Json* zcfg = JsonField((*inner)[1], "configuration");
  const Json* level = zcfg ? JsonField(*zcfg, "level") : nullptr;
  // zstd's levels are ZSTD_minCLevel() (-131072) .. 22; others keep the default.
  if (level && level->is_number() && level->get<double>() >= -131072 && level->get<double>() <= 22) {
    m.zstd_level = static_cast<int>(level->get<double>());
  }
  const Json* index_codecs = ArrayOf(JsonField(*cfg, "index_codecs"), 2);
  if (!index_codecs || !IsCodec((*index_codecs)[0], "bytes") || !IsCodec((*index_codecs)[1], "crc32c")) {
    return Status::Unsupported(where + ": index_codecs must be [bytes, crc32c]");
  }
  const Json* loc = JsonField(*cfg, "index_location");
  if (loc && !IsString(loc, "end")) {
    return Status::Unsupported(where + ": index_location must be \"end\"");
  }
  std::string bad = m.geo.Validate();
  if (!bad.empty()) return Status::Corruption(where + ": " + bad);

  const Json* attrs = JsonField(doc, "attributes");
  const Json* b = attrs ? JsonField(*attrs, "brickfs") : nullptr;
  if (b && b->is_object()) {
    if (const Json* v = JsonField(*b, "format_version"); v && JsonIsUint(*v)) {
      m.format_version = v->get<uint64_t>();
    }
    if (const Json* v = JsonField(*b, "finalized"); v && v->is_boolean()) m.finalized = v->get<bool>();
    if (const Json* v = JsonField(*b, "fixed_shape"); v && v->is_boolean()) m.fixed_shape = v->get<bool>();
    if (const Json* v = JsonField(*b, "session")) {
      const bool hex = v->is_string() && v->get_ref<const std::string&>().size() == 16 &&
                       v->get_ref<const std::string&>().find_first_not_of("0123456789abcdef") ==
                           std::string::npos;
      if (!hex) {
        return Status::Corruption(where + ": attributes.brickfs.session must be 16 hex digits");
      }
      m.session = std::strtoull(v->get_ref<const std::string&>().c_str(), nullptr, 16);
    }
    if (const Json* v = JsonField(*b, "slices_present"); v && v->is_array()) {
      uint64_t next = 0;
      for (const Json& r : *v) {
        if (!ArrayOf(&r, 2) || !JsonIsUint(r[0]) || !JsonIsUint(r[1])) {
          return Status::Corruption(where + ": slices_present entries must be [first, last]");
        }
        const uint64_t a = r[0].get<uint64_t>(), e = r[1].get<uint64_t>();
        if (a > e || a < next || e >= m.geo.shape[0]) {
          return Status::Corruption(where + ": slices_present range " + std::to_string(a) + "-" +
                                    std::to_string(e) + " is out of order or outside the shape");
        }
        m.present.emplace_back(a, e);
        next = e + 1;
      }
    }
    const std::string attr = where + ": attributes.brickfs.";
    if (const Json* v = JsonField(*b, "level")) {
      if (!JsonIsUint(*v) || v->get<uint64_t>() >= uint64_t{kMaxLevels}) {
        return Status::Corruption(attr + "level must be an integer in [0, " +
                                  std::to_string(kMaxLevels - 1) + "]");
      }
      m.level = static_cast<int>(v->get<uint64_t>());
    }
    if (const Json* v = JsonField(*b, "num_levels")) {
      if (!JsonIsUint(*v) || v->get<uint64_t>() < 1 || v->get<uint64_t>() > uint64_t{kMaxLevels}) {
        return Status::Corruption(attr + "num_levels must be an integer in [1, " +
                                  std::to_string(kMaxLevels) + "]");
      }
      m.num_levels = static_cast<int>(v->get<uint64_t>());
    }
    if (const Json* v = JsonField(*b, "voxel_size")) {
      if (!ArrayOf(v, 3)) return Status::Corruption(attr + "voxel_size must be an array of 3 numbers");
      for (int a = 0; a < 3; ++a) {
        const Json& e = (*v)[a];
        if (!e.is_number() || !std::isfinite(e.get<double>()) || e.get<double>() <= 0) {
          return Status::Corruption(attr + "voxel_size[" + std::to_string(a) +
                                    "] must be a finite number > 0");
        }
        m.voxel_size[a] = e.get<double>();
      }
    }
    if (const Json* v = JsonField(*b, "unit")) {
      if (!v->is_string() || v->get_ref<const std::string&>().size() > 64) {
        return Status::Corruption(attr + "unit must be a string of at most 64 bytes");
      }
      m.unit = v->get<std::string>();
    }
    if (const Json* v = JsonField(*b, "downsample_method")) {
      if (!v->is_string()) {
        return Status::Corruption(attr + "downsample_method must be a string");
      }
      if (!IsKnownMethod(v->get<std::string>())) {
        return Status::Unsupported(where + ": downsample_method \"" + v->get<std::string>() +
                                   "\" is not supported (mean, mode)");
      }
      m.downsample_method = v->get<std::string>();
    }
  } else {
    // A store written by another tool: every slice counts as present.
    if (m.geo.shape[0] > 0) m.present.emplace_back(0, m.geo.shape[0] - 1);
    m.finalized = true;
  }
  if (m.format_version > BRICKFS_FORMAT_VERSION) {
    return Status::Unsupported(where + ": written by a newer brickfs (format " +
                               std::to_string(m.format_version) + "; this brickfs reads up to " +
                               std::to_string(BRICKFS_FORMAT_VERSION) + ")");
  }
  return m;
}

}  // namespace brickfs
