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

Json MustParse(const std::string& text) {
  auto r = ParseJson(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Json();
}

// Applies `edit` to the parsed array document of SampleMeta and re-parses.
template <typename F>
Result<VolumeMeta> Edited(F edit) {
  Json doc = MustParse(SampleMeta().ArrayJson());
  edit(doc);
  return VolumeMeta::FromArrayJson(DumpJson(doc, 2), "STORE/0/zarr.json");
}

// Applies `f` to codecs[0].configuration (the sharding_indexed settings).
template <typename F>
void EditSharding(Json& doc, F f) {
  Json codecs = doc.at("codecs");
  Json& codec = codecs[0];
  Json cfg = codec.at("configuration");
  f(cfg);
  codec["configuration"] = cfg;
  doc["codecs"] = codecs;
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
  Json doc = MustParse(SampleMeta().ArrayJson());
  EXPECT_EQ(doc.at("zarr_format").get<uint64_t>(), 3u);
  EXPECT_EQ(doc.at("node_type").get<std::string>(), "array");
  EXPECT_EQ(doc.at("data_type").get<std::string>(), "uint16");
  EXPECT_EQ(doc.at("fill_value").get<int64_t>(), 0);
  EXPECT_EQ(doc.at("chunk_grid").at("name").get<std::string>(), "regular");
  EXPECT_EQ(DumpJson(doc.at("chunk_grid").at("configuration").at("chunk_shape")), "[8,16,16]");
  EXPECT_EQ(doc.at("chunk_key_encoding").at("name").get<std::string>(), "default");
  EXPECT_EQ(doc.at("chunk_key_encoding").at("configuration").at("separator").get<std::string>(), "/");
  EXPECT_EQ(DumpJson(doc.at("dimension_names")), R"(["z","y","x"])");
  const Json& codecs = doc.at("codecs");
  ASSERT_EQ(codecs.size(), 1u);
  EXPECT_EQ(codecs[0].at("name").get<std::string>(), "sharding_indexed");
  const Json& cfg = codecs[0].at("configuration");
  EXPECT_EQ(DumpJson(cfg.at("chunk_shape")), "[4,8,8]");
  EXPECT_EQ(cfg.at("index_location").get<std::string>(), "end");
  const auto& inner = cfg.at("codecs");
  ASSERT_EQ(inner.size(), 3u);
  EXPECT_EQ(inner[0].at("name").get<std::string>(), "bytes");
  EXPECT_EQ(inner[0].at("configuration").at("endian").get<std::string>(), "little");
  EXPECT_EQ(inner[1].at("name").get<std::string>(), "zstd");
  EXPECT_EQ(inner[1].at("configuration").at("level").get<int64_t>(), 5);
  EXPECT_FALSE(inner[1].at("configuration").at("checksum").get<bool>());
  EXPECT_EQ(inner[2].at("name").get<std::string>(), "crc32c");
  const auto& index = cfg.at("index_codecs");
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[0].at("name").get<std::string>(), "bytes");
  EXPECT_EQ(index[1].at("name").get<std::string>(), "crc32c");
  const Json* b = JsonField(doc.at("attributes"), "brickfs");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(DumpJson(b->at("slices_present")), "[[0,3],[5,5],[7,12]]");
  EXPECT_EQ(SampleMeta().ArrayJson().back(), '\n');
}

TEST(VolumeMetaTest, ForeignArrayWithoutBrickfsAttributesCountsAllSlicesPresent) {
  auto r = Edited([](Json& doc) { doc["attributes"] = Json::object(); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->finalized);
  EXPECT_EQ(r->format_version, 0u);
  ASSERT_EQ(r->present.size(), 1u);
  EXPECT_EQ(r->present[0], (std::pair<uint64_t, uint64_t>{0, 12}));
}

TEST(VolumeMetaTest, RejectsNewerFormatVersionAsUnsupported) {
  auto r = Edited([](Json& doc) {
    Json attrs = doc.at("attributes");
    Json b = attrs.at("brickfs");
    b["format_version"] = uint64_t{BRICKFS_FORMAT_VERSION + 1};
    attrs["brickfs"] = b;
    doc["attributes"] = attrs;
  });
  ExpectStatus(r, Status::Code::kUnsupported);
  EXPECT_NE(r.status().message().find("newer"), std::string::npos) << r.status().message();
}

TEST(VolumeMetaTest, RejectsWrongInnerCodecs) {
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) {
                   Json inner = cfg.at("codecs");
                   inner[1] = Json{{"name", "gzip"}};
                   cfg["codecs"] = inner;
                 });
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) {
                   Json inner = cfg.at("codecs");
                   inner.erase(inner.size() - 1);  // no crc32c
                   cfg["codecs"] = inner;
                 });
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) {
                   Json idx = cfg.at("index_codecs");
                   idx.erase(idx.size() - 1);
                   cfg["index_codecs"] = idx;
                 });
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 EditSharding(doc, [](Json& cfg) { cfg["index_location"] = "start"; });
               }),
               Status::Code::kUnsupported);
}

TEST(VolumeMetaTest, RejectsOtherTopLevelCodecChains) {
  ExpectStatus(Edited([](Json& doc) {
                 doc["codecs"] = Json::array({Json{{"name", "bytes"}}});
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc["codecs"] = Json::array(); }),
               Status::Code::kUnsupported);
}

