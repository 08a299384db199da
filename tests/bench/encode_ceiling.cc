// The ingest ceiling: how long brickfs's own block encoder needs to compress
// a stack's slabs on all cores, with nothing else running (no FUSE, no TIFF
// decoding, no disk). The ingest bench divides brickfs's cp + umount time by
// this (issue 14: at most 1.3x at steady state).
//
//   encode_ceiling STACK_DIR [--block Z,Y,X] [--brick Z,Y,X] [--threads N]
//                  [--level N] [--repeat N]
//
// Reads the TIFF files of STACK_DIR in name order (untimed), one slab of
// block-z slices at a time, then times EncodeBlocks of every brick column of
// the slab on a pool of N threads (default: all CPUs), as a slab flush does.
// Prints the encode seconds (best of --repeat passes), raw and encoded bytes.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "common/thread_pool.h"
#include "tiff/tiff_decode.h"
#include "volume/block_encode.h"

namespace {

bool ParseTriple(const char* s, brickfs::Shape3* out) {
  unsigned long long a, b, c;
  if (std::sscanf(s, "%llu,%llu,%llu", &a, &b, &c) != 3) return false;
  *out = {a, b, c};
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace brickfs;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s STACK_DIR [--block Z,Y,X] [--brick Z,Y,X] [--threads N] "
                         "[--level N] [--repeat N]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  Shape3 block = DefaultBlockShape(DType::kUint8), brick = kDefaultBrick;
  size_t threads = static_cast<size_t>(std::max<long>(1, ::sysconf(_SC_NPROCESSORS_ONLN)));
  int level = 1, repeat = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--block" && ParseTriple(argv[i + 1], &block)) continue;
    if (k == "--brick" && ParseTriple(argv[i + 1], &brick)) continue;
    if (k == "--threads") { threads = std::strtoul(argv[i + 1], nullptr, 10); continue; }
    if (k == "--level") { level = std::atoi(argv[i + 1]); continue; }
    if (k == "--repeat") { repeat = std::max(1, std::atoi(argv[i + 1])); continue; }
    std::fprintf(stderr, "bad argument %s\n", k.c_str());
    return 2;
  }
  std::vector<std::string> files;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tif") == 0) files.push_back(dir + "/" + n);
    }
    ::closedir(d);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "no .tif files in %s\n", dir.c_str());
    return 2;
  }
  Geometry g;
  g.block = block;
  g.brick = brick;
  std::vector<uint8_t> slab;
  ThreadPool pool(threads);
  double encode_s = 0;
  uint64_t raw = 0, encoded = 0;
  for (size_t z0 = 0; z0 < files.size(); z0 += block[0]) {
    const size_t n = std::min<size_t>(block[0], files.size() - z0);
    for (size_t i = 0; i < n; ++i) {
      const std::string bytes = ReadFile(files[z0 + i]);
      auto info = DecodeTiffSlice(
          reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
          [&](const SliceInfo& si) -> Result<uint8_t*> {
            if (g.shape[1] == 0) {
              g.shape = {files.size(), si.height, si.width};
              g.dtype = si.dtype;
              slab.assign(block[0] * g.slice_bytes(), 0);
            }
            return slab.data() + i * g.slice_bytes();
          });
      if (!info.ok()) {
        std::fprintf(stderr, "%s: %s\n", files[z0 + i].c_str(), info.status().ToString().c_str());
        return 1;
      }
    }
    const uint64_t bz = z0 / block[0];
    const Shape3 grid = g.brick_grid();
    const uint64_t columns = grid[1] * grid[2];
    double best = 1e30;
    std::vector<EncodedBlocks> out(columns);
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      pool.ParallelFor(columns, [&](size_t c) {
        BlockSource src;
        src.lo = {bz * block[0], 0, 0};
        src.hi = {(bz + 1) * block[0], g.shape[1], g.shape[2]};
        src.row = g.shape[2];
        src.plane = [&](uint64_t z) { return slab.data() + (z - src.lo[0]) * g.slice_bytes(); };
        Geometry gg = g;
        gg.shape[0] = std::max(g.shape[0], src.hi[0]);
        out[c] = EncodedBlocks();
        EncodeBlocks(gg, level, {bz / g.blocks_per_brick()[0], c / grid[2], c % grid[2]}, src,
                     nullptr, &out[c]).IgnoreError();
      });
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    encode_s += best;
    for (const auto& e : out) {
      raw += e.raw_bytes;
      for (const auto& v : e.Views()) encoded += v.bytes.size();
    }
  }
  std::printf("encode_seconds %.4f raw_bytes %llu encoded_bytes %llu threads %zu block %s\n",
              encode_s, static_cast<unsigned long long>(raw),
              static_cast<unsigned long long>(encoded), threads, ShapeToString(block).c_str());
  return 0;
}
