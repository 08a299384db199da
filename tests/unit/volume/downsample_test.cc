// Tests for the 2x2x2 downsampling kernels: every dtype and method against a
// straightforward reference written here (window by window, exact rational
// rounding, std::map counting), the rounding rules spelled out case by case,
// odd and tiny shapes, strided sub-boxes, splitting at even offsets, the level
// count, and a timing print (never asserted).
#include "volume/downsample.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <compare>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "format/volume_meta.h"

namespace brickfs {
namespace {

template <typename T>
constexpr DType DTypeOf() {
  if constexpr (std::is_same_v<T, uint8_t>) return DType::kUint8;
  if constexpr (std::is_same_v<T, uint16_t>) return DType::kUint16;
  if constexpr (std::is_same_v<T, int16_t>) return DType::kInt16;
  if constexpr (std::is_same_v<T, uint32_t>) return DType::kUint32;
  if constexpr (std::is_same_v<T, int8_t>) return DType::kInt8;
  if constexpr (std::is_same_v<T, int32_t>) return DType::kInt32;
  if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  return DType::kFloat32;
}

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

template <typename T>
std::vector<T> Values(const std::vector<uint8_t>& b) {
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

// Runs the compact Downsample2x on typed values.
template <typename T>
std::vector<T> Down(DownsampleMethod m, const std::vector<T>& src, const Shape3& s) {
  std::vector<uint8_t> in = Bytes(src);
  std::vector<uint8_t> out(Product(DownsampledShape(s)) * sizeof(T), 0xA5);
  Downsample2x(DTypeOf<T>(), m, in.data(), s, out.data());
  return Values<T>(out);
}

// --- the reference --------------------------------------------------------

// IEEE totalOrder on floats, by the standard library; identity for integers.
struct RefLess {
  template <typename T>
  bool operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::strong_order(a, b) < 0;
    } else {
      return a < b;
    }
  }
};

template <typename T>
T RefMean(const std::vector<T>& w) {
  const int64_t n = static_cast<int64_t>(w.size());
  if constexpr (std::is_floating_point_v<T>) {
    double s = 0;
    for (T v : w) s += v;
    return static_cast<T>(s / static_cast<double>(n));
  } else if constexpr (std::is_signed_v<T>) {
    int64_t s = 0;
    for (T v : w) s += v;
    const int64_t mag = s < 0 ? -s : s;
    int64_t q = mag / n;
    if (2 * (mag % n) >= n) ++q;  // half away from zero
    return static_cast<T>(s < 0 ? -q : q);
  } else {
    uint64_t s = 0;
    for (T v : w) s += v;
    uint64_t q = s / n;
    if (2 * (s % static_cast<uint64_t>(n)) >= static_cast<uint64_t>(n)) ++q;  // half up
    return static_cast<T>(q);
  }
}

template <typename T>
T RefMode(const std::vector<T>& w) {
  std::map<T, int, RefLess> count;
  for (T v : w) ++count[v];
  T best = count.begin()->first;
  int best_n = 0;
  for (const auto& [v, n] : count) {  // ascending: the first of equal counts wins
    if (n > best_n) {
      best = v;
      best_n = n;
    }
  }
  return best;
}

template <typename T>
std::vector<T> Reference(DownsampleMethod m, const std::vector<T>& src, const Shape3& s) {
  const Shape3 d{(s[0] + 1) / 2, (s[1] + 1) / 2, (s[2] + 1) / 2};
  std::vector<T> out;
  for (uint64_t k = 0; k < d[0]; ++k) {
    for (uint64_t j = 0; j < d[1]; ++j) {
      for (uint64_t i = 0; i < d[2]; ++i) {
        std::vector<T> w;
        for (uint64_t z = 2 * k; z < std::min(2 * k + 2, s[0]); ++z) {
          for (uint64_t y = 2 * j; y < std::min(2 * j + 2, s[1]); ++y) {
            for (uint64_t x = 2 * i; x < std::min(2 * i + 2, s[2]); ++x) {
              w.push_back(src[(z * s[1] + y) * s[2] + x]);
            }
          }
        }
        out.push_back(m == DownsampleMethod::kMean ? RefMean(w) : RefMode(w));
      }
    }
  }
  return out;
}

template <typename T>
uint64_t Bits(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}

template <typename T>
void ExpectSame(const std::vector<T>& got, const std::vector<T>& want, DownsampleMethod m,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      if (m == DownsampleMethod::kMode) {
        ASSERT_EQ(Bits(got[i]), Bits(want[i])) << what << " voxel " << i;
      } else if (std::isnan(want[i])) {
        ASSERT_TRUE(std::isnan(got[i])) << what << " voxel " << i;
      } else {
        if constexpr (std::is_same_v<T, double>) {
          // Sums of 8 values up to 1000 in another order: cancellation
          // leaves errors of a few ulps of the addends, not of the mean.
          ASSERT_NEAR(got[i], want[i], 1e-11) << what << " voxel " << i;
        } else {
          ASSERT_FLOAT_EQ(got[i], want[i]) << what << " voxel " << i;
        }
      }
    } else {
      ASSERT_EQ(+got[i], +want[i]) << what << " voxel " << i;
    }
  }
}

