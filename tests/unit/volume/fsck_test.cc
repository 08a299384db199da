// fsck on small stores built with the real engine (TIFF slices in through
// Volume::IngestSlice, no FUSE), then damaged the ways disks and crashes
// damage them: a flipped byte in a block or an index, a shard cut mid-block
// or mid-index, garbage appended (a torn append), a journal left by a daemon
// that died, a broken zarr.json, stray files. A check names the brick and
// block and modifies nothing; a repair leaves a store that checks clean and
// reads back right (lost blocks as fill).
#include "volume/fsck.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codec/block_codec.h"
#include "common/log.h"
#include "format/json.h"
#include "format/journal.h"
#include "format/shard_index.h"
#include "store/journal.h"
#include "store/shard_store.h"
#include "store/store.h"
#include "volume/downsample.h"
#include "volume/volume.h"

namespace brickfs {
namespace {

// 16 x 19 x 23 uint16, blocks 4,8,8, bricks 8,16,16: 2 x 2 x 2 bricks of
// 2 x 2 x 2 blocks, each brick written by two slab appends.
constexpr uint64_t kZ = 16, kY = 19, kX = 23;
constexpr Shape3 kBlock{4, 8, 8};
constexpr Shape3 kBrick{8, 16, 16};
constexpr uint64_t kBlocksInBrick = 8;
constexpr uint64_t kIndexSize = kBlocksInBrick * 16 + 4;

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

uint64_t FileSize(const std::string& path) {
  struct stat sb;
  return ::stat(path.c_str(), &sb) == 0 ? static_cast<uint64_t>(sb.st_size) : 0;
}

bool Exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

// A TIFF of slice z (uint16, uncompressed) written by libtiff.
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

std::string Key(const Shape3& b) {
  return std::to_string(b[0]) + "/" + std::to_string(b[1]) + "/" + std::to_string(b[2]);
}

class FsckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);
    std::string tmpl = ::testing::TempDir() + "brickfs_fsck_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    store_ = root_ + "/vol.zarr";
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  VolumeOptions Options() const {
    VolumeOptions o;
    o.mem_budget = 8 * kBlock[0] * kY * kX * 2;
    o.cache_budget = 0;
    o.threads = 2;
    o.block = kBlock;
    o.brick = kBrick;
    o.zstd_level = 3;
    o.compact_dead_share = 2.0;  // keep appended shards as appended: fsck cuts them
    return o;
  }

  std::unique_ptr<Volume> OpenVolume(bool read_only) { return OpenVolume(read_only, Options()); }
  std::unique_ptr<Volume> OpenVolume(bool read_only, const VolumeOptions& options) {
    StoreOpenOptions so;
    so.create_if_missing = !read_only;
    so.read_only = read_only;
    auto store = Store::Open(store_, so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    auto v = Volume::Open(std::move(*store), options);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok()) return nullptr;
    (*v)->Start();
    return std::move(*v);
  }

