// Tests for VolumeMeta: the Zarr v3 array document brickfs writes, parsing it
// back, everything FromArrayJson refuses, the OME-Zarr group document, and
// the z-range helpers.
#include "format/volume_meta.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "brickfs/version.h"
#include "format/json.h"

namespace brickfs {
namespace {

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

Json ParseJson(const std::string& text) {
  auto r = Json::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Json();
}

// Applies `edit` to the parsed array document of SampleMeta and re-parses.
template <typename F>
Result<VolumeMeta> Edited(F edit) {
  Json doc = ParseJson(SampleMeta().ArrayJson());
  edit(doc);
  return VolumeMeta::FromArrayJson(doc.Dump(2), "STORE/0/zarr.json");
}

// Applies `f` to codecs[0].configuration (the sharding_indexed settings).
template <typename F>
void EditSharding(Json& doc, F f) {
  Json codecs = *doc.Get("codecs");
  Json& codec = codecs.as_array()[0];
  Json cfg = *codec.Get("configuration");
  f(cfg);
  codec.Set("configuration", cfg);
  doc.Set("codecs", codecs);
}

void ExpectStatus(const Result<VolumeMeta>& r, Status::Code code) {
  ASSERT_FALSE(r.ok()) << "accepted a document it should refuse";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find("STORE/0/zarr.json"), std::string::npos)
      << r.status().message();
}

TEST(VolumeMetaTest, ArrayJsonRoundTripsEveryField) {
  const VolumeMeta m = SampleMeta();
  auto back = VolumeMeta::FromArrayJson(m.ArrayJson(), "w");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->geo.shape, m.geo.shape);
  EXPECT_EQ(back->geo.block, m.geo.block);
  EXPECT_EQ(back->geo.brick, m.geo.brick);
  EXPECT_EQ(back->geo.dtype, m.geo.dtype);
  EXPECT_EQ(back->zstd_level, 5);
  EXPECT_TRUE(back->fixed_shape);
  EXPECT_TRUE(back->finalized);
  EXPECT_EQ(back->present, m.present);
  EXPECT_EQ(back->format_version, uint64_t{BRICKFS_FORMAT_VERSION});
}

TEST(VolumeMetaTest, ArrayJsonRoundTripsFalseFlagsAndNoSlices) {
  VolumeMeta m = SampleMeta();
  m.fixed_shape = false;
  m.finalized = false;
  m.present.clear();
  m.geo.dtype = DType::kFloat32;
  m.zstd_level = -3;
  auto back = VolumeMeta::FromArrayJson(m.ArrayJson(), "w");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back->fixed_shape);
  EXPECT_FALSE(back->finalized);
  EXPECT_TRUE(back->present.empty());
  EXPECT_EQ(back->geo.dtype, DType::kFloat32);
  EXPECT_EQ(back->zstd_level, -3);
}

TEST(VolumeMetaTest, ArrayJsonIsTheZarrV3ShardingLayout) {
  Json doc = ParseJson(SampleMeta().ArrayJson());
  EXPECT_EQ(doc.Get("zarr_format")->as_uint(), 3u);
  EXPECT_EQ(doc.Get("node_type")->as_string(), "array");
  EXPECT_EQ(doc.Get("data_type")->as_string(), "uint16");
  EXPECT_EQ(doc.Get("fill_value")->as_int(), 0);
  EXPECT_EQ(doc.Get("chunk_grid")->Get("name")->as_string(), "regular");
  EXPECT_EQ(doc.Get("chunk_grid")->Get("configuration")->Get("chunk_shape")->Dump(), "[8,16,16]");
  EXPECT_EQ(doc.Get("chunk_key_encoding")->Get("name")->as_string(), "default");
  EXPECT_EQ(doc.Get("chunk_key_encoding")->Get("configuration")->Get("separator")->as_string(), "/");
  EXPECT_EQ(doc.Get("dimension_names")->Dump(), R"(["z","y","x"])");
  const Json& codecs = *doc.Get("codecs");
  ASSERT_EQ(codecs.as_array().size(), 1u);
  EXPECT_EQ(codecs.as_array()[0].Get("name")->as_string(), "sharding_indexed");
  const Json& cfg = *codecs.as_array()[0].Get("configuration");
  EXPECT_EQ(cfg.Get("chunk_shape")->Dump(), "[4,8,8]");
  EXPECT_EQ(cfg.Get("index_location")->as_string(), "end");
  const auto& inner = cfg.Get("codecs")->as_array();
  ASSERT_EQ(inner.size(), 3u);
  EXPECT_EQ(inner[0].Get("name")->as_string(), "bytes");
  EXPECT_EQ(inner[0].Get("configuration")->Get("endian")->as_string(), "little");
  EXPECT_EQ(inner[1].Get("name")->as_string(), "zstd");
  EXPECT_EQ(inner[1].Get("configuration")->Get("level")->as_int(), 5);
  EXPECT_FALSE(inner[1].Get("configuration")->Get("checksum")->as_bool());
  EXPECT_EQ(inner[2].Get("name")->as_string(), "crc32c");
  const auto& index = cfg.Get("index_codecs")->as_array();
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[0].Get("name")->as_string(), "bytes");
  EXPECT_EQ(index[1].Get("name")->as_string(), "crc32c");
  const Json* b = doc.Get("attributes")->Get("brickfs");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->Get("slices_present")->Dump(), "[[0,3],[5,5],[7,12]]");
  EXPECT_EQ(SampleMeta().ArrayJson().back(), '\n');
}

