// Tests for CRC-32C: published check values, Extend equivalence, and that
// whichever implementation the CPU selects agrees with a bit-at-a-time
// reference on buffers of every small length and alignment.
#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace brickfs {
namespace {

// Bit-at-a-time CRC-32C, straight from the definition (reflected, polynomial
// 0x82F63B78, init and final xor 0xFFFFFFFF). Independent of both the
// slicing-by-8 and the SSE4.2 paths.
uint32_t ReferenceCrc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
  }
  return ~crc;
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(Crc32cTest, MatchesCheckValueOf123456789) {
  const char* s = "123456789";
  EXPECT_EQ(Crc32c(s, 9), 0xE3069283u);
}

TEST(Crc32cTest, MatchesKnownVectorsFromRfc3720) {
  // iSCSI (RFC 3720 B.4) test vectors.
  std::vector<uint8_t> zeros(32, 0x00);
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  std::vector<uint8_t> ones(32, 0xFF);
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::vector<uint8_t> inc(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(inc.data(), inc.size()), 0x46DD794Eu);
  std::vector<uint8_t> dec(32);
  for (int i = 0; i < 32; ++i) dec[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(Crc32c(dec.data(), dec.size()), 0x113FDB5Cu);
}

TEST(Crc32cTest, EmptyInputIsZero) {
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
  EXPECT_EQ(Crc32cExtend(0x12345678u, nullptr, 0), 0x12345678u);
}

TEST(Crc32cTest, ExtendEqualsCrcOfConcatenationAtEverySplit) {
  const auto data = RandomBytes(301, 7);
  const uint32_t whole = Crc32c(data.data(), data.size());
  for (size_t split = 0; split <= data.size(); ++split) {
    uint32_t a = Crc32c(data.data(), split);
    EXPECT_EQ(Crc32cExtend(a, data.data() + split, data.size() - split), whole)
        << "split at " << split;
  }
}

TEST(Crc32cTest, ExtendInManySmallPiecesEqualsOneShot) {
  const auto data = RandomBytes(1000, 11);
  std::mt19937 rng(3);
  uint32_t crc = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t n = std::min<size_t>(rng() % 23, data.size() - pos);
    crc = Crc32cExtend(crc, data.data() + pos, n);
    pos += n;
  }
  EXPECT_EQ(crc, Crc32c(data.data(), data.size()));
}

TEST(Crc32cTest, AgreesWithBitwiseReferenceOnOddLengthsAndAlignments) {
  const auto data = RandomBytes(4096 + 64, 42);
  // Every length up to 300 at every alignment 0..7 (covers the 8-byte main
  // loop, the byte tail, and unaligned starts), then a few big odd lengths.
  for (size_t align = 0; align < 8; ++align) {
    for (size_t n = 0; n <= 300; ++n) {
      ASSERT_EQ(Crc32c(data.data() + align, n), ReferenceCrc32c(data.data() + align, n))
          << "length " << n << " alignment " << align;
    }
  }
  for (size_t n : {1023u, 1025u, 2047u, 4095u, 4097u}) {
    EXPECT_EQ(Crc32c(data.data() + 3, n), ReferenceCrc32c(data.data() + 3, n)) << n;
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  auto data = RandomBytes(64, 5);
  const uint32_t good = Crc32c(data.data(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= static_cast<uint8_t>(1 << bit);
      EXPECT_NE(Crc32c(data.data(), data.size()), good) << "byte " << i << " bit " << bit;
      data[i] ^= static_cast<uint8_t>(1 << bit);
    }
  }
}

}  // namespace
}  // namespace brickfs
