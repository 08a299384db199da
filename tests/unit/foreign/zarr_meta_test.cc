#include "foreign/zarr_meta.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "foreign/meta_json.h"

namespace brickfs {
namespace {

using nlohmann::json;

json V2() {
  return json::parse(R"({"zarr_format": 2, "shape": [10, 20, 30], "chunks": [4, 8, 16],
    "dtype": "<u2", "order": "C", "fill_value": 0, "filters": null,
    "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}})");
}

json V3() {
  return json::parse(R"({"zarr_format": 3, "node_type": "array", "shape": [10, 20, 30],
    "data_type": "uint16",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 8, 16]}},
    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
    "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                 {"name": "zstd", "configuration": {"level": 1, "checksum": false}}],
    "attributes": {}, "dimension_names": ["z", "y", "x"]})");
}

Result<ZarrArrayMeta> P2(const json& j) { return ParseZarrV2Array(j.dump(), "/s/0/.zarray"); }
Result<ZarrArrayMeta> P3(const json& j) { return ParseZarrV3Array(j, "/s/0/zarr.json"); }

// The status is `code` and its message holds every one of `parts`.
void ExpectError(const Status& st, Status::Code code, std::initializer_list<const char*> parts) {
  EXPECT_EQ(st.code(), code) << st.ToString();
  for (const char* p : parts) EXPECT_NE(st.message().find(p), std::string::npos) << st.ToString();
}

template <typename T>
T FillAs(const ZarrArrayMeta& m) {
  T v;
  EXPECT_EQ(m.fill.size(), sizeof v);
  std::memcpy(&v, m.fill.data(), sizeof v);
  return v;
}

TEST(ZarrMetaTest, ParsesAV2Array) {
  auto m = P2(V2());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->zarr_format, 2);
  EXPECT_EQ(m->shape, (std::vector<uint64_t>{10, 20, 30}));
  EXPECT_EQ(m->chunk, (std::vector<uint64_t>{4, 8, 16}));
  EXPECT_EQ(m->dtype, DType::kUint16);
  EXPECT_FALSE(m->codecs.big_endian);
  EXPECT_EQ(m->codecs.bytes_codecs, std::vector<BytesCodecKind>{BytesCodecKind::kBlosc});
  EXPECT_TRUE(m->codecs.transposes.empty());
  EXPECT_EQ(m->ChunkKey({1, 2, 0}), "1.2.0");
  EXPECT_EQ(m->read_grid(), (std::vector<uint64_t>{3, 3, 2}));
  EXPECT_EQ(m->read_chunk_bytes(), 4u * 8 * 16 * 2);
  EXPECT_EQ(FillAs<uint16_t>(*m), 0);
}

