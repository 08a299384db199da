#include "foreign/foreign_array.h"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/thread_pool.h"
#include "foreign/foreign_image.h"
#include "foreign/foreign_view.h"
#include "memory_storage.h"

namespace brickfs {
namespace {

// The model: a 3D uint16 volume of shape 7 x 9 x 10, voxel (z, y, x) holds
// z * 1000 + y * 10 + x.
constexpr uint64_t kZ = 7, kY = 9, kX = 10;
uint16_t Model(uint64_t z, uint64_t y, uint64_t x) {
  return static_cast<uint16_t>(z * 1000 + y * 10 + x);
}

// The chunk at `c` of chunk shape `ch` in C order (edge chunks padded with
// `pad`), as little- or big-endian bytes, optionally with axes reversed.
std::string ChunkBytes(const std::vector<uint64_t>& c, const std::vector<uint64_t>& ch, bool big,
                       bool reversed, uint16_t pad = 0) {
  std::string out;
  auto put = [&](uint64_t z, uint64_t y, uint64_t x) {
    uint16_t v = (z < kZ && y < kY && x < kX) ? Model(z, y, x) : pad;
    if (big) v = static_cast<uint16_t>((v >> 8) | (v << 8));
    out.append(reinterpret_cast<const char*>(&v), 2);
  };
  if (!reversed) {
    for (uint64_t a = 0; a < ch[0]; ++a)
      for (uint64_t b = 0; b < ch[1]; ++b)
        for (uint64_t d = 0; d < ch[2]; ++d) put(c[0] * ch[0] + a, c[1] * ch[1] + b, c[2] * ch[2] + d);
  } else {  // encoded axes (x, y, z): transpose order [2, 1, 0]
    for (uint64_t d = 0; d < ch[2]; ++d)
      for (uint64_t b = 0; b < ch[1]; ++b)
        for (uint64_t a = 0; a < ch[0]; ++a) put(c[0] * ch[0] + a, c[1] * ch[1] + b, c[2] * ch[2] + d);
  }
  return out;
}

std::string Zlib(const std::string& raw) {
  uLongf n = compressBound(raw.size());
  std::string out(n, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &n,
                      reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 6),
            Z_OK);
  out.resize(n);
  return out;
}

std::string Zstd(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3));
  return out;
}

std::string WithCrc(std::string s) {
  uint8_t b[4];
  PutU32(b, Crc32c(s.data(), s.size()));
  s.append(reinterpret_cast<const char*>(b), 4);
  return s;
}

// Reads every chunk of `a` (through a pool or not) and checks every voxel
// against the model; chunks in `fill` must come back as nullptr.
void ExpectMatchesModel(ForeignArray* a, ThreadPool* pool,
                        const std::vector<ChunkCoord>& fill = {}) {
  const std::vector<uint64_t>& ch = a->chunk();
  std::vector<ChunkCoord> all;
  for (uint64_t i = 0; i < a->grid()[0]; ++i)
    for (uint64_t j = 0; j < a->grid()[1]; ++j)
      for (uint64_t k = 0; k < a->grid()[2]; ++k) all.push_back({i, j, k});
  size_t visited = 0;
  Status st = a->ReadChunks(all, [&](size_t n, const uint8_t* data) {
    EXPECT_EQ(n, visited++);
    const ChunkCoord& c = all[n];
    bool is_fill = std::find(fill.begin(), fill.end(), c) != fill.end();
    EXPECT_EQ(data == nullptr, is_fill) << c[0] << "," << c[1] << "," << c[2];
    if (!data) return Status::Ok();
    for (uint64_t z = 0; z < ch[0]; ++z)
      for (uint64_t y = 0; y < ch[1]; ++y)
        for (uint64_t x = 0; x < ch[2]; ++x) {
          uint64_t gz = c[0] * ch[0] + z, gy = c[1] * ch[1] + y, gx = c[2] * ch[2] + x;
          if (gz >= kZ || gy >= kY || gx >= kX) continue;
          uint16_t v;
          std::memcpy(&v, data + 2 * ((z * ch[1] + y) * ch[2] + x), 2);
          if (v != Model(gz, gy, gx)) {
            ADD_FAILURE() << "voxel " << gz << "," << gy << "," << gx << " is " << v;
            return Status::Ok();
          }
        }
    return Status::Ok();
  }, pool);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(visited, all.size());
}

