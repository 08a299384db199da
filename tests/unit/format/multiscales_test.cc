// Tests for the multiresolution metadata of VolumeMeta: the OME-Zarr 0.5
// multiscales in GroupJson (checked by a validator written here from the 0.5
// specification text and its image.schema / strict_image.schema), the
// level-L array documents from LevelMeta, and the pyramid settings kept in the
// level-0 array's attributes.brickfs.
//
// The validator follows https://ngff.openmicroscopy.org/0.5/ ("axes",
// "coordinateTransformations" and "multiscales" sections) and the JSON schemas
// 0.5/schemas/image.schema and strict_image.schema of github.com/ome/ngff,
// which were read to write it; they are not copied here (W3C document
// license). Where the prose is stricter than the schema (2-3 space axes, axis
// order, exactly one scale first, vector lengths equal to the axes, paths
// from highest to lowest resolution) the prose is checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "format/json.h"
#include "format/volume_meta.h"

namespace brickfs {
namespace {

// --- a hand-written OME-Zarr 0.5 image validator --------------------------

const std::set<std::string> kSpaceUnits = {
    "angstrom",  "attometer",  "centimeter", "decimeter",  "exameter",  "femtometer", "foot",
    "gigameter", "hectometer", "inch",       "kilometer",  "megameter", "meter",      "micrometer",
    "mile",      "millimeter", "nanometer",  "parsec",     "petameter", "picometer",  "terameter",
    "yard",      "yoctometer", "yottameter", "zeptometer", "zettameter"};
const std::set<std::string> kTimeUnits = {
    "attosecond",  "centisecond", "day",         "decisecond",  "exasecond",  "femtosecond",
    "gigasecond",  "hectosecond", "hour",        "kilosecond",  "megasecond", "microsecond",
    "millisecond", "minute",      "nanosecond",  "petasecond",  "picosecond", "second",
    "terasecond",  "yoctosecond", "yottasecond", "zeptosecond", "zettasecond"};

class OmeValidator {
 public:
  // strict: also what strict_image.schema requires of every multiscale
  // ("name", "type" and "metadata").
  explicit OmeValidator(bool strict) : strict_(strict) {}

  // Problems found in a group zarr.json document; empty when it is a valid
  // OME-Zarr 0.5 image.
  std::vector<std::string> Check(const Json& doc) {
    problems_.clear();
    const Json* fmt = JsonField(doc, "zarr_format");
    if (!fmt || !JsonIsUint(*fmt) || fmt->get<uint64_t>() != 3) Bad("zarr_format is not 3");
    const Json* node = JsonField(doc, "node_type");
    if (!node || !node->is_string() || node->get<std::string>() != "group") Bad("node_type is not group");
    const Json* attrs = JsonField(doc, "attributes");
    const Json* ome = attrs ? JsonField(*attrs, "ome") : nullptr;
    if (!ome || !ome->is_object()) {
      Bad("attributes.ome is not an object");
      return problems_;
    }
    const Json* version = JsonField(*ome, "version");
    if (!version || !version->is_string() || version->get<std::string>() != "0.5") {
      Bad("attributes.ome.version is not the string \"0.5\"");
    }
    const Json* ms = JsonField(*ome, "multiscales");
    if (!ms || !ms->is_array() || (*ms).empty()) {
      Bad("attributes.ome.multiscales is not a non-empty array");
      return problems_;
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < (*ms).size(); ++i) {
      const Json& m = (*ms)[i];
      if (!seen.insert(DumpJson(m)).second) Bad("multiscales items are not unique");
      CheckMultiscale(m, "multiscales[" + std::to_string(i) + "]");
    }
    return problems_;
  }

 private:
  void Bad(const std::string& p) { problems_.push_back(p); }

