#include "remote/disk_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "common/file_util.h"

namespace brickfs {
namespace {

const Validator kV1{"\"v1\"", "", 1000};
const Validator kV2{"\"v2\"", "", 1000};

std::string Payload(const std::string& url, const std::string& name, size_t n) {
  std::string s(n, '\0');
  uint64_t x = std::hash<std::string>()(url + "|" + name);
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s[i] = static_cast<char>(x >> 56);
  }
  return s;
}

class DiskCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/brickfs-cache-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/cache";
  }
  void TearDown() override { std::system(("rm -rf '" + base_ + "'").c_str()); }
  std::unique_ptr<DiskCache> Open(uint64_t max_bytes = 1 << 30) {
    auto c = DiskCache::Open(DiskCache::Options{dir_, max_bytes});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // Every regular file below the objects directory.
  std::vector<std::string> Files() {
    std::vector<std::string> out;
    const std::string cmd = "find '" + dir_ + "/v1/objects' -type f > '" + base_ + "/list'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::ifstream in(base_ + "/list");
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  std::string EntryFile(const std::string& name) {
    for (const std::string& f : Files()) {
      if (f.size() > name.size() && f.compare(f.size() - name.size() - 1, std::string::npos, "/" + name) == 0) return f;
    }
    return "";
  }
  std::string base_, dir_;
};

TEST_F(DiskCacheTest, StoresAndReturnsBytesExactly) {
  auto c = Open();
  const std::string url = "https://h/v.zarr/0/c/0/0/0";
  const std::string bytes = Payload(url, "r0-5000", 5000);
  ASSERT_TRUE(c->Insert(url, DiskCache::RangeEntry(0, 5000), kV1, bytes).ok());
  auto hit = c->Lookup(url, DiskCache::RangeEntry(0, 5000), kV1);
  ASSERT_TRUE(hit);
  EXPECT_EQ(*hit, bytes);
  EXPECT_FALSE(c->Lookup(url, DiskCache::RangeEntry(0, 4999), kV1));
  EXPECT_FALSE(c->Lookup(url + "x", DiskCache::RangeEntry(0, 5000), kV1));
  EXPECT_TRUE(c->Contains(url, DiskCache::RangeEntry(0, 5000), kV1));
  // Empty payloads are entries too (an empty object).
  ASSERT_TRUE(c->Insert(url, DiskCache::WholeEntry(), kV1, "").ok());
  auto empty = c->Lookup(url, DiskCache::WholeEntry(), kV1);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "");
}

TEST_F(DiskCacheTest, RangesArePiecedTogetherFromEntriesThatCoverThem) {
  auto c = Open();
  const std::string url = "https://h/v.zarr/0/c/0/0/1";
  const std::string object = Payload(url, "object", 30000);
  // Cached as fetched: [1000, 9000) in one piece, [9000, 12000) and
  // [12000, 20000) as two blocks.
  for (const auto& [o, n] : std::vector<std::pair<uint64_t, uint64_t>>{{1000, 8000}, {9000, 3000}, {12000, 8000}}) {
    ASSERT_TRUE(c->Insert(url, DiskCache::RangeEntry(o, n), kV1, object.substr(o, n)).ok());
  }
  const auto expect = [&](uint64_t o, uint64_t n) {
    SCOPED_TRACE(std::to_string(o) + "+" + std::to_string(n));
    auto hit = c->LookupRange(url, o, n, kV1);
    ASSERT_TRUE(hit);
    EXPECT_EQ(*hit, object.substr(o, n));
    EXPECT_TRUE(c->ContainsRange(url, o, n, kV1));
  };
  expect(9000, 3000);   // the entry itself
  expect(2000, 1000);   // inside one entry
  expect(9000, 11000);  // two blocks read as one run
  expect(1000, 19000);  // everything
  expect(8500, 4000);   // across three entries
  EXPECT_FALSE(c->LookupRange(url, 500, 1000, kV1));    // starts before the first
  EXPECT_FALSE(c->LookupRange(url, 19000, 2000, kV1));  // ends past the last
  EXPECT_FALSE(c->ContainsRange(url, 19000, 2000, kV1));
  EXPECT_FALSE(c->LookupRange(url, 2000, 1000, kV2));   // another version
  // A bad piece: the range is a miss, and DropRange removes what it used.
  ASSERT_TRUE(c->LookupRange(url, 9000, 11000, kV1));
  c->DropRange(url, 9000, 11000);
  EXPECT_FALSE(c->LookupRange(url, 9000, 3000, kV1));
  EXPECT_FALSE(c->LookupRange(url, 12000, 8000, kV1));
  // Names that only look like range entries are not used.
  ASSERT_TRUE(c->Insert(url, "r99999999999999999999-1", kV1, "x").ok());
  ASSERT_TRUE(c->Insert(url, "r5-", kV1, "x").ok());
  EXPECT_FALSE(c->LookupRange(url, 9000, 3000, kV1));
}

