// Tests for little-endian byte coding, ParseSize and HumanBytes.
#include "common/bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace brickfs {
namespace {

uint64_t MustParse(const std::string& s) {
  uint64_t v = 12345;
  EXPECT_TRUE(ParseSize(s, &v)) << "\"" << s << "\" should parse";
  return v;
}

bool Rejects(const std::string& s) {
  uint64_t v = 777;
  bool ok = ParseSize(s, &v);
  EXPECT_EQ(v, 777u) << "\"" << s << "\": output must be untouched on failure";
  return !ok;
}

TEST(BytesTest, PutAndGetAreLittleEndian) {
  uint8_t buf[8];
  PutU16(buf, 0x1234);
  EXPECT_EQ(buf[0], 0x34);
  EXPECT_EQ(buf[1], 0x12);
  EXPECT_EQ(GetU16(buf), 0x1234);
  PutU32(buf, 0xA1B2C3D4u);
  EXPECT_EQ(buf[0], 0xD4);
  EXPECT_EQ(buf[3], 0xA1);
  EXPECT_EQ(GetU32(buf), 0xA1B2C3D4u);
  PutU64(buf, 0x0102030405060708ull);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(buf[i], 8 - i);
  EXPECT_EQ(GetU64(buf), 0x0102030405060708ull);
}

TEST(BytesTest, GetWorksAtUnalignedAddresses) {
  uint8_t buf[16] = {};
  PutU64(buf + 3, ~uint64_t{0} - 5);
  EXPECT_EQ(GetU64(buf + 3), ~uint64_t{0} - 5);
  PutU32(buf + 1, 0xDEADBEEFu);
  EXPECT_EQ(GetU32(buf + 1), 0xDEADBEEFu);
}

TEST(ParseSizeTest, ParsesPlainNumbers) {
  EXPECT_EQ(MustParse("17"), 17u);
  EXPECT_EQ(MustParse("0"), 0u);
  EXPECT_EQ(MustParse("18446744073709551615"), UINT64_MAX);
}

TEST(ParseSizeTest, ParsesBinarySuffixes) {
  EXPECT_EQ(MustParse("64K"), 64u << 10);
  EXPECT_EQ(MustParse("512M"), 512ull << 20);
  EXPECT_EQ(MustParse("2G"), 2ull << 30);
  EXPECT_EQ(MustParse("1T"), 1ull << 40);
  EXPECT_EQ(MustParse("2GiB"), 2ull << 30);
  EXPECT_EQ(MustParse("2GB"), 2ull << 30);
  EXPECT_EQ(MustParse("64k"), 64u << 10);
  EXPECT_EQ(MustParse("3mib"), 3ull << 20);
  EXPECT_EQ(MustParse("17B"), 17u);
}

TEST(ParseSizeTest, RejectsGarbage) {
  EXPECT_TRUE(Rejects(""));
  EXPECT_TRUE(Rejects("G"));
  EXPECT_TRUE(Rejects("abc"));
  EXPECT_TRUE(Rejects("-1"));
  EXPECT_TRUE(Rejects(" 1G"));
  EXPECT_TRUE(Rejects("1G "));
  EXPECT_TRUE(Rejects("1X"));
  EXPECT_TRUE(Rejects("1P"));
  EXPECT_TRUE(Rejects("1GG"));
  EXPECT_TRUE(Rejects("1Gx"));
  EXPECT_TRUE(Rejects("1iB"));
  EXPECT_TRUE(Rejects("1BB"));
  EXPECT_TRUE(Rejects("1.5G"));
  EXPECT_TRUE(Rejects("1,5G"));
}

TEST(ParseSizeTest, RejectsOverflow) {
  EXPECT_TRUE(Rejects("18446744073709551616"));   // 2^64
  EXPECT_TRUE(Rejects("99999999999999999999999"));
  EXPECT_TRUE(Rejects("16777216T"));              // 2^24 * 2^40 = 2^64
  EXPECT_EQ(MustParse("16777215T"), 16777215ull << 40);
  EXPECT_TRUE(Rejects("17179869184G"));           // 2^34 * 2^30 = 2^64
}

TEST(HumanBytesTest, FormatsWithBinaryUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(17), "17 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(512 * 1024), "512.0 KiB");
  EXPECT_EQ(HumanBytes(3ull << 29), "1.5 GiB");
  EXPECT_EQ(HumanBytes(1ull << 40), "1.0 TiB");
  EXPECT_EQ(HumanBytes(UINT64_MAX), "16384.0 PiB");
}

}  // namespace
}  // namespace brickfs