  void CheckMultiscale(const Json& m, const std::string& at) {
    if (!m.is_object()) {
      Bad(at + " is not an object");
      return;
    }
    // 0.5 keeps the version in attributes.ome only (0.4 had it here).
    if (JsonField(m, "version")) Bad(at + ".version is 0.4 style; 0.5 has ome.version");
    if (const Json* n = JsonField(m, "name"); n ? !n->is_string() : strict_)
      Bad(at + ".name is not a string");
    if (const Json* t = JsonField(m, "type"); t ? !t->is_string() : strict_)
      Bad(at + ".type is not a string");
    if (const Json* md = JsonField(m, "metadata"); md ? !md->is_object() : strict_) {
      Bad(at + ".metadata is not an object");
    }
    const size_t naxes = CheckAxes(JsonField(m, "axes"), at + ".axes");
    const Json* ds = JsonField(m, "datasets");
    if (!ds || !ds->is_array() || (*ds).empty()) {
      Bad(at + ".datasets is not a non-empty array");
      return;
    }
    std::set<std::string> paths;
    std::vector<std::vector<double>> scales;
    for (size_t i = 0; i < (*ds).size(); ++i) {
      const Json& d = (*ds)[i];
      const std::string dat = at + ".datasets[" + std::to_string(i) + "]";
      if (!d.is_object()) {
        Bad(dat + " is not an object");
        continue;
      }
      const Json* p = JsonField(d, "path");
      if (!p || !p->is_string() || p->get<std::string>().empty()) {
        Bad(dat + ".path is not a non-empty string");
      } else if (!paths.insert(p->get<std::string>()).second) {
        Bad(dat + ".path is repeated");
      }
      scales.push_back(CheckTransforms(JsonField(d, "coordinateTransformations"), naxes,
                                       dat + ".coordinateTransformations"));
    }
    if (const Json* ct = JsonField(m, "coordinateTransformations")) {
      CheckTransforms(ct, naxes, at + ".coordinateTransformations");
    }
    // "ordered from largest (i.e. highest resolution) to smallest": voxels
    // never shrink from one level to the next, and do grow along some axis.
    for (size_t l = 1; l < scales.size(); ++l) {
      if (scales[l].size() != scales[l - 1].size() || scales[l].empty()) continue;
      bool grows = false;
      for (size_t a = 0; a < scales[l].size(); ++a) {
        if (scales[l][a] < scales[l - 1][a])
          Bad(at + ": level " + std::to_string(l) + " scale shrinks");
        grows = grows || scales[l][a] > scales[l - 1][a];
      }
      if (!grows) Bad(at + ": level " + std::to_string(l) + " is not coarser than the one before");
    }
  }

  // Returns the number of axes (0 when unusable).
  size_t CheckAxes(const Json* axes, const std::string& at) {
    if (!axes || !axes->is_array()) {
      Bad(at + " is not an array");
      return 0;
    }
    const auto& a = (*axes);
    if (a.size() < 2 || a.size() > 5)
      Bad(at + " has " + std::to_string(a.size()) + " entries, not 2 to 5");
    std::set<std::string> names;
    int space = 0, time = 0, other = 0;
    int rank_before = 0;  // time 0, channel/custom 1, space 2: never decreasing
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string ax = at + "[" + std::to_string(i) + "]";
      if (!a[i].is_object()) {
        Bad(ax + " is not an object");
        continue;
      }
      const Json* name = JsonField(a[i], "name");
      if (!name || !name->is_string()) {
        Bad(ax + ".name is not a string");
      } else if (!names.insert(name->get<std::string>()).second) {
        Bad(ax + ".name \"" + name->get<std::string>() + "\" is not unique");
      }
      const Json* type = JsonField(a[i], "type");
      if (type && !type->is_string()) Bad(ax + ".type is not a string");
      const std::string t = type && type->is_string() ? type->get<std::string>() : "";
      int rank = 1;
      if (t == "space") {
        ++space;
        rank = 2;
      } else if (t == "time") {
        ++time;
        rank = 0;
      } else {
        ++other;  // "channel", custom or no type
      }
      if (rank < rank_before) Bad(ax + " (" + t + ") comes after an axis that must follow it");
      rank_before = std::max(rank_before, rank);
      if (const Json* u = JsonField(a[i], "unit")) {
        if (!u->is_string()) {
          Bad(ax + ".unit is not a string");
        } else if (t == "space" && !kSpaceUnits.count(u->get<std::string>())) {
          Bad(ax + ".unit \"" + u->get<std::string>() + "\" is not a UDUNITS-2 length unit");
        } else if (t == "time" && !kTimeUnits.count(u->get<std::string>())) {
          Bad(ax + ".unit \"" + u->get<std::string>() + "\" is not a UDUNITS-2 time unit");
        }
      }
    }
    if (space < 2 || space > 3)
      Bad(at + " has " + std::to_string(space) + " space axes, not 2 or 3");
    if (time > 1) Bad(at + " has more than one time axis");
    if (other > 1) Bad(at + " has more than one channel or custom axis");
    return a.size();
  }