TEST(ZarrMetaTest, V2DtypesOrdersSeparatorsCompressorsAndFills) {
  struct Case {
    const char* dtype;
    DType want;
    bool big;
  } cases[] = {{"|u1", DType::kUint8, false},   {"|i1", DType::kInt8, false},
               {"<i2", DType::kInt16, false},   {">u2", DType::kUint16, true},
               {"<i4", DType::kInt32, false},   {">u4", DType::kUint32, true},
               {"<f4", DType::kFloat32, false}, {">f8", DType::kFloat64, true},
               {"<u1", DType::kUint8, false},   {">i1", DType::kInt8, false}};
  for (const Case& c : cases) {
    json j = V2();
    j["dtype"] = c.dtype;
    auto m = P2(j);
    ASSERT_TRUE(m.ok()) << c.dtype << " " << m.status().ToString();
    EXPECT_EQ(m->dtype, c.want) << c.dtype;
    EXPECT_EQ(m->codecs.big_endian, c.big) << c.dtype;
  }
  json j = V2();
  j["order"] = "F";
  j["dimension_separator"] = "/";
  j["compressor"] = nullptr;
  j["filters"] = json::array();
  auto m = P2(j);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->codecs.transposes.size(), 1u);
  EXPECT_EQ(m->codecs.transposes[0], (std::vector<size_t>{2, 1, 0}));
  EXPECT_EQ(m->ChunkKey({1, 2, 0}), "1/2/0");
  EXPECT_TRUE(m->codecs.bytes_codecs.empty());
  for (const char* id : {"gzip", "zlib", "zstd"}) {
    j = V2();
    j["compressor"] = {{"id", id}, {"level", 1}};
    m = P2(j);
    ASSERT_TRUE(m.ok()) << id << " " << m.status().ToString();
    EXPECT_EQ(BytesCodecName(m->codecs.bytes_codecs.at(0)), id);
  }
  for (const char* cname : {"lz4", "lz4hc", "zstd", "blosclz", "zlib"}) {
    for (int shuffle : {-1, 0, 1, 2}) {
      j = V2();
      j["compressor"]["cname"] = cname;
      j["compressor"]["shuffle"] = shuffle;
      EXPECT_TRUE(P2(j).ok()) << cname << " " << shuffle;
    }
  }
  j = V2();
  j["fill_value"] = nullptr;  // null: chunks never written read as 0
  m = P2(j);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(FillAs<uint16_t>(*m), 0);
  j["fill_value"] = 65535;
  EXPECT_EQ(FillAs<uint16_t>(*P2(j)), 65535);
  j["dtype"] = "<i2";
  j["fill_value"] = -7;
  EXPECT_EQ(FillAs<int16_t>(*P2(j)), -7);
  j["dtype"] = "<f4";
  j["fill_value"] = "NaN";
  EXPECT_TRUE(std::isnan(FillAs<float>(*P2(j))));
  j["fill_value"] = "-Infinity";
  EXPECT_EQ(FillAs<float>(*P2(j)), -INFINITY);
  j["dtype"] = "<f8";
  j["fill_value"] = 0.25;
  EXPECT_EQ(FillAs<double>(*P2(j)), 0.25);
  EXPECT_EQ(P2(j)->FillText(), "0.25");
}

