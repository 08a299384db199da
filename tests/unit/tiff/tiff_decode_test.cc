// Tests for DecodeTiffSlice: round trips through files libtiff writes, every
// rejection the header promises, and hostile input (truncations, byte flips,
// absurd dimensions) that must fail cleanly.
#include "tiff/tiff_decode.h"

#include <gtest/gtest.h>
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace brickfs {
namespace {

using Bytes = std::vector<uint8_t>;

// What to ask libtiff to write.
struct TiffSpec {
  uint32_t width = 37;
  uint32_t height = 23;
  uint16_t bits = 8;
  uint16_t format = SAMPLEFORMAT_UINT;
  uint16_t samples = 1;
  uint16_t photometric = PHOTOMETRIC_MINISBLACK;
  uint16_t compression = COMPRESSION_NONE;
  uint16_t predictor = 0;        // 0: tag omitted
  uint32_t rows_per_strip = 5;   // ignored when tiled
  uint32_t tile = 0;             // > 0: tile x tile tiles
  const char* mode = "w";        // "w8" BigTIFF, "wb" big-endian
  int images = 1;
};

std::string TempPath(const std::string& stem) {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "brickfs_tiff_decode_" + std::to_string(getpid()) +
         "_" + std::to_string(counter++) + "_" + stem + ".tif";
}

Bytes ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

uint64_t RowBytes(const TiffSpec& s) {
  return (uint64_t{s.width} * s.samples * s.bits + 7) / 8;
}

// Deterministic pixels that compress a little (a ramp) but not trivially
// (noise). Floats are real numbers so predictor 3 sees sensible data.
Bytes MakePixels(const TiffSpec& s, uint32_t seed) {
  Bytes out(RowBytes(s) * s.height);
  std::mt19937 rng(seed);
  if (s.format == SAMPLEFORMAT_IEEEFP && s.bits == 32) {
    for (size_t i = 0; i + 4 <= out.size(); i += 4) {
      const float v = static_cast<float>(i) * 0.25f - static_cast<float>(rng() % 1000) / 7.0f;
      std::memcpy(&out[i], &v, 4);
    }
  } else {
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<uint8_t>(i / 3 + (rng() % 4 == 0 ? rng() : 0));
    }
  }
  return out;
}

// Writes `pixels` (host order, rows contiguous) as a TIFF file with libtiff
// and returns the file's bytes.
Bytes WriteTiff(const TiffSpec& s, const Bytes& pixels) {
  const std::string path = TempPath("w");
  TIFF* tif = TIFFOpen(path.c_str(), s.mode);
  EXPECT_NE(tif, nullptr);
  if (tif == nullptr) return {};
  const uint64_t row_bytes = RowBytes(s);
  for (int image = 0; image < s.images; ++image) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, s.width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, s.height);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, s.bits);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, s.format);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, s.samples);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, s.photometric);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, s.compression);
    if (s.predictor != 0) TIFFSetField(tif, TIFFTAG_PREDICTOR, s.predictor);
    if (s.photometric == PHOTOMETRIC_PALETTE) {
      std::vector<uint16_t> map(size_t{1} << s.bits, 0);
      TIFFSetField(tif, TIFFTAG_COLORMAP, map.data(), map.data(), map.data());
    }
    if (s.tile > 0) {
      TIFFSetField(tif, TIFFTAG_TILEWIDTH, s.tile);
      TIFFSetField(tif, TIFFTAG_TILELENGTH, s.tile);
      const uint64_t voxel = uint64_t{s.samples} * s.bits / 8;
      Bytes tile(TIFFTileSize(tif), 0);
      for (uint32_t y = 0; y < s.height; y += s.tile) {
        for (uint32_t x = 0; x < s.width; x += s.tile) {
          std::fill(tile.begin(), tile.end(), 0xAB);  // overhang: junk
          for (uint32_t r = 0; r < s.tile && y + r < s.height; ++r) {
            const uint64_t n = std::min(s.tile, s.width - x) * voxel;
            std::memcpy(&tile[r * s.tile * voxel],
                        &pixels[(y + r) * row_bytes + x * voxel], n);
          }
          EXPECT_GE(TIFFWriteTile(tif, tile.data(), x, y, 0, 0), 0);
        }
      }
    } else {
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, s.rows_per_strip);
      Bytes row(row_bytes);
      for (uint32_t y = 0; y < s.height; ++y) {
        // TIFFWriteScanline may modify its input (byte swapping), so copy.
        std::memcpy(row.data(), &pixels[y * row_bytes], row_bytes);
        EXPECT_EQ(TIFFWriteScanline(tif, row.data(), y, 0), 1);
      }
    }
    EXPECT_EQ(TIFFWriteDirectory(tif), 1);
  }
  TIFFClose(tif);
  Bytes bytes = ReadFile(path);
  std::remove(path.c_str());
  return bytes;
}

