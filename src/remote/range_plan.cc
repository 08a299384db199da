#include "remote/range_plan.h"

#include <algorithm>

namespace brickfs {

std::vector<FetchRun> PlanFetches(const std::vector<Storage::Range>& ranges,
                                  const std::vector<size_t>& wanted, uint64_t max_gap,
                                  uint64_t max_request) {
  std::vector<size_t> order;
  order.reserve(wanted.size());
  for (size_t i : wanted) {
    if (ranges[i].length > 0) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (ranges[a].offset != ranges[b].offset) return ranges[a].offset < ranges[b].offset;
    return ranges[a].length < ranges[b].length;
  });
  std::vector<FetchRun> runs;
  uint64_t useful = 0;   // bytes of the current run that some range wants
  uint64_t dropped = 0;  // gap bytes of the current run
  for (size_t i : order) {
    const uint64_t begin = ranges[i].offset, end = ranges[i].offset + ranges[i].length;
    if (!runs.empty()) {
      FetchRun& run = runs.back();
      if (begin <= run.end) {  // overlaps or touches: no gap
        const uint64_t new_end = std::max(run.end, end);
        if (new_end - run.begin <= max_request || begin < run.end) {
          useful += new_end - run.end;
          run.end = new_end;
          run.members.push_back(i);
          continue;
        }
      } else {
        const uint64_t gap = begin - run.end;
        if (gap <= max_gap && end - run.begin <= max_request &&
            (dropped + gap) * 16 <= useful + ranges[i].length) {
          dropped += gap;
          useful += ranges[i].length;
          run.end = end;
          run.members.push_back(i);
          continue;
        }
      }
    }
    runs.push_back(FetchRun{begin, end, {i}});
    useful = end - begin;
    dropped = 0;
  }
  return runs;
}

}  // namespace brickfs