  // Ingests slices [z0, z1) of `version` in order and finalizes.
  void Ingest(uint64_t z0, uint64_t z1, uint32_t version = 0) {
    auto v = OpenVolume(false);
    ASSERT_NE(v, nullptr);
    for (uint64_t z = z0; z < z1; ++z) {
      Bytes tif = SliceTiff(root_, z, version);
      char name[32];
      std::snprintf(name, sizeof name, "s_%03llu.tif", static_cast<unsigned long long>(z));
      Status s = v->IngestSlice(name, z, tif.data(), tif.size());
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_TRUE(v->Finalize().ok());
  }

  std::string Shard(const Shape3& b) const { return store_ + "/0/c/" + Key(b); }
  std::string LevelShard(int level, const Shape3& b) const {
    return store_ + "/" + std::to_string(level) + "/c/" + Key(b);
  }

  // Ingests slices [z0, z1) of `version` without finalizing, then drops the
  // volume as a kill -9 would (flushes already queued complete, pending
  // pyramid rows and the journal stay as they are).
  void IngestAndDie(uint64_t z0, uint64_t z1, uint32_t version, const VolumeOptions& options) {
    auto v = OpenVolume(false, options);
    ASSERT_NE(v, nullptr);
    for (uint64_t z = z0; z < z1; ++z) {
      Bytes tif = SliceTiff(root_, z, version);
      Status s = v->IngestSlice("s_" + std::to_string(z) + ".tif", z, tif.data(), tif.size());
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }

  // Level `level` of a store whose level 0 has `z0` slices.
  Geometry LevelGeo(int level, uint64_t z0 = kZ) const {
    Geometry g = Geo();
    g.shape = LevelShape({z0, kY, kX}, level);
    return g;
  }
  ShardIndex LevelIndex(int level, const Shape3& b, uint64_t z0 = kZ) {
    ShardStore shards(store_ + "/" + std::to_string(level), LevelGeo(level, z0), true);
    auto idx = shards.GetIndex(b);
    EXPECT_TRUE(idx.ok()) << idx.status().ToString();
    return idx.ok() ? **idx : ShardIndex(kBlocksInBrick);
  }

  // Every voxel of level `level` (C order) as a read-only Volume reads it.
  std::vector<uint16_t> ReadLevel(int level) {
    auto v = OpenVolume(true);
    EXPECT_NE(v, nullptr);
    if (!v) return {};
    EXPECT_GT(v->LevelCount(), level);
    const Shape3 s = LevelShape(v->geometry()->shape, level);
    std::vector<uint16_t> out(Product(s), 0xEEEE);
    for (uint64_t k = 0; k < s[0]; ++k) {
      Status st = v->ReadPlaneRows(Axis::kZ, k, 0, s[1],
                                   reinterpret_cast<uint8_t*>(out.data() + k * s[1] * s[2]), level);
      EXPECT_TRUE(st.ok()) << "level " << level << " plane " << k << ": " << st.ToString();
    }
    return out;
  }

  // Replaces block `idx` of brick `b` of level `level` with a valid block
  // whose every voxel is `value` (append protocol, as a writer would).
  void WriteValidBlock(int level, const Shape3& b, uint64_t idx, uint16_t value, uint64_t z0 = kZ) {
    std::vector<uint16_t> raw(Product(kBlock), value);
    std::string enc;
    BlockCodec codec(1);
    ASSERT_TRUE(codec.Encode(reinterpret_cast<const uint8_t*>(raw.data()), raw.size() * 2, &enc).ok());
    ShardStore shards(store_ + "/" + std::to_string(level), LevelGeo(level, z0), false);
    ASSERT_TRUE(shards.Append(b, {EncodedBlock{idx, enc}}, nullptr).ok());
  }

  VolumeMeta StoredMeta() {
    StoreOpenOptions so;
    so.read_only = true;
    so.take_lock = false;
    auto st = Store::Open(store_, so);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return st.ok() && (*st)->meta() ? *(*st)->meta() : VolumeMeta{};
  }

  Geometry Geo() const {
    Geometry g;
    g.shape = {kZ, kY, kX};
    g.block = kBlock;
    g.brick = kBrick;
    g.dtype = DType::kUint16;
    return g;
  }

  ShardIndex Index(const Shape3& b) {
    ShardStore shards(store_ + "/0", Geo(), true);
    auto idx = shards.GetIndex(b);
    EXPECT_TRUE(idx.ok()) << idx.status().ToString();
    return idx.ok() ? **idx : ShardIndex(kBlocksInBrick);
  }

  // Where the brick's last append starts (the end of the index before it:
  // live blocks of different appends are separated by exactly one dead
  // index), and the global coordinates of the blocks it wrote. Slabs flush
  // on a pool, so the two appends of a brick may come in either order.
  struct LastAppend {
    uint64_t start = 0;
    uint64_t blocks_end = 0;
    std::vector<Shape3> blocks;
  };
  LastAppend Last(const Shape3& brick) {
    ShardIndex idx = Index(brick);
    std::vector<std::pair<uint64_t, uint64_t>> live;  // offset, block
    for (uint64_t i = 0; i < idx.size(); ++i) {
      if (!idx.at(i).empty()) live.emplace_back(idx.at(i).offset, i);
    }
    std::sort(live.begin(), live.end());
    LastAppend a;
    for (size_t k = 1; k < live.size(); ++k) {
      const BlockLocation& prev = idx.at(live[k - 1].second);
      if (live[k].first == prev.offset + prev.nbytes + kIndexSize) a.start = live[k].first;
    }
    EXPECT_GT(a.start, 0u) << "brick " << Key(brick) << " was written by one append only";
    const Shape3 n = Geo().blocks_per_brick();
    for (const auto& [off, i] : live) {
      const BlockLocation& loc = idx.at(i);
      a.blocks_end = std::max(a.blocks_end, loc.offset + loc.nbytes);
      if (off < a.start) continue;
      a.blocks.push_back({brick[0] * n[0] + i / (n[1] * n[2]), brick[1] * n[1] + (i / n[2]) % n[1],
                          brick[2] * n[2] + i % n[2]});
    }
    return a;
  }

  // Every XY plane through a read-only Volume; voxels of `zeroed` blocks
  // (global block coordinates) are expected to read as fill.
  void ExpectVolume(const std::vector<Shape3>& zeroed, uint32_t version = 0,
                    const std::string& when = "") {
    SCOPED_TRACE(when);
    auto v = OpenVolume(true);
    ASSERT_NE(v, nullptr);
    ASSERT_TRUE(v->geometry().has_value());
    for (uint64_t z = 0; z < kZ; ++z) {
      std::vector<uint16_t> got(kY * kX, 0xEEEE);
      Status s = v->ReadPlaneRows(Axis::kZ, z, 0, kY, reinterpret_cast<uint8_t*>(got.data()));
      ASSERT_TRUE(s.ok()) << "z " << z << ": " << s.ToString();
      for (uint64_t y = 0; y < kY; ++y) {
        for (uint64_t x = 0; x < kX; ++x) {
          const Shape3 blk{z / kBlock[0], y / kBlock[1], x / kBlock[2]};
          const bool zero = std::find(zeroed.begin(), zeroed.end(), blk) != zeroed.end();
          const uint16_t want = zero ? 0 : Voxel(z, y, x, version);
          ASSERT_EQ(got[y * kX + x], want) << "z " << z << " y " << y << " x " << x;
        }
      }
    }
  }

  // Path -> bytes of every file in the store (to prove a check changed nothing).
  std::map<std::string, Bytes> Snapshot() {
    std::map<std::string, Bytes> out;
    std::string cmd = "cd '" + store_ + "' && find . -type f -o -type d > '" + root_ + "/list'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::ifstream in(root_ + "/list");
    std::string line;
    while (std::getline(in, line)) {
      struct stat sb;
      std::string p = store_ + "/" + line;
      if (::stat(p.c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) {
        out[line] = ReadBytes(p);
      } else {
        out[line] = {};
      }
    }
    return out;
  }

  FsckReport Check(bool repair, int expect_code, const std::string& when, bool deep = false) {
    FsckOptions o;
    o.repair = repair;
    o.deep = deep;
    auto r = Fsck(store_, o);
    EXPECT_TRUE(r.ok()) << when << ": " << r.status().ToString();
    if (!r.ok()) return FsckReport{};
    std::string lines;
    for (const auto& p : r->problems) lines += "  " + p.Line() + "\n";
    EXPECT_EQ(r->ExitCode(), expect_code) << when << ":\n" << lines;
    return *r;
  }

  // Check (nothing changes), repair, check again: clean.
  FsckReport CheckRepairCheck(const std::string& when, bool deep = false) {
    auto before = Snapshot();
    FsckReport check = Check(false, kFsckProblemsLeft, when + " (check)", deep);
    EXPECT_TRUE(before == Snapshot()) << when << ": a check without --repair modified the store";
    FsckReport repair = Check(true, kFsckAllRepaired, when + " (repair)", deep);
    EXPECT_EQ(repair.problems.size(), check.problems.size()) << when;
    Check(false, kFsckClean, when + " (after repair)", deep);
    return repair;
  }

  static std::string Lines(const FsckReport& r) {
    std::string out;
    for (const auto& p : r.problems) out += "  " + p.Line() + "\n";
    return out;
  }

  const FsckProblem* Find(const FsckReport& r, const std::string& kind) {
    for (const auto& p : r.problems) {
      if (p.kind == kind) return &p;
    }
    ADD_FAILURE() << "no problem of kind " << kind;
    return nullptr;
  }

  std::string root_, store_;
};

TEST_F(FsckTest, CleanStoreChecksCleanAndCountsEveryBlock) {
  Ingest(0, kZ);
  FsckReport r = Check(false, kFsckClean, "fresh store");
  EXPECT_TRUE(r.problems.empty());
  // Level 0: 8 bricks, 4 x 3 x 3 blocks; level 1 (8 x 10 x 12): one brick
  // of 2 x 2 x 2 blocks.
  EXPECT_EQ(r.num_levels, 2);
  ASSERT_EQ(r.levels.size(), 2u);
  EXPECT_EQ(r.levels[0].shard_files, 8u);
  EXPECT_EQ(r.levels[0].blocks_checked, 4u * 3 * 3);
  EXPECT_EQ(r.levels[1].level, 1);
  EXPECT_EQ(r.levels[1].shard_files, 1u);
  EXPECT_EQ(r.levels[1].blocks_checked, 8u);
  EXPECT_EQ(r.levels[1].shard_bytes, FileSize(LevelShard(1, {0, 0, 0})));
  EXPECT_EQ(r.shard_files, 9u);
  EXPECT_EQ(r.blocks_checked, 4u * 3 * 3 + 8);
  Check(false, kFsckClean, "deep check of a fresh store", /*deep=*/true);
  ASSERT_TRUE(r.geometry.has_value());
  EXPECT_EQ(r.geometry->shape, (Shape3{kZ, kY, kX}));
  EXPECT_TRUE(r.finalized);
  EXPECT_FALSE(r.journal_present);
  Check(true, kFsckClean, "repair of a clean store");
}

TEST_F(FsckTest, FlippedByteInABlockNamesBrickAndBlockAndRepairDropsIt) {
  Ingest(0, kZ);
  const Shape3 brick{0, 1, 0};
  const uint64_t block = 5;  // local z,y,x 1,0,1 -> global block 1,2,1
  const BlockLocation loc = Index(brick).at(block);
  ASSERT_FALSE(loc.empty());
  Bytes shard = ReadBytes(Shard(brick));
  shard[loc.offset + loc.nbytes / 2] ^= 0x40;
  WriteBytes(Shard(brick), shard);

  auto before = Snapshot();
  FsckReport check = Check(false, kFsckProblemsLeft, "check");
  EXPECT_TRUE(before == Snapshot());
  ASSERT_EQ(check.problems.size(), 1u);
  const FsckProblem& p = check.problems[0];
  EXPECT_EQ(p.kind, "block");
  EXPECT_EQ(p.path, "0/c/0/1/0");
  ASSERT_TRUE(p.block.has_value());
  EXPECT_EQ(*p.block, block);
  EXPECT_EQ(*p.block_zyx, (Shape3{1, 2, 1}));
  EXPECT_NE(p.message.find("crc32c mismatch"), std::string::npos) << p.message;
  EXPECT_NE(p.Line().find("0/c/0/1/0 block 5 (block z,y,x 1,2,1): "), std::string::npos) << p.Line();
  EXPECT_NE(p.message.find("offset " + std::to_string(loc.offset)), std::string::npos) << p.message;
  EXPECT_FALSE(p.repaired);

  FsckReport repair = Check(true, kFsckAllRepaired, "repair");
  ASSERT_EQ(repair.problems.size(), 1u);
  EXPECT_TRUE(repair.problems[0].repaired);
  EXPECT_TRUE(repair.problems[0].data_lost);
  EXPECT_NE(repair.problems[0].action.find("LOST"), std::string::npos);
  EXPECT_EQ(repair.blocks_lost(), 1u);
  EXPECT_EQ(repair.lost_z(), (ZRanges{{4, 7}}));
  // Append protocol: the old bytes stay, one index was appended.
  EXPECT_EQ(FileSize(Shard(brick)), shard.size() + kIndexSize);
  EXPECT_TRUE(Index(brick).at(block).empty());

  Check(false, kFsckClean, "after repair");
  ExpectVolume({{1, 2, 1}}, 0, "after repair: the block reads as fill");
}

TEST_F(FsckTest, BitFlipInsideTheZstdFrameHeaderIsCaughtToo) {
  Ingest(0, kZ);
  const Shape3 brick{1, 0, 1};
  const BlockLocation loc = Index(brick).at(0);
  Bytes shard = ReadBytes(Shard(brick));
  shard[loc.offset] ^= 0x01;  // the zstd magic
  WriteBytes(Shard(brick), shard);
  FsckReport r = CheckRepairCheck("frame header");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, "block");
  EXPECT_EQ(*r.problems[0].block, 0u);
  EXPECT_EQ(*r.problems[0].block_zyx, (Shape3{2, 0, 2}));
  ExpectVolume({{2, 0, 2}});
}

TEST_F(FsckTest, FlippedByteInTheIndexFallsBackToThePreviousIndex) {
  Ingest(0, kZ);
  const Shape3 brick{0, 0, 0};
  const LastAppend last = Last(brick);
  Bytes shard = ReadBytes(Shard(brick));
  const uint64_t size = shard.size();
  shard[size - kIndexSize + 3] ^= 0x10;
  WriteBytes(Shard(brick), shard);
  FsckReport r = CheckRepairCheck("index flip");
  ASSERT_EQ(r.problems.size(), 1u);
  const FsckProblem& p = r.problems[0];
  EXPECT_EQ(p.kind, "torn_tail");
  EXPECT_EQ(p.path, "0/c/0/0/0");
  EXPECT_NE(p.message.find("crc32c mismatch"), std::string::npos) << p.message;
  EXPECT_TRUE(p.data_lost) << "the last append's blocks were only in the corrupt index";
  // Cut back to the end of the first append's index.
  const uint64_t cut = FileSize(Shard(brick));
  EXPECT_EQ(cut, last.start);
  EXPECT_NE(p.message.find("ends at offset " + std::to_string(cut)), std::string::npos) << p.message;
  // The cut bytes are kept.
  const std::string lost = store_ + "/.brickfs/lost+found/0_c_0_0_0.bytes-" + std::to_string(cut) + "-" +
                           std::to_string(size);
  EXPECT_EQ(FileSize(lost), size - cut) << lost;
  // The last append's blocks (one slab of brick 0,0,0) are gone.
  EXPECT_EQ(last.blocks.size(), 4u);
  ExpectVolume(last.blocks);
}

TEST_F(FsckTest, ShardCutMidBlockOrMidIndexIsCutBackToTheLastValidIndex) {
  Ingest(0, kZ);
  const Shape3 a{1, 1, 1}, b{1, 0, 0};
  const LastAppend last_a = Last(a), last_b = Last(b);
  const uint64_t size_b = FileSize(Shard(b));
  // a: inside the last append's blocks; b: inside its index.
  ASSERT_LT(last_a.start, last_a.blocks_end);
  ASSERT_EQ(::truncate(Shard(a).c_str(), static_cast<off_t>((last_a.start + last_a.blocks_end) / 2)), 0);
  ASSERT_EQ(::truncate(Shard(b).c_str(), static_cast<off_t>(size_b - kIndexSize / 2)), 0);

  FsckReport r = CheckRepairCheck("cut");
  ASSERT_EQ(r.problems.size(), 2u);
  for (const auto& p : r.problems) {
    EXPECT_EQ(p.kind, "torn_tail") << p.Line();
    EXPECT_TRUE(p.repaired);
  }
  EXPECT_EQ(FileSize(Shard(a)), last_a.start) << "cut back to the first append's end";
  EXPECT_EQ(FileSize(Shard(b)), last_b.start);
  // The last append of each brick is gone; everything else reads.
  std::vector<Shape3> gone = last_a.blocks;
  gone.insert(gone.end(), last_b.blocks.begin(), last_b.blocks.end());
  EXPECT_EQ(gone.size(), 1u + 4u);
  ExpectVolume(gone);
}

TEST_F(FsckTest, ShardWithNoValidIndexGoesToLostAndFound) {
  Ingest(0, kZ);
  const Shape3 a{0, 1, 1}, b{1, 1, 0};
  ASSERT_EQ(::truncate(Shard(a).c_str(), 100), 0);  // smaller than an index
  // b: every index destroyed (only its first block's bytes are left + garbage).
  Bytes junk(3 * kIndexSize, 0xA5);
  WriteBytes(Shard(b), junk);
  FsckReport r = CheckRepairCheck("no index");
  ASSERT_EQ(r.problems.size(), 2u);
  for (const auto& p : r.problems) {
    EXPECT_EQ(p.kind, "index") << p.Line();
    EXPECT_TRUE(p.data_lost);
    EXPECT_NE(p.action.find("lost+found"), std::string::npos);
  }
  EXPECT_NE(r.problems[0].message.find("100 bytes, smaller than its 132-byte index"), std::string::npos)
      << r.problems[0].message;
  EXPECT_FALSE(Exists(Shard(a)));
  EXPECT_FALSE(Exists(Shard(b)));
  EXPECT_EQ(FileSize(store_ + "/.brickfs/lost+found/0_c_0_1_1"), 100u);
  EXPECT_EQ(FileSize(store_ + "/.brickfs/lost+found/0_c_1_1_0"), junk.size());
  std::vector<Shape3> gone;
  for (uint64_t z = 0; z < 2; ++z) {
    gone.push_back({z, 2, 2});  // brick 0,1,1 holds blocks z 0-1, y 2, x 2
    for (uint64_t y = 2; y < 3; ++y) {
      for (uint64_t x = 0; x < 2; ++x) gone.push_back({2 + z, y, x});  // brick 1,1,0
    }
  }
  ExpectVolume(gone);
}

TEST_F(FsckTest, GarbageAppendedIsATornAppendCutBackWithNoDataLost) {
  Ingest(0, kZ);
  const Shape3 brick{1, 1, 1};
  const uint64_t size = FileSize(Shard(brick));
  Bytes shard = ReadBytes(Shard(brick));
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) shard.push_back(static_cast<uint8_t>(rng()));
  WriteBytes(Shard(brick), shard);
  FsckReport r = CheckRepairCheck("garbage");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, "torn_tail");
  EXPECT_NE(r.problems[0].message.find("3000 bytes before the end (no block frame after it)"), std::string::npos)
      << r.problems[0].message;
  EXPECT_FALSE(r.problems[0].data_lost);
  EXPECT_EQ(FileSize(Shard(brick)), size);
  ExpectVolume({});
}

