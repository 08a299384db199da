// End-to-end tests of the engine without FUSE: TIFF slices written with
// libtiff go in through IngestSlice, in any order, and come back out through
// ReadPlaneRows / ReadVirtualFile along z, y and x, before and after
// Finalize and after reopening the store. Also the error paths (bad TIFF,
// wrong size), rewrites of committed slabs, and spooling under a tight
// memory budget.
#include "volume/volume.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/text.h"
#include "format/json.h"
#include "format/shard_index.h"
#include "store/local_storage.h"
#include "store/shard_store.h"
#include "tiff/tiff_decode.h"

namespace brickfs {
namespace {

constexpr uint64_t kZ = 13, kY = 19, kX = 23;
constexpr Shape3 kBlock{4, 8, 8};
constexpr Shape3 kBrick{8, 16, 16};
constexpr uint64_t kSlabBytes = kBlock[0] * kY * kX * 2;  // uint16

using Bytes = std::vector<uint8_t>;

// A z,y,x uint16 volume held as one slice (Y*X little-endian samples) per z.
struct Source {
  uint64_t nz, ny, nx;
  std::vector<std::vector<uint16_t>> slices;
  uint16_t at(uint64_t z, uint64_t y, uint64_t x) const { return slices[z][y * nx + x]; }
};

// Every voxel non-zero and distinct enough to catch any misplaced row,
// column or slice. `version` changes every value (for rewrites).
Source MakeSource(uint64_t nz, uint64_t ny, uint64_t nx, uint32_t version = 0) {
  Source s{nz, ny, nx, {}};
  for (uint64_t z = 0; z < nz; ++z) {
    std::vector<uint16_t> v(ny * nx);
    for (uint64_t y = 0; y < ny; ++y) {
      for (uint64_t x = 0; x < nx; ++x) {
        v[y * nx + x] = static_cast<uint16_t>(1 + z * 1009 + y * 67 + x * 3 + version * 7919);
      }
    }
    s.slices.push_back(std::move(v));
  }
  return s;
}

std::string TempPath(const std::string& stem) {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "brickfs_volume_test_" + std::to_string(::getpid()) + "_" +
         std::to_string(counter++) + "_" + stem;
}

Bytes ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// A one-image TIFF of `width` x `height` samples written by libtiff.
Bytes MakeTiff(const void* pixels, uint32_t width, uint32_t height, uint16_t bits,
               uint16_t compression = COMPRESSION_NONE) {
  const std::string path = TempPath("slice.tif");
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  EXPECT_NE(tif, nullptr);
  if (!tif) return {};
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, bits);
  TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, compression);
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 4);
  const size_t row_bytes = size_t{width} * bits / 8;
  Bytes row(row_bytes);
  for (uint32_t y = 0; y < height; ++y) {
    std::memcpy(row.data(), static_cast<const uint8_t*>(pixels) + y * row_bytes, row_bytes);
    EXPECT_EQ(TIFFWriteScanline(tif, row.data(), y, 0), 1);
  }
  TIFFClose(tif);
  Bytes bytes = ReadFileBytes(path);
  std::remove(path.c_str());
  return bytes;
}

Bytes SliceTiff(const Source& s, uint64_t z, uint16_t compression = COMPRESSION_NONE) {
  return MakeTiff(s.slices[z].data(), static_cast<uint32_t>(s.nx), static_cast<uint32_t>(s.ny),
                  16, compression);
}

// A TIFF of slice z whose header and strip table are valid but whose
// deflate data is garbage: it fails only while the pixels are decoded.
Bytes GarbledTiff(const Source& s, uint64_t z) {
  Bytes tif = SliceTiff(s, z, COMPRESSION_ADOBE_DEFLATE);
  std::mt19937 rng(static_cast<uint32_t>(z) + 77);
  // libtiff writes strips right after the 8-byte header, the IFD last.
  for (size_t i = 8; i < tif.size() / 2; ++i) tif[i] = static_cast<uint8_t>(rng());
  return tif;
}

std::string SliceName(uint64_t z) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "img_%04llu.tif", static_cast<unsigned long long>(z));
  return buf;
}

// The expected bytes of plane `index` along `axis`: rows of the virtual TIFF.
Bytes ExpectedPlane(const Source& s, Axis axis, uint64_t index) {
  std::vector<uint16_t> v;
  switch (axis) {
    case Axis::kZ:  // rows y, columns x
      v = s.slices[index];
      break;
    case Axis::kY:  // rows z, columns x
      for (uint64_t z = 0; z < s.nz; ++z) {
        for (uint64_t x = 0; x < s.nx; ++x) v.push_back(s.at(z, index, x));
      }
      break;
    case Axis::kX:  // rows z, columns y
      for (uint64_t z = 0; z < s.nz; ++z) {
        for (uint64_t y = 0; y < s.ny; ++y) v.push_back(s.at(z, y, index));
      }
      break;
  }
  Bytes out(v.size() * 2);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

uint64_t Rows(const Source& s, Axis axis) { return axis == Axis::kZ ? s.ny : s.nz; }
uint64_t Planes(const Source& s, Axis axis) {
  return axis == Axis::kZ ? s.nz : axis == Axis::kY ? s.ny : s.nx;
}

Json ParseStatus(const Volume& v) {
  auto j = Json::Parse(v.StatusJson());
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? *j : Json();
}

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);  // rejected slices log warnings by design
    std::string tmpl = ::testing::TempDir() + "brickfs_volume_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    store_path_ = root_ + "/vol.zarr";
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  VolumeOptions Options(uint64_t mem_slabs = 3) const {
    VolumeOptions o;
    o.mem_budget = mem_slabs * kSlabBytes;
    o.cache_budget = 16 * 1024;  // ~25 decoded blocks: eviction happens
    o.threads = 2;
    o.block = kBlock;
    o.brick = kBrick;
    o.zstd_level = 3;
    return o;
  }

  std::unique_ptr<Volume> Open(const VolumeOptions& o, bool read_only = false) {
    StoreOpenOptions so;
    so.create_if_missing = !read_only;
    so.read_only = read_only;
    auto store = Store::Open(store_path_, so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    auto v = Volume::Open(std::move(*store), o);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok()) return nullptr;
    (*v)->Start();
    return std::move(*v);
  }

  void Ingest(Volume* v, const Source& s, uint64_t z) {
    Bytes tif = SliceTiff(s, z, z % 2 ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE);
    const std::string name = SliceName(z);
    auto idx = v->SliceIndexForName(name);
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    ASSERT_EQ(*idx, z);
    Status st = v->IngestSlice(name, z, tif.data(), tif.size());
    ASSERT_TRUE(st.ok()) << name << ": " << st.ToString();
  }

  // Compares every plane along every axis, whole and in row ranges.
  void ExpectVolumeEquals(Volume* v, const Source& s, const std::string& when) {
    SCOPED_TRACE(when);
    ASSERT_TRUE(v->geometry().has_value());
    EXPECT_EQ(v->geometry()->shape, (Shape3{s.nz, s.ny, s.nx}));
    for (Axis axis : {Axis::kZ, Axis::kY, Axis::kX}) {
      ASSERT_EQ(v->PlaneCount(axis), Planes(s, axis));
      const uint64_t rows = Rows(s, axis);
      for (uint64_t i = 0; i < Planes(s, axis); ++i) {
        const Bytes want = ExpectedPlane(s, axis, i);
        const uint64_t row_bytes = want.size() / rows;
        Bytes got(want.size(), 0xEE);
        Status st = v->ReadPlaneRows(axis, i, 0, rows, got.data());
        ASSERT_TRUE(st.ok()) << AxisName(axis) << i << ": " << st.ToString();
        ASSERT_TRUE(got == want) << AxisName(axis) << " plane " << i << " differs";
        // A row range starting mid-block.
        const uint64_t r0 = rows / 3, n = rows - r0 - 1;
        Bytes part(n * row_bytes, 0xEE);
        ASSERT_TRUE(v->ReadPlaneRows(axis, i, r0, n, part.data()).ok());
        ASSERT_TRUE(std::equal(part.begin(), part.end(), want.begin() + r0 * row_bytes))
            << AxisName(axis) << " plane " << i << " rows " << r0 << "+" << n;
      }
    }
  }

  std::string root_, store_path_;
};

