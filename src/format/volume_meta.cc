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

Json ShapeJson(const Shape3& s) { return Json(Json::Array{Json(s[0]), Json(s[1]), Json(s[2])}); }

Json BytesCodec() {
  return Json::MakeObject().Set("name", "bytes").Set(
      "configuration", Json::MakeObject().Set("endian", "little"));
}

Json NamedCodec(const char* name) { return Json::MakeObject().Set("name", name); }

Result<Shape3> ParseShape(const Json* v, const std::string& what, const std::string& where) {
  if (!v || !v->is_array() || v->as_array().size() != 3) {
    return Status::Corruption(where + ": " + what + " must be an array of 3 integers");
  }
  Shape3 s;
  for (int i = 0; i < 3; ++i) {
    const Json& e = v->as_array()[i];
    if (!e.is_uint() || e.as_uint() > (uint64_t{1} << 40)) {
      return Status::Corruption(where + ": " + what + " has a bad dimension");
    }
    s[i] = e.as_uint();
  }
  return s;
}

bool IsCodec(const Json& c, const char* name) {
  const Json* n = c.Get("name");
  return n && n->is_string() && n->as_string() == name;
}

Json Vec3Json(const std::array<double, 3>& v) {
  return Json(Json::Array{Json(v[0]), Json(v[1]), Json(v[2])});
}

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
  return Json::MakeObject()
      .Set("description", description)
      .Set("method", "brickfs")
      .Set("version", BRICKFS_VERSION);
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
  Json brickfs_attrs = Json::MakeObject();
  brickfs_attrs.Set("format_version", Json(int64_t{BRICKFS_FORMAT_VERSION}));
  brickfs_attrs.Set("writer", "brickfs " BRICKFS_VERSION);
  brickfs_attrs.Set("finalized", finalized);
  if (session != 0) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(session));
    brickfs_attrs.Set("session", hex);
  }
  brickfs_attrs.Set("fixed_shape", fixed_shape);
  Json ranges = Json::MakeArray();
  for (const auto& [a, b] : present) ranges.Push(Json(Json::Array{Json(a), Json(b)}));
  brickfs_attrs.Set("slices_present", std::move(ranges));
  if (level > 0) {
    brickfs_attrs.Set("level", level);
  } else if (HasPyramidSettings(*this)) {
    brickfs_attrs.Set("num_levels", num_levels);
    brickfs_attrs.Set("voxel_size", Vec3Json(voxel_size));
    brickfs_attrs.Set("unit", unit);
    brickfs_attrs.Set("downsample_method", downsample_method);
  }

  Json zstd = Json::MakeObject().Set("name", "zstd").Set(
      "configuration", Json::MakeObject().Set("level", zstd_level).Set("checksum", false));
  Json shard_cfg = Json::MakeObject();
  shard_cfg.Set("chunk_shape", ShapeJson(geo.block));
  shard_cfg.Set("codecs", Json(Json::Array{BytesCodec(), zstd, NamedCodec("crc32c")}));
  shard_cfg.Set("index_codecs", Json(Json::Array{BytesCodec(), NamedCodec("crc32c")}));
  shard_cfg.Set("index_location", "end");

  Json doc = Json::MakeObject();
  doc.Set("zarr_format", 3);
  doc.Set("node_type", "array");
  doc.Set("shape", ShapeJson(geo.shape));
  doc.Set("data_type", std::string(DTypeName(geo.dtype)));
  doc.Set("chunk_grid", Json::MakeObject().Set("name", "regular").Set(
                            "configuration", Json::MakeObject().Set("chunk_shape", ShapeJson(geo.brick))));
  doc.Set("chunk_key_encoding", Json::MakeObject().Set("name", "default").Set(
                                    "configuration", Json::MakeObject().Set("separator", "/")));
  doc.Set("fill_value", 0);
  doc.Set("codecs", Json(Json::Array{Json::MakeObject().Set("name", "sharding_indexed").Set(
                        "configuration", std::move(shard_cfg))}));
  doc.Set("dimension_names", Json(Json::Array{Json("z"), Json("y"), Json("x")}));
  doc.Set("attributes", Json::MakeObject().Set("brickfs", std::move(brickfs_attrs)));
  return doc.Dump(2) + "\n";
}

