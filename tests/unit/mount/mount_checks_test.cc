// Tests for what brickfs checks before it mounts: a store inside its own
// mount point (or the mount point inside the store, or the log there), mem=
// beyond the machine's physical memory, block=/brick= shapes that no volume
// could use; and the libfuse options a shared mount gets. No mount.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "mount/fuse_mount.h"

namespace brickfs {
namespace {

class SelfMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_selfmount_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    ASSERT_EQ(::mkdir((root_ + "/mnt").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/store.zarr").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/store.zarr/sub").c_str(), 0755), 0);
    ASSERT_EQ(::symlink((root_ + "/mnt").c_str(), (root_ + "/link").c_str()), 0);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  Status Check(const std::string& store, const std::string& mnt, const std::string& log = "") {
    MountConfig c;
    c.store = store;
    c.mountpoint = mnt;
    c.log_file = log;
    return CheckNotSelfMount(c);
  }
  std::string root_;
};

TEST_F(SelfMountTest, StoreInsideTheMountPointIsRefusedEvenBeforeItExists) {
  for (const std::string& store : {root_ + "/mnt/inner.zarr", root_ + "/mnt/a/b/inner.zarr",
                                  root_ + "/link/inner.zarr", root_ + "/mnt/../mnt/x.zarr",
                                  root_ + "/mnt"}) {
    Status s = Check(store, root_ + "/mnt");
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << store;
    EXPECT_NE(s.message().find("inside the mount point"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(root_ + "/mnt"), std::string::npos) << s.message();
  }
  // the mount point named through the symlink
  EXPECT_FALSE(Check(root_ + "/mnt/inner.zarr", root_ + "/link").ok());
  struct stat st;
  EXPECT_NE(::stat((root_ + "/mnt/inner.zarr").c_str(), &st), 0) << "the check created it";
  EXPECT_NE(::stat((root_ + "/mnt/a").c_str(), &st), 0) << "the check created it";
}

TEST_F(SelfMountTest, MountPointInsideTheStoreIsRefused) {
  Status s = Check(root_ + "/store.zarr", root_ + "/store.zarr/sub");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("inside the store"), std::string::npos) << s.message();
}

TEST_F(SelfMountTest, LogFileInsideTheMountPointIsRefused) {
  Status s = Check(root_ + "/store.zarr", root_ + "/mnt", root_ + "/link/daemon.log");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("log"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("inside the mount point"), std::string::npos) << s.message();
}

TEST_F(SelfMountTest, NeighboursAndPrefixesThatAreNotParentsAreFine) {
  EXPECT_TRUE(Check(root_ + "/store.zarr", root_ + "/mnt").ok());
  EXPECT_TRUE(Check(root_ + "/mnt2.zarr", root_ + "/mnt").ok());  // "mnt" is a prefix, not a parent
  EXPECT_TRUE(Check(root_ + "/store.zarr", root_ + "/mnt", root_ + "/d.log").ok());
  ASSERT_EQ(::mkdir((root_ + "/store").c_str(), 0755), 0);
  EXPECT_TRUE(Check(root_ + "/store.zarr", root_ + "/store").ok());
}

// --- options ------------------------------------------------------------------

Status Parse(const std::string& opts, MountConfig* c) { return ParseMountOptions(opts, c); }

TEST_F(SelfMountTest, ARemoteStoreIsNoPathButItsCacheMustNotBeInsideTheMountPoint) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  MountConfig c;
  c.store = "http://127.0.0.1:8080/data/v.zarr";
  // Not taken for a relative path "http:/127.0.0.1:8080/..." below the
  // working directory.
  c.mountpoint = cwd;
  EXPECT_TRUE(CheckNotSelfMount(c).ok()) << CheckNotSelfMount(c).message();
  c.mountpoint = root_ + "/mnt";
  c.remote.cache_dir = root_ + "/cache";
  EXPECT_TRUE(CheckNotSelfMount(c).ok());
  c.remote.cache_dir = root_ + "/link/cache";
  const Status s = CheckNotSelfMount(c);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("cache_dir="), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("inside the mount point"), std::string::npos) << s.message();
}

