// Tests for VirtualTiffLayout: the header is parsed by hand (layout rules),
// by libtiff (tags and every scanline), by DecodeTiffSlice, and by two
// independent readers, tiffinfo and Python's tifffile, when installed.
#include "tiff/virtual_tiff.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "tiff/tiff_decode.h"

namespace brickfs {
namespace {

using Bytes = std::vector<uint8_t>;

std::string TempPath(const std::string& stem, const std::string& ext = ".tif") {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "brickfs_virtual_tiff_" + std::to_string(getpid()) +
         "_" + std::to_string(counter++) + "_" + stem + ext;
}

// Pixel byte i (counted from pixel_offset): not periodic in any row length
// used here, so a misplaced row or strip shows.
uint8_t PatternByte(uint64_t i) {
  return static_cast<uint8_t>(((i * 2654435761u) >> 13) ^ (i / 251));
}

// The whole virtual file: header() followed by the pattern.
Bytes FileBytes(const VirtualTiffLayout& layout) {
  Bytes out = layout.header();
  const uint64_t pixels = layout.height() * layout.row_bytes();
  out.reserve(out.size() + pixels);
  for (uint64_t i = 0; i < pixels; ++i) out.push_back(PatternByte(i));
  return out;
}

// Writes the file and removes it when the test is done with it.
class TempFile {
 public:
  explicit TempFile(const Bytes& bytes) : path_(TempPath("v")) {
    std::ofstream out(path_, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

uint64_t GetLE(const Bytes& b, uint64_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | b.at(at + i);
  return v;
}

uint64_t TypeSize(uint16_t type) {
  switch (type) {
    case 2: return 1;   // ASCII
    case 3: return 2;   // SHORT
    case 4: return 4;   // LONG
    case 5: return 8;   // RATIONAL
    case 16: return 8;  // LONG8
    default: return 0;
  }
}

struct IfdEntry {
  uint16_t tag;
  uint16_t type;
  uint64_t count;
  uint64_t value_at;  // where the value bytes are (inline or not)
};

// Parses the one IFD the layout promises and checks the structural rules:
// header, sorted tags, inline-when-it-fits, aligned out-of-line values that
// lie between the IFD and the pixels, next-IFD 0.
std::vector<IfdEntry> ParseAndCheckIfd(const VirtualTiffLayout& layout) {
  const Bytes& h = layout.header();
  const bool big = layout.bigtiff();
  std::vector<IfdEntry> entries;
  EXPECT_EQ(h.at(0), 'I');
  EXPECT_EQ(h.at(1), 'I');
  EXPECT_EQ(GetLE(h, 2, 2), big ? 43u : 42u);
  if (big) {
    EXPECT_EQ(GetLE(h, 4, 2), 8u);
    EXPECT_EQ(GetLE(h, 6, 2), 0u);
  }
  const int off_size = big ? 8 : 4;
  const uint64_t ifd = GetLE(h, 4 + (big ? 4 : 0), off_size);
  EXPECT_EQ(ifd, big ? 16u : 8u);
  const uint64_t n = GetLE(h, ifd, big ? 8 : 2);
  const uint64_t entry_size = big ? 20 : 12;
  const uint64_t first = ifd + (big ? 8 : 2);
  const uint64_t ifd_end = first + n * entry_size + off_size;
  EXPECT_EQ(GetLE(h, first + n * entry_size, off_size), 0u) << "next IFD";
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t at = first + i * entry_size;
    IfdEntry e{static_cast<uint16_t>(GetLE(h, at, 2)),
               static_cast<uint16_t>(GetLE(h, at + 2, 2)), GetLE(h, at + 4, off_size),
               0};
    const uint64_t field = at + 4 + off_size;
    const uint64_t bytes = e.count * TypeSize(e.type);
    EXPECT_GT(TypeSize(e.type), 0u) << "tag " << e.tag;
    if (bytes <= static_cast<uint64_t>(off_size)) {
      e.value_at = field;
    } else {
      e.value_at = GetLE(h, field, off_size);
      EXPECT_GE(e.value_at, ifd_end) << "tag " << e.tag;
      EXPECT_LE(e.value_at + bytes, layout.pixel_offset()) << "tag " << e.tag;
      EXPECT_EQ(e.value_at % 2, 0u) << "tag " << e.tag;
    }
    if (!entries.empty()) {
      EXPECT_LT(entries.back().tag, e.tag) << "tags not sorted";
    }
    entries.push_back(e);
  }
  return entries;
}

const IfdEntry* Find(const std::vector<IfdEntry>& entries, uint16_t tag) {
  for (const IfdEntry& e : entries) {
    if (e.tag == tag) return &e;
  }
  return nullptr;
}

std::pair<uint32_t, uint32_t> RationalOf(const VirtualTiffLayout& layout, uint16_t tag) {
  const std::vector<IfdEntry> entries = ParseAndCheckIfd(layout);
  const IfdEntry* e = Find(entries, tag);
  EXPECT_NE(e, nullptr);
  if (e == nullptr) return {0, 0};
  EXPECT_EQ(e->type, 5);
  return {static_cast<uint32_t>(GetLE(layout.header(), e->value_at, 4)),
          static_cast<uint32_t>(GetLE(layout.header(), e->value_at + 4, 4))};
}

uint64_t ExpectedRowsPerStrip(uint64_t row_bytes) {
  return std::max<uint64_t>(1, 65536 / row_bytes);
}

void CheckLayoutArithmetic(const VirtualTiffLayout& layout, const VirtualTiffParams& p) {
  EXPECT_EQ(layout.row_bytes(), p.width * DTypeSize(p.dtype));
  EXPECT_EQ(layout.height(), p.height);
  EXPECT_EQ(layout.pixel_offset() % 4096, 0u);
  EXPECT_GT(layout.pixel_offset(), 0u);
  EXPECT_EQ(layout.header().size(), layout.pixel_offset());
  EXPECT_EQ(layout.file_size(), layout.pixel_offset() + p.height * layout.row_bytes());
}

// Opens `path` with libtiff and checks every tag and every scanline.
void CheckWithLibtiff(const std::string& path, const VirtualTiffLayout& layout,
                      const VirtualTiffParams& p) {
  // "c": without it libtiff reports a single uncompressed strip as several
  // smaller virtual ones, hiding the file's real RowsPerStrip.
  TIFF* tif = TIFFOpen(path.c_str(), "rc");
  ASSERT_NE(tif, nullptr);
  EXPECT_EQ(TIFFIsBigTIFF(tif) != 0, layout.bigtiff());
  EXPECT_EQ(TIFFNumberOfDirectories(tif), 1u);
  EXPECT_FALSE(TIFFIsTiled(tif));
  uint32_t u32 = 0;
  uint16_t u16 = 0;
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &u32), 1);
  EXPECT_EQ(u32, p.width);
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &u32), 1);
  EXPECT_EQ(u32, p.height);
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &u16), 1);
  EXPECT_EQ(u16, 8 * DTypeSize(p.dtype));
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_SAMPLEFORMAT, &u16), 1);
  EXPECT_EQ(u16, DTypeTiffSampleFormat(p.dtype));
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_SAMPLESPERPIXEL, &u16), 1);
  EXPECT_EQ(u16, 1);
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_COMPRESSION, &u16), 1);
  EXPECT_EQ(u16, COMPRESSION_NONE);
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &u16), 1);
  EXPECT_EQ(u16, PHOTOMETRIC_MINISBLACK);
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_PLANARCONFIG, &u16), 1);
  EXPECT_EQ(u16, PLANARCONFIG_CONTIG);
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_SUBFILETYPE, &u32), 1);
  EXPECT_EQ(u32, 0u);
  const uint64_t rps = ExpectedRowsPerStrip(layout.row_bytes());
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_ROWSPERSTRIP, &u32), 1);
  EXPECT_EQ(u32, rps);
  char* desc = nullptr;
  if (p.description.empty()) {
    EXPECT_EQ(TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc), 0);
  } else {
    ASSERT_EQ(TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc), 1);
    EXPECT_EQ(std::string(desc), p.description);
  }
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_RESOLUTIONUNIT, &u16), 1);
  const bool known = p.x_resolution > 0 || p.y_resolution > 0;
  EXPECT_EQ(u16, p.resolution_in_cm && known ? RESUNIT_CENTIMETER : RESUNIT_NONE);
  float res = 0;
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_XRESOLUTION, &res), 1);
  EXPECT_NEAR(res, p.x_resolution > 0 ? p.x_resolution : 1.0, 1e-5 * res);
  EXPECT_EQ(TIFFGetField(tif, TIFFTAG_YRESOLUTION, &res), 1);
  EXPECT_NEAR(res, p.y_resolution > 0 ? p.y_resolution : 1.0, 1e-5 * res);

  // Strips: whole rows, contiguous from pixel_offset, last one shorter.
  const uint64_t strips = (p.height + rps - 1) / rps;
  ASSERT_EQ(TIFFNumberOfStrips(tif), strips);
  for (uint64_t s = 0; s < strips; ++s) {
    EXPECT_EQ(TIFFGetStrileOffset(tif, static_cast<uint32_t>(s)),
              layout.pixel_offset() + s * rps * layout.row_bytes());
    EXPECT_EQ(TIFFGetStrileByteCount(tif, static_cast<uint32_t>(s)),
              std::min(rps, p.height - s * rps) * layout.row_bytes());
  }

  ASSERT_EQ(static_cast<uint64_t>(TIFFScanlineSize64(tif)), layout.row_bytes());
  Bytes row(layout.row_bytes());
  Bytes expected(layout.row_bytes());
  for (uint32_t y = 0; y < p.height; ++y) {
    ASSERT_EQ(TIFFReadScanline(tif, row.data(), y, 0), 1) << "row " << y;
    for (uint64_t i = 0; i < expected.size(); ++i) {
      expected[i] = PatternByte(y * layout.row_bytes() + i);
    }
    ASSERT_TRUE(row == expected) << "row " << y << " differs";
  }
  TIFFClose(tif);
}

