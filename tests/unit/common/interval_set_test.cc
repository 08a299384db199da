#include "common/interval_set.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace brickfs {
namespace {

TEST(IntervalSetTest, MergesTouchingAndOverlappingIntervals) {
  IntervalSet s;
  s.Insert(10, 20);
  s.Insert(20, 30);
  s.Insert(5, 8);
  EXPECT_EQ(s.ToVector(), (std::vector<IntervalSet::Interval>{{5, 8}, {10, 30}}));
  s.Insert(7, 11);
  EXPECT_EQ(s.ToVector(), (std::vector<IntervalSet::Interval>{{5, 30}}));
  s.Erase(12, 14);
  EXPECT_EQ(s.ToVector(), (std::vector<IntervalSet::Interval>{{5, 12}, {14, 30}}));
  EXPECT_EQ(s.Count(), 23u);
  EXPECT_EQ(s.Gaps(0, 40), (std::vector<IntervalSet::Interval>{{0, 5}, {12, 14}, {30, 40}}));
  EXPECT_EQ(s.FirstGapFrom(6), 12u);
  EXPECT_EQ(s.FirstGapFrom(12), 12u);
  EXPECT_EQ(s.End(), 30u);
}

TEST(IntervalSetTest, HugeValuesCostNothing) {
  IntervalSet s;
  s.Insert(0, uint64_t{1} << 62);
  s.Erase(uint64_t{1} << 40);
  EXPECT_EQ(s.intervals(), 2u);
  EXPECT_EQ(s.Count(), (uint64_t{1} << 62) - 1);
  EXPECT_FALSE(s.Contains(uint64_t{1} << 40));
  EXPECT_TRUE(s.ContainsAll(0, uint64_t{1} << 40));
  EXPECT_FALSE(s.ContainsAll(0, (uint64_t{1} << 40) + 1));
}

// Every operation against a std::set model, on random small ranges.
TEST(IntervalSetTest, MatchesASetModel) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    IntervalSet s, other;
    std::set<uint64_t> m, mo;
    for (int op = 0; op < 60; ++op) {
      const uint64_t a = rng() % 100, b = a + rng() % 20;
      const int kind = static_cast<int>(rng() % 3);
      if (kind == 0) {
        s.Insert(a, b);
        for (uint64_t v = a; v < b; ++v) m.insert(v);
      } else if (kind == 1) {
        s.Erase(a, b);
        for (uint64_t v = a; v < b; ++v) m.erase(v);
      } else {
        other.Insert(a, b);
        for (uint64_t v = a; v < b; ++v) mo.insert(v);
      }
      // Invariant: disjoint, non-touching, non-empty.
      uint64_t prev_end = 0;
      bool first = true;
      for (const auto& [lo, hi] : s) {
        ASSERT_LT(lo, hi);
        if (!first) {
          ASSERT_GT(lo, prev_end);
        }
        prev_end = hi;
        first = false;
      }
      ASSERT_EQ(s.Count(), m.size());
      const uint64_t qa = rng() % 130, qb = qa + rng() % 30;
      uint64_t in = 0;
      for (uint64_t v = qa; v < qb; ++v) in += m.count(v);
      ASSERT_EQ(s.CountIn(qa, qb), in);
      ASSERT_EQ(s.ContainsAll(qa, qb), in == qb - qa);
      ASSERT_EQ(s.Intersects(qa, qb), in > 0);
      ASSERT_EQ(s.Contains(qa), m.count(qa) == 1);
      uint64_t gaps = 0;
      for (const auto& [lo, hi] : s.Gaps(qa, qb)) {
        for (uint64_t v = lo; v < hi; ++v) ASSERT_EQ(m.count(v), 0u);
        gaps += hi - lo;
      }
      ASSERT_EQ(gaps, (qb - qa) - in);
      uint64_t g = qa;
      while (m.count(g)) ++g;
      ASSERT_EQ(s.FirstGapFrom(qa), g);
      IntervalSet both = s.Intersection(other);
      uint64_t nboth = 0;
      for (uint64_t v : m) nboth += mo.count(v);
      ASSERT_EQ(both.Count(), nboth);
    }
  }
}

}  // namespace
}  // namespace brickfs