// Random voxels: full range for mean; few distinct values for mode so that
// ties are frequent.
template <typename T>
std::vector<T> RandomVoxels(uint64_t n, bool few, std::mt19937_64& rng) {
  std::vector<T> v(n);
  for (auto& x : v) {
    if (few) {
      const int r = static_cast<int>(rng() % 4);
      if constexpr (std::is_floating_point_v<T>) {
        const T pool[4] = {T(-0.0), T(0.0), T(2.5), T(-1.0)};
        x = pool[r];
      } else if constexpr (std::is_signed_v<T>) {
        x = static_cast<T>(r - 2);
      } else {
        x = static_cast<T>(r * 3);
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      x = std::uniform_real_distribution<T>(-1000, 1000)(rng);
    } else {
      x = static_cast<T>(rng());  // full range: exercises the accumulators
    }
  }
  return v;
}

const std::vector<Shape3> kShapes = {{5, 7, 9},   {1, 1, 1},   {2, 3, 1},  {1, 1, 2},
                                     {3, 1, 1},   {2, 2, 2},   {4, 4, 4},  {1, 6, 5},
                                     {6, 10, 33}, {7, 13, 17}, {9, 1, 64}, {3, 65, 2}};

template <typename T>
void CheckAgainstReference() {
  std::mt19937_64 rng(1234 + static_cast<int>(DTypeOf<T>()));
  for (DownsampleMethod m : {DownsampleMethod::kMean, DownsampleMethod::kMode}) {
    for (const Shape3& s : kShapes) {
      for (bool few : {false, true}) {
        const std::vector<T> src = RandomVoxels<T>(Product(s), few, rng);
        const std::string what = std::string(DTypeName(DTypeOf<T>())) + " " +
                                 std::string(DownsampleMethodName(m)) + " " + ShapeToString(s) +
                                 (few ? " few values" : " full range");
        ExpectSame(Down(m, src, s), Reference(m, src, s), m, what);
      }
    }
  }
}

TEST(DownsampleTest, Uint8MatchesReference) { CheckAgainstReference<uint8_t>(); }
TEST(DownsampleTest, Uint16MatchesReference) { CheckAgainstReference<uint16_t>(); }
TEST(DownsampleTest, Int16MatchesReference) { CheckAgainstReference<int16_t>(); }
TEST(DownsampleTest, Uint32MatchesReference) { CheckAgainstReference<uint32_t>(); }
TEST(DownsampleTest, Float32MatchesReference) { CheckAgainstReference<float>(); }
// The foreign-store types (brickfs's own stores never hold them, but the
// kernels are the same templates and cost nothing to keep exact).
TEST(DownsampleTest, Int8MatchesReference) { CheckAgainstReference<int8_t>(); }
TEST(DownsampleTest, Int32MatchesReference) { CheckAgainstReference<int32_t>(); }
TEST(DownsampleTest, Float64MatchesReference) { CheckAgainstReference<double>(); }

// --- the rounding rules, case by case ------------------------------------

template <typename T>
T One(DownsampleMethod m, std::vector<T> window, Shape3 s) {
  EXPECT_EQ(Product(s), window.size());
  std::vector<T> out = Down(m, window, s);
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? T{} : out[0];
}

constexpr DownsampleMethod kMean = DownsampleMethod::kMean;
constexpr DownsampleMethod kMode = DownsampleMethod::kMode;

TEST(DownsampleTest, UnsignedMeanRoundsHalfUp) {
  // Two voxels (odd edge in z and y): 1.5 -> 2.
  EXPECT_EQ(One<uint8_t>(kMean, {1, 2}, {1, 1, 2}), 2);
  EXPECT_EQ(One<uint8_t>(kMean, {2, 1}, {2, 1, 1}), 2);
  // Four voxels: 1.25 -> 1, 1.5 -> 2, 1.75 -> 2.
  EXPECT_EQ(One<uint8_t>(kMean, {1, 1, 1, 2}, {1, 2, 2}), 1);
  EXPECT_EQ(One<uint8_t>(kMean, {1, 1, 2, 2}, {2, 2, 1}), 2);
  EXPECT_EQ(One<uint8_t>(kMean, {1, 2, 2, 2}, {2, 1, 2}), 2);
  // Eight voxels: 3/8 -> 0, 4/8 -> 1, 11/8 -> 1, 12/8 -> 2.
  EXPECT_EQ(One<uint8_t>(kMean, {0, 0, 0, 0, 0, 1, 1, 1}, {2, 2, 2}), 0);
  EXPECT_EQ(One<uint8_t>(kMean, {0, 0, 0, 0, 1, 1, 1, 1}, {2, 2, 2}), 1);
  EXPECT_EQ(One<uint8_t>(kMean, {1, 1, 1, 1, 1, 2, 2, 2}, {2, 2, 2}), 1);
  EXPECT_EQ(One<uint8_t>(kMean, {1, 1, 1, 1, 2, 2, 2, 2}, {2, 2, 2}), 2);
  // One voxel is copied; the extremes do not overflow.
  EXPECT_EQ(One<uint8_t>(kMean, {7}, {1, 1, 1}), 7);
  EXPECT_EQ(One<uint8_t>(kMean, std::vector<uint8_t>(8, 255), {2, 2, 2}), 255);
  EXPECT_EQ(One<uint8_t>(kMean, {255, 254}, {1, 1, 2}), 255);
  EXPECT_EQ(One<uint16_t>(kMean, {65535, 65534}, {1, 1, 2}), 65535);
  EXPECT_EQ(One<uint16_t>(kMean, std::vector<uint16_t>(8, 65535), {2, 2, 2}), 65535);
  EXPECT_EQ(One<uint32_t>(kMean, {0xFFFFFFFFu, 0xFFFFFFFEu}, {1, 2, 1}), 0xFFFFFFFFu);
  EXPECT_EQ(One<uint32_t>(kMean, std::vector<uint32_t>(8, 0xFFFFFFFFu), {2, 2, 2}), 0xFFFFFFFFu);
  EXPECT_EQ(One<uint32_t>(kMean, {0, 0, 0, 0, 0, 0, 0, 0xFFFFFFFFu}, {2, 2, 2}), 0x20000000u);
}

TEST(DownsampleTest, Int16MeanRoundsHalfAwayFromZero) {
  EXPECT_EQ(One<int16_t>(kMean, {-1, -2}, {1, 1, 2}), -2);                      // -1.5
  EXPECT_EQ(One<int16_t>(kMean, {1, 2}, {1, 1, 2}), 2);                         // 1.5
  EXPECT_EQ(One<int16_t>(kMean, {-1, 2}, {1, 1, 2}), 1);                        // 0.5
  EXPECT_EQ(One<int16_t>(kMean, {1, -2}, {1, 1, 2}), -1);                       // -0.5
  EXPECT_EQ(One<int16_t>(kMean, {-1, -1, -1, -2}, {1, 2, 2}), -1);              // -1.25
  EXPECT_EQ(One<int16_t>(kMean, {-1, -1, -2, -2}, {1, 2, 2}), -2);              // -1.5
  EXPECT_EQ(One<int16_t>(kMean, {-1, -2, -2, -2}, {1, 2, 2}), -2);              // -1.75
  EXPECT_EQ(One<int16_t>(kMean, {0, 0, 0, 0, 0, 0, -1, -1}, {2, 2, 2}), 0);     // -0.25
  EXPECT_EQ(One<int16_t>(kMean, {0, 0, 0, 0, -1, -1, -1, -1}, {2, 2, 2}), -1);  // -0.5
  EXPECT_EQ(One<int16_t>(kMean, std::vector<int16_t>(8, -32768), {2, 2, 2}), -32768);
  EXPECT_EQ(One<int16_t>(kMean, std::vector<int16_t>(8, 32767), {2, 2, 2}), 32767);
  EXPECT_EQ(One<int16_t>(kMean, {-32768, 32767}, {1, 1, 2}), -1);  // -0.5
}

TEST(DownsampleTest, Float32MeanIsThePlainMean) {
  EXPECT_EQ(One<float>(kMean, {1.0f, 2.0f}, {1, 1, 2}), 1.5f);
  EXPECT_EQ(One<float>(kMean, {-1.0f, -2.0f, 0.5f, 0.5f}, {1, 2, 2}), -0.5f);
  EXPECT_EQ(One<float>(kMean, {1, 2, 3, 4, 5, 6, 7, 9}, {2, 2, 2}), 4.625f);
  const float big = std::numeric_limits<float>::max();
  EXPECT_EQ(One<float>(kMean, std::vector<float>(8, big), {2, 2, 2}), big);  // no overflow
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(One<float>(kMean, {1.0f, nan}, {1, 1, 2})));
  EXPECT_TRUE(std::isnan(One<float>(kMean, {inf, -inf}, {1, 1, 2})));
  EXPECT_EQ(One<float>(kMean, {inf, 1.0f}, {1, 1, 2}), inf);
}

