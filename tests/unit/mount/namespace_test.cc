// Tests for the mount's namespace model (ParsePath) and -o option parsing
// (ParseMountOptions). Pure functions: no mount, no /dev/fuse.
#include "mount/namespace.h"

#include <gtest/gtest.h>

#include <algorithm>
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
                           "/z/a/b", "/.brickfs/status/x", "/.brick", "/0", "/c"}) {
    EXPECT_EQ(ParsePath(path).kind, Kind::kNotFound) << "\"" << path << "\"";
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

TEST(ParseMountOptionsTest, TrailingGarbageInNumbersIsRefused) {
  ExpectInvalid("zstd_level=3x", "zstd_level=3x");
  ExpectInvalid("mem=2G5", "mem=2G5");
}

}  // namespace
}  // namespace brickfs
