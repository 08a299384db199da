// Tests for the POSIX file helpers: atomic replace, whole-file reads with a
// size cap, full pread/pwrite loops, mkdir -p, and the safe opens of files in
// a store another user may control (symlinks, hard links, FIFOs, foreign
// owners refused, their targets untouched).
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


// --- safe opens -------------------------------------------------------------

// A file outside the test's directory tree that an attacker wants changed.
class SafeOpenTest : public FileUtilTest {
 protected:
  void SetUp() override {
    FileUtilTest::SetUp();
    victim_ = dir_ + "/victim";
    ASSERT_TRUE(WriteFileAtomic(victim_, kPrecious).ok());
    ASSERT_EQ(::mkdir((dir_ + "/priv").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir_ + "/elsewhere").c_str(), 0755), 0);
  }
  void ExpectVictimIntact() {
    auto r = ReadFileToString(victim_);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, kPrecious);
    struct stat st;
    ASSERT_EQ(::stat(victim_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
  }
  bool ElsewhereEmpty() {
    return ::rmdir((dir_ + "/elsewhere").c_str()) == 0 &&
           ::mkdir((dir_ + "/elsewhere").c_str(), 0755) == 0;
  }
  static constexpr const char* kPrecious = "root:secret:19000:0:99999:7:::\n";
  std::string victim_;
};

TEST_F(SafeOpenTest, OpenOwnedFileCreatesAndReopensAFileOfOurOwn) {
  const std::string p = dir_ + "/priv/journal";
  auto fd = OpenOwnedFile(p, O_WRONLY | O_CREAT, 0600);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_EQ(::write(*fd, "abc", 3), 3);
  ::close(*fd);
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto again = OpenOwnedFile(p, O_WRONLY | O_TRUNC);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(::fcntl(*again, F_GETFL) & O_NONBLOCK, 0) << "O_NONBLOCK left set";
  EXPECT_NE(::fcntl(*again, F_GETFD) & FD_CLOEXEC, 0) << "no O_CLOEXEC";
  ::close(*again);
  EXPECT_EQ(*ReadFileToString(p), "") << "O_TRUNC was asked for";
}

TEST_F(SafeOpenTest, OpenOwnedFileRefusesASymlinkAndLeavesItsTargetAlone) {
  const std::string p = dir_ + "/priv/lock";
  ASSERT_EQ(::symlink(victim_.c_str(), p.c_str()), 0);
  for (int flags : {O_RDWR | O_CREAT, O_WRONLY | O_CREAT | O_TRUNC, O_WRONLY | O_APPEND,
                    O_RDONLY}) {
    auto fd = OpenOwnedFile(p, flags, 0644);
    ASSERT_FALSE(fd.ok()) << flags;
    EXPECT_NE(fd.status().message().find(p), std::string::npos) << fd.status().message();
    EXPECT_NE(fd.status().message().find("symbolic link"), std::string::npos)
        << fd.status().message();
  }
  ExpectVictimIntact();
}

TEST_F(SafeOpenTest, OpenOwnedFileRefusesADanglingSymlinkInsteadOfCreatingItsTarget) {
  const std::string p = dir_ + "/priv/daemon.log";
  const std::string target = dir_ + "/elsewhere/created";
  ASSERT_EQ(::symlink(target.c_str(), p.c_str()), 0);
  auto fd = OpenOwnedFile(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
  EXPECT_FALSE(fd.ok());
  EXPECT_FALSE(Exists(target)) << "a file was created through the link";
}

TEST_F(SafeOpenTest, OpenOwnedFileRefusesASymlinkedDirectory) {
  ASSERT_EQ(::symlink((dir_ + "/elsewhere").c_str(), (dir_ + "/spool").c_str()), 0);
  auto fd = OpenOwnedFile(dir_ + "/spool/slab-0", O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find(dir_ + "/spool"), std::string::npos)
      << fd.status().message();
  EXPECT_NE(fd.status().message().find("symbolic link"), std::string::npos)
      << fd.status().message();
  EXPECT_TRUE(ElsewhereEmpty());
}

TEST_F(SafeOpenTest, OpenOwnedFileRefusesAHardLinkWithoutTruncatingIt) {
  const std::string p = dir_ + "/priv/journal";
  ASSERT_EQ(::link(victim_.c_str(), p.c_str()), 0);
  auto fd = OpenOwnedFile(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("hard link"), std::string::npos) << fd.status().message();
  ExpectVictimIntact();
}

TEST_F(SafeOpenTest, OpenOwnedFileRefusesAFifoWithoutBlocking) {
  const std::string p = dir_ + "/priv/journal";
  ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0);
  for (int flags : {O_RDONLY, O_WRONLY | O_CREAT, O_RDWR}) {
    auto fd = OpenOwnedFile(p, flags, 0644);  // a blocking open would hang the test
    ASSERT_FALSE(fd.ok()) << flags;
    EXPECT_NE(fd.status().message().find("not a regular file"), std::string::npos)
        << fd.status().message();
  }
}

TEST_F(SafeOpenTest, OpenOwnedFileRefusesAFileOfAnotherOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
  const std::string p = dir_ + "/priv/lock";
  ASSERT_TRUE(WriteFileAtomic(p, "4242\n").ok());
  ASSERT_EQ(::chown(p.c_str(), 4242, 4242), 0);
  auto fd = OpenOwnedFile(p, O_RDWR | O_CREAT, 0644);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("owned by uid 4242"), std::string::npos)
      << fd.status().message();
  EXPECT_EQ(*ReadFileToString(p), "4242\n");
  // A file that is only read (a store's lock, for a read-only mount) may
  // belong to anyone.
  auto ro = OpenStoreFile(p, O_RDONLY);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  ::close(*ro);
}

