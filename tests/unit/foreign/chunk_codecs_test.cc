#include "foreign/chunk_codecs.h"

#include <blosc.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>
#include <vector>

#include "common/crc32c.h"

namespace brickfs {
namespace {

std::string Pattern(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i / 7) % 13 + (rng() % 3));
  return s;
}

std::string Deflate(const std::string& raw, bool gzip) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, gzip ? 15 + 16 : 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, raw.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string ZstdFrame(const std::string& raw, bool content_size) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  if (content_size) {
    out.resize(ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3));
    return out;
  }
  // A streamed frame: no content size in its header.
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
  ZSTD_inBuffer in{raw.data(), raw.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  size_t r;
  do {
    r = ZSTD_compressStream2(c, &ob, &in, ZSTD_e_end);
  } while (r != 0 && !ZSTD_isError(r));
  ZSTD_freeCCtx(c);
  out.resize(ob.pos);
  EXPECT_EQ(ZSTD_getFrameContentSize(out.data(), out.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  return out;
}

std::string Blosc(const std::string& raw, const char* cname, int shuffle, size_t typesize) {
  std::string out(raw.size() + BLOSC_MAX_OVERHEAD, '\0');
  const int n = blosc_compress_ctx(5, shuffle, typesize, raw.size(), raw.data(), out.data(),
                                   out.size(), cname, 0, 1);
  EXPECT_GT(n, 0) << cname;
  out.resize(n);
  return out;
}

TEST(ChunkCodecsTest, InflatesZlibAndGzipToExactlyTheChunk) {
  const std::string raw = Pattern(100000);
  for (bool gzip : {false, true}) {
    const std::string enc = Deflate(raw, gzip);
    std::string out(raw.size(), '\0');
    ASSERT_TRUE(InflateExact(enc, gzip, reinterpret_cast<uint8_t*>(out.data()), out.size()).ok());
    EXPECT_EQ(out, raw);
    // The other framing is refused.
    EXPECT_EQ(InflateExact(enc, !gzip, reinterpret_cast<uint8_t*>(out.data()), out.size()).code(),
              Status::Code::kCorruption);
  }
}

TEST(ChunkCodecsTest, InflateRefusesWrongSizesTruncationAndTrailingBytes) {
  const std::string raw = Pattern(5000);
  const std::string enc = Deflate(raw, true);
  std::vector<uint8_t> out(raw.size() + 10, 0xAB);
  Status shorter = InflateExact(enc, true, out.data(), raw.size() - 1);
  EXPECT_EQ(shorter.code(), Status::Code::kCorruption);
  EXPECT_NE(shorter.message().find("more than 4999"), std::string::npos) << shorter.message();
  EXPECT_EQ(out[raw.size() - 2], static_cast<uint8_t>(raw[raw.size() - 2]));
  EXPECT_EQ(out[raw.size() - 1], 0xAB);  // never written past out_size
  Status longer = InflateExact(enc, true, out.data(), raw.size() + 1);
  EXPECT_NE(longer.message().find("5000 bytes, expected 5001"), std::string::npos)
      << longer.message();
  Status cut = InflateExact(enc.substr(0, enc.size() / 2), true, out.data(), raw.size());
  EXPECT_EQ(cut.code(), Status::Code::kCorruption);
  EXPECT_NE(cut.message().find("truncated"), std::string::npos) << cut.message();
  Status trailing = InflateExact(enc + "xyz", true, out.data(), raw.size());
  EXPECT_EQ(trailing.code(), Status::Code::kCorruption);
  EXPECT_NE(trailing.message().find("3 bytes before"), std::string::npos) << trailing.message();
  std::string garbage = enc;
  garbage[garbage.size() / 2] ^= 0x55;
  garbage[garbage.size() / 2 + 1] ^= 0x55;
  EXPECT_FALSE(InflateExact(garbage, true, out.data(), raw.size()).ok());
  EXPECT_FALSE(InflateExact("", true, out.data(), raw.size()).ok());
}

TEST(ChunkCodecsTest, ZstdWithAndWithoutContentSize) {
  const std::string raw = Pattern(70000);
  for (bool cs : {true, false}) {
    SCOPED_TRACE(cs ? "content size" : "streamed");
    const std::string enc = ZstdFrame(raw, cs);
    std::vector<uint8_t> out(raw.size() + 1, 0xCD);
    ASSERT_TRUE(ZstdDecompressExact(enc, out.data(), raw.size()).ok());
    EXPECT_EQ(std::string(out.begin(), out.end() - 1), raw);
    Status small = ZstdDecompressExact(enc, out.data(), raw.size() - 1);
    EXPECT_EQ(small.code(), Status::Code::kCorruption) << small.ToString();
    EXPECT_EQ(out[raw.size()], 0xCD);
    Status big = ZstdDecompressExact(enc, out.data(), raw.size() + 1);
    EXPECT_EQ(big.code(), Status::Code::kCorruption) << big.ToString();
    EXPECT_FALSE(ZstdDecompressExact(enc.substr(0, enc.size() - 3), out.data(), raw.size()).ok());
    EXPECT_FALSE(ZstdDecompressExact("not zstd at all", out.data(), raw.size()).ok());
  }
  // Two frames, concatenated (a legal zstd stream).
  const std::string a = raw.substr(0, 30000), b = raw.substr(30000);
  std::vector<uint8_t> out(raw.size());
  ASSERT_TRUE(ZstdDecompressExact(ZstdFrame(a, true) + ZstdFrame(b, true), out.data(),
                                  raw.size()).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), raw);
  ASSERT_TRUE(ZstdDecompressExact(ZstdFrame(a, false) + ZstdFrame(b, true), out.data(),
                                  raw.size()).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), raw);
}

