// Decoding one TIFF slice held in memory; see tiff_decode.h.
//
// libtiff reads the buffer through client callbacks with memory mapping
// enabled: the "map" callback hands libtiff the caller's buffer itself, so
// libtiff decodes straight from it (it never writes to mapped memory) and
// bounds every strip against the buffer size. Error and warning handlers are
// installed per TIFF* through TIFFOpenOptions and return non-zero, which
// stops libtiff from also calling its process-wide handlers (that print to
// stderr). So concurrent calls share nothing.
#include "tiff/tiff_decode.h"

#include <tiffio.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace brickfs {
namespace {

// libtiff hands out samples in host order; brickfs stores little-endian.
static_assert(std::endian::native == std::endian::little,
              "DecodeTiffSlice assumes a little-endian host");

// Sanity caps on what a header may claim, checked before anything is sized
// from it. The caller's `dest` applies the real limit (the volume's shape).
constexpr uint64_t kMaxSide = uint64_t{1} << 20;
constexpr uint64_t kMaxImageBytes = uint64_t{16} << 30;
// A tile may legitimately exceed a small image (256x256 tiles on a 37x23
// image), so the scratch tile is capped by this or the image size, whichever
// is larger, rather than by the image alone.
constexpr uint64_t kMaxScratchTileBytes = uint64_t{64} << 20;
// Bounds libtiff's own allocations (strile arrays, codec state, raw strips
// when it cannot use the mapping). Legit files need far less; a hostile
// header cannot make libtiff ask for more than this (or the file size).
constexpr tmsize_t kMinLibtiffAllocLimit = tmsize_t{256} << 20;

// The in-memory "file" behind the client callbacks, plus what libtiff said.
struct MemFile {
  const uint8_t* data;
  uint64_t size;
  uint64_t pos = 0;
  std::string first_error;
};

tmsize_t MemRead(thandle_t h, void* buf, tmsize_t n) {
  auto* f = static_cast<MemFile*>(h);
  if (n <= 0 || f->pos >= f->size) return 0;
  const uint64_t count = std::min<uint64_t>(static_cast<uint64_t>(n), f->size - f->pos);
  std::memcpy(buf, f->data + f->pos, count);
  f->pos += count;
  return static_cast<tmsize_t>(count);
}

// Read-only: libtiff never writes in "r" mode, but refuse if it tries.
tmsize_t MemWrite(thandle_t, void*, tmsize_t) { return -1; }

toff_t MemSeek(thandle_t h, toff_t off, int whence) {
  auto* f = static_cast<MemFile*>(h);
  uint64_t base = 0;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = f->pos; break;
    case SEEK_END: base = f->size; break;
    default: return static_cast<toff_t>(-1);
  }
  // toff_t is unsigned; libtiff passes negative relative offsets as their
  // two's complement, so wrap-around arithmetic gives the right position.
  // Positions past the end are allowed (reads there return 0 bytes), as
  // with a real file; anything that wrapped below 0 is an error.
  const uint64_t target = base + off;
  if (whence != SEEK_SET && static_cast<int64_t>(off) < 0 && target > base) {
    return static_cast<toff_t>(-1);
  }
  f->pos = target;
  return target;
}

int MemClose(thandle_t) { return 0; }

toff_t MemSize(thandle_t h) { return static_cast<MemFile*>(h)->size; }

int MemMap(thandle_t h, void** base, toff_t* size) {
  auto* f = static_cast<MemFile*>(h);
  // libtiff only reads mapped memory (it maps real files PROT_READ), so
  // casting away const is safe.
  *base = const_cast<uint8_t*>(f->data);
  *size = f->size;
  return 1;
}

void MemUnmap(thandle_t, void*, toff_t) {}

std::string FormatV(const char* module, const char* fmt, va_list ap) {
  char text[512];
  std::vsnprintf(text, sizeof(text), fmt, ap);
  std::string out;
  if (module != nullptr && module[0] != '\0') {
    out = module;
    out += ": ";
  }
  out += text;
  return out;
}

