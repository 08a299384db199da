// Tests for Store: creating and opening the Zarr group, the writer lock, the
// metadata documents it reads and writes, and a private state directory
// (.brickfs) that another user could have planted links in.
#include "store/store.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "brickfs/version.h"
#include "format/json.h"
#include "store/journal.h"

namespace brickfs {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

VolumeMeta SampleMeta() {
  VolumeMeta m;
  m.geo.shape = {13, 19, 23};
  m.geo.block = {4, 8, 8};
  m.geo.brick = {8, 16, 16};
  m.geo.dtype = DType::kUint16;
  m.fixed_shape = true;
  m.present = {{0, 4}};
  return m;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_store_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    path_ = root_ + "/brain.zarr";
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  static StoreOpenOptions Writer(bool create = false) {
    StoreOpenOptions o;
    o.create_if_missing = create;
    return o;
  }
  std::string root_, path_;
};

TEST_F(StoreTest, OpenWithCreateIfMissingMakesAnOmeZarrGroup) {
  auto s = Store::Open(path_, Writer(true));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->path(), path_);
  EXPECT_FALSE((*s)->read_only());
  EXPECT_FALSE((*s)->meta().has_value()) << "no array before the first slice";
  EXPECT_EQ((*s)->ArrayDir(0), path_ + "/0");
  EXPECT_TRUE(IsDir(path_ + "/.brickfs"));
  std::string group = ReadAll(path_ + "/zarr.json");
  EXPECT_TRUE(CheckGroupJson(group, "g").ok()) << group;
  auto doc = ParseJson(group);
  ASSERT_TRUE(doc.ok());
  const Json* ome = JsonField(doc->at("attributes"), "ome");
  ASSERT_NE(ome, nullptr);
  EXPECT_EQ(ome->at("version").get<std::string>(), "0.5");
  // The group is named after the store without its .zarr suffix.
  EXPECT_EQ((ome->at("multiscales"))[0].at("name").get<std::string>(), "brain");
}

TEST_F(StoreTest, OpenMissingWithoutCreateIsNotFound) {
  auto s = Store::Open(path_, Writer(false));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kNotFound);
  EXPECT_NE(s.status().message().find(path_), std::string::npos);
  EXPECT_FALSE(IsDir(path_)) << "a failed open must not create the store";
}

TEST_F(StoreTest, ReadOnlyOpenNeverCreates) {
  StoreOpenOptions o;
  o.create_if_missing = true;
  o.read_only = true;
  auto s = Store::Open(path_, o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(IsDir(path_));
}

TEST_F(StoreTest, SecondWriterIsBusyUntilTheFirstCloses) {
  auto first = Store::Open(path_, Writer(true));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // The lock file names the holder.
  std::string pid = ReadAll(path_ + "/.brickfs/lock");
  EXPECT_EQ(pid, std::to_string(::getpid()) + "\n");

  auto second = Store::Open(path_, Writer(false));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);
  EXPECT_NE(second.status().message().find(std::to_string(::getpid())), std::string::npos)
      << second.status().message();

  // A read-only open (shared lock) conflicts with the writer too...
  StoreOpenOptions ro;
  ro.read_only = true;
  EXPECT_EQ(Store::Open(path_, ro).status().code(), Status::Code::kBusy);
  // ...but inspection without the lock works.
  StoreOpenOptions peek;
  peek.read_only = true;
  peek.take_lock = false;
  EXPECT_TRUE(Store::Open(path_, peek).ok());

  first->reset();  // releases the lock
  auto third = Store::Open(path_, Writer(false));
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST_F(StoreTest, ReadersShareTheLockButExcludeAWriter) {
  ASSERT_TRUE(Store::Open(path_, Writer(true)).ok());
  StoreOpenOptions ro;
  ro.read_only = true;
  auto r1 = Store::Open(path_, ro);
  auto r2 = Store::Open(path_, ro);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_TRUE((*r1)->read_only());
  EXPECT_EQ(Store::Open(path_, Writer(false)).status().code(), Status::Code::kBusy);
}

TEST_F(StoreTest, PlainFileIsInvalidArgument) {
  WriteAll(path_, "not a store");
  auto s = Store::Open(path_, Writer(true));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find(path_), std::string::npos);
}