  // Returns the scale vector ({} when unusable).
  std::vector<double> CheckTransforms(const Json* ct, size_t naxes, const std::string& at) {
    std::vector<double> scale;
    if (!ct || !ct->is_array() || (*ct).empty()) {
      Bad(at + " is not a non-empty array");
      return scale;
    }
    int nscale = 0, ntranslation = 0;
    for (size_t i = 0; i < (*ct).size(); ++i) {
      const Json& t = (*ct)[i];
      const std::string tat = at + "[" + std::to_string(i) + "]";
      const Json* type = t.is_object() ? JsonField(t, "type") : nullptr;
      if (!type || !type->is_string()) {
        Bad(tat + ".type is not a string");
        continue;
      }
      const std::string& kind = type->get<std::string>();
      if (kind != "scale" && kind != "translation") {
        Bad(tat + ".type \"" + kind + "\" is not scale or translation");
        continue;
      }
      if (kind == "scale") {
        ++nscale;
        if (i != 0) Bad(tat + ": the scale is not the first transformation");
      } else {
        ++ntranslation;
        if (nscale == 0) Bad(tat + ": translation before the scale");
      }
      const Json* v = JsonField(t, kind);
      if (!v || !v->is_array()) {
        Bad(tat + "." + kind + " is not an array (a \"path\" is not what brickfs writes)");
        continue;
      }
      if ((*v).size() < 2 || (*v).size() != naxes) {
        Bad(tat + "." + kind + " has " + std::to_string((*v).size()) + " numbers for " +
            std::to_string(naxes) + " axes");
      }
      std::vector<double> nums;
      for (const Json& e : (*v)) {
        if (!e.is_number()) Bad(tat + "." + kind + " holds a non-number");
        nums.push_back(e.is_number() ? e.get<double>() : 0);
      }
      if (kind == "scale") scale = nums;
    }
    if (nscale != 1)
      Bad(at + " has " + std::to_string(nscale) + " scale transformations, not exactly 1");
    if (ntranslation > 1) Bad(at + " has more than one translation");
    return scale;
  }

  bool strict_;
  std::vector<std::string> problems_;
};

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& p : v) s += "\n  " + p;
  return s;
}

Json MustParse(const std::string& text) {
  auto r = ParseJson(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Json();
}

VolumeMeta SampleMeta() {
  VolumeMeta m;
  m.geo.shape = {13, 19, 23};
  m.geo.block = {4, 8, 8};
  m.geo.brick = {8, 16, 16};
  m.geo.dtype = DType::kUint16;
  m.zstd_level = 5;
  m.fixed_shape = true;
  m.finalized = true;
  m.present = {{0, 3}, {5, 5}, {7, 12}};
  return m;
}

VolumeMeta Pyramid(int levels) {
  VolumeMeta m = SampleMeta();
  m.num_levels = levels;
  m.voxel_size = {2.0, 0.5, 0.25};
  m.unit = "micrometer";
  return m;
}

const Json& Multiscale(const Json& group) {
  return (group.at("attributes").at("ome").at("multiscales"))[0];
}

std::vector<double> Numbers(const Json& arr) {
  std::vector<double> v;
  for (const Json& e : arr) v.push_back(e.get<double>());
  return v;
}

// --- GroupJson ------------------------------------------------------------

TEST(MultiscalesTest, DefaultGroupIsValidAndExactlyTheSingleLevelDocument) {
  const std::string text = SampleMeta().GroupJson("brain");
  EXPECT_TRUE(OmeValidator(false).Check(MustParse(text)).empty())
      << Join(OmeValidator(false).Check(MustParse(text)));
  // The document brickfs wrote before pyramids existed, byte for byte.
  EXPECT_EQ(text, R"({
  "zarr_format": 3,
  "node_type": "group",
  "attributes": {
    "ome": {
      "version": "0.5",
      "multiscales": [
        {
          "name": "brain",
          "axes": [
            {
              "name": "z",
              "type": "space"
            },
            {
              "name": "y",
              "type": "space"
            },
            {
              "name": "x",
              "type": "space"
            }
          ],
          "datasets": [
            {
              "path": "0",
              "coordinateTransformations": [
                {
                  "type": "scale",
                  "scale": [1, 1, 1]
                }
              ]
            }
          ]
        }
      ]
    }
  }
}
)");
}

