#include "foreign/chunk_codecs.h"

#include <blosc.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include "common/bytes.h"
#include "common/crc32c.h"

namespace brickfs {

namespace {

std::string Sizes(uint64_t got, uint64_t want) {
  return std::to_string(got) + " bytes, expected " + std::to_string(want);
}

}  // namespace

Status InflateExact(std::string_view in, bool gzip, uint8_t* out, size_t out_size) {
  const char* what = gzip ? "gzip" : "zlib";
  z_stream zs{};
  // 15: the largest window; +16: a gzip header and trailer instead of zlib's.
  if (inflateInit2(&zs, gzip ? 15 + 16 : 15) != Z_OK) {
    return Status::IOError(std::string(what) + ": inflateInit2 failed", ENOMEM);
  }
  struct End {
    z_stream* zs;
    ~End() { inflateEnd(zs); }
  } end{&zs};
  const auto* src = reinterpret_cast<const Bytef*>(in.data());
  size_t in_left = in.size();
  size_t produced = 0;
  uint8_t spare = 0;  // one byte past out_size: where an over-long stream shows
  bool in_spare = false;
  for (;;) {
    // zlib counts in uInt: feed and drain in pieces of at most 1 GiB.
    const size_t in_step = std::min<size_t>(in_left, size_t{1} << 30);
    zs.next_in = const_cast<Bytef*>(src);
    zs.avail_in = static_cast<uInt>(in_step);
    if (produced < out_size) {
      zs.next_out = out + produced;
      zs.avail_out = static_cast<uInt>(std::min<size_t>(out_size - produced, size_t{1} << 30));
    } else {
      zs.next_out = &spare;
      zs.avail_out = 1;
      in_spare = true;
    }
    const uInt out_before = zs.avail_out;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t consumed = in_step - zs.avail_in;
    const size_t made = out_before - zs.avail_out;
    src += consumed;
    in_left -= consumed;
    if (in_spare && made > 0) {
      return Status::Corruption(std::string(what) + " stream decodes to more than " +
                                std::to_string(out_size) + " bytes");
    }
    produced += in_spare ? 0 : made;
    if (rc == Z_STREAM_END) {
      if (produced != out_size) {
        return Status::Corruption(std::string(what) + " stream decodes to " +
                                  Sizes(produced, out_size));
      }
      if (in_left != 0) {
        return Status::Corruption(std::string(what) + " stream ends " +
                                  std::to_string(in_left) + " bytes before the chunk does");
      }
      return Status::Ok();
    }
    if (rc == Z_BUF_ERROR && consumed == 0 && made == 0) {
      return Status::Corruption(std::string(what) + " stream is truncated after " +
                                std::to_string(produced) + " of " + std::to_string(out_size) +
                                " bytes");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Status::Corruption(std::string(what) + ": " + (zs.msg ? zs.msg : "inflate error " +
                                                                               std::to_string(rc)));
    }
  }
}

Status ZstdDecompressExact(std::string_view in, uint8_t* out, size_t out_size) {
  // The frames' declared content sizes, summed (unknown if any lacks one).
  unsigned long long total = 0;
  for (size_t pos = 0; pos < in.size();) {
    const size_t frame = ZSTD_findFrameCompressedSize(in.data() + pos, in.size() - pos);
    const unsigned long long content = ZSTD_getFrameContentSize(in.data() + pos, in.size() - pos);
    if (ZSTD_isError(frame) || content == ZSTD_CONTENTSIZE_ERROR) {
      return Status::Corruption("not a valid sequence of zstd frames (" +
                                std::to_string(in.size()) + " bytes; bad frame at " +
                                std::to_string(pos) + ")");
    }
    if (content == ZSTD_CONTENTSIZE_UNKNOWN || total == ZSTD_CONTENTSIZE_UNKNOWN) {
      total = ZSTD_CONTENTSIZE_UNKNOWN;
    } else if (content > out_size || total + content > out_size) {
      return Status::Corruption("zstd frames declare more than " + std::to_string(out_size) +
                                " bytes, the size of the chunk");
    } else {
      total += content;
    }
    pos += frame;
  }
  if (in.empty()) return Status::Corruption("empty zstd stream, expected " + std::to_string(out_size) + " bytes");
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) return Status::IOError("zstd: cannot create a context", ENOMEM);
  if (total != ZSTD_CONTENTSIZE_UNKNOWN) {
    if (total != out_size) {
      return Status::Corruption("zstd frames declare " + Sizes(total, out_size));
    }
    const size_t d = ZSTD_decompressDCtx(dctx.get(), out, out_size, in.data(), in.size());
    if (ZSTD_isError(d)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(d));
    if (d != out_size) return Status::Corruption("zstd decoded " + Sizes(d, out_size));
    return Status::Ok();
  }
  // Some frame has no content size: stream into the buffer, never past it.
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out, out_size, 0};
  size_t last = 0;
  while (ib.pos < ib.size) {
    const size_t before_in = ib.pos, before_out = ob.pos;
    last = ZSTD_decompressStream(dctx.get(), &ob, &ib);
    if (ZSTD_isError(last)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(last));
    if (ob.pos == ob.size && ib.pos == before_in && ob.pos == before_out) break;  // full, stuck
  }
  // Whatever the input still holds must decode to nothing more.
  uint8_t spare = 0;
  ZSTD_outBuffer sb{&spare, 1, 0};
  if (ib.pos < ib.size || last != 0) {
    const size_t r = ZSTD_decompressStream(dctx.get(), &sb, &ib);
    if (ZSTD_isError(r)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(r));
    if (sb.pos > 0) {
      return Status::Corruption("zstd stream decodes to more than " + std::to_string(out_size) +
                                " bytes");
    }
    last = r;
  }
  if (last != 0 || ib.pos < ib.size) {
    return Status::Corruption("zstd stream is truncated after " + std::to_string(ob.pos) +
                              " of " + std::to_string(out_size) + " bytes");
  }
  if (ob.pos != out_size) return Status::Corruption("zstd stream decodes to " + Sizes(ob.pos, out_size));
  return Status::Ok();
}