TEST_F(FsckTest, LargeGarbageTailIsScannedInReasonableTime) {
  Ingest(0, kZ);
  const Shape3 brick{0, 0, 1};
  const uint64_t size = FileSize(Shard(brick));
  Bytes shard = ReadBytes(Shard(brick));
  // 24 MiB: three scan windows of mostly incompressible bytes, plus runs of
  // 0xFF (which look like empty index entries) and zeros.
  std::mt19937_64 rng(11);
  const size_t n = 24u << 20;
  size_t at = shard.size();
  shard.resize(at + n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&shard[at + i], &v, 8);
  }
  std::memset(&shard[at + 1000], 0xFF, 64 << 10);
  std::memset(&shard[at + (9u << 20)], 0, 1 << 20);
  WriteBytes(Shard(brick), shard);
  FsckReport r = CheckRepairCheck("large garbage");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(FileSize(Shard(brick)), size);
  ExpectVolume({});
}

TEST_F(FsckTest, JournalOfADeadDaemonTornAppendIsCutAndTheStoreRecovered) {
  Ingest(0, kZ);
  const Shape3 brick{0, 1, 1};
  const uint64_t size = FileSize(Shard(brick));
  // The daemon had started an append to brick 0,1,1 (base recorded), a slice
  // z = 16 was received, then it died mid-append: a copy of the shard's own
  // bytes (valid-looking blocks and index) half written.
  Bytes shard = ReadBytes(Shard(brick));
  Bytes torn(shard.begin(), shard.begin() + static_cast<long>(shard.size() / 2));
  shard.insert(shard.end(), torn.begin(), torn.end());
  WriteBytes(Shard(brick), shard);
  std::string journal;
  Geometry g = Geo();
  g.shape[0] = 17;
  AppendGeometry(g, &journal);
  AppendReceived(16, &journal);
  AppendBrickBase(BrickId{0, brick}, size, &journal);
  journal += std::string("\x20\x00\x00\x00torn", 8);  // a record cut by the crash
  {
    std::ofstream out(Journal::PathFor(store_), std::ios::binary | std::ios::trunc);
    out << journal;
  }
  FsckReport check = Check(false, kFsckProblemsLeft, "check");
  EXPECT_TRUE(check.journal_present);
  EXPECT_EQ(check.journal_frames, 3u);
  EXPECT_EQ(check.journal_torn_bytes, 8u);
  const FsckProblem* torn_append = Find(check, "torn_append");
  ASSERT_NE(torn_append, nullptr);
  EXPECT_EQ(torn_append->path, "0/c/0/1/1");
  EXPECT_NE(torn_append->message.find(std::to_string(torn.size()) + " more than the " + std::to_string(size)),
            std::string::npos)
      << torn_append->message;
  const FsckProblem* unclean = Find(check, "unclean_shutdown");
  ASSERT_NE(unclean, nullptr);
  EXPECT_NE(unclean->message.find("z 16 received but never committed"), std::string::npos) << unclean->message;
  ASSERT_NE(Find(check, "journal_torn"), nullptr);
  EXPECT_EQ(check.problems.size(), 3u);
  EXPECT_EQ(FileSize(Shard(brick)), shard.size()) << "a check cuts nothing";

  FsckReport repair = Check(true, kFsckAllRepaired, "repair");
  EXPECT_EQ(repair.problems.size(), 3u);
  EXPECT_EQ(FileSize(Shard(brick)), size);
  EXPECT_EQ(FileSize(Journal::PathFor(store_)), 0u) << "journal emptied after recovery";
  EXPECT_EQ(repair.lost_z(), (ZRanges{{16, 16}}));
  // Metadata: the shape grew to the slice received, which is missing.
  StoreOpenOptions so;
  so.read_only = true;
  auto st = Store::Open(store_, so);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE((*st)->meta().has_value());
  EXPECT_EQ((*st)->meta()->geo.shape, (Shape3{17, kY, kX}));
  EXPECT_EQ((*st)->meta()->present, (ZRanges{{0, 15}}));
  EXPECT_TRUE((*st)->meta()->finalized);
  st->reset();
  Check(false, kFsckClean, "after recovery");
  // The old data reads back through a read-only volume (which refuses an
  // unrecovered journal).
  auto v = OpenVolume(true);
  ASSERT_NE(v, nullptr);
  std::vector<uint16_t> plane(kY * kX);
  ASSERT_TRUE(v->ReadPlaneRows(Axis::kZ, 9, 0, kY, reinterpret_cast<uint8_t*>(plane.data())).ok());
  EXPECT_EQ(plane[18 * kX + 22], Voxel(9, 18, 22, 0));
  ASSERT_TRUE(v->ReadPlaneRows(Axis::kZ, 16, 0, kY, reinterpret_cast<uint8_t*>(plane.data())).ok());
  EXPECT_EQ(plane[0], 0) << "the slice never committed reads as fill";
}