TEST(MultiscalesTest, OneLevelWithVoxelSizeAndUnitIsValid) {
  VolumeMeta m = Pyramid(1);
  const Json doc = MustParse(m.GroupJson("brain"));
  const auto problems = OmeValidator(false).Check(doc);
  EXPECT_TRUE(problems.empty()) << Join(problems);
  const Json& ms = Multiscale(doc);
  for (const Json& axis : (ms.at("axes"))) {
    EXPECT_EQ(axis.at("unit").get<std::string>(), "micrometer");
    EXPECT_EQ(axis.at("type").get<std::string>(), "space");
  }
  const auto& ds = ms.at("datasets");
  ASSERT_EQ(ds.size(), 1u);
  const auto& ct = (ds[0].at("coordinateTransformations"));
  ASSERT_EQ(ct.size(), 1u);  // no translation at level 0
  EXPECT_EQ(Numbers(ct[0].at("scale")), (std::vector<double>{2.0, 0.5, 0.25}));
  EXPECT_EQ(JsonField(ms, "type"), nullptr);  // nothing was downsampled
}

TEST(MultiscalesTest, FourLevelsAreStrictlyValidWithScaleAndVoxelCentreTranslation) {
  const Json doc = MustParse(Pyramid(4).GroupJson("brain"));
  const auto problems = OmeValidator(true).Check(doc);
  EXPECT_TRUE(problems.empty()) << Join(problems);
  const Json& ms = Multiscale(doc);
  EXPECT_EQ(ms.at("name").get<std::string>(), "brain");
  EXPECT_EQ(ms.at("type").get<std::string>(), "mean");
  ASSERT_TRUE(ms.at("metadata").is_object());
  EXPECT_EQ(ms.at("metadata").at("method").get<std::string>(), "brickfs");
  const auto& ds = ms.at("datasets");
  ASSERT_EQ(ds.size(), 4u);
  const std::vector<double> v = {2.0, 0.5, 0.25};
  for (int l = 0; l < 4; ++l) {
    EXPECT_EQ(ds[l].at("path").get<std::string>(), std::to_string(l));
    const auto& ct = (ds[l].at("coordinateTransformations"));
    ASSERT_EQ(ct.size(), l == 0 ? 1u : 2u) << "level " << l;
    EXPECT_EQ(ct[0].at("type").get<std::string>(), "scale");
    const double f = 1 << l;
    EXPECT_EQ(Numbers(ct[0].at("scale")), (std::vector<double>{v[0] * f, v[1] * f, v[2] * f}));
    if (l > 0) {
      // Level-l voxel 0 covers level-0 voxels 0..2^l-1; its centre is at (2^l-1)/2.
      EXPECT_EQ(ct[1].at("type").get<std::string>(), "translation");
      EXPECT_EQ(Numbers(ct[1].at("translation")),
                (std::vector<double>{v[0] * (f - 1) / 2, v[1] * (f - 1) / 2, v[2] * (f - 1) / 2}));
    }
  }
  // Spelled out for level 3: scale 8 voxels, centre 3.5 voxels.
  EXPECT_EQ(Numbers((ds[3].at("coordinateTransformations"))[0].at("scale")),
            (std::vector<double>{16.0, 4.0, 2.0}));
  EXPECT_EQ(Numbers((ds[3].at("coordinateTransformations"))[1].at("translation")),
            (std::vector<double>{7.0, 1.75, 0.875}));
  EXPECT_TRUE(CheckGroupJson(Pyramid(4).GroupJson("brain"), "g").ok());
}