TEST(ForeignArrayTest, V2ZlibNonDividingChunksWithAMissingChunk) {
  MemoryStorage s;
  s.Put("a/.zarray", R"({"zarr_format": 2, "shape": [7, 9, 10], "chunks": [3, 4, 4],
    "dtype": "<u2", "order": "C", "fill_value": 5, "filters": null,
    "dimension_separator": "/", "compressor": {"id": "zlib", "level": 1}})");
  for (uint64_t i = 0; i < 3; ++i)
    for (uint64_t j = 0; j < 3; ++j)
      for (uint64_t k = 0; k < 3; ++k) {
        if (i == 1 && j == 2 && k == 0) continue;  // missing: fill
        s.Put("a/" + std::to_string(i) + "/" + std::to_string(j) + "/" + std::to_string(k),
              Zlib(ChunkBytes({i, j, k}, {3, 4, 4}, false, false)));
      }
  auto a = ForeignArray::Open(&s, "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->grid(), (std::vector<uint64_t>{3, 3, 3}));
  uint16_t fill;
  std::memcpy(&fill, (*a)->fill().data(), 2);
  EXPECT_EQ(fill, 5);
  ExpectMatchesModel(a->get(), nullptr, {{1, 2, 0}});
  ThreadPool pool(3);
  ExpectMatchesModel(a->get(), &pool, {{1, 2, 0}});
}

TEST(ForeignArrayTest, V2FortranOrderAndBigEndian) {
  MemoryStorage s;
  s.Put("a/.zarray", R"({"zarr_format": 2, "shape": [7, 9, 10], "chunks": [4, 5, 6],
    "dtype": ">u2", "order": "F", "fill_value": 0, "filters": null, "compressor": null})");
  for (uint64_t i = 0; i < 2; ++i)
    for (uint64_t j = 0; j < 2; ++j)
      for (uint64_t k = 0; k < 2; ++k)
        s.Put("a/" + std::to_string(i) + "." + std::to_string(j) + "." + std::to_string(k),
              ChunkBytes({i, j, k}, {4, 5, 6}, true, true));
  auto a = ForeignArray::Open(&s, "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ExpectMatchesModel(a->get(), nullptr);
}

TEST(ForeignArrayTest, CorruptChunkNamesObjectAndChunk) {
  MemoryStorage s;
  s.Put("a/.zarray", R"({"zarr_format": 2, "shape": [7, 9, 10], "chunks": [7, 9, 10],
    "dtype": "<u2", "order": "C", "fill_value": 0, "filters": null,
    "compressor": {"id": "zlib", "level": 1}})");
  std::string z = Zlib(ChunkBytes({0, 0, 0}, {7, 9, 10}, false, false));
  z[z.size() / 2] ^= 0x55;
  s.Put("a/0.0.0", z);
  auto a = ForeignArray::Open(&s, "a");
  ASSERT_TRUE(a.ok());
  Status st = (*a)->ReadChunks({{0, 0, 0}}, [](size_t, const uint8_t*) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("mem://s/a/0.0.0"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("[0,0,0]"), std::string::npos) << st.ToString();
  // Outside the grid.
  st = (*a)->ReadChunks({{1, 0, 0}}, [](size_t, const uint8_t*) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
}

// A v3 sharded array: shards of 2x2x2 inner chunks of 2x3x4 (so shard shape
// 4x6x8), inner codecs transpose + bytes(big) + zstd, index crc32c, index
// at start or end. One shard is missing and one inner chunk is empty.
void WriteSharded(MemoryStorage* s, bool at_start) {
  s->Put("a/zarr.json", std::string(R"({"zarr_format": 3, "node_type": "array",
    "shape": [7, 9, 10], "data_type": "uint16",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 6, 8]}},
    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
    "fill_value": 7,
    "codecs": [{"name": "sharding_indexed", "configuration": {
      "chunk_shape": [2, 3, 4],
      "codecs": [{"name": "transpose", "configuration": {"order": [2, 1, 0]}},
                 {"name": "bytes", "configuration": {"endian": "big"}},
                 {"name": "zstd", "configuration": {"level": 1, "checksum": false}}],
      "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                       {"name": "crc32c"}],
      "index_location": ")") + (at_start ? "start" : "end") + R"("}}]})");
  for (uint64_t i = 0; i < 2; ++i)
    for (uint64_t j = 0; j < 2; ++j)
      for (uint64_t k = 0; k < 2; ++k) {
        if (i == 1 && j == 0 && k == 1) continue;  // missing shard
        std::string chunks;
        std::string index;
        for (uint64_t a = 0; a < 2; ++a)
          for (uint64_t b = 0; b < 2; ++b)
            for (uint64_t c = 0; c < 2; ++c) {
              uint8_t e[16];
              if (i == 0 && j == 0 && k == 0 && a == 1 && b == 0 && c == 1) {
                PutU64(e, ~uint64_t{0});
                PutU64(e + 8, ~uint64_t{0});
              } else {
                std::string z = Zstd(ChunkBytes({2 * i + a, 2 * j + b, 2 * k + c}, {2, 3, 4}, true, true));
                PutU64(e, (at_start ? 8 * 16 + 4 : 0) + chunks.size());
                PutU64(e + 8, z.size());
                chunks += z;
              }
              index.append(reinterpret_cast<const char*>(e), 16);
            }
        index = WithCrc(index);
        s->Put("a/c/" + std::to_string(i) + "/" + std::to_string(j) + "/" + std::to_string(k),
               at_start ? index + chunks : chunks + index);
      }
}