struct Decoded {
  Result<SliceInfo> result = Status::InvalidArgument("not run");
  Bytes pixels;
  int dest_calls = 0;
};

// Decodes with a `dest` that, like the volume, refuses anything larger than
// `max_bytes` before allocating.
Decoded Decode(const Bytes& file, uint64_t max_bytes = uint64_t{64} << 20) {
  Decoded d;
  d.result = DecodeTiffSlice(
      file.data(), file.size(), [&](const SliceInfo& info) -> Result<uint8_t*> {
        ++d.dest_calls;
        const uint64_t bytes = info.width * info.height * DTypeSize(info.dtype);
        if (bytes > max_bytes) return Status::InvalidArgument("too large for the test");
        d.pixels.assign(bytes, 0xCD);
        return d.pixels.data();
      });
  return d;
}

struct DTypeCase {
  DType dtype;
  uint16_t bits;
  uint16_t format;
};
constexpr DTypeCase kDTypes[] = {
    {DType::kUint8, 8, SAMPLEFORMAT_UINT},
    {DType::kUint16, 16, SAMPLEFORMAT_UINT},
    {DType::kInt16, 16, SAMPLEFORMAT_INT},
    {DType::kUint32, 32, SAMPLEFORMAT_UINT},
    {DType::kFloat32, 32, SAMPLEFORMAT_IEEEFP},
};
constexpr uint16_t kCompressions[] = {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE,
                                      COMPRESSION_LZW, COMPRESSION_PACKBITS};

void ExpectRoundTrip(const TiffSpec& spec, DType dtype) {
  const Bytes pixels = MakePixels(spec, spec.width * 31 + spec.bits);
  const Bytes file = WriteTiff(spec, pixels);
  ASSERT_FALSE(file.empty());
  const Decoded d = Decode(file);
  ASSERT_TRUE(d.result.ok()) << d.result.status().message();
  EXPECT_EQ(d.result->width, spec.width);
  EXPECT_EQ(d.result->height, spec.height);
  EXPECT_EQ(d.result->dtype, dtype);
  EXPECT_EQ(d.dest_calls, 1);
  ASSERT_EQ(d.pixels.size(), pixels.size());
  EXPECT_TRUE(d.pixels == pixels) << "decoded pixels differ from the source";
}

TEST(TiffDecodeTest, RoundTripsEveryDtypeCompressionAndLayout) {
  for (const DTypeCase& t : kDTypes) {
    for (uint16_t compression : kCompressions) {
      for (uint32_t tile : {0u, 16u}) {
        TiffSpec spec;  // 37 x 23: neither rows nor tiles divide evenly
        spec.bits = t.bits;
        spec.format = t.format;
        spec.compression = compression;
        spec.tile = tile;
        SCOPED_TRACE("dtype " + std::string(DTypeName(t.dtype)) + " compression " +
                     std::to_string(compression) + " tile " + std::to_string(tile));
        ExpectRoundTrip(spec, t.dtype);
      }
    }
  }
}