TEST(MultiscalesTest, ModePyramidNamesItsDownsamplingType) {
  VolumeMeta m = Pyramid(3);
  m.downsample_method = "mode";
  const Json doc = MustParse(m.GroupJson("labels"));
  EXPECT_TRUE(OmeValidator(true).Check(doc).empty()) << Join(OmeValidator(true).Check(doc));
  EXPECT_EQ(Multiscale(doc).at("type").get<std::string>(), "mode");
}

TEST(MultiscalesTest, ManyLevelsWithoutUnitStayValid) {
  VolumeMeta m = SampleMeta();
  m.num_levels = kMaxLevels;
  const Json doc = MustParse(m.GroupJson("big"));
  EXPECT_TRUE(OmeValidator(true).Check(doc).empty()) << Join(OmeValidator(true).Check(doc));
  EXPECT_EQ((Multiscale(doc).at("datasets")).size(), size_t{kMaxLevels});
  EXPECT_EQ(JsonField((Multiscale(doc).at("axes"))[0], "unit"), nullptr);
}

// The arrays the group lists: dimension_names match the axes, shapes halve.
TEST(MultiscalesTest, LevelArraysMatchTheGroup) {
  const VolumeMeta m = Pyramid(4);
  const Json group = MustParse(m.GroupJson("brain"));
  const Json& ms = Multiscale(group);
  std::vector<std::string> axis_names;
  for (const Json& a : (ms.at("axes"))) axis_names.push_back(a.at("name").get<std::string>());
  for (const Json& d : (ms.at("datasets"))) {
    const int l = std::stoi(d.at("path").get<std::string>());
    const Json arr = MustParse(m.LevelMeta(l).ArrayJson());
    std::vector<std::string> dims;
    for (const Json& n : (arr.at("dimension_names"))) dims.push_back(n.get<std::string>());
    EXPECT_EQ(dims, axis_names) << "level " << l;
    Shape3 shape;
    for (int a = 0; a < 3; ++a) shape[a] = (arr.at("shape"))[a].get<uint64_t>();
    EXPECT_EQ(shape, LevelShape(m.geo.shape, l)) << "level " << l;
  }
}

// --- the validator rejects what it should --------------------------------

// Applies `edit` to multiscales[0] of a valid 4-level document.
template <typename F>
std::vector<std::string> ProblemsAfter(F edit, bool strict = false) {
  Json doc = MustParse(Pyramid(4).GroupJson("brain"));
  Json attrs = doc.at("attributes");
  Json ome = attrs.at("ome");
  Json ms = ome.at("multiscales");
  edit(ms[0], ome);
  ome["multiscales"] = ms;
  attrs["ome"] = ome;
  doc["attributes"] = attrs;
  return OmeValidator(strict).Check(doc);
}

Json Transforms(Json& m, int level) {
  Json ds = m.at("datasets");
  return ds[level].at("coordinateTransformations");
}
void SetTransforms(Json& m, int level, Json ct) {
  Json ds = m.at("datasets");
  ds[level]["coordinateTransformations"] = std::move(ct);
  m["datasets"] = ds;
}

