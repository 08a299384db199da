// Tests for ShardStore: the append protocol (every append leaves a valid
// shard whose last index points at the newest blocks), indexes read back by
// a fresh instance, reads of empty entries, and corrupt shards.
#include "store/shard_store.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "format/shard_index.h"

namespace brickfs {
namespace {

// 8 blocks of 4x8x8 uint16 (512 bytes raw) per 8x16x16 brick.
Geometry TestGeometry() {
  Geometry g;
  g.shape = {13, 19, 23};
  g.block = {4, 8, 8};
  g.brick = {8, 16, 16};
  g.dtype = DType::kUint16;
  return g;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

class ShardStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_shard_store_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/0";
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  // A raw block whose every byte derives from `seed`.
  std::vector<uint8_t> RawBlock(uint32_t seed) const {
    std::vector<uint8_t> v(geo_.block_bytes());
    std::mt19937 rng(seed);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i / 5 + seed + (rng() & 3));
    return v;
  }
  std::string Enc(uint32_t seed) {
    std::string out;
    auto raw = RawBlock(seed);
    EXPECT_TRUE(codec_.Encode(raw.data(), raw.size(), &out).ok());
    return out;
  }
  std::vector<uint8_t> Dec(const std::string& enc) {
    std::vector<uint8_t> out(geo_.block_bytes());
    Status s = codec_.Decode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size(),
                             out.data(), out.size());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  // Decodes the index at the end of a shard file independently of ShardStore.
  Result<ShardIndex> IndexOfFile(const std::string& path) {
    std::string data = ReadAll(path);
    uint64_t isz = ShardIndex::EncodedSize(geo_.blocks_in_brick());
    if (data.size() < isz) return Status::Corruption("short");
    return ShardIndex::Decode(reinterpret_cast<const uint8_t*>(data.data()) + data.size() - isz,
                              isz, geo_.blocks_in_brick(), data.size() - isz,
                              BlockCodec::MaxEncodedSize(geo_.block_bytes()), path);
  }