TEST(TiffDecodeTest, RoundTripsBigTiffAndBigEndian) {
  for (const char* mode : {"w8", "wb", "w8b"}) {
    for (const DTypeCase& t : kDTypes) {
      for (uint16_t compression : {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE}) {
        for (uint32_t tile : {0u, 16u}) {
          TiffSpec spec;
          spec.bits = t.bits;
          spec.format = t.format;
          spec.compression = compression;
          spec.tile = tile;
          spec.mode = mode;
          SCOPED_TRACE(std::string("mode ") + mode + " dtype " +
                       std::string(DTypeName(t.dtype)) + " compression " +
                       std::to_string(compression) + " tile " + std::to_string(tile));
          ExpectRoundTrip(spec, t.dtype);
        }
      }
    }
  }
}

TEST(TiffDecodeTest, BigEndianFileReallyIsBigEndianAndComesOutLittleEndian) {
  TiffSpec spec;
  spec.width = 2;
  spec.height = 1;
  spec.bits = 16;
  spec.mode = "wb";
  const Bytes pixels = {0x34, 0x12, 0x78, 0x56};  // 0x1234, 0x5678 little-endian
  const Bytes file = WriteTiff(spec, pixels);
  ASSERT_GE(file.size(), 2u);
  EXPECT_EQ(file[0], 'M');
  // Stored big-endian in the file...
  const Bytes stored_be = {0x12, 0x34, 0x56, 0x78};
  EXPECT_NE(std::search(file.begin(), file.end(), stored_be.begin(), stored_be.end()),
            file.end());
  // ...decoded to host (little-endian) order.
  const Decoded d = Decode(file);
  ASSERT_TRUE(d.result.ok()) << d.result.status().message();
  EXPECT_EQ(d.pixels, pixels);
}

TEST(TiffDecodeTest, RoundTripsPredictorsAndStripShapes) {
  TiffSpec lzw16;
  lzw16.bits = 16;
  lzw16.compression = COMPRESSION_LZW;
  lzw16.predictor = PREDICTOR_HORIZONTAL;
  ExpectRoundTrip(lzw16, DType::kUint16);

  TiffSpec float_pred;
  float_pred.bits = 32;
  float_pred.format = SAMPLEFORMAT_IEEEFP;
  float_pred.compression = COMPRESSION_ADOBE_DEFLATE;
  float_pred.predictor = PREDICTOR_FLOATINGPOINT;
  ExpectRoundTrip(float_pred, DType::kFloat32);

  for (uint32_t rps : {1u, 22u, 23u, 1000u}) {
    TiffSpec spec;
    spec.rows_per_strip = rps;
    spec.compression = COMPRESSION_PACKBITS;
    SCOPED_TRACE("rows per strip " + std::to_string(rps));
    ExpectRoundTrip(spec, DType::kUint8);
  }

  TiffSpec one_pixel;
  one_pixel.width = 1;
  one_pixel.height = 1;
  ExpectRoundTrip(one_pixel, DType::kUint8);

  // A large single uncompressed strip (libtiff may "chop" it into virtual
  // strips when reading).
  TiffSpec big_strip;
  big_strip.width = 1000;
  big_strip.height = 300;
  big_strip.rows_per_strip = 300;
  ExpectRoundTrip(big_strip, DType::kUint8);

  TiffSpec small_in_big_tiles;
  small_in_big_tiles.width = 5;
  small_in_big_tiles.height = 3;
  small_in_big_tiles.tile = 64;
  ExpectRoundTrip(small_in_big_tiles, DType::kUint8);
}

TEST(TiffDecodeTest, KeepsMinIsWhiteValuesAsStored) {
  TiffSpec spec;
  spec.photometric = PHOTOMETRIC_MINISWHITE;
  ExpectRoundTrip(spec, DType::kUint8);
}

// --- Rejections -----------------------------------------------------------

void ExpectInvalid(const Decoded& d, const std::vector<std::string>& words) {
  ASSERT_FALSE(d.result.ok());
  EXPECT_EQ(d.result.status().code(), Status::Code::kInvalidArgument)
      << d.result.status().message();
  for (const std::string& w : words) {
    EXPECT_NE(d.result.status().message().find(w), std::string::npos)
        << "message \"" << d.result.status().message() << "\" lacks \"" << w << "\"";
  }
  EXPECT_EQ(d.dest_calls, 0) << "dest must not be called for a rejected file";
}