TEST(MultiscalesTest, ValidatorRejectsBrokenDocuments) {
  auto expect_bad = [](const std::vector<std::string>& p, const char* what) {
    EXPECT_FALSE(p.empty()) << "accepted: " << what;
  };
  expect_bad(ProblemsAfter([](Json&, Json& ome) { ome["version"] = "0.4"; }), "version 0.4");
  expect_bad(ProblemsAfter([](Json& m, Json&) { m["version"] = "0.5"; }), "0.4-style version");
  expect_bad(ProblemsAfter([](Json& m, Json&) { m["datasets"] = Json::array(); }),
             "no datasets");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json axes = m.at("axes");
               axes[1]["name"] = "z";
               m["axes"] = axes;
             }),
             "duplicate axis name");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json axes = m.at("axes");
               axes[0] = Json{{"name", "t"}, {"type", "time"}};
               axes[2] = Json{{"name", "c"}, {"type", "channel"}};
               m["axes"] = axes;
             }),
             "channel after space, one space axis");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json axes = m.at("axes");
               axes[0]["unit"] = "microns";
               m["axes"] = axes;
             }),
             "unit not in UDUNITS-2");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json ct = Transforms(m, 1);
               std::swap(ct[0], ct[1]);
               SetTransforms(m, 1, ct);
             }),
             "translation before scale");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json ct = Transforms(m, 2);
               ct.push_back(ct[0]);
               SetTransforms(m, 2, ct);
             }),
             "two scales");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json ct = Transforms(m, 2);
               ct[1]["translation"] = Json::array({Json(1.0), Json(2.0)});
               SetTransforms(m, 2, ct);
             }),
             "translation of 2 numbers for 3 axes");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json ct = Transforms(m, 1);
               ct[1]["type"] = "rotation";
               SetTransforms(m, 1, ct);
             }),
             "rotation");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json ds = m.at("datasets");
               std::swap(ds[0], ds[3]);
               m["datasets"] = ds;
             }),
             "levels from low to high resolution");
  expect_bad(ProblemsAfter([](Json& m, Json&) {
               Json ds = m.at("datasets");
               ds[2]["path"] = "1";
               m["datasets"] = ds;
             }),
             "repeated path");
  expect_bad(ProblemsAfter([](Json& m, Json&) { m["metadata"] = "x"; }, true),
             "metadata not an object");
  expect_bad(ProblemsAfter([](Json& m, Json&) { m["type"] = Json(3); }), "type not a string");
  // And the untouched document passes both ways.
  EXPECT_TRUE(ProblemsAfter([](Json&, Json&) {}, true).empty());
}

TEST(MultiscalesTest, IsOmeSpaceUnitKnowsTheSpecList) {
  for (const std::string& u : kSpaceUnits) EXPECT_TRUE(IsOmeSpaceUnit(u)) << u;
  for (const char* u : {"", "microns", "um", "µm", "Micrometer", "second", "micrometer "}) {
    EXPECT_FALSE(IsOmeSpaceUnit(u)) << u;
  }
}

// --- LevelMeta and the array documents ------------------------------------

TEST(MultiscalesTest, LevelShapeIsCeilOfPowersOfTwo) {
  EXPECT_EQ(LevelShape({13, 19, 23}, 0), (Shape3{13, 19, 23}));
  EXPECT_EQ(LevelShape({13, 19, 23}, 1), (Shape3{7, 10, 12}));
  EXPECT_EQ(LevelShape({13, 19, 23}, 2), (Shape3{4, 5, 6}));
  EXPECT_EQ(LevelShape({13, 19, 23}, 5), (Shape3{1, 1, 1}));
  EXPECT_EQ(LevelShape({0, 19, 23}, 3), (Shape3{0, 3, 3}));
  EXPECT_EQ(LevelShape({uint64_t{1} << 40, 1, 3}, 40), (Shape3{1, 1, 1}));
  EXPECT_EQ(LevelShape({~uint64_t{0}, 1, 1}, 63), (Shape3{2, 1, 1}));  // no overflow
}

TEST(MultiscalesTest, LevelZeroMetaIsACopy) {
  const VolumeMeta m = Pyramid(4);
  EXPECT_EQ(m.LevelMeta(0).ArrayJson(), m.ArrayJson());
  EXPECT_EQ(m.LevelMeta(0).level, 0);
}