  std::string root_, dir_;
  Geometry geo_ = TestGeometry();
  BlockCodec codec_{1};
};

TEST_F(ShardStoreTest, BrickPathIsZarrDefaultChunkKey) {
  ShardStore store(dir_, geo_, false);
  EXPECT_EQ(store.BrickPath({1, 2, 3}), dir_ + "/c/1/2/3");
  EXPECT_EQ(store.BrickPath({0, 0, 10}), dir_ + "/c/0/0/10");
  EXPECT_EQ(store.max_block_nbytes(), BlockCodec::MaxEncodedSize(512));
}

TEST_F(ShardStoreTest, MissingBrickHasAllEmptyIndexAndNoFile) {
  ShardStore store(dir_, geo_, false);
  auto idx = store.GetIndex({0, 0, 0});
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_EQ((*idx)->size(), 8u);
  EXPECT_EQ((*idx)->live_blocks(), 0u);
  std::vector<std::string> out;
  ASSERT_TRUE(store.ReadBlocks({0, 0, 0}, {0, 3, 7}, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  for (const auto& s : out) EXPECT_TRUE(s.empty());
  EXPECT_EQ(FileSize(store.BrickPath({0, 0, 0})), 0u);
  EXPECT_EQ(::access(store.BrickPath({0, 0, 0}).c_str(), F_OK), -1);
}

TEST_F(ShardStoreTest, SingleAppendWritesBlocksThenIndex) {
  ShardStore store(dir_, geo_, false);
  std::string b0 = Enc(10), b5 = Enc(15);
  AppendStats stats;
  ASSERT_TRUE(store.Append({0, 1, 0}, {{0, b0}, {5, b5}}, &stats).ok());
  const std::string path = store.BrickPath({0, 1, 0});
  const uint64_t isz = ShardIndex::EncodedSize(8);
  EXPECT_EQ(FileSize(path), b0.size() + b5.size() + isz);
  EXPECT_EQ(stats.block_bytes, b0.size() + b5.size());
  EXPECT_EQ(stats.bytes_written, b0.size() + b5.size() + isz);
  std::string data = ReadAll(path);
  EXPECT_EQ(data.substr(0, b0.size()), b0);
  EXPECT_EQ(data.substr(b0.size(), b5.size()), b5);
  auto idx = IndexOfFile(path);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_EQ(idx->at(0).offset, 0u);
  EXPECT_EQ(idx->at(0).nbytes, b0.size());
  EXPECT_EQ(idx->at(5).offset, b0.size());
  EXPECT_EQ(idx->at(5).nbytes, b5.size());
  EXPECT_EQ(idx->live_blocks(), 2u);
}

TEST_F(ShardStoreTest, SecondAppendToSameBrickLeavesValidShardPointingAtNewestBlocks) {
  ShardStore store(dir_, geo_, false);
  const Shape3 brick{1, 0, 1};
  std::string a0 = Enc(1), a1 = Enc(2);
  ASSERT_TRUE(store.Append(brick, {{0, a0}, {1, a1}}, nullptr).ok());
  const std::string path = store.BrickPath(brick);
  const uint64_t first_size = FileSize(path);
  std::string b1 = Enc(3), b2 = Enc(4);
  AppendStats stats;
  ASSERT_TRUE(store.Append(brick, {{1, b1}, {2, b2}}, &stats).ok());
  const uint64_t isz = ShardIndex::EncodedSize(8);

  // The old file is an untouched prefix; the append went at its end.
  std::string data = ReadAll(path);
  EXPECT_EQ(data.size(), first_size + b1.size() + b2.size() + isz);
  auto idx = IndexOfFile(path);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_EQ(idx->at(0).offset, 0u);  // block 0 still the first append's
  EXPECT_EQ(idx->at(1).offset, first_size);
  EXPECT_EQ(idx->at(1).nbytes, b1.size());
  EXPECT_EQ(idx->at(2).offset, first_size + b1.size());
  EXPECT_TRUE(idx->at(3).empty());
  EXPECT_EQ(data.substr(idx->at(1).offset, idx->at(1).nbytes), b1);
  EXPECT_EQ(data.substr(idx->at(2).offset, idx->at(2).nbytes), b2);

  // Dead bytes: the replaced block a1 and the first index.
  EXPECT_EQ(data.size() - idx->live_bytes() - isz, a1.size() + isz);

  // Reads through a fresh instance return the newest data.
  ShardStore fresh(dir_, geo_, true);
  std::vector<std::string> out;
  ASSERT_TRUE(fresh.ReadBlocks(brick, {0, 1, 2, 3}, &out).ok());
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(Dec(out[0]) == RawBlock(1));
  EXPECT_TRUE(Dec(out[1]) == RawBlock(3));
  EXPECT_TRUE(Dec(out[2]) == RawBlock(4));
  EXPECT_TRUE(out[3].empty());
}

TEST_F(ShardStoreTest, GetIndexOfFreshInstanceEqualsInMemoryIndex) {
  ShardStore store(dir_, geo_, false);
  for (uint32_t round = 0; round < 4; ++round) {
    std::vector<std::string> encs;
    for (uint64_t i = round; i < 8; i += 2) encs.push_back(Enc(round * 100 + static_cast<uint32_t>(i)));
    std::vector<EncodedBlock> blocks;
    size_t k = 0;
    for (uint64_t i = round; i < 8; i += 2) blocks.push_back({i, encs[k++]});
    ASSERT_TRUE(store.Append({0, 0, 0}, blocks, nullptr).ok());
    ASSERT_TRUE(store.Append({1, 1, 1}, {blocks[0]}, nullptr).ok());
  }
  ShardStore fresh(dir_, geo_, true);
  for (Shape3 brick : {Shape3{0, 0, 0}, Shape3{1, 1, 1}}) {
    auto mem = store.GetIndex(brick);
    auto disk = fresh.GetIndex(brick);
    ASSERT_TRUE(mem.ok());
    ASSERT_TRUE(disk.ok()) << disk.status().ToString();
    ASSERT_EQ((*mem)->size(), (*disk)->size());
    for (uint64_t i = 0; i < (*mem)->size(); ++i) {
      EXPECT_EQ((*mem)->at(i).offset, (*disk)->at(i).offset) << i;
      EXPECT_EQ((*mem)->at(i).nbytes, (*disk)->at(i).nbytes) << i;
    }
  }
}

TEST_F(ShardStoreTest, ReadBlocksReturnsEmptyStringsForEmptyEntries) {
  ShardStore store(dir_, geo_, false);
  std::string b3 = Enc(33);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{3, b3}}, nullptr).ok());
  std::vector<std::string> out = {"junk"};
  ASSERT_TRUE(store.ReadBlocks({0, 0, 0}, {0, 3, 7, 3}, &out).ok());
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(out[0].empty());
  EXPECT_EQ(out[1], b3);
  EXPECT_TRUE(out[2].empty());
  EXPECT_EQ(out[3], b3);
}