TEST_F(FsckTest, EmptyShardCreatedByAnUncommittedAppendIsMovedAsideWithNoDataLost) {
  Ingest(0, 8);  // bricks of z 1 do not exist yet
  const Shape3 brick{1, 0, 0};
  ASSERT_FALSE(Exists(Shard(brick)));
  ASSERT_EQ(::mkdir((store_ + "/0/c/1").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((store_ + "/0/c/1/0").c_str(), 0755), 0);
  WriteBytes(Shard(brick), {});  // killed right after creating the file
  std::string journal;
  Geometry g = Geo();
  AppendGeometry(g, &journal);
  AppendReceived(8, &journal);
  AppendBrickBase(BrickId{0, brick}, 0, &journal);
  {
    std::ofstream out(Journal::PathFor(store_), std::ios::binary | std::ios::trunc);
    out << journal;
  }
  FsckReport r = CheckRepairCheck("empty shard");
  const FsckProblem* p = Find(r, "torn_append");
  ASSERT_NE(p, nullptr);
  EXPECT_NE(p->message.find("file is 0 bytes but the journal committed no append"), std::string::npos)
      << p->message;
  EXPECT_FALSE(p->data_lost);
  EXPECT_FALSE(Exists(Shard(brick)));
  ASSERT_NE(Find(r, "unclean_shutdown"), nullptr);
  EXPECT_EQ(r.problems.size(), 2u);
}

TEST_F(FsckTest, JournalCommittedLengthLongerThanTheFileIsReportedNotRepaired) {
  Ingest(0, kZ);
  const Shape3 brick{1, 0, 0};
  const uint64_t size = FileSize(Shard(brick));
  std::string journal;
  AppendBrickBase(BrickId{0, brick}, size, &journal);
  AppendBrickLength(BrickId{0, brick}, size + 500, &journal);
  AppendSlabCommit(0, 3, {12, 13, 14, 15}, &journal);
  {
    std::ofstream out(Journal::PathFor(store_), std::ios::binary | std::ios::trunc);
    out << journal;
  }
  FsckReport r = Check(true, kFsckProblemsLeft, "repair");
  const FsckProblem* p = Find(r, "shard_short");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->repaired);
  EXPECT_NE(p->message.find("shorter than the " + std::to_string(size + 500)), std::string::npos) << p->message;
  EXPECT_NE(p->action.find("cannot be repaired"), std::string::npos);
}

TEST_F(FsckTest, CorruptArrayJsonCannotBeChecked) {
  Ingest(0, kZ);
  {
    std::ofstream out(store_ + "/0/zarr.json", std::ios::trunc);
    out << "{\"zarr_format\": 3, \"node_type\": \"array\", \"shape\": [16, 19";
  }
  auto r = Fsck(store_, FsckOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("0/zarr.json"), std::string::npos) << r.status().ToString();
  FsckOptions repair;
  repair.repair = true;
  EXPECT_FALSE(Fsck(store_, repair).ok());
}

TEST_F(FsckTest, GroupWithoutOmeAttributesIsRepairedKeepingOtherAttributes) {
  Ingest(0, kZ);
  {
    std::ofstream out(store_ + "/zarr.json", std::ios::trunc);
    out << "{\"zarr_format\": 3, \"node_type\": \"group\", \"attributes\": {\"mine\": 42}}\n";
  }
  FsckReport r = CheckRepairCheck("ome");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, "metadata");
  EXPECT_EQ(r.problems[0].path, "zarr.json");
  Bytes group = ReadBytes(store_ + "/zarr.json");
  std::string text(group.begin(), group.end());
  EXPECT_NE(text.find("\"mine\": 42"), std::string::npos) << text;
  EXPECT_NE(text.find("multiscales"), std::string::npos) << text;
}