TEST(ChunkCodecsTest, ZstdFrameDeclaringAHugeSizeIsRefusedBeforeDecoding) {
  // A frame header that claims 2^40 bytes: refused by its declared size.
  std::string enc = ZstdFrame(Pattern(1000), true);
  std::vector<uint8_t> out(1000);
  Status st = ZstdDecompressExact(enc, out.data(), 999);
  EXPECT_NE(st.message().find("more than 999"), std::string::npos) << st.message();
}

TEST(ChunkCodecsTest, BloscEveryCompressorAndShuffle) {
  std::string raw = Pattern(64 * 1024);
  for (const char* cname : {"lz4", "lz4hc", "zstd", "blosclz", "zlib"}) {
    for (int shuffle : {BLOSC_NOSHUFFLE, BLOSC_SHUFFLE, BLOSC_BITSHUFFLE}) {
      SCOPED_TRACE(std::string(cname) + " shuffle " + std::to_string(shuffle));
      const std::string enc = Blosc(raw, cname, shuffle, 2);
      std::string out(raw.size(), '\0');
      ASSERT_TRUE(
          BloscDecompressExact(enc, reinterpret_cast<uint8_t*>(out.data()), out.size()).ok());
      EXPECT_EQ(out, raw);
    }
  }
}

TEST(ChunkCodecsTest, BloscRefusesBadHeadersAndSizes) {
  const std::string raw = Pattern(4096);
  const std::string enc = Blosc(raw, "lz4", BLOSC_SHUFFLE, 4);
  std::vector<uint8_t> out(raw.size());
  Status st = BloscDecompressExact(enc, out.data(), raw.size() - 4);
  EXPECT_NE(st.message().find("declares 4096 bytes, expected 4092"), std::string::npos)
      << st.message();
  st = BloscDecompressExact(enc.substr(0, 10), out.data(), raw.size());
  EXPECT_NE(st.message().find("shorter than its 16-byte header"), std::string::npos);
  st = BloscDecompressExact(enc.substr(0, enc.size() - 1), out.data(), raw.size());
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  std::string huge = enc;
  huge[4] = huge[5] = huge[6] = '\x7f';  // nbytes: ~2 GiB claimed
  st = BloscDecompressExact(huge, out.data(), raw.size());
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
}

TEST(ChunkCodecsTest, Crc32cIsCheckedAndStripped) {
  std::string payload = "voxels";
  std::string with = payload;
  const uint32_t crc = Crc32c(payload.data(), payload.size());
  with.append(reinterpret_cast<const char*>(&crc), 4);
  Result<std::string_view> r = StripCrc32c(with);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, payload);
  with[0] ^= 1;
  EXPECT_NE(StripCrc32c(with).status().message().find("crc32c mismatch"), std::string::npos);
  EXPECT_FALSE(StripCrc32c("abc").ok());
}

TEST(ChunkCodecsTest, ByteSwap) {
  uint8_t v[6] = {1, 2, 3, 4, 5, 6};
  ByteSwapInPlace(v, 3, 2);
  EXPECT_EQ(std::vector<uint8_t>(v, v + 6), (std::vector<uint8_t>{2, 1, 4, 3, 6, 5}));
  ByteSwapInPlace(v, 1, 4);
  EXPECT_EQ(std::vector<uint8_t>(v, v + 6), (std::vector<uint8_t>{3, 4, 1, 2, 6, 5}));
}

}  // namespace
}  // namespace brickfs
