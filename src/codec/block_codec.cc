#include "codec/block_codec.h"

#include <zstd.h>

#include <cstring>

#include "common/bytes.h"
#include "common/crc32c.h"

namespace brickfs {

BlockCodec::BlockCodec(int zstd_level)
    : level_(zstd_level), cctx_(ZSTD_createCCtx()), dctx_(ZSTD_createDCtx()) {
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level_);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 0);
}

BlockCodec::~BlockCodec() {
  ZSTD_freeCCtx(cctx_);
  ZSTD_freeDCtx(dctx_);
}

size_t BlockCodec::MaxEncodedSize(size_t n) { return ZSTD_compressBound(n) + 4; }

Status BlockCodec::Encode(const uint8_t* raw, size_t n, std::string* out) {
  size_t start = out->size();
  out->resize(start + MaxEncodedSize(n));
  auto* dst = reinterpret_cast<uint8_t*>(out->data() + start);
  size_t z = ZSTD_compress2(cctx_, dst, ZSTD_compressBound(n), raw, n);
  if (ZSTD_isError(z)) {
    out->resize(start);
    return Status::Unsupported(std::string("zstd compression failed: ") + ZSTD_getErrorName(z));
  }
  PutU32(dst + z, Crc32c(dst, z));
  out->resize(start + z + 4);
  return Status::Ok();
}

Status BlockCodec::Decode(const uint8_t* enc, size_t enc_n, uint8_t* out, size_t raw_n) {
  if (enc_n < 4 + 9) {  // smallest zstd frame is 9 bytes
    return Status::Corruption("encoded block of " + std::to_string(enc_n) +
                              " bytes is too short");
  }
  size_t frame_n = enc_n - 4;
  uint32_t stored = GetU32(enc + frame_n);
  uint32_t actual = Crc32c(enc, frame_n);
  if (stored != actual) {
    return Status::Corruption("block crc32c mismatch (stored " + std::to_string(stored) +
                              ", computed " + std::to_string(actual) + ")");
  }
  unsigned long long content = ZSTD_getFrameContentSize(enc, frame_n);
  if (content != raw_n) {
    return Status::Corruption("zstd frame declares " +
                              (content == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("no")
                               : content == ZSTD_CONTENTSIZE_ERROR ? std::string("an invalid")
                                                                   : std::to_string(content)) +
                              " content size, expected " + std::to_string(raw_n));
  }
  size_t d = ZSTD_decompressDCtx(dctx_, out, raw_n, enc, frame_n);
  if (ZSTD_isError(d)) {
    return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(d));
  }
  if (d != raw_n) {
    return Status::Corruption("decoded " + std::to_string(d) + " bytes, expected " +
                              std::to_string(raw_n));
  }
  return Status::Ok();
}

bool IsAllZero(const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t a, b, c, d;
    std::memcpy(&a, p + i, 8);
    std::memcpy(&b, p + i + 8, 8);
    std::memcpy(&c, p + i + 16, 8);
    std::memcpy(&d, p + i + 24, 8);
    if ((a | b | c | d) != 0) return false;
  }
  for (; i < n; ++i) {
    if (p[i]) return false;
  }
  return true;
}

}  // namespace brickfs