TEST(VolumeMetaTest, ForeignArrayWithoutBrickfsAttributesCountsAllSlicesPresent) {
  auto r = Edited([](Json& doc) { doc.Set("attributes", Json::MakeObject()); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->finalized);
  EXPECT_EQ(r->format_version, 0u);
  ASSERT_EQ(r->present.size(), 1u);
  EXPECT_EQ(r->present[0], (std::pair<uint64_t, uint64_t>{0, 12}));
}

TEST(VolumeMetaTest, RejectsNewerFormatVersionAsUnsupported) {
  auto r = Edited([](Json& doc) {
    Json attrs = *doc.Get("attributes");
    Json b = *attrs.Get("brickfs");
    b.Set("format_version", uint64_t{BRICKFS_FORMAT_VERSION + 1});
    attrs.Set("brickfs", b);
    doc.Set("attributes", attrs);
  });
  ExpectStatus(r, Status::Code::kUnsupported);
  EXPECT_NE(r.status().message().find("newer"), std::string::npos) << r.status().message();
}

TEST(VolumeMetaTest, RejectsWrongInnerCodecs) {
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) {
                   Json inner = *cfg.Get("codecs");
                   inner.as_array()[1] = Json::MakeObject().Set("name", "gzip");
                   cfg.Set("codecs", inner);
                 });
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) {
                   Json inner = *cfg.Get("codecs");
                   inner.as_array().pop_back();  // no crc32c
                   cfg.Set("codecs", inner);
                 });
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) {
                   Json idx = *cfg.Get("index_codecs");
                   idx.as_array().pop_back();
                   cfg.Set("index_codecs", idx);
                 });
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) { cfg.Set("index_location", "start"); });
               }),
               Status::Code::kUnsupported);
}

TEST(VolumeMetaTest, RejectsOtherTopLevelCodecChains) {
  ExpectStatus(Edited([](Json& doc) {
                 doc.Set("codecs", Json(Json::Array{Json::MakeObject().Set("name", "bytes")}));
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc.Set("codecs", Json::MakeArray()); }),
               Status::Code::kUnsupported);
}

TEST(VolumeMetaTest, RejectsOtherGridsFillValuesKeysAndDtypes) {
  ExpectStatus(Edited([](Json& doc) {
                 doc.Set("chunk_grid", Json::MakeObject().Set("name", "rectilinear"));
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc.Set("fill_value", 7); }), Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc.Set("fill_value", "NaN"); }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 doc.Set("chunk_key_encoding", Json::MakeObject().Set("name", "v2"));
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 doc.Set("chunk_key_encoding",
                         Json::MakeObject().Set("name", "default").Set(
                             "configuration", Json::MakeObject().Set("separator", ".")));
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc.Set("data_type", "complex64"); }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc.Set("zarr_format", 2); }), Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc.Set("node_type", "group"); }), Status::Code::kCorruption);
}

