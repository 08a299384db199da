#include "format/shard_index.h"

#include "common/bytes.h"
#include "common/crc32c.h"

namespace brickfs {

uint64_t ShardIndex::live_blocks() const {
  uint64_t n = 0;
  for (const auto& e : entries_) n += e.empty() ? 0 : 1;
  return n;
}

uint64_t ShardIndex::live_bytes() const {
  uint64_t n = 0;
  for (const auto& e : entries_) n += e.empty() ? 0 : e.nbytes;
  return n;
}

void ShardIndex::EncodeTo(std::string* out) const {
  size_t start = out->size();
  out->resize(start + EncodedSize(entries_.size()));
  auto* p = reinterpret_cast<uint8_t*>(out->data() + start);
  for (const auto& e : entries_) {
    PutU64(p, e.offset);
    PutU64(p + 8, e.nbytes);
    p += 16;
  }
  PutU32(p, Crc32c(out->data() + start, entries_.size() * 16));
}

Result<ShardIndex> ShardIndex::Decode(const uint8_t* data, uint64_t size, uint64_t num_blocks,
                                      uint64_t data_end, uint64_t max_block_nbytes,
                                      const std::string& where) {
  if (size != EncodedSize(num_blocks)) {
    return Status::Corruption(where + ": shard index is " + std::to_string(size) +
                              " bytes, expected " + std::to_string(EncodedSize(num_blocks)));
  }
  uint32_t stored = GetU32(data + num_blocks * 16);
  uint32_t actual = Crc32c(data, num_blocks * 16);
  if (stored != actual) {
    return Status::Corruption(where + ": shard index crc32c mismatch (stored " +
                              std::to_string(stored) + ", computed " + std::to_string(actual) + ")");
  }
  ShardIndex index(num_blocks);
  for (uint64_t i = 0; i < num_blocks; ++i) {
    BlockLocation loc{GetU64(data + 16 * i), GetU64(data + 16 * i + 8)};
    if (!loc.empty()) {
      if (loc.nbytes == 0 || loc.nbytes > max_block_nbytes || loc.offset > data_end ||
          loc.nbytes > data_end - loc.offset) {
        return Status::Corruption(where + ": index entry " + std::to_string(i) + " (offset " +
                                  std::to_string(loc.offset) + ", nbytes " +
                                  std::to_string(loc.nbytes) + ") outside the " +
                                  std::to_string(data_end) + " data bytes of the shard");
      }
    }
    index.entries_[i] = loc;
  }
  return index;
}

}  // namespace brickfs
