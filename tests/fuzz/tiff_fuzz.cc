// libFuzzer target: brickfs::DecodeTiffSlice on any bytes.
//
// The dest callback accepts images up to 4096 x 4096 (like a volume would accept
// exactly one size) and hands out a buffer of exactly the size it was asked for,
// so AddressSanitizer sees any write past the slice. Accepted slices must
// report the dimensions the callback saw.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "brickfs/dtype.h"
#include "tiff/tiff_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf;
  int calls = 0;
  brickfs::SliceInfo seen;
  auto dest = [&](const brickfs::SliceInfo& info) -> brickfs::Result<uint8_t*> {
    ++calls;
    seen = info;
    if (info.width == 0 || info.height == 0 || info.width > 4096 || info.height > 4096)
      return brickfs::Status::InvalidArgument("fuzz: size not accepted");
    buf.assign(info.width * info.height * brickfs::DTypeSize(info.dtype), 0);
    buf.shrink_to_fit();
    return buf.data();
  };
  auto r = brickfs::DecodeTiffSlice(data, size, dest);
  if (calls > 1) {
    std::fprintf(stderr, "dest called %d times\n", calls);
    std::abort();
  }
  if (r.ok()) {
    if (calls != 1 || r->width != seen.width || r->height != seen.height ||
        r->dtype != seen.dtype) {
      std::fprintf(stderr, "accepted slice %llux%llu, dest saw %llux%llu (%d calls)\n",
                   (unsigned long long)r->width, (unsigned long long)r->height,
                   (unsigned long long)seen.width, (unsigned long long)seen.height, calls);
      std::abort();
    }
  }
  return 0;
}
