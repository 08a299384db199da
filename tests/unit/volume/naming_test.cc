// Tests for slice file naming: the z a written file means, and canonical
// plane names.
#include "volume/naming.h"

#include <gtest/gtest.h>

#include <string>

namespace brickfs {
namespace {

uint64_t IndexOf(const std::string& name, uint64_t first_index = 0) {
  auto r = SliceIndexFromName(name, first_index);
  EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
  return r.ok() ? *r : ~uint64_t{0};
}

void ExpectInvalid(const std::string& name, uint64_t first_index = 0) {
  auto r = SliceIndexFromName(name, first_index);
  ASSERT_FALSE(r.ok()) << name << " parsed as " << *r;
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
}

TEST(NamingTest, SliceIndexIsTheLastRunOfDigits) {
  EXPECT_EQ(IndexOf("img_0007.tif"), 7u);
  EXPECT_EQ(IndexOf("stack-v2_0007.tiff"), 7u);
  EXPECT_EQ(IndexOf("7.tif"), 7u);
  EXPECT_EQ(IndexOf("00007.tif"), 7u);
  EXPECT_EQ(IndexOf("scan_12_z0042.tif"), 42u);
  EXPECT_EQ(IndexOf("img0"), 0u);
  EXPECT_EQ(IndexOf("slice_0099_final.tif"), 99u);
}

TEST(NamingTest, ExtensionIsCaseInsensitiveAndNotPartOfTheNumber) {
  EXPECT_EQ(IndexOf("IMG_0012.TIF"), 12u);
  EXPECT_EQ(IndexOf("img_0012.TiFf"), 12u);
  EXPECT_EQ(IndexOf("img_0012"), 12u);
}

TEST(NamingTest, NameWithoutDigitsIsInvalidArgument) {
  ExpectInvalid("scan.tif");
  ExpectInvalid("scan.tiff");
  ExpectInvalid(".tif");
  ExpectInvalid("");
}

TEST(NamingTest, FirstIndexIsSubtracted) {
  EXPECT_EQ(IndexOf("img_0001.tif", 1), 0u);
  EXPECT_EQ(IndexOf("img_0013.tif", 1), 12u);
  EXPECT_EQ(IndexOf("img_1000.tif", 1000), 0u);
}

TEST(NamingTest, NumberBelowFirstIndexIsInvalidArgument) {
  ExpectInvalid("img_0000.tif", 1);
  ExpectInvalid("img_0999.tif", 1000);
  auto r = SliceIndexFromName("img_0000.tif", 1);
  EXPECT_NE(r.status().message().find("first_index=1"), std::string::npos)
      << r.status().message();
}

TEST(NamingTest, HugeNumbersAreRefusedButLeadingZerosAreFine) {
  EXPECT_EQ(IndexOf("img_999999999999999.tif"), 999999999999999ull);  // 15 digits
  ExpectInvalid("img_1000000000000000.tif");                         // 16 digits
  ExpectInvalid("img_99999999999999999999999999.tif");
  EXPECT_EQ(IndexOf("img_00000000000000000000007.tif"), 7u);
}

TEST(NamingTest, CanonicalNamesArePaddedToAtLeastFiveDigits) {
  EXPECT_EQ(CanonicalSliceName(7, 100), "00007.tif");
  EXPECT_EQ(CanonicalSliceName(0, 1), "00000.tif");
  EXPECT_EQ(CanonicalSliceName(0, 0), "00000.tif");
  EXPECT_EQ(CanonicalSliceName(99999, 100000), "99999.tif");
  // width = max(5, digits of (count - 1)): 1000000 planes are 0..999999.
  EXPECT_EQ(CanonicalSliceName(7, 1000000), "000007.tif");
  EXPECT_EQ(CanonicalSliceName(7, 1000001), "0000007.tif");
  EXPECT_EQ(CanonicalSliceName(123456, 200000), "123456.tif");
}

TEST(NamingTest, ParseCanonicalNameInvertsCanonicalSliceName) {
  for (uint64_t count : {uint64_t{1}, uint64_t{13}, uint64_t{100000}, uint64_t{1000001}}) {
    for (uint64_t i : {uint64_t{0}, uint64_t{7}, count - 1}) {
      auto back = ParseCanonicalName(CanonicalSliceName(i, count));
      ASSERT_TRUE(back.has_value()) << CanonicalSliceName(i, count);
      EXPECT_EQ(*back, i);
    }
  }
}

TEST(NamingTest, ParseCanonicalNameRefusesOtherNames) {
  EXPECT_FALSE(ParseCanonicalName("7.tif").has_value());
  EXPECT_FALSE(ParseCanonicalName("0007.tif").has_value());
  EXPECT_FALSE(ParseCanonicalName("00007.tiff").has_value());
  EXPECT_FALSE(ParseCanonicalName("00007.TIF").has_value());
  EXPECT_FALSE(ParseCanonicalName("img_00007.tif").has_value());
  EXPECT_FALSE(ParseCanonicalName("0000a.tif").has_value());
  EXPECT_FALSE(ParseCanonicalName("-0007.tif").has_value());
  EXPECT_FALSE(ParseCanonicalName("00007").has_value());
  EXPECT_FALSE(ParseCanonicalName("").has_value());
  EXPECT_FALSE(ParseCanonicalName("000000000000000000007.tif").has_value());  // too long
  EXPECT_EQ(ParseCanonicalName("0000000000000007.tif"), 7u);
}

TEST(NamingTest, TemporaryNamesAreStagedSliceNamesAreNot) {
  for (const char* n : {".scan_0013.tif.Xa12Bc", "scan_0013.tif.tmp", "scan_0013.tif.part",
                        "scan_0013.tif~", "tmpa1b2c3d4", "4913", "sedAbC123", ".goutputstream-XYZ",
                        ".#scan_1.tif", "#scan_1.tif#", "~$scan_1.tif", "scan_0013", ""}) {
    EXPECT_TRUE(IsStagedName(n)) << n;
  }
  for (const char* n : {"scan_0013.tif", "00017.tif", "img_7.TIFF", "a.ome.tif", "x.Tif"}) {
    EXPECT_FALSE(IsStagedName(n)) << n;
  }
}

}  // namespace
}  // namespace brickfs