TEST_F(StoreTest, DirectoryWithoutZarrJsonIsInvalidArgument) {
  ASSERT_EQ(::mkdir(path_.c_str(), 0755), 0);
  auto s = Store::Open(path_, Writer(true));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(StoreTest, ArrayInsteadOfGroupIsRefused) {
  ASSERT_EQ(::mkdir(path_.c_str(), 0755), 0);
  WriteAll(path_ + "/zarr.json", SampleMeta().ArrayJson());
  auto s = Store::Open(path_, Writer(false));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kUnsupported);
}

TEST_F(StoreTest, CreateWritesGroupAndArrayThatOpenReadsBack) {
  ASSERT_TRUE(Store::Create(path_, SampleMeta()).ok());
  EXPECT_TRUE(IsDir(path_ + "/.brickfs"));
  auto s = Store::Open(path_, Writer(false));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->meta().has_value());
  const VolumeMeta& m = *(*s)->meta();
  EXPECT_EQ(m.geo.shape, (Shape3{13, 19, 23}));
  EXPECT_EQ(m.geo.block, (Shape3{4, 8, 8}));
  EXPECT_EQ(m.geo.brick, (Shape3{8, 16, 16}));
  EXPECT_TRUE(m.fixed_shape);
  EXPECT_EQ(m.present, (ZRanges{{0, 4}}));
  EXPECT_EQ(m.format_version, uint64_t{BRICKFS_FORMAT_VERSION});
}

TEST_F(StoreTest, CreateRefusesAnExistingPath) {
  ASSERT_EQ(::mkdir(path_.c_str(), 0755), 0);
  Status s = Store::Create(path_, SampleMeta());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find(path_), std::string::npos);
  const std::string file = root_ + "/file";
  WriteAll(file, "x");
  EXPECT_EQ(Store::Create(file, SampleMeta()).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ReadAll(file), "x");
}

TEST_F(StoreTest, CreateRefusesInvalidGeometry) {
  VolumeMeta m = SampleMeta();
  m.geo.brick = {8, 16, 12};
  EXPECT_EQ(Store::Create(path_, m).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(IsDir(path_));
}

TEST_F(StoreTest, WriteMetaReplacesArrayDocument) {
  auto s = Store::Open(path_, Writer(true));
  ASSERT_TRUE(s.ok());
  VolumeMeta m = SampleMeta();
  m.finalized = true;
  ASSERT_TRUE((*s)->WriteMeta(m).ok());
  m.present = {{0, 12}};
  ASSERT_TRUE((*s)->WriteMeta(m).ok());
  s->reset();
  auto again = Store::Open(path_, Writer(false));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE((*again)->meta().has_value());
  EXPECT_TRUE((*again)->meta()->finalized);
  EXPECT_EQ((*again)->meta()->present, (ZRanges{{0, 12}}));
  EXPECT_TRUE(CheckGroupJson(ReadAll(path_ + "/zarr.json"), "g").ok());
}

TEST_F(StoreTest, ReadOnlyStoreRefusesWriteMeta) {
  ASSERT_TRUE(Store::Create(path_, SampleMeta()).ok());
  StoreOpenOptions ro;
  ro.read_only = true;
  auto s = Store::Open(path_, ro);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::string before = ReadAll(path_ + "/0/zarr.json");
  EXPECT_EQ((*s)->WriteMeta(SampleMeta()).code(), Status::Code::kUnsupported);
  EXPECT_EQ(ReadAll(path_ + "/0/zarr.json"), before);
}

TEST_F(StoreTest, CorruptArrayMetadataIsCorruption) {
  ASSERT_TRUE(Store::Create(path_, SampleMeta()).ok());
  WriteAll(path_ + "/0/zarr.json", "{\"zarr_format\": 3, \"node_type\": \"arr");
  auto s = Store::Open(path_, Writer(false));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kCorruption);
  EXPECT_NE(s.status().message().find(path_ + "/0/zarr.json"), std::string::npos)
      << s.status().message();
}

