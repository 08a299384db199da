// compact on small stores built with the real engine: after ingests and
// rewrites leave dead bytes, every shard is rewritten densely (live blocks +
// one index), the data reads back unchanged and fsck stays clean; a shard
// with a corrupt block is left alone while the others are compacted; a
// locked store or an unrecovered journal is refused.
#include "volume/compact.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/log.h"
#include "format/journal.h"
#include "format/shard_index.h"
#include "store/journal.h"
#include "store/shard_store.h"
#include "store/store.h"
#include "volume/fsck.h"
#include "volume/volume.h"

namespace brickfs {
namespace {

// 16 x 19 x 23 uint16, blocks 4,8,8, bricks 8,16,16 (2 x 2 x 2 bricks).
constexpr uint64_t kZ = 16, kY = 19, kX = 23;
constexpr Shape3 kBlock{4, 8, 8};
constexpr Shape3 kBrick{8, 16, 16};
constexpr uint64_t kIndexSize = 8 * 16 + 4;

using Bytes = std::vector<uint8_t>;

uint16_t Voxel(uint64_t z, uint64_t y, uint64_t x, uint32_t version) {
  return static_cast<uint16_t>(1 + z * 1009 + y * 67 + x * 3 + version * 7919);
}

Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

bool Exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

Bytes SliceTiff(const std::string& tmp_dir, uint64_t z, uint32_t version) {
  const std::string path = tmp_dir + "/slice.tif";
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  EXPECT_NE(tif, nullptr);
  if (!tif) return {};
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(kX));
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(kY));
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
  TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE);
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 4);
  std::vector<uint16_t> row(kX);
  for (uint32_t y = 0; y < kY; ++y) {
    for (uint64_t x = 0; x < kX; ++x) row[x] = Voxel(z, y, x, version);
    EXPECT_EQ(TIFFWriteScanline(tif, row.data(), y, 0), 1);
  }
  TIFFClose(tif);
  Bytes bytes = ReadBytes(path);
  std::remove(path.c_str());
  return bytes;
}

class CompactTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);
    std::string tmpl = ::testing::TempDir() + "brickfs_compact_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    store_ = root_ + "/vol.zarr";
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  std::unique_ptr<Volume> OpenVolume(bool read_only) {
    StoreOpenOptions so;
    so.create_if_missing = !read_only;
    so.read_only = read_only;
    auto store = Store::Open(store_, so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    VolumeOptions o;
    o.mem_budget = 8 * kBlock[0] * kY * kX * 2;
    o.threads = 2;
    o.block = kBlock;
    o.brick = kBrick;
    o.compact_dead_share = 2.0;  // keep the dead bytes: they are what compact removes
    auto v = Volume::Open(std::move(*store), o);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok()) return nullptr;
    (*v)->Start();
    return std::move(*v);
  }

  // Ingests the given slices of `version` and finalizes.
  void Ingest(const std::vector<uint64_t>& zs, uint32_t version) {
    auto v = OpenVolume(false);
    ASSERT_NE(v, nullptr);
    for (uint64_t z : zs) {
      Bytes tif = SliceTiff(root_, z, version);
      Status s = v->IngestSlice("s_" + std::to_string(z) + ".tif", z, tif.data(), tif.size());
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_TRUE(v->Finalize().ok());
  }
  void IngestAll(uint32_t version) {
    std::vector<uint64_t> zs;
    for (uint64_t z = 0; z < kZ; ++z) zs.push_back(z);
    Ingest(zs, version);
  }

  // version_of(z): the version slice z was last written with.
  template <typename F>
  void ExpectVolume(F version_of, const std::string& when) {
    SCOPED_TRACE(when);
    auto v = OpenVolume(true);
    ASSERT_NE(v, nullptr);
    for (uint64_t z = 0; z < kZ; ++z) {
      std::vector<uint16_t> got(kY * kX);
      ASSERT_TRUE(v->ReadPlaneRows(Axis::kZ, z, 0, kY, reinterpret_cast<uint8_t*>(got.data())).ok());
      for (uint64_t y = 0; y < kY; ++y) {
        for (uint64_t x = 0; x < kX; ++x) {
          ASSERT_EQ(got[y * kX + x], Voxel(z, y, x, version_of(z))) << "z " << z << " y " << y << " x " << x;
        }
      }
    }
  }

  Geometry Geo() const {
    Geometry g;
    g.shape = {kZ, kY, kX};
    g.block = kBlock;
    g.brick = kBrick;
    g.dtype = DType::kUint16;
    return g;
  }

  ShardStore::Usage Usage(int level = 0) {
    Geometry g = Geo();
    g.shape = LevelShape(g.shape, level);
    ShardStore shards(store_ + "/" + std::to_string(level), g, true);
    auto u = shards.ScanUsage(g.brick_grid());
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    return u.ok() ? *u : ShardStore::Usage{};
  }

  std::string Shard(const Shape3& b) const {
    return store_ + "/0/c/" + std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" + std::to_string(b[2]);
  }

  void ExpectFsckClean(const std::string& when) {
    auto r = Fsck(store_, FsckOptions{});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::string lines;
    for (const auto& p : r->problems) lines += p.Line() + "\n";
    EXPECT_EQ(r->ExitCode(), kFsckClean) << when << ":\n" << lines;
  }

  std::string root_, store_;
};