TEST(VolumeMetaTest, RejectsBadShapes) {
  auto shape = [](Json v) {
    return Edited([v](Json& doc) { doc.Set("shape", v); });
  };
  ExpectStatus(shape(Json(Json::Array{Json(1), Json(2)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json(Json::Array{Json(1), Json(2), Json(3), Json(4)})),
               Status::Code::kCorruption);
  ExpectStatus(shape(Json(Json::Array{Json(1), Json(-2), Json(3)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json(Json::Array{Json(1), Json(2.5), Json(3)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json(Json::Array{Json(1), Json("2"), Json(3)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json(Json::Array{Json(1), Json(~uint64_t{0}), Json(3)})),
               Status::Code::kCorruption);
  ExpectStatus(shape(Json("13,19,23")), Status::Code::kCorruption);
  ExpectStatus(Edited([](Json& doc) { doc.Set("shape", Json()); }), Status::Code::kCorruption);
}

TEST(VolumeMetaTest, RejectsBrickNotMultipleOfBlock) {
  auto r = Edited([](Json& doc) {
    doc.Set("chunk_grid",
            Json::MakeObject().Set("name", "regular").Set(
                "configuration",
                Json::MakeObject().Set("chunk_shape",
                                       Json(Json::Array{Json(8), Json(16), Json(12)}))));
  });
  ExpectStatus(r, Status::Code::kCorruption);
  auto zero = Edited([](Json& doc) {
    EditSharding(doc, [](Json& cfg) {
      cfg.Set("chunk_shape", Json(Json::Array{Json(0), Json(8), Json(8)}));
    });
  });
  ExpectStatus(zero, Status::Code::kCorruption);
}

Result<VolumeMeta> WithSlices(Json ranges) {
  return Edited([ranges](Json& doc) {
    Json attrs = *doc.Get("attributes");
    Json b = *attrs.Get("brickfs");
    b.Set("slices_present", ranges);
    attrs.Set("brickfs", b);
    doc.Set("attributes", attrs);
  });
}

Json Range(uint64_t a, uint64_t b) { return Json(Json::Array{Json(a), Json(b)}); }

TEST(VolumeMetaTest, RejectsSlicesPresentOutOfOrderOrOutsideShape) {
  ExpectStatus(WithSlices(Json(Json::Array{Range(5, 6), Range(0, 1)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json(Json::Array{Range(0, 5), Range(3, 8)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json(Json::Array{Range(4, 2)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json(Json::Array{Range(0, 13)})), Status::Code::kCorruption);  // shape 13
  ExpectStatus(WithSlices(Json(Json::Array{Json(Json::Array{Json(1)})})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json(Json::Array{Json(3)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json(Json::Array{Json(Json::Array{Json(-1), Json(2)})})),
               Status::Code::kCorruption);
  auto ok = WithSlices(Json(Json::Array{Range(0, 0), Range(12, 12)}));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->present.size(), 2u);
}

TEST(VolumeMetaTest, RejectsInvalidJsonNamingTheFile) {
  ExpectStatus(VolumeMeta::FromArrayJson("{\"zarr_format\": 3,", "STORE/0/zarr.json"),
               Status::Code::kCorruption);
  ExpectStatus(VolumeMeta::FromArrayJson("", "STORE/0/zarr.json"), Status::Code::kCorruption);
}

TEST(VolumeMetaTest, GroupJsonIsOmeZarr05WithOneLevel) {
  Json doc = ParseJson(SampleMeta().GroupJson("brain"));
  EXPECT_EQ(doc.Get("zarr_format")->as_uint(), 3u);
  EXPECT_EQ(doc.Get("node_type")->as_string(), "group");
  const Json* ome = doc.Get("attributes")->Get("ome");
  ASSERT_NE(ome, nullptr);
  EXPECT_EQ(ome->Get("version")->as_string(), "0.5");
  const auto& ms = ome->Get("multiscales")->as_array();
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].Get("name")->as_string(), "brain");
  const auto& axes = ms[0].Get("axes")->as_array();
  ASSERT_EQ(axes.size(), 3u);
  EXPECT_EQ(axes[0].Get("name")->as_string(), "z");
  EXPECT_EQ(axes[1].Get("name")->as_string(), "y");
  EXPECT_EQ(axes[2].Get("name")->as_string(), "x");
  EXPECT_EQ(axes[2].Get("type")->as_string(), "space");
  const auto& ds = ms[0].Get("datasets")->as_array();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].Get("path")->as_string(), "0");
  const auto& ct = ds[0].Get("coordinateTransformations")->as_array();
  ASSERT_EQ(ct.size(), 1u);
  EXPECT_EQ(ct[0].Get("type")->as_string(), "scale");
  EXPECT_EQ(ct[0].Get("scale")->as_array().size(), 3u);
  EXPECT_TRUE(CheckGroupJson(SampleMeta().GroupJson("brain"), "g").ok());
}

TEST(VolumeMetaTest, CheckGroupJsonRefusesArraysAndOtherFormats) {
  EXPECT_EQ(CheckGroupJson(SampleMeta().ArrayJson(), "g").code(), Status::Code::kUnsupported);
  EXPECT_EQ(CheckGroupJson(R"({"zarr_format": 2, "node_type": "group"})", "g").code(),
            Status::Code::kUnsupported);
  EXPECT_EQ(CheckGroupJson(R"({"node_type": "group"})", "g").code(), Status::Code::kUnsupported);
  EXPECT_FALSE(CheckGroupJson("not json", "g").ok());
  EXPECT_TRUE(CheckGroupJson(R"({"zarr_format": 3, "node_type": "group"})", "g").ok());
}

TEST(VolumeMetaTest, BrickfsGroupProblemNamesWhatIsMissing) {
  EXPECT_EQ(BrickfsGroupProblem(SampleMeta().GroupJson("brain")), "");
  VolumeMeta empty;  // what a mount writes before the first slice
  EXPECT_EQ(BrickfsGroupProblem(empty.GroupJson("new")), "");
  auto has = [](const std::string& text, const std::string& what) {
    const std::string why = BrickfsGroupProblem(text);
    EXPECT_NE(why.find(what), std::string::npos) << text << " -> " << why;
  };
  has(R"({"zarr_format": 3, "node_type": "group", "attributes": {}})", "attributes.ome.multiscales");
  has(R"({"zarr_format": 3, "node_type": "group"})", "attributes.ome.multiscales");
  has(R"({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"multiscales": []}}})",
      "attributes.ome.multiscales");
  has(R"({"zarr_format": "https://purl.org/zarr/spec/protocol/core/3.0"})", "zarr_format");
  has(SampleMeta().ArrayJson(), "node_type");
  has("{\"zarr_format\": 3,", "not valid JSON");
}

TEST(ZRangesTest, RangesFromBitmap) {
  EXPECT_TRUE(RangesFromBitmap({}).empty());
  EXPECT_TRUE(RangesFromBitmap({false, false}).empty());
  EXPECT_EQ(RangesFromBitmap({true}), (ZRanges{{0, 0}}));
  EXPECT_EQ(RangesFromBitmap({true, true, true, true, false, false, false, true, false, true,
                              true, true, true}),
            (ZRanges{{0, 3}, {7, 7}, {9, 12}}));
  EXPECT_EQ(RangesFromBitmap({false, true, true}), (ZRanges{{1, 2}}));
}

TEST(ZRangesTest, MissingRangesCoversBeyondTheBitmap) {
  std::vector<bool> present = {true, false, true, false, false};
  EXPECT_EQ(MissingRanges(present, 5), (ZRanges{{1, 1}, {3, 4}}));
  EXPECT_EQ(MissingRanges(present, 8), (ZRanges{{1, 1}, {3, 7}}));
  EXPECT_EQ(MissingRanges(present, 3), (ZRanges{{1, 1}}));
  EXPECT_TRUE(MissingRanges(present, 0).empty());
  EXPECT_EQ(MissingRanges(std::vector<bool>{}, 2), (ZRanges{{0, 1}}));
  EXPECT_EQ(MissingRanges(IntervalSet{}, 2), (ZRanges{{0, 1}}));
  EXPECT_EQ(MissingRanges(SetFromRanges({{0, 0}, {2, 2}}), 5), (ZRanges{{1, 1}, {3, 4}}));
}

TEST(ZRangesTest, RangesToString) {
  EXPECT_EQ(RangesToString({}), "none");
  EXPECT_EQ(RangesToString({{0, 3}, {7, 7}, {9, 12}}), "0-3, 7, 9-12");
  EXPECT_EQ(RangesToString({{5, 5}}), "5");
}

}  // namespace
}  // namespace brickfs