TEST(VolumeMetaTest, RejectsOtherGridsFillValuesKeysAndDtypes) {
  ExpectStatus(Edited([](Json& doc) {
                 doc["chunk_grid"] = Json{{"name", "rectilinear"}};
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc["fill_value"] = 7; }), Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc["fill_value"] = "NaN"; }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 doc["chunk_key_encoding"] = Json{{"name", "v2"}};
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) {
                 doc["chunk_key_encoding"] = Json{{"name", "default"}, {"configuration", Json{{"separator", "."}}}};
               }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc["data_type"] = "complex64"; }),
               Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc["zarr_format"] = 2; }), Status::Code::kUnsupported);
  ExpectStatus(Edited([](Json& doc) { doc["node_type"] = "group"; }), Status::Code::kCorruption);
}

TEST(VolumeMetaTest, RejectsBadShapes) {
  auto shape = [](Json v) {
    return Edited([v](Json& doc) { doc["shape"] = v; });
  };
  ExpectStatus(shape(Json::array({Json(1), Json(2)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json::array({Json(1), Json(2), Json(3), Json(4)})),
               Status::Code::kCorruption);
  ExpectStatus(shape(Json::array({Json(1), Json(-2), Json(3)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json::array({Json(1), Json(2.5), Json(3)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json::array({Json(1), Json("2"), Json(3)})), Status::Code::kCorruption);
  ExpectStatus(shape(Json::array({Json(1), Json(~uint64_t{0}), Json(3)})),
               Status::Code::kCorruption);
  ExpectStatus(shape(Json("13,19,23")), Status::Code::kCorruption);
  ExpectStatus(Edited([](Json& doc) { doc["shape"] = Json(); }), Status::Code::kCorruption);
}

TEST(VolumeMetaTest, RejectsBrickNotMultipleOfBlock) {
  auto r = Edited([](Json& doc) {
    doc["chunk_grid"] = Json{{"name", "regular"}, {"configuration", Json{{"chunk_shape", Json::array({Json(8), Json(16), Json(12)})}}}};
  });
  ExpectStatus(r, Status::Code::kCorruption);
  auto zero = Edited([](Json& doc) {
    EditSharding(doc, [](Json& cfg) {
      cfg["chunk_shape"] = Json::array({Json(0), Json(8), Json(8)});
    });
  });
  ExpectStatus(zero, Status::Code::kCorruption);
}

Result<VolumeMeta> WithSlices(Json ranges) {
  return Edited([ranges](Json& doc) {
    Json attrs = doc.at("attributes");
    Json b = attrs.at("brickfs");
    b["slices_present"] = ranges;
    attrs["brickfs"] = b;
    doc["attributes"] = attrs;
  });
}

Json Range(uint64_t a, uint64_t b) { return Json::array({Json(a), Json(b)}); }

TEST(VolumeMetaTest, RejectsSlicesPresentOutOfOrderOrOutsideShape) {
  ExpectStatus(WithSlices(Json::array({Range(5, 6), Range(0, 1)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json::array({Range(0, 5), Range(3, 8)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json::array({Range(4, 2)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json::array({Range(0, 13)})), Status::Code::kCorruption);  // shape 13
  ExpectStatus(WithSlices(Json::array({Json::array({Json(1)})})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json::array({Json(3)})), Status::Code::kCorruption);
  ExpectStatus(WithSlices(Json::array({Json::array({Json(-1), Json(2)})})),
               Status::Code::kCorruption);
  auto ok = WithSlices(Json::array({Range(0, 0), Range(12, 12)}));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->present.size(), 2u);
}

TEST(VolumeMetaTest, RejectsInvalidJsonNamingTheFile) {
  ExpectStatus(VolumeMeta::FromArrayJson("{\"zarr_format\": 3,", "STORE/0/zarr.json"),
               Status::Code::kCorruption);
  ExpectStatus(VolumeMeta::FromArrayJson("", "STORE/0/zarr.json"), Status::Code::kCorruption);
}

TEST(VolumeMetaTest, GroupJsonIsOmeZarr05WithOneLevel) {
  Json doc = MustParse(SampleMeta().GroupJson("brain"));
  EXPECT_EQ(doc.at("zarr_format").get<uint64_t>(), 3u);
  EXPECT_EQ(doc.at("node_type").get<std::string>(), "group");
  const Json* ome = JsonField(doc.at("attributes"), "ome");
  ASSERT_NE(ome, nullptr);
  EXPECT_EQ(ome->at("version").get<std::string>(), "0.5");
  const auto& ms = (ome->at("multiscales"));
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].at("name").get<std::string>(), "brain");
  const auto& axes = (ms[0].at("axes"));
  ASSERT_EQ(axes.size(), 3u);
  EXPECT_EQ(axes[0].at("name").get<std::string>(), "z");
  EXPECT_EQ(axes[1].at("name").get<std::string>(), "y");
  EXPECT_EQ(axes[2].at("name").get<std::string>(), "x");
  EXPECT_EQ(axes[2].at("type").get<std::string>(), "space");
  const auto& ds = (ms[0].at("datasets"));
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].at("path").get<std::string>(), "0");
  const auto& ct = (ds[0].at("coordinateTransformations"));
  ASSERT_EQ(ct.size(), 1u);
  EXPECT_EQ(ct[0].at("type").get<std::string>(), "scale");
  EXPECT_EQ((ct[0].at("scale")).size(), 3u);
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
