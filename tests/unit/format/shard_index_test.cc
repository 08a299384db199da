// Tests for the Zarr v3 shard index: exact byte layout, round trip, and
// every validation Decode promises (size, checksum, entry ranges).
#include "format/shard_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/crc32c.h"

namespace brickfs {
namespace {

constexpr uint64_t kMax = 1000;

Result<ShardIndex> DecodeString(const std::string& enc, uint64_t n, uint64_t data_end,
                                uint64_t max_nbytes = kMax) {
  return ShardIndex::Decode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size(), n,
                            data_end, max_nbytes, "STORE/0/c/1/2/3");
}

// Writes (offset, nbytes) for entry i into an encoded index and re-seals the crc.
void PatchEntry(std::string* enc, uint64_t n, uint64_t i, uint64_t offset, uint64_t nbytes) {
  auto* p = reinterpret_cast<uint8_t*>(enc->data());
  PutU64(p + 16 * i, offset);
  PutU64(p + 16 * i + 8, nbytes);
  PutU32(p + 16 * n, Crc32c(p, 16 * n));
}

void ExpectCorruption(const Result<ShardIndex>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("STORE/0/c/1/2/3"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST(ShardIndexTest, NewIndexIsAllEmpty) {
  ShardIndex idx(8);
  EXPECT_EQ(idx.size(), 8u);
  for (uint64_t i = 0; i < 8; ++i) EXPECT_TRUE(idx.at(i).empty());
  EXPECT_EQ(idx.live_blocks(), 0u);
  EXPECT_EQ(idx.live_bytes(), 0u);
  EXPECT_EQ(ShardIndex::EncodedSize(8), 8u * 16 + 4);
}

TEST(ShardIndexTest, EncodesLittleEndianEntriesThenCrc32c) {
  ShardIndex idx(3);
  idx.Set(1, {100, 50});
  std::string enc = "prefix";
  idx.EncodeTo(&enc);  // appends
  ASSERT_EQ(enc.size(), 6 + ShardIndex::EncodedSize(3));
  EXPECT_EQ(enc.substr(0, 6), "prefix");
  const auto* p = reinterpret_cast<const uint8_t*>(enc.data()) + 6;
  EXPECT_EQ(GetU64(p), ~uint64_t{0});
  EXPECT_EQ(GetU64(p + 8), ~uint64_t{0});
  EXPECT_EQ(GetU64(p + 16), 100u);
  EXPECT_EQ(GetU64(p + 24), 50u);
  EXPECT_EQ(p[16], 100);  // low byte first
  EXPECT_EQ(GetU64(p + 32), ~uint64_t{0});
  EXPECT_EQ(GetU32(p + 48), Crc32c(p, 48));
}

TEST(ShardIndexTest, RoundTripsThroughDecode) {
  ShardIndex idx(8);
  idx.Set(0, {0, 10});
  idx.Set(3, {500, 100});
  idx.Set(7, {10, 490});
  std::string enc;
  idx.EncodeTo(&enc);
  auto back = DecodeString(enc, 8, 600);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 8u);
  for (uint64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(back->at(i).offset, idx.at(i).offset) << i;
    EXPECT_EQ(back->at(i).nbytes, idx.at(i).nbytes) << i;
  }
  EXPECT_EQ(back->live_blocks(), 3u);
  EXPECT_EQ(back->live_bytes(), 600u);
}

TEST(ShardIndexTest, AllEmptyIndexDecodesWithNoData) {
  ShardIndex idx(4);
  std::string enc;
  idx.EncodeTo(&enc);
  auto back = DecodeString(enc, 4, 0);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->live_blocks(), 0u);
}

TEST(ShardIndexTest, EntryEndingExactlyAtDataEndIsAccepted) {
  ShardIndex idx(2);
  idx.Set(0, {0, 300});
  idx.Set(1, {300, 300});
  std::string enc;
  idx.EncodeTo(&enc);
  EXPECT_TRUE(DecodeString(enc, 2, 600).ok());
}

TEST(ShardIndexTest, RejectsWrongSize) {
  std::string enc;
  ShardIndex(4).EncodeTo(&enc);
  ExpectCorruption(DecodeString(enc, 5, 100), "expected " + std::to_string(ShardIndex::EncodedSize(5)));
  ExpectCorruption(DecodeString(enc.substr(0, enc.size() - 1), 4, 100), "bytes");
  ExpectCorruption(DecodeString(enc + "x", 4, 100), "bytes");
  ExpectCorruption(DecodeString("", 4, 100), "bytes");
}

TEST(ShardIndexTest, RejectsCrcMismatch) {
  ShardIndex idx(4);
  idx.Set(2, {0, 40});
  std::string enc;
  idx.EncodeTo(&enc);
  for (size_t i = 0; i < enc.size(); ++i) {
    std::string bad = enc;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    ExpectCorruption(DecodeString(bad, 4, 100), "crc32c");
  }
}

TEST(ShardIndexTest, RejectsEntryPastEndOfFile) {
  std::string enc;
  ShardIndex(4).EncodeTo(&enc);
  PatchEntry(&enc, 4, 1, 90, 11);  // ends at 101 > 100
  ExpectCorruption(DecodeString(enc, 4, 100), "entry 1");
  PatchEntry(&enc, 4, 1, 101, 1);  // starts past the end
  ExpectCorruption(DecodeString(enc, 4, 100), "entry 1");
}

TEST(ShardIndexTest, RejectsEntryWhoseEndOverflows) {
  std::string enc;
  ShardIndex(2).EncodeTo(&enc);
  // offset + nbytes wraps around 2^64 to a small number.
  PatchEntry(&enc, 2, 0, ~uint64_t{0} - 5, 10);
  ExpectCorruption(DecodeString(enc, 2, 100, ~uint64_t{0}), "entry 0");
  PatchEntry(&enc, 2, 0, 10, ~uint64_t{0} - 5);
  ExpectCorruption(DecodeString(enc, 2, 100, ~uint64_t{0}), "entry 0");
}

TEST(ShardIndexTest, RejectsZeroLengthEntry) {
  std::string enc;
  ShardIndex(4).EncodeTo(&enc);
  PatchEntry(&enc, 4, 3, 10, 0);
  ExpectCorruption(DecodeString(enc, 4, 100), "entry 3");
}

TEST(ShardIndexTest, RejectsEntryLargerThanMaxBlock) {
  std::string enc;
  ShardIndex(4).EncodeTo(&enc);
  PatchEntry(&enc, 4, 0, 0, 51);
  ExpectCorruption(DecodeString(enc, 4, 100, 50), "entry 0");
  PatchEntry(&enc, 4, 0, 0, 50);
  EXPECT_TRUE(DecodeString(enc, 4, 100, 50).ok());
}

TEST(ShardIndexTest, RejectsHalfEmptyEntry) {
  // Only offset = nbytes = 2^64-1 means "empty"; one of them alone is garbage.
  std::string enc;
  ShardIndex(2).EncodeTo(&enc);
  PatchEntry(&enc, 2, 0, ~uint64_t{0}, 10);
  EXPECT_FALSE(DecodeString(enc, 2, 100).ok());
  PatchEntry(&enc, 2, 0, 10, ~uint64_t{0});
  EXPECT_FALSE(DecodeString(enc, 2, 100).ok());
}

TEST(ShardIndexTest, ZeroBlockIndexIsJustACrc) {
  ShardIndex idx(0);
  std::string enc;
  idx.EncodeTo(&enc);
  ASSERT_EQ(enc.size(), 4u);
  EXPECT_EQ(GetU32(reinterpret_cast<const uint8_t*>(enc.data())), Crc32c(nullptr, 0));
  EXPECT_TRUE(DecodeString(enc, 0, 0).ok());
}

}  // namespace
}  // namespace brickfs
