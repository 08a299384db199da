// The per-block codec chain of the store: bytes(little) -> zstd -> crc32c.
//
// Encoded block = one zstd frame that always records its content size,
// followed by the CRC-32C (u32le) of the frame bytes.
// Decoding trusts nothing: the checksum, the frame's declared content size
// (must equal the block size) and the decompressed length are all checked
// before the output is used.
//
// Thread-safety: a BlockCodec holds zstd contexts and must be used by one
// thread at a time; make one per worker (they are cheap to keep).
#ifndef BRICKFS_CODEC_BLOCK_CODEC_H_
#define BRICKFS_CODEC_BLOCK_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "brickfs/status.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace brickfs {

class BlockCodec {
 public:
  explicit BlockCodec(int zstd_level);
  ~BlockCodec();
  BlockCodec(const BlockCodec&) = delete;
  BlockCodec& operator=(const BlockCodec&) = delete;

  // Largest encoded size of a raw block of n bytes.
  static size_t MaxEncodedSize(size_t n);

  // Appends the encoded form of raw[0, n) to *out.
  Status Encode(const uint8_t* raw, size_t n, std::string* out);

  // Decodes enc[0, enc_n) into out[0, raw_n). Corruption on a checksum
  // mismatch, a frame whose content size is not raw_n, or any zstd error; the
  // caller names the block (Status::WithContext), so success builds no text.
  Status Decode(const uint8_t* enc, size_t enc_n, uint8_t* out, size_t raw_n);

 private:
  int level_;
  ZSTD_CCtx_s* cctx_;
  ZSTD_DCtx_s* dctx_;
};

// True when all n bytes are zero (the fill value): such blocks are not stored.
bool IsAllZero(const uint8_t* p, size_t n);

}  // namespace brickfs

#endif  // BRICKFS_CODEC_BLOCK_CODEC_H_