std::vector<VirtualTiffParams> Cases() {
  std::vector<VirtualTiffParams> cases;
  auto add = [&cases](uint64_t w, uint64_t h, DType t, std::string desc = "",
                      double xr = 0, double yr = 0, bool cm = false) {
    VirtualTiffParams p;
    p.width = w;
    p.height = h;
    p.dtype = t;
    p.description = std::move(desc);
    p.x_resolution = xr;
    p.y_resolution = yr;
    p.resolution_in_cm = cm;
    cases.push_back(p);
  };
  add(1, 1, DType::kUint8);
  add(37, 23, DType::kUint16, "brickfs volume v, z=12 of 40", 2.5, 4263.3, true);
  add(20000, 3, DType::kFloat32);             // a row > 64 KiB: 1 row per strip
  add(1000, 300, DType::kUint8);              // 65 rows per strip, last strip 40
  add(513, 77, DType::kInt16, "ab");          // description inline in both
  add(129, 130, DType::kUint32, "1234567");   // 8 bytes: inline only in BigTIFF
  add(4096, 40, DType::kUint16, "", 0.5, 0.5);  // strips divide the rows evenly
  return cases;
}

// Cases() plus one per foreign-store dtype (int8, int32, float64), which
// brickfs serves but does not ingest (so DecodeTiffSlice refuses them).
std::vector<VirtualTiffParams> AllDTypeCases() {
  std::vector<VirtualTiffParams> cases = Cases();
  for (DType t : {DType::kInt8, DType::kInt32, DType::kFloat64}) {
    VirtualTiffParams p;
    p.width = 301;
    p.height = 45;
    p.dtype = t;
    p.description = "foreign";
    cases.push_back(p);
  }
  return cases;
}