TEST_F(ShardStoreTest, VisitorSeesEachStoredBlockOnceInFileOrderAndCanStopTheRead) {
  ShardStore store(dir_, geo_, false);
  std::string b1 = Enc(11), b5 = Enc(55), b6 = Enc(66);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{5, b5}, {1, b1}}, nullptr).ok());
  ASSERT_TRUE(store.Append({0, 0, 0}, {{6, b6}}, nullptr).ok());
  std::vector<std::pair<size_t, std::string>> seen;
  ASSERT_TRUE(store
                  .ReadBlocks({0, 0, 0}, {6, 0, 1, 5},
                              [&](size_t i, std::string_view bytes) {
                                seen.emplace_back(i, std::string(bytes));
                                return Status::Ok();
                              })
                  .ok());
  // Block 0 was never written; the others come in file order: 5, 1, then 6.
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(size_t{3}, b5));
  EXPECT_EQ(seen[1], std::make_pair(size_t{2}, b1));
  EXPECT_EQ(seen[2], std::make_pair(size_t{0}, b6));
  int calls = 0;
  Status st = store.ReadBlocks({0, 0, 0}, {1, 5, 6}, [&](size_t, std::string_view) {
    ++calls;
    return Status::Corruption("bad block");
  });
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_EQ(calls, 1);
}

TEST_F(ShardStoreTest, ScanUsageCountsUpToTheRecoveredLengthOfATornShard) {
  ShardStore store(dir_, geo_, false);
  std::string b1 = Enc(1), b2 = Enc(2);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{1, b1}}, nullptr).ok());
  const uint64_t committed = FileSize(store.BrickPath({0, 0, 0}));
  ASSERT_TRUE(store.Append({0, 0, 0}, {{2, b2}}, nullptr).ok());
  // A crash mid-append: the file ends in half an index.
  ASSERT_EQ(::truncate(store.BrickPath({0, 0, 0}).c_str(),
                       static_cast<off_t>(FileSize(store.BrickPath({0, 0, 0})) - 7)),
            0);
  ShardStore fresh(dir_, geo_, true);
  EXPECT_EQ(fresh.ScanUsage({1, 1, 1}).status().code(), Status::Code::kCorruption);
  auto u = fresh.ScanUsage({1, 1, 1}, [&](const Shape3&) { return std::optional<uint64_t>(committed); });
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->files, 1u);
  EXPECT_EQ(u->file_bytes, committed);
  EXPECT_EQ(u->live_blocks, 1u);
  EXPECT_EQ(u->live_block_bytes, b1.size());
}