int OnError(TIFF*, void* user_data, const char* module, const char* fmt,
            va_list ap) {
  auto* f = static_cast<MemFile*>(user_data);
  // The first error is the cause; later ones are usually consequences.
  if (f->first_error.empty()) f->first_error = FormatV(module, fmt, ap);
  return 1;  // handled: do not call libtiff's global (stderr) handler
}

int OnWarning(TIFF*, void*, const char*, const char*, va_list) {
  // Warnings are about files libtiff could read anyway (e.g. an unknown
  // tag); they are not worth a log line per slice.
  return 1;
}

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
struct OptionsFreer {
  void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};

// " (libtiff: <text>)" or "" when libtiff said nothing.
std::string LibtiffSuffix(const MemFile& f) {
  if (f.first_error.empty()) return "";
  return " (libtiff: " + f.first_error + ")";
}

bool HasTiffMagic(const uint8_t* d, size_t size) {
  if (size < 4) return false;
  const bool le = d[0] == 'I' && d[1] == 'I';
  const bool be = d[0] == 'M' && d[1] == 'M';
  if (!le && !be) return false;
  const uint16_t version =
      le ? static_cast<uint16_t>(d[2] | d[3] << 8)
         : static_cast<uint16_t>(d[2] << 8 | d[3]);
  return version == 42 || version == 43;
}

std::string SampleFormatName(uint16_t format) {
  switch (format) {
    case SAMPLEFORMAT_UINT: return "unsigned integer";
    case SAMPLEFORMAT_INT: return "signed integer";
    case SAMPLEFORMAT_IEEEFP: return "floating point";
    case SAMPLEFORMAT_VOID: return "untyped";
    case SAMPLEFORMAT_COMPLEXINT: return "complex integer";
    case SAMPLEFORMAT_COMPLEXIEEEFP: return "complex floating point";
    default: return "format " + std::to_string(format);
  }
}

// Maps the file's sample type to a brickfs DType, or says why not.
Result<DType> SampleDType(uint16_t bits, uint16_t format) {
  if (format == SAMPLEFORMAT_UINT) {
    if (bits == 8) return DType::kUint8;
    if (bits == 16) return DType::kUint16;
    if (bits == 32) return DType::kUint32;
  } else if (format == SAMPLEFORMAT_INT) {
    if (bits == 16) return DType::kInt16;
  } else if (format == SAMPLEFORMAT_IEEEFP) {
    if (bits == 32) return DType::kFloat32;
  }
  return Status::InvalidArgument(
      "has " + std::to_string(bits) + "-bit " + SampleFormatName(format) +
      " samples; accepted are 8/16/32-bit unsigned, 16-bit signed and 32-bit "
      "float");
}