std::vector<uint64_t> Shuffled(uint64_t n, uint32_t seed) {
  std::vector<uint64_t> order(n);
  for (uint64_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  return order;
}

bool Exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

TEST_F(VolumeTest, ShuffledIngestReadsBackAlongEveryAxisBeforeAndAfterFinalizeAndReopen) {
  const Source src = MakeSource(kZ, kY, kX);
  {
    auto v = Open(Options(/*mem_slabs=*/4));  // every slab fits: no spooling
    ASSERT_NE(v, nullptr);
    EXPECT_FALSE(v->geometry().has_value());
    EXPECT_EQ(v->PlaneCount(Axis::kZ), 0u);
    EXPECT_EQ(v->VirtualFileSize(Axis::kZ), 0u);
    for (uint64_t z : Shuffled(kZ, 1)) Ingest(v.get(), src, z);
    for (uint64_t z = 0; z < kZ; ++z) EXPECT_TRUE(v->SlicePresent(z)) << z;
    EXPECT_FALSE(v->SlicePresent(kZ));
    // The last slab (z = 12 only) is still buffered: reads mix memory and store.
    ExpectVolumeEquals(v.get(), src, "before finalize");
    ASSERT_TRUE(v->Finalize().ok());
    ExpectVolumeEquals(v.get(), src, "after finalize");
    ASSERT_TRUE(v->Finalize().ok()) << "Finalize is idempotent";

    Json st = ParseStatus(*v);
    EXPECT_TRUE(st.Get("finalized")->as_bool());
    EXPECT_EQ(st.Get("slices")->Get("present")->as_uint(), kZ);
    EXPECT_TRUE(st.Get("slices")->Get("missing")->as_array().empty());
    EXPECT_EQ(st.Get("errors_total")->as_uint(), 0u);
    EXPECT_EQ(st.Get("slabs")->Get("flushed")->as_uint(), 4u);
    EXPECT_EQ(st.Get("slabs")->Get("spooled_total")->as_uint(), 0u);
    EXPECT_EQ(st.Get("shape")->Dump(), "[13,19,23]");
    EXPECT_EQ(st.Get("dtype")->as_string(), "uint16");
  }

  // Store metadata: finalized, every slice present.
  StoreOpenOptions peek;
  peek.read_only = true;
  auto store = Store::Open(store_path_, peek);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->meta().has_value());
  const VolumeMeta meta = *(*store)->meta();
  store->reset();
  EXPECT_TRUE(meta.finalized);
  EXPECT_EQ(meta.present, (ZRanges{{0, kZ - 1}}));
  EXPECT_EQ(meta.geo.shape, (Shape3{kZ, kY, kX}));
  EXPECT_EQ(meta.geo.block, kBlock);
  EXPECT_EQ(meta.geo.brick, kBrick);
  EXPECT_EQ(meta.geo.dtype, DType::kUint16);
  EXPECT_EQ(meta.zstd_level, 3);

  // One valid shard per brick: 2 x 2 x 2 bricks, every block non-fill.
  ShardStore shards(store_path_ + "/0", meta.geo, true);
  const Shape3 grid = meta.geo.brick_grid();
  ASSERT_EQ(grid, (Shape3{2, 2, 2}));
  uint64_t live = 0;
  for (uint64_t z = 0; z < grid[0]; ++z) {
    for (uint64_t y = 0; y < grid[1]; ++y) {
      for (uint64_t x = 0; x < grid[2]; ++x) {
        const std::string path = store_path_ + "/0/c/" + std::to_string(z) + "/" +
                                 std::to_string(y) + "/" + std::to_string(x);
        EXPECT_TRUE(Exists(path)) << path;
        auto idx = shards.GetIndex({z, y, x});
        ASSERT_TRUE(idx.ok()) << idx.status().ToString();
        live += (*idx)->live_blocks();
      }
    }
  }
  EXPECT_EQ(live, Product(meta.geo.block_grid()));  // 4 * 3 * 3
  EXPECT_FALSE(Exists(store_path_ + "/.brickfs/spool")) << "spool dir left behind";

  // Reopen: everything comes from the store now.
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  ExpectVolumeEquals(v.get(), src, "after reopen");
  for (uint64_t z = 0; z < kZ; ++z) EXPECT_TRUE(v->SlicePresent(z));
}

TEST_F(VolumeTest, BytesWrittenEqualBytesOnDiskAndShardsAreValid) {
  const Source src = MakeSource(kZ, kY, kX, 3);
  VolumeOptions o = Options();
  o.compact_dead_share = 2.0;  // appends only, no rewrite at finalize
  auto v = Open(o);
  ASSERT_NE(v, nullptr);
  for (uint64_t z : Shuffled(kZ, 2)) Ingest(v.get(), src, z);
  ASSERT_TRUE(v->Finalize().ok());
  Json st = ParseStatus(*v);
  const uint64_t written = st.Get("bytes")->Get("written")->as_uint();
  const uint64_t compressed = st.Get("bytes")->Get("compressed")->as_uint();
  EXPECT_GT(compressed, 0u);
  EXPECT_GE(written, compressed);
  EXPECT_EQ(st.Get("blocks")->Get("written")->as_uint(), 36u);
  EXPECT_EQ(st.Get("bytes")->Get("raw_flushed")->as_uint(), 36u * 512);

  ShardStore shards(store_path_ + "/0", *v->geometry(), true);
  auto usage = shards.ScanUsage(v->geometry()->brick_grid());
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  // Appends only: every byte written is on disk, nothing else is.
  EXPECT_EQ(usage->file_bytes, written);
  EXPECT_EQ(usage->live_block_bytes, compressed) << "no block was written twice";
  EXPECT_EQ(usage->live_blocks, 36u);
}

