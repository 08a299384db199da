// Tests for the brickfs command run in-process: the pyramid flags of
// `create` and `mount` (accepted values reach the store or the mount
// configuration, refused ones exit 2 naming the flag and what is expected)
// and the pyramid lines of `info`. No mount, no /dev/fuse.
#include "cli/cli.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <boost/filesystem.hpp>
#include <string>
#include <vector>

#include "store/store.h"

namespace brickfs {
namespace {

// A new empty directory under the test temp dir ("" if it cannot be made).
std::string NewTempDir() {
  std::string tmpl = ::testing::TempDir() + "brickfs_cli_XXXXXX";
  return ::mkdtemp(tmpl.data()) ? tmpl : "";
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }
  void TearDown() override {
    boost::system::error_code ec;
    boost::filesystem::remove_all(dir_, ec);
  }

  // Runs `brickfs create STORE --shape 10,300,500 --dtype uint16 <extra>`;
  // returns its exit code and keeps its stderr in err_.
  int Create(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {store_, "--shape", "10,300,500", "--dtype", "uint16"};
    args.insert(args.end(), extra.begin(), extra.end());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const int rc = CmdCreate(args);
    ::testing::internal::GetCapturedStdout();
    err_ = ::testing::internal::GetCapturedStderr();
    return rc;
  }

  VolumeMeta Meta() const {
    StoreOpenOptions so;
    so.read_only = true;
    so.take_lock = false;
    auto store = Store::Open(store_, so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() && (*store)->meta() ? *(*store)->meta() : VolumeMeta{};
  }

  std::string Info(bool json) {
    std::vector<std::string> args = {store_};
    if (json) args.push_back("--json");
    ::testing::internal::CaptureStdout();
    EXPECT_EQ(CmdInfo(args), 0);
    return ::testing::internal::GetCapturedStdout();
  }

  const std::string dir_ = NewTempDir();
  const std::string store_ = dir_ + "/vol.zarr";
  std::string err_;  // stderr of the last Create
};

TEST_F(CliTest, CreateStoresVoxelSizeUnitAndDownsampleMethod) {
  ASSERT_EQ(Create({"--voxel-size", "2,0.5,0.25", "--unit", "micrometer", "--downsample", "mode"}),
            0)
      << err_;
  const VolumeMeta m = Meta();
  EXPECT_EQ(m.voxel_size, (std::array<double, 3>{2, 0.5, 0.25}));
  EXPECT_EQ(m.unit, "micrometer");
  EXPECT_EQ(m.downsample_method, "mode");
}

TEST_F(CliTest, CreateTakesOneVoxelSizeForAllAxesAndKeepsDefaultsOtherwise) {
  ASSERT_EQ(Create({"--voxel-size", "0.4"}), 0) << err_;
  const VolumeMeta m = Meta();
  EXPECT_EQ(m.voxel_size, (std::array<double, 3>{0.4, 0.4, 0.4}));
  EXPECT_EQ(m.unit, "");
  EXPECT_EQ(m.downsample_method, "mean");
}

TEST_F(CliTest, CreateRefusesBadPyramidValuesWithUsageExitAndNothingCreated) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--voxel-size", "1,2"}, "--voxel-size \"1,2\": expected Z,Y,X or one number"},
      {{"--voxel-size", "0"}, "each a finite number > 0"},
      {{"--voxel-size", "1,-1,1"}, "--voxel-size \"1,-1,1\""},
      {{"--voxel-size", "nan"}, "expected Z,Y,X"},
      {{"--unit", "um"},
       "--unit \"um\": \"um\" is not an OME-Zarr space unit (did you mean micrometer?)"},
      {{"--unit", "pixel"}, "e.g. micrometer, nanometer, millimeter"},
      {{"--downsample", "median"}, "--downsample \"median\": expected mean"},
      {{"--downsample"}, "--downsample expects a value"},
      {{"--unit"}, "--unit expects a value"},
      {{"--voxel-size"}, "--voxel-size expects a value"}};
  for (const auto& [extra, needle] : cases) {
    EXPECT_EQ(Create(extra), 2) << extra[0];
    EXPECT_NE(err_.find(needle), std::string::npos) << err_;
    EXPECT_FALSE(boost::filesystem::exists(store_)) << extra[0];
  }
}

TEST_F(CliTest, MountRefusesBadPyramidFlagsBeforeTouchingAnything) {
  const std::string mnt = dir_ + "/mnt";
  for (const auto& [flags, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--unit", "nm"}, "--unit \"nm\": \"nm\" is not an OME-Zarr space unit"},
           {{"--voxel-size", "a,b,c"}, "--voxel-size \"a,b,c\": expected Z,Y,X"},
           {{"--downsample", "max"}, "--downsample \"max\": expected mean"},
           {{"-o", "voxel_size=1:2"}, "mount option \"voxel_size=1:2\": expected Z:Y:X"},
           {{"-o", "pyramid=no"},
            "mount option \"pyramid=no\": expected pyramid=0 or pyramid=1"}}) {
    std::vector<std::string> args = {store_, mnt};
    args.insert(args.end(), flags.begin(), flags.end());
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(CmdMount(args), 2) << flags[0];
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(needle), std::string::npos) << err;
    EXPECT_FALSE(boost::filesystem::exists(store_));
  }
}

TEST_F(CliTest, InfoShowsLevelsVoxelSizeAndDownsampleMethod) {
  ASSERT_EQ(Create({"--voxel-size", "2,0.5,0.5", "--unit", "nanometer"}), 0) << err_;
  const std::string text = Info(false);
  EXPECT_NE(text.find("levels:       1 (downsampling: mean)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("voxel size:   2 x 0.5 x 0.5 nanometer (z, y, x)\n"), std::string::npos)
      << text;
  const std::string json = Info(true);
  EXPECT_NE(json.find("\"num_levels\": 1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"level_shapes\": [\n    [10, 300, 500]\n  ]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"voxel_size\": [2, 0.5, 0.5]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"unit\": \"nanometer\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"downsample_method\": \"mean\""), std::string::npos) << json;
}

TEST_F(CliTest, InfoLeavesOutAVoxelSizeThatWasNeverGiven) {
  ASSERT_EQ(Create({}), 0) << err_;
  EXPECT_EQ(Info(false).find("voxel size:"), std::string::npos);
  EXPECT_NE(Info(true).find("\"unit\": null"), std::string::npos);
}

}  // namespace
}  // namespace brickfs
