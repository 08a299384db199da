// Replays every saved fuzz input of the src/format targets
// (tests/fuzz/regressions/{json,volume_meta,shard_index,journal}_fuzz/) through the
// same bodies the libFuzzer binaries run (tests/fuzz/format_fuzz_bodies.h).
// An input that crashes or violates a decoder's contract fails this test with its
// file name. New inputs come from tests/fuzz/run_fuzz.sh; the directory is found
// from this file's path, so no build setting is needed.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#define BRICKFS_FUZZ_FAIL(msg) throw std::runtime_error(msg)
#include "tests/fuzz/format_fuzz_bodies.h"

namespace brickfs {
namespace {

namespace fs = std::filesystem;

fs::path RegressionsDir() {
  // __FILE__ = <repo>/tests/unit/format/fuzz_regressions_test.cc
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "fuzz" / "regressions";
}

std::vector<fs::path> Inputs(const std::string& target) {
  std::vector<fs::path> out;
  fs::path dir = RegressionsDir() / target;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.ends_with(".txt") || name.ends_with(".md") || name.starts_with(".")) continue;
    out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Replay(const std::string& target, void (*body)(const uint8_t*, size_t)) {
  auto inputs = Inputs(target);
  for (const auto& p : inputs) {
    SCOPED_TRACE(p.string());
    std::ifstream f(p, std::ios::binary);
    ASSERT_TRUE(f) << "cannot read " << p;
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    try {
      body(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      ADD_FAILURE() << target << " regression " << p.filename() << ": " << e.what();
    }
  }
  ::testing::Test::RecordProperty("inputs", static_cast<int>(inputs.size()));
}

TEST(FuzzRegressions, Json) { Replay("json_fuzz", &fuzz::FuzzJson); }
TEST(FuzzRegressions, VolumeMeta) { Replay("volume_meta_fuzz", &fuzz::FuzzVolumeMeta); }
TEST(FuzzRegressions, ShardIndex) { Replay("shard_index_fuzz", &fuzz::FuzzShardIndex); }
TEST(FuzzRegressions, Journal) { Replay("journal_fuzz", &fuzz::FuzzJournal); }

}  // namespace
}  // namespace brickfs