TEST_F(FsckTest, GroupAttributesAreKeptWhenARecoveryRewritesEveryDocument) {
  Ingest(0, kZ);
  {
    std::ofstream out(store_ + "/zarr.json", std::ios::trunc);
    out << "{\"zarr_format\": 3, \"node_type\": \"group\", \"attributes\": {\"mine\": 42}}\n";
  }
  std::string journal;  // a session that received slice 16 and died
  Geometry g = Geo();
  g.shape[0] = 17;
  AppendGeometry(g, &journal);
  AppendReceived(16, &journal);
  {
    std::ofstream out(Journal::PathFor(store_), std::ios::binary | std::ios::trunc);
    out << journal;
  }
  FsckReport r = CheckRepairCheck("group and journal");
  const FsckProblem* p = Find(r, "metadata");
  ASSERT_NE(p, nullptr);
  EXPECT_NE(p->action.find("other attributes kept"), std::string::npos) << p->action;
  Bytes group = ReadBytes(store_ + "/zarr.json");
  std::string text(group.begin(), group.end());
  EXPECT_NE(text.find("\"mine\": 42"), std::string::npos) << text;
  EXPECT_NE(text.find("multiscales"), std::string::npos) << text;
  EXPECT_EQ(StoredMeta().geo.shape[0], 17u);
}

TEST_F(FsckTest, StrayFilesAreReportedAndMovedAside) {
  Ingest(0, kZ);
  { std::ofstream(store_ + "/0/c/0/0/notes.txt") << "hello"; }
  { std::ofstream(store_ + "/0/c/0/0/1.compact.tmp") << "half a compaction"; }
  ASSERT_EQ(::mkdir((store_ + "/0/c/7").c_str(), 0755), 0);  // outside the 2 x 2 x 2 grid
  { std::ofstream(store_ + "/0/c/7/x") << "?"; }
  { std::ofstream(store_ + "/0/c/1/1/2") << "not in the grid either"; }
  { std::ofstream(store_ + "/0/c/1/01") << "not canonical"; }
  FsckReport r = CheckRepairCheck("strays");
  std::map<std::string, const FsckProblem*> by_path;
  for (const auto& p : r.problems) {
    EXPECT_EQ(p.kind, "stray") << p.Line();
    by_path[p.path] = &p;
  }
  ASSERT_EQ(by_path.size(), 5u);
  ASSERT_TRUE(by_path.count("0/c/7"));
  EXPECT_NE(by_path["0/c/7"]->message.find("outside the brick grid 2,2,2"), std::string::npos)
      << by_path["0/c/7"]->message;
  ASSERT_TRUE(by_path.count("0/c/0/0/1.compact.tmp"));
  EXPECT_EQ(by_path["0/c/0/0/1.compact.tmp"]->action, "deleted");
  EXPECT_TRUE(by_path.count("0/c/0/0/notes.txt"));
  EXPECT_TRUE(by_path.count("0/c/1/1/2"));
  EXPECT_TRUE(by_path.count("0/c/1/01"));
  EXPECT_TRUE(Exists(store_ + "/.brickfs/lost+found/0_c_7/x"));
  EXPECT_TRUE(Exists(store_ + "/.brickfs/lost+found/0_c_0_0_notes.txt"));
  EXPECT_FALSE(Exists(store_ + "/0/c/0/0/1.compact.tmp"));
  ExpectVolume({});
}

TEST_F(FsckTest, OverlappingBlocksThatBothVerifyAreLeftForTheUser) {
  Ingest(0, kZ);
  const Shape3 brick{0, 0, 0};
  ShardIndex idx = Index(brick);
  idx.Set(1, idx.at(0));  // block 1 now points at block 0's bytes
  std::string enc;
  idx.EncodeTo(&enc);
  Bytes shard = ReadBytes(Shard(brick));
  shard.insert(shard.end(), enc.begin(), enc.end());
  WriteBytes(Shard(brick), shard);
  FsckReport r = Check(true, kFsckProblemsLeft, "overlap");
  const FsckProblem* p = Find(r, "overlap");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->repaired);
  EXPECT_NE(p->action.find("cannot tell"), std::string::npos) << p->action;
}

TEST_F(FsckTest, StoreInUseByADaemonIsBusyAndMissingStoreNotFound) {
  Ingest(0, kZ);
  {
    StoreOpenOptions so;  // what a read-write mount holds
    auto daemon = Store::Open(store_, so);
    ASSERT_TRUE(daemon.ok());
    auto r = Fsck(store_, FsckOptions{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kBusy);
    EXPECT_NE(r.status().message().find("in use by a brickfs daemon"), std::string::npos)
        << r.status().message();
  }
  {
    StoreOpenOptions so;  // a read-only mount: a check may run, a repair not
    so.read_only = true;
    auto ro = Store::Open(store_, so);
    ASSERT_TRUE(ro.ok());
    EXPECT_TRUE(Fsck(store_, FsckOptions{}).ok());
    FsckOptions repair;
    repair.repair = true;
    auto r = Fsck(store_, repair);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kBusy);
  }
  auto missing = Fsck(root_ + "/nope.zarr", FsckOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
}


// ---------------------------------------------------------------------------
// Pyramid levels: checked like level 0; repaired by rebuilding from below.

TEST_F(FsckTest, FlippedByteInALevelBlockIsRebuiltFromTheLevelBelowWithNoDataLost) {
  Ingest(0, kZ);
  const std::vector<uint16_t> level1 = ReadLevel(1);
  ASSERT_FALSE(level1.empty());
  const Shape3 brick{0, 0, 0};
  const uint64_t block = 5;  // local z,y,x 1,0,1
  const BlockLocation loc = LevelIndex(1, brick).at(block);
  ASSERT_FALSE(loc.empty());
  Bytes shard = ReadBytes(LevelShard(1, brick));
  shard[loc.offset + loc.nbytes / 2] ^= 0x40;
  WriteBytes(LevelShard(1, brick), shard);

  auto before = Snapshot();
  FsckReport check = Check(false, kFsckProblemsLeft, "check");
  EXPECT_TRUE(before == Snapshot());
  ASSERT_EQ(check.problems.size(), 1u);
  const FsckProblem& p = check.problems[0];
  EXPECT_EQ(p.kind, "block");
  EXPECT_EQ(p.level, 1);
  EXPECT_EQ(p.path, "1/c/0/0/0");
  EXPECT_EQ(*p.block, block);
  EXPECT_EQ(*p.block_zyx, (Shape3{1, 0, 1}));
  EXPECT_NE(p.Line().find("1/c/0/0/0 block 5 (block z,y,x 1,0,1): "), std::string::npos) << p.Line();
  EXPECT_NE(p.message.find("crc32c mismatch"), std::string::npos) << p.message;
  EXPECT_TRUE(p.lost_z.empty()) << "a level block is derived: no slice to copy again";

  FsckReport repair = Check(true, kFsckAllRepaired, "repair");
  ASSERT_EQ(repair.problems.size(), 1u);
  const FsckProblem& r = repair.problems[0];
  EXPECT_TRUE(r.repaired);
  EXPECT_FALSE(r.data_lost);
  EXPECT_NE(r.action.find("rebuilt from level 0"), std::string::npos) << r.action;
  EXPECT_NE(r.action.find("no data"), std::string::npos) << r.action;
  EXPECT_EQ(repair.blocks_lost(), 0u);
  EXPECT_TRUE(repair.lost_z().empty());
  // Append protocol: the old bytes are still there, the fresh block and a
  // new index were appended after them.
  EXPECT_GT(FileSize(LevelShard(1, brick)), shard.size());
  EXPECT_GE(LevelIndex(1, brick).at(block).offset, shard.size());
  Check(false, kFsckClean, "after repair");
  Check(false, kFsckClean, "deep, after repair", /*deep=*/true);
  EXPECT_TRUE(ReadLevel(1) == level1) << "level 1 does not read as before the flip";
  ExpectVolume({}, 0, "level 0 untouched");
}

TEST_F(FsckTest, LevelShardWithNoValidIndexIsMovedAsideAndItsLevelRebuilt) {
  Ingest(0, kZ);
  const std::vector<uint16_t> level1 = ReadLevel(1);
  ASSERT_EQ(::truncate(LevelShard(1, {0, 0, 0}).c_str(), 100), 0);
  FsckReport r = CheckRepairCheck("level index");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, "index");
  EXPECT_EQ(r.problems[0].path, "1/c/0/0/0");
  EXPECT_FALSE(r.problems[0].data_lost);
  EXPECT_TRUE(r.problems[0].lost_z.empty());
  EXPECT_NE(r.problems[0].action.find("lost+found"), std::string::npos) << r.problems[0].action;
  EXPECT_NE(r.problems[0].action.find("rebuilt from level 0"), std::string::npos) << r.problems[0].action;
  EXPECT_EQ(FileSize(store_ + "/.brickfs/lost+found/1_c_0_0_0"), 100u);
  EXPECT_TRUE(ReadLevel(1) == level1);
}

