// The byte-exact layout of a virtual TIFF; see virtual_tiff.h.
//
// Everything is written little-endian byte by byte, so the header is the
// same on any host. Classic and BigTIFF differ only in the widths below;
// one builder covers both.
#include "tiff/virtual_tiff.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

namespace brickfs {
namespace {

constexpr uint64_t kPixelAlign = 4096;
constexpr uint64_t kTargetStripBytes = 65536;
constexpr uint64_t kClassicLimit = uint64_t{1} << 32;
// Out-of-line values start on this boundary (the spec asks for 2).
constexpr uint64_t kValueAlign = 8;

// TIFF field types.
constexpr uint16_t kTypeAscii = 2;
constexpr uint16_t kTypeShort = 3;
constexpr uint16_t kTypeLong = 4;
constexpr uint16_t kTypeRational = 5;
constexpr uint16_t kTypeLong8 = 16;

// Tags, in the ascending order the IFD needs.
constexpr uint16_t kTagNewSubfileType = 254;
constexpr uint16_t kTagImageWidth = 256;
constexpr uint16_t kTagImageLength = 257;
constexpr uint16_t kTagBitsPerSample = 258;
constexpr uint16_t kTagCompression = 259;
constexpr uint16_t kTagPhotometric = 262;
constexpr uint16_t kTagImageDescription = 270;
constexpr uint16_t kTagStripOffsets = 273;
constexpr uint16_t kTagSamplesPerPixel = 277;
constexpr uint16_t kTagRowsPerStrip = 278;
constexpr uint16_t kTagStripByteCounts = 279;
constexpr uint16_t kTagXResolution = 282;
constexpr uint16_t kTagYResolution = 283;
constexpr uint16_t kTagPlanarConfig = 284;
constexpr uint16_t kTagResolutionUnit = 296;
constexpr uint16_t kTagSampleFormat = 339;

uint64_t RoundUp(uint64_t v, uint64_t align) {
  return (v + align - 1) / align * align;
}

void PutLE(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// pixels per unit -> (numerator, denominator). Unknown (0, negative, NaN)
// becomes 1/1 as the header promises. A denominator of 10^6 keeps six
// decimals (a voxel size in micrometres); it shrinks by tens only when the
// numerator would not fit 32 bits, and the fraction is then reduced so
// simple values come out simple (2.5 -> 5/2).
std::pair<uint32_t, uint32_t> ToRational(double v) {
  constexpr double kMax = std::numeric_limits<uint32_t>::max();
  if (!(v > 0)) return {1, 1};
  if (std::isinf(v) || v >= kMax) return {std::numeric_limits<uint32_t>::max(), 1};
  uint64_t den = 1000000;
  while (den > 1 && std::round(v * static_cast<double>(den)) > kMax) den /= 10;
  uint64_t num = static_cast<uint64_t>(std::llround(v * static_cast<double>(den)));
  if (num == 0) {
    // Below 5e-7 per unit: keep the magnitude with 1/round(1/v).
    num = 1;
    den = static_cast<uint64_t>(std::min(kMax, std::round(1.0 / v)));
  }
  const uint64_t g = std::gcd(num, den);
  return {static_cast<uint32_t>(num / g), static_cast<uint32_t>(den / g)};
}

struct Entry {
  uint16_t tag;
  uint16_t type;
  uint64_t count;
  std::vector<uint8_t> value;  // little-endian bytes, count * type size
};

Entry Scalar(uint16_t tag, uint16_t type, uint64_t v) {
  const int size = type == kTypeShort ? 2 : type == kTypeLong ? 4 : 8;
  Entry e{tag, type, 1, std::vector<uint8_t>(size)};
  PutLE(e.value.data(), v, size);
  return e;
}

Entry Rational(uint16_t tag, double v) {
  const auto [num, den] = ToRational(v);
  Entry e{tag, kTypeRational, 1, std::vector<uint8_t>(8)};
  PutLE(e.value.data(), num, 4);
  PutLE(e.value.data() + 4, den, 4);
  return e;
}

// Builds [0, pixel_offset) for one variant (classic or BigTIFF).
std::vector<uint8_t> BuildHeader(const VirtualTiffParams& p, uint64_t row_bytes,
                                 bool big) {
  // row_bytes > 0 by REQUIRES; max() only keeps a violated REQUIRES from
  // dividing by zero in release builds.
  const uint64_t rows_per_strip =
      std::max<uint64_t>(1, kTargetStripBytes / std::max<uint64_t>(row_bytes, 1));
  const uint64_t strips = (p.height + rows_per_strip - 1) / rows_per_strip;
  const uint16_t offset_type = big ? kTypeLong8 : kTypeLong;
  const int offset_size = big ? 8 : 4;
  const uint64_t inline_size = big ? 8 : 4;
  const uint64_t header_size = big ? 16 : 8;
  const uint64_t entry_size = big ? 20 : 12;
  const uint64_t count_size = big ? 8 : 2;  // entry count; next-IFD = offset_size

  std::vector<Entry> entries;
  entries.push_back(Scalar(kTagNewSubfileType, kTypeLong, 0));
  entries.push_back(Scalar(kTagImageWidth, kTypeLong, p.width));
  entries.push_back(Scalar(kTagImageLength, kTypeLong, p.height));
  entries.push_back(Scalar(kTagBitsPerSample, kTypeShort, 8 * DTypeSize(p.dtype)));
  entries.push_back(Scalar(kTagCompression, kTypeShort, 1));
  entries.push_back(Scalar(kTagPhotometric, kTypeShort, 1));
  if (!p.description.empty()) {
    Entry e{kTagImageDescription, kTypeAscii, p.description.size() + 1,
            std::vector<uint8_t>(p.description.begin(), p.description.end())};
    e.value.push_back(0);
    entries.push_back(std::move(e));
  }
  // StripOffsets are filled in once pixel_offset is known; reserve the space.
  const size_t offsets_index = entries.size();
  entries.push_back(Entry{kTagStripOffsets, offset_type, strips,
                          std::vector<uint8_t>(strips * offset_size)});
  entries.push_back(Scalar(kTagSamplesPerPixel, kTypeShort, 1));
  entries.push_back(Scalar(kTagRowsPerStrip, kTypeLong, rows_per_strip));
  Entry counts{kTagStripByteCounts, offset_type, strips,
               std::vector<uint8_t>(strips * offset_size)};
  for (uint64_t s = 0; s < strips; ++s) {
    const uint64_t rows = std::min(rows_per_strip, p.height - s * rows_per_strip);
    PutLE(counts.value.data() + s * offset_size, rows * row_bytes, offset_size);
  }
  entries.push_back(std::move(counts));
  entries.push_back(Rational(kTagXResolution, p.x_resolution));
  entries.push_back(Rational(kTagYResolution, p.y_resolution));
  entries.push_back(Scalar(kTagPlanarConfig, kTypeShort, 1));
  // "none" only when nothing is known: a unit on 1/1 would claim a size.
  const bool known = p.x_resolution > 0 || p.y_resolution > 0;
  entries.push_back(Scalar(kTagResolutionUnit, kTypeShort,
                           p.resolution_in_cm && known ? 3 : 1));
  entries.push_back(Scalar(kTagSampleFormat, kTypeShort, DTypeTiffSampleFormat(p.dtype)));
  assert(std::is_sorted(entries.begin(), entries.end(),
                        [](const Entry& a, const Entry& b) { return a.tag < b.tag; }));

  // Place out-of-line values after the IFD, in entry (tag) order.
  const uint64_t ifd_size = count_size + entries.size() * entry_size + offset_size;
  uint64_t end = header_size + ifd_size;
  std::vector<uint64_t> value_at(entries.size(), 0);  // 0: inline
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].value.size() > inline_size) {
      end = RoundUp(end, kValueAlign);
      value_at[i] = end;
      end += entries[i].value.size();
    }
  }
  const uint64_t pixel_offset = RoundUp(end, kPixelAlign);
  for (uint64_t s = 0; s < strips; ++s) {
    PutLE(entries[offsets_index].value.data() + s * offset_size,
          pixel_offset + s * rows_per_strip * row_bytes, offset_size);
  }