TEST(ZarrMetaTest, V2BadMetadataIsRefusedNamingFileFieldAndValue) {
  const auto inv = Status::Code::kInvalidArgument;
  const auto uns = Status::Code::kUnsupported;
  struct Case {
    const char* what;
    const char* patch;  // JSON merged into V2()
    Status::Code code;
    std::initializer_list<const char*> parts;
  };
  const Case cases[] = {
      {"chunk 0", R"({"chunks": [4, 0, 16]})", inv, {"/s/0/.zarray", "\"chunks\"[1]", "found 0"}},
      {"rank mismatch", R"({"chunks": [4, 8]})", inv, {"\"chunks\"", "2 dimensions", "has 3"}},
      {"F is read, K is not", R"({"order": "K"})", inv, {"\"order\"", "\"K\""}},
      {"unknown compressor", R"({"compressor": {"id": "lzma"}})", uns,
       {"\"compressor\".\"id\"", "lzma"}},
      {"blosc snappy", R"({"compressor": {"cname": "snappy"}})", uns, {"snappy"}},
      {"blosc shuffle 3", R"({"compressor": {"shuffle": 3}})", inv, {"\"shuffle\"", "3 is outside"}},
      {"filters", R"({"filters": [{"id": "delta"}]})", uns, {"\"filters\"", "delta"}},
      {"int64", R"({"dtype": "<i8"})", uns, {"\"dtype\"", "64-bit integers"}},
      {"uint64", R"({"dtype": "<u8"})", uns, {"64-bit"}},
      {"bool", R"({"dtype": "|b1"})", uns, {"|b1"}},
      {"float16", R"({"dtype": "<f2"})", uns, {"<f2"}},
      {"structured", R"({"dtype": [["a", "<u2"]]})", uns, {"structured"}},
      {"garbage dtype", R"({"dtype": "hello"})", inv, {"\"hello\""}},
      {"| on 2 bytes", R"({"dtype": "|u2"})", inv, {"only for 1-byte"}},
      {"fill out of range", R"({"fill_value": 70000})", inv, {"\"fill_value\"", "70000", "outside"}},
      {"fill float for int", R"({"fill_value": 1.5})", inv, {"must be an integer"}},
      {"fill string for int", R"({"fill_value": "NaN"})", inv, {"must be an integer"}},
      {"separator", R"({"dimension_separator": ":"})", inv, {"\"dimension_separator\"", "\":\""}},
      {"negative side", R"({"shape": [10, -1, 30]})", inv, {"\"shape\"[1]", "-1"}},
      {"float side", R"({"shape": [10, 2.5, 30]})", inv, {"\"shape\"[1]", "2.5"}},
      {"side over 2^32", R"({"shape": [10, 5000000000, 30]})", uns, {"\"shape\"[1]", "5000000000"}},
      {"chunk over 64 MiB", R"({"chunks": [1024, 1024, 64]})", uns, {"[1024,1024,64]", "64 MiB"}},
      {"zarr_format 3", R"({"zarr_format": 3})", inv, {"\"zarr_format\"", "expected 2"}},
      {"33 dims", R"({"shape": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]})",
       inv, {"33 dimensions"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    json j = V2();
    j.merge_patch(json::parse(c.patch));
    ExpectError(P2(j).status(), c.code, c.parts);
  }
  for (const char* field : {"shape", "chunks", "dtype", "order", "fill_value", "compressor"}) {
    json j = V2();
    j.erase(field);
    ExpectError(P2(j).status(), inv, {"missing field", field});
  }
  ExpectError(ParseZarrV2Array("{\"zarr_format\": 2,", "/s/0/.zarray").status(), inv,
              {"/s/0/.zarray", "not valid JSON"});
  ExpectError(ParseZarrV2Array("[1, 2]", "/s/0/.zarray").status(), inv, {"expected a JSON object"});
}

TEST(ZarrMetaTest, V3UnshardedWithEveryCodec) {
  auto m = P3(V3());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->zarr_format, 3);
  EXPECT_EQ(m->ChunkKey({1, 2, 0}), "c/1/2/0");
  EXPECT_EQ(m->dimension_names, (std::vector<std::string>{"z", "y", "x"}));
  EXPECT_FALSE(m->sharding.has_value());
  json j = V3();
  j["chunk_key_encoding"] = {{"name", "default"}, {"configuration", {{"separator", "."}}}};
  EXPECT_EQ(P3(j)->ChunkKey({1, 2, 0}), "c.1.2.0");
  j["chunk_key_encoding"] = {{"name", "v2"}};
  EXPECT_EQ(P3(j)->ChunkKey({1, 2, 0}), "1.2.0");
  j["chunk_key_encoding"] = {{"name", "v2"}, {"configuration", {{"separator", "/"}}}};
  EXPECT_EQ(P3(j)->ChunkKey({1, 2, 0}), "1/2/0");
  j = V3();
  j["codecs"] = json::parse(R"([{"name": "transpose", "configuration": {"order": [2, 0, 1]}},
      {"name": "bytes", "configuration": {"endian": "big"}},
      {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle",
                                          "typesize": 2, "blocksize": 0}},
      {"name": "crc32c"}])");
  m = P3(j);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->codecs.big_endian);
  EXPECT_EQ(m->codecs.transposes, (std::vector<std::vector<size_t>>{{2, 0, 1}}));
  EXPECT_EQ(m->codecs.bytes_codecs,
            (std::vector<BytesCodecKind>{BytesCodecKind::kBlosc, BytesCodecKind::kCrc32c}));
  j["codecs"] = json::parse(R"([{"name": "bytes", "configuration": {"endian": "little"}},
      {"name": "gzip", "configuration": {"level": 5}}])");
  EXPECT_TRUE(P3(j).ok());
  // A 1-byte type needs no endian.
  j["data_type"] = "int8";
  j["codecs"] = json::parse(R"([{"name": "bytes"}])");
  EXPECT_TRUE(P3(j).ok());
  // Fill values of v3.
  j = V3();
  j["data_type"] = "float32";
  j["fill_value"] = "0x7fc00000";
  EXPECT_TRUE(std::isnan(FillAs<float>(*P3(j))));
  j["fill_value"] = "0x3f800000";
  EXPECT_EQ(FillAs<float>(*P3(j)), 1.0f);
  j["data_type"] = "float64";
  j["fill_value"] = "Infinity";
  EXPECT_EQ(FillAs<double>(*P3(j)), INFINITY);
  j["fill_value"] = "0x3ff0000000000000";
  EXPECT_EQ(FillAs<double>(*P3(j)), 1.0);
  j["data_type"] = "int32";
  j["fill_value"] = -2147483648;
  EXPECT_EQ(FillAs<int32_t>(*P3(j)), INT32_MIN);
  // An extension the reader may ignore.
  j = V3();
  j["my_ext"] = {{"must_understand", false}, {"x", 1}};
  EXPECT_TRUE(P3(j).ok());
}