// Header checks that need no pixel data. Fills `info`.
Status CheckImage(TIFF* tif, SliceInfo* info) {
  const tdir_t images = TIFFNumberOfDirectories(tif);
  if (images != 1) {
    return Status::InvalidArgument("has " + std::to_string(images) +
                                   " images; a slice file must hold one");
  }

  uint16_t samples = 1;
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &samples);
  if (samples != 1) {
    return Status::InvalidArgument("is RGB/multi-sample (" +
                                   std::to_string(samples) +
                                   " samples per pixel); a slice must be "
                                   "grayscale with 1 sample per pixel");
  }

  uint16_t photometric = PHOTOMETRIC_MINISBLACK;
  if (TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric) == 1 &&
      photometric != PHOTOMETRIC_MINISBLACK &&
      photometric != PHOTOMETRIC_MINISWHITE) {
    if (photometric == PHOTOMETRIC_PALETTE) {
      return Status::InvalidArgument(
          "is a palette (color-mapped) image; a slice must be grayscale");
    }
    return Status::InvalidArgument(
        "has photometric interpretation " + std::to_string(photometric) +
        "; a slice must be grayscale (MinIsBlack or MinIsWhite)");
  }

  uint16_t bits = 1;
  uint16_t format = SAMPLEFORMAT_UINT;
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &format);
  BRICKFS_ASSIGN_OR_RETURN(const DType dtype, SampleDType(bits, format));

  uint32_t depth = 1;
  TIFFGetFieldDefaulted(tif, TIFFTAG_IMAGEDEPTH, &depth);
  if (depth != 1) {
    return Status::InvalidArgument("is a 3D image (ImageDepth " +
                                   std::to_string(depth) +
                                   "); a slice must be 2D");
  }

  uint32_t width = 0;
  uint32_t height = 0;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height);
  const std::string dims = std::to_string(width) + " x " + std::to_string(height);
  if (width == 0 || height == 0) {
    return Status::InvalidArgument("has no pixels (" + dims + ")");
  }
  if (width > kMaxSide || height > kMaxSide) {
    return Status::InvalidArgument("is " + dims + " pixels; at most " +
                                   std::to_string(kMaxSide) +
                                   " per side is accepted");
  }
  // Cannot overflow: each side <= 2^20, at most 4 bytes per sample.
  const uint64_t image_bytes = uint64_t{width} * height * DTypeSize(dtype);
  if (image_bytes > kMaxImageBytes) {
    return Status::InvalidArgument("is " + dims + " " +
                                   std::string(DTypeName(dtype)) + " (" +
                                   std::to_string(image_bytes) +
                                   " bytes); at most 16 GiB is accepted");
  }

  const uint16_t compression = [tif] {
    uint16_t c = COMPRESSION_NONE;
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &c);
    return c;
  }();
  if (!TIFFIsCODECConfigured(compression)) {
    return Status::InvalidArgument("uses compression " +
                                   std::to_string(compression) +
                                   ", which this build of libtiff cannot decode");
  }

  // libtiff's idea of a row must be ours, or strip sizes would disagree.
  const uint64_t row_bytes = uint64_t{width} * DTypeSize(dtype);
  if (static_cast<uint64_t>(TIFFScanlineSize64(tif)) != row_bytes) {
    return Status::InvalidArgument(
        "is inconsistent: libtiff computes " +
        std::to_string(TIFFScanlineSize64(tif)) + " bytes per row, expected " +
        std::to_string(row_bytes));
  }

  info->width = width;
  info->height = height;
  info->dtype = dtype;
  return Status::Ok();
}

// The layout of strips or tiles, validated against the image and the buffer.
struct Chunking {
  bool tiled = false;
  uint64_t chunk_w = 0;  // tile width, or image width for strips
  uint64_t chunk_h = 0;  // tile length, or rows per strip (<= height)
  uint64_t count = 0;
};