TEST_F(StoreTest, NewerFormatIsUnsupported) {
  ASSERT_TRUE(Store::Create(path_, SampleMeta()).ok());
  std::string doc = ReadAll(path_ + "/0/zarr.json");
  const std::string key = "\"format_version\": " + std::to_string(BRICKFS_FORMAT_VERSION);
  size_t at = doc.find(key);
  ASSERT_NE(at, std::string::npos) << doc;
  doc.replace(at, key.size(), "\"format_version\": 99");
  WriteAll(path_ + "/0/zarr.json", doc);
  EXPECT_EQ(Store::Open(path_, Writer(false)).status().code(), Status::Code::kUnsupported);
}

// What another Zarr tool leaves behind when it rewrites (or loses) the
// group document of a brickfs store: zarr-python's v3 API writing a group
// without our attributes, the v3 draft's entry point of zarr-python 2.11-2.13,
// bytes that are not JSON, no file at all. The arrays are intact, so the open
// names the file and the reason and advises fsck --repair.
TEST_F(StoreTest, GroupOverwrittenByAnotherToolIsRefusedWithAdviceToRepair) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"attributes.ome.multiscales", R"({"zarr_format": 3, "node_type": "group", "attributes": {}})"},
      {"zarr_format", R"({"zarr_format": "https://purl.org/zarr/spec/protocol/core/3.0",
                          "metadata_encoding": "https://purl.org/zarr/spec/protocol/core/3.0",
                          "metadata_key_suffix": ".json", "extensions": []})"},
      {"node_type", R"({"zarr_format": 3, "node_type": "array"})"},
      {"JSON", "\x89garbage{{"},
      {"missing", ""},
  };
  ASSERT_TRUE(Store::Create(path_, SampleMeta()).ok());
  for (const auto& [why, doc] : cases) {
    SCOPED_TRACE(why);
    if (doc.empty()) {
      ASSERT_EQ(::unlink((path_ + "/zarr.json").c_str()), 0);
    } else {
      WriteAll(path_ + "/zarr.json", doc);
    }
    for (bool read_only : {true, false}) {
      StoreOpenOptions so;
      so.read_only = read_only;
      auto s = Store::Open(path_, so);
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.status().code(), Status::Code::kCorruption) << s.status().ToString();
      const std::string& m = s.status().message();
      EXPECT_NE(m.find(path_ + "/zarr.json"), std::string::npos) << m;
      EXPECT_NE(m.find(why), std::string::npos) << m;
      EXPECT_NE(m.find("brickfs fsck --repair " + path_), std::string::npos) << m;
    }
    if (!doc.empty()) {
      EXPECT_EQ(ReadAll(path_ + "/zarr.json"), doc) << "the open changed it";
    }
  }
}

TEST_F(StoreTest, ZarrGroupOfAnotherToolWithoutArrayZeroIsNotABrickfsStore) {
  ASSERT_EQ(::mkdir(path_.c_str(), 0755), 0);
  const std::string doc = R"({"zarr_format": 3, "node_type": "group", "attributes": {"x": 1}})";
  WriteAll(path_ + "/zarr.json", doc);
  auto s = Store::Open(path_, Writer(/*create=*/true));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument) << s.status().ToString();
  EXPECT_NE(s.status().message().find("not a brickfs store"), std::string::npos)
      << s.status().message();
  EXPECT_EQ(ReadAll(path_ + "/zarr.json"), doc);
  EXPECT_FALSE(IsDir(path_ + "/0"));
}

TEST_F(StoreTest, MaintenanceOpenOfAMountedStoreSaysUnmountOnceAndNamesThePid) {
  auto daemon = Store::Open(path_, Writer(true));
  ASSERT_TRUE(daemon.ok());
  auto s = Store::OpenForMaintenance(path_, /*read_only=*/true);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kBusy);
  const std::string& m = s.status().message();
  EXPECT_NE(m.find("in use by a brickfs daemon (pid " + std::to_string(::getpid()) + ")"),
            std::string::npos)
      << m;
  const size_t first = m.find("unmount it first");
  ASSERT_NE(first, std::string::npos) << m;
  EXPECT_EQ(m.find("unmount it first", first + 1), std::string::npos) << "said twice: " << m;
}

// --- STORE/.brickfs planted by someone else ----------------------------------

class PrivateStateTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_TRUE(Store::Create(path_, SampleMeta()).ok());
    victim_ = root_ + "/victim";
    WriteAll(victim_, kPrecious);
  }
  void ExpectVictimIntact() { EXPECT_EQ(ReadAll(victim_), kPrecious); }
  static constexpr const char* kPrecious = "root:secret:19000:0:99999:7:::\n";
  std::string victim_;
};

TEST_F(PrivateStateTest, SymlinkedLockIsRefusedAndItsTargetUntouched) {
  ASSERT_EQ(::symlink(victim_.c_str(), (path_ + "/.brickfs/lock").c_str()), 0);
  auto s = Store::Open(path_, Writer());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(path_ + "/.brickfs/lock"), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("symbolic link"), std::string::npos)
      << s.status().message();
  StoreOpenOptions ro;
  ro.read_only = true;
  EXPECT_FALSE(Store::Open(path_, ro).ok()) << "a read-only open followed the link";
  ExpectVictimIntact();
}

TEST_F(PrivateStateTest, HardLinkedLockIsRefusedWithoutTruncation) {
  ASSERT_EQ(::link(victim_.c_str(), (path_ + "/.brickfs/lock").c_str()), 0);
  auto s = Store::Open(path_, Writer());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("hard link"), std::string::npos) << s.status().message();
  ExpectVictimIntact();
}

TEST_F(PrivateStateTest, SymlinkedPrivateDirectoryIsRefused) {
  const std::string elsewhere = root_ + "/elsewhere";
  ASSERT_EQ(::mkdir(elsewhere.c_str(), 0755), 0);
  ASSERT_EQ(std::system(("rm -rf '" + path_ + "/.brickfs'").c_str()), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), (path_ + "/.brickfs").c_str()), 0);
  auto s = Store::Open(path_, Writer());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(path_ + "/.brickfs"), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("symbolic link"), std::string::npos)
      << s.status().message();
  EXPECT_EQ(::rmdir(elsewhere.c_str()), 0) << "files were created through the link";
}

TEST_F(PrivateStateTest, PrivateDirectoryOfAnotherUserIsRefusedForWritingOnly) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  ASSERT_EQ(std::system(("chown -R 4242:4242 '" + path_ + "'").c_str()), 0);
  auto s = Store::Open(path_, Writer());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("owned by uid 4242"), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find(path_ + "/.brickfs"), std::string::npos)
      << s.status().message();
  StoreOpenOptions ro;
  ro.read_only = true;
  auto r = Store::Open(path_, ro);
  EXPECT_TRUE(r.ok()) << r.status().ToString();  // reading someone's store is fine
}

TEST_F(PrivateStateTest, SymlinkedOrForeignJournalIsRefused) {
  const std::string journal = Journal::PathFor(path_);
  ASSERT_EQ(::symlink(victim_.c_str(), journal.c_str()), 0);
  auto j = Journal::Open(path_, 0);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find(journal), std::string::npos) << j.status().message();
  EXPECT_NE(j.status().message().find("symbolic link"), std::string::npos)
      << j.status().message();
  EXPECT_FALSE(ReadJournal(path_).ok()) << "replay read through the link";
  ExpectVictimIntact();
  if (::geteuid() == 0) {
    ASSERT_EQ(::unlink(journal.c_str()), 0);
    WriteAll(journal, "");
    ASSERT_EQ(::chown(journal.c_str(), 4242, 4242), 0);
    auto k = Journal::Open(path_, 0);
    ASSERT_FALSE(k.ok());
    EXPECT_NE(k.status().message().find("owned by uid 4242"), std::string::npos)
        << k.status().message();
  }
}

TEST_F(PrivateStateTest, SymlinkedArrayDirectoryIsNotWrittenThrough) {
  const std::string elsewhere = root_ + "/elsewhere";
  ASSERT_EQ(::mkdir(elsewhere.c_str(), 0755), 0);
  ASSERT_EQ(std::system(("rm -rf '" + path_ + "/0'").c_str()), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), (path_ + "/0").c_str()), 0);
  auto store = Store::Open(path_, Writer());
  // Opening may fail on the missing array document; writing metadata must.
  if (store.ok()) {
    Status s = (*store)->WriteMeta(SampleMeta());
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
  }
  EXPECT_EQ(::rmdir(elsewhere.c_str()), 0) << "files were created through the link";
}

}  // namespace
}  // namespace brickfs
