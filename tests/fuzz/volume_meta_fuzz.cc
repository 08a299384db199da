// libFuzzer target: see format_fuzz_bodies.h (FuzzVolumeMeta) for the input layout and the
// checks. Built by tests/fuzz/CMakeLists.txt with clang; run by run_fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/format_fuzz_bodies.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  brickfs::fuzz::FuzzVolumeMeta(data, size);
  return 0;
}
