// Bodies of the fuzz targets for src/format (JSON, zarr.json, shard index,
// journal), shared by the libFuzzer binaries in tests/fuzz/ and by the replay of
// tests/fuzz/regressions/ in tests/unit/format/fuzz_regressions_test.cc.
//
// Each body feeds untrusted bytes to one decoder and checks the contract the
// decoder documents for the inputs it accepts; a violated contract aborts (the
// fuzzer reports it as a crash, the unit test dies with the message).
#ifndef BRICKFS_TESTS_FUZZ_FORMAT_FUZZ_BODIES_H_
#define BRICKFS_TESTS_FUZZ_FORMAT_FUZZ_BODIES_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "format/journal.h"
#include "format/json.h"
#include "format/shard_index.h"
#include "format/volume_meta.h"

// BRICKFS_FUZZ_FAIL(message) reports a violated contract: abort() for the fuzzer
// (define it before including this header to do something else, e.g. throw).
#ifndef BRICKFS_FUZZ_FAIL
#define BRICKFS_FUZZ_FAIL(msg)                      \
  do {                                              \
    std::fprintf(stderr, "%s\n", (msg).c_str());    \
    std::abort();                                   \
  } while (0)
#endif

#define BRICKFS_FUZZ_CHECK(cond, ...)                                            \
  do {                                                                           \
    if (!(cond)) {                                                               \
      char brickfs_fuzz_buf_[512];                                               \
      std::snprintf(brickfs_fuzz_buf_, sizeof brickfs_fuzz_buf_, __VA_ARGS__);   \
      BRICKFS_FUZZ_FAIL(std::string("fuzz contract violated: ") + #cond + ": " + \
                        brickfs_fuzz_buf_);                                      \
    }                                                                            \
  } while (0)

namespace brickfs::fuzz {

// Same value: same kind, numbers equal (an integer dumped and read back stays that
// integer; an integral double is written without ".0" and comes back as an
// integer, -0.0 as the integer 0), strings equal, containers equal in order.
inline bool JsonEquivalent(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) {
    if (JsonIsUint(a) && JsonIsUint(b)) return a.get<uint64_t>() == b.get<uint64_t>();
    if (a.is_number_integer() && b.is_number_integer()) return a.get<int64_t>() == b.get<int64_t>();
    return a.get<double>() == b.get<double>();
  }
  if (a.type() != b.type()) return false;
  if (a.is_array() || a.is_object()) {
    if (a.size() != b.size()) return false;
    auto i = a.items().begin();
    auto j = b.items().begin();
    for (; i != a.items().end(); ++i, ++j) {
      if (i.key() != j.key() || !JsonEquivalent(i.value(), j.value())) return false;
    }
    return true;
  }
  return a == b;
}

// ParseJson of any bytes; what parses dumps (compact and pretty) to text that
// parses again to the same value (status and zarr.json files are written and read
// back), and a second dump is identical to the first. Every parsed value is
// within the limits ParseJson promises.
inline void FuzzJson(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = ParseJson(text, "fuzz.json");
  if (!r.ok()) {
    BRICKFS_FUZZ_CHECK(r.status().code() == Status::Code::kCorruption &&
                           r.status().message().rfind("fuzz.json: ", 0) == 0,
                       "refusal is not a Corruption naming the document: %s",
                       r.status().ToString().c_str());
    return;
  }
  for (int indent : {-1, 2}) {
    std::string once = DumpJson(*r, indent);
    auto again = ParseJson(once);
    BRICKFS_FUZZ_CHECK(again.ok(), "the dump of a parsed value does not parse: %s (%s)",
                       once.substr(0, 200).c_str(), again.status().ToString().c_str());
    BRICKFS_FUZZ_CHECK(JsonEquivalent(*r, *again), "value changed through Dump/Parse: %s",
                       once.substr(0, 200).c_str());
    std::string twice = DumpJson(*again, indent);
    auto third = ParseJson(twice);
    BRICKFS_FUZZ_CHECK(third.ok() && DumpJson(*third, indent) == twice, "dump not stable: %s",
                       twice.substr(0, 200).c_str());
  }
}

// VolumeMeta::FromArrayJson of any bytes (STORE/0/zarr.json is read from disk).
// Accepted geometry must be usable: non-zero block, brick a multiple of block.
inline void FuzzVolumeMeta(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = VolumeMeta::FromArrayJson(text, "fuzz/zarr.json");
  (void)CheckGroupJson(text, "fuzz/zarr.json");
  (void)BrickfsGroupProblem(text);
  if (!r.ok()) return;
  const Geometry& g = r->geo;
  for (int i = 0; i < 3; ++i) {
    BRICKFS_FUZZ_CHECK(g.block[i] > 0 && g.brick[i] > 0, "zero block/brick side accepted");
    BRICKFS_FUZZ_CHECK(g.brick[i] % g.block[i] == 0, "brick %llu not a multiple of block %llu",
                       (unsigned long long)g.brick[i], (unsigned long long)g.block[i]);
  }
  (void)g.blocks_in_brick();
  (void)g.block_bytes();
  std::string out = r->ArrayJson();
  auto back = VolumeMeta::FromArrayJson(out, "fuzz/rewritten");
  BRICKFS_FUZZ_CHECK(back.ok(), "ArrayJson() of an accepted meta does not parse: %s",
                     back.status().ToString().c_str());
  BRICKFS_FUZZ_CHECK(back->geo.shape == g.shape && back->geo.block == g.block &&
                         back->geo.brick == g.brick && back->geo.dtype == g.dtype,
                     "geometry changed through ArrayJson()");
}