TEST_F(VolumeTest, FinalizeCompactsShardsWhoseDeadBytesPassTheThreshold) {
  const Source src = MakeSource(kZ, kY, kX, 3);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  for (uint64_t z = 0; z < kZ; ++z) Ingest(v.get(), src, z);
  ASSERT_TRUE(v->Finalize().ok());
  v.reset();
  // Rewrite every slice twice: each rewrite burst re-appends its slabs.
  for (int round = 0; round < 2; ++round) {
    v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < kZ; ++z) Ingest(v.get(), src, z);
    ASSERT_TRUE(v->Finalize().ok());
    v.reset();
  }
  v = Open(Options());
  ASSERT_NE(v, nullptr);
  ShardStore shards(store_path_ + "/0", *v->geometry(), true);
  auto usage = shards.ScanUsage(v->geometry()->brick_grid());
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_EQ(usage->file_bytes, usage->live_block_bytes + usage->index_bytes)
      << "dead bytes left after finalize";
  ExpectVolumeEquals(v.get(), src, "after compaction");
}

TEST_F(VolumeTest, ReadVirtualFileAtRandomOffsetsMatchesHeaderPlusPixels) {
  const Source src = MakeSource(kZ, kY, kX, 1);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  for (uint64_t z : Shuffled(kZ, 3)) Ingest(v.get(), src, z);
  std::mt19937 rng(5);
  for (int phase = 0; phase < 2; ++phase) {
    if (phase == 1) {
      ASSERT_TRUE(v->Finalize().ok());
    }
    for (Axis axis : {Axis::kZ, Axis::kY, Axis::kX}) {
      const uint64_t size = v->VirtualFileSize(axis);
      const Bytes pixels = ExpectedPlane(src, axis, 0);
      ASSERT_GT(size, pixels.size());
      for (uint64_t plane : {uint64_t{0}, Planes(src, axis) - 1}) {
        SCOPED_TRACE(std::string(AxisName(axis)) + " plane " + std::to_string(plane));
        const Bytes want_pixels = ExpectedPlane(src, axis, plane);
        Bytes whole(size + 100, 0xEE);
        auto n = v->ReadVirtualFile(axis, plane, 0, whole.size(), whole.data());
        ASSERT_TRUE(n.ok()) << n.status().ToString();
        ASSERT_EQ(*n, size) << "a read past EOF returns what there is";
        whole.resize(size);
        // header() + pixels: the file ends with the plane's rows.
        EXPECT_TRUE(std::equal(want_pixels.begin(), want_pixels.end(),
                               whole.end() - static_cast<long>(want_pixels.size())));
        EXPECT_EQ(std::memcmp(whole.data(), "II*\0", 4), 0);
        // And a TIFF reader sees exactly the plane.
        Bytes decoded;
        auto info = DecodeTiffSlice(whole.data(), whole.size(),
                                    [&](const SliceInfo& si) -> Result<uint8_t*> {
                                      decoded.resize(si.width * si.height * 2);
                                      return decoded.data();
                                    });
        ASSERT_TRUE(info.ok()) << info.status().ToString();
        EXPECT_EQ(info->dtype, DType::kUint16);
        EXPECT_EQ(info->height, Rows(src, axis));
        EXPECT_TRUE(decoded == want_pixels);
        // Random windows, some straddling the header/pixel boundary, some
        // mid-row, some running past EOF.
        const uint64_t po = size - want_pixels.size();
        for (int i = 0; i < 60; ++i) {
          uint64_t off;
          switch (i % 4) {
            case 0: off = rng() % size; break;
            case 1: off = po - 1 - rng() % std::min<uint64_t>(po, 64); break;
            case 2: off = po + rng() % want_pixels.size(); break;
            default: off = size - 1 - rng() % 50; break;
          }
          size_t len = 1 + rng() % 700;
          Bytes buf(len, 0xEE);
          auto r = v->ReadVirtualFile(axis, plane, off, len, buf.data());
          ASSERT_TRUE(r.ok()) << r.status().ToString();
          const size_t expect_n = static_cast<size_t>(std::min<uint64_t>(len, size - off));
          ASSERT_EQ(*r, expect_n) << "offset " << off << " len " << len;
          ASSERT_TRUE(std::equal(buf.begin(), buf.begin() + static_cast<long>(expect_n),
                                 whole.begin() + static_cast<long>(off)))
              << "offset " << off << " len " << len;
        }
        Bytes tail(10);
        auto eof = v->ReadVirtualFile(axis, plane, size, 10, tail.data());
        ASSERT_TRUE(eof.ok());
        EXPECT_EQ(*eof, 0u);
      }
    }
  }
  Bytes buf(10);
  EXPECT_EQ(v->ReadVirtualFile(Axis::kZ, kZ, 0, 10, buf.data()).status().code(),
            Status::Code::kNotFound);
  EXPECT_EQ(v->ReadVirtualFile(Axis::kX, kX, 0, 10, buf.data()).status().code(),
            Status::Code::kNotFound);
}

TEST_F(VolumeTest, ZeroLengthReadsReturnZeroAnywhere) {
  const Source src = MakeSource(kZ, kY, kX);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  for (uint64_t z = 0; z < kZ; ++z) Ingest(v.get(), src, z);
  ASSERT_TRUE(v->Finalize().ok());  // everything comes from the store
  for (Axis axis : {Axis::kZ, Axis::kY, Axis::kX}) {
    const uint64_t size = v->VirtualFileSize(axis);
    const uint64_t po = size - ExpectedPlane(src, axis, 0).size();
    const uint64_t rb = ExpectedPlane(src, axis, 0).size() / Rows(src, axis);
    for (uint64_t off : {uint64_t{0}, po - 1, po, po + 1, po + rb, size - 1, size}) {
      uint8_t buf[1] = {0xEE};
      Result<size_t> n = Status::Unsupported("not run");
      EXPECT_NO_THROW(n = v->ReadVirtualFile(axis, 0, off, 0, buf))
          << AxisName(axis) << " offset " << off;
      ASSERT_TRUE(n.ok()) << AxisName(axis) << " offset " << off << ": " << n.status().ToString();
      EXPECT_EQ(*n, 0u) << AxisName(axis) << " offset " << off;
      EXPECT_EQ(buf[0], 0xEE);
    }
  }
}