TEST(DownsampleTest, ModeTakesTheMostFrequentAndTiesGoToTheSmallest) {
  EXPECT_EQ(One<uint8_t>(kMode, {3, 5}, {1, 1, 2}), 3);
  EXPECT_EQ(One<uint8_t>(kMode, {5, 3}, {1, 1, 2}), 3);
  EXPECT_EQ(One<uint8_t>(kMode, {5, 3, 5, 3}, {1, 2, 2}), 3);
  EXPECT_EQ(One<uint8_t>(kMode, {9, 7, 2, 7}, {1, 2, 2}), 7);
  EXPECT_EQ(One<uint16_t>(kMode, {9, 9, 9, 2, 2, 2, 4, 4}, {2, 2, 2}), 2);  // 3 vs 3
  EXPECT_EQ(One<uint16_t>(kMode, {9, 9, 9, 2, 2, 4, 4, 1}, {2, 2, 2}), 9);
  EXPECT_EQ(One<uint32_t>(kMode, {8, 7, 6, 5, 4, 3, 2, 1}, {2, 2, 2}), 1u);  // all once
  EXPECT_EQ(One<uint32_t>(kMode, {0xFFFFFFFFu, 0xFFFFFFFFu, 1, 0}, {2, 1, 2}), 0xFFFFFFFFu);
  EXPECT_EQ(One<int16_t>(kMode, {1, -1}, {1, 1, 2}), -1);  // signed order
  EXPECT_EQ(One<int16_t>(kMode, {-32768, 32767, 5, 6}, {1, 2, 2}), -32768);
  EXPECT_EQ(One<uint8_t>(kMode, {42}, {1, 1, 1}), 42);
  // float32: equal = same bits, ordered by totalOrder: -0 < +0, -1 < -0.
  EXPECT_EQ(Bits(One<float>(kMode, {0.0f, -0.0f}, {1, 1, 2})), Bits(-0.0f));
  EXPECT_EQ(Bits(One<float>(kMode, {0.0f, 0.0f, -0.0f, 2.5f}, {1, 2, 2})), Bits(0.0f));
  EXPECT_EQ(One<float>(kMode, {2.5f, 1.5f, 2.5f, 1.5f}, {1, 2, 2}), 1.5f);
  EXPECT_EQ(One<float>(kMode, {-0.0f, -1.0f}, {1, 1, 2}), -1.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(One<float>(kMode, {nan, nan, 1.0f, 2.0f}, {1, 2, 2})));
  EXPECT_EQ(One<float>(kMode, {nan, 1.0f}, {1, 1, 2}), 1.0f);  // NaN sorts last
}