TEST(ZarrMetaTest, V3Sharding) {
  json j = V3();
  j["shape"] = {100, 100, 100};
  j["chunk_grid"]["configuration"]["chunk_shape"] = {64, 64, 64};
  j["codecs"] = json::parse(R"([{"name": "sharding_indexed", "configuration": {
      "chunk_shape": [16, 32, 64],
      "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                 {"name": "zstd", "configuration": {"level": 1, "checksum": false}}, {"name": "crc32c"}],
      "index_codecs": [{"name": "bytes", "configuration": {"endian": "big"}}, {"name": "crc32c"}],
      "index_location": "start"}}])");
  auto m = P3(j);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->sharding.has_value());
  const ShardingSpec& s = *m->sharding;
  EXPECT_EQ(s.inner_chunk, (std::vector<uint64_t>{16, 32, 64}));
  EXPECT_EQ(s.inner_per_shard, (std::vector<uint64_t>{4, 2, 1}));
  EXPECT_EQ(s.inner_count, 8u);
  EXPECT_TRUE(s.index_at_start);
  EXPECT_TRUE(s.index_big_endian);
  EXPECT_TRUE(s.index_crc32c);
  EXPECT_EQ(s.index_bytes(), 8u * 16 + 4);
  EXPECT_EQ(m->read_chunk(), s.inner_chunk);
  EXPECT_EQ(m->read_grid(), (std::vector<uint64_t>{7, 4, 2}));
  EXPECT_EQ(m->read_chunk_bytes(), 16u * 32 * 64 * 2);
  j["codecs"][0]["configuration"].erase("index_location");
  EXPECT_FALSE(P3(j)->sharding->index_at_start);  // default: end
}

TEST(ZarrMetaTest, V3BadMetadataIsRefusedNamingFileFieldAndValue) {
  const auto inv = Status::Code::kInvalidArgument;
  const auto uns = Status::Code::kUnsupported;
  const json sharded = json::parse(R"([{"name": "sharding_indexed", "configuration": {
      "chunk_shape": [2, 4, 8], "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
      "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]}}])");
  struct Case {
    const char* what;
    const char* patch;  // JSON merged into V3()
    Status::Code code;
    std::initializer_list<const char*> parts;
  };
#define LE R"({"name": "bytes", "configuration": {"endian": "little"}})"
  const Case cases[] = {
      {"unknown codec", R"({"codecs": [)" LE R"(, {"name": "lz4"}]})", uns,
       {"/s/0/zarr.json", "\"codecs\"[1]", "\"lz4\""}},
      {"no array-to-bytes", R"({"codecs": [{"name": "zstd", "configuration": {"level": 1}}]})", inv,
       {"before the array-to-bytes"}},
      {"empty codecs", R"({"codecs": []})", inv, {"no array-to-bytes"}},
      {"two bytes", R"({"codecs": [)" LE "," LE "]}", inv, {"second array-to-bytes"}},
      {"endian missing", R"({"codecs": [{"name": "bytes"}]})", inv, {"\"endian\"", "uint16"}},
      {"endian middle", R"({"codecs": [{"name": "bytes", "configuration": {"endian": "middle"}}]})",
       inv, {"\"middle\""}},
      {"transpose not a permutation",
       R"({"codecs": [{"name": "transpose", "configuration": {"order": [0, 0, 1]}}, )" LE "]}", inv,
       {"not a permutation"}},
      {"transpose F string",
       R"({"codecs": [{"name": "transpose", "configuration": {"order": "F"}}, )" LE "]}", inv,
       {"\"order\"", "permutation"}},
      {"two compressors",
       R"({"codecs": [)" LE R"(, {"name": "gzip", "configuration": {"level": 1}},
                      {"name": "zstd", "configuration": {"level": 1}}]})",
       uns, {"second compressor"}},
      {"gzip level 12", R"({"codecs": [)" LE R"(, {"name": "gzip", "configuration": {"level": 12}}]})",
       inv, {"\"level\"", "12 is outside"}},
      {"blosc shuffle word",
       R"({"codecs": [)" LE R"(, {"name": "blosc", "configuration":
           {"cname": "lz4", "clevel": 1, "shuffle": "byte"}}]})",
       inv, {"\"byte\""}},
      {"int64", R"({"data_type": "int64"})", uns, {"\"data_type\"", "64-bit integers"}},
      {"bool", R"({"data_type": "bool"})", uns, {"\"bool\""}},
      {"unknown type", R"({"data_type": "quux"})", uns, {"\"quux\""}},
      {"short hex fill", R"({"data_type": "float32", "fill_value": "0x7fc0"})", inv,
       {"8 hex digits"}},
      {"grid", R"({"chunk_grid": {"name": "rectilinear"}})", uns, {"\"chunk_grid\"", "rectilinear"}},
      {"chunk 0", R"({"chunk_grid": {"configuration": {"chunk_shape": [4, 0, 16]}}})", inv,
       {"\"chunk_shape\"[1]", "found 0"}},
      {"rank mismatch", R"({"chunk_grid": {"configuration": {"chunk_shape": [4, 16]}}})", inv,
       {"\"chunk_shape\"", "2 dimensions"}},
      {"key encoding", R"({"chunk_key_encoding": {"name": "hashed"}})", uns, {"\"hashed\""}},
      {"separator", R"({"chunk_key_encoding": {"configuration": {"separator": "-"}}})", inv,
       {"\"separator\"", "\"-\""}},
      {"storage transformer", R"({"storage_transformers": [{"name": "x"}]})", uns,
       {"\"storage_transformers\""}},
      {"unknown field", R"({"extra": 1})", uns, {"\"extra\"", "unknown field"}},
      {"must understand", R"({"extra": {"must_understand": true}})", uns, {"\"extra\""}},
      {"node type", R"({"node_type": "group"})", inv, {"\"node_type\"", "\"group\""}},
      {"dimension names", R"({"dimension_names": ["z", "y"]})", inv,
       {"\"dimension_names\"", "2 names"}},
      {"not JSON numbers", R"({"shape": [10, "20", 30]})", inv, {"\"shape\"[1]", "\"20\""}},
  };