TEST_F(FsckTest, TornTailOfALevelShardIsCutAndTheBlocksItHeldRebuilt) {
  Ingest(0, 8);       // level 1: rows of 4 planes, written by the finalize
  Ingest(8, kZ);      // the second session appends level 1's second row
  const std::vector<uint16_t> level1 = ReadLevel(1);
  const std::string shard = LevelShard(1, {0, 0, 0});
  const uint64_t size = FileSize(shard);
  ASSERT_EQ(::truncate(shard.c_str(), static_cast<off_t>(size - kIndexSize / 2)), 0);
  FsckReport r = CheckRepairCheck("level torn tail");
  const FsckProblem* p = Find(r, "torn_tail");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->level, 1);
  EXPECT_FALSE(p->data_lost);
  EXPECT_TRUE(r.lost_z().empty());
  EXPECT_NE(p->action.find("rebuilt from level 0"), std::string::npos) << p->action;
  EXPECT_TRUE(ReadLevel(1) == level1);
}

TEST_F(FsckTest, LevelArrayMetadataIsCheckedAgainstLevelZeroAndRewritten) {
  Ingest(0, kZ);
  const Bytes good = ReadBytes(store_ + "/1/zarr.json");
  {
    VolumeMeta m = StoredMeta().LevelMeta(1);
    m.geo.shape = {5, 10, 12};  // not LevelShape(16,19,23, 1) = 8,10,12
    m.present = {{0, 4}};
    std::ofstream(store_ + "/1/zarr.json", std::ios::trunc) << m.ArrayJson();
  }
  FsckReport r = CheckRepairCheck("level shape");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, "metadata");
  EXPECT_EQ(r.problems[0].path, "1/zarr.json");
  EXPECT_EQ(r.problems[0].level, 1);
  EXPECT_NE(r.problems[0].message.find("8,10,12"), std::string::npos) << r.problems[0].message;
  EXPECT_TRUE(ReadBytes(store_ + "/1/zarr.json") == good);

  {
    VolumeMeta m = StoredMeta().LevelMeta(1);
    m.geo.block = {8, 8, 8};
    std::ofstream(store_ + "/1/zarr.json", std::ios::trunc) << m.ArrayJson();
  }
  r = CheckRepairCheck("level block shape");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].message.find("block"), std::string::npos) << r.problems[0].message;
  EXPECT_TRUE(ReadBytes(store_ + "/1/zarr.json") == good);

  ASSERT_EQ(::unlink((store_ + "/1/zarr.json").c_str()), 0);
  r = CheckRepairCheck("level metadata missing");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].path, "1/zarr.json");
  EXPECT_TRUE(ReadBytes(store_ + "/1/zarr.json") == good);

  std::ofstream(store_ + "/1/zarr.json", std::ios::trunc) << "{\"zarr_format\": 3, \"node_ty";
  r = CheckRepairCheck("level metadata garbage");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(ReadBytes(store_ + "/1/zarr.json") == good);
}

TEST_F(FsckTest, LevelDirectoryThatIsGoneIsRebuiltFromLevelZero) {
  Ingest(0, kZ);
  const std::vector<uint16_t> level1 = ReadLevel(1);
  ASSERT_EQ(std::system(("rm -rf '" + store_ + "/1'").c_str()), 0);
  FsckReport r = CheckRepairCheck("level directory gone");
  ASSERT_EQ(r.problems.size(), 1u) << Lines(r);
  const FsckProblem& p = r.problems[0];
  EXPECT_EQ(p.path, "1/zarr.json");
  EXPECT_NE(p.message.find("whole directory 1/"), std::string::npos) << p.message;
  EXPECT_NE(p.action.find("rewritten from 0/zarr.json"), std::string::npos) << p.action;
  EXPECT_NE(p.action.find("rebuilt from level 0 (8 blocks"), std::string::npos) << p.action;
  EXPECT_FALSE(p.data_lost);
  EXPECT_TRUE(ReadLevel(1) == level1);
  Check(false, kFsckClean, "deep, after the rebuild", /*deep=*/true);
}

TEST_F(FsckTest, LevelDirectoryTheMetadataDoesNotListIsAStray) {
  Ingest(0, kZ);  // two levels: 0 and 1
  ASSERT_EQ(std::system(("mkdir -p '" + store_ + "/2/c/0/0'").c_str()), 0);
  { std::ofstream(store_ + "/2/c/0/0/0") << "an old level"; }
  { std::ofstream(store_ + "/2/zarr.json") << "{}"; }
  FsckReport r = CheckRepairCheck("stray level");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, "stray");
  EXPECT_EQ(r.problems[0].path, "2");
  EXPECT_NE(r.problems[0].message.find("num_levels"), std::string::npos) << r.problems[0].message;
  EXPECT_FALSE(Exists(store_ + "/2"));
  EXPECT_TRUE(Exists(store_ + "/.brickfs/lost+found/2/c/0/0/0"));
}

TEST_F(FsckTest, StrayFileUnderALevelIsReportedWithItsLevelPath) {
  Ingest(0, kZ);
  { std::ofstream(store_ + "/1/c/0/0/notes.txt") << "hello"; }
  { std::ofstream(store_ + "/1/c/0/0/0.tmp") << "half a replaced brick"; }
  FsckReport r = CheckRepairCheck("level strays");
  ASSERT_EQ(r.problems.size(), 2u);
  std::map<std::string, const FsckProblem*> by_path;
  for (const auto& p : r.problems) by_path[p.path] = &p;
  ASSERT_TRUE(by_path.count("1/c/0/0/notes.txt"));
  ASSERT_TRUE(by_path.count("1/c/0/0/0.tmp"));
  EXPECT_EQ(by_path["1/c/0/0/0.tmp"]->action, "deleted");
}

// ---------------------------------------------------------------------------
// --deep: every level recomputed from level 0.

TEST_F(FsckTest, DeepFindsALevelBlockThatVerifiesButHoldsWrongDataAndRepairRewritesIt) {
  Ingest(0, kZ);
  const std::vector<uint16_t> level1 = ReadLevel(1);
  WriteValidBlock(1, {0, 0, 0}, 6, 4242);  // local z,y,x 1,1,0
  Check(false, kFsckClean, "a plain check sees valid blocks only");
  FsckReport r = CheckRepairCheck("deep", /*deep=*/true);
  ASSERT_EQ(r.problems.size(), 1u);
  const FsckProblem& p = r.problems[0];
  EXPECT_EQ(p.kind, "level_differs");
  EXPECT_EQ(p.level, 1);
  EXPECT_EQ(p.path, "1/c/0/0/0");
  EXPECT_EQ(*p.block, 6u);
  EXPECT_EQ(*p.block_zyx, (Shape3{1, 1, 0}));
  EXPECT_NE(p.message.find("differs from the reduction of level 0"), std::string::npos) << p.message;
  EXPECT_NE(p.message.find("4242"), std::string::npos) << p.message;
  EXPECT_FALSE(p.data_lost);
  EXPECT_NE(p.action.find("rewritten"), std::string::npos) << p.action;
  EXPECT_GT(r.deep_blocks_compared, 0u);
  EXPECT_TRUE(ReadLevel(1) == level1);
}