std::string Describe(const VirtualTiffParams& p) {
  return std::to_string(p.width) + "x" + std::to_string(p.height) + " " +
         std::string(DTypeName(p.dtype)) + (p.force_bigtiff ? " bigtiff" : " classic") +
         (p.description.empty() ? "" : " desc \"" + p.description + "\"");
}

TEST(VirtualTiffTest, LibtiffReadsEveryTagAndScanline) {
  for (VirtualTiffParams p : AllDTypeCases()) {
    for (bool force : {false, true}) {
      p.force_bigtiff = force;
      SCOPED_TRACE(Describe(p));
      const VirtualTiffLayout layout(p);
      EXPECT_EQ(layout.bigtiff(), force);
      CheckLayoutArithmetic(layout, p);
      const std::vector<IfdEntry> entries = ParseAndCheckIfd(layout);
      EXPECT_EQ(entries.size(), p.description.empty() ? 15u : 16u);
      const TempFile file(FileBytes(layout));
      CheckWithLibtiff(file.path(), layout, p);
    }
  }
}

TEST(VirtualTiffTest, DecodesBackToThePattern) {
  for (VirtualTiffParams p : Cases()) {
    for (bool force : {false, true}) {
      p.force_bigtiff = force;
      SCOPED_TRACE(Describe(p));
      const VirtualTiffLayout layout(p);
      const Bytes file = FileBytes(layout);
      Bytes pixels;
      const Result<SliceInfo> r =
          DecodeTiffSlice(file.data(), file.size(), [&](const SliceInfo& info) {
            pixels.resize(info.width * info.height * DTypeSize(info.dtype));
            return Result<uint8_t*>(pixels.data());
          });
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_EQ(r->width, p.width);
      EXPECT_EQ(r->height, p.height);
      EXPECT_EQ(r->dtype, p.dtype);
      EXPECT_TRUE(std::equal(pixels.begin(), pixels.end(),
                             file.begin() + static_cast<std::ptrdiff_t>(layout.pixel_offset())));

      // A partial upload of it (cut inside the pixels) is reported as such.
      const Bytes cut(file.begin(), file.end() - 1);
      const Result<SliceInfo> bad =
          DecodeTiffSlice(cut.data(), cut.size(), [&](const SliceInfo&) {
            return Result<uint8_t*>(pixels.data());
          });
      ASSERT_FALSE(bad.ok());
      EXPECT_NE(bad.status().message().find("truncated"), std::string::npos)
          << bad.status().message();
    }
  }
}

