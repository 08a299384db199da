// Tests for the POSIX file helpers: atomic replace, whole-file reads with a
// size cap, full pread/pwrite loops and mkdir -p.
#include "common/file_util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "common/scope_guard.h"

namespace brickfs {
namespace {

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_file_util_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string dir_;
};

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

TEST_F(FileUtilTest, WriteFileAtomicThenReadBack) {
  const std::string p = dir_ + "/a.json";
  ASSERT_TRUE(WriteFileAtomic(p, "hello\n").ok());
  auto r = ReadFileToString(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "hello\n");
  EXPECT_FALSE(Exists(p + ".tmp")) << "temporary file left behind";
}

TEST_F(FileUtilTest, WriteFileAtomicReplacesExistingContent) {
  const std::string p = dir_ + "/a";
  ASSERT_TRUE(WriteFileAtomic(p, std::string(10000, 'x')).ok());
  ASSERT_TRUE(WriteFileAtomic(p, "short").ok());
  auto r = ReadFileToString(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "short");
}

TEST_F(FileUtilTest, WriteFileAtomicStoresBinaryAndEmptyData) {
  const std::string p = dir_ + "/bin";
  std::string data("a\0b\0\xff", 5);
  ASSERT_TRUE(WriteFileAtomic(p, data).ok());
  EXPECT_EQ(*ReadFileToString(p), data);
  ASSERT_TRUE(WriteFileAtomic(p, "").ok());
  EXPECT_EQ(*ReadFileToString(p), "");
}

TEST_F(FileUtilTest, WriteFileAtomicIntoMissingDirectoryIsIOError) {
  Status s = WriteFileAtomic(dir_ + "/no/such/dir/file", "x");
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.err(), 0);
  EXPECT_NE(s.message().find(dir_ + "/no/such/dir/file"), std::string::npos) << s.message();
}

TEST_F(FileUtilTest, ReadFileToStringMissingIsNotFound) {
  auto r = ReadFileToString(dir_ + "/absent");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_NE(r.status().message().find("absent"), std::string::npos);
}

TEST_F(FileUtilTest, ReadFileToStringRefusesFilesOverTheCap) {
  const std::string p = dir_ + "/big";
  ASSERT_TRUE(WriteFileAtomic(p, std::string(101, 'z')).ok());
  auto r = ReadFileToString(p, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("101"), std::string::npos) << r.status().message();
  auto ok = ReadFileToString(p, 101);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 101u);
}

TEST_F(FileUtilTest, PwriteAllAndPreadAllRoundTripAtOffsets) {
  const std::string p = dir_ + "/f";
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ScopeGuard close_fd([fd] { ::close(fd); });
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(PwriteAll(fd, data.data(), data.size(), 4096, p).ok());
  std::string back(data.size(), '\0');
  ASSERT_TRUE(PreadAll(fd, back.data(), back.size(), 4096, p).ok());
  EXPECT_EQ(back, data);
  // The hole before offset 4096 reads as zeros.
  std::string hole(4096, 'x');
  ASSERT_TRUE(PreadAll(fd, hole.data(), hole.size(), 0, p).ok());
  EXPECT_EQ(hole, std::string(4096, '\0'));
}

TEST_F(FileUtilTest, PreadAllPastEndOfFileIsCorruption) {
  const std::string p = dir_ + "/short";
  ASSERT_TRUE(WriteFileAtomic(p, std::string(10, 'a')).ok());
  int fd = ::open(p.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ScopeGuard close_fd([fd] { ::close(fd); });
  char buf[16];
  Status s = PreadAll(fd, buf, 16, 0, p);  // 10 available: short read
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find(p), std::string::npos) << s.message();
  EXPECT_EQ(PreadAll(fd, buf, 1, 10, p).code(), Status::Code::kCorruption);
  EXPECT_TRUE(PreadAll(fd, buf, 10, 0, p).ok());
  EXPECT_TRUE(PreadAll(fd, buf, 0, 1000, p).ok());
}

TEST_F(FileUtilTest, PreadAllOnBadFdIsIOError) {
  char buf[4];
  Status s = PreadAll(-1, buf, 4, 0, "bad");
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_EQ(s.err(), EBADF);
}

TEST_F(FileUtilTest, MakeDirsCreatesNestedAndAcceptsExisting) {
  const std::string p = dir_ + "/a/b/c/d";
  ASSERT_TRUE(MakeDirs(p).ok());
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(MakeDirs(p).ok());
  EXPECT_TRUE(MakeDirs("").ok());
}

TEST_F(FileUtilTest, MakeDirsOverAFileIsInvalidArgument) {
  const std::string p = dir_ + "/file";
  ASSERT_TRUE(WriteFileAtomic(p, "x").ok());
  EXPECT_EQ(MakeDirs(p).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(MakeDirs(p + "/sub").ok());
}

TEST_F(FileUtilTest, SyncDirOfMissingDirectoryIsIOError) {
  EXPECT_TRUE(SyncDir(dir_).ok());
  EXPECT_EQ(SyncDir(dir_ + "/absent").code(), Status::Code::kIOError);
}

}  // namespace
}  // namespace brickfs