TEST_F(CompactTest, RewritesLeaveDeadBytesAndCompactRemovesThemKeepingTheData) {
  IngestAll(0);
  Ingest({5, 6, 13}, 1);  // rewrites: slabs 1 and 3 re-encoded, appended again
  const ShardStore::Usage before = Usage();
  const uint64_t dead = before.file_bytes - before.live_block_bytes - before.index_bytes;
  ASSERT_GT(dead, 0u);
  // Level 1 (8 x 10 x 12, one brick) was updated by the rewrites too.
  const ShardStore::Usage before1 = Usage(1);
  const uint64_t dead1 = before1.file_bytes - before1.live_block_bytes - before1.index_bytes;
  ASSERT_EQ(before1.files, 1u);
  ASSERT_GT(dead1, 0u);
  auto version_of = [](uint64_t z) -> uint32_t { return z == 5 || z == 6 || z == 13 ? 1 : 0; };
  ExpectVolume(version_of, "before compact");

  auto r = Compact(store_, CompactOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->errors(), 0u);
  EXPECT_EQ(r->shard_files, 8u + 1);
  EXPECT_EQ(r->files_compacted, 8u + 1) << "every brick got two appends or more";
  EXPECT_EQ(r->bytes_before, before.file_bytes + before1.file_bytes);
  EXPECT_EQ(r->bytes_before - r->bytes_after, dead + dead1);
  ASSERT_EQ(r->levels.size(), 2u);
  EXPECT_EQ(r->levels[1].level, 1);
  EXPECT_EQ(r->levels[1].files_compacted, 1u);
  EXPECT_EQ(r->levels[1].bytes_before - r->levels[1].bytes_after, dead1);
  bool level1_listed = false;
  for (const auto& b : r->bricks) level1_listed |= b.path == "1/c/0/0/0" && b.level == 1;
  EXPECT_TRUE(level1_listed);
  const ShardStore::Usage after1 = Usage(1);
  EXPECT_EQ(after1.file_bytes, after1.live_block_bytes + after1.index_bytes) << "level 1 still has dead bytes";
  EXPECT_EQ(after1.live_block_bytes, before1.live_block_bytes);

  const ShardStore::Usage after = Usage();
  EXPECT_EQ(after.file_bytes + after1.file_bytes, r->bytes_after);
  EXPECT_EQ(after.file_bytes, r->levels[0].bytes_after);
  EXPECT_EQ(after.file_bytes, after.live_block_bytes + after.index_bytes) << "no dead bytes left";
  EXPECT_EQ(after.live_block_bytes, before.live_block_bytes);
  EXPECT_EQ(after.live_blocks, before.live_blocks);
  EXPECT_EQ(after.index_bytes, 8 * kIndexSize);
  for (const auto& b : r->bricks) {
    EXPECT_TRUE(b.compacted) << b.path;
    EXPECT_LT(b.bytes_after, b.bytes_before) << b.path;
    EXPECT_FALSE(Exists(store_ + "/" + b.path + ".tmp"));
  }
  // Blocks in index order right from offset 0.
  ShardStore shards(store_ + "/0", Geo(), true);
  auto idx = shards.GetIndex({0, 0, 0});
  ASSERT_TRUE(idx.ok());
  uint64_t next = 0;
  for (uint64_t i = 0; i < (*idx)->size(); ++i) {
    if ((*idx)->at(i).empty()) continue;
    EXPECT_EQ((*idx)->at(i).offset, next) << "block " << i;
    next += (*idx)->at(i).nbytes;
  }

  ExpectVolume(version_of, "after compact");
  ExpectFsckClean("after compact");

  auto again = Compact(store_, CompactOptions{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->files_compacted, 0u) << "nothing dead any more";
  EXPECT_EQ(again->bytes_after, again->bytes_before);

  // The store keeps working: more rewrites append to compacted shards.
  Ingest({0}, 2);
  ExpectVolume([&](uint64_t z) { return z == 0 ? 2u : version_of(z); }, "rewrite after compact");
  ExpectFsckClean("rewrite after compact");
}

TEST_F(CompactTest, DryRunReportsWithoutTouchingAnything) {
  IngestAll(0);
  const ShardStore::Usage before = Usage();
  const Bytes shard = ReadBytes(Shard({1, 0, 1}));
  CompactOptions o;
  o.dry_run = true;
  auto r = Compact(store_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ShardStore::Usage before1 = Usage(1);
  EXPECT_EQ(r->files_compacted, 8u + 1);
  EXPECT_EQ(r->bytes_after,
            before.live_block_bytes + before.index_bytes + before1.live_block_bytes + before1.index_bytes);
  EXPECT_EQ(Usage().file_bytes, before.file_bytes);
  EXPECT_EQ(Usage(1).file_bytes, before1.file_bytes);
  EXPECT_TRUE(ReadBytes(Shard({1, 0, 1})) == shard);
}

TEST_F(CompactTest, CorruptBlockLeavesItsShardAloneAndTheOthersAreCompacted) {
  IngestAll(0);
  const Shape3 bad{1, 1, 0};
  ShardStore shards(store_ + "/0", Geo(), true);
  auto idx = shards.GetIndex(bad);
  ASSERT_TRUE(idx.ok());
  const BlockLocation loc = (*idx)->at(4);
  ASSERT_FALSE(loc.empty());
  Bytes shard = ReadBytes(Shard(bad));
  shard[loc.offset + 7] ^= 0xFF;
  WriteBytes(Shard(bad), shard);

  auto r = Compact(store_, CompactOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->errors(), 1u);
  EXPECT_EQ(r->files_compacted, 7u + 1) << "seven level-0 shards and level 1's";
  bool found = false;
  for (const auto& b : r->bricks) {
    if (b.path != "0/c/1/1/0") continue;
    found = true;
    EXPECT_FALSE(b.compacted);
    EXPECT_NE(b.error.find("block 4 (block z,y,x 3,2,0)"), std::string::npos) << b.error;
    EXPECT_NE(b.error.find("crc32c mismatch"), std::string::npos) << b.error;
    EXPECT_NE(b.error.find("fsck --repair"), std::string::npos) << b.error;
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(ReadBytes(Shard(bad)) == shard) << "the corrupt shard is untouched";
  EXPECT_FALSE(Exists(Shard(bad) + ".tmp"));

  // fsck --repair drops the block; then compact finishes the job.
  FsckOptions repair;
  repair.repair = true;
  auto f = Fsck(store_, repair);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->ExitCode(), kFsckAllRepaired);
  auto r2 = Compact(store_, CompactOptions{});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->errors(), 0u);
  EXPECT_EQ(r2->files_compacted, 1u);
  ExpectFsckClean("after repair and compact");
}

TEST_F(CompactTest, RefusesALockedStoreAnUnrecoveredJournalAndAMissingStore) {
  IngestAll(0);
  {
    StoreOpenOptions so;
    so.read_only = true;  // even a read-only mount blocks compaction
    auto holder = Store::Open(store_, so);
    ASSERT_TRUE(holder.ok());
    auto r = Compact(store_, CompactOptions{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kBusy);
    EXPECT_NE(r.status().message().find("in use by a brickfs daemon"), std::string::npos);
  }
  const uint64_t size = ReadBytes(Shard({0, 0, 0})).size();
  std::string journal;
  AppendBrickBase(BrickId{0, {0, 0, 0}}, size, &journal);
  {
    std::ofstream out(Journal::PathFor(store_), std::ios::binary | std::ios::trunc);
    out << journal;
  }
  auto r = Compact(store_, CompactOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not unmounted cleanly"), std::string::npos) << r.status().message();
  EXPECT_EQ(ReadBytes(Shard({0, 0, 0})).size(), size);

  auto missing = Compact(root_ + "/nope.zarr", CompactOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
}


// CompactShard, the per-shard step the daemon will run at unmount: the new
// file is durable before `before_rename` runs (the daemon journals the
// replacement there), the shard is renamed only after it succeeds, and the
// ShardStore it went through serves the new file at once.
TEST_F(CompactTest, CompactShardCallsBeforeRenameWithTheNewFileDurableAndTheOldOneInPlace) {
  IngestAll(0);
  Ingest({1}, 1);  // slab 0 re-encoded: its bricks carry dead bytes
  const Shape3 brick{0, 1, 1};
  const std::string path = Shard(brick);
  const Bytes old_bytes = ReadBytes(path);
  ShardStore shards(store_ + "/0", Geo(), /*read_only=*/false);
  auto old_index = shards.GetIndex(brick);
  ASSERT_TRUE(old_index.ok());
  const uint64_t dense = (*old_index)->live_bytes() + kIndexSize;
  ASSERT_GT(old_bytes.size(), dense);

  // A failing callback leaves the shard as it was.
  ShardCompactOptions fail;
  fail.before_rename = [&](uint64_t, uint64_t) { return Status::IOError("journal full", 28); };
  CompactBrick b;
  Status s = CompactShard(shards, Geo(), brick, fail, &b);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("journal full"), std::string::npos) << s.ToString();
  EXPECT_TRUE(ReadBytes(path) == old_bytes);
  EXPECT_FALSE(Exists(path + ".tmp"));

  // A threshold above the dead bytes: nothing to do.
  ShardCompactOptions high;
  high.min_dead_bytes = old_bytes.size() - dense + 1;
  b = CompactBrick{};
  ASSERT_TRUE(CompactShard(shards, Geo(), brick, high, &b).ok());
  EXPECT_FALSE(b.compacted);
  EXPECT_EQ(b.bytes_after, b.bytes_before);
  EXPECT_TRUE(ReadBytes(path) == old_bytes);

  ShardCompactOptions o;
  uint64_t seen = 0;
  o.before_rename = [&](uint64_t new_length, uint64_t) {
    seen = new_length;
    struct stat sb;
    EXPECT_EQ(::stat((path + ".tmp").c_str(), &sb), 0) << "the new file is not there yet";
    EXPECT_EQ(static_cast<uint64_t>(sb.st_size), new_length);
    EXPECT_TRUE(ReadBytes(path) == old_bytes) << "the shard was replaced before the callback";
    return Status::Ok();
  };
  b = CompactBrick{};
  ASSERT_TRUE(CompactShard(shards, Geo(), brick, o, &b).ok());
  EXPECT_TRUE(b.compacted);
  EXPECT_EQ(b.bytes_before, old_bytes.size());
  EXPECT_EQ(b.bytes_after, dense);
  EXPECT_EQ(seen, dense);
  EXPECT_EQ(ReadBytes(path).size(), dense);
  // The same ShardStore reads the new file (its cached index was replaced).
  auto fsize = shards.FileSize(brick);
  ASSERT_TRUE(fsize.ok());
  EXPECT_EQ(*fsize, dense);
  ExpectVolume([](uint64_t z) -> uint32_t { return z == 1 ? 1 : 0; }, "after CompactShard");
  ExpectFsckClean("after CompactShard");
}

}  // namespace
}  // namespace brickfs