// The numbers TIFF readers go by, written out (not derived from dtype.h).
TEST(VirtualTiffTest, EveryDTypeHasItsBitsPerSampleAndSampleFormat) {
  struct Want {
    DType dtype;
    uint16_t bits, format;
  };
  const Want wants[] = {{DType::kUint8, 8, SAMPLEFORMAT_UINT},
                        {DType::kInt8, 8, SAMPLEFORMAT_INT},
                        {DType::kUint16, 16, SAMPLEFORMAT_UINT},
                        {DType::kInt16, 16, SAMPLEFORMAT_INT},
                        {DType::kUint32, 32, SAMPLEFORMAT_UINT},
                        {DType::kInt32, 32, SAMPLEFORMAT_INT},
                        {DType::kFloat32, 32, SAMPLEFORMAT_IEEEFP},
                        {DType::kFloat64, 64, SAMPLEFORMAT_IEEEFP}};
  ASSERT_EQ(std::size(wants), std::size(kAllDTypes));
  for (const Want& w : wants) {
    SCOPED_TRACE(std::string(DTypeName(w.dtype)));
    VirtualTiffParams p;
    p.width = 7;
    p.height = 3;
    p.dtype = w.dtype;
    const VirtualTiffLayout layout(p);
    EXPECT_EQ(layout.row_bytes(), 7u * w.bits / 8);
    const TempFile file(FileBytes(layout));
    TIFF* tif = TIFFOpen(file.path().c_str(), "r");
    ASSERT_NE(tif, nullptr);
    uint16_t u16 = 0;
    EXPECT_EQ(TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &u16), 1);
    EXPECT_EQ(u16, w.bits);
    EXPECT_EQ(TIFFGetField(tif, TIFFTAG_SAMPLEFORMAT, &u16), 1);
    EXPECT_EQ(u16, w.format);
    TIFFClose(tif);
  }
}

