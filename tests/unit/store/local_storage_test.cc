#include "store/local_storage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "common/thread_pool.h"

namespace brickfs {
namespace {

class LocalStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_storage_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string ReadFile(const std::string& rel) {
    std::ifstream in(root_ + "/" + rel, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string root_;
};

TEST_F(LocalStorageTest, KeysMustBeRelativeWithoutDotComponents) {
  LocalStorage st(root_, false);
  for (const char* bad : {"", "/etc/passwd", "a//b", "a/./b", "../x", "a/..", "a/"}) {
    EXPECT_FALSE(KeyProblem(bad).empty()) << bad;
    EXPECT_EQ(st.Get(bad, 100).status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(st.WriteAt(bad, 0, "x").code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(KeyProblem("0/c/1/2/3").empty());
  EXPECT_EQ(JoinKey("", "zarr.json"), "zarr.json");
  EXPECT_EQ(JoinKey("0", "c/1"), "0/c/1");
}

TEST_F(LocalStorageTest, WriteAtMakesDirectoriesAndReadsComeBackExactly) {
  LocalStorage st(root_ + "/new", false);  // the root itself is made too
  ASSERT_TRUE(st.WriteAt("0/c/1/2/3", 0, "hello world").ok());
  ASSERT_TRUE(st.WriteAt("0/c/1/2/3", 11, "!!").ok());
  EXPECT_EQ(*st.Get("0/c/1/2/3", 100), "hello world!!");
  EXPECT_EQ(*st.Size("0/c/1/2/3"), 13u);
  auto tail = st.ReadTail("0/c/1/2/3", 4, UINT64_MAX);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->bytes, "ld!!");
  EXPECT_EQ(tail->size, 13u);
  tail = st.ReadTail("0/c/1/2/3", 100, 5);  // as if the file ended at 5
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->bytes, "hello");
  EXPECT_EQ(tail->size, 5u);
  std::map<size_t, std::string> got;
  ASSERT_TRUE(st.ReadRanges("0/c/1/2/3", {{6, 5}, {0, 5}},
                            [&](size_t i, std::string_view b) {
                              got[i] = std::string(b);
                              return Status::Ok();
                            })
                  .ok());
  EXPECT_EQ(got[0], "world");
  EXPECT_EQ(got[1], "hello");
  EXPECT_EQ(*st.List("0/c/1/2"), std::vector<std::string>{"3"});
  EXPECT_EQ(*st.List("0/c"), std::vector<std::string>{"1"});
  EXPECT_TRUE(st.List("0/nothing")->empty());
  EXPECT_TRUE(st.Sync({"0/c/1/2/3"}, nullptr).ok());
}

TEST_F(LocalStorageTest, MissingObjectsAreNotFoundAndReadsPastTheEndAreCorruption) {
  LocalStorage st(root_, false);
  EXPECT_EQ(st.Get("zarr.json", 10).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(st.Size("a/b/c").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(st.ReadTail("a/b", 4, UINT64_MAX).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(*st.Identity("a/b"), 0u);
  ASSERT_TRUE(st.WriteAt("f", 0, "12345").ok());
  Status s = st.ReadRanges("f", {{3, 10}}, [](size_t, std::string_view) { return Status::Ok(); });
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(root_ + "/f"), std::string::npos) << s.ToString();
}

TEST_F(LocalStorageTest, GetRefusesAnObjectLargerThanAllowedBeforeReadingIt) {
  LocalStorage st(root_, false);
  ASSERT_TRUE(st.WriteAt("big", 0, std::string(1000, 'x')).ok());
  auto r = st.Get("big", 999);
  ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("1000 bytes"), std::string::npos) << r.status().ToString();
}

TEST_F(LocalStorageTest, ReplaceIsAllOrNothingAndReportsTheNewIdentity) {
  LocalStorage st(root_, false);
  ASSERT_TRUE(st.WriteAt("d/obj", 0, "old").ok());
  // The hook fails: the old object stays, no temporary file is left.
  Status s = st.Replace("d/obj", "new", [](uint64_t) { return Status::IOError("journal", EIO); });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(ReadFile("d/obj"), "old");
  EXPECT_NE(::access((root_ + "/d/obj.tmp").c_str(), F_OK), 0);
  uint64_t seen = 0;
  ASSERT_TRUE(st.Replace("d/obj", "newer", [&](uint64_t id) {
                  seen = id;
                  return Status::Ok();
                }).ok());
  EXPECT_EQ(ReadFile("d/obj"), "newer");
  EXPECT_NE(seen, 0u);
  EXPECT_EQ(*st.Identity("d/obj"), seen);
  ASSERT_TRUE(st.Truncate("d/obj", 2).ok());
  EXPECT_EQ(ReadFile("d/obj"), "ne");
  ASSERT_TRUE(st.Remove("d/obj").ok());
  ASSERT_TRUE(st.Remove("d/obj").ok());  // already gone: fine
  EXPECT_EQ(*st.Identity("d/obj"), 0u);
}

TEST_F(LocalStorageTest, ReadOnlyRefusesEveryWrite) {
  {
    LocalStorage w(root_, false);
    ASSERT_TRUE(w.WriteAt("x", 0, "1").ok());
  }
  LocalStorage st(root_, true);
  EXPECT_EQ(st.WriteAt("x", 0, "2").code(), Status::Code::kUnsupported);
  EXPECT_EQ(st.Truncate("x", 0).code(), Status::Code::kUnsupported);
  EXPECT_EQ(st.Replace("x", "3", nullptr).code(), Status::Code::kUnsupported);
  EXPECT_EQ(st.Remove("x").code(), Status::Code::kUnsupported);
  EXPECT_EQ(ReadFile("x"), "1");
}

TEST_F(LocalStorageTest, SymlinksInsideTheStoreAreRefusedNeverFollowed) {
  const std::string outside = root_ + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  { std::ofstream(outside + "/victim") << "victim"; }
  const std::string store = root_ + "/store";
  ASSERT_EQ(::mkdir(store.c_str(), 0755), 0);
  ASSERT_EQ(::symlink((outside + "/victim").c_str(), (store + "/file").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (store + "/dir").c_str()), 0);
  LocalStorage st(store, false);
  EXPECT_EQ(st.Get("file", 100).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(st.WriteAt("file", 0, "x").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(st.WriteAt("dir/victim", 0, "x").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(st.Replace("dir/victim", "x", nullptr).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(*st.Identity("file"), 0u);  // not a regular file
  EXPECT_EQ(ReadFile("outside/victim"), "victim");
}

TEST_F(LocalStorageTest, SyncOfManyObjectsRunsOnThePool) {
  LocalStorage st(root_, false);
  std::vector<std::string> keys;
  for (int i = 0; i < 16; ++i) {
    keys.push_back("c/" + std::to_string(i % 4) + "/" + std::to_string(i));
    ASSERT_TRUE(st.WriteAt(keys.back(), 0, "x").ok());
  }
  ThreadPool io(4);
  EXPECT_TRUE(st.Sync(keys, &io).ok());
  keys.push_back("c/missing");
  EXPECT_FALSE(st.Sync(keys, &io).ok());
}

}  // namespace
}  // namespace brickfs

namespace brickfs {
namespace {

// Volume::RemoveLevelsFromLocked removes STORE/L with
// std::filesystem::remove_all, behind the (now store-wide) LocalStorage's
// back; its made_dirs_ still lists STORE/L/c/0/0, so the next WriteAt below
// it does not make the directories again.
TEST_F(LocalStorageTest, WriteAtRemakesADirectoryRemovedBehindItsBack) {
  LocalStorage st(root_, false);
  ASSERT_TRUE(st.WriteAt("1/c/0/0/0", 0, "x").ok());
  ASSERT_TRUE(st.Sync({"1/c/0/0/0"}, nullptr).ok());
  ASSERT_EQ(std::system(("rm -rf '" + root_ + "/1'").c_str()), 0);
  Status s = st.WriteAt("1/c/0/0/0", 0, "y");
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// one unsynced directory that is gone fails the Sync of an unrelated
// key, and every directory after it in the set is dropped without an fsync:
// the next Sync succeeds without having synced 2/c/0/0.
TEST_F(LocalStorageTest, AFailedDirectorySyncKeepsTheOthersForTheNextSync) {
  LocalStorage st(root_, false);
  ASSERT_TRUE(st.WriteAt("0/c/0/0/0", 0, "x").ok());
  ASSERT_TRUE(st.WriteAt("1/c/0/0/0", 0, "x").ok());
  ASSERT_TRUE(st.WriteAt("2/c/0/0/0", 0, "x").ok());
  ASSERT_EQ(std::system(("rm -rf '" + root_ + "/1'").c_str()), 0);
  Status s = st.Sync({"0/c/0/0/0"}, nullptr);
  EXPECT_TRUE(s.ok()) << "unrelated key: " << s.ToString();
}

}  // namespace
}  // namespace brickfs