Result<Chunking> CheckChunks(TIFF* tif, const SliceInfo& info,
                             uint64_t file_size) {
  Chunking c;
  const uint64_t voxel = DTypeSize(info.dtype);
  c.tiled = TIFFIsTiled(tif) != 0;
  uint64_t expected = 0;
  const char* what = c.tiled ? "tile" : "strip";
  if (c.tiled) {
    uint32_t tw = 0;
    uint32_t th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    if (tw == 0 || th == 0) {
      return Status::InvalidArgument("is corrupt: tile size " +
                                     std::to_string(tw) + " x " +
                                     std::to_string(th));
    }
    const uint64_t tile_bytes = uint64_t{tw} * th * voxel;
    const uint64_t image_bytes = info.width * info.height * voxel;
    if (tile_bytes > std::max(kMaxScratchTileBytes, image_bytes)) {
      return Status::InvalidArgument(
          "has " + std::to_string(tw) + " x " + std::to_string(th) +
          " tiles, too large for a " + std::to_string(info.width) + " x " +
          std::to_string(info.height) + " image");
    }
    if (static_cast<uint64_t>(TIFFTileSize64(tif)) != tile_bytes) {
      return Status::InvalidArgument(
          "is inconsistent: libtiff computes " +
          std::to_string(TIFFTileSize64(tif)) + " bytes per tile, expected " +
          std::to_string(tile_bytes));
    }
    c.chunk_w = tw;
    c.chunk_h = th;
    expected = ((info.width + tw - 1) / tw) * ((info.height + th - 1) / th);
    c.count = TIFFNumberOfTiles(tif);
  } else {
    uint32_t rps = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
    if (rps == 0) return Status::InvalidArgument("is corrupt: RowsPerStrip 0");
    c.chunk_w = info.width;
    c.chunk_h = std::min<uint64_t>(rps, info.height);
    expected = (info.height + c.chunk_h - 1) / c.chunk_h;
    c.count = TIFFNumberOfStrips(tif);
  }
  if (c.count != expected) {
    return Status::InvalidArgument(
        "is corrupt: " + std::to_string(c.count) + " " + what +
        "s where the image needs " + std::to_string(expected));
  }

  // libtiff bounds reads by the mapping too, but a truncated upload must be
  // reported as such whatever libtiff's code path, so check every chunk.
  for (uint64_t k = 0; k < c.count; ++k) {
    int err = 0;
    const uint64_t offset =
        TIFFGetStrileOffsetWithErr(tif, static_cast<uint32_t>(k), &err);
    const uint64_t bytes =
        err ? 0 : TIFFGetStrileByteCountWithErr(tif, static_cast<uint32_t>(k), &err);
    const std::string where = std::string(what) + " " + std::to_string(k) +
                              " of " + std::to_string(c.count);
    if (err) {
      return Status::InvalidArgument("is corrupt: the location of " + where +
                                     " cannot be read");
    }
    if (bytes == 0) {
      return Status::InvalidArgument("is corrupt: " + where +
                                     " has no data (byte count 0)");
    }
    if (offset > file_size || bytes > file_size - offset) {
      return Status::InvalidArgument(
          "is truncated or corrupt: " + where + " needs bytes [" +
          std::to_string(offset) + ", " + std::to_string(offset + bytes) +
          ") but the file has " + std::to_string(file_size) + " bytes");
    }
  }
  return c;
}

// Bytes of one value of TIFF field type `type` (TIFF 6.0 and BigTIFF); 0
// for types libtiff does not know (it skips those entries).
uint64_t TiffTypeSize(uint16_t type) {
  switch (type) {
    case 1: case 2: case 6: case 7: return 1;    // BYTE ASCII SBYTE UNDEFINED
    case 3: case 8: return 2;                    // SHORT SSHORT
    case 4: case 9: case 11: case 13: return 4;  // LONG SLONG FLOAT IFD
    case 5: case 10: case 12: case 16: case 17: case 18: return 8;  // RATIONAL.. LONG8 IFD8
    default: return 0;
  }
}

