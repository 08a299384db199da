#include "volume/transpose.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace brickfs {
namespace {

// Element by element over rows [r0, r1) × cols [c0, c1).
template <uint32_t VB>
void TransposeScalar(const uint8_t* in, uint8_t* out, uint64_t rows, uint64_t cols, uint64_t r0,
                     uint64_t r1, uint64_t c0, uint64_t c1) {
  for (uint64_t c = c0; c < c1; ++c) {
    for (uint64_t r = r0; r < r1; ++r) std::memcpy(out + (c * rows + r) * VB, in + (r * cols + c) * VB, VB);
  }
}

#if defined(__SSE2__)
inline __m128i Load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void Store(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }

// One 16-byte-wide tile: T rows of T elements of 16/T bytes, read with
// stride `is` bytes and written transposed with stride `os` bytes.
template <uint32_t VB>
void Tile(const uint8_t* in, uint64_t is, uint8_t* out, uint64_t os);

template <>
void Tile<1>(const uint8_t* in, uint64_t is, uint8_t* out, uint64_t os) {
  __m128i r[16], a[16], b[16];
  for (int i = 0; i < 16; ++i) r[i] = Load(in + i * is);
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    b[4 * i] = _mm_unpacklo_epi16(a[4 * i], a[4 * i + 2]);
    b[4 * i + 1] = _mm_unpackhi_epi16(a[4 * i], a[4 * i + 2]);
    b[4 * i + 2] = _mm_unpacklo_epi16(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm_unpackhi_epi16(a[4 * i + 1], a[4 * i + 3]);
  }
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 4; ++j) {
      a[8 * i + 2 * j] = _mm_unpacklo_epi32(b[8 * i + j], b[8 * i + j + 4]);
      a[8 * i + 2 * j + 1] = _mm_unpackhi_epi32(b[8 * i + j], b[8 * i + j + 4]);
    }
  }
  for (int j = 0; j < 8; ++j) {
    Store(out + (2 * j) * os, _mm_unpacklo_epi64(a[j], a[j + 8]));
    Store(out + (2 * j + 1) * os, _mm_unpackhi_epi64(a[j], a[j + 8]));
  }
}

template <>
void Tile<2>(const uint8_t* in, uint64_t is, uint8_t* out, uint64_t os) {
  __m128i r[8], a[8], b[8];
  for (int i = 0; i < 8; ++i) r[i] = Load(in + i * is);
  for (int i = 0; i < 4; ++i) {
    a[2 * i] = _mm_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    b[4 * i] = _mm_unpacklo_epi32(a[4 * i], a[4 * i + 2]);
    b[4 * i + 1] = _mm_unpackhi_epi32(a[4 * i], a[4 * i + 2]);
    b[4 * i + 2] = _mm_unpacklo_epi32(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm_unpackhi_epi32(a[4 * i + 1], a[4 * i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    Store(out + (2 * j) * os, _mm_unpacklo_epi64(b[j], b[j + 4]));
    Store(out + (2 * j + 1) * os, _mm_unpackhi_epi64(b[j], b[j + 4]));
  }
}

template <>
void Tile<4>(const uint8_t* in, uint64_t is, uint8_t* out, uint64_t os) {
  const __m128i r0 = Load(in), r1 = Load(in + is), r2 = Load(in + 2 * is), r3 = Load(in + 3 * is);
  const __m128i a0 = _mm_unpacklo_epi32(r0, r1), a1 = _mm_unpackhi_epi32(r0, r1);
  const __m128i a2 = _mm_unpacklo_epi32(r2, r3), a3 = _mm_unpackhi_epi32(r2, r3);
  Store(out, _mm_unpacklo_epi64(a0, a2));
  Store(out + os, _mm_unpackhi_epi64(a0, a2));
  Store(out + 2 * os, _mm_unpacklo_epi64(a1, a3));
  Store(out + 3 * os, _mm_unpackhi_epi64(a1, a3));
}

template <uint32_t VB>
void TransposeTiled(const uint8_t* in, uint8_t* out, uint64_t rows, uint64_t cols) {
  constexpr uint64_t T = 16 / VB;  // elements per tile side
  const uint64_t rt = rows / T * T, ct = cols / T * T;
  for (uint64_t r = 0; r < rt; r += T) {
    for (uint64_t c = 0; c < ct; c += T) {
      Tile<VB>(in + (r * cols + c) * VB, cols * VB, out + (c * rows + r) * VB, rows * VB);
    }
  }
  TransposeScalar<VB>(in, out, rows, cols, 0, rt, ct, cols);     // right edge
  TransposeScalar<VB>(in, out, rows, cols, rt, rows, 0, cols);   // bottom edge
}
#else
template <uint32_t VB>
void TransposeTiled(const uint8_t* in, uint8_t* out, uint64_t rows, uint64_t cols) {
  TransposeScalar<VB>(in, out, rows, cols, 0, rows, 0, cols);
}
#endif

}  // namespace

void TransposeMatrix(const uint8_t* in, uint8_t* out, uint64_t rows, uint64_t cols, uint32_t vb) {
  switch (vb) {
    case 1: return TransposeTiled<1>(in, out, rows, cols);
    case 2: return TransposeTiled<2>(in, out, rows, cols);
    case 4: return TransposeTiled<4>(in, out, rows, cols);
    default: return TransposeScalar<8>(in, out, rows, cols, 0, rows, 0, cols);
  }
}

}  // namespace brickfs