Status BloscDecompressExact(std::string_view in, uint8_t* out, size_t out_size) {
  if (in.size() < BLOSC_MIN_HEADER_LENGTH) {
    return Status::Corruption("blosc buffer of " + std::to_string(in.size()) +
                              " bytes is shorter than its 16-byte header");
  }
  size_t declared = 0;
  if (blosc_cbuffer_validate(in.data(), in.size(), &declared) != 0) {
    size_t nbytes = 0, cbytes = 0, block = 0;
    blosc_cbuffer_sizes(in.data(), &nbytes, &cbytes, &block);
    return Status::Corruption("blosc header is not valid for a buffer of " +
                              std::to_string(in.size()) + " bytes (it declares " +
                              std::to_string(cbytes) + " compressed, " + std::to_string(nbytes) +
                              " decoded)");
  }
  if (declared != out_size) return Status::Corruption("blosc header declares " + Sizes(declared, out_size));
  if (out_size > static_cast<size_t>(INT_MAX)) {
    return Status::Unsupported("blosc chunk of " + std::to_string(out_size) +
                               " bytes is larger than Blosc 1 allows");
  }
  const int d = blosc_decompress_ctx(in.data(), out, out_size, 1);
  if (d < 0) return Status::Corruption("blosc decompression failed (code " + std::to_string(d) + ")");
  if (static_cast<size_t>(d) != out_size) {
    return Status::Corruption("blosc decoded " + Sizes(static_cast<size_t>(d), out_size));
  }
  return Status::Ok();
}

Result<std::string_view> StripCrc32c(std::string_view in) {
  if (in.size() < 4) {
    return Status::Corruption("crc32c: " + std::to_string(in.size()) +
                              " bytes cannot hold a 4-byte checksum");
  }
  const std::string_view payload = in.substr(0, in.size() - 4);
  const uint32_t stored = GetU32(reinterpret_cast<const uint8_t*>(in.data() + payload.size()));
  const uint32_t actual = Crc32c(payload.data(), payload.size());
  if (stored != actual) {
    return Status::Corruption("crc32c mismatch (stored " + std::to_string(stored) +
                              ", computed " + std::to_string(actual) + ")");
  }
  return payload;
}

void ByteSwapInPlace(uint8_t* p, size_t n, uint32_t size) {
  if (size <= 1) return;
  for (size_t i = 0; i < n; ++i, p += size) std::reverse(p, p + size);
}

}  // namespace brickfs