TEST_F(FsckTest, DeepTakesLevelZeroAsTheTruthThroughEveryLevel) {
  Ingest(0, 32);  // 32 x 19 x 23: levels 16 x 10 x 12 and 8 x 5 x 6
  {
    auto v = OpenVolume(true);
    ASSERT_NE(v, nullptr);
    ASSERT_EQ(v->LevelCount(), 3);
  }
  // A wrong level-1 block: level 2 was built from the right one, so only
  // level 1 differs from what level 0 gives.
  WriteValidBlock(1, {0, 0, 0}, 0, 7, 32);
  FsckReport r = Check(false, kFsckProblemsLeft, "level 1 wrong", /*deep=*/true);
  ASSERT_EQ(r.problems.size(), 1u) << Lines(r);
  EXPECT_EQ(r.problems[0].level, 1);
  EXPECT_EQ(*r.problems[0].block_zyx, (Shape3{0, 0, 0}));
  Check(true, kFsckAllRepaired, "level 1 wrong (repair)", /*deep=*/true);
  Check(false, kFsckClean, "level 1 repaired", /*deep=*/true);

  // A level-0 block changed (level 0 is the truth): the blocks above it in
  // levels 1 and 2 no longer match and are rewritten from it.
  WriteValidBlock(0, {2, 0, 0}, 0, 60000, 32);  // level-0 block 4,0,0: z 16-19
  r = Check(false, kFsckProblemsLeft, "level 0 changed", /*deep=*/true);
  std::map<int, std::vector<Shape3>> differ;
  for (const auto& p : r.problems) {
    EXPECT_EQ(p.kind, "level_differs") << p.Line();
    differ[p.level].push_back(*p.block_zyx);
  }
  EXPECT_EQ(differ[1], (std::vector<Shape3>{{2, 0, 0}}));
  EXPECT_EQ(differ[2], (std::vector<Shape3>{{1, 0, 0}}));
  EXPECT_NE(r.problems.back().message.find("level 1"), std::string::npos) << r.problems.back().message;
  Check(true, kFsckAllRepaired, "level 0 changed (repair)", /*deep=*/true);
  Check(false, kFsckClean, "levels rebuilt", /*deep=*/true);
  const std::vector<uint16_t> l0 = ReadLevel(0), l1 = ReadLevel(1), l2 = ReadLevel(2);
  const Shape3 s0{32, kY, kX}, s1 = DownsampledShape(s0), s2 = DownsampledShape(s1);
  std::vector<uint16_t> want1(Product(s1)), want2(Product(s2));
  Downsample2x(DType::kUint16, DownsampleMethod::kMean, reinterpret_cast<const uint8_t*>(l0.data()), s0,
               reinterpret_cast<uint8_t*>(want1.data()));
  Downsample2x(DType::kUint16, DownsampleMethod::kMean, reinterpret_cast<const uint8_t*>(want1.data()), s1,
               reinterpret_cast<uint8_t*>(want2.data()));
  EXPECT_TRUE(l1 == want1);
  EXPECT_TRUE(l2 == want2);
}

TEST_F(FsckTest, UncleanShutdownRepairRebuildsTheLevelsOverTheBricksItChanged) {
  Ingest(0, kZ);
  // A second session rewrites slab 0 (z 0-3) and dies: the slab is
  // committed, but level 1's row that it feeds (planes 0-3) was still
  // waiting in memory for planes 2-3.
  IngestAndDie(0, 4, 1, Options());
  ASSERT_GT(FileSize(Journal::PathFor(store_)), 0u);
  FsckReport check = Check(false, kFsckProblemsLeft, "check");
  ASSERT_NE(Find(check, "unclean_shutdown"), nullptr);
  FsckReport repair = Check(true, kFsckAllRepaired, "repair");
  const FsckProblem* p = Find(repair, "unclean_shutdown");
  ASSERT_NE(p, nullptr);
  EXPECT_NE(p->action.find("levels"), std::string::npos) << p->action;
  Check(false, kFsckClean, "deep, after recovery", /*deep=*/true);
  const std::vector<uint16_t> l0 = ReadLevel(0), l1 = ReadLevel(1);
  ASSERT_EQ(l0[0], Voxel(0, 0, 0, 1));
  const Shape3 s0{kZ, kY, kX};
  std::vector<uint16_t> want(Product(DownsampledShape(s0)));
  Downsample2x(DType::kUint16, DownsampleMethod::kMean, reinterpret_cast<const uint8_t*>(l0.data()), s0,
               reinterpret_cast<uint8_t*>(want.data()));
  EXPECT_TRUE(l1 == want) << "level 1 is not the reduction of the recovered level 0";
}

// ---------------------------------------------------------------------------
// Blocks outside the recorded shape, spool files, the group document.

TEST_F(FsckTest, StaleShapeOfAStoreWhoseDaemonDiedWithoutItsJournalIsGrownNotDropped) {
  Ingest(0, 8);
  // The next session's journal is deleted while it runs (nothing journaled),
  // then the daemon is killed: 0/zarr.json still has the shape it wrote at
  // the session's first slice (9 slices), though slabs 2 and 3 (z 8-15)
  // were stored.
  VolumeOptions o = Options();
  o.journal = false;
  IngestAndDie(8, kZ, 0, o);
  ASSERT_EQ(StoredMeta().geo.shape, (Shape3{9, kY, kX}));
  ASSERT_FALSE(StoredMeta().finalized);
  ASSERT_EQ(FileSize(Journal::PathFor(store_)), 0u);
  std::map<std::string, uint64_t> sizes;
  for (const Shape3& b : std::vector<Shape3>{{1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {1, 1, 1}}) {
    sizes[Shard(b)] = FileSize(Shard(b));
    ASSERT_GT(sizes[Shard(b)], 0u);
  }

  FsckReport check = Check(false, kFsckProblemsLeft, "check");
  ASSERT_EQ(check.problems.size(), 3u) << Lines(check);
  const FsckProblem* u = Find(check, "unclean_shutdown");
  ASSERT_NE(u, nullptr);
  EXPECT_NE(u->message.find("no journal"), std::string::npos) << u->message;
  const FsckProblem* c = Find(check, "shape");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->path, "0/zarr.json");
  EXPECT_NE(c->message.find("not finalized"), std::string::npos) << c->message;
  EXPECT_EQ(c->check_z, (ZRanges{{9, 15}}));
  // Slabs 2 and 3 were stored whole, but 0/zarr.json lists only slices 0-7.
  const FsckProblem* sp = Find(check, "slices_present");
  ASSERT_NE(sp, nullptr);
  EXPECT_EQ(sp->check_z, (ZRanges{{8, 15}}));

  FsckReport repair = Check(true, kFsckAllRepaired, "repair");
  ASSERT_EQ(repair.problems.size(), 3u);
  EXPECT_NE(Find(repair, "unclean_shutdown")->action.find("levels rebuilt from level 0"), std::string::npos)
      << Find(repair, "unclean_shutdown")->action;
  const FsckProblem* p = Find(repair, "shape");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->repaired);
  EXPECT_FALSE(p->data_lost);
  EXPECT_NE(p->action.find("16 x 19 x 23"), std::string::npos) << p->action;
  EXPECT_NE(p->action.find("nothing dropped"), std::string::npos) << p->action;
  EXPECT_EQ(repair.blocks_lost(), 0u);
  EXPECT_TRUE(repair.lost_z().empty());
  EXPECT_EQ(repair.check_z(), (ZRanges{{8, 15}}));
  for (const auto& [path, size] : sizes) EXPECT_EQ(FileSize(path), size) << path << ": nothing dropped";
  const VolumeMeta m = StoredMeta();
  EXPECT_EQ(m.geo.shape, (Shape3{kZ, kY, kX}));
  EXPECT_TRUE(m.finalized) << "recovered: a mount takes it as it is";
  EXPECT_EQ(m.present, (ZRanges{{0, 15}}));
  Check(false, kFsckClean, "after repair");
  Check(false, kFsckClean, "deep, after repair: levels rebuilt from level 0", /*deep=*/true);
  ExpectVolume({}, 0, "every stored block reads");
}