TEST(ForeignArrayTest, V3ShardedIndexAtEndAndStart) {
  for (bool at_start : {false, true}) {
    SCOPED_TRACE(at_start ? "start" : "end");
    MemoryStorage s;
    WriteSharded(&s, at_start);
    auto a = ForeignArray::Open(&s, "a");
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ((*a)->chunk(), (std::vector<uint64_t>{2, 3, 4}));
    EXPECT_EQ((*a)->grid(), (std::vector<uint64_t>{4, 3, 3}));
    std::vector<ChunkCoord> fill = {{1, 0, 1}};  // the empty entry
    for (uint64_t a2 = 2; a2 < 4; ++a2)
      for (uint64_t b = 0; b < 2; ++b)
        for (uint64_t c = 2; c < 3; ++c) fill.push_back({a2, b, c});  // the missing shard
    ExpectMatchesModel(a->get(), nullptr, fill);
    const uint64_t reads = (*a)->index_reads();
    EXPECT_EQ(reads, 8u);  // each shard's index once (the missing one too)
    ThreadPool pool(2);
    ExpectMatchesModel(a->get(), &pool, fill);
    EXPECT_EQ((*a)->index_reads(), reads);  // cached
  }
}

TEST(ForeignArrayTest, ShardIndexEntryOutsideTheShardIsCorruption) {
  MemoryStorage s;
  WriteSharded(&s, false);
  std::string* shard = s.Find("a/c/0/0/0");
  ASSERT_NE(shard, nullptr);
  // Entry 0's offset far past the end; fix the index crc.
  std::string index = shard->substr(shard->size() - 132, 128);
  PutU64(reinterpret_cast<uint8_t*>(index.data()), uint64_t{1} << 40);
  *shard = shard->substr(0, shard->size() - 132) + WithCrc(index);
  auto a = ForeignArray::Open(&s, "a");
  ASSERT_TRUE(a.ok());
  Status st = (*a)->ReadChunks({{0, 0, 0}}, [](size_t, const uint8_t*) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("mem://s/a/c/0/0/0"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("entry 0"), std::string::npos) << st.ToString();
}

// A 5D uint16 array (t=2, c=3, z=5, y=6, x=7) in chunks (1, 2, 2, 4, 3) that
// span two channels: every (t, c) view reads its own voxels, through the
// block reader, along every axis; a 2D (c, y, x) array likewise.
TEST(ForeignViewTest, EveryViewOfA5DArrayMatches) {
  MemoryStorage s;
  const std::vector<uint64_t> shape{2, 3, 5, 6, 7}, ch{1, 2, 2, 4, 3};
  auto value = [](const std::vector<uint64_t>& p) {
    return static_cast<uint16_t>(p[0] * 10000 + p[1] * 1000 + p[2] * 100 + p[3] * 10 + p[4]);
  };
  s.Put("a/.zarray", R"({"zarr_format": 2, "shape": [2, 3, 5, 6, 7], "chunks": [1, 2, 2, 4, 3],
    "dtype": "<u2", "order": "C", "fill_value": 9, "filters": null, "compressor": {"id": "zlib"}})");
  std::vector<uint64_t> g(5);
  for (size_t i = 0; i < 5; ++i) g[i] = (shape[i] + ch[i] - 1) / ch[i];
  std::vector<uint64_t> c(5, 0);
  for (bool done = false; !done;) {
    std::string raw;
    std::vector<uint64_t> p(5);
    for (p[0] = 0; p[0] < ch[0]; ++p[0])
      for (p[1] = 0; p[1] < ch[1]; ++p[1])
        for (p[2] = 0; p[2] < ch[2]; ++p[2])
          for (p[3] = 0; p[3] < ch[3]; ++p[3])
            for (p[4] = 0; p[4] < ch[4]; ++p[4]) {
              std::vector<uint64_t> q(5);
              bool in = true;
              for (size_t i = 0; i < 5; ++i) {
                q[i] = c[i] * ch[i] + p[i];
                in = in && q[i] < shape[i];
              }
              uint16_t v = in ? value(q) : 0xEEEE;
              raw.append(reinterpret_cast<const char*>(&v), 2);
            }
    std::string key = "a/";
    for (size_t i = 0; i < 5; ++i) key += (i ? "." : "") + std::to_string(c[i]);
    if (!(c[2] == 1 && c[3] == 0 && c[4] == 1)) s.Put(key, Zlib(raw));  // some missing
    done = true;
    for (size_t i = 5; i-- > 0;) {
      if (++c[i] < g[i]) {
        done = false;
        break;
      }
      c[i] = 0;
    }
  }
  auto a = ForeignArray::Open(&s, "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ThreadPool pool(2);
  BlockCache cache(1 << 20);
  uint32_t id = 0;
  for (uint64_t t = 0; t < 2; ++t)
    for (uint64_t ci = 0; ci < 3; ++ci) {
      auto v = ForeignView::Create(a->get(), 3, {t, ci}, "view");
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ((*v)->info().shape, (Shape3{5, 6, 7}));
      EXPECT_EQ((*v)->info().block, (Shape3{2, 4, 3}));
      BlockReader r(v->get(), id++, &cache, nullptr, &pool, nullptr);
      std::vector<uint16_t> box(5 * 6 * 7);
      ASSERT_TRUE(r.ReadBox({0, 0, 0}, {5, 6, 7}, reinterpret_cast<uint8_t*>(box.data())).ok());
      for (uint64_t z = 0; z < 5; ++z)
        for (uint64_t y = 0; y < 6; ++y)
          for (uint64_t x = 0; x < 7; ++x) {
            bool missing = z / 2 == 1 && y / 4 == 0 && x / 3 == 1;
            ASSERT_EQ(box[(z * 6 + y) * 7 + x], missing ? 9 : value({t, ci, z, y, x}))
                << t << " " << ci << " " << z << " " << y << " " << x;
          }
      std::vector<uint16_t> plane(5 * 6);
      ASSERT_TRUE(r.ReadPlaneRows(Axis::kX, 4, 0, 5, reinterpret_cast<uint8_t*>(plane.data())).ok());
      EXPECT_EQ(plane[2 * 6 + 5], value({t, ci, 2, 5, 4}));
    }
  EXPECT_FALSE(ForeignView::Create(a->get(), 3, {2, 0}, "v").ok());
  EXPECT_FALSE(ForeignView::Create(a->get(), 3, {0}, "v").ok());
  // 2D: (c, y, x) as z of size 1.
  s.Put("b/.zarray", R"({"zarr_format": 2, "shape": [2, 3, 4], "chunks": [2, 2, 2],
    "dtype": "|u1", "order": "C", "fill_value": 0, "filters": null, "compressor": null})");
  for (uint64_t i = 0; i < 2; ++i)
    for (uint64_t j = 0; j < 2; ++j) {
      std::string raw;
      for (uint64_t cc = 0; cc < 2; ++cc)
        for (uint64_t y = 0; y < 2; ++y)
          for (uint64_t x = 0; x < 2; ++x) raw += static_cast<char>(cc * 100 + (2 * i + y) * 10 + 2 * j + x);
      s.Put("b/0." + std::to_string(i) + "." + std::to_string(j), raw);
    }
  auto b = ForeignArray::Open(&s, "b");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto v = ForeignView::Create(b->get(), 2, {1}, "2d");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->info().shape, (Shape3{1, 3, 4}));
  BlockReader r(v->get(), 99, &cache, nullptr, nullptr, nullptr);
  std::vector<uint8_t> img(12);
  ASSERT_TRUE(r.ReadPlaneRows(Axis::kZ, 0, 0, 3, img.data()).ok());
  for (uint64_t y = 0; y < 3; ++y)
    for (uint64_t x = 0; x < 4; ++x) EXPECT_EQ(img[y * 4 + x], 100 + y * 10 + x);
}

