// One array of a foreign Zarr store (v2 or v3), read through a Storage:
// chunks found by key, fetched (whole objects, or ranges of a shard), and
// decoded to C-order little-endian voxels of a brickfs DType.
//
// The read unit is the chunk, or the inner chunk when the array is sharded;
// chunk coordinates below are in that grid. A decoded chunk is always the
// full chunk shape as stored (edge chunks are not clipped). A chunk or shard
// that does not exist (NotFound), and an inner chunk whose index entry is
// empty, read as the fill value. Shard indexes are validated (every entry
// inside the shard, no entry larger than a chunk may be stored) and cached,
// bounded in bytes; a missing shard is remembered as missing (a foreign
// store is served read-only and is not expected to change under a mount).
//
// Errors: InvalidArgument for coordinates outside the grid; Corruption
// (naming the object, the chunk and the reason) for bytes that fail to
// decode, checksums, index entries out of range, sizes other than the
// metadata's; the Storage's own errors (IOError ...) pass through with the
// object named.
//
// Thread-safety: every method is thread-safe (the index cache has its own
// mutex, never held while reading or decoding).
#ifndef BRICKFS_FOREIGN_FOREIGN_ARRAY_H_
#define BRICKFS_FOREIGN_FOREIGN_ARRAY_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "brickfs/status.h"
#include "foreign/zarr_meta.h"

namespace brickfs {

class Storage;
class ThreadPool;

using ChunkCoord = std::vector<uint64_t>;

class ForeignArray {
 public:
  // Default bound of the shard index cache, in index bytes.
  static constexpr uint64_t kDefaultIndexCacheBytes = uint64_t{64} << 20;

  // REQUIRES: `storage` outlives the array; `meta` was parsed from the
  // metadata of the array at `key` ("" for the root) of this storage.
  ForeignArray(Storage* storage, std::string key, ZarrArrayMeta meta,
               uint64_t index_cache_bytes = kDefaultIndexCacheBytes);

  // Reads and parses KEY/zarr.json (v3) or, when absent, KEY/.zarray (v2).
  // NotFound when neither exists.
  static Result<std::unique_ptr<ForeignArray>> Open(Storage* storage, const std::string& key);

  const ZarrArrayMeta& meta() const { return meta_; }
  const std::string& key() const { return key_; }
  size_t rank() const { return meta_.rank(); }
  const std::vector<uint64_t>& shape() const { return meta_.shape; }
  const std::vector<uint64_t>& chunk() const { return meta_.read_chunk(); }
  const std::vector<uint64_t>& grid() const { return grid_; }
  DType dtype() const { return meta_.dtype; }
  uint64_t chunk_bytes() const { return chunk_bytes_; }
  // One voxel of fill value, DTypeSize bytes little-endian.
  const std::string& fill() const { return meta_.fill; }

  // visit(i, data) once for each chunks[i], in order of i, from the calling
  // thread: data is the decoded chunk (chunk_bytes(), valid only during the
  // call) or nullptr when the chunk is entirely fill value (not stored).
  // With a pool, the batch's objects are fetched in parallel and its chunks
  // decoded in parallel, a few per thread at a time. The first error (the
  // visit's or a read's) stops the batch and is returned.
  using ChunkVisitor = std::function<Status(size_t i, const uint8_t* data)>;
  Status ReadChunks(const std::vector<ChunkCoord>& chunks, const ChunkVisitor& visit,
                    ThreadPool* pool = nullptr);

  // Hints that these chunks will be read soon: the storage may start
  // fetching them (for a sharded array, the index is read now if not cached).
  void Prefetch(const std::vector<ChunkCoord>& chunks);

  // Decodes the stored bytes of one read unit into out[0, chunk_bytes()).
  // Corruption (without naming the object) when they do not decode.
  Status DecodeChunk(std::string_view stored, uint8_t* out) const;

  // Shard indexes read so far (for tests: a second read of one shard must
  // not read its index again).
  uint64_t index_reads() const;

 private:
  struct ShardIndex {
    bool present = false;
    uint64_t size = 0;                   // shard bytes
    std::vector<uint64_t> offset, nbytes;  // per inner chunk; nbytes 0 + offset ~0: empty
  };
  struct ChunkPlace;  // a chunk's object and, when sharded, its slot in the index
  ChunkPlace Place(const ChunkCoord& c) const;
  Status CheckCoord(const ChunkCoord& c) const;
  // The cached or freshly read index of shard `key`.
  Result<std::shared_ptr<const ShardIndex>> Index(const std::string& key);
  Result<std::shared_ptr<const ShardIndex>> ReadIndex(const std::string& key);
  // Largest stored size accepted for one read unit.
  uint64_t MaxStored() const;

  Storage* const storage_;
  const std::string key_;
  const ZarrArrayMeta meta_;
  const std::vector<uint64_t> grid_;
  const uint64_t chunk_bytes_;
  const uint64_t index_cache_bytes_;

  mutable std::mutex mu_;  // guards the index cache below
  std::list<std::string> lru_;  // most recent first
  struct Cached {
    std::shared_ptr<const ShardIndex> index;
    std::list<std::string>::iterator lru;
  };
  std::unordered_map<std::string, Cached> cache_;
  uint64_t cached_bytes_ = 0;
  uint64_t index_reads_ = 0;
};

// Reorders the C-order array `in` whose axes are `shape` permuted by the
// transposes (encoded axis i = decoded axis perm[i], applied in order) back
// into the C-order array of `shape` at `out`. `elem` bytes per element.
void UndoTransposes(const std::vector<std::vector<size_t>>& transposes,
                    const std::vector<uint64_t>& shape, uint32_t elem, const uint8_t* in,
                    uint8_t* out);

}  // namespace brickfs

#endif  // BRICKFS_FOREIGN_FOREIGN_ARRAY_H_
