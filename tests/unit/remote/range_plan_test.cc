#include "remote/range_plan.h"

#include <gtest/gtest.h>

namespace brickfs {
namespace {

using R = Storage::Range;

std::vector<size_t> All(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(RangePlanTest, AdjacentRangesBecomeOneRequest) {
  const std::vector<R> ranges = {{200, 100}, {0, 100}, {100, 100}};
  const auto runs = PlanFetches(ranges, All(3), 0, 1 << 20);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].begin, 0u);
  EXPECT_EQ(runs[0].end, 300u);
  EXPECT_EQ(runs[0].members, (std::vector<size_t>{1, 2, 0}));
}

TEST(RangePlanTest, SmallGapsAreBridgedLargeOnesAreNot) {
  // Blocks of 10000 bytes; a 100-byte gap is bridged, a 50000-byte one not.
  const std::vector<R> ranges = {{0, 10000}, {10100, 10000}, {70100, 10000}};
  const auto runs = PlanFetches(ranges, All(3), 16 << 10, 1 << 20);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].begin, 0u);
  EXPECT_EQ(runs[0].end, 20100u);
  EXPECT_EQ(runs[1].begin, 70100u);
  EXPECT_EQ(runs[1].end, 80100u);
}

TEST(RangePlanTest, DroppedBytesStayUnderASixteenthOfTheWantedBytes) {
  // 1000-byte ranges with 1000-byte gaps: bridging would double the bytes.
  std::vector<R> ranges;
  for (uint64_t i = 0; i < 20; ++i) ranges.push_back({i * 2000, 1000});
  const auto runs = PlanFetches(ranges, All(ranges.size()), 16 << 10, 1 << 20);
  EXPECT_EQ(runs.size(), 20u);
  // The same with 50-byte gaps: bridged, and the total stays within 1/16.
  ranges.clear();
  for (uint64_t i = 0; i < 20; ++i) ranges.push_back({i * 1050, 1000});
  const auto merged = PlanFetches(ranges, All(ranges.size()), 16 << 10, 1 << 20);
  uint64_t fetched = 0;
  for (const auto& run : merged) fetched += run.end - run.begin;
  EXPECT_LT(merged.size(), 3u);
  EXPECT_LE(fetched * 16, 20000u * 17);
}

TEST(RangePlanTest, RequestsStopAtTheMaximumSize) {
  std::vector<R> ranges;
  for (uint64_t i = 0; i < 10; ++i) ranges.push_back({i * 1000, 1000});
  const auto runs = PlanFetches(ranges, All(10), 0, 3000);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].end - runs[0].begin, 3000u);
  EXPECT_EQ(runs[3].begin, 9000u);
  EXPECT_EQ(runs[3].end, 10000u);
}

TEST(RangePlanTest, OverlappingAndRepeatedRangesShareARequest) {
  const std::vector<R> ranges = {{0, 500}, {100, 100}, {0, 500}, {400, 300}};
  const auto runs = PlanFetches(ranges, All(4), 0, 1 << 20);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].begin, 0u);
  EXPECT_EQ(runs[0].end, 700u);
  EXPECT_EQ(runs[0].members.size(), 4u);
}

TEST(RangePlanTest, OnlyTheWantedNonEmptyRangesArePlanned) {
  const std::vector<R> ranges = {{0, 10}, {10, 0}, {20, 10}, {1000, 10}};
  const auto runs = PlanFetches(ranges, {1, 3}, 0, 1 << 20);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].members, (std::vector<size_t>{3}));
}

TEST(RangePlanTest, EveryMemberLiesInsideItsRequest) {
  std::vector<R> ranges;
  uint64_t x = 12345;
  for (int i = 0; i < 500; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    ranges.push_back({(x >> 20) % 1000000, (x >> 44) % 5000});
  }
  const auto runs = PlanFetches(ranges, All(ranges.size()), 4096, 65536);
  std::vector<int> seen(ranges.size());
  for (const auto& run : runs) {
    for (size_t i : run.members) {
      ++seen[i];
      EXPECT_GE(ranges[i].offset, run.begin);
      EXPECT_LE(ranges[i].offset + ranges[i].length, run.end);
    }
  }
  for (size_t i = 0; i < ranges.size(); ++i) EXPECT_EQ(seen[i], ranges[i].length ? 1 : 0) << i;
}

}  // namespace
}  // namespace brickfs