TEST_F(DiskCacheTest, SurvivesReopening) {
  const std::string url = "https://h/v.zarr/zarr.json";
  {
    auto c = Open();
    ASSERT_TRUE(c->RecordObject(url, {"https://h/v.zarr", kV1, false, 7}).ok());
    ASSERT_TRUE(c->Insert(url, DiskCache::WholeEntry(), kV1, "{}").ok());
  }
  auto c = Open();
  auto rec = c->LookupObject(url);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->base, "https://h/v.zarr");
  EXPECT_EQ(rec->validator, kV1);
  EXPECT_EQ(rec->checked_at, 7);
  EXPECT_FALSE(rec->absent);
  EXPECT_EQ(*c->Lookup(url, DiskCache::WholeEntry(), kV1), "{}");
}

TEST_F(DiskCacheTest, AnEntryOfAnotherVersionIsStaleAndRemoved) {
  auto c = Open();
  const std::string url = "https://h/v.zarr/0/c/0/0/0";
  ASSERT_TRUE(c->Insert(url, "t1028", kV1, "old tail").ok());
  EXPECT_FALSE(c->Lookup(url, "t1028", kV2));
  EXPECT_EQ(EntryFile("t1028"), "") << "the stale entry stays on disk";
  EXPECT_FALSE(c->Lookup(url, "t1028", kV1));
  EXPECT_GE(c->stats().dropped_bad, 1u);
}

TEST_F(DiskCacheTest, RecordingAChangedValidatorDropsEverythingOfTheObject) {
  auto c = Open();
  const std::string url = "https://h/v.zarr/0/c/0/0/0", other = "https://h/v.zarr/0/c/0/0/1";
  ASSERT_TRUE(c->RecordObject(url, {"b", kV1, false, 0}).ok());
  ASSERT_TRUE(c->RecordObject(other, {"b", kV1, false, 0}).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c->Insert(url, DiskCache::RangeEntry(i * 10, 10), kV1, "0123456789").ok());
  }
  ASSERT_TRUE(c->Insert(other, DiskCache::RangeEntry(0, 10), kV1, "0123456789").ok());
  bool invalidated = true;
  ASSERT_TRUE(c->RecordObject(url, {"b", kV1, false, 5}, &invalidated).ok());
  EXPECT_FALSE(invalidated) << "same version";
  EXPECT_TRUE(c->Lookup(url, DiskCache::RangeEntry(0, 10), kV1));
  ASSERT_TRUE(c->RecordObject(url, {"b", kV2, false, 6}, &invalidated).ok());
  EXPECT_TRUE(invalidated);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(c->Contains(url, DiskCache::RangeEntry(i * 10, 10), kV1));
  EXPECT_TRUE(c->Lookup(other, DiskCache::RangeEntry(0, 10), kV1)) << "another object was touched";
  // Present -> absent (deleted on the server) invalidates too.
  ASSERT_TRUE(c->Insert(url, DiskCache::RangeEntry(0, 10), kV2, "0123456789").ok());
  ASSERT_TRUE(c->RecordObject(url, {"b", Validator{}, true, 7}, &invalidated).ok());
  EXPECT_TRUE(invalidated);
  EXPECT_FALSE(c->Contains(url, DiskCache::RangeEntry(0, 10), kV2));
  EXPECT_TRUE(c->LookupObject(url)->absent);
}

