// Tests for SyncLog's files in STORE/.brickfs/synced/ as someone who owns the
// store could plant them: a symlinked directory or slab file is neither
// written through nor emptied, and RemoveAll removes nothing but slab files.
#include "volume/sync_log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace brickfs {
namespace {

class SyncLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_sync_log_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    victims_ = root_ + "/victims";
    ASSERT_EQ(::mkdir(victims_.c_str(), 0755), 0);
    Write(victims_ + "/shadow", "root:secret:::\n");
    Write(victims_ + "/slab-3", "not a sync log\n");
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  static void Write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void ExpectVictimsIntact() {
    EXPECT_EQ(Read(victims_ + "/shadow"), "root:secret:::\n");
    EXPECT_EQ(Read(victims_ + "/slab-3"), "not a sync log\n");
  }
  std::string root_, victims_;
};

TEST_F(SyncLogTest, AppendScanAndRemoveAllOfItsOwnFiles) {
  const std::string dir = root_ + "/synced";
  SyncLog log(dir, 7);
  std::vector<uint8_t> slice(16, 0x5a);
  ASSERT_TRUE(log.Append(1, 9, 100, slice.data(), slice.size()).ok());
  uint64_t skipped = 0;
  auto records = SyncLog::Scan(dir, 7, slice.size(), 8, &skipped);
  ASSERT_EQ(records.size(), 1u);
  std::vector<uint8_t> back(16);
  ASSERT_TRUE(SyncLog::ReadData(records[0], back.data(), back.size()).ok());
  EXPECT_EQ(back, slice);
  SyncLog::RemoveAll(dir);
  struct stat st;
  EXPECT_NE(::lstat(dir.c_str(), &st), 0) << "the directory is left";
}

TEST_F(SyncLogTest, SymlinkedDirectoryIsNeitherWrittenNorEmptied) {
  const std::string dir = root_ + "/synced";
  ASSERT_EQ(::symlink(victims_.c_str(), dir.c_str()), 0);
  SyncLog log(dir, 7);
  std::vector<uint8_t> slice(16, 0x5a);
  Status s = log.Append(3, 25, 100, slice.data(), slice.size());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
  SyncLog::RemoveAll(dir);
  ExpectVictimsIntact();
}

TEST_F(SyncLogTest, SymlinkedSlabFileIsNotAppendedTo) {
  const std::string dir = root_ + "/synced";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::symlink((victims_ + "/shadow").c_str(), (dir + "/slab-2").c_str()), 0);
  ASSERT_EQ(::link((victims_ + "/slab-3").c_str(), (dir + "/slab-3").c_str()), 0);
  SyncLog log(dir, 7);
  std::vector<uint8_t> slice(16, 0x5a);
  EXPECT_FALSE(log.Append(2, 17, 100, slice.data(), slice.size()).ok());
  EXPECT_FALSE(log.Append(3, 25, 100, slice.data(), slice.size()).ok());
  ExpectVictimsIntact();
}

TEST_F(SyncLogTest, RemoveAllRemovesOnlySlabFiles) {
  const std::string dir = root_ + "/synced";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  Write(dir + "/slab-1", "x");
  Write(dir + "/notes.txt", "keep me\n");
  SyncLog::RemoveAll(dir);
  struct stat st;
  EXPECT_NE(::lstat((dir + "/slab-1").c_str(), &st), 0);
  EXPECT_EQ(Read(dir + "/notes.txt"), "keep me\n");
}

}  // namespace
}  // namespace brickfs
