// The shard index of a Zarr v3 sharding_indexed shard, index_location "end".
//
// On disk (all little-endian), at the very end of a shard file:
//   for each block of the brick in C order (z, y, x):
//     offset  u64   byte offset of the encoded block in the shard file
//     nbytes  u64   its encoded length (zstd frame + 4-byte crc32c)
//   crc32c    u32   CRC-32C of the 16*N bytes above
// A block never written has offset = nbytes = 2^64-1. The index of a shard
// with N blocks is therefore 16*N + 4 bytes. Blocks may lie anywhere before
// the index, in any order, with gaps (dead bytes of earlier appends).
//
// Thread-safety: values.
#ifndef BRICKFS_FORMAT_SHARD_INDEX_H_
#define BRICKFS_FORMAT_SHARD_INDEX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "brickfs/status.h"

namespace brickfs {

struct BlockLocation {
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  uint64_t offset = kEmpty;
  uint64_t nbytes = kEmpty;
  bool empty() const { return offset == kEmpty && nbytes == kEmpty; }
};

class ShardIndex {
 public:
  ShardIndex() = default;
  explicit ShardIndex(uint64_t num_blocks) : entries_(num_blocks) {}

  static uint64_t EncodedSize(uint64_t num_blocks) { return num_blocks * 16 + 4; }

  uint64_t size() const { return entries_.size(); }
  const BlockLocation& at(uint64_t i) const { return entries_[i]; }
  void Set(uint64_t i, BlockLocation loc) { entries_[i] = loc; }
  // Number of non-empty entries and the sum of their nbytes.
  uint64_t live_blocks() const;
  uint64_t live_bytes() const;

  // Appends the encoded index (entries + crc32c) to *out.
  void EncodeTo(std::string* out) const;

  // Decodes and validates an index read from the end of a shard file.
  // `data` holds exactly EncodedSize(num_blocks) bytes; `data_end` is the
  // offset where the index starts (= file size - index size). Every entry must
  // be empty or lie within [0, data_end) with 0 < nbytes <= max_block_nbytes.
  // Returns Corruption naming `where` and the entry on any violation.
  static Result<ShardIndex> Decode(const uint8_t* data, uint64_t size, uint64_t num_blocks,
                                   uint64_t data_end, uint64_t max_block_nbytes,
                                   const std::string& where);

 private:
  std::vector<BlockLocation> entries_;
};

}  // namespace brickfs

#endif  // BRICKFS_FORMAT_SHARD_INDEX_H_