TEST(VirtualTiffTest, ResolutionsBecomeRationals) {
  struct Case {
    double value;
    uint32_t num;
    uint32_t den;
  };
  const Case cases[] = {
      {0, 1, 1},
      {-3, 1, 1},
      {std::nan(""), 1, 1},
      {2.5, 5, 2},
      {1, 1, 1},
      {12345.678, 6172839, 500},   // 12345678/1000 reduced
      {4263.3, 42633, 10},
      {1e-9, 1, 1000000000},
      {1e12, std::numeric_limits<uint32_t>::max(), 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("resolution " + std::to_string(c.value));
    VirtualTiffParams p;
    p.width = 8;
    p.height = 8;
    p.x_resolution = c.value;
    p.y_resolution = c.value;
    const VirtualTiffLayout layout(p);
    const auto x = RationalOf(layout, TIFFTAG_XRESOLUTION);
    EXPECT_EQ(x.first, c.num);
    EXPECT_EQ(x.second, c.den);
    EXPECT_EQ(RationalOf(layout, TIFFTAG_YRESOLUTION), x);
    p.force_bigtiff = true;
    EXPECT_EQ(RationalOf(VirtualTiffLayout(p), TIFFTAG_XRESOLUTION), x);
  }
  // Large values keep ~9 significant digits by shrinking the denominator.
  VirtualTiffParams p;
  p.width = 8;
  p.height = 8;
  p.x_resolution = 98765.4321;
  const auto x = RationalOf(VirtualTiffLayout(p), TIFFTAG_XRESOLUTION);
  EXPECT_NEAR(static_cast<double>(x.first) / x.second, 98765.4321, 1e-4);
}

TEST(VirtualTiffTest, UnitIsCentimetreOnlyWhenAsked) {
  VirtualTiffParams p;
  p.width = 8;
  p.height = 8;
  p.resolution_in_cm = true;  // but nothing known: unit stays "none"
  auto unit = [](const VirtualTiffParams& q) {
    const VirtualTiffLayout layout(q);
    const std::vector<IfdEntry> entries = ParseAndCheckIfd(layout);
    const IfdEntry* e = Find(entries, TIFFTAG_RESOLUTIONUNIT);
    return e ? GetLE(layout.header(), e->value_at, 2) : 0;
  };
  EXPECT_EQ(unit(p), 1u);
  p.x_resolution = p.y_resolution = 10000;
  EXPECT_EQ(unit(p), 3u);
  p.resolution_in_cm = false;
  EXPECT_EQ(unit(p), 1u);
}

// Sizes near 4 GiB: checked through sparse files (only the header is
// written), so nothing big touches the disk.
void CheckSparse(const VirtualTiffLayout& layout, uint32_t width, uint32_t height) {
  {
    const TempFile file(layout.header());
    ASSERT_EQ(truncate(file.path().c_str(), static_cast<off_t>(layout.file_size())), 0);
    TIFF* tif = TIFFOpen(file.path().c_str(), "r");
    ASSERT_NE(tif, nullptr);
    EXPECT_EQ(TIFFIsBigTIFF(tif) != 0, layout.bigtiff());
    uint32_t v = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &v);
    EXPECT_EQ(v, width);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &v);
    EXPECT_EQ(v, height);
    const uint32_t last = TIFFNumberOfStrips(tif) - 1;
    EXPECT_EQ(TIFFNumberOfStrips(tif), height);  // 64 KiB rows: 1 row per strip
    EXPECT_EQ(TIFFGetStrileOffset(tif, last) + TIFFGetStrileByteCount(tif, last),
              layout.file_size());
    Bytes row(layout.row_bytes(), 1);
    EXPECT_EQ(TIFFReadScanline(tif, row.data(), height - 1, 0), 1);
    EXPECT_EQ(row, Bytes(layout.row_bytes(), 0));  // the sparse hole
    TIFFClose(tif);
  }
}