TEST(MountOptionChecksTest, RemoteOptionsAreParsedAndChecked) {
  MountConfig c;
  ASSERT_TRUE(ParseMountOptions("cache_dir=/var/c,cache_size=2G,offline,auth_file=/etc/a,ro", &c).ok());
  EXPECT_EQ(c.remote.cache_dir, "/var/c");
  EXPECT_EQ(c.remote.cache_size, uint64_t{2} << 30);
  EXPECT_TRUE(c.remote.offline);
  EXPECT_EQ(c.remote.auth_file, "/etc/a");
  EXPECT_TRUE(c.remote_options);
  EXPECT_FALSE(c.asked_rw);
  EXPECT_TRUE(c.fuse_opts.empty());
  MountConfig plain;
  ASSERT_TRUE(ParseMountOptions("rw,cache=1G", &plain).ok());
  EXPECT_FALSE(plain.remote_options);
  EXPECT_TRUE(plain.asked_rw);
  for (const char* bad : {"cache_size=0", "cache_size=lots", "cache_dir=", "auth_file="}) {
    MountConfig b;
    const Status s = ParseMountOptions(bad, &b);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
  }
}

TEST(MountOptionChecksTest, MemAbovePhysicalMemoryIsRefusedNamingBothNumbers) {
  const uint64_t phys = PhysicalMemoryBytes();
  ASSERT_GT(phys, 0u);
  MountConfig c;
  const uint64_t ask = 2 * phys;
  Status s = Parse("mem=" + std::to_string(ask), &c);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(ask)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::to_string(phys)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("physical memory"), std::string::npos) << s.message();
  MountConfig ok;
  EXPECT_TRUE(Parse("mem=" + std::to_string(phys), &ok).ok());
  EXPECT_EQ(ok.volume.mem_budget, phys);
}

TEST(MountOptionChecksTest, ShapesNoVolumeCouldUseAreRefusedWithTheReason) {
  const std::pair<const char*, const char*> bad[] = {
      {"block=0,16,16", "> 0"},
      {"brick=16,0,16", "> 0"},
      {"block=32,32,32,brick=48,48,48", "brick 48,48,48 is not a multiple of block 32,32,32"},
      {"brick=48,48,48,block=32,32,32", "not a multiple"},
      {"brick=16,16,16", "is the default block; give block= as well"},
      {"block=8192,8,8,brick=8192,8,8", "4096"},
      {"block=4096,4096,8,brick=4096,4096,8", "64 MiB"},
      {"block=1,1,1", "2^20 blocks"}};
  for (const auto& [opts, needle] : bad) {
    MountConfig c;
    Status s = Parse(opts, &c);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << opts << ": " << s.ToString();
    EXPECT_NE(s.message().find(needle), std::string::npos) << opts << ": " << s.message();
    EXPECT_NE(s.message().find(std::string(opts).substr(0, 6)), std::string::npos)
        << s.message();
  }
  // block 512,256,256 is 32 MiB of uint8 (fine) but 128 MiB of float32: a
  // uint8 volume may use it, so it is not refused here.
  for (const char* good : {"block=8,16,16,brick=16,32,32", "block=32,32,32", "brick=64,64,64",
                           "block=16,32,32,brick=256,256,256", "mem=64M,brick=512,512,512",
                           "block=512,256,256,brick=512,256,256"}) {
    MountConfig c;
    Status s = Parse(good, &c);
    EXPECT_TRUE(s.ok()) << good << ": " << s.ToString();
  }
}

TEST(FuseOptionsTest, SharedMountsAlwaysGetDefaultPermissions) {
  for (const char* opt : {"allow_other", "allow_root"}) {
    MountConfig c;
    c.store = "/data/vol.zarr";
    ASSERT_TRUE(ParseMountOptions(opt, &c).ok());
    const std::string fuse = FuseOptionString(c);
    EXPECT_NE(fuse.find(std::string(",") + opt), std::string::npos) << fuse;
    EXPECT_NE(fuse.find(",default_permissions"), std::string::npos) << fuse;
  }
  MountConfig both;
  ASSERT_TRUE(ParseMountOptions("allow_other,default_permissions", &both).ok());
  const std::string f = FuseOptionString(both);
  EXPECT_EQ(f.find("default_permissions"), f.rfind("default_permissions")) << f;
  MountConfig private_mount;
  private_mount.store = "/data/a,b.zarr";
  const std::string p = FuseOptionString(private_mount);
  EXPECT_EQ(p, "fsname=/data/a\\,b.zarr,subtype=brickfs");
}

}  // namespace
}  // namespace brickfs
