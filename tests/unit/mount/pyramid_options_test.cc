// Tests for the parsers of the pyramid settings users give (mount options
// and the create/mount flags share them).
#include "mount/pyramid_options.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace brickfs {
namespace {

using V = std::array<double, 3>;

TEST(ParseVoxelSizeTest, AcceptsColonsOrCommasOrOneNumber) {
  EXPECT_EQ(*ParseVoxelSize("2:0.5:0.5", ':'), (V{2, 0.5, 0.5}));
  EXPECT_EQ(*ParseVoxelSize("2,0.5,0.5", ','), (V{2, 0.5, 0.5}));
  EXPECT_EQ(*ParseVoxelSize("2:0.5:0.5", ','), (V{2, 0.5, 0.5}));
  EXPECT_EQ(*ParseVoxelSize("0.4", ','), (V{0.4, 0.4, 0.4}));
  EXPECT_EQ(*ParseVoxelSize("5e-2", ','), (V{0.05, 0.05, 0.05}));
}

TEST(ParseVoxelSizeTest, RefusesAnythingButFinitePositiveNumbers) {
  for (const char* bad : {"", "0", "0:1:1", "-2", "1:2", "1,2,3,4", "1:2,3", "inf", "nan", "1e400",
                          "abc", "1x", " 1", "1 ", "+1", "1,,1", ",", "0x10"}) {
    auto r = ParseVoxelSize(bad, ',');
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("expected Z,Y,X or one number"), std::string::npos)
        << r.status().message();
  }
  EXPECT_NE(ParseVoxelSize("1:2", ':').status().message().find("e.g. 2:0.5:0.5"),
            std::string::npos);
}

TEST(CheckSpaceUnitTest, AcceptsOmeZarrUnitsOnly) {
  for (const char* unit : {"micrometer", "nanometer", "millimeter", "angstrom", "meter", "inch"}) {
    EXPECT_TRUE(CheckSpaceUnit(unit).ok()) << unit;
  }
  for (const char* unit : {"", "um", "Micrometer", "micrometre", "second", "pixel"}) {
    Status s = CheckSpaceUnit(unit);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << unit;
    EXPECT_NE(s.message().find("e.g. micrometer, nanometer, millimeter"), std::string::npos)
        << s.message();
  }
  EXPECT_NE(CheckSpaceUnit("micron").message().find("did you mean micrometer?"), std::string::npos);
  EXPECT_NE(CheckSpaceUnit("mm").message().find("did you mean millimeter?"), std::string::npos);
  EXPECT_EQ(CheckSpaceUnit("pixel").message().find("did you mean"), std::string::npos);
}

TEST(CheckDownsampleMethodTest, MeanOrMode) {
  EXPECT_TRUE(CheckDownsampleMethod("mean").ok());
  EXPECT_TRUE(CheckDownsampleMethod("mode").ok());
  for (const char* bad : {"", "median", "MEAN", "max"}) {
    Status s = CheckDownsampleMethod(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("expected mean"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace brickfs