// Checks that every byte the decoder reads was written: the header, the
// first directory (entry count, entries, next pointer), every tag value
// stored outside its entry, and every strip or tile. libtiff itself leaves
// gaps (it aligns a directory to a word by seeking), so holes elsewhere are
// allowed. The directory has been parsed by libtiff, so its offset and
// entry count are within the file.
Status CheckWritten(TIFF* tif, const uint8_t* d, uint64_t size, const Chunking& c,
                    const IntervalSet& written) {
  auto need = [&](uint64_t a, uint64_t n, const std::string& what) -> Status {
    if (a > size || n > size - a) {
      return Status::InvalidArgument("is truncated or corrupt: " + what + " lies past the end");
    }
    if (written.ContainsAll(a, a + n)) return Status::Ok();
    const auto gaps = written.Gaps(a, a + n);
    return Status::InvalidArgument(
        "is incomplete: bytes [" + std::to_string(gaps[0].first) + ", " +
        std::to_string(gaps[0].second) + ") of " + what +
        " were never written (an interrupted or out-of-order copy); nothing was stored");
  };
  const bool le = d[0] == 'I';
  auto u16 = [&](uint64_t p) -> uint64_t {
    return le ? d[p] | d[p + 1] << 8 : d[p] << 8 | d[p + 1];
  };
  auto un = [&](uint64_t p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{d[p + (le ? i : n - 1 - i)]} << (8 * i);
    return v;
  };
  const bool big = TIFFIsBigTIFF(tif) != 0;
  BRICKFS_RETURN_IF_ERROR(need(0, big ? 16 : 8, "the TIFF header"));
  const uint64_t dir = TIFFCurrentDirOffset(tif);
  const uint64_t count_bytes = big ? 8 : 2, entry_bytes = big ? 20 : 12, inline_bytes = big ? 8 : 4;
  BRICKFS_RETURN_IF_ERROR(need(dir, count_bytes, "the image directory"));
  const uint64_t entries = big ? un(dir, 8) : u16(dir);
  if (entries > (size - dir) / entry_bytes) {
    return Status::InvalidArgument("is truncated or corrupt: the image directory lies past the end");
  }
  BRICKFS_RETURN_IF_ERROR(
      need(dir, count_bytes + entries * entry_bytes + inline_bytes, "the image directory"));
  for (uint64_t e = 0; e < entries; ++e) {
    const uint64_t p = dir + count_bytes + e * entry_bytes;
    const uint64_t tag = u16(p), type = u16(p + 2);
    const uint64_t n = big ? un(p + 4, 8) : un(p + 4, 4);
    const uint64_t unit = TiffTypeSize(static_cast<uint16_t>(type));
    if (unit == 0 || n > size / unit) continue;  // unknown type, or libtiff rejected it
    if (n * unit <= inline_bytes) continue;
    const uint64_t at = big ? un(p + 12, 8) : un(p + 8, 4);
    BRICKFS_RETURN_IF_ERROR(need(at, n * unit, "the value of tag " + std::to_string(tag)));
  }
  const char* what = c.tiled ? "tile" : "strip";
  for (uint64_t k = 0; k < c.count; ++k) {
    int err = 0;
    const uint64_t offset = TIFFGetStrileOffsetWithErr(tif, static_cast<uint32_t>(k), &err);
    const uint64_t bytes = TIFFGetStrileByteCountWithErr(tif, static_cast<uint32_t>(k), &err);
    BRICKFS_RETURN_IF_ERROR(need(offset, bytes, std::string(what) + " " + std::to_string(k) +
                                                    " of " + std::to_string(c.count)));
  }
  return Status::Ok();
}

Status DecodeStrips(TIFF* tif, const SliceInfo& info, const Chunking& c,
                    const MemFile& f, uint8_t* out) {
  const uint64_t row_bytes = info.width * DTypeSize(info.dtype);
  for (uint64_t k = 0; k < c.count; ++k) {
    const uint64_t row = k * c.chunk_h;
    const uint64_t rows = std::min(c.chunk_h, info.height - row);
    const auto want = static_cast<tmsize_t>(rows * row_bytes);
    // Rows are contiguous in both, so the strip decodes in place.
    const tmsize_t got = TIFFReadEncodedStrip(
        tif, static_cast<uint32_t>(k), out + row * row_bytes, want);
    if (got != want) {
      return Status::InvalidArgument(
          "is truncated or corrupt: strip " + std::to_string(k) + " of " +
          std::to_string(c.count) + " could not be decoded" +
          LibtiffSuffix(f));
    }
  }
  return Status::Ok();
}