TEST_F(VolumeTest, BadTiffIsInvalidArgumentAndNothingStoredChanges) {
  const Source src = MakeSource(kZ, kY, kX);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);

  // As the very first slice: the volume stays undefined.
  Bytes junk(3000);
  std::mt19937 rng(11);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  Status s = v->IngestSlice("img_0002.tif", 2, junk.data(), junk.size());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("img_0002.tif"), std::string::npos) << s.message();
  EXPECT_FALSE(v->geometry().has_value());
  EXPECT_FALSE(v->SlicePresent(2));

  for (uint64_t z = 0; z < 8; ++z) Ingest(v.get(), src, z);  // slabs 0, 1 committed
  Ingest(v.get(), src, 9);                                   // slab 2 buffered
  ASSERT_TRUE(v->Finalize().ok());
  Ingest(v.get(), src, 10);
  const std::string shard = store_path_ + "/0/c/0/0/0";
  const Bytes shard_before = ReadFileBytes(shard);
  ASSERT_FALSE(shard_before.empty());

  // Junk, a truncated TIFF, and an empty file, over a committed slice, a
  // buffered slice and a new slice.
  Bytes good = SliceTiff(src, 1);
  Bytes truncated(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
  // Valid header and strip table, garbage deflate data: fails only while
  // decoding pixels, after the slab was chosen. (Over the committed z = 1
  // this is covered by FailedDecodeOverCommittedSliceDoesNotRewriteItsSlab.)
  Bytes garbled = GarbledTiff(src, 1);
  for (uint64_t z : {uint64_t{10}, uint64_t{11}}) {
    Status st = v->IngestSlice(SliceName(z), z, garbled.data(), garbled.size());
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << z << ": " << st.ToString();
  }
  for (const Bytes* bad : {&junk, &truncated}) {
    for (uint64_t z : {uint64_t{1}, uint64_t{10}, uint64_t{11}}) {
      Status st = v->IngestSlice(SliceName(z), z, bad->data(), bad->size());
      EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << z << ": " << st.ToString();
      EXPECT_NE(st.message().find(SliceName(z)), std::string::npos) << st.message();
    }
  }
  EXPECT_EQ(v->IngestSlice(SliceName(11), 11, nullptr, 0).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(v->SlicePresent(11));
  EXPECT_TRUE(v->SlicePresent(10));
  EXPECT_EQ(ReadFileBytes(shard), shard_before);
  ASSERT_TRUE(v->Finalize().ok());
  EXPECT_EQ(ReadFileBytes(shard), shard_before);

  // Data as before: slices 0..7, 9, 10 present; others fill.
  Source expect = src;
  expect.nz = 11;
  expect.slices.resize(11);
  std::fill(expect.slices[8].begin(), expect.slices[8].end(), 0);
  ExpectVolumeEquals(v.get(), expect, "after bad slices");

  Json st = ParseStatus(*v);
  EXPECT_GE(st.Get("errors_total")->as_uint(), 10u);  // 1 + 2 + 2*3 + 1
  const auto& errors = st.Get("errors")->as_array();
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.front().Get("file")->as_string(), "img_0002.tif");
}

TEST_F(VolumeTest, FailedDecodeOverCommittedSliceDoesNotRewriteItsSlab) {
  // IngestSlice promises that on any error nothing stored changes. A TIFF
  // that fails only while decoding pixels, sent for a slice of a committed
  // slab, must not leave that slab loaded and re-flushed (dead bytes,
  // write amplification, memory held until Finalize).
  const Source src = MakeSource(8, kY, kX);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  for (uint64_t z = 0; z < 8; ++z) Ingest(v.get(), src, z);
  ASSERT_TRUE(v->Finalize().ok());
  const std::string shard = store_path_ + "/0/c/0/0/0";
  const Bytes before = ReadFileBytes(shard);
  const Bytes garbled = GarbledTiff(src, 1);
  Status s = v->IngestSlice(SliceName(1), 1, garbled.data(), garbled.size());
  ASSERT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  Json st = ParseStatus(*v);
  EXPECT_EQ(st.Get("slabs")->Get("buffered")->as_uint(), 0u)
      << "the committed slab stayed loaded after a failed slice";
  ASSERT_TRUE(v->Finalize().ok());
  EXPECT_EQ(ReadFileBytes(shard).size(), before.size())
      << "a failed slice caused its committed slab to be written again";
  ExpectVolumeEquals(v.get(), src, "after failed rewrite");
}

TEST_F(VolumeTest, WrongSizeOrDtypeSliceIsInvalidArgumentNamingTheFile) {
  const Source src = MakeSource(kZ, kY, kX);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  for (uint64_t z = 0; z < 3; ++z) Ingest(v.get(), src, z);

  const Source narrow = MakeSource(1, kY, kX - 1);
  Bytes tif = SliceTiff(narrow, 0);
  Status s = v->IngestSlice("narrow_0003.tif", 3, tif.data(), tif.size());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("narrow_0003.tif"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("22x19"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("23x19"), std::string::npos) << s.message();
  EXPECT_FALSE(v->SlicePresent(3));

  // Over a slice already present: it keeps its data.
  const Source tall = MakeSource(1, kY + 1, kX);
  tif = SliceTiff(tall, 0);
  EXPECT_EQ(v->IngestSlice("tall_0001.tif", 1, tif.data(), tif.size()).code(),
            Status::Code::kInvalidArgument);

  std::vector<uint8_t> u8(kY * kX, 5);
  tif = MakeTiff(u8.data(), kX, kY, 8);
  s = v->IngestSlice("bytes_0004.tif", 4, tif.data(), tif.size());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("uint8"), std::string::npos) << s.message();

  Source expect = src;
  expect.nz = 3;
  expect.slices.resize(3);
  ExpectVolumeEquals(v.get(), expect, "after wrong-size slices");
}

TEST_F(VolumeTest, RewritingASliceOfACommittedSlabReplacesOnlyThatSlice) {
  Source src = MakeSource(8, kY, kX);
  const Source v2 = MakeSource(8, kY, kX, 42);
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < 8; ++z) Ingest(v.get(), src, z);
    ASSERT_TRUE(v->Finalize().ok());
    ExpectVolumeEquals(v.get(), src, "first version");

    Ingest(v.get(), v2, 1);
    src.slices[1] = v2.slices[1];
    ExpectVolumeEquals(v.get(), src, "rewrite before finalize");
    ASSERT_TRUE(v->Finalize().ok());
    ExpectVolumeEquals(v.get(), src, "rewrite after finalize");

    // Rewriting twice more, one slab at a time.
    Ingest(v.get(), v2, 6);
    src.slices[6] = v2.slices[6];
    ASSERT_TRUE(v->Finalize().ok());
    Ingest(v.get(), v2, 1);  // same content again
    ASSERT_TRUE(v->Finalize().ok());
    ExpectVolumeEquals(v.get(), src, "second rewrite");
    Json st = ParseStatus(*v);
    EXPECT_EQ(st.Get("slices")->Get("present")->as_uint(), 8u);
    EXPECT_EQ(st.Get("errors_total")->as_uint(), 0u);
  }
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  ExpectVolumeEquals(v.get(), src, "rewrite after reopen");
}

