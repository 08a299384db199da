// Body of the store_open fuzz target: a fuzzed zarr.json (the array's or the
// group's) driven through the open path `mount -o ro`, `info` and `fsck` use
// (Store::Open, Volume::Open, the status, plane and brick reads, the shard
// usage scan) in a scratch store. Whatever the metadata claims, nothing may
// crash, and nothing may allocate or loop in proportion to a declared size:
// the fuzzer runs with -rss_limit_mb and -timeout, and the replay of saved
// inputs (tests/unit/volume/store_fuzz_regressions_test.cc) with the same
// code under the unit tests' sanitizers.
//
// Input: byte 0 selects the document (even: STORE/0/zarr.json, odd:
// STORE/zarr.json, with a valid counterpart written for the other); the rest
// is the document's text.
#ifndef BRICKFS_TESTS_FUZZ_STORE_FUZZ_BODY_H_
#define BRICKFS_TESTS_FUZZ_STORE_FUZZ_BODY_H_

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "format/volume_meta.h"
#include "store/shard_store.h"
#include "store/store.h"
#include "volume/volume.h"

namespace brickfs::fuzz {

inline const std::string& FuzzStoreRoot() {
  static const std::string root = [] {
    char tmpl[] = "/tmp/brickfs_store_fuzz_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    std::string r = d ? d : "/tmp";
    std::atexit([] {});
    return r + "/s.zarr";
  }();
  return root;
}

inline void FuzzStoreOpen(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const std::string store = FuzzStoreRoot();
  MakeDirs(store + "/0").IgnoreError();
  VolumeMeta good;
  good.geo.shape = {64, 64, 64};
  good.geo.block = {32, 32, 32};
  good.geo.brick = {64, 64, 64};
  good.finalized = true;
  const std::string doc(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool array = data[0] % 2 == 0;
  WriteFileAtomic(store + "/0/zarr.json", array ? doc : good.ArrayJson()).IgnoreError();
  WriteFileAtomic(store + "/zarr.json", array ? good.GroupJson("s") : doc).IgnoreError();

  StoreOpenOptions so;
  so.read_only = true;
  so.take_lock = false;
  auto opened = Store::Open(store, so);
  if (!opened.ok()) return;
  if ((*opened)->meta()) {
    ShardStore shards((*opened)->ArrayDir(0), (*opened)->meta()->geo, true);
    shards.ScanUsage((*opened)->meta()->geo.brick_grid()).status().IgnoreError();
  }
  VolumeOptions o;
  o.mem_budget = 64 << 20;
  o.cache_budget = 8 << 20;
  o.threads = 1;
  auto v = Volume::Open(std::move(*opened), o);
  if (!v.ok()) return;
  (*v)->Start();
  (*v)->StatusJson();
  std::vector<uint8_t> buf(1 << 16);
  for (int level = 0; level < (*v)->LevelCount(); ++level) {
    for (Axis axis : {Axis::kZ, Axis::kY, Axis::kX}) {
      const uint64_t n = (*v)->PlaneCount(axis, level);
      const uint64_t bytes = (*v)->VirtualFileSize(axis, level);
      if (n == 0) continue;
      for (uint64_t off : {uint64_t{0}, bytes / 2, bytes > 100 ? bytes - 100 : 0}) {
        (*v)->ReadVirtualFile(axis, n - 1, off, buf.size(), buf.data(), level).status().IgnoreError();
      }
    }
  }
  const Shape3 grid = (*v)->BrickGrid();
  if (grid[0] && grid[1] && grid[2]) {
    const Shape3 last{grid[0] - 1, grid[1] - 1, grid[2] - 1};
    (*v)->ReadBrickFile(last, 0, buf.size(), buf.data()).status().IgnoreError();
    (*v)->BrickFileSize(last);
  }
}

}  // namespace brickfs::fuzz

#endif  // BRICKFS_TESTS_FUZZ_STORE_FUZZ_BODY_H_
