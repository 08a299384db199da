// How the byte ranges of one read become HTTP requests: ranges are sorted
// and near ones merged into one request ("coalesced"), so that the blocks a
// plane needs cost few round trips without fetching much that is not needed.
//
// A request [begin, end) covers ranges `members`; the bytes between them
// are fetched and dropped. Two neighbours are merged when the gap between
// them is at most `max_gap`, the dropped bytes of the request stay within
// 1/16 of the bytes wanted (so coalescing never costs more than ~6% extra
// transfer), and the request stays within `max_request` bytes (beyond it,
// separate requests run in parallel). Overlapping and repeated ranges are
// served from one request.
//
// Thread-safety: pure functions.
#ifndef BRICKFS_REMOTE_RANGE_PLAN_H_
#define BRICKFS_REMOTE_RANGE_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "store/storage.h"

namespace brickfs {

struct FetchRun {
  uint64_t begin = 0, end = 0;   // the bytes requested
  std::vector<size_t> members;   // indices into the ranges, by offset
};

// Plans requests for ranges[i] for every i in `wanted` (ranges of length 0
// are skipped: they need no bytes). REQUIRES: no range wraps past 2^64.
std::vector<FetchRun> PlanFetches(const std::vector<Storage::Range>& ranges,
                                  const std::vector<size_t>& wanted, uint64_t max_gap,
                                  uint64_t max_request);

}  // namespace brickfs

#endif  // BRICKFS_REMOTE_RANGE_PLAN_H_
