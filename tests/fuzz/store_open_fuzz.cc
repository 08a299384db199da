// libFuzzer target: see store_fuzz_body.h (FuzzStoreOpen) for the input
// layout. Run by run_fuzz.sh with -rss_limit_mb and -timeout.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/store_fuzz_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  brickfs::fuzz::FuzzStoreOpen(data, size);
  return 0;
}