#undef LE
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    json j = V3();
    j.merge_patch(json::parse(c.patch));
    ExpectError(P3(j).status(), c.code, c.parts);
  }
  {
    json j = V3();
    j["fill_value"] = nullptr;  // (a merge patch cannot say null: it removes)
    ExpectError(P3(j).status(), inv, {"\"fill_value\"", "null is not"});
    j = V3();
    j["codecs"] = sharded;
    j["codecs"][0]["configuration"]["chunk_shape"] = {3, 4, 8};
    ExpectError(P3(j).status(), inv, {"does not divide", "axis 0"});
    j = V3();
    j["codecs"] = sharded;
    j["codecs"].push_back(json::parse(R"({"name": "gzip", "configuration": {"level": 1}})"));
    ExpectError(P3(j).status(), uns, {"after sharding_indexed"});
  }
  // Index codecs other than bytes + crc32c, and nested sharding.
  json j = V3();
  j["chunk_grid"]["configuration"]["chunk_shape"] = {4, 8, 16};
  j["codecs"] = sharded;
  ASSERT_TRUE(P3(j).ok()) << P3(j).status().ToString();
  json bad = j;
  bad["codecs"][0]["configuration"]["index_codecs"][1] = {{"name", "gzip"}, {"configuration", {{"level", 1}}}};
  ExpectError(P3(bad).status(), uns, {"\"index_codecs\"[1]", "gzip"});
  bad = j;
  bad["codecs"][0]["configuration"]["index_location"] = "middle";
  ExpectError(P3(bad).status(), inv, {"\"index_location\"", "middle"});
  bad = j;
  bad["codecs"][0]["configuration"]["codecs"] = sharded;
  ExpectError(P3(bad).status(), uns, {"sharding inside a shard"});
  bad = j;
  bad["codecs"][0]["configuration"]["chunk_shape"] = {1, 1, 1};
  bad["chunk_grid"]["configuration"]["chunk_shape"] = {4096, 4096, 64};
  bad["shape"] = {5000, 5000, 100};
  ExpectError(P3(bad).status(), uns, {"more than 2^20 inner chunks"});
}

}  // namespace
}  // namespace brickfs