TEST_F(ShardStoreTest, PrefetchIsAHintThatChangesNothing) {
  ShardStore store(dir_, geo_, false);
  store.Prefetch({0, 0, 0}, {0, 1});  // no file yet
  std::string b2 = Enc(22);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{2, b2}}, nullptr).ok());
  const uint64_t size = FileSize(store.BrickPath({0, 0, 0}));
  store.Prefetch({0, 0, 0}, {0, 2, 7});
  EXPECT_EQ(FileSize(store.BrickPath({0, 0, 0})), size);
  std::vector<std::string> out;
  ASSERT_TRUE(store.ReadBlocks({0, 0, 0}, {2}, &out).ok());
  EXPECT_EQ(out[0], b2);
}

TEST_F(ShardStoreTest, AppendOfEmptyBlockClearsTheEntry) {
  // Volume::FlushBrick clears a block that became all fill value by appending
  // an empty view for it; the entry must become "never written" (2^64-1).
  const Shape3 brick{0, 0, 0};
  {
    ShardStore store(dir_, geo_, false);
    std::string b2 = Enc(2), b4 = Enc(4);
    ASSERT_TRUE(store.Append(brick, {{2, b2}, {4, b4}}, nullptr).ok());
    ASSERT_TRUE(store.Append(brick, {{2, std::string_view()}}, nullptr).ok());
    auto idx = store.GetIndex(brick);
    ASSERT_TRUE(idx.ok());
    EXPECT_TRUE((*idx)->at(2).empty()) << "offset " << (*idx)->at(2).offset << " nbytes "
                                       << (*idx)->at(2).nbytes;
    EXPECT_FALSE((*idx)->at(4).empty());
    std::vector<std::string> out;
    ASSERT_TRUE(store.ReadBlocks(brick, {2}, &out).ok());
    EXPECT_TRUE(out[0].empty());
  }
  // The shard on disk must still be valid for a fresh reader (and for any
  // Zarr reader: nbytes 0 is not "missing").
  ShardStore fresh(dir_, geo_, true);
  auto idx = fresh.GetIndex(brick);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_TRUE((*idx)->at(2).empty());
  EXPECT_FALSE((*idx)->at(4).empty());
  std::vector<std::string> out;
  ASSERT_TRUE(fresh.ReadBlocks(brick, {2, 4}, &out).ok());
  EXPECT_TRUE(out[0].empty());
  EXPECT_TRUE(Dec(out[1]) == RawBlock(4));
}

TEST_F(ShardStoreTest, FlippedByteInIndexIsCorruptionForFreshInstance) {
  const Shape3 brick{0, 1, 1};
  std::string path;
  {
    ShardStore store(dir_, geo_, false);
    std::string b = Enc(7);
    ASSERT_TRUE(store.Append(brick, {{0, b}, {7, b}}, nullptr).ok());
    path = store.BrickPath(brick);
  }
  const std::string good = ReadAll(path);
  const uint64_t isz = ShardIndex::EncodedSize(8);
  for (uint64_t back : {uint64_t{1}, uint64_t{3}, uint64_t{10}, isz - 1}) {
    std::string bad = good;
    bad[bad.size() - back] = static_cast<char>(bad[bad.size() - back] ^ 0x5A);
    WriteAll(path, bad);
    ShardStore fresh(dir_, geo_, true);
    auto idx = fresh.GetIndex(brick);
    ASSERT_FALSE(idx.ok()) << "byte " << back << " from the end";
    EXPECT_EQ(idx.status().code(), Status::Code::kCorruption);
    EXPECT_NE(idx.status().message().find(path), std::string::npos) << idx.status().message();
    std::vector<std::string> out;
    EXPECT_EQ(fresh.ReadBlocks(brick, {0}, &out).code(), Status::Code::kCorruption);
  }
}

TEST_F(ShardStoreTest, TornAppendTailIsCorruption) {
  // A crash mid-append leaves junk after the last index; until recovery
  // truncates it, the shard must not be trusted.
  const Shape3 brick{0, 0, 0};
  std::string path;
  {
    ShardStore store(dir_, geo_, false);
    ASSERT_TRUE(store.Append(brick, {{1, Enc(1)}}, nullptr).ok());
    path = store.BrickPath(brick);
  }
  WriteAll(path, ReadAll(path) + Enc(2).substr(0, 100));
  ShardStore fresh(dir_, geo_, true);
  EXPECT_EQ(fresh.GetIndex(brick).status().code(), Status::Code::kCorruption);
}