TEST(VirtualTiffTest, SwitchesToBigTiffAtFourGiB) {
  VirtualTiffParams p;
  p.width = 65536;
  p.height = 65000;  // 4,259,840,000 pixel bytes: classic still fits
  const VirtualTiffLayout classic(p);
  EXPECT_FALSE(classic.bigtiff());
  EXPECT_LT(classic.file_size(), uint64_t{1} << 32);
  CheckLayoutArithmetic(classic, p);
  CheckSparse(classic, 65536, 65000);

  p.height = 65535;  // pixels alone fit 32 bits, pixels + header do not
  const VirtualTiffLayout big(p);
  EXPECT_TRUE(big.bigtiff());
  EXPECT_GE(big.file_size(), uint64_t{1} << 32);
  CheckLayoutArithmetic(big, p);
  CheckSparse(big, 65536, 65535);
}

// --- Independent readers ------------------------------------------------------

// Runs `cmd` through the shell; returns its exit status and stdout+stderr.
std::pair<int, std::string> RunShell(const std::string& cmd) {
  std::string out;
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, out};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(VirtualTiffTest, TiffinfoReportsNoErrors) {
  if (RunShell("command -v tiffinfo").first != 0) GTEST_SKIP() << "tiffinfo not installed";
  for (bool force : {false, true}) {
    VirtualTiffParams p = Cases()[1];  // description and resolution
    p.force_bigtiff = force;
    SCOPED_TRACE(Describe(p));
    const TempFile file(FileBytes(VirtualTiffLayout(p)));
    // -D reads every strip; libtiff prints errors and warnings on stderr.
    const std::string err_path = file.path() + ".err";
    const int rc = std::system(("tiffinfo -D '" + file.path() + "' >/dev/null 2>'" +
                                err_path + "'").c_str());
    std::ifstream err_in(err_path);
    const std::string err((std::istreambuf_iterator<char>(err_in)), {});
    std::remove(err_path.c_str());
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(err, "");
  }
}

constexpr const char* kTifffileCheck = R"py(
import sys
import numpy as np
import tifffile
args = sys.argv[1:]
while args:
    path, off, w, h, dtype, desc, big = args[:7]
    args = args[7:]
    with tifffile.TiffFile(path) as t:
        assert len(t.pages) == 1, ('pages', len(t.pages))
        assert t.is_bigtiff == (big == '1'), ('bigtiff', t.is_bigtiff)
        page = t.pages[0]
        a = page.asarray()
        assert a.shape == (int(h), int(w)), ('shape', a.shape)
        assert a.dtype == np.dtype(dtype), ('dtype', a.dtype)
        assert page.description == desc, ('description', page.description)
        raw = open(path, 'rb').read()[int(off):]
        assert a.astype(a.dtype.newbyteorder('<')).tobytes() == raw, 'pixels differ'
print('OK')
)py";

TEST(VirtualTiffTest, TifffileReadsIdenticalPixels) {
  const std::string python = "/usr/bin/python3";
  if (access(python.c_str(), X_OK) != 0 ||
      RunShell(python + " -c 'import numpy, tifffile'").first != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with numpy and tifffile not available";
  }
  const std::string script_path = TempPath("check", ".py");
  {
    std::ofstream script(script_path);
    script << kTifffileCheck;
  }
  std::vector<std::unique_ptr<TempFile>> files;
  std::string cmd = python + " '" + script_path + "'";
  for (VirtualTiffParams p : AllDTypeCases()) {
    for (bool force : {false, true}) {
      p.force_bigtiff = force;
      const VirtualTiffLayout layout(p);
      files.push_back(std::make_unique<TempFile>(FileBytes(layout)));
      cmd += " '" + files.back()->path() + "' " + std::to_string(layout.pixel_offset()) +
             " " + std::to_string(p.width) + " " + std::to_string(p.height) + " " +
             std::string(DTypeName(p.dtype)) + " '" + p.description + "' " +
             (layout.bigtiff() ? "1" : "0");
    }
  }
  const auto [rc, out] = RunShell(cmd);
  std::remove(script_path.c_str());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "OK\n");
}

}  // namespace
}  // namespace brickfs