TEST_F(VolumeTest, RewriteThatMakesABlockAllFillSurvivesReopen) {
  // Slices 0, 2, 3 are zero in the first 8x8 block column; slice 1 is not.
  // Rewriting slice 1 with zeros there turns block (0,0,0) into fill, so its
  // shard entry must be cleared, and the shard must stay valid on disk.
  Source src = MakeSource(4, kY, kX);
  for (uint64_t z : {0u, 2u, 3u}) {
    for (uint64_t y = 0; y < 8; ++y) {
      for (uint64_t x = 0; x < 8; ++x) src.slices[z][y * kX + x] = 0;
    }
  }
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < 4; ++z) Ingest(v.get(), src, z);
    ASSERT_TRUE(v->Finalize().ok());
    for (uint64_t y = 0; y < 8; ++y) {
      for (uint64_t x = 0; x < 8; ++x) src.slices[1][y * kX + x] = 0;
    }
    Ingest(v.get(), src, 1);
    ASSERT_TRUE(v->Finalize().ok());
    ExpectVolumeEquals(v.get(), src, "after rewrite to fill");
  }
  // A new mount must read it back (it validates every shard index it loads).
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    ExpectVolumeEquals(v.get(), src, "after reopen");
  }
  ShardStore shards(store_path_ + "/0", [] {
    Geometry g;
    g.shape = {4, kY, kX};
    g.block = kBlock;
    g.brick = kBrick;
    g.dtype = DType::kUint16;
    return g;
  }(), true);
  auto idx = shards.GetIndex({0, 0, 0});
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_TRUE((*idx)->at(0).empty()) << "block (0,0,0) is fill: its entry must be 2^64-1";
}

TEST_F(VolumeTest, OneSlabBudgetWithRoundRobinSlicesSpoolsAndStaysCorrect) {
  const Source src = MakeSource(12, kY, kX, 9);
  auto v = Open(Options(/*mem_slabs=*/1));
  ASSERT_NE(v, nullptr);
  // z = 0, 4, 8, 1, 5, 9, ...: every slice lands in a different slab than
  // the one before, with three slabs open at once.
  std::vector<uint64_t> order;
  for (uint64_t i = 0; i < 4; ++i) {
    for (uint64_t slab = 0; slab < 3; ++slab) order.push_back(slab * 4 + i);
  }
  for (size_t k = 0; k < order.size(); ++k) {
    Ingest(v.get(), src, order[k]);
    if (k == 5) {
      // Mid-way: spooled slabs still read back (from the spool file).
      Source partial = src;  // z = 0, 1, 4, 5, 8, 9 received: depth 10
      partial.nz = 10;
      partial.slices.resize(10);
      for (uint64_t z = 0; z < 10; ++z) {
        if (std::find(order.begin(), order.begin() + 6, z) == order.begin() + 6) {
          std::fill(partial.slices[z].begin(), partial.slices[z].end(), 0);
        }
      }
      ExpectVolumeEquals(v.get(), partial, "while spooled");
      Json st = ParseStatus(*v);
      EXPECT_GE(st.Get("slabs")->Get("spooled")->as_uint(), 1u);
      EXPECT_LE(st.Get("memory")->Get("used")->as_uint(), kSlabBytes);
    }
  }
  Json st = ParseStatus(*v);
  EXPECT_GT(st.Get("slabs")->Get("spooled_total")->as_uint(), 0u);
  EXPECT_LE(st.Get("memory")->Get("peak")->as_uint(), kSlabBytes);
  ExpectVolumeEquals(v.get(), src, "after spooling");
  ASSERT_TRUE(v->Finalize().ok());
  ExpectVolumeEquals(v.get(), src, "after finalize");
  EXPECT_FALSE(Exists(store_path_ + "/.brickfs/spool"));
  v.reset();
  v = Open(Options(1));
  ASSERT_NE(v, nullptr);
  ExpectVolumeEquals(v.get(), src, "after reopen");
}

// Names come from whoever writes to the mount: the status stays valid UTF-8
// JSON with every error on one line, whatever bytes a name holds.
TEST_F(VolumeTest, RecordErrorKeepsTheStatusValidUtf8WithNamesSpelledOut) {
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  v->RecordError(std::string("scan_\xff\xfe\n_3.tif"),
                 std::string("\"scan_\xff\xfe\n_3.tif\" is not a TIFF \x1b[31m"));
  Bytes junk(100, 0x42);
  const std::string name = "bad\nname\x1b_\xc3_4.tif";
  EXPECT_FALSE(v->IngestSlice(name, 4, junk.data(), junk.size()).ok());
  const std::string text = v->StatusJson();
  EXPECT_TRUE(IsValidUtf8(text)) << text;
  Json st = ParseStatus(*v);
  const auto& errors = st.Get("errors")->as_array();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].Get("file")->as_string(), "scan_\\xff\\xfe\\n_3.tif");
  EXPECT_EQ(errors[0].Get("message")->as_string(),
            "\"scan_\\xff\\xfe\\n_3.tif\" is not a TIFF \\x1b[31m");
  EXPECT_EQ(errors[1].Get("file")->as_string(), "bad\\nname\\x1b_\\xc3_4.tif");
  for (const auto& e : errors) {
    for (const char* k : {"file", "message"}) {
      for (unsigned char c : e.Get(k)->as_string()) EXPECT_GE(c, 0x20) << k;
    }
  }
}

// A spool file replaced by a symlink (to a file an attacker wants
// overwritten) is refused: the slice that needed the spool fails, naming it,
// and the link's target is unchanged.
TEST_F(VolumeTest, SymlinkedSpoolFileIsRefusedAndItsTargetUntouched) {
  const Source src = MakeSource(12, kY, kX, 3);
  auto v = Open(Options(/*mem_slabs=*/1));
  ASSERT_NE(v, nullptr);
  const std::string victim = root_ + "/victim";
  {
    std::ofstream out(victim, std::ios::binary);
    out << "precious\n";
  }
  ASSERT_EQ(::mkdir((store_path_ + "/.brickfs/spool").c_str(), 0755), 0);
  for (int k = 0; k < 3; ++k) {
    const std::string link = store_path_ + "/.brickfs/spool/slab-" + std::to_string(k);
    ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  }
  Status refused;
  for (uint64_t z : {0, 4, 8}) {  // three slabs, room for one: the others spool
    Bytes tif = SliceTiff(src, z);
    Status st = v->IngestSlice(SliceName(z), z, tif.data(), tif.size());
    if (!st.ok() && refused.ok()) refused = st;
  }
  ASSERT_FALSE(refused.ok()) << "nothing was spooled";
  EXPECT_NE(refused.message().find("symbolic link"), std::string::npos) << refused.ToString();
  EXPECT_NE(refused.message().find("/.brickfs/spool/slab-"), std::string::npos)
      << refused.ToString();
  EXPECT_EQ(ReadFileBytes(victim), Bytes({'p', 'r', 'e', 'c', 'i', 'o', 'u', 's', '\n'}));
}

