// Tests for STORE/.brickfs/finalize, the file through which a daemon whose
// finalize keeps failing (a full disk) tells `brickfs umount` why: written
// once at a fixed size and then overwritten in place, read back by another
// process, refused when it is a link.
#include "store/finalize_state.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace brickfs {
namespace {

class FinalizeStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_finalize_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    store_ = tmpl;
    ASSERT_EQ(::mkdir((store_ + "/.brickfs").c_str(), 0755), 0);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + store_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  uint64_t Size() {
    struct stat st;
    return ::stat(FinalizeStateFile::PathFor(store_).c_str(), &st) == 0 ? st.st_size : 0;
  }
  std::string store_;
};

TEST_F(FinalizeStateTest, WrittenInPlaceAtAFixedSizeAndReadBack) {
  FinalizeState s;
  s.pid = 4242;
  auto f = FinalizeStateFile::Create(store_, s);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(Size(), FinalizeStateFile::kSize);
  auto back = ReadFinalizeState(store_);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->state, "mounted");

  s.state = "retrying";
  s.error = "finalize: 1 slabs could not be written: write /s/0/c/0/0/0: No space left on device";
  s.err = ENOSPC;
  s.attempts = 3;
  s.retry_seconds = 5;
  s.since = 1700000000;
  ASSERT_TRUE((*f)->Write(s).ok());
  EXPECT_EQ(Size(), FinalizeStateFile::kSize);
  back = ReadFinalizeState(store_);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->state, "retrying");
  EXPECT_EQ(back->error, s.error);
  EXPECT_EQ(back->err, ENOSPC);
  EXPECT_EQ(back->attempts, 3u);
  EXPECT_EQ(back->retry_seconds, 5);
  EXPECT_EQ(back->since, 1700000000);
  EXPECT_NE(FinalizeStateJson(s).find("\"errno_name\":\"ENOSPC\""), std::string::npos)
      << FinalizeStateJson(s);

  s.error = std::string(10000, 'x');  // shortened, never grows the file
  ASSERT_TRUE((*f)->Write(s).ok());
  EXPECT_EQ(Size(), FinalizeStateFile::kSize);
  ASSERT_TRUE(ReadFinalizeState(store_).has_value());

  ASSERT_TRUE((*f)->Remove().ok());
  EXPECT_FALSE(ReadFinalizeState(store_).has_value());
}

TEST_F(FinalizeStateTest, GarbageOrATornUpdateReadsAsNothing) {
  std::ofstream(FinalizeStateFile::PathFor(store_)) << "{\"pid\": 12, \"sta";
  EXPECT_FALSE(ReadFinalizeState(store_).has_value());
}

TEST_F(FinalizeStateTest, ASymlinkIsRefusedAndItsTargetUntouched) {
  const std::string victim = store_ + "/victim";
  std::ofstream(victim) << "precious\n";
  ASSERT_EQ(::symlink(victim.c_str(), FinalizeStateFile::PathFor(store_).c_str()), 0);
  auto f = FinalizeStateFile::Create(store_, FinalizeState{});
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("symbolic link"), std::string::npos)
      << f.status().ToString();
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious\n");
  EXPECT_FALSE(ReadFinalizeState(store_).has_value());
}

}  // namespace
}  // namespace brickfs