TEST(DownsampleTest, OddEdgesAverageWhatExists) {
  // 1x3x3 uint8: the last row and column average 2 (or 1) voxels.
  const std::vector<uint8_t> src = {10, 20, 31,  //
                                    30, 40, 50,  //
                                    60, 71, 255};
  EXPECT_EQ(Down(kMean, src, {1, 3, 3}), (std::vector<uint8_t>{25, 41, 66, 255}));
  // 3x1x1: (1+2)/2 rounds up, then the last plane alone.
  EXPECT_EQ(Down<uint8_t>(kMean, {1, 2, 9}, {3, 1, 1}), (std::vector<uint8_t>{2, 9}));
}

// --- shapes, strides, splitting ------------------------------------------

TEST(DownsampleTest, DownsampledShapeRoundsUpAndKeepsZero) {
  EXPECT_EQ(DownsampledShape({5, 7, 9}), (Shape3{3, 4, 5}));
  EXPECT_EQ(DownsampledShape({1, 1, 1}), (Shape3{1, 1, 1}));
  EXPECT_EQ(DownsampledShape({2, 3, 1}), (Shape3{1, 2, 1}));
  EXPECT_EQ(DownsampledShape({0, 4, 4}), (Shape3{0, 2, 2}));
  EXPECT_EQ(DownsampledShape({1024, 1024, 1024}), (Shape3{512, 512, 512}));
}