TEST(ForeignImageTest, Ome04With5DAxesAndTwoLevels) {
  MemoryStorage s;
  s.Put(".zgroup", R"({"zarr_format": 2})");
  s.Put(".zattrs", R"({"multiscales": [{"version": "0.4", "name": "img",
    "axes": [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"},
             {"name": "z", "type": "space", "unit": "micrometer"},
             {"name": "y", "type": "space", "unit": "micrometer"},
             {"name": "x", "type": "space", "unit": "micrometer"}],
    "datasets": [
      {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 2, 0.5, 0.5]}]},
      {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 4, 1, 1]},
                                                  {"type": "translation", "translation": [0, 0, 1, 0.25, 0.25]}]}]}],
    "omero": {"channels": [{"label": "DAPI"}, {"label": "GFP"}]}})");
  s.Put("0/.zarray", R"({"zarr_format": 2, "shape": [1, 2, 8, 16, 16], "chunks": [1, 1, 4, 8, 8],
    "dtype": "|u1", "order": "C", "fill_value": 0, "filters": null, "compressor": null})");
  s.Put("1/.zarray", R"({"zarr_format": 2, "shape": [1, 2, 4, 8, 8], "chunks": [1, 1, 4, 8, 8],
    "dtype": "<f4", "order": "C", "fill_value": "NaN", "filters": null, "compressor": null})");
  auto img = ForeignImage::Open(&s, "");
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ((*img)->ome_version(), "0.4");
  EXPECT_EQ((*img)->spatial_axes(), (std::vector<size_t>{2, 3, 4}));
  EXPECT_EQ((*img)->other_axes(), (std::vector<size_t>{0, 1}));
  ASSERT_EQ((*img)->levels().size(), 2u);
  EXPECT_EQ((*img)->levels()[1].scale, (std::vector<double>{1, 1, 4, 1, 1}));
  EXPECT_EQ((*img)->levels()[1].translation[3], 0.25);
  EXPECT_EQ((*img)->level_array(1)->dtype(), DType::kFloat32);
  EXPECT_EQ((*img)->channel_names(), (std::vector<std::string>{"DAPI", "GFP"}));
  EXPECT_EQ((*img)->axes()[4].unit, "micrometer");
}