TEST_F(SafeOpenTest, OpenOwnedFileKeepsErrnoOfAMissingFile) {
  auto fd = OpenOwnedFile(dir_ + "/priv/absent", O_RDONLY);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), Status::Code::kIOError);
  EXPECT_EQ(fd.status().err(), ENOENT);
}

TEST_F(SafeOpenTest, CheckOwnedDirRefusesSymlinksFilesAndOtherOwners) {
  EXPECT_TRUE(CheckOwnedDir(dir_ + "/priv").ok());
  ASSERT_EQ(::symlink((dir_ + "/elsewhere").c_str(), (dir_ + "/link").c_str()), 0);
  Status s = CheckOwnedDir(dir_ + "/link");
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
  s = CheckOwnedDir(victim_);
  EXPECT_NE(s.message().find("not a directory"), std::string::npos) << s.ToString();
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((dir_ + "/priv").c_str(), 4242, 4242), 0);
    s = CheckOwnedDir(dir_ + "/priv");
    EXPECT_NE(s.message().find("owned by uid 4242"), std::string::npos) << s.ToString();
  }
}

TEST_F(SafeOpenTest, OpenFileBeneathRefusesASymlinkAnywhereBelowTheRoot) {
  const std::string root = dir_ + "/array";
  ASSERT_TRUE(MakeDirsBeneath(dir_, "array/c/0/0").ok());
  auto fd = OpenFileBeneath(root, "c/0/0/0", O_WRONLY | O_CREAT, 0644);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ::close(*fd);
  EXPECT_TRUE(Exists(root + "/c/0/0/0"));
  // c/1 -> elsewhere: neither creating directories nor files goes through it
  ASSERT_EQ(::symlink((dir_ + "/elsewhere").c_str(), (root + "/c/1").c_str()), 0);
  Status s = MakeDirsBeneath(root, "c/1/0");
  EXPECT_NE(s.message().find(root + "/c/1"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
  ASSERT_EQ(::mkdir((dir_ + "/elsewhere/0").c_str(), 0755), 0);
  auto through = OpenFileBeneath(root, "c/1/0/0", O_WRONLY | O_CREAT, 0644);
  EXPECT_FALSE(through.ok());
  EXPECT_FALSE(Exists(dir_ + "/elsewhere/0/0"));
  // the last component a link to an existing file, or a dangling one
  ASSERT_EQ(::symlink(victim_.c_str(), (root + "/c/0/0/1").c_str()), 0);
  ASSERT_EQ(::symlink((dir_ + "/elsewhere/new").c_str(), (root + "/c/0/0/2").c_str()), 0);
  for (const char* rel : {"c/0/0/1", "c/0/0/2"}) {
    for (int flags : {O_RDONLY, O_WRONLY | O_CREAT}) {
      auto r = OpenFileBeneath(root, rel, flags, 0644);
      ASSERT_FALSE(r.ok()) << rel;
      EXPECT_NE(r.status().message().find("symbolic link"), std::string::npos)
          << r.status().message();
    }
  }
  EXPECT_FALSE(Exists(dir_ + "/elsewhere/new"));
  ExpectVictimIntact();
  // the root itself a link
  ASSERT_EQ(::symlink(root.c_str(), (dir_ + "/rootlink").c_str()), 0);
  EXPECT_FALSE(OpenFileBeneath(dir_ + "/rootlink", "c/0/0/0", O_RDONLY, 0).ok());
  // a missing file keeps its errno (readers treat ENOENT as "no brick yet")
  auto missing = OpenFileBeneath(root, "c/0/0/9", O_RDONLY, 0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().err(), ENOENT);
}

TEST_F(SafeOpenTest, OpenFileBeneathReadsAHardLinkedFileButDoesNotWriteIt) {
  ASSERT_TRUE(MakeDirsBeneath(dir_, "array/c").ok());
  ASSERT_EQ(::link(victim_.c_str(), (dir_ + "/array/c/0").c_str()), 0);
  auto ro = OpenFileBeneath(dir_ + "/array", "c/0", O_RDONLY, 0);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();  // a store snapshot made with cp -al
  ::close(*ro);
  auto rw = OpenFileBeneath(dir_ + "/array", "c/0", O_WRONLY, 0);
  ASSERT_FALSE(rw.ok());
  EXPECT_NE(rw.status().message().find("hard link"), std::string::npos)
      << rw.status().message();
  ExpectVictimIntact();
}

TEST_F(SafeOpenTest, WriteFileAtomicDoesNotFollowAPlantedTemporaryFile) {
  const std::string p = dir_ + "/priv/zarr.json";
  ASSERT_EQ(::symlink(victim_.c_str(), (p + ".tmp").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(p, "{}\n").ok());
  ExpectVictimIntact();
  EXPECT_EQ(*ReadFileToString(p), "{}\n");
  struct stat st;
  ASSERT_EQ(::lstat(p.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  // a hard link as the temporary file is not truncated either
  ASSERT_EQ(::link(victim_.c_str(), (p + ".tmp").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(p, "{\"a\": 1}\n").ok());
  ExpectVictimIntact();
}

TEST_F(SafeOpenTest, WriteFileAtomicRefusesASymlinkedDirectory) {
  ASSERT_EQ(::symlink((dir_ + "/elsewhere").c_str(), (dir_ + "/0").c_str()), 0);
  Status s = WriteFileAtomic(dir_ + "/0/zarr.json", "{}");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
  EXPECT_TRUE(ElsewhereEmpty());
}

}  // namespace
}  // namespace brickfs
