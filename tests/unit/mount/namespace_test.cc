// Tests for the mount's namespace model (ParsePath) and -o option parsing
// (ParseMountOptions). Pure functions: no mount, no /dev/fuse.
#include "mount/namespace.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "mount/fuse_mount.h"

namespace brickfs {
namespace {

using Kind = PathInfo::Kind;

TEST(ParsePathTest, RootAndAxisDirectories) {
  EXPECT_EQ(ParsePath("/").kind, Kind::kRoot);
  for (auto [path, axis] : {std::pair{"/z", Axis::kZ}, std::pair{"/y", Axis::kY},
                            std::pair{"/x", Axis::kX}}) {
    PathInfo p = ParsePath(path);
    EXPECT_EQ(p.kind, Kind::kAxisDir) << path;
    EXPECT_EQ(p.axis, axis) << path;
    EXPECT_EQ(p.name, std::string(path).substr(1));
  }
}

TEST(ParsePathTest, CanonicalPlaneFilesOnEveryAxis) {
  for (auto [dir, axis] : {std::pair{"/z/", Axis::kZ}, std::pair{"/y/", Axis::kY},
                           std::pair{"/x/", Axis::kX}}) {
    PathInfo p = ParsePath(std::string(dir) + "00007.tif");
    EXPECT_EQ(p.kind, Kind::kPlaneFile) << dir;
    EXPECT_EQ(p.axis, axis);
    EXPECT_EQ(p.index, 7u);
    EXPECT_EQ(p.name, "00007.tif");
  }
  PathInfo big = ParsePath("/z/1234567.tif");
  EXPECT_EQ(big.kind, Kind::kPlaneFile);
  EXPECT_EQ(big.index, 1234567u);
  // Out-of-range indices still parse; the volume decides whether they exist.
  EXPECT_EQ(ParsePath("/x/99999.tif").kind, Kind::kPlaneFile);
}

TEST(ParsePathTest, WritersNamesInZAreSliceNames) {
  for (const char* name : {"img_0007.tif", "7.tif", "scan.tif", "stack-v2_0007.tiff",
                           ".img_0007.tif.swp", "00007.tiff"}) {
    PathInfo p = ParsePath(std::string("/z/") + name);
    EXPECT_EQ(p.kind, Kind::kSliceName) << name;
    EXPECT_EQ(p.axis, Axis::kZ);
    EXPECT_EQ(p.name, name);
  }
}

TEST(ParsePathTest, NonCanonicalNamesInYAndXAreBadNames) {
  EXPECT_EQ(ParsePath("/y/img_0007.tif").kind, Kind::kBadName);
  EXPECT_EQ(ParsePath("/x/7.tif").kind, Kind::kBadName);
  PathInfo p = ParsePath("/x/foo");
  EXPECT_EQ(p.axis, Axis::kX);
  EXPECT_EQ(p.name, "foo");
}

TEST(ParsePathTest, StateDirectoryAndStatusFile) {
  PathInfo d = ParsePath("/.brickfs");
  EXPECT_EQ(d.kind, Kind::kStateDir);
  EXPECT_EQ(d.name, ".brickfs");
  PathInfo s = ParsePath("/.brickfs/status");
  EXPECT_EQ(s.kind, Kind::kStatusFile);
  EXPECT_EQ(s.name, "status");
  EXPECT_EQ(ParsePath("/.brickfs/journal").kind, Kind::kBadName);
}

TEST(ParsePathTest, EverythingElseIsNotFound) {
  for (const char* path : {"", "z", "z/00007.tif", "/w", "/zz", "/Z", "/z/00007.tif/more",
                           "/z/a/b", "/.brickfs/status/x", "/.brick", "/0", "/c", "/z/",
                           "//z", "/level", "/levels0"}) {
    EXPECT_EQ(ParsePath(path).kind, Kind::kNotFound) << "\"" << path << "\"";
  }
}

TEST(ParsePathTest, TopLevelPathsAreLevelZeroOutsideLevels) {
  for (const char* path : {"/z", "/y/00003.tif", "/z/img_7.tif", "/bricks", "/"}) {
    PathInfo p = ParsePath(path);
    EXPECT_EQ(p.level, 0) << path;
    EXPECT_FALSE(p.in_levels) << path;
  }
}

TEST(ParsePathTest, LevelsDirectoryAndOneDirectoryPerLevel) {
  PathInfo d = ParsePath("/levels");
  EXPECT_EQ(d.kind, Kind::kLevelsDir);
  EXPECT_EQ(d.name, "levels");
  EXPECT_TRUE(d.in_levels);
  for (int level : {0, 1, 9, 10, 40}) {
    const std::string name = std::to_string(level);
    PathInfo p = ParsePath("/levels/" + name);
    EXPECT_EQ(p.kind, Kind::kLevelDir) << name;
    EXPECT_EQ(p.level, level);
    EXPECT_EQ(p.name, name);
    EXPECT_TRUE(p.in_levels);
  }
}

TEST(ParsePathTest, LevelNamesArePlainDecimalBelowFortyOne) {
  for (const char* name : {"01", "00", "-1", "+1", "x", "1a", " 1", "41", "99", "100",
                           "99999999999999999999", "1.0", "0x1"}) {
    const std::string path = std::string("/levels/") + name;
    EXPECT_EQ(ParsePath(path).kind, Kind::kNotFound) << path;
    EXPECT_EQ(ParsePath(path + "/z").kind, Kind::kNotFound) << path;
    EXPECT_EQ(ParsePath(path + "/z/00000.tif").kind, Kind::kNotFound) << path;
  }
}

TEST(ParsePathTest, AxisDirectoriesAndPlaneFilesOfALevel) {
  for (auto [name, axis] : {std::pair{"z", Axis::kZ}, std::pair{"y", Axis::kY},
                            std::pair{"x", Axis::kX}}) {
    const std::string dir = std::string("/levels/3/") + name;
    PathInfo d = ParsePath(dir);
    EXPECT_EQ(d.kind, Kind::kAxisDir) << dir;
    EXPECT_EQ(d.axis, axis);
    EXPECT_EQ(d.level, 3);
    EXPECT_TRUE(d.in_levels);
    EXPECT_EQ(d.name, name);
    PathInfo f = ParsePath(dir + "/00012.tif");
    EXPECT_EQ(f.kind, Kind::kPlaneFile) << dir;
    EXPECT_EQ(f.axis, axis);
    EXPECT_EQ(f.index, 12u);
    EXPECT_EQ(f.level, 3);
    EXPECT_TRUE(f.in_levels);
    EXPECT_EQ(f.name, "00012.tif");
  }
  PathInfo zero = ParsePath("/levels/0/z/00000.tif");
  EXPECT_EQ(zero.kind, Kind::kPlaneFile);
  EXPECT_EQ(zero.level, 0);
  EXPECT_TRUE(zero.in_levels);
}

TEST(ParsePathTest, WritersNamesUnderLevelsAreBadNamesNotSliceNames) {
  for (const char* path : {"/levels/0/z/img_0007.tif", "/levels/1/z/7.tif", "/levels/2/y/foo"}) {
    EXPECT_EQ(ParsePath(path).kind, Kind::kBadName) << path;
  }
}

TEST(ParsePathTest, NothingElseExistsUnderLevels) {
  for (const char* path : {"/levels/", "/levels//z", "/levels/1/", "/levels/1/w",
                           "/levels/1/Z", "/levels/1/bricks", "/levels/1/.brickfs",
                           "/levels/1/z/", "/levels/1/z/00001.tif/more", "/levels/1/levels",
                           "/levels/z", "/levels/1/z/a/b"}) {
    EXPECT_EQ(ParsePath(path).kind, Kind::kNotFound) << path;
  }
}

TEST(ParsePathTest, OnlyTopLevelZPlanesAndNamesAreSliceTargets) {
  EXPECT_TRUE(IsSliceTarget(ParsePath("/z/00007.tif")));
  EXPECT_TRUE(IsSliceTarget(ParsePath("/z/img_0007.tif")));
  for (const char* path : {"/z", "/y/00007.tif", "/x/00007.tif", "/levels/0/z/00007.tif",
                           "/levels/1/z/00007.tif", "/levels/0/z/img_7.tif", "/levels/0/z",
                           "/bricks/z0000_y0000_x0000.raw", "/.brickfs/status", "/levels"}) {
    EXPECT_FALSE(IsSliceTarget(ParsePath(path))) << path;
  }
}

MountConfig Parse(const std::string& opts) {
  MountConfig c;
  Status s = ParseMountOptions(opts, &c);
  EXPECT_TRUE(s.ok()) << opts << ": " << s.ToString();
  return c;
}

void ExpectInvalid(const std::string& opts, const std::string& needle) {
  MountConfig c;
  Status s = ParseMountOptions(opts, &c);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << opts << ": " << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

TEST(ParseMountOptionsTest, EmptyStringLeavesDefaults) {
  MountConfig c = Parse("");
  EXPECT_FALSE(c.read_only);
  EXPECT_TRUE(c.fuse_opts.empty());
  EXPECT_EQ(c.volume.mem_budget, 0u);
  EXPECT_FALSE(c.volume.block.has_value());
}

TEST(ParseMountOptionsTest, SizesAndNumbers) {
  MountConfig c = Parse("mem=2G,cache=512M,first_index=1,threads=8,zstd_level=5");
  EXPECT_EQ(c.volume.mem_budget, 2ull << 30);
  EXPECT_EQ(c.volume.cache_budget, 512ull << 20);
  EXPECT_EQ(c.volume.first_index, 1u);
  EXPECT_EQ(c.volume.threads, 8u);
  EXPECT_EQ(c.volume.zstd_level, 5);
  EXPECT_EQ(Parse("zstd_level=-3").volume.zstd_level, -3);
  EXPECT_EQ(Parse("mem=1536MiB").volume.mem_budget, 1536ull << 20);
}

TEST(ParseMountOptionsTest, ShapesKeepTheirCommas) {
  MountConfig c = Parse("block=8,16,16");
  ASSERT_TRUE(c.volume.block.has_value());
  EXPECT_EQ(*c.volume.block, (Shape3{8, 16, 16}));
  EXPECT_TRUE(c.fuse_opts.empty()) << "the numbers after block= leaked as options";

  c = Parse("mem=2G,block=8,16,16,brick=64,128,256,first_index=1,ro");
  ASSERT_TRUE(c.volume.block.has_value());
  ASSERT_TRUE(c.volume.brick.has_value());
  EXPECT_EQ(*c.volume.block, (Shape3{8, 16, 16}));
  EXPECT_EQ(*c.volume.brick, (Shape3{64, 128, 256}));
  EXPECT_EQ(c.volume.mem_budget, 2ull << 30);
  EXPECT_EQ(c.volume.first_index, 1u);
  EXPECT_TRUE(c.read_only);
  EXPECT_TRUE(c.fuse_opts.empty());
}

TEST(ParseMountOptionsTest, ReadOnlyAndReadWrite) {
  EXPECT_TRUE(Parse("ro").read_only);
  EXPECT_FALSE(Parse("ro,rw").read_only);
  EXPECT_TRUE(Parse("rw,ro").read_only);
}

TEST(ParseMountOptionsTest, LogAndVerbose) {
  MountConfig c = Parse("log=/var/log/brickfs.log,verbose");
  EXPECT_EQ(c.log_file, "/var/log/brickfs.log");
  EXPECT_TRUE(c.verbose);
}

TEST(ParseMountOptionsTest, FstabOnlyOptionsAreIgnored) {
  MountConfig c = Parse(
      "noauto,_netdev,x-systemd.automount,x-systemd.idle-timeout=60,nofail,user,users,"
      "defaults,auto,nouser,dev,suid,exec,nodev,nosuid,noexec,noatime,relatime");
  EXPECT_TRUE(c.fuse_opts.empty()) << c.fuse_opts.front();
  EXPECT_FALSE(c.read_only);
}

TEST(ParseMountOptionsTest, UnknownOptionsPassThroughToFuse) {
  MountConfig c = Parse("allow_other,noauto,mem=1G,default_permissions,max_read=131072");
  EXPECT_EQ(c.fuse_opts,
            (std::vector<std::string>{"allow_other", "default_permissions", "max_read=131072"}));
  EXPECT_EQ(c.volume.mem_budget, 1ull << 30);
}

TEST(ParseMountOptionsTest, EmptyPartsAreSkipped) {
  MountConfig c = Parse(",,ro,,allow_other,");
  EXPECT_TRUE(c.read_only);
  EXPECT_EQ(c.fuse_opts, (std::vector<std::string>{"allow_other"}));
}

TEST(ParseMountOptionsTest, BadValuesAreInvalidArgumentNamingTheOption) {
  ExpectInvalid("mem=lots", "mem=lots");
  ExpectInvalid("mem=0", "mem=0");
  ExpectInvalid("mem=", "mem=");
  ExpectInvalid("cache=2X", "cache=2X");
  ExpectInvalid("first_index=-1", "first_index=-1");
  ExpectInvalid("first_index=one", "first_index=one");
  ExpectInvalid("first_index=", "first_index=");
  ExpectInvalid("threads=0", "threads=0");
  ExpectInvalid("threads=257", "threads=257");
  ExpectInvalid("threads=two", "threads=two");
  ExpectInvalid("block=8,16", "block=8,16");
  ExpectInvalid("block=8,16,16,16", "block=8,16,16,16");
  ExpectInvalid("block=8,x,16", "block=8");
  ExpectInvalid("brick=", "brick=");
  ExpectInvalid("zstd_level=high", "zstd_level=high");
  ExpectInvalid("log=", "log=");
}

TEST(ParseMountOptionsTest, OutOfRangeNumbersAreInvalidArgumentNotExceptions) {
  // Digits only, but more than a uint64 holds: must be refused cleanly.
  for (const char* opts : {"first_index=99999999999999999999999",
                           "threads=99999999999999999999999",
                           "block=99999999999999999999999,16,16",
                           "zstd_level=99999999999999999999999"}) {
    MountConfig c;
    Status s;
    EXPECT_NO_THROW(s = ParseMountOptions(opts, &c)) << opts;
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << opts << ": " << s.ToString();
  }
}

TEST(ParseMountOptionsTest, PyramidIsOnByDefaultAndCanBeTurnedOff) {
  EXPECT_TRUE(Parse("").volume.pyramid);
  EXPECT_FALSE(Parse("nopyramid").volume.pyramid);
  EXPECT_FALSE(Parse("pyramid=0").volume.pyramid);
  EXPECT_TRUE(Parse("pyramid=1").volume.pyramid);
  EXPECT_TRUE(Parse("nopyramid,pyramid").volume.pyramid);
  EXPECT_TRUE(Parse("nopyramid,pyramid=1").fuse_opts.empty());
  ExpectInvalid("pyramid=yes", "mount option \"pyramid=yes\": expected pyramid=0 or pyramid=1");
  ExpectInvalid("pyramid=", "pyramid=0 or pyramid=1");
}

TEST(ParseMountOptionsTest, DownsampleAndUnitTakeNamesFromTheirLists) {
  EXPECT_FALSE(Parse("").volume.downsample.has_value());
  EXPECT_FALSE(Parse("").volume.unit.has_value());
  for (const char* m : {"mean", "mode"}) {
    EXPECT_EQ(Parse(std::string("downsample=") + m).volume.downsample, m);
  }
  for (const char* u : {"micrometer", "nanometer", "angstrom"}) {
    EXPECT_EQ(Parse(std::string("unit=") + u).volume.unit, u);
  }
}

TEST(ParseMountOptionsTest, BadDownsampleOrUnitSaysWhatIsExpected) {
  for (auto [opts, needle] : std::vector<std::pair<const char*, const char*>>{
           {"downsample=max", "mount option \"downsample=max\": expected mean"},
           {"downsample=Mean", "or mode"},
           {"downsample=", "expected mean"},
           {"unit=um", "mount option \"unit=um\": \"um\" is not an OME-Zarr space unit"},
           {"unit=um", "did you mean micrometer?"},
           {"unit=nm", "did you mean nanometer?"},
           {"unit=parsecs", "e.g. micrometer, nanometer, millimeter"},
           {"unit=second", "not an OME-Zarr space unit"},
           {"unit=", "is not an OME-Zarr space unit"}}) {
    ExpectInvalid(opts, needle);
  }
}

TEST(ParseMountOptionsTest, VoxelSizeTakesThreeNumbersOrOne) {
  EXPECT_FALSE(Parse("").volume.voxel_size.has_value());
  using V = std::array<double, 3>;
  EXPECT_EQ(Parse("voxel_size=2:0.5:0.25").volume.voxel_size, (V{2, 0.5, 0.25}));
  EXPECT_EQ(Parse("voxel_size=0.4").volume.voxel_size, (V{0.4, 0.4, 0.4}));
  EXPECT_EQ(Parse("voxel_size=1e-3:.5:3.").volume.voxel_size, (V{1e-3, 0.5, 3}));
  EXPECT_EQ(Parse("voxel_size=1,1e-3,2E1").volume.voxel_size, (V{1, 1e-3, 20}));
  // Commas work as in block=: the numbers after voxel_size= belong to it.
  MountConfig c = Parse("voxel_size=2,0.5,0.5,ro,block=8,16,16");
  EXPECT_EQ(c.volume.voxel_size, (V{2, 0.5, 0.5}));
  EXPECT_EQ(c.volume.block, (Shape3{8, 16, 16}));
  EXPECT_TRUE(c.read_only);
  EXPECT_TRUE(c.fuse_opts.empty());
}

TEST(ParseMountOptionsTest, BadVoxelSizesAreRefusedWithTheExpectedForm) {
  for (const char* bad : {"voxel_size=", "voxel_size=0", "voxel_size=-1", "voxel_size=1:2",
                          "voxel_size=1:2:3:4", "voxel_size=1:0:1", "voxel_size=inf",
                          "voxel_size=nan", "voxel_size=1:nan:1", "voxel_size=1e999",
                          "voxel_size=1um", "voxel_size= 1", "voxel_size=+1", "voxel_size=1::1",
                          "voxel_size=1:2,3", "voxel_size=2,0.5"}) {
    ExpectInvalid(bad, std::string("mount option \"") + bad + "\"");
    ExpectInvalid(bad, "expected Z:Y:X or one number");
  }
}

TEST(ParseMountOptionsTest, PyramidOptionsTogether) {
  MountConfig c = Parse("mem=1G,nopyramid,downsample=mode,voxel_size=3:1:1,unit=nanometer,ro");
  EXPECT_FALSE(c.volume.pyramid);
  EXPECT_EQ(c.volume.downsample, "mode");
  EXPECT_EQ(c.volume.voxel_size, (std::array<double, 3>{3, 1, 1}));
  EXPECT_EQ(c.volume.unit, "nanometer");
  EXPECT_EQ(c.volume.mem_budget, 1ull << 30);
  EXPECT_TRUE(c.read_only);
  EXPECT_TRUE(c.fuse_opts.empty());
}

TEST(ParseMountOptionsTest, TrailingGarbageInNumbersIsRefused) {
  ExpectInvalid("zstd_level=3x", "zstd_level=3x");
  ExpectInvalid("mem=2G5", "mem=2G5");
}

}  // namespace
}  // namespace brickfs