  std::vector<uint8_t> out(pixel_offset, 0);
  uint8_t* h = out.data();
  h[0] = 'I';
  h[1] = 'I';
  if (big) {
    PutLE(h + 2, 43, 2);
    PutLE(h + 4, 8, 2);  // bytes per offset
    PutLE(h + 6, 0, 2);
    PutLE(h + 8, header_size, 8);
  } else {
    PutLE(h + 2, 42, 2);
    PutLE(h + 4, header_size, 4);
  }
  uint8_t* ifd = h + header_size;
  PutLE(ifd, entries.size(), static_cast<int>(count_size));
  uint8_t* e = ifd + count_size;
  for (size_t i = 0; i < entries.size(); ++i, e += entry_size) {
    const Entry& entry = entries[i];
    PutLE(e, entry.tag, 2);
    PutLE(e + 2, entry.type, 2);
    PutLE(e + 4, entry.count, offset_size);
    uint8_t* field = e + 4 + offset_size;
    if (value_at[i] == 0) {
      // Inline values are left-justified; the rest of the field stays 0.
      std::memcpy(field, entry.value.data(), entry.value.size());
    } else {
      PutLE(field, value_at[i], offset_size);
      std::memcpy(h + value_at[i], entry.value.data(), entry.value.size());
    }
  }
  // Next-IFD offset: 0, already zero.
  return out;
}

}  // namespace

VirtualTiffLayout::VirtualTiffLayout(const VirtualTiffParams& p)
    : height_(p.height),
      row_bytes_(p.width * DTypeSize(p.dtype)),
      pixel_offset_(0),
      bigtiff_(p.force_bigtiff) {
  // ImageWidth/ImageLength are LONG: a virtual slice is far smaller anyway.
  assert(p.width > 0 && p.height > 0);
  assert(p.width <= std::numeric_limits<uint32_t>::max());
  assert(p.height <= std::numeric_limits<uint32_t>::max());
  if (!bigtiff_) {
    header_ = BuildHeader(p, row_bytes_, /*big=*/false);
    // Classic offsets are 32-bit: every byte of the file must be addressable.
    bigtiff_ = header_.size() + height_ * row_bytes_ >= kClassicLimit;
  }
  if (bigtiff_) header_ = BuildHeader(p, row_bytes_, /*big=*/true);
  pixel_offset_ = header_.size();
}

}  // namespace brickfs