// Every way a crash, a full disk or another program can leave an entry file:
// each must be a miss (and be removed), never wrong bytes.
TEST_F(DiskCacheTest, TornOrCorruptEntriesAreMissesNeverBytes) {
  const std::string url = "https://h/v.zarr/0/c/1/2/3";
  const std::string name = DiskCache::RangeEntry(4096, 3000);
  const std::string bytes = Payload(url, name, 3000);
  struct Damage {
    const char* what;
    std::function<void(const std::string& path)> apply;
  };
  const auto rewrite = [](const std::string& path, const std::function<void(std::string*)>& f) {
    auto content = ReadFileToString(path);
    ASSERT_TRUE(content.ok());
    std::string s = *content;
    f(&s);
    ::unlink(path.c_str());
    std::ofstream(path, std::ios::binary) << s;
  };
  const std::vector<Damage> damages = {
      {"cut in the payload", [&](const std::string& p) { rewrite(p, [](std::string* s) { s->resize(s->size() - 100); }); }},
      {"cut in the header", [&](const std::string& p) { rewrite(p, [](std::string* s) { s->resize(30); }); }},
      {"empty", [&](const std::string& p) { rewrite(p, [](std::string* s) { s->clear(); }); }},
      {"zeroed tail (lost pages)", [&](const std::string& p) { rewrite(p, [](std::string* s) { std::fill(s->end() - 512, s->end(), '\0'); }); }},
      {"flipped payload bit", [&](const std::string& p) { rewrite(p, [](std::string* s) { (*s)[s->size() - 7] ^= 4; }); }},
      {"flipped header bit", [&](const std::string& p) { rewrite(p, [](std::string* s) { (*s)[30] ^= 1; }); }},
      {"appended bytes", [&](const std::string& p) { rewrite(p, [](std::string* s) { *s += "xx"; }); }},
      {"huge payload length", [&](const std::string& p) { rewrite(p, [](std::string* s) { for (int i = 8; i < 16; ++i) (*s)[i] = '\x7f'; }); }},
      {"huge description length", [&](const std::string& p) { rewrite(p, [](std::string* s) { for (int i = 20; i < 24; ++i) (*s)[i] = '\xff'; }); }},
      {"garbage", [&](const std::string& p) { rewrite(p, [](std::string* s) { for (char& ch : *s) ch = 'G'; }); }},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    auto c = Open();
    ASSERT_TRUE(c->Insert(url, name, kV1, bytes).ok());
    const std::string path = EntryFile(name);
    ASSERT_NE(path, "");
    d.apply(path);
    EXPECT_FALSE(c->Lookup(url, name, kV1));
    EXPECT_FALSE(c->Contains(url, name, kV1));
    struct stat st;
    EXPECT_NE(::lstat(path.c_str(), &st), 0) << "the bad file is still there";
  }
  // A damaged object record is no record.
  auto c = Open();
  ASSERT_TRUE(c->RecordObject(url, {"b", kV1, false, 1}).ok());
  const std::string meta = EntryFile("meta");
  rewrite(meta, [](std::string* s) { (*s)[s->size() - 3] ^= 1; });
  EXPECT_FALSE(c->LookupObject(url));
}

TEST_F(DiskCacheTest, ASymlinkOrAFileInPlaceOfAnEntryIsNotFollowed) {
  auto c = Open();
  const std::string url = "https://h/v.zarr/0/c/0/0/0";
  ASSERT_TRUE(c->Insert(url, "w", kV1, "real").ok());
  const std::string path = EntryFile("w");
  const std::string elsewhere = base_ + "/elsewhere";
  ASSERT_TRUE(c->Insert(url, "t4", kV1, "tail").ok());
  ASSERT_EQ(::rename(EntryFile("t4").c_str(), elsewhere.c_str()), 0);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), path.c_str()), 0);
  EXPECT_FALSE(c->Lookup(url, "w", kV1));
}

TEST_F(DiskCacheTest, TempFilesOfDeadWritersAreRemovedOnOpen) {
  { auto c = Open(); }
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  const std::string dead = dir_ + "/v1/tmp/" + std::to_string(child) + ".3";
  const std::string alive = dir_ + "/v1/tmp/" + std::to_string(::getppid()) + ".4";
  const std::string odd = dir_ + "/v1/tmp/not-a-pid";
  for (const auto& p : {dead, alive, odd}) std::ofstream(p) << "half an entry";
  auto c = Open();
  struct stat st;
  EXPECT_NE(::lstat(dead.c_str(), &st), 0) << "a dead writer's temp file stays";
  EXPECT_NE(::lstat(odd.c_str(), &st), 0);
  EXPECT_EQ(::lstat(alive.c_str(), &st), 0) << "a live writer's temp file was removed";
}