// A flush that cannot write keeps its slab in memory; Finalize then fails
// naming the cause (not just "see status errors"), HasUnwrittenSlabs says
// data would be lost by giving up, and a later Finalize succeeds once the
// cause is gone.
TEST_F(VolumeTest, FinalizeThatCannotWriteNamesTheCauseAndCanBeRetried) {
  const Source src = MakeSource(4, kY, kX, 5);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  Ingest(v.get(), src, 0);  // defines the geometry; slab 0 stays buffered
  const std::string elsewhere = root_ + "/elsewhere";
  ASSERT_EQ(::mkdir(elsewhere.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((store_path_ + "/0/c").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), (store_path_ + "/0/c/0").c_str()), 0);
  for (uint64_t z = 1; z < 4; ++z) {
    Bytes tif = SliceTiff(src, z);
    (void)v->IngestSlice(SliceName(z), z, tif.data(), tif.size()).ok();
  }
  EXPECT_TRUE(v->HasUnwrittenSlabs());
  Status fin = v->Finalize();
  ASSERT_FALSE(fin.ok());
  EXPECT_NE(fin.message().find("symbolic link"), std::string::npos) << fin.ToString();
  EXPECT_NE(fin.message().find(store_path_ + "/0/c/0"), std::string::npos) << fin.ToString();
  EXPECT_TRUE(v->HasUnwrittenSlabs());
  EXPECT_EQ(::rmdir(elsewhere.c_str()), 0) << "a shard was written through the link";
  ASSERT_EQ(::unlink((store_path_ + "/0/c/0").c_str()), 0);
  fin = v->Finalize();
  ASSERT_TRUE(fin.ok()) << fin.ToString();
  EXPECT_FALSE(v->HasUnwrittenSlabs());
  ExpectVolumeEquals(v.get(), src, "after the retried finalize");
}

TEST_F(VolumeTest, MissingSlicesReadAsFillAndAreReported) {
  Source src = MakeSource(kZ, kY, kX);
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < kZ; ++z) {
      if (z != 5 && z != 6) Ingest(v.get(), src, z);
    }
    ASSERT_TRUE(v->Finalize().ok());
    Json st = ParseStatus(*v);
    EXPECT_EQ(st.Get("slices")->Get("missing")->Dump(), "[[5,6]]");
    EXPECT_EQ(st.Get("slices")->Get("present")->as_uint(), kZ - 2);
  }
  std::fill(src.slices[5].begin(), src.slices[5].end(), 0);
  std::fill(src.slices[6].begin(), src.slices[6].end(), 0);
  StoreOpenOptions peek;
  peek.read_only = true;
  peek.take_lock = false;
  auto store = Store::Open(store_path_, peek);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->meta()->present, (ZRanges{{0, 4}, {7, kZ - 1}}));
  store->reset();
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  EXPECT_FALSE(v->SlicePresent(5));
  EXPECT_TRUE(v->SlicePresent(7));
  ExpectVolumeEquals(v.get(), src, "reopened with holes");
  // Filling the hole later works and leaves the rest alone.
  const Source full = MakeSource(kZ, kY, kX);
  Ingest(v.get(), full, 5);
  Ingest(v.get(), full, 6);
  ASSERT_TRUE(v->Finalize().ok());
  ExpectVolumeEquals(v.get(), full, "holes filled");
}

TEST_F(VolumeTest, FixedShapeVolumeFlushesItsShortLastSlabWithoutFinalize) {
  VolumeMeta meta;
  meta.geo.shape = {kZ, kY, kX};
  meta.geo.block = kBlock;
  meta.geo.brick = kBrick;
  meta.geo.dtype = DType::kUint16;
  meta.fixed_shape = true;
  ASSERT_TRUE(Store::Create(store_path_, meta).ok());
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  auto outside = v->SliceIndexForName(SliceName(kZ));
  EXPECT_EQ(outside.status().code(), Status::Code::kInvalidArgument);
  const Source src = MakeSource(kZ, kY, kX, 5);
  for (uint64_t z : Shuffled(kZ, 8)) Ingest(v.get(), src, z);
  // Every slab, the one-slice last slab included, is complete: all flush.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  Json st;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    st = ParseStatus(*v);
  } while (st.Get("slabs")->Get("flushed")->as_uint() < 4 &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(st.Get("slabs")->Get("flushed")->as_uint(), 4u);
  EXPECT_EQ(st.Get("slices")->Get("expected")->as_uint(), kZ);
  ExpectVolumeEquals(v.get(), src, "fixed shape");
  ASSERT_TRUE(v->Finalize().ok());
}

TEST_F(VolumeTest, MemBudgetBelowOneSlabIsNoSpace) {
  VolumeOptions o = Options();
  o.mem_budget = kSlabBytes - 1;
  auto v = Open(o);
  ASSERT_NE(v, nullptr);
  const Source src = MakeSource(1, kY, kX);
  Bytes tif = SliceTiff(src, 0);
  Status s = v->IngestSlice(SliceName(0), 0, tif.data(), tif.size());
  EXPECT_EQ(s.code(), Status::Code::kNoSpace) << s.ToString();
  EXPECT_FALSE(v->geometry().has_value());
}

TEST_F(VolumeTest, InvalidOptionsAreInvalidArgument) {
  VolumeOptions o = Options();
  o.zstd_level = 23;
  auto store = Store::Open(store_path_, [] {
    StoreOpenOptions so;
    so.create_if_missing = true;
    return so;
  }());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(Volume::Open(std::move(*store), o).status().code(), Status::Code::kInvalidArgument);

  // A brick that is not a multiple of the block is refused with the first
  // slice, which is then not stored.
  o = Options();
  o.brick = Shape3{8, 16, 12};
  auto v = Open(o);
  ASSERT_NE(v, nullptr);
  const Source src = MakeSource(1, kY, kX);
  Bytes tif = SliceTiff(src, 0);
  Status s = v->IngestSlice(SliceName(0), 0, tif.data(), tif.size());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_FALSE(v->geometry().has_value());
  EXPECT_FALSE(v->SlicePresent(0));
}

TEST_F(VolumeTest, ReadOnlyVolumeRefusesSlicesButServesReads) {
  const Source src = MakeSource(kZ, kY, kX);
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < kZ; ++z) Ingest(v.get(), src, z);
    ASSERT_TRUE(v->Finalize().ok());
  }
  auto v = Open(Options(), /*read_only=*/true);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(v->read_only());
  Bytes tif = SliceTiff(src, 0);
  EXPECT_EQ(v->IngestSlice(SliceName(0), 0, tif.data(), tif.size()).code(),
            Status::Code::kUnsupported);
  ExpectVolumeEquals(v.get(), src, "read-only");
  EXPECT_TRUE(v->Finalize().ok());
}