TEST(MultiscalesTest, LevelMetaHalvesTheShapeAndKeepsTheLayout) {
  const VolumeMeta m = Pyramid(4);
  const VolumeMeta l2 = m.LevelMeta(2);
  EXPECT_EQ(l2.level, 2);
  EXPECT_EQ(l2.geo.shape, (Shape3{4, 5, 6}));
  EXPECT_EQ(l2.geo.block, m.geo.block);
  EXPECT_EQ(l2.geo.brick, m.geo.brick);
  EXPECT_EQ(l2.geo.dtype, m.geo.dtype);
  EXPECT_EQ(l2.zstd_level, m.zstd_level);

  const Json doc = MustParse(l2.ArrayJson());
  const Json& b = doc.at("attributes").at("brickfs");
  EXPECT_EQ(b.at("level").get<uint64_t>(), 2u);
  // The pyramid settings live in the level-0 array only.
  for (const char* k : {"num_levels", "voxel_size", "unit", "downsample_method"}) {
    EXPECT_EQ(JsonField(b, k), nullptr) << k;
  }
  // Same codecs as level 0: only the shape and attributes.brickfs differ.
  Json level0 = MustParse(m.ArrayJson());
  Json same = doc;
  same["shape"] = level0.at("shape");
  same["attributes"] = level0.at("attributes");
  EXPECT_EQ(DumpJson(same), DumpJson(level0));

  auto back = VolumeMeta::FromArrayJson(l2.ArrayJson(), "STORE/2/zarr.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->level, 2);
  EXPECT_EQ(back->geo.shape, (Shape3{4, 5, 6}));
  EXPECT_EQ(back->geo.block, m.geo.block);
  EXPECT_EQ(back->present, l2.present);
}

TEST(MultiscalesTest, LevelSlicesArePresentWhenTheirWholeWindowIs) {
  const VolumeMeta m = SampleMeta();                             // Z = 13, present 0-3, 5, 7-12
  EXPECT_EQ(m.LevelMeta(1).present, (ZRanges{{0, 1}, {4, 6}}));  // [12] is a window of one
  EXPECT_EQ(m.LevelMeta(2).present, (ZRanges{{0, 0}, {2, 3}}));
  EXPECT_EQ(m.LevelMeta(3).present, (ZRanges{{1, 1}}));
  EXPECT_TRUE(m.LevelMeta(4).present.empty());
  VolumeMeta all = SampleMeta();
  all.present = {{0, 12}};
  EXPECT_EQ(all.LevelMeta(4).present, (ZRanges{{0, 0}}));
  EXPECT_EQ(all.LevelMeta(2).present, (ZRanges{{0, 3}}));
  VolumeMeta none = SampleMeta();
  none.present.clear();
  EXPECT_TRUE(none.LevelMeta(1).present.empty());
  VolumeMeta empty = SampleMeta();
  empty.geo.shape[0] = 0;
  empty.present.clear();
  EXPECT_EQ(empty.LevelMeta(1).geo.shape[0], 0u);
}

TEST(MultiscalesTest, PyramidSettingsRoundTripThroughTheLevelZeroArray) {
  VolumeMeta m = Pyramid(4);
  m.downsample_method = "mode";
  auto back = VolumeMeta::FromArrayJson(m.ArrayJson(), "STORE/0/zarr.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->num_levels, 4);
  EXPECT_EQ(back->voxel_size, (std::array<double, 3>{2.0, 0.5, 0.25}));
  EXPECT_EQ(back->unit, "micrometer");
  EXPECT_EQ(back->downsample_method, "mode");
  EXPECT_EQ(back->level, 0);
  EXPECT_EQ(back->GroupJson("brain"), m.GroupJson("brain"));
  EXPECT_EQ(back->ArrayJson(), m.ArrayJson());

  VolumeMeta odd = SampleMeta();
  odd.voxel_size = {0.1, 1.0 / 3.0, 1e-9};
  back = VolumeMeta::FromArrayJson(odd.ArrayJson(), "w");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->voxel_size, odd.voxel_size);  // doubles survive exactly
}

TEST(MultiscalesTest, DefaultSettingsAreNotWrittenAndAnyOtherWritesThemAll) {
  auto keys = [](const VolumeMeta& m) {
    std::vector<std::string> k;
    const Json doc = MustParse(m.ArrayJson());
    for (const auto& [key, v] : doc.at("attributes").at("brickfs").items()) k.push_back(key);
    return k;
  };
  const std::vector<std::string> base = {"format_version", "writer", "finalized", "fixed_shape",
                                         "slices_present"};
  EXPECT_EQ(keys(SampleMeta()), base);
  std::vector<std::string> full = base;
  for (const char* k : {"num_levels", "voxel_size", "unit", "downsample_method"}) full.push_back(k);
  VolumeMeta u = SampleMeta();
  u.unit = "nanometer";
  EXPECT_EQ(keys(u), full);
  VolumeMeta n = SampleMeta();
  n.num_levels = 2;
  EXPECT_EQ(keys(n), full);
  VolumeMeta mo = SampleMeta();
  mo.downsample_method = "mode";
  EXPECT_EQ(keys(mo), full);
  auto back = VolumeMeta::FromArrayJson(SampleMeta().ArrayJson(), "w");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->num_levels, 1);
  EXPECT_EQ(back->voxel_size, (std::array<double, 3>{1, 1, 1}));
  EXPECT_EQ(back->unit, "");
  EXPECT_EQ(back->downsample_method, "mean");
}

