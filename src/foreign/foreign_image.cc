#include "foreign/foreign_image.h"

#include <cmath>
#include <set>

#include "foreign/meta_json.h"
#include "store/storage.h"

namespace brickfs {

using nlohmann::json;

namespace {

struct Transform {
  std::vector<double> scale, translation;
};

// A list of coordinateTransformations: exactly one "scale" first, then at
// most one "translation" (OME-Zarr 0.4 and 0.5 alike).
Result<Transform> ParseTransforms(const json& list, const Where& w, size_t rank) {
  BRICKFS_RETURN_IF_ERROR(ExpectArray(list, w));
  if (list.empty() || list.size() > 2) {
    return w.Invalid("has " + std::to_string(list.size()) +
                     " entries; expected a scale, optionally followed by a translation");
  }
  Transform t;
  t.scale.assign(rank, 1.0);
  t.translation.assign(rank, 0.0);
  for (size_t i = 0; i < list.size(); ++i) {
    const Where tw = w.Index(i);
    BRICKFS_RETURN_IF_ERROR(ExpectObject(list[i], tw));
    BRICKFS_ASSIGN_OR_RETURN(const json* type_v, Require(list[i], tw, "type"));
    BRICKFS_ASSIGN_OR_RETURN(std::string type, GetString(*type_v, tw.Key("type")));
    const char* want = i == 0 ? "scale" : "translation";
    if (type != want) {
      return tw.Key("type").Invalid("\"" + type + "\" where \"" + want + "\" must be" +
                                    (i == 0 ? " (the first transformation is the scale)" : ""));
    }
    if (Find(list[i], "path")) {
      return tw.Key("path").Unsupported(type + " stored in a binary array is not read");
    }
    BRICKFS_ASSIGN_OR_RETURN(const json* values, Require(list[i], tw, type));
    const Where vw = tw.Key(type);
    BRICKFS_RETURN_IF_ERROR(ExpectArray(*values, vw));
    if (values->size() != rank) {
      return vw.Invalid("has " + std::to_string(values->size()) + " values for " +
                        std::to_string(rank) + " axes");
    }
    std::vector<double>& out = i == 0 ? t.scale : t.translation;
    for (size_t a = 0; a < rank; ++a) {
      BRICKFS_ASSIGN_OR_RETURN(double x, GetNumber((*values)[a], vw.Index(a)));
      if (!std::isfinite(x) || (i == 0 && x <= 0)) {
        return vw.Index(a).Invalid(i == 0 ? "a scale must be a finite number > 0, found " + Shown((*values)[a])
                                          : "a translation must be finite, found " + Shown((*values)[a]));
      }
      out[a] = x;
    }
  }
  return t;
}

// An axis name becomes part of directory names (t0/, c1/): printable, no '/'.
Status CheckAxisName(const std::string& n, const Where& w) {
  if (n.empty() || n.size() > 64) {
    return w.Invalid("axis name \"" + n + "\" must have 1 to 64 characters");
  }
  for (unsigned char ch : n) {
    if (ch < 0x20 || ch == 0x7f || ch == '/') {
      return w.Invalid("axis name " + Shown(json(n)) + " has a '/' or a control character");
    }
  }
  if (n == "." || n == "..") return w.Invalid("axis name \"" + n + "\" is not allowed");
  return Status::Ok();
}

}  // namespace

Status ForeignImage::ParseMultiscales(Storage* storage, const std::string& key, const json& all,
                                      const std::string& file, const std::string& field,
                                      const json* omero) {
  const Where root{file, field};
  BRICKFS_RETURN_IF_ERROR(ExpectArray(all, root));
  if (all.empty()) return root.Invalid("is empty");
  if (all.size() > 1) {
    notes_.push_back(file + ": " + std::to_string(all.size()) +
                     " multiscales; the first (the default) is served");
  }
  const json& ms = all[0];
  const Where w = root.Index(0);
  BRICKFS_RETURN_IF_ERROR(ExpectObject(ms, w));
  if (ome_version_ == "0.4") {
    BRICKFS_ASSIGN_OR_RETURN(const json* ver, Require(ms, w, "version"));
    BRICKFS_ASSIGN_OR_RETURN(std::string v, GetString(*ver, w.Key("version")));
    if (v == "0.1" || v == "0.2" || v == "0.3") {
      return w.Key("version").Unsupported("OME-Zarr " + v + " is not read (0.4 and 0.5 are)");
    }
    if (v != "0.4") {
      return w.Key("version").Invalid("\"" + v + "\" in .zattrs of Zarr v2: expected \"0.4\" "
                                      "(OME-Zarr 0.5 lives in zarr.json of Zarr v3)");
    }
  }
  if (const json* n = Find(ms, "name"); n && n->is_string()) name_ = n->get<std::string>();

  // Axes.
  BRICKFS_ASSIGN_OR_RETURN(const json* axes, Require(ms, w, "axes"));
  const Where aw = w.Key("axes");
  BRICKFS_RETURN_IF_ERROR(ExpectArray(*axes, aw));
  if (axes->size() < 2 || axes->size() > 5) {
    return aw.Invalid("has " + std::to_string(axes->size()) + " axes; OME-Zarr allows 2 to 5");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < axes->size(); ++i) {
    const Where iw = aw.Index(i);
    const json& a = (*axes)[i];
    BRICKFS_RETURN_IF_ERROR(ExpectObject(a, iw));
    OmeAxis axis;
    BRICKFS_ASSIGN_OR_RETURN(const json* nv, Require(a, iw, "name"));
    BRICKFS_ASSIGN_OR_RETURN(axis.name, GetString(*nv, iw.Key("name")));
    BRICKFS_RETURN_IF_ERROR(CheckAxisName(axis.name, iw.Key("name")));
    if (!names.insert(axis.name).second) {
      return iw.Key("name").Invalid("axis name \"" + axis.name + "\" appears twice");
    }
    if (const json* t = Find(a, "type"); t && !t->is_null()) {
      BRICKFS_ASSIGN_OR_RETURN(axis.type, GetString(*t, iw.Key("type")));
    }
    if (const json* u = Find(a, "unit"); u && !u->is_null()) {
      BRICKFS_ASSIGN_OR_RETURN(axis.unit, GetString(*u, iw.Key("unit")));
    }
    axes_.push_back(std::move(axis));
  }
  for (size_t i = 0; i < axes_.size(); ++i) {
    (axes_[i].type == "space" ? spatial_ : others_).push_back(i);
  }
  if (spatial_.size() < 2 || spatial_.size() > 3) {
    return aw.Invalid(std::to_string(spatial_.size()) +
                      " axes of type \"space\"; OME-Zarr requires 2 or 3");
  }
  if (spatial_.front() != axes_.size() - spatial_.size()) {
    return aw.Invalid("the axes of type \"space\" must come last (found \"" +
                      axes_[others_.back()].name + "\" after \"" + axes_[spatial_.front()].name +
                      "\")");
  }
  size_t times = 0, channels = 0;
  for (size_t i : others_) {
    if (axes_[i].type == "time") {
      ++times;
      if (i != 0) return aw.Index(i).Invalid("the axis of type \"time\" must come first");
    }
    channels += axes_[i].type == "channel";
  }
  if (times > 1 || channels > 1) {
    return aw.Invalid("more than one axis of type \"" + std::string(times > 1 ? "time" : "channel") +
                      "\"");
  }
  const size_t rank = axes_.size();

  // The multiscale's own transformation, applied after each dataset's.
  Transform global{std::vector<double>(rank, 1.0), std::vector<double>(rank, 0.0)};
  if (const json* ct = Find(ms, "coordinateTransformations"); ct && !ct->is_null()) {
    BRICKFS_ASSIGN_OR_RETURN(global, ParseTransforms(*ct, w.Key("coordinateTransformations"), rank));
  }

  // Datasets.
  BRICKFS_ASSIGN_OR_RETURN(const json* ds, Require(ms, w, "datasets"));
  const Where dw = w.Key("datasets");
  BRICKFS_RETURN_IF_ERROR(ExpectArray(*ds, dw));
  if (ds->empty()) return dw.Invalid("is empty (an image needs at least one level)");
  for (size_t i = 0; i < ds->size(); ++i) {
    const Where iw = dw.Index(i);
    BRICKFS_RETURN_IF_ERROR(ExpectObject((*ds)[i], iw));
    ForeignLevel level;
    BRICKFS_ASSIGN_OR_RETURN(const json* pv, Require((*ds)[i], iw, "path"));
    BRICKFS_ASSIGN_OR_RETURN(level.path, GetString(*pv, iw.Key("path")));
    if (const std::string bad = KeyProblem(level.path); !bad.empty()) {
      return iw.Key("path").Invalid("\"" + level.path + "\" is not a path inside the store: " + bad);
    }
    BRICKFS_ASSIGN_OR_RETURN(const json* ct, Require((*ds)[i], iw, "coordinateTransformations"));
    BRICKFS_ASSIGN_OR_RETURN(Transform t,
                             ParseTransforms(*ct, iw.Key("coordinateTransformations"), rank));
    level.scale.resize(rank);
    level.translation.resize(rank);
    for (size_t a = 0; a < rank; ++a) {
      level.scale[a] = t.scale[a] * global.scale[a];
      level.translation[a] = t.translation[a] * global.scale[a] + global.translation[a];
    }
    const std::string array_key = JoinKey(key, level.path);
    Result<std::unique_ptr<ForeignArray>> array = ForeignArray::Open(storage, array_key);
    if (!array.ok()) {
      return array.status().WithContext(iw.Prefix() + "dataset \"" + level.path + "\"");
    }
    const ZarrArrayMeta& m = (*array)->meta();
    if (m.zarr_format != zarr_format_) {
      return Status::InvalidArgument(m.file + ": a Zarr v" + std::to_string(m.zarr_format) +
                                     " array in a Zarr v" + std::to_string(zarr_format_) +
                                     " group (" + file + ")");
    }
    if (m.rank() != rank) {
      return Status::InvalidArgument(m.file + ": the array has " + std::to_string(m.rank()) +
                                     " dimensions but " + file + " names " + std::to_string(rank) +
                                     " axes");
    }
    for (size_t a = 0; a < rank; ++a) {
      if (m.shape[a] == 0) {
        return Status::InvalidArgument(m.file + ": axis \"" + axes_[a].name +
                                       "\" has size 0 (an image needs every side >= 1)");
      }
      if (!m.dimension_names.empty() && !m.dimension_names[a].empty() &&
          m.dimension_names[a] != axes_[a].name) {
        return Status::InvalidArgument(m.file + ": dimension_names[" + std::to_string(a) + "] is \"" +
                                       m.dimension_names[a] + "\" but " + file + " names axis " +
                                       std::to_string(a) + " \"" + axes_[a].name + "\"");
      }
    }
    level.array = std::move(*array);
    levels_.push_back(std::move(level));
  }

  // Channel labels from omero, when there is one per channel.
  if (omero && omero->is_object() && channels == 1) {
    const json* chans = Find(*omero, "channels");
    size_t c_axis = 0;
    for (size_t i : others_) c_axis = axes_[i].type == "channel" ? i : c_axis;
    const uint64_t n = levels_[0].array->shape()[c_axis];
    if (chans && chans->is_array() && chans->size() == n) {
      std::vector<std::string> labels;
      for (const json& c : *chans) {
        const json* l = Find(c, "label");
        labels.push_back(l && l->is_string() ? l->get<std::string>() : "");
      }
      channel_names_ = std::move(labels);
    } else if (chans) {
      notes_.push_back(file + ": omero channels (" +
                       std::to_string(chans->is_array() ? chans->size() : 0) +
                       ") do not match the " + std::to_string(n) + " channels; labels not used");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<ForeignImage>> ForeignImage::Open(Storage* storage,
                                                         const std::string& root_key) {
  std::unique_ptr<ForeignImage> img(new ForeignImage());
  img->location_ = storage->Locate(root_key);
  const std::string v3_key = JoinKey(root_key, "zarr.json");
  Result<json> v3 = ReadJsonObject(storage, v3_key);
  if (v3.ok()) {
    const std::string file = storage->Locate(v3_key);
    const Where w{file, ""};
    const json& doc = *v3;
    BRICKFS_ASSIGN_OR_RETURN(const json* fmt, Require(doc, w, "zarr_format"));
    if (*fmt != 3) return w.Key("zarr_format").Invalid("expected 3, found " + Shown(*fmt));
    BRICKFS_ASSIGN_OR_RETURN(const json* nt, Require(doc, w, "node_type"));
    if (*nt == "array") {
      return w.Key("node_type").Unsupported(
          "the store is a bare Zarr array; brickfs reads OME-Zarr images (a group with "
          "attributes.ome.multiscales)");
    }
    if (*nt != "group") return w.Key("node_type").Invalid("expected \"group\", found " + Shown(*nt));
    img->zarr_format_ = 3;
    const json* attrs = Find(doc, "attributes");
    const json* ome = attrs ? Find(*attrs, "ome") : nullptr;
    if (!ome) {
      if (attrs && Find(*attrs, "multiscales")) {
        return w.Key("attributes").Unsupported(
            "\"multiscales\" outside \"ome\" (OME-Zarr 0.4 metadata in a Zarr v3 group) is not "
            "read: OME-Zarr 0.5 puts it in attributes.ome");
      }
      return w.Invalid("no attributes.ome: not an OME-Zarr 0.5 image");
    }
    const Where ow = w.Key("attributes").Key("ome");
    BRICKFS_RETURN_IF_ERROR(ExpectObject(*ome, ow));
    BRICKFS_ASSIGN_OR_RETURN(const json* ver, Require(*ome, ow, "version"));
    BRICKFS_ASSIGN_OR_RETURN(std::string v, GetString(*ver, ow.Key("version")));
    if (v != "0.5") {
      return ow.Key("version").Unsupported("OME-Zarr \"" + v +
                                           "\" in a Zarr v3 group is not read (0.5 is)");
    }
    img->ome_version_ = "0.5";
    BRICKFS_ASSIGN_OR_RETURN(const json* ms, Require(*ome, ow, "multiscales"));
    BRICKFS_RETURN_IF_ERROR(img->ParseMultiscales(storage, root_key, *ms, file,
                                                  ow.Key("multiscales").field, Find(*ome, "omero")));
    return img;
  }
  if (v3.status().code() != Status::Code::kNotFound) return v3.status();

  // Zarr v2: .zgroup + .zattrs.
  const std::string group_key = JoinKey(root_key, ".zgroup");
  Result<json> group = ReadJsonObject(storage, group_key);
  if (!group.ok()) {
    if (group.status().code() != Status::Code::kNotFound) return group.status();
    if (storage->Size(JoinKey(root_key, ".zarray")).ok()) {
      return Status::Unsupported(storage->Locate(JoinKey(root_key, ".zarray")) +
                                 ": the store is a bare Zarr array; brickfs reads OME-Zarr images "
                                 "(a group with multiscales metadata)");
    }
    return Status::NotFound(img->location_ +
                            ": not a Zarr store (no zarr.json, no .zgroup)");
  }
  {
    const std::string file = storage->Locate(group_key);
    const Where w{file, ""};
    BRICKFS_ASSIGN_OR_RETURN(const json* fmt, Require(*group, w, "zarr_format"));
    if (*fmt != 2) return w.Key("zarr_format").Invalid("expected 2, found " + Shown(*fmt));
  }
  img->zarr_format_ = 2;
  const std::string attrs_key = JoinKey(root_key, ".zattrs");
  Result<json> attrs = ReadJsonObject(storage, attrs_key);
  if (!attrs.ok()) {
    if (attrs.status().code() == Status::Code::kNotFound) {
      return Status::InvalidArgument(storage->Locate(attrs_key) +
                                     ": does not exist: a Zarr v2 group without attributes is not "
                                     "an OME-Zarr image");
    }
    return attrs.status();
  }
  const std::string file = storage->Locate(attrs_key);
  const Where w{file, ""};
  const json* ms = Find(*attrs, "multiscales");
  if (!ms) {
    const json* layout = Find(*attrs, "bioformats2raw.layout");
    if (layout && *layout == 3 && root_key.find('/') == std::string::npos) {
      // The image is series 0 (bioformats2raw writes one group per series).
      const std::string series = JoinKey(root_key, "0");
      BRICKFS_ASSIGN_OR_RETURN(std::unique_ptr<ForeignImage> inner, Open(storage, series));
      inner->notes_.push_back(file + ": bioformats2raw layout; series 0 is served");
      return inner;
    }
    return w.Invalid("no \"multiscales\": not an OME-Zarr image");
  }
  img->ome_version_ = "0.4";
  BRICKFS_RETURN_IF_ERROR(img->ParseMultiscales(storage, root_key, *ms, file, "\"multiscales\"",
                                                Find(*attrs, "omero")));
  return img;
}

}  // namespace brickfs