TEST_F(ShardStoreTest, ShardShorterThanItsIndexIsCorruption) {
  ShardStore store(dir_, geo_, false);
  const std::string path = store.BrickPath({0, 0, 0});
  ASSERT_EQ(std::system(("mkdir -p '" + dir_ + "/c/0/0'").c_str()), 0);
  WriteAll(path, std::string(ShardIndex::EncodedSize(8) - 1, '\0'));
  auto idx = store.GetIndex({0, 0, 0});
  ASSERT_FALSE(idx.ok());
  EXPECT_EQ(idx.status().code(), Status::Code::kCorruption);
  EXPECT_NE(idx.status().message().find("smaller"), std::string::npos) << idx.status().message();
  // An append must not paper over a corrupt shard either.
  EXPECT_FALSE(store.Append({0, 0, 0}, {{0, Enc(0)}}, nullptr).ok());
}

TEST_F(ShardStoreTest, IndexEntryPointingPastTheDataIsCorruption) {
  // A well-checksummed index whose entry lies beyond the data (e.g. the
  // file was truncated and an index from elsewhere appended).
  ASSERT_EQ(std::system(("mkdir -p '" + dir_ + "/c/0/0'").c_str()), 0);
  ShardIndex idx(8);
  idx.Set(0, {0, 200});
  std::string file(100, 'd');
  idx.EncodeTo(&file);
  ShardStore store(dir_, geo_, true);
  WriteAll(store.BrickPath({0, 0, 0}), file);
  auto r = store.GetIndex({0, 0, 0});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

TEST_F(ShardStoreTest, ReadOnlyStoreRefusesAppend) {
  ShardStore store(dir_, geo_, true);
  Status s = store.Append({0, 0, 0}, {{0, Enc(0)}}, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported);
  EXPECT_EQ(::access((dir_ + "/c").c_str(), F_OK), -1) << "read-only store created files";
}

TEST_F(ShardStoreTest, ConcurrentAppendsToManyBricksAllLand) {
  ShardStore store(dir_, geo_, false);
  std::vector<std::string> encs;
  for (uint32_t i = 0; i < 8; ++i) encs.push_back(Enc(i));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 8; ++i) {
        // Each thread appends to its own brick and to a shared one.
        EXPECT_TRUE(store.Append({static_cast<uint64_t>(t), 0, 0}, {{i, encs[i]}}, nullptr).ok());
        EXPECT_TRUE(store.Append({9, 9, 9}, {{(i + t) % 8, encs[(i + t) % 8]}}, nullptr).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  ShardStore fresh(dir_, geo_, true);
  for (uint64_t t = 0; t < 4; ++t) {
    std::vector<std::string> out;
    ASSERT_TRUE(fresh.ReadBlocks({t, 0, 0}, {0, 1, 2, 3, 4, 5, 6, 7}, &out).ok());
    for (uint32_t i = 0; i < 8; ++i) EXPECT_EQ(out[i], encs[i]) << t << "/" << i;
  }
  std::vector<std::string> out;
  ASSERT_TRUE(fresh.ReadBlocks({9, 9, 9}, {0, 1, 2, 3, 4, 5, 6, 7}, &out).ok());
  for (uint32_t i = 0; i < 8; ++i) EXPECT_EQ(out[i], encs[i]) << i;
  auto idx = IndexOfFile(store.BrickPath({9, 9, 9}));
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
}

TEST_F(ShardStoreTest, SyncDirtyAndScanUsage) {
  ShardStore store(dir_, geo_, false);
  const Shape3 grid = geo_.brick_grid();  // 2 x 2 x 2
  auto empty = store.ScanUsage(grid);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->files, 0u);
  std::string b = Enc(5);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{0, b}}, nullptr).ok());
  ASSERT_TRUE(store.Append({0, 1, 0}, {{0, b}, {1, b}}, nullptr).ok());
  ASSERT_TRUE(store.Append({0, 1, 0}, {{1, b}, {2, b}}, nullptr).ok());
  EXPECT_TRUE(store.SyncDirty().ok());
  EXPECT_TRUE(store.SyncDirty().ok());  // nothing dirty: still fine
  const uint64_t isz = ShardIndex::EncodedSize(8);
  for (bool fresh_instance : {false, true}) {
    ShardStore fresh(dir_, geo_, true);
    auto u = fresh_instance ? fresh.ScanUsage(grid) : store.ScanUsage(grid);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    EXPECT_EQ(u->files, 2u);
    EXPECT_EQ(u->file_bytes,
              FileSize(store.BrickPath({0, 0, 0})) + FileSize(store.BrickPath({0, 1, 0})));
    EXPECT_EQ(u->file_bytes, 5 * b.size() + 3 * isz);
    EXPECT_EQ(u->live_blocks, 4u);
    EXPECT_EQ(u->live_block_bytes, 4 * b.size());
    EXPECT_EQ(u->index_bytes, 2 * isz);
  }
}