TEST(DownsampleTest, DownsampledShapeRepeatedIsTheLevelShape) {
  for (const Shape3& s0 : {Shape3{13, 19, 23}, Shape3{1000, 1, 4097}, Shape3{0, 5, 6}}) {
    Shape3 s = s0;
    for (int level = 0; level < 15; ++level) {
      EXPECT_EQ(LevelShape(s0, level), s) << ShapeToString(s0) << " level " << level;
      s = DownsampledShape(s);
    }
  }
}

TEST(DownsampleTest, EmptySourceWritesNothing) {
  uint8_t dst[4] = {1, 2, 3, 4};
  Downsample2x(DType::kUint8, kMean, nullptr, {0, 5, 5}, dst);
  Downsample2x(DType::kUint16, kMode, nullptr, {5, 0, 5}, dst);
  EXPECT_EQ(dst[0] + dst[1] + dst[2] + dst[3], 10);
}

// A sub-box of a larger source into a sub-box of a larger destination, for
// every dtype: equal to the compact result, nothing outside the box touched.
template <typename T>
void CheckStrided(DownsampleMethod m) {
  std::mt19937_64 rng(99);
  const Shape3 big{9, 12, 21};
  const Shape3 box{5, 7, 13};
  const Shape3 at{3, 2, 5};
  const std::vector<T> src_big = RandomVoxels<T>(Product(big), m == kMode, rng);
  std::vector<T> src_box;
  for (uint64_t z = 0; z < box[0]; ++z) {
    for (uint64_t y = 0; y < box[1]; ++y) {
      for (uint64_t x = 0; x < box[2]; ++x) {
        src_box.push_back(src_big[((at[0] + z) * big[1] + at[1] + y) * big[2] + at[2] + x]);
      }
    }
  }
  const std::vector<T> want = Down(m, src_box, box);

  const Shape3 dbig{6, 9, 11};
  const Shape3 dat{1, 3, 2};
  const Shape3 dbox = DownsampledShape(box);
  const uint64_t vb = sizeof(T);
  std::vector<uint8_t> in = Bytes(src_big);
  std::vector<uint8_t> out(Product(dbig) * vb, 0x5A);
  const uint64_t src_off = ((at[0] * big[1] + at[1]) * big[2] + at[2]) * vb;
  const uint64_t dst_off = ((dat[0] * dbig[1] + dat[1]) * dbig[2] + dat[2]) * vb;
  Downsample2x(DTypeOf<T>(), m, in.data() + src_off, box, CompactStrides(big), out.data() + dst_off,
               CompactStrides(dbig));
  for (uint64_t z = 0; z < dbig[0]; ++z) {
    for (uint64_t y = 0; y < dbig[1]; ++y) {
      for (uint64_t x = 0; x < dbig[2]; ++x) {
        const uint8_t* p = out.data() + ((z * dbig[1] + y) * dbig[2] + x) * vb;
        const bool inside = z >= dat[0] && z < dat[0] + dbox[0] && y >= dat[1] &&
                            y < dat[1] + dbox[1] && x >= dat[2] && x < dat[2] + dbox[2];
        if (inside) {
          const T want_v = want[((z - dat[0]) * dbox[1] + (y - dat[1])) * dbox[2] + (x - dat[2])];
          ASSERT_EQ(std::memcmp(p, &want_v, vb), 0) << "voxel " << z << "," << y << "," << x;
        } else {
          for (uint64_t i = 0; i < vb; ++i)
            ASSERT_EQ(p[i], 0x5A) << "touched " << z << "," << y << "," << x;
        }
      }
    }
  }
}

