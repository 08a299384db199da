// Tests for the brickfs command run in-process: the pyramid flags of
// `create` and `mount` (accepted values reach the store or the mount
// configuration, refused ones exit 2 naming the flag and what is expected),
// the pyramid lines of `info`, its byte counts over every level, and `info`
// given a mount point. No mount, no /dev/fuse.
#include "cli/cli.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>
#include <tiffio.h>

#include <array>
#include <boost/filesystem.hpp>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/log.h"
#include "format/json.h"
#include "mount/fuse_mount.h"
#include "store/store.h"
#include "volume/volume.h"

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

  std::string Info(bool json) { return Info(store_, json); }
  std::string Info(const std::string& path, bool json) {
    std::vector<std::string> args = {path};
    if (json) args.push_back("--json");
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(CmdInfo(args), 0);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "");
    return ::testing::internal::GetCapturedStdout();
  }

  // A finalized 16 x 19 x 23 uint16 store with blocks 4,8,8 and bricks
  // 8,16,16: level 0 in 8 shard files, level 1 (8 x 10 x 12) in one.
  void IngestSmallStore() {
    SetLogLevel(LogLevel::kError);
    StoreOpenOptions so;
    so.create_if_missing = true;
    auto store = Store::Open(store_, so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    VolumeOptions o;
    o.mem_budget = 64 << 20;
    o.threads = 2;
    o.block = Shape3{4, 8, 8};
    o.brick = Shape3{8, 16, 16};
    auto v = Volume::Open(std::move(*store), o);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    (*v)->Start();
    const std::string tif_path = dir_ + "/slice.tif";
    for (uint32_t z = 0; z < 16; ++z) {
      TIFF* tif = TIFFOpen(tif_path.c_str(), "w");
      ASSERT_NE(tif, nullptr);
      TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 23u);
      TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 19u);
      TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
      TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
      TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 19);
      std::vector<uint16_t> row(23);
      for (uint32_t y = 0; y < 19; ++y) {
        for (uint32_t x = 0; x < 23; ++x) row[x] = static_cast<uint16_t>(1 + z * 1009 + y * 67 + x * 3);
        ASSERT_EQ(TIFFWriteScanline(tif, row.data(), y, 0), 1);
      }
      TIFFClose(tif);
      std::ifstream in(tif_path, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      Status st = (*v)->IngestSlice("s.tif", z, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    ASSERT_TRUE((*v)->Finalize().ok());
  }

  // Bytes of the files under STORE/<level>/c.
  uint64_t LevelBytes(int level, uint64_t* files) const {
    uint64_t bytes = 0;
    *files = 0;
    const boost::filesystem::path c = store_ + "/" + std::to_string(level) + "/c";
    for (boost::filesystem::recursive_directory_iterator it(c), end; it != end; ++it) {
      if (!boost::filesystem::is_regular_file(it->path())) continue;
      bytes += boost::filesystem::file_size(it->path());
      ++*files;
    }
    return bytes;
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

TEST_F(CliTest, CreateRefusesInvalidBlockOrBrickAsAUsageErrorAndCreatesNothing) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--block", "0,32,32"}, "--block 0,32,32: block and brick sizes must be > 0"},
      {{"--block", "32,32,32", "--brick", "48,48,48"},
       "brick 48,48,48 is not a multiple of block 32,32,32"},
      {{"--brick", "16,16,16"}, "--brick 16,16,16"},
      {{"--block", "8192,8,8", "--brick", "8192,8,8"}, "4096"}};
  for (const auto& [extra, needle] : cases) {
    EXPECT_EQ(Create(extra), 2) << extra[0];
    EXPECT_NE(err_.find(needle), std::string::npos) << err_;
    EXPECT_FALSE(boost::filesystem::exists(store_)) << extra[0];
  }
}

// Everything here is refused before the mount point is even looked at (it
// does not exist: nothing could be mounted whatever the outcome).
TEST_F(CliTest, MountRefusesSelfMountsAndImpossibleOptionsBeforeTouchingAnything) {
  const std::string mnt = dir_ + "/mnt";
  const std::string huge = std::to_string(PhysicalMemoryBytes() * 2);
  for (const auto& [args, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{mnt + "/inner.zarr", mnt}, "inside the mount point " + mnt},
           {{store_, store_ + "/mnt"}, "inside the store " + store_},
           {{store_, mnt, "-o", "log=" + mnt + "/daemon.log"}, "inside the mount point"},
           {{store_, mnt, "-o", "mem=" + huge}, huge},
           {{store_, mnt, "-o", "block=0,8,8"}, "block and brick sizes must be > 0"},
           {{store_, mnt, "-o", "block=32,32,32", "-o", "brick=48,48,48"}, "not a multiple"}}) {
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(CmdMount(args), 2) << args[0];
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(needle), std::string::npos) << err;
    EXPECT_FALSE(boost::filesystem::exists(store_));
    EXPECT_FALSE(boost::filesystem::exists(mnt + "/inner.zarr"));
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