Result<VolumeMeta> WithBrickfsKey(const std::string& key, Json value) {
  Json doc = MustParse(Pyramid(4).ArrayJson());
  Json attrs = doc.at("attributes");
  Json b = attrs.at("brickfs");
  b[key] = std::move(value);
  attrs["brickfs"] = b;
  doc["attributes"] = attrs;
  return VolumeMeta::FromArrayJson(DumpJson(doc, 2), "STORE/0/zarr.json");
}

void ExpectRefused(const Result<VolumeMeta>& r, Status::Code code, const char* what) {
  ASSERT_FALSE(r.ok()) << "accepted " << what;
  EXPECT_EQ(r.status().code(), code) << what << ": " << r.status().ToString();
  EXPECT_NE(r.status().message().find("STORE/0/zarr.json"), std::string::npos)
      << r.status().message();
}

TEST(MultiscalesTest, RejectsBadPyramidSettings) {
  using C = Status::Code;
  ExpectRefused(WithBrickfsKey("num_levels", Json(0)), C::kCorruption, "num_levels 0");
  ExpectRefused(WithBrickfsKey("num_levels", Json(kMaxLevels + 1)), C::kCorruption,
                "num_levels too many");
  ExpectRefused(WithBrickfsKey("num_levels", Json(-1)), C::kCorruption, "num_levels -1");
  ExpectRefused(WithBrickfsKey("num_levels", Json("4")), C::kCorruption, "num_levels string");
  ExpectRefused(WithBrickfsKey("num_levels", Json(2.5)), C::kCorruption, "num_levels 2.5");
  ExpectRefused(WithBrickfsKey("voxel_size", Json::array({Json(1.0), Json(2.0)})),
                C::kCorruption, "voxel_size of 2");
  ExpectRefused(WithBrickfsKey("voxel_size", Json::array({Json(1.0), Json(0.0), Json(1.0)})),
                C::kCorruption, "voxel_size 0");
  ExpectRefused(WithBrickfsKey("voxel_size", Json::array({Json(1.0), Json(-1.0), Json(1.0)})),
                C::kCorruption, "voxel_size negative");
  ExpectRefused(WithBrickfsKey("voxel_size", Json::array({Json("1"), Json(1.0), Json(1.0)})),
                C::kCorruption, "voxel_size string");
  ExpectRefused(WithBrickfsKey("voxel_size", Json(1.0)), C::kCorruption, "voxel_size scalar");
  ExpectRefused(WithBrickfsKey("unit", Json(5)), C::kCorruption, "unit number");
  ExpectRefused(WithBrickfsKey("unit", Json(std::string(65, 'm'))), C::kCorruption,
                "unit too long");
  ExpectRefused(WithBrickfsKey("downsample_method", Json("gaussian")), C::kUnsupported,
                "method gaussian");
  ExpectRefused(WithBrickfsKey("downsample_method", Json(3)), C::kCorruption, "method number");
  ExpectRefused(WithBrickfsKey("level", Json(kMaxLevels)), C::kCorruption, "level too high");
  ExpectRefused(WithBrickfsKey("level", Json(-2)), C::kCorruption, "level negative");
  // A huge exponent parses as infinity: refused, not used.
  auto inf = VolumeMeta::FromArrayJson(
      [] {
        std::string t = Pyramid(4).ArrayJson();
        const std::string from = "\"voxel_size\": [2, ";
        const size_t at = t.find(from);
        EXPECT_NE(at, std::string::npos) << t;
        if (at != std::string::npos) t.replace(at, from.size(), "\"voxel_size\": [1e999, ");
        return t;
      }(),
      "STORE/0/zarr.json");
  ExpectRefused(inf, C::kCorruption, "voxel_size 1e999");
}

}  // namespace
}  // namespace brickfs