TEST(TiffDecodeTest, RejectsNonTiffAndEmptyInput) {
  const std::string text = "Hello, this is not an image at all.\n";
  ExpectInvalid(Decode(Bytes(text.begin(), text.end())), {"not a TIFF"});
  ExpectInvalid(Decode(Bytes{}), {"empty"});
  ExpectInvalid(Decode(Bytes{'I', 'I'}), {"not a TIFF"});
  ExpectInvalid(Decode(Bytes{'I', 'I', 42, 0}), {"cannot be read", "libtiff"});
  int calls = 0;
  const Result<SliceInfo> r = DecodeTiffSlice(nullptr, 0, [&](const SliceInfo&) {
    ++calls;
    return Result<uint8_t*>(nullptr);
  });
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(calls, 0);
}

TEST(TiffDecodeTest, RejectsRgb) {
  TiffSpec spec;
  spec.samples = 3;
  spec.photometric = PHOTOMETRIC_RGB;
  ExpectInvalid(Decode(WriteTiff(spec, MakePixels(spec, 1))),
                {"RGB", "3 samples"});
}

TEST(TiffDecodeTest, RejectsBilevel) {
  TiffSpec spec;
  spec.bits = 1;
  ExpectInvalid(Decode(WriteTiff(spec, MakePixels(spec, 1))), {"1-bit", "unsigned"});
}

TEST(TiffDecodeTest, RejectsUnlistedSampleTypes) {
  TiffSpec int8;
  int8.format = SAMPLEFORMAT_INT;
  ExpectInvalid(Decode(WriteTiff(int8, MakePixels(int8, 1))), {"8-bit", "signed"});
  TiffSpec f64;
  f64.bits = 64;
  f64.format = SAMPLEFORMAT_IEEEFP;
  ExpectInvalid(Decode(WriteTiff(f64, MakePixels(f64, 1))), {"64-bit", "floating"});
  TiffSpec i32;
  i32.bits = 32;
  i32.format = SAMPLEFORMAT_INT;
  ExpectInvalid(Decode(WriteTiff(i32, MakePixels(i32, 1))), {"32-bit", "signed"});
}

TEST(TiffDecodeTest, RejectsPalette) {
  TiffSpec spec;
  spec.photometric = PHOTOMETRIC_PALETTE;
  ExpectInvalid(Decode(WriteTiff(spec, MakePixels(spec, 1))), {"palette"});
}

TEST(TiffDecodeTest, RejectsTwoImages) {
  TiffSpec spec;
  spec.images = 2;
  ExpectInvalid(Decode(WriteTiff(spec, MakePixels(spec, 1))), {"has 2 images"});
}

TEST(TiffDecodeTest, ReturnsDestErrorUnchanged) {
  TiffSpec spec;
  const Bytes file = WriteTiff(spec, MakePixels(spec, 1));
  SliceInfo seen;
  const Result<SliceInfo> r =
      DecodeTiffSlice(file.data(), file.size(), [&](const SliceInfo& info) {
        seen = info;
        return Result<uint8_t*>(Status::Unsupported("slice 37x23 does not fit the volume"));
      });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnsupported);
  EXPECT_EQ(r.status().message(), "slice 37x23 does not fit the volume");
  EXPECT_EQ(seen.width, 37u);
  EXPECT_EQ(seen.height, 23u);
  EXPECT_EQ(seen.dtype, DType::kUint8);
}