TEST_F(ShardStoreTest, ScanUsageReportsCorruptShard) {
  ShardStore store(dir_, geo_, false);
  ASSERT_TRUE(store.Append({1, 1, 1}, {{0, Enc(1)}}, nullptr).ok());
  const std::string path = store.BrickPath({1, 1, 1});
  std::string data = ReadAll(path);
  data.back() = static_cast<char>(data.back() ^ 1);
  WriteAll(path, data);
  ShardStore fresh(dir_, geo_, true);
  EXPECT_EQ(fresh.ScanUsage(geo_.brick_grid()).status().code(), Status::Code::kCorruption);
}


// A shard or a directory of the array replaced by a symlink (by whoever owns
// the store) is never written through, and its target stays as it was.
TEST_F(ShardStoreTest, SymlinkedShardOrDirectoryIsRefusedAndTargetUntouched) {
  const std::string victim = root_ + "/victim", elsewhere = root_ + "/elsewhere";
  WriteAll(victim, "precious\n");
  ASSERT_EQ(::mkdir(elsewhere.c_str(), 0755), 0);
  ShardStore store(dir_, geo_, false);
  std::string b0 = Enc(1);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{0, b0}}, nullptr).ok());
  // c/0/0/1 -> a file elsewhere that does not exist yet (it would be created)
  ASSERT_EQ(::symlink((elsewhere + "/new").c_str(), store.BrickPath({0, 0, 1}).c_str()), 0);
  // c/0/1 -> a directory elsewhere
  ASSERT_EQ(::symlink(elsewhere.c_str(), (dir_ + "/c/0/1").c_str()), 0);
  // c/1/0/0 -> the victim
  ASSERT_EQ(::mkdir((dir_ + "/c/1").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir_ + "/c/1/0").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(victim.c_str(), store.BrickPath({1, 0, 0}).c_str()), 0);
  ShardStore fresh(dir_, geo_, false);
  for (const Shape3& b : {Shape3{0, 0, 1}, Shape3{0, 1, 0}, Shape3{1, 0, 0}}) {
    Status s = fresh.Append(b, {{0, b0}}, nullptr);
    ASSERT_FALSE(s.ok()) << ShapeToString(b);
    EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
    s = fresh.Replace(b, {{0, b0}}, [](uint64_t, uint64_t) { return Status::Ok(); }, nullptr);
    EXPECT_FALSE(s.ok()) << ShapeToString(b);
    std::vector<std::string> out;
    EXPECT_FALSE(fresh.ReadBlocks(b, {0}, &out).ok()) << ShapeToString(b);
  }
  EXPECT_EQ(ReadAll(victim), "precious\n");
  EXPECT_EQ(::rmdir(elsewhere.c_str()), 0) << "files were created through a link";
  // The brick that is a plain file still works.
  std::vector<std::string> out;
  ASSERT_TRUE(fresh.ReadBlocks({0, 0, 0}, {0}, &out).ok());
  EXPECT_EQ(out[0], b0);
}

