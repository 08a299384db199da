// libFuzzer target: BlockCodec::Decode (blocks read from shard files are untrusted).
//
// Input: raw_n u16 (the block size the caller expects, + 1), flags u8 (bit 0:
// append a valid CRC-32C of the rest, so zstd is reached), then the encoded block.
// The output buffer is exactly raw_n bytes, so AddressSanitizer sees overruns.
// Accepted blocks re-encode and decode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "codec/block_codec.h"
#include "common/bytes.h"
#include "common/crc32c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  size_t raw_n = brickfs::GetU16(data) + 1u;
  uint8_t flags = data[2];
  std::string enc(reinterpret_cast<const char*>(data + 3), size - 3);
  if (flags & 1) {
    uint8_t crc[4];
    brickfs::PutU32(crc, brickfs::Crc32c(enc.data(), enc.size()));
    enc.append(reinterpret_cast<const char*>(crc), 4);
  }
  static brickfs::BlockCodec codec(1);
  std::vector<uint8_t> out(raw_n);
  auto st = codec.Decode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size(), out.data(), raw_n);
  if (!st.ok()) return 0;
  std::string again;
  if (!codec.Encode(out.data(), raw_n, &again).ok()) {
    std::fprintf(stderr, "a decoded block does not encode\n");
    std::abort();
  }
  std::vector<uint8_t> back(raw_n);
  auto st2 = codec.Decode(reinterpret_cast<const uint8_t*>(again.data()), again.size(),
                          back.data(), raw_n);
  if (!st2.ok() || back != out) {
    std::fprintf(stderr, "re-encoded block does not decode to the same bytes\n");
    std::abort();
  }
  return 0;
}