Status DecodeTiles(TIFF* tif, const SliceInfo& info, const Chunking& c,
                   const MemFile& f, uint8_t* out) {
  const uint64_t voxel = DTypeSize(info.dtype);
  const uint64_t row_bytes = info.width * voxel;
  const uint64_t tile_row_bytes = c.chunk_w * voxel;
  const auto tile_bytes = static_cast<tmsize_t>(tile_row_bytes * c.chunk_h);
  // Edge tiles overhang the image, so tiles decode into scratch and only the
  // part inside the image is copied. Size checked in CheckChunks.
  std::vector<uint8_t> scratch(static_cast<size_t>(tile_bytes));
  for (uint64_t y = 0; y < info.height; y += c.chunk_h) {
    const uint64_t rows = std::min(c.chunk_h, info.height - y);
    for (uint64_t x = 0; x < info.width; x += c.chunk_w) {
      const uint64_t copy_bytes = std::min(c.chunk_w, info.width - x) * voxel;
      const uint32_t t = TIFFComputeTile(tif, static_cast<uint32_t>(x),
                                         static_cast<uint32_t>(y), 0, 0);
      if (TIFFReadEncodedTile(tif, t, scratch.data(), tile_bytes) != tile_bytes) {
        return Status::InvalidArgument(
            "is truncated or corrupt: tile " + std::to_string(t) + " of " +
            std::to_string(c.count) + " could not be decoded" +
            LibtiffSuffix(f));
      }
      for (uint64_t r = 0; r < rows; ++r) {
        std::memcpy(out + (y + r) * row_bytes + x * voxel,
                    scratch.data() + r * tile_row_bytes, copy_bytes);
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<SliceInfo> DecodeTiffSlice(const uint8_t* data, size_t size,
                                  const SliceDestFn& dest, const IntervalSet* written) {
  if (size == 0) return Status::InvalidArgument("is empty (0 bytes), not a TIFF");
  if (!HasTiffMagic(data, size)) {
    std::string first;
    for (size_t i = 0; i < std::min<size_t>(size, 4); ++i) {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%s%02x", i ? " " : "", data[i]);
      first += hex;
    }
    return Status::InvalidArgument("is not a TIFF (starts with bytes " + first +
                                   "; a TIFF starts with II*\\0 or MM\\0*)");
  }

  MemFile f{data, size, 0, {}};
  std::unique_ptr<TIFFOpenOptions, OptionsFreer> opts(TIFFOpenOptionsAlloc());
  if (!opts) return Status::NoSpace("cannot allocate libtiff open options");
  TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), OnError, &f);
  TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), OnWarning, &f);
  TIFFOpenOptionsSetMaxSingleMemAlloc(
      opts.get(), std::max(kMinLibtiffAllocLimit, static_cast<tmsize_t>(size)));

  // "r": read only, with mapping (the default), so libtiff reads strips from
  // the caller's buffer without copying them first.
  std::unique_ptr<TIFF, TiffCloser> tif(
      TIFFClientOpenExt("slice", "r", &f, MemRead, MemWrite, MemSeek, MemClose,
                        MemSize, MemMap, MemUnmap, opts.get()));
  if (!tif) {
    return Status::InvalidArgument(
        "is truncated or corrupt: the TIFF header or first directory cannot "
        "be read" + LibtiffSuffix(f));
  }

  SliceInfo info;
  BRICKFS_RETURN_IF_ERROR(CheckImage(tif.get(), &info));
  BRICKFS_ASSIGN_OR_RETURN(const Chunking chunks,
                           CheckChunks(tif.get(), info, size));
  if (written) BRICKFS_RETURN_IF_ERROR(CheckWritten(tif.get(), data, size, chunks, *written));

  BRICKFS_ASSIGN_OR_RETURN(uint8_t* const out, dest(info));
  assert(out != nullptr && "dest must return a buffer or an error");
  if (chunks.tiled) {
    BRICKFS_RETURN_IF_ERROR(DecodeTiles(tif.get(), info, chunks, f, out));
  } else {
    BRICKFS_RETURN_IF_ERROR(DecodeStrips(tif.get(), info, chunks, f, out));
  }
  return info;
}

}  // namespace brickfs