TEST_F(DiskCacheTest, EvictsLeastRecentlyUsedToStayUnderTheBound) {
  // Entries of ~10 KiB in a 100 KiB cache.
  auto c = Open(100 << 10);
  const std::string url = "https://h/v.zarr/0/c/0/0/0";
  std::vector<std::string> names;
  for (int i = 0; i < 8; ++i) {
    names.push_back(DiskCache::RangeEntry(i * 10000, 10000));
    ASSERT_TRUE(c->Insert(url, names.back(), kV1, Payload(url, names.back(), 10000)).ok());
  }
  // Entry 0 used recently; 1 is now the least recently used.
  ASSERT_TRUE(c->Lookup(url, names[0], kV1));
  for (int i = 8; i < 12; ++i) {
    names.push_back(DiskCache::RangeEntry(i * 10000, 10000));
    ASSERT_TRUE(c->Insert(url, names.back(), kV1, Payload(url, names.back(), 10000)).ok());
  }
  auto usage = DiskCache::Inspect(dir_);
  ASSERT_TRUE(usage.ok());
  EXPECT_LE(usage->bytes, 100u << 10);
  EXPECT_GT(c->stats().evicted_files, 0u);
  EXPECT_TRUE(c->Contains(url, names[0], kV1)) << "the recently used entry was evicted";
  EXPECT_FALSE(c->Contains(url, names[1], kV1)) << "the least recently used entry was kept";
  EXPECT_TRUE(c->Contains(url, names[11], kV1));
  // A smaller bound on the next open evicts at once.
  c.reset();
  c = Open(30 << 10);
  usage = DiskCache::Inspect(dir_);
  EXPECT_LE(usage->bytes, 30u << 10);
  EXPECT_TRUE(c->Contains(url, names[11], kV1)) << "the newest entry was evicted";
}

TEST_F(DiskCacheTest, EntriesLargerThanAQuarterOfTheCacheAreNotKept) {
  auto c = Open(40 << 10);
  ASSERT_TRUE(c->Insert("https://h/x", "w", kV1, std::string(11 << 10, 'x')).ok());
  EXPECT_FALSE(c->Contains("https://h/x", "w", kV1));
  ASSERT_TRUE(c->Insert("https://h/y", "w", kV1, std::string(9 << 10, 'y')).ok());
  EXPECT_TRUE(c->Contains("https://h/y", "w", kV1));
}

TEST_F(DiskCacheTest, ATornUsageRecordIsRebuiltByAScan) {
  {
    auto c = Open();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Insert("https://h/x", DiskCache::TailEntry(i + 1), kV1, "abc").ok());
  }
  {
    std::ofstream(dir_ + "/v1/usage", std::ios::binary | std::ios::trunc) << "torn";
  }
  // The usage is right again: a bound just under the real size evicts.
  auto usage = DiskCache::Inspect(dir_);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->files, 3u);
  auto c = Open(usage->bytes - 1);
  EXPECT_LT(DiskCache::Inspect(dir_)->files, 3u);
}

