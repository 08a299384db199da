#include "volume/downsample.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

namespace brickfs {

std::string_view DownsampleMethodName(DownsampleMethod m) {
  return m == DownsampleMethod::kMode ? "mode" : "mean";
}

std::optional<DownsampleMethod> ParseDownsampleMethod(std::string_view name) {
  if (name == "mean") return DownsampleMethod::kMean;
  if (name == "mode") return DownsampleMethod::kMode;
  return std::nullopt;
}

Shape3 DownsampledShape(const Shape3& s) {
  return {CeilDiv(s[0], 2), CeilDiv(s[1], 2), CeilDiv(s[2], 2)};
}

int NumLevels(const Shape3& shape, const Shape3& brick) {
  if (brick[0] == 0 || brick[1] == 0 || brick[2] == 0) return 1;
  int n = 1;
  for (Shape3 s = shape; s[0] > brick[0] || s[1] > brick[1] || s[2] > brick[2];
       s = DownsampledShape(s)) {
    ++n;  // at most 65 iterations: every side halves until it is <= its brick side
  }
  return n;
}

namespace {

// Voxels are read and written with memcpy: the buffers are bytes (slab
// buffers, blocks), so this keeps the kernels free of aliasing and alignment
// assumptions; compilers turn these into plain (vector) loads.
template <typename T>
inline T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void Store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// A box in bytes: where each row of the source or destination starts.
struct ByteBox {
  const uint8_t* src;
  uint64_t src_row, src_plane;  // bytes
  uint8_t* dst;
  uint64_t dst_row, dst_plane;  // bytes
};

// --- mean -----------------------------------------------------------------

// Acc holds the sum of up to 8 voxels exactly; Finish(sum, shift) divides by
// n = 2^shift with the rounding the header specifies.
template <typename T>
struct MeanTraits;
template <>
struct MeanTraits<uint8_t> {
  using Acc = uint16_t;  // 8 * 255 + 4 < 2^16
  static uint8_t Finish(Acc s, int shift) {
    return static_cast<uint8_t>((s + ((1u << shift) >> 1)) >> shift);
  }
};
template <>
struct MeanTraits<uint16_t> {
  using Acc = uint32_t;
  static uint16_t Finish(Acc s, int shift) {
    return static_cast<uint16_t>((s + ((1u << shift) >> 1)) >> shift);
  }
};
template <>
struct MeanTraits<uint32_t> {
  using Acc = uint64_t;
  static uint32_t Finish(Acc s, int shift) {
    return static_cast<uint32_t>((s + ((uint64_t{1} << shift) >> 1)) >> shift);
  }
};
template <>
struct MeanTraits<int16_t> {
  using Acc = int32_t;
  static int16_t Finish(Acc s, int shift) {
    const int32_t half = (1 << shift) >> 1;
    const int32_t mag = ((s < 0 ? -s : s) + half) >> shift;
    return static_cast<int16_t>(s < 0 ? -mag : mag);
  }
};
template <>
struct MeanTraits<int8_t> {
  using Acc = int16_t;  // 8 * 128 < 2^15
  static int8_t Finish(Acc s, int shift) {
    const int half = (1 << shift) >> 1;
    const int mag = ((s < 0 ? -s : s) + half) >> shift;
    return static_cast<int8_t>(s < 0 ? -mag : mag);
  }
};
template <>
struct MeanTraits<int32_t> {
  using Acc = int64_t;
  static int32_t Finish(Acc s, int shift) {
    const int64_t half = (int64_t{1} << shift) >> 1;
    const int64_t mag = ((s < 0 ? -s : s) + half) >> shift;
    return static_cast<int32_t>(s < 0 ? -mag : mag);
  }
};
template <>
struct MeanTraits<double> {
  using Acc = double;
  static double Finish(Acc s, int shift) {
    return s / static_cast<double>(1u << shift);  // exact division
  }
};
template <>
struct MeanTraits<float> {
  using Acc = double;
  static float Finish(Acc s, int shift) {
    return static_cast<float>(s / static_cast<double>(1u << shift));  // exact division
  }
};

// acc[x] = sum of rows[0..n)[x] for x < sx.
template <typename T, typename Acc>
void SumRows(const uint8_t* const* rows, int n, uint64_t sx, Acc* __restrict acc) {
  constexpr size_t kB = sizeof(T);
  if (n == 4) {
    const uint8_t* __restrict r0 = rows[0];
    const uint8_t* __restrict r1 = rows[1];
    const uint8_t* __restrict r2 = rows[2];
    const uint8_t* __restrict r3 = rows[3];
    for (uint64_t x = 0; x < sx; ++x) {
      acc[x] = static_cast<Acc>(
          static_cast<Acc>(Load<T>(r0 + x * kB)) + static_cast<Acc>(Load<T>(r1 + x * kB)) +
          static_cast<Acc>(Load<T>(r2 + x * kB)) + static_cast<Acc>(Load<T>(r3 + x * kB)));
    }
    return;
  }
  const uint8_t* __restrict r0 = rows[0];
  for (uint64_t x = 0; x < sx; ++x) acc[x] = static_cast<Acc>(Load<T>(r0 + x * kB));
  for (int i = 1; i < n; ++i) {
    const uint8_t* __restrict r = rows[i];
    for (uint64_t x = 0; x < sx; ++x)
      acc[x] = static_cast<Acc>(acc[x] + static_cast<Acc>(Load<T>(r + x * kB)));
  }
}

// Two passes per output row: sum the (up to) 4 source rows of the window
// column-wise, then add neighbouring columns pairwise and round. Both loops
// are plain enough to vectorize; gcc 12 does so at -O3 or with
// -fvect-cost-model=dynamic (~5 ms for a 32x1024x1024 uint8 slab), its -O2
// cost model leaves them scalar (~11 ms).
template <typename T>
void MeanKernel(const ByteBox& b, const Shape3& ss) {
  using Tr = MeanTraits<T>;
  using Acc = typename Tr::Acc;
  constexpr size_t kB = sizeof(T);
  const Shape3 ds = DownsampledShape(ss);
  const uint64_t sx = ss[2];
  const uint64_t pairs = sx / 2;
  std::vector<Acc> acc_buf(sx);
  Acc* __restrict acc = acc_buf.data();
  for (uint64_t oz = 0; oz < ds[0]; ++oz) {
    const uint64_t nz = std::min<uint64_t>(2, ss[0] - 2 * oz);
    for (uint64_t oy = 0; oy < ds[1]; ++oy) {
      const uint64_t ny = std::min<uint64_t>(2, ss[1] - 2 * oy);
      const uint8_t* rows[4] = {};
      int n = 0;
      for (uint64_t dz = 0; dz < nz; ++dz) {
        for (uint64_t dy = 0; dy < ny; ++dy) {
          rows[n++] = b.src + (2 * oz + dz) * b.src_plane + (2 * oy + dy) * b.src_row;
        }
      }
      SumRows<T, Acc>(rows, n, sx, acc);
      const int row_shift = n == 4 ? 2 : n == 2 ? 1 : 0;
      uint8_t* __restrict out = b.dst + oz * b.dst_plane + oy * b.dst_row;
      const int pair_shift = row_shift + 1;
      for (uint64_t ox = 0; ox < pairs; ++ox) {
        Store<T>(out + ox * kB,
                 Tr::Finish(static_cast<Acc>(acc[2 * ox] + acc[2 * ox + 1]), pair_shift));
      }
      if (sx & 1) Store<T>(out + pairs * kB, Tr::Finish(acc[sx - 1], row_shift));
    }
  }
}

// --- mode -----------------------------------------------------------------

// Compare-exchange without data-dependent branches (compiles to min/max or
// conditional moves): neighbouring labels often differ, so branches on the
// values would mispredict.
template <typename K>
inline void SortPair(K& a, K& b) {
  const K lo = b < a ? b : a;
  const K hi = b < a ? a : b;
  a = lo;
  b = hi;
}

// The most frequent of v[0..n) (n in {1, 2, 4, 8}), ties to the smallest.
// Sorts v with a sorting network, then takes the first longest run.
template <typename K>
K ModeOf(K* v, int n) {
  bool uniform = true;
  for (int i = 1; i < n; ++i) uniform &= v[i] == v[0];
  if (uniform) return v[0];  // the common case inside labelled regions
  if (n == 8) {              // Batcher's odd-even merge sort: 19 comparators
    SortPair(v[0], v[1]), SortPair(v[2], v[3]), SortPair(v[4], v[5]), SortPair(v[6], v[7]);
    SortPair(v[0], v[2]), SortPair(v[1], v[3]), SortPair(v[4], v[6]), SortPair(v[5], v[7]);
    SortPair(v[1], v[2]), SortPair(v[5], v[6]);
    SortPair(v[0], v[4]), SortPair(v[1], v[5]), SortPair(v[2], v[6]), SortPair(v[3], v[7]);
    SortPair(v[2], v[4]), SortPair(v[3], v[5]);
    SortPair(v[1], v[2]), SortPair(v[3], v[4]), SortPair(v[5], v[6]);
  } else if (n == 4) {
    SortPair(v[0], v[1]), SortPair(v[2], v[3]);
    SortPair(v[0], v[2]), SortPair(v[1], v[3]);
    SortPair(v[1], v[2]);
  } else if (n == 2) {
    return v[0] < v[1] ? v[0] : v[1];  // two different values: a tie
  }
  K best = v[0];
  int best_run = 1, run = 1;
  for (int i = 1; i < n; ++i) {
    run = v[i] == v[i - 1] ? run + 1 : 1;
    const bool longer = run > best_run;  // strictly: the smaller value keeps a tie
    best = longer ? v[i] : best;
    best_run = longer ? run : best_run;
  }
  return best;
}

// Keys are ordered like the values: the value type itself for integers; for
// float32 the bit pattern mapped to an unsigned integer in IEEE 754
// totalOrder.
template <typename T>
struct ModeKey {
  using K = T;
  static K ToKey(T v) { return v; }
  static T FromKey(K k) { return k; }
};
struct FloatBits {};  // float32 handled as its uint32 bit pattern
template <>
struct ModeKey<FloatBits> {
  using K = uint32_t;
  static K ToKey(uint32_t b) { return (b & 0x80000000u) ? ~b : (b | 0x80000000u); }
  static uint32_t FromKey(K k) { return (k & 0x80000000u) ? (k ^ 0x80000000u) : ~k; }
};

struct DoubleBits {};  // float64 handled as its uint64 bit pattern
template <>
struct ModeKey<DoubleBits> {
  using K = uint64_t;
  static constexpr uint64_t kSign = uint64_t{1} << 63;
  static K ToKey(uint64_t b) { return (b & kSign) ? ~b : (b | kSign); }
  static uint64_t FromKey(K k) { return (k & kSign) ? (k ^ kSign) : ~k; }
};

template <typename T, typename Key = ModeKey<T>>
void ModeKernel(const ByteBox& b, const Shape3& ss) {
  using V = std::conditional_t<std::is_same_v<T, FloatBits>, uint32_t,
                               std::conditional_t<std::is_same_v<T, DoubleBits>, uint64_t, T>>;
  using K = typename Key::K;
  constexpr size_t kB = sizeof(V);
  const Shape3 ds = DownsampledShape(ss);
  for (uint64_t oz = 0; oz < ds[0]; ++oz) {
    const uint64_t nz = std::min<uint64_t>(2, ss[0] - 2 * oz);
    for (uint64_t oy = 0; oy < ds[1]; ++oy) {
      const uint64_t ny = std::min<uint64_t>(2, ss[1] - 2 * oy);
      const uint8_t* rows[4] = {};
      int nrows = 0;
      for (uint64_t dz = 0; dz < nz; ++dz) {
        for (uint64_t dy = 0; dy < ny; ++dy) {
          rows[nrows++] = b.src + (2 * oz + dz) * b.src_plane + (2 * oy + dy) * b.src_row;
        }
      }
      uint8_t* out = b.dst + oz * b.dst_plane + oy * b.dst_row;
      uint64_t ox = 0;
      if (nrows == 4) {  // full windows: 8 voxels, no edge tests
        for (; ox < ss[2] / 2; ++ox) {
          const uint64_t x0 = 2 * ox * kB;
          K v[8];
          for (int r = 0; r < 4; ++r) {
            v[2 * r] = Key::ToKey(Load<V>(rows[r] + x0));
            v[2 * r + 1] = Key::ToKey(Load<V>(rows[r] + x0 + kB));
          }
          Store<V>(out + ox * kB, Key::FromKey(ModeOf(v, 8)));
        }
      }
      for (; ox < ds[2]; ++ox) {  // windows clipped by an odd edge
        const uint64_t x0 = 2 * ox;
        const bool two = x0 + 1 < ss[2];
        K v[8] = {};
        int n = 0;
        for (int r = 0; r < nrows; ++r) {
          v[n++] = Key::ToKey(Load<V>(rows[r] + x0 * kB));
          if (two) v[n++] = Key::ToKey(Load<V>(rows[r] + (x0 + 1) * kB));
        }
        Store<V>(out + ox * kB, Key::FromKey(ModeOf(v, n)));
      }
    }
  }
}

template <typename T>
void Run(DownsampleMethod method, const ByteBox& b, const Shape3& ss) {
  if (method == DownsampleMethod::kMode) {
    if constexpr (std::is_same_v<T, float>) {
      ModeKernel<FloatBits>(b, ss);
    } else if constexpr (std::is_same_v<T, double>) {
      ModeKernel<DoubleBits>(b, ss);
    } else {
      ModeKernel<T>(b, ss);
    }
  } else {
    MeanKernel<T>(b, ss);
  }
}

}  // namespace

void Downsample2x(DType dtype, DownsampleMethod method, const uint8_t* src, const Shape3& src_shape,
                  const BoxStrides& src_strides, uint8_t* dst, const BoxStrides& dst_strides) {
  if (src_shape[0] == 0 || src_shape[1] == 0 || src_shape[2] == 0) return;
  const uint64_t vb = DTypeSize(dtype);
  const ByteBox b{src, src_strides.row * vb, src_strides.plane * vb,
                  dst, dst_strides.row * vb, dst_strides.plane * vb};
  switch (dtype) {
    case DType::kUint8:
      return Run<uint8_t>(method, b, src_shape);
    case DType::kUint16:
      return Run<uint16_t>(method, b, src_shape);
    case DType::kInt16:
      return Run<int16_t>(method, b, src_shape);
    case DType::kUint32:
      return Run<uint32_t>(method, b, src_shape);
    case DType::kFloat32:
      return Run<float>(method, b, src_shape);
    case DType::kInt8:
      return Run<int8_t>(method, b, src_shape);
    case DType::kInt32:
      return Run<int32_t>(method, b, src_shape);
    case DType::kFloat64:
      return Run<double>(method, b, src_shape);
  }
}

}  // namespace brickfs