TEST_F(VolumeTest, RegionsOfThousandsOfBlocksAreReadInBatchesAndMatch) {
  // 1×2×2 blocks: a 32³ brick is 8192 blocks, four batches of
  // kMaxBatchBlocks; a YZ plane spans every block row in one batch.
  const uint64_t n = 40;
  const Source src = MakeSource(n, n, n);
  VolumeOptions o = Options();
  o.block = {1, 2, 2};
  o.brick = {32, 32, 32};
  o.mem_budget = 64 * n * n * 2;
  o.cache_budget = 4u << 20;
  {
    auto v = Open(o);
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < n; ++z) Ingest(v.get(), src, z);
    ASSERT_TRUE(v->Finalize().ok());
  }
  for (uint64_t cache : {uint64_t{4} << 20, uint64_t{0}}) {  // with and without a block cache
    o.cache_budget = cache;
    auto v = Open(o, /*read_only=*/true);
    ASSERT_NE(v, nullptr);
    ExpectVolumeEquals(v.get(), src, "cache " + std::to_string(cache));
    Bytes brick(32 * 32 * 32 * 2);
    auto got = v->ReadBrickFile({0, 0, 0}, 0, brick.size(), brick.data());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(*got, brick.size());
    for (uint64_t z = 0; z < 32; ++z) {
      for (uint64_t y = 0; y < 32; ++y) {
        for (uint64_t x = 0; x < 32; ++x) {
          uint16_t value;
          std::memcpy(&value, &brick[((z * 32 + y) * 32 + x) * 2], 2);
          ASSERT_EQ(value, src.at(z, y, x)) << z << "," << y << "," << x;
        }
      }
    }
  }
}

TEST_F(VolumeTest, YzReadsCacheDecodedBlocksNaturalAndTransposeThemOnTheirSecondUse) {
  const Source src = MakeSource(kZ, kY, kX);
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < kZ; ++z) Ingest(v.get(), src, z);
    ASSERT_TRUE(v->Finalize().ok());
  }
  auto v = Open(Options(), /*read_only=*/true);
  ASSERT_NE(v, nullptr);
  auto cache_used = [&] { return ParseStatus(*v).Get("memory")->Get("cache_used")->as_uint(); };
  auto read_x = [&](uint64_t x) {
    const Bytes want = ExpectedPlane(src, Axis::kX, x);
    Bytes got(want.size(), 0xEE);
    ASSERT_TRUE(v->ReadPlaneRows(Axis::kX, x, 0, kZ, got.data()).ok());
    EXPECT_TRUE(got == want) << "x plane " << x;
  };
  // x = 1, 2 and 3 share one column of blocks (block x = 8).
  const uint64_t column = CeilDiv(kZ, kBlock[0]) * CeilDiv(kY, kBlock[1]);
  const uint64_t block_bytes = kBlock[0] * kBlock[1] * kBlock[2] * 2;
  read_x(1);  // decoded, cached as they are, voxels gathered
  EXPECT_EQ(cache_used(), column * block_bytes);
  read_x(2);  // each block transposed once: both layouts cached
  EXPECT_EQ(cache_used(), 2 * column * block_bytes);
  read_x(3);  // from the transposed copies
  EXPECT_EQ(cache_used(), 2 * column * block_bytes);
}

TEST_F(VolumeTest, FirstIndexShiftsNames) {
  VolumeOptions o = Options();
  o.first_index = 1;
  auto v = Open(o);
  ASSERT_NE(v, nullptr);
  auto z = v->SliceIndexForName("img_0001.tif");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(*z, 0u);
  EXPECT_EQ(v->SliceIndexForName("img_0000.tif").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(v->SliceIndexForName("scan.tif").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(v->SliceIndexForName("img_99999999.tif").status().code(),
            Status::Code::kInvalidArgument)
      << "more than 2^24 slices";
}

TEST_F(VolumeTest, CommittedSlicesStayReadableWhileTheirSlabIsReloadedForARewrite) {
  // Rewriting slice 1 reloads slab 0 (slices 0..3) from the store into a
  // fresh buffer. A reader of slice 0 during that reload must still get
  // slice 0, never the zeroed buffer.
  const Source src = MakeSource(8, kY, kX);
  const Source v2 = MakeSource(8, kY, kX, 5);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  for (uint64_t z = 0; z < 8; ++z) Ingest(v.get(), src, z);
  ASSERT_TRUE(v->Finalize().ok());
  const Bytes tif_a = SliceTiff(src, 1), tif_b = SliceTiff(v2, 1);
  const Bytes want = ExpectedPlane(src, Axis::kZ, 0);
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0}, reads{0};
  std::thread reader([&] {
    Bytes got(want.size());
    while (!done.load()) {
      Status s = v->ReadPlaneRows(Axis::kZ, 0, 0, kY, got.data());
      if (!s.ok() || got != want) ++wrong;
      ++reads;
    }
  });
  for (int i = 0; i < 100 && wrong.load() == 0; ++i) {
    const Bytes& tif = i % 2 ? tif_a : tif_b;
    ASSERT_TRUE(v->IngestSlice(SliceName(1), 1, tif.data(), tif.size()).ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0) << "slice 0 read wrong " << wrong.load() << " times in "
                             << reads.load() << " reads";
  ASSERT_TRUE(v->Finalize().ok());
  Source expect = src;
  if (v->SlicePresent(1)) {
    Bytes z1(want.size());
    ASSERT_TRUE(v->ReadPlaneRows(Axis::kZ, 1, 0, kY, z1.data()).ok());
    if (z1 == ExpectedPlane(v2, Axis::kZ, 1)) expect.slices[1] = v2.slices[1];
  }
  ExpectVolumeEquals(v.get(), expect, "after the rewrites");
}

TEST_F(VolumeTest, ConcurrentWritersAndReadersSeeWholeSlicesOrFill) {
  const Source src = MakeSource(kZ, kY, kX, 2);
  std::vector<Bytes> tifs;
  for (uint64_t z = 0; z < kZ; ++z) tifs.push_back(SliceTiff(src, z));
  auto v = Open(Options(2));
  ASSERT_NE(v, nullptr);
  // Define the geometry first so readers have something to read.
  ASSERT_TRUE(v->IngestSlice(SliceName(12), 12, tifs[12].data(), tifs[12].size()).ok());
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 rng(static_cast<uint32_t>(r));
      const Bytes zero(kY * kX * 2, 0);
      while (!done.load()) {
        uint64_t z = rng() % kZ;
        Bytes got(kY * kX * 2);
        if (!v->ReadPlaneRows(Axis::kZ, z, 0, kY, got.data()).ok()) {
          ++failures;
          continue;
        }
        if (got != zero && got != ExpectedPlane(src, Axis::kZ, z)) ++failures;
        Bytes col(kZ * kY * 2);
        if (!v->ReadPlaneRows(Axis::kX, rng() % kX, 0, kZ, col.data()).ok()) ++failures;
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (uint64_t z = static_cast<uint64_t>(w); z < 12; z += 3) {
        Status s = v->IngestSlice(SliceName(z), z, tifs[z].data(), tifs[z].size());
        if (!s.ok()) {
          ADD_FAILURE() << s.ToString();
          ++failures;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  ExpectVolumeEquals(v.get(), src, "after concurrent ingest");
  ASSERT_TRUE(v->Finalize().ok());
  ExpectVolumeEquals(v.get(), src, "after concurrent ingest and finalize");
}

}  // namespace
}  // namespace brickfs

namespace brickfs {
namespace {

// Issue 13 finding 9: a store that was not unmounted cleanly must come with
// its own journal; a missing or foreign one is refused, never "recovered".
TEST_F(VolumeTest, ACrashedStoreWithoutItsOwnJournalIsRefused) {
  const Source src = MakeSource(kZ, kY, kX, 4);
  const std::string other = root_ + "/other.zarr";
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < 8; ++z) Ingest(v.get(), src, z);
  }  // destroyed without Finalize: a crash
  {
    StoreOpenOptions so;
    so.create_if_missing = true;
    auto store = Store::Open(other, so);
    ASSERT_TRUE(store.ok());
    auto v = Volume::Open(std::move(*store), Options());
    ASSERT_TRUE(v.ok());
    (*v)->Start();
    for (uint64_t z = 0; z < 3; ++z) Ingest(v->get(), src, z);
  }
  const std::string journal = store_path_ + "/.brickfs/journal";
  ASSERT_EQ(std::rename(journal.c_str(), (journal + ".mine").c_str()), 0);
  auto open = [&] {
    StoreOpenOptions so;
    auto store = Store::Open(store_path_, so);
    EXPECT_TRUE(store.ok());
    return Volume::Open(std::move(*store), Options());
  };
  // No journal at all.
  auto v = open();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Status::Code::kCorruption);
  EXPECT_NE(v.status().message().find("journal"), std::string::npos) << v.status().ToString();
  EXPECT_NE(v.status().message().find("fsck --repair"), std::string::npos);
  // Another store's journal.
  std::ifstream in(other + "/.brickfs/journal", std::ios::binary);
  std::ofstream(journal, std::ios::binary) << in.rdbuf();
  v = open();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("another session"), std::string::npos)
      << v.status().ToString();
  // Its own journal back: recovered.
  ASSERT_EQ(std::rename((journal + ".mine").c_str(), journal.c_str()), 0);
  v = open();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE((*v)->recovery().needed);
}

TEST_F(VolumeTest, BrickWriteBeforeAnySliceIsInvalidArgumentNotADeadlock) {
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  std::vector<uint8_t> brick(64, 1);
  // Run it on a thread so that a deadlock fails the test instead of hanging it.
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  std::thread t([&] { done.set_value(v->WriteBrick({0, 0, 0}, brick.data(), brick.size(),
                                                    "bricks/0/0/0.raw")); });
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "WriteBrick on a volume without a shape did not return (deadlock)";
    std::_Exit(1);
  }
  t.join();
  const Status s = result.get();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(v->StatusJson().find("no shape yet"), std::string::npos);
}

