// Replays the saved inputs of the store_open fuzz target
// (tests/fuzz/regressions/store_open_fuzz/: hostile zarr.json documents such as
// shape[0] = 2^40, Y = X = 2^30, 2^36 blocks per brick) through the same body
// the fuzzer runs (tests/fuzz/store_fuzz_body.h): Store::Open, Volume::Open and
// the reads mount, info and fsck do. None may crash, and each must finish
// quickly in little memory (the unit tests run under ASan in CI).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/store_fuzz_body.h"

namespace brickfs {
namespace {

namespace fs = std::filesystem;

TEST(StoreFuzzRegressionsTest, HostileZarrJsonOpensOrFailsQuickly) {
  const fs::path dir = fs::path(__FILE__).parent_path().parent_path().parent_path() / "fuzz" /
                       "regressions" / "store_open_fuzz";
  std::vector<fs::path> inputs;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) inputs.push_back(e.path());
  }
  std::sort(inputs.begin(), inputs.end());
  ASSERT_GE(inputs.size(), 10u);
  for (const auto& p : inputs) {
    SCOPED_TRACE(p.filename().string());
    std::ifstream f(p, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto t0 = std::chrono::steady_clock::now();
    fuzz::FuzzStoreOpen(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  }
}

}  // namespace
}  // namespace brickfs