TEST(ForeignImageTest, BadImagesAreRefusedNamingFileAndField) {
  auto open = [](const std::string& zattrs, const std::string& zarray) {
    MemoryStorage s;
    s.Put(".zgroup", R"({"zarr_format": 2})");
    s.Put(".zattrs", zattrs);
    s.Put("0/.zarray", zarray);
    return ForeignImage::Open(&s, "").status();
  };
  const std::string ok_array = R"({"zarr_format": 2, "shape": [4, 4, 4], "chunks": [2, 2, 2],
    "dtype": "|u1", "order": "C", "fill_value": 0, "filters": null, "compressor": null})";
  auto ms = [](const std::string& axes, const std::string& scale) {
    return R"({"multiscales": [{"version": "0.4", "axes": )" + axes +
           R"(, "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": )" +
           scale + "}]}]}]}";
  };
  const std::string zyx = R"([{"name": "z", "type": "space"}, {"name": "y", "type": "space"},
                               {"name": "x", "type": "space"}])";
  ASSERT_TRUE(open(ms(zyx, "[1, 1, 1]"), ok_array).ok());
  struct Case {
    std::string zattrs, zarray, want;
  } cases[] = {
      {ms(zyx, "[1, 1]"), ok_array, "has 2 values for 3 axes"},
      {ms(zyx, "[1, 0, 1]"), ok_array, "> 0"},
      {ms(R"([{"name": "z", "type": "space"}, {"name": "y", "type": "space"}, {"name": "t", "type": "time"}])",
          "[1, 1, 1]"),
       ok_array, "must come last"},
      {ms(zyx, "[1, 1, 1]"),
       R"({"zarr_format": 2, "shape": [4, 4], "chunks": [2, 2], "dtype": "|u1", "order": "C",
          "fill_value": 0, "filters": null, "compressor": null})",
       "2 dimensions but"},
      {ms(zyx, "[1, 1, 1]"),
       R"({"zarr_format": 2, "shape": [4, 4, 4], "chunks": [2, 2, 2], "dtype": "<i8", "order": "C",
          "fill_value": 0, "filters": null, "compressor": null})",
       "i8"},
      {R"({"multiscales": [{"version": "0.4", "axes": )" + zyx + "}]}", ok_array, "datasets"},
      {"{not json", ok_array, ".zattrs"},
      {ms(zyx, "[1, 1, 1]"), "{\"zarr_format\": 2, ", ".zarray"},
  };
  for (const Case& c : cases) {
    Status st = open(c.zattrs, c.zarray);
    EXPECT_FALSE(st.ok()) << c.want;
    EXPECT_NE(st.message().find(c.want), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find("mem://s/"), std::string::npos) << st.ToString();
  }
}

}  // namespace
}  // namespace brickfs