// A storage that serves another directory's files under another name: a
// volume opened through it can reach its bytes only through the interface.
class RenamedStorage : public Storage {
 public:
  explicit RenamedStorage(const std::string& dir) : local_(dir, /*read_only=*/true) {}
  std::string Locate(std::string_view key) const override {
    return "test://volume/" + std::string(key);
  }
  bool read_only() const override { return true; }
  Result<std::string> Get(std::string_view key, uint64_t max_bytes) override {
    ++calls;
    return local_.Get(key, max_bytes);
  }
  Result<uint64_t> Size(std::string_view key) override { return local_.Size(key); }
  Result<Tail> ReadTail(std::string_view key, uint64_t n, uint64_t cut_at) override {
    ++calls;
    return local_.ReadTail(key, n, cut_at);
  }
  Status ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                    const RangeVisitor& visit) override {
    ++calls;
    return local_.ReadRanges(key, ranges, visit);
  }
  void Prefetch(std::string_view key, const std::vector<Range>& ranges) override {
    local_.Prefetch(key, ranges);
  }
  Result<std::vector<std::string>> List(std::string_view) override {
    return Status::Unsupported("no listing over this storage");
  }
  Result<uint64_t> Identity(std::string_view) override { return uint64_t{0}; }
  Status WriteAt(std::string_view, uint64_t, std::string_view) override { return Refused(); }
  Status Truncate(std::string_view, uint64_t) override { return Refused(); }
  Status Replace(std::string_view, std::string_view, const BeforeVisible&) override {
    return Refused();
  }
  Status Remove(std::string_view) override { return Refused(); }
  Status Sync(const std::vector<std::string>&, ThreadPool*) override { return Refused(); }
  std::atomic<uint64_t> calls{0};

 private:
  static Status Refused() { return Status::Unsupported("read-only storage"); }
  LocalStorage local_;
};

TEST_F(VolumeTest, AStoreOpenedThroughAnotherStorageReadsEveryPlaneThroughIt) {
  const Source src = MakeSource(kZ, kY, kX);
  {
    auto v = Open(Options());
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < kZ; ++z) Ingest(v.get(), src, z);
    ASSERT_TRUE(v->Finalize().ok());
  }
  // Moved away: nothing can reach the files by the store's path.
  const std::string moved = root_ + "/moved.zarr";
  ASSERT_EQ(::rename(store_path_.c_str(), moved.c_str()), 0);
  auto storage = std::make_shared<RenamedStorage>(moved);
  auto store = Store::OpenReadOnly(storage);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->path(), "test://volume/");
  EXPECT_FALSE((*store)->local());
  auto v = Volume::Open(std::move(*store), Options());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  (*v)->Start();
  EXPECT_TRUE((*v)->read_only());
  ExpectVolumeEquals(v->get(), src, "through another storage");
  EXPECT_GT(storage->calls.load(), 2u);
  EXPECT_NE((*v)->StatusJson().find("test://volume/"), std::string::npos);
  EXPECT_TRUE((*v)->Finalize().ok());
}

}  // namespace
}  // namespace brickfs

namespace brickfs {
namespace {

// the LocalStorage is shared by every level of the store now, and
// remembers the directories it made; FinishPyramid removes level 1 of a
// volume that fits one brick (std::filesystem::remove_all), and when the
// volume then grows, level 1 is built again through a storage that believes
// STORE/1/c/0/0 still exists.
TEST_F(VolumeTest, ALevelRemovedAtFinalizeIsBuiltAgainWhenTheVolumeGrows) {
  const Source src = MakeSource(16, 16, 16);
  auto v = Open(Options());
  ASSERT_NE(v, nullptr);
  for (uint64_t z = 0; z < 8; ++z) Ingest(v.get(), src, z);  // one brick: one level
  ASSERT_TRUE(v->Finalize().ok());
  EXPECT_FALSE(Exists(store_path_ + "/1"));
  for (uint64_t z = 8; z < 16; ++z) Ingest(v.get(), src, z);  // two bricks: level 1 again
  Status s = v->Finalize();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ParseStatus(*v).Get("errors_total")->as_uint(), 0u) << v->StatusJson();
  EXPECT_TRUE(Exists(store_path_ + "/1/c/0/0/0"));
}

}  // namespace
}  // namespace brickfs