TEST(DownsampleTest, StridedBoxesMatchCompactAndTouchNothingElse) {
  for (DownsampleMethod m : {kMean, kMode}) {
    CheckStrided<uint8_t>(m);
    CheckStrided<uint16_t>(m);
    CheckStrided<int16_t>(m);
    CheckStrided<uint32_t>(m);
    CheckStrided<float>(m);
  }
}

// The engine's use: each completed 32-slice slab of level L fills one half of
// a 32-slice level-(L+1) slab buffer. Two halves equal the whole, also when
// the second slab is short and odd (the end of the volume).
TEST(DownsampleTest, TwoSlabsFillTheTwoHalvesOfTheNextLevelSlab) {
  std::mt19937_64 rng(7);
  for (uint64_t second : {32u, 17u}) {
    const uint64_t ny = 37, nx = 50;
    const Shape3 whole{32 + second, ny, nx};
    const std::vector<uint16_t> src = RandomVoxels<uint16_t>(Product(whole), false, rng);
    const std::vector<uint16_t> want = Down(kMean, src, whole);
    const Shape3 d = DownsampledShape(whole);
    std::vector<uint8_t> in = Bytes(src);
    std::vector<uint8_t> next(32 * d[1] * d[2] * 2, 0);  // a full level-(L+1) slab buffer
    const BoxStrides dst_strides = CompactStrides({32, d[1], d[2]});
    const uint64_t slab_bytes = 32 * ny * nx * 2;
    Downsample2x(DType::kUint16, kMean, in.data(), {32, ny, nx}, CompactStrides({32, ny, nx}),
                 next.data(), dst_strides);
    Downsample2x(DType::kUint16, kMean, in.data() + slab_bytes, {second, ny, nx},
                 CompactStrides({second, ny, nx}), next.data() + 16 * d[1] * d[2] * 2, dst_strides);
    std::vector<uint16_t> got = Values<uint16_t>(next);
    got.resize(want.size());
    EXPECT_EQ(got, want) << "second slab of " << second;
  }
}

