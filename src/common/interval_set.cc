#include "common/interval_set.h"

#include <algorithm>
#include <iterator>

namespace brickfs {

void IntervalSet::Insert(uint64_t a, uint64_t b) {
  if (a >= b) return;
  // The first interval that could touch [a, b): the last one starting <= a.
  auto it = map_.upper_bound(a);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= a) it = prev;
  }
  while (it != map_.end() && it->first <= b) {
    a = std::min(a, it->first);
    b = std::max(b, it->second);
    it = map_.erase(it);
  }
  map_.emplace(a, b);
}

void IntervalSet::Erase(uint64_t a, uint64_t b) {
  if (a >= b) return;
  auto it = map_.upper_bound(a);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > a) it = prev;
  }
  while (it != map_.end() && it->first < b) {
    const uint64_t first = it->first, last = it->second;
    it = map_.erase(it);
    if (first < a) map_.emplace(first, a);
    if (last > b) {
      map_.emplace(b, last);
      break;
    }
  }
}

bool IntervalSet::Contains(uint64_t v) const {
  auto it = map_.upper_bound(v);
  if (it == map_.begin()) return false;
  return std::prev(it)->second > v;
}

bool IntervalSet::ContainsAll(uint64_t a, uint64_t b) const {
  if (a >= b) return true;
  auto it = map_.upper_bound(a);
  if (it == map_.begin()) return false;
  --it;
  return it->first <= a && it->second >= b;
}

bool IntervalSet::Intersects(uint64_t a, uint64_t b) const {
  if (a >= b) return false;
  auto it = map_.upper_bound(a);
  if (it != map_.begin() && std::prev(it)->second > a) return true;
  return it != map_.end() && it->first < b;
}

uint64_t IntervalSet::CountIn(uint64_t a, uint64_t b) const {
  if (a >= b) return 0;
  uint64_t n = 0;
  auto it = map_.upper_bound(a);
  if (it != map_.begin()) --it;
  for (; it != map_.end() && it->first < b; ++it) {
    const uint64_t lo = std::max(a, it->first), hi = std::min(b, it->second);
    if (lo < hi) n += hi - lo;
  }
  return n;
}

uint64_t IntervalSet::Count() const {
  uint64_t n = 0;
  for (const auto& [a, b] : map_) n += b - a;
  return n;
}

uint64_t IntervalSet::FirstGapFrom(uint64_t v) const {
  auto it = map_.upper_bound(v);
  if (it == map_.begin()) return v;
  --it;
  return it->second > v ? it->second : v;
}

std::vector<IntervalSet::Interval> IntervalSet::Gaps(uint64_t a, uint64_t b) const {
  std::vector<Interval> out;
  uint64_t pos = a;
  auto it = map_.upper_bound(a);
  if (it != map_.begin()) --it;
  for (; it != map_.end() && it->first < b && pos < b; ++it) {
    if (it->second <= pos) continue;
    if (it->first > pos) out.emplace_back(pos, std::min(it->first, b));
    pos = std::max(pos, it->second);
  }
  if (pos < b) out.emplace_back(pos, b);
  return out;
}

IntervalSet IntervalSet::Intersection(const IntervalSet& other) const {
  IntervalSet out;
  auto i = map_.begin();
  auto j = other.map_.begin();
  while (i != map_.end() && j != other.map_.end()) {
    const uint64_t lo = std::max(i->first, j->first), hi = std::min(i->second, j->second);
    out.Insert(lo, hi);
    if (i->second < j->second) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

}  // namespace brickfs
