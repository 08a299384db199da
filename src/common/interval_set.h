// A set of uint64 values stored as disjoint half-open intervals [a, b).
//
// Used for what would otherwise be a bitmap sized by a number read from disk
// or from a name: the slices received and committed (Z may be declared as
// large as the limits allow), and the byte ranges written to a file. Memory
// and time are proportional to the number of intervals, never to the values.
//
// Thread-safety: a value type; not synchronized.
#ifndef BRICKFS_COMMON_INTERVAL_SET_H_
#define BRICKFS_COMMON_INTERVAL_SET_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace brickfs {

class IntervalSet {
 public:
  using Interval = std::pair<uint64_t, uint64_t>;  // [first, second)

  // Adds [a, b); merges with touching or overlapping intervals. a >= b: no-op.
  void Insert(uint64_t a, uint64_t b);
  void Insert(uint64_t v) { Insert(v, v + 1); }
  // Removes [a, b).
  void Erase(uint64_t a, uint64_t b);
  void Erase(uint64_t v) { Erase(v, v + 1); }
  void Clear() { map_.clear(); }

  bool Contains(uint64_t v) const;
  // True when every value of [a, b) is in the set (true for an empty range).
  bool ContainsAll(uint64_t a, uint64_t b) const;
  // True when some value of [a, b) is in the set.
  bool Intersects(uint64_t a, uint64_t b) const;
  // Number of values in [a, b) that are in the set.
  uint64_t CountIn(uint64_t a, uint64_t b) const;
  // Number of values in the set.
  uint64_t Count() const;
  bool empty() const { return map_.empty(); }
  size_t intervals() const { return map_.size(); }
  // One past the largest value (0 when empty).
  uint64_t End() const { return map_.empty() ? 0 : map_.rbegin()->second; }
  // The first value >= v that is NOT in the set.
  uint64_t FirstGapFrom(uint64_t v) const;

  // The intervals in order.
  std::vector<Interval> ToVector() const { return {map_.begin(), map_.end()}; }
  // The intervals of [a, b) not in the set, in order.
  std::vector<Interval> Gaps(uint64_t a, uint64_t b) const;
  // Values in both sets.
  IntervalSet Intersection(const IntervalSet& other) const;

  auto begin() const { return map_.begin(); }
  auto end() const { return map_.end(); }
  bool operator==(const IntervalSet& o) const { return map_ == o.map_; }

 private:
  std::map<uint64_t, uint64_t> map_;  // first -> one past last; disjoint, non-touching
};

}  // namespace brickfs

#endif  // BRICKFS_COMMON_INTERVAL_SET_H_