std::string VolumeMeta::GroupJson(const std::string& name) const {
  Json axes = Json::MakeArray();
  for (const char* a : {"z", "y", "x"}) {
    Json axis = Json::MakeObject().Set("name", a).Set("type", "space");
    if (!unit.empty()) axis.Set("unit", unit);
    axes.Push(std::move(axis));
  }
  const int levels = std::clamp(num_levels, 1, kMaxLevels);
  Json datasets = Json::MakeArray();
  for (int l = 0; l < levels; ++l) {
    const double f = std::ldexp(1.0, l);  // 2^l, exact
    std::array<double, 3> scale, shift;
    for (int a = 0; a < 3; ++a) {
      scale[a] = voxel_size[a] * f;
      shift[a] = voxel_size[a] * (f - 1) / 2;  // voxel centres; 0 at level 0
    }
    Json transforms = Json::MakeArray();
    transforms.Push(Json::MakeObject().Set("type", "scale").Set("scale", Vec3Json(scale)));
    if (l > 0) {
      transforms.Push(
          Json::MakeObject().Set("type", "translation").Set("translation", Vec3Json(shift)));
    }
    datasets.Push(Json::MakeObject()
                      .Set("path", std::to_string(l))
                      .Set("coordinateTransformations", std::move(transforms)));
  }
  Json multiscale = Json::MakeObject();
  multiscale.Set("name", name);
  multiscale.Set("axes", std::move(axes));
  multiscale.Set("datasets", std::move(datasets));
  if (levels > 1) {
    multiscale.Set("type", downsample_method);
    multiscale.Set("metadata", DownsampleMetadata(downsample_method));
  }
  Json ome = Json::MakeObject().Set("version", "0.5").Set("multiscales", Json(Json::Array{multiscale}));
  Json doc = Json::MakeObject();
  doc.Set("zarr_format", 3);
  doc.Set("node_type", "group");
  doc.Set("attributes", Json::MakeObject().Set("ome", std::move(ome)));
  return doc.Dump(2) + "\n";
}

Status CheckGroupJson(const std::string& text, const std::string& where) {
  BRICKFS_ASSIGN_OR_RETURN(Json doc, Json::Parse(text));
  const Json* fmt = doc.Get("zarr_format");
  const Json* type = doc.Get("node_type");
  if (!fmt || !fmt->is_uint() || fmt->as_uint() != 3) {
    return Status::Unsupported(where + ": not a Zarr v3 document (zarr_format is not 3)");
  }
  if (!type || !type->is_string() || type->as_string() != "group") {
    return Status::Unsupported(where + ": node_type is not \"group\"");
  }
  return Status::Ok();
}

std::string BrickfsGroupProblem(const std::string& text) {
  auto doc = Json::Parse(text);
  if (!doc.ok()) return "is not valid JSON (" + doc.status().message() + ")";
  const Json* fmt = doc->Get("zarr_format");
  if (!fmt || !fmt->is_uint() || fmt->as_uint() != 3) {
    return "is not a Zarr v3 document (zarr_format is not 3)";
  }
  const Json* type = doc->Get("node_type");
  if (!type || !type->is_string() || type->as_string() != "group") {
    return "is not a group (node_type is not \"group\")";
  }
  const Json* attrs = doc->Get("attributes");
  const Json* ome = attrs && attrs->is_object() ? attrs->Get("ome") : nullptr;
  const Json* ms = ome && ome->is_object() ? ome->Get("multiscales") : nullptr;
  if (!ms || !ms->is_array() || ms->as_array().empty()) {
    return "is not a brickfs group (attributes.ome.multiscales is missing)";
  }
  return "";
}