TEST_F(FsckTest, BlocksOutsideAFinalizedShapeAreDroppedAndSaidToBeLost) {
  Ingest(0, kZ);
  {
    // A finalized shape of 3 slices: block row 1 (z 4-7) lies outside it in
    // the bricks of z 0, and the bricks of z 1 (z 8-15) outside its brick grid.
    VolumeMeta m = StoredMeta();
    m.geo.shape = {3, kY, kX};
    m.present = {{0, 2}};
    StoreOpenOptions so;
    auto st = Store::Open(store_, so);
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE((*st)->WriteMeta(m).ok());
  }
  FsckReport r = CheckRepairCheck("outside a finalized shape");
  uint64_t outside0 = 0, stray0 = 0;
  for (const auto& p : r.problems) {
    EXPECT_TRUE(p.repaired) << p.Line();
    EXPECT_EQ(p.action.find("no data of the array was lost"), std::string::npos) << p.Line();
    if (p.level == 0) {
      EXPECT_TRUE(p.data_lost) << p.Line();
      EXPECT_NE(p.action.find("LOST"), std::string::npos) << p.Line();
      outside0 += p.kind == "block_outside_shape";
      stray0 += p.kind == "stray" && p.path == "0/c/1";
    } else {
      EXPECT_EQ(p.kind, "block_outside_shape") << p.Line();
      EXPECT_FALSE(p.data_lost) << "a level block is derived: " << p.Line();
    }
  }
  EXPECT_EQ(outside0, 3u * 3) << "block row 1";
  EXPECT_EQ(stray0, 1u) << "the bricks of z 8-15";
  EXPECT_EQ(r.lost_z(), (ZRanges{{4, 15}}));
}

TEST_F(FsckTest, SpoolFilesOfADeadDaemonAreReportedAndRemoved) {
  // A budget of one slab: slice 4 (slab 1) arrives while slab 0 holds only
  // slice 0, so slab 0 is parked in the spool; then the daemon dies.
  VolumeOptions o = Options();
  o.mem_budget = kBlock[0] * kY * kX * 2;
  {
    auto v = OpenVolume(false, o);
    ASSERT_NE(v, nullptr);
    for (uint64_t z : {uint64_t{0}, uint64_t{4}}) {
      Bytes tif = SliceTiff(root_, z, 0);
      ASSERT_TRUE(v->IngestSlice("s.tif", z, tif.data(), tif.size()).ok());
    }
  }
  ASSERT_TRUE(Exists(store_ + "/.brickfs/spool/slab-0")) << "nothing was spooled";
  FsckReport check = Check(false, kFsckProblemsLeft, "check");
  const FsckProblem* p = Find(check, "spool");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->path, ".brickfs/spool/slab-0");
  EXPECT_NE(p->message.find("never committed"), std::string::npos) << p->message;
  EXPECT_NE(p->message.find("z 0-3"), std::string::npos) << p->message;
  ASSERT_NE(Find(check, "unclean_shutdown"), nullptr);
  FsckReport repair = Check(true, kFsckAllRepaired, "repair");
  p = Find(repair, "spool");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->repaired);
  EXPECT_FALSE(p->data_lost);
  EXPECT_NE(p->action.find("removed"), std::string::npos) << p->action;
  EXPECT_FALSE(Exists(store_ + "/.brickfs/spool/slab-0"));
  Check(false, kFsckClean, "after repair");
}

TEST_F(FsckTest, RootZarrJsonOverwrittenByAnotherToolIsRebuiltFromTheArrays) {
  Ingest(0, kZ);
  const Bytes good = ReadBytes(store_ + "/zarr.json");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"zarr-python 2.13 v3 entry point",
       R"({"zarr_format": "https://purl.org/zarr/spec/protocol/core/3.0",
           "metadata_encoding": "https://purl.org/zarr/spec/protocol/core/3.0",
           "metadata_key_suffix": ".json", "extensions": []})"},
      {"not JSON", "\x89PNG garbage"},
      {"an array document", R"({"zarr_format": 3, "node_type": "array"})"},
      {"missing", ""},
  };
  for (const auto& [what, doc] : cases) {
    SCOPED_TRACE(what);
    if (doc.empty()) {
      ASSERT_EQ(::unlink((store_ + "/zarr.json").c_str()), 0);
    } else {
      std::ofstream(store_ + "/zarr.json", std::ios::trunc) << doc;
    }
    FsckReport r = CheckRepairCheck(what);
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(r.problems[0].kind, "metadata");
    EXPECT_EQ(r.problems[0].path, "zarr.json");
    EXPECT_NE(r.problems[0].action.find("rebuilt from"), std::string::npos) << r.problems[0].action;
    EXPECT_TRUE(ReadBytes(store_ + "/zarr.json") == good) << what;
    if (!doc.empty()) {
      // The foreign document is kept for inspection, under the name the action gives.
      const std::string& a = r.problems[0].action;
      const size_t at = a.find(".brickfs/lost+found/");
      ASSERT_NE(at, std::string::npos) << a;
      const std::string name = a.substr(at, a.find_first_of(" ;)", at) - at);
      const Bytes kept = ReadBytes(store_ + "/" + name);
      EXPECT_EQ(std::string(kept.begin(), kept.end()), doc) << name;
    }
    StoreOpenOptions so;
    so.read_only = true;
    EXPECT_TRUE(Store::Open(store_, so).ok()) << what;
  }
  ExpectVolume({});
}

}  // namespace
}  // namespace brickfs

namespace brickfs {
namespace {

// A journal copied from another store (another session) is not replayed: fsck
// says so, and --repair moves it to lost+found; the store then mounts.
TEST_F(FsckTest, AJournalOfAnotherSessionIsIgnoredAndMovedAway) {
  Ingest(0, 8);
  const std::string other = root_ + "/other.zarr";
  {
    StoreOpenOptions so;
    so.create_if_missing = true;
    auto store = Store::Open(other, so);
    ASSERT_TRUE(store.ok());
    auto v = Volume::Open(std::move(*store), Options());
    ASSERT_TRUE(v.ok());
    (*v)->Start();
    Bytes tif = SliceTiff(root_, 0, 1);
    ASSERT_TRUE((*v)->IngestSlice("o_000.tif", 0, tif.data(), tif.size()).ok());
  }  // a crash: the journal keeps its frames
  {
    std::ifstream in(other + "/.brickfs/journal", std::ios::binary);
    std::ofstream(store_ + "/.brickfs/journal", std::ios::binary) << in.rdbuf();
  }
  FsckReport r = Check(false, kFsckProblemsLeft, "foreign journal");
  bool named = false;
  for (const auto& p : r.problems) named = named || p.message.find("another session") != std::string::npos;
  EXPECT_TRUE(named);
  Check(true, kFsckAllRepaired, "repair");
  Check(false, kFsckClean, "after repair");
  auto v = OpenVolume(false);
  ASSERT_NE(v, nullptr);
  EXPECT_FALSE(v->recovery().needed);
}

}  // namespace
}  // namespace brickfs