TEST_F(CliTest, InfoCountsTheShardsOfEveryLevel) {
  IngestSmallStore();
  uint64_t files0 = 0, files1 = 0;
  const uint64_t bytes0 = LevelBytes(0, &files0), bytes1 = LevelBytes(1, &files1);
  ASSERT_EQ(files0, 8u);
  ASSERT_EQ(files1, 1u);
  auto doc = ParseJson(Info(true));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->at("shard_files").get<uint64_t>(), files0 + files1);
  EXPECT_EQ(doc->at("bytes_stored").get<uint64_t>(), bytes0 + bytes1);
  const Json* levels = JsonField(*doc, "levels_stored");
  ASSERT_NE(levels, nullptr);
  ASSERT_TRUE(levels->is_array());
  ASSERT_EQ((*levels).size(), 2u);
  EXPECT_EQ((*levels)[0].at("level").get<uint64_t>(), 0u);
  EXPECT_EQ((*levels)[0].at("bytes_stored").get<uint64_t>(), bytes0);
  EXPECT_EQ((*levels)[0].at("shard_files").get<uint64_t>(), files0);
  EXPECT_EQ((*levels)[1].at("bytes_stored").get<uint64_t>(), bytes1);
  EXPECT_EQ((*levels)[1].at("shard_files").get<uint64_t>(), files1);
  const std::string text = Info(false);
  EXPECT_NE(text.find("in 9 shard files"), std::string::npos) << text;
}

TEST_F(CliTest, InfoOfAMountPointPrintsTheSummaryOfItsStoreAndJsonOnlyWhenAsked) {
  IngestSmallStore();
  // What a mount point shows: .brickfs/status naming the store, no zarr.json.
  const std::string mnt = dir_ + "/mnt";
  ASSERT_TRUE(boost::filesystem::create_directories(mnt + "/.brickfs"));
  std::ofstream(mnt + "/.brickfs/status") << "{\"store\": \"" << store_ << "\", \"pid\": 4242}\n";
  const std::string text = Info(mnt, false);
  EXPECT_NE(text.find("store:        " + store_ + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("shape:        16 x 19 x 23"), std::string::npos) << text;
  EXPECT_NE(text.find(mnt), std::string::npos) << "the mount point is named: " << text;
  EXPECT_EQ(text.find("{"), std::string::npos) << "JSON without --json: " << text;
  // Every line of the store's summary is in the mount's.
  const std::string summary = Info(store_, false);
  for (size_t at = 0, next; at < summary.size(); at = next + 1) {
    next = summary.find('\n', at);
    if (next == std::string::npos) next = summary.size();
    const std::string line = summary.substr(at, next - at);
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << "missing: " << line << "\n" << text;
  }
  auto doc = ParseJson(Info(mnt, true));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->at("store").get<std::string>(), store_);
  ASSERT_NE(JsonField(*doc, "bytes_stored"), nullptr);
  EXPECT_EQ(doc->at("mountpoint").get<std::string>(), mnt);
}

// fsck and compact of a store a daemon holds: refused (exit 8) with one
// message naming the daemon's pid and saying once to unmount it.
TEST_F(CliTest, FsckAndCompactOfAStoreInUseSayUnmountItFirstOnce) {
  ASSERT_EQ(Create({}), 0) << err_;
  StoreOpenOptions daemon_options;  // a read-write open holds the lock, as the daemon's does
  auto daemon = Store::Open(store_, daemon_options);
  ASSERT_TRUE(daemon.ok()) << daemon.status().ToString();
  const std::string pid = "(pid " + std::to_string(::getpid()) + ")";
  for (auto cmd : {&CmdFsck, &CmdCompact}) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(cmd({store_}), 8);
    ::testing::internal::GetCapturedStdout();
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("in use by a brickfs daemon " + pid), std::string::npos) << err;
    const size_t first = err.find("unmount it first");
    ASSERT_NE(first, std::string::npos) << err;
    EXPECT_EQ(err.find("unmount it first", first + 1), std::string::npos) << "said twice: " << err;
    EXPECT_EQ(err.find("in use", err.find("in use") + 1), std::string::npos) << "said twice: " << err;
  }
}

}  // namespace
}  // namespace brickfs