// ShardIndex::Decode. Input: num_blocks u16, data_end u64, max_block_nbytes u32,
// flags u8 (bit 0: make the index size right and its crc32c valid, so that the
// entry checks are reached), then the index bytes.
inline void FuzzShardIndex(const uint8_t* data, size_t size) {
  if (size < 15) return;
  uint64_t num_blocks = GetU16(data);
  uint64_t data_end = GetU64(data + 2);
  uint64_t max_nbytes = GetU32(data + 10);
  uint8_t flags = data[14];
  std::string idx(reinterpret_cast<const char*>(data + 15), size - 15);
  if (flags & 1) {
    num_blocks = idx.size() >= 4 ? (idx.size() - 4) / 16 : 0;
    idx.resize(ShardIndex::EncodedSize(num_blocks));
    uint32_t crc = Crc32c(idx.data(), num_blocks * 16);
    PutU32(reinterpret_cast<uint8_t*>(&idx[num_blocks * 16]), crc);
  }
  if (flags & 2) data_end &= 0xFFFFFF;  // small files: entries sometimes in range
  auto r = ShardIndex::Decode(reinterpret_cast<const uint8_t*>(idx.data()), idx.size(),
                              num_blocks, data_end, max_nbytes, "fuzz/shard");
  if (!r.ok()) return;
  BRICKFS_FUZZ_CHECK(r->size() == num_blocks, "decoded %llu entries, want %llu",
                     (unsigned long long)r->size(), (unsigned long long)num_blocks);
  for (uint64_t i = 0; i < r->size(); ++i) {
    const BlockLocation& e = r->at(i);
    if (e.empty()) continue;
    uint64_t end = 0;
    BRICKFS_FUZZ_CHECK(!__builtin_add_overflow(e.offset, e.nbytes, &end),
                       "entry %llu: offset + nbytes overflows", (unsigned long long)i);
    BRICKFS_FUZZ_CHECK(end <= data_end, "entry %llu ends at %llu past data_end %llu",
                       (unsigned long long)i, (unsigned long long)end,
                       (unsigned long long)data_end);
    BRICKFS_FUZZ_CHECK(e.nbytes > 0 && e.nbytes <= max_nbytes, "entry %llu: nbytes %llu",
                       (unsigned long long)i, (unsigned long long)e.nbytes);
  }
  std::string enc;
  r->EncodeTo(&enc);
  BRICKFS_FUZZ_CHECK(enc == idx, "re-encoded index differs from the accepted bytes");
}

// ReplayJournal. Input: flags u8; bit 0 clear: the rest is the journal as is;
// set: the rest is a list of payloads, each preceded by its length u8, framed here
// with a valid length and crc32c (so the record parsing is reached), with the
// remaining bytes appended raw as a torn tail.
inline void FuzzJournal(const uint8_t* data, size_t size) {
  if (size < 1) return;
  std::string bytes;
  if (data[0] & 1) {
    size_t pos = 1;
    while (pos < size) {
      size_t n = data[pos++];
      if (n == 0 || n > size - pos) break;
      uint8_t head[8];
      PutU32(head, static_cast<uint32_t>(n));
      PutU32(head + 4, Crc32c(data + pos, n));
      bytes.append(reinterpret_cast<const char*>(head), 8);
      bytes.append(reinterpret_cast<const char*>(data + pos), n);
      pos += n;
    }
    bytes.append(reinterpret_cast<const char*>(data + pos), size - pos);
  } else {
    bytes.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  }
  auto r = ReplayJournal(bytes, "fuzz/journal");
  if (!r.ok()) return;
  BRICKFS_FUZZ_CHECK(r->valid_bytes <= bytes.size(), "valid_bytes %llu > %zu",
                     (unsigned long long)r->valid_bytes, bytes.size());
  BRICKFS_FUZZ_CHECK(r->valid_bytes + r->torn_bytes == bytes.size(),
                     "valid %llu + torn %llu != %zu", (unsigned long long)r->valid_bytes,
                     (unsigned long long)r->torn_bytes, bytes.size());
  for (const auto& [id, len] : r->base) (void)r->RecoveredLength(id);
  for (const auto& [id, len] : r->committed) {
    auto rec = r->RecoveredLength(id);
    BRICKFS_FUZZ_CHECK(rec && *rec == len, "RecoveredLength differs from committed");
  }
  // replaying the valid prefix alone gives the same state
  auto p = ReplayJournal(bytes.substr(0, r->valid_bytes), "fuzz/journal-prefix");
  BRICKFS_FUZZ_CHECK(p.ok() && p->frames == r->frames && p->committed == r->committed &&
                         p->received == r->received && p->torn_bytes == 0,
                     "the valid prefix replays differently");
}

}  // namespace brickfs::fuzz

#endif  // BRICKFS_TESTS_FUZZ_FORMAT_FUZZ_BODIES_H_