TEST_F(ShardStoreTest, ReplaceDoesNotFollowAPlantedTemporaryFile) {
  const std::string victim = root_ + "/victim";
  WriteAll(victim, "precious\n");
  ShardStore store(dir_, geo_, false);
  std::string b0 = Enc(1);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{0, b0}}, nullptr).ok());
  ASSERT_EQ(::symlink(victim.c_str(), (store.BrickPath({0, 0, 0}) + ".tmp").c_str()), 0);
  std::string b1 = Enc(2);
  Status s = store.Replace({0, 0, 0}, {{1, b1}}, [](uint64_t, uint64_t) { return Status::Ok(); }, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadAll(victim), "precious\n");
  std::vector<std::string> out;
  ShardStore fresh(dir_, geo_, false);
  ASSERT_TRUE(fresh.ReadBlocks({0, 0, 0}, {0, 1}, &out).ok());
  EXPECT_TRUE(out[0].empty());
  EXPECT_EQ(out[1], b1);
}

}  // namespace
}  // namespace brickfs

#include "store/local_storage.h"

namespace brickfs {
namespace {

// A LocalStorage whose Replace fails after the rename, as LocalStorage's own
// Replace does when fsync of the directory fails (EIO): the new file is in
// place, the caller is told it failed.
class FsyncDirFailsStorage : public LocalStorage {
 public:
  using LocalStorage::LocalStorage;
  Status Replace(std::string_view key, std::string_view bytes,
                 const BeforeVisible& before_visible) override {
    BRICKFS_RETURN_IF_ERROR(LocalStorage::Replace(key, bytes, before_visible));
    return Status::IOError("fsync the directory of " + Locate(key), EIO);
  }
};

// ShardStore::Replace returns before updating its cached index when
// the storage fails after the rename; the next Append writes at the old
// file's end with the old index into the new file.
TEST_F(ShardStoreTest, AReplaceThatFailsAfterItsRenameLeavesNoStaleIndex) {
  auto storage = std::make_shared<FsyncDirFailsStorage>(dir_, false);
  ShardStore store(storage, "", geo_, false);
  std::string b0 = Enc(1), b1 = Enc(2), b2 = Enc(3), b3 = Enc(4);
  ASSERT_TRUE(store.Append({0, 0, 0}, {{0, b0}, {3, b3}}, nullptr).ok());
  Status s = store.Replace({0, 0, 0}, {{1, b1}}, [](uint64_t, uint64_t) { return Status::Ok(); },
                           nullptr);
  EXPECT_FALSE(s.ok());
  // The rename happened: the file on disk is the replacement.
  {
    std::vector<std::string> out;
    ShardStore fresh(dir_, geo_, true);
    ASSERT_TRUE(fresh.ReadBlocks({0, 0, 0}, {0, 1}, &out).ok());
    EXPECT_TRUE(out[0].empty());
    EXPECT_EQ(out[1], b1);
  }
  // A later append (the slab flush of that z range) goes through the same object.
  ASSERT_TRUE(store.Append({0, 0, 0}, {{2, b2}}, nullptr).ok());
  std::vector<std::string> out;
  ShardStore fresh(dir_, geo_, true);
  Status r = fresh.ReadBlocks({0, 0, 0}, {0, 1, 2, 3}, &out);
  ASSERT_TRUE(r.ok()) << r.ToString();
  EXPECT_TRUE(out[0].empty()) << "block 0 was replaced away";
  EXPECT_EQ(out[1], b1) << "the replacement's block is lost";
  EXPECT_EQ(out[2], b2);
  EXPECT_TRUE(out[3].empty()) << "block 3 was replaced away";
}

}  // namespace
}  // namespace brickfs