// A classic little-endian TIFF with the given inline-valued entries (sorted
// by tag by the caller), padded with zeros to `size` bytes.
struct RawEntry {
  uint16_t tag;
  uint16_t type;  // 3 SHORT, 4 LONG
  uint32_t value;
};
Bytes HandMadeTiff(const std::vector<RawEntry>& entries, size_t size) {
  Bytes b(size, 0);
  auto put = [&b](size_t at, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  b[0] = 'I';
  b[1] = 'I';
  put(2, 42, 2);
  put(4, 8, 4);
  put(8, entries.size(), 2);
  size_t at = 10;
  for (const RawEntry& e : entries) {
    put(at, e.tag, 2);
    put(at + 2, e.type, 2);
    put(at + 4, 1, 4);
    put(at + 8, e.value, e.type == 3 ? 2 : 4);
    at += 12;
  }
  put(at, 0, 4);  // no next IFD
  return b;
}

std::vector<RawEntry> GrayEntries(uint32_t width, uint32_t height,
                                  uint32_t strip_offset, uint32_t strip_bytes) {
  return {{256, 4, width},        {257, 4, height},      {258, 3, 8},
          {259, 3, 1},            {262, 3, 1},           {273, 4, strip_offset},
          {277, 3, 1},            {278, 4, height},      {279, 4, strip_bytes}};
}

TEST(TiffDecodeTest, RejectsHugeDimensionsBeforeCallingDest) {
  // A 300-byte file claiming 2^30 x 2^30 pixels: must fail at once, from the
  // header alone, with no allocation sized from the claim.
  const Bytes huge = HandMadeTiff(GrayEntries(1u << 30, 1u << 30, 200, 100), 300);
  ExpectInvalid(Decode(huge), {"1073741824 x 1073741824"});
  // Within the per-side cap but 1 TiB in total.
  const Bytes tib = HandMadeTiff(GrayEntries(1u << 20, 1u << 20, 200, 100), 300);
  ExpectInvalid(Decode(tib), {"16 GiB"});
  // The hand-made header itself is fine when its claims are.
  const Bytes ok = HandMadeTiff(GrayEntries(10, 10, 200, 100), 300);
  const Decoded d = Decode(ok);
  ASSERT_TRUE(d.result.ok()) << d.result.status().message();
  EXPECT_EQ(d.pixels, Bytes(100, 0));
}

TEST(TiffDecodeTest, RejectsStripPastEndOfBuffer) {
  const Bytes past = HandMadeTiff(GrayEntries(10, 10, 250, 100), 300);
  ExpectInvalid(Decode(past), {"truncated", "strip 0 of 1", "[250, 350)", "300 bytes"});
}

TEST(TiffDecodeTest, ReportsUndecodableStripWithLibtiffMessage) {
  TiffSpec spec;
  spec.compression = COMPRESSION_ADOBE_DEFLATE;
  spec.rows_per_strip = 23;
  const Bytes pixels = MakePixels(spec, 3);
  Bytes file = WriteTiff(spec, pixels);
  // libtiff writes the strip right after the 8-byte header; break its zlib
  // stream header so the strip cannot decode.
  ASSERT_GT(file.size(), 12u);
  file[8] ^= 0xFF;
  file[9] ^= 0xFF;
  const Decoded d = Decode(file);
  ASSERT_FALSE(d.result.ok());
  EXPECT_EQ(d.result.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(d.result.status().message().find("strip 0 of 1 could not be decoded (libtiff: "),
            std::string::npos)
      << d.result.status().message();
}

TEST(TiffDecodeTest, ConcurrentCallsKeepTheirOwnMessages) {
  // Each thread decodes a different broken file; libtiff's message must land
  // in that thread's result, not another's.
  TiffSpec packbits;
  packbits.compression = COMPRESSION_PACKBITS;
  packbits.rows_per_strip = 23;
  TiffSpec deflate = packbits;
  deflate.compression = COMPRESSION_ADOBE_DEFLATE;
  const std::vector<std::pair<Bytes, std::string>> broken = {
      {WriteTiff(packbits, MakePixels(packbits, 5)), "PackBitsDecode"},
      {WriteTiff(deflate, MakePixels(deflate, 6)), "ZIPDecode"},
  };
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const auto& [file, word] = broken[t % 2];
      Bytes damaged = file;
      // The strip follows the 8-byte header. 0x80 is a no-op in PackBits
      // (so the strip runs out of data) and an invalid zlib header.
      std::fill(damaged.begin() + 8, damaged.begin() + 40, uint8_t{0x80});
      for (int i = 0; i < 50; ++i) {
        const Decoded d = Decode(damaged);
        if (d.result.ok() || d.result.status().message().find(word) == std::string::npos) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// --- Hostile input ----------------------------------------------------------

// Every result on damaged input is a clean success or InvalidArgument, and
// libtiff prints nothing (its messages are captured per call).
// Returns whether the decode succeeded.
bool ExpectCleanOutcome(const Bytes& file, const std::string& what) {
  // The fake volume accepts up to 1 MiB so a flipped dimension cannot make
  // the test allocate much, as the real volume's shape check would.
  const Decoded d = Decode(file, uint64_t{1} << 20);
  if (!d.result.ok()) {
    EXPECT_EQ(d.result.status().code(), Status::Code::kInvalidArgument)
        << what << ": " << d.result.status().message();
  }
  return d.result.ok();
}

std::vector<Bytes> FuzzSeeds() {
  std::vector<Bytes> seeds;
  TiffSpec strips;
  strips.bits = 16;
  strips.compression = COMPRESSION_ADOBE_DEFLATE;
  seeds.push_back(WriteTiff(strips, MakePixels(strips, 11)));
  TiffSpec tiles;
  tiles.compression = COMPRESSION_LZW;
  tiles.predictor = PREDICTOR_HORIZONTAL;
  tiles.tile = 16;
  seeds.push_back(WriteTiff(tiles, MakePixels(tiles, 12)));
  TiffSpec big;
  big.bits = 32;
  big.format = SAMPLEFORMAT_IEEEFP;
  big.mode = "w8b";
  seeds.push_back(WriteTiff(big, MakePixels(big, 13)));
  TiffSpec packbits;
  packbits.compression = COMPRESSION_PACKBITS;
  packbits.mode = "wb";
  seeds.push_back(WriteTiff(packbits, MakePixels(packbits, 14)));
  // libtiff writes the IFD after the pixels, so truncating its files mostly
  // breaks the IFD; this one has the pixels last, like a virtual TIFF.
  Bytes pixels_last = HandMadeTiff(GrayEntries(10, 10, 200, 100), 300);
  for (size_t i = 200; i < 300; ++i) pixels_last[i] = static_cast<uint8_t>(i);
  seeds.push_back(pixels_last);
  return seeds;
}

TEST(TiffDecodeTest, TruncationsFailCleanly) {
  testing::internal::CaptureStderr();
  int failures = 0;
  for (const Bytes& seed : FuzzSeeds()) {
    ASSERT_TRUE(Decode(seed).result.ok());
    for (size_t cut = 0; cut < seed.size(); ++cut) {
      const Bytes truncated(seed.begin(), seed.begin() + cut);
      if (!ExpectCleanOutcome(truncated, "truncated at " + std::to_string(cut))) {
        ++failures;
      }
    }
  }
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "") << "libtiff printed to stderr";
  EXPECT_GT(failures, 0);
}

TEST(TiffDecodeTest, ByteFlipsFailCleanly) {
  testing::internal::CaptureStderr();
  std::mt19937 rng(20240601);
  for (const Bytes& seed : FuzzSeeds()) {
    for (int round = 0; round < 1500; ++round) {
      Bytes mutated = seed;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips; ++i) {
        // Bias toward the IFD and header, where flips change the structure;
        // libtiff writes the IFD at the end.
        const size_t at = (rng() % 2 == 0 && mutated.size() > 200)
                              ? mutated.size() - 1 - rng() % 200
                              : rng() % mutated.size();
        mutated[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        if (rng() % 8 == 0) mutated[at] = static_cast<uint8_t>(rng());
      }
      static_cast<void>(ExpectCleanOutcome(mutated, "round " + std::to_string(round)));
    }
  }
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "") << "libtiff printed to stderr";
}

}  // namespace
}  // namespace brickfs