TEST_F(DiskCacheTest, InspectAndClearWorkPerStore) {
  auto c = Open();
  const std::string a = "https://h/a.zarr", b = "https://h/a.zarr2";
  for (const auto& base : {a, b}) {
    for (const char* key : {"/zarr.json", "/0/zarr.json", "/0/c/0/0/0"}) {
      const std::string url = base + key;
      ASSERT_TRUE(c->RecordObject(url, {base, kV1, false, 0}).ok());
      ASSERT_TRUE(c->Insert(url, "w", kV1, "data of " + url).ok());
    }
  }
  auto usage = DiskCache::Inspect(dir_);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->objects, 6u);
  EXPECT_EQ(usage->files, 12u);
  ASSERT_EQ(usage->stores.size(), 2u);
  EXPECT_EQ(usage->stores[0].base, a);
  EXPECT_EQ(usage->stores[0].objects, 3u);
  // "a.zarr" must not clear "a.zarr2".
  auto cleared = DiskCache::Clear(dir_, a + "/");
  ASSERT_TRUE(cleared.ok());
  EXPECT_EQ(cleared->objects, 3u);
  EXPECT_EQ(cleared->files, 6u);
  EXPECT_FALSE(c->Lookup(a + "/zarr.json", "w", kV1));
  EXPECT_TRUE(c->Lookup(b + "/zarr.json", "w", kV1));
  // One object by its own URL.
  ASSERT_EQ(DiskCache::Clear(dir_, b + "/0/zarr.json")->objects, 1u);
  EXPECT_TRUE(c->Lookup(b + "/zarr.json", "w", kV1));
  ASSERT_EQ(DiskCache::Clear(dir_, "")->objects, 2u);
  EXPECT_EQ(DiskCache::Inspect(dir_)->bytes, 0u);
  // Still usable after a clear.
  ASSERT_TRUE(c->Insert(a + "/zarr.json", "w", kV1, "again").ok());
  EXPECT_EQ(*c->Lookup(a + "/zarr.json", "w", kV1), "again");
  EXPECT_EQ(DiskCache::Inspect(base_ + "/nothing").status().code(), Status::Code::kNotFound);
}

TEST_F(DiskCacheTest, RefusesASymlinkedCacheDirectory) {
  ASSERT_EQ(::mkdir((base_ + "/real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((base_ + "/real").c_str(), dir_.c_str()), 0);
  auto c = DiskCache::Open(DiskCache::Options{dir_, 1 << 20});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find(dir_), std::string::npos) << c.status().ToString();
}

// Several processes (two threads each) share one small cache: inserting,
// reading and evicting at once. Every hit must be exactly the bytes inserted
// under that name, and the cache must end under its bound with every file
// in it valid.
TEST_F(DiskCacheTest, ConcurrentProcessesNeverSeeTornOrForeignBytes) {
  constexpr uint64_t kMax = 256 << 10;
  { auto c = Open(kMax); }
  constexpr int kProcs = 4;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto opened = DiskCache::Open(DiskCache::Options{dir_, kMax});
      if (!opened.ok()) ::_exit(3);
      DiskCache* c = opened->get();
      std::atomic<int> bad{0};
      auto work = [&](int seed) {
        uint64_t x = 1000003u * (p * 2 + seed + 1);
        for (int i = 0; i < 400; ++i) {
          x = x * 6364136223846793005ull + 1442695040888963407ull;
          const std::string url = "https://h/v.zarr/0/c/0/0/" + std::to_string((x >> 33) % 8);
          const uint64_t off = ((x >> 40) % 16) * 5000;
          const size_t len = 1000 + (off % 7) * 1000;
          const std::string name = DiskCache::RangeEntry(off, len);
          if ((x >> 20) % 3 == 0) {
            if (!c->Insert(url, name, kV1, Payload(url, name, len)).ok()) bad += 1;
          } else if (auto hit = c->Lookup(url, name, kV1)) {
            if (*hit != Payload(url, name, len)) bad += 1;
          }
        }
      };
      std::thread t([&] { work(1); });
      work(0);
      t.join();
      ::_exit(bad == 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "a process read wrong bytes or failed to insert";
  }
  auto usage = DiskCache::Inspect(dir_);
  ASSERT_TRUE(usage.ok());
  EXPECT_LE(usage->bytes, kMax);
  auto c = Open(kMax);
  const uint64_t dropped_before = c->stats().dropped_bad;
  for (int u = 0; u < 8; ++u) {
    const std::string url = "https://h/v.zarr/0/c/0/0/" + std::to_string(u);
    for (uint64_t k = 0; k < 16; ++k) {
      const uint64_t off = k * 5000;
      const size_t len = 1000 + (off % 7) * 1000;
      const std::string name = DiskCache::RangeEntry(off, len);
      if (auto hit = c->Lookup(url, name, kV1)) {
        EXPECT_EQ(*hit, Payload(url, name, len));
      }
    }
  }
  EXPECT_EQ(c->stats().dropped_bad, dropped_before) << "a torn entry was left in the cache";
  struct stat st;
  EXPECT_EQ(::lstat((dir_ + "/v1/tmp").c_str(), &st), 0);
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + dir_ + "/v1/tmp')\"").c_str()), 0)
      << "temp files left behind";
}

}  // namespace
}  // namespace brickfs