Result<VolumeMeta> VolumeMeta::FromArrayJson(const std::string& text, const std::string& where) {
  auto parsed = Json::Parse(text);
  if (!parsed.ok()) return parsed.status().WithContext(where);
  const Json& doc = *parsed;
  const Json* fmt = doc.Get("zarr_format");
  if (!fmt || !fmt->is_uint() || fmt->as_uint() != 3) {
    return Status::Unsupported(where + ": not a Zarr v3 array (zarr_format is not 3)");
  }
  const Json* node = doc.Get("node_type");
  if (!node || !node->is_string() || node->as_string() != "array") {
    return Status::Corruption(where + ": node_type is not \"array\"");
  }
  VolumeMeta m;
  BRICKFS_ASSIGN_OR_RETURN(m.geo.shape, ParseShape(doc.Get("shape"), "shape", where));
  BRICKFS_ASSIGN_OR_RETURN(std::string dtype_name, JsonString(doc, "data_type", where));
  auto dtype = ParseDType(dtype_name);
  if (!dtype) return Status::Unsupported(where + ": data_type \"" + dtype_name + "\" is not supported");
  m.geo.dtype = *dtype;

  const Json* grid = doc.Get("chunk_grid");
  const Json* grid_name = grid ? grid->Get("name") : nullptr;
  if (!grid_name || !grid_name->is_string() || grid_name->as_string() != "regular") {
    return Status::Unsupported(where + ": chunk_grid must be \"regular\"");
  }
  const Json* grid_cfg = grid->Get("configuration");
  BRICKFS_ASSIGN_OR_RETURN(m.geo.brick, ParseShape(grid_cfg ? grid_cfg->Get("chunk_shape") : nullptr,
                                                   "chunk_grid chunk_shape", where));
  const Json* fill = doc.Get("fill_value");
  if (!fill || !fill->is_number() || fill->as_double() != 0) {
    return Status::Unsupported(where + ": fill_value must be 0");
  }
  const Json* key_enc = doc.Get("chunk_key_encoding");
  const Json* key_cfg = key_enc ? key_enc->Get("configuration") : nullptr;
  const Json* sep = key_cfg ? key_cfg->Get("separator") : nullptr;
  if (!key_enc || !IsCodec(*key_enc, "default") || (sep && (!sep->is_string() || sep->as_string() != "/"))) {
    return Status::Unsupported(where + ": chunk_key_encoding must be \"default\" with separator \"/\"");
  }

  const Json* codecs = doc.Get("codecs");
  if (!codecs || !codecs->is_array() || codecs->as_array().size() != 1 ||
      !IsCodec(codecs->as_array()[0], "sharding_indexed")) {
    return Status::Unsupported(where + ": codecs must be a single sharding_indexed codec");
  }
  const Json* cfg = codecs->as_array()[0].Get("configuration");
  if (!cfg) return Status::Corruption(where + ": sharding_indexed has no configuration");
  BRICKFS_ASSIGN_OR_RETURN(m.geo.block, ParseShape(cfg->Get("chunk_shape"), "sharding chunk_shape", where));
  const Json* inner = cfg->Get("codecs");
  if (!inner || !inner->is_array() || inner->as_array().size() != 3 ||
      !IsCodec(inner->as_array()[0], "bytes") || !IsCodec(inner->as_array()[1], "zstd") ||
      !IsCodec(inner->as_array()[2], "crc32c")) {
    return Status::Unsupported(where + ": inner codecs must be [bytes, zstd, crc32c]");
  }
  const Json* zcfg = inner->as_array()[1].Get("configuration");
  const Json* level = zcfg ? zcfg->Get("level") : nullptr;
  if (level && level->is_number()) m.zstd_level = static_cast<int>(level->as_int());
  const Json* index_codecs = cfg->Get("index_codecs");
  if (!index_codecs || !index_codecs->is_array() || index_codecs->as_array().size() != 2 ||
      !IsCodec(index_codecs->as_array()[0], "bytes") || !IsCodec(index_codecs->as_array()[1], "crc32c")) {
    return Status::Unsupported(where + ": index_codecs must be [bytes, crc32c]");
  }
  const Json* loc = cfg->Get("index_location");
  if (loc && (!loc->is_string() || loc->as_string() != "end")) {
    return Status::Unsupported(where + ": index_location must be \"end\"");
  }
  std::string bad = m.geo.Validate();
  if (!bad.empty()) return Status::Corruption(where + ": " + bad);

  const Json* attrs = doc.Get("attributes");
  const Json* b = attrs ? attrs->Get("brickfs") : nullptr;
  if (b && b->is_object()) {
    if (const Json* v = b->Get("format_version"); v && v->is_uint()) m.format_version = v->as_uint();
    if (const Json* v = b->Get("finalized"); v && v->is_bool()) m.finalized = v->as_bool();
    if (const Json* v = b->Get("fixed_shape"); v && v->is_bool()) m.fixed_shape = v->as_bool();
    if (const Json* v = b->Get("session")) {
      const bool hex = v->is_string() && v->as_string().size() == 16 &&
                       v->as_string().find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex) {
        return Status::Corruption(where + ": attributes.brickfs.session must be 16 hex digits");
      }
      m.session = std::strtoull(v->as_string().c_str(), nullptr, 16);
    }
    if (const Json* v = b->Get("slices_present"); v && v->is_array()) {
      uint64_t next = 0;
      for (const Json& r : v->as_array()) {
        if (!r.is_array() || r.as_array().size() != 2 || !r.as_array()[0].is_uint() ||
            !r.as_array()[1].is_uint()) {
          return Status::Corruption(where + ": slices_present entries must be [first, last]");
        }
        uint64_t a = r.as_array()[0].as_uint(), e = r.as_array()[1].as_uint();
        if (a > e || a < next || e >= m.geo.shape[0]) {
          return Status::Corruption(where + ": slices_present range " + std::to_string(a) + "-" +
                                    std::to_string(e) + " is out of order or outside the shape");
        }
        m.present.emplace_back(a, e);
        next = e + 1;
      }
    }
    const std::string attr = where + ": attributes.brickfs.";
    if (const Json* v = b->Get("level")) {
      if (!v->is_uint() || v->as_uint() >= uint64_t{kMaxLevels}) {
        return Status::Corruption(attr + "level must be an integer in [0, " +
                                  std::to_string(kMaxLevels - 1) + "]");
      }
      m.level = static_cast<int>(v->as_uint());
    }
    if (const Json* v = b->Get("num_levels")) {
      if (!v->is_uint() || v->as_uint() < 1 || v->as_uint() > uint64_t{kMaxLevels}) {
        return Status::Corruption(attr + "num_levels must be an integer in [1, " +
                                  std::to_string(kMaxLevels) + "]");
      }
      m.num_levels = static_cast<int>(v->as_uint());
    }
    if (const Json* v = b->Get("voxel_size")) {
      if (!v->is_array() || v->as_array().size() != 3) {
        return Status::Corruption(attr + "voxel_size must be an array of 3 numbers");
      }
      for (int a = 0; a < 3; ++a) {
        const Json& e = v->as_array()[a];
        if (!e.is_number() || !std::isfinite(e.as_double()) || e.as_double() <= 0) {
          return Status::Corruption(attr + "voxel_size[" + std::to_string(a) +
                                    "] must be a finite number > 0");
        }
        m.voxel_size[a] = e.as_double();
      }
    }
    if (const Json* v = b->Get("unit")) {
      if (!v->is_string() || v->as_string().size() > 64) {
        return Status::Corruption(attr + "unit must be a string of at most 64 bytes");
      }
      m.unit = v->as_string();
    }
    if (const Json* v = b->Get("downsample_method")) {
      if (!v->is_string()) {
        return Status::Corruption(attr + "downsample_method must be a string");
      }
      if (!IsKnownMethod(v->as_string())) {
        return Status::Unsupported(where + ": downsample_method \"" + v->as_string() +
                                   "\" is not supported (mean, mode)");
      }
      m.downsample_method = v->as_string();
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