TEST(DownsampleTest, MethodNames) {
  EXPECT_EQ(DownsampleMethodName(kMean), "mean");
  EXPECT_EQ(DownsampleMethodName(kMode), "mode");
  EXPECT_EQ(ParseDownsampleMethod("mean"), kMean);
  EXPECT_EQ(ParseDownsampleMethod("mode"), kMode);
  EXPECT_FALSE(ParseDownsampleMethod("gaussian").has_value());
  EXPECT_FALSE(ParseDownsampleMethod("").has_value());
}

// --- levels ---------------------------------------------------------------

TEST(DownsampleTest, NumLevelsCountsUntilOneBrickHoldsTheLevel) {
  const Shape3 b{256, 256, 256};
  EXPECT_EQ(NumLevels({0, 0, 0}, b), 1);
  EXPECT_EQ(NumLevels({1, 1, 1}, b), 1);
  EXPECT_EQ(NumLevels({256, 256, 256}, b), 1);
  EXPECT_EQ(NumLevels({257, 256, 256}, b), 2);
  EXPECT_EQ(NumLevels({512, 512, 512}, b), 2);
  EXPECT_EQ(NumLevels({513, 10, 10}, b), 3);  // 513 -> 257 -> 129
  EXPECT_EQ(NumLevels({4096, 4096, 4096}, b), 5);
  EXPECT_EQ(NumLevels({100, 5000, 70000}, b), 10);         // x: 70000 / 2^9 -> 137
  EXPECT_EQ(NumLevels({300, 10, 10}, {64, 512, 512}), 4);  // 300 -> 150 -> 75 -> 38
  EXPECT_EQ(NumLevels({2, 2, 2}, {1, 1, 1}), 2);
  EXPECT_EQ(NumLevels({3, 1, 1}, {1, 1, 1}), 3);  // 3 -> 2 -> 1
  EXPECT_EQ(NumLevels({uint64_t{1} << 40, 1, 1}, {1, 1, 1}), 41);
  EXPECT_EQ(NumLevels({1000, 1000, 1000}, {0, 256, 256}), 1);  // invalid brick: no loop
}

// --- speed (printed, never asserted) --------------------------------------

TEST(DownsampleTest, PrintsTheTimeOfAFullSlab) {
  const Shape3 s{32, 1024, 1024};
  struct Case {
    DType t;
    DownsampleMethod m;
    bool uniform;  // all voxels equal (inside a labelled region), else random bytes 0..3
  };
  for (Case c : {Case{DType::kUint8, kMean, false}, Case{DType::kUint16, kMean, false},
                 Case{DType::kFloat32, kMean, false}, Case{DType::kUint32, kMode, false},
                 Case{DType::kUint32, kMode, true}}) {
    const uint64_t vb = DTypeSize(c.t);
    std::vector<uint8_t> src(Product(s) * vb, 1);
    std::mt19937_64 rng(5);
    for (size_t i = 0; !c.uniform && i + 8 <= src.size(); i += 8) {
      const uint64_t r = rng() & 0x0303030303030303u;  // mode: neighbours mostly differ
      std::memcpy(&src[i], &r, 8);
    }
    std::vector<uint8_t> dst(Product(DownsampledShape(s)) * vb);
    double best = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      Downsample2x(c.t, c.m, src.data(), s, dst.data());
      const auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::printf("[ timing   ] %s %s of %s (%s): %.1f ms (best of 3, one core)\n",
                std::string(DTypeName(c.t)).c_str(), std::string(DownsampleMethodName(c.m)).c_str(),
                ShapeToString(s).c_str(), c.uniform ? "uniform" : "random", best);
  }
}

}  // namespace
}  // namespace brickfs
