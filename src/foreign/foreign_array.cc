#include "foreign/foreign_array.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "common/bytes.h"
#include "common/thread_pool.h"
#include "foreign/chunk_codecs.h"
#include "foreign/meta_json.h"
#include "store/storage.h"

namespace brickfs {

namespace {

std::string CoordText(const ChunkCoord& c) {
  std::string s = "[";
  for (size_t i = 0; i < c.size(); ++i) s += (i ? "," : "") + std::to_string(c[i]);
  return s + "]";
}

std::vector<uint64_t> Grid(const ZarrArrayMeta& m) { return m.read_grid(); }

constexpr uint64_t kEmpty = ~uint64_t{0};

}  // namespace

struct ForeignArray::ChunkPlace {
  std::string key;        // the chunk's object, or its shard's
  uint64_t slot = 0;      // index of the inner chunk in its shard (sharded)
};

ForeignArray::ForeignArray(Storage* storage, std::string key, ZarrArrayMeta meta,
                           uint64_t index_cache_bytes)
    : storage_(storage),
      key_(std::move(key)),
      meta_(std::move(meta)),
      grid_(Grid(meta_)),
      chunk_bytes_(meta_.read_chunk_bytes()),
      index_cache_bytes_(index_cache_bytes) {}

Result<std::unique_ptr<ForeignArray>> ForeignArray::Open(Storage* storage, const std::string& key) {
  const std::string v3 = JoinKey(key, "zarr.json");
  Result<nlohmann::json> doc = ReadJsonObject(storage, v3);
  if (doc.ok()) {
    BRICKFS_ASSIGN_OR_RETURN(ZarrArrayMeta m, ParseZarrV3Array(*doc, storage->Locate(v3)));
    return std::make_unique<ForeignArray>(storage, key, std::move(m));
  }
  if (doc.status().code() != Status::Code::kNotFound) return doc.status();
  const std::string v2 = JoinKey(key, ".zarray");
  Result<std::string> text = storage->Get(v2, kMaxMetadataBytes);
  if (!text.ok()) {
    if (text.status().code() == Status::Code::kNotFound) {
      return Status::NotFound(storage->Locate(key) +
                              ": not a Zarr array (neither zarr.json nor .zarray exists)");
    }
    return text.status();
  }
  BRICKFS_ASSIGN_OR_RETURN(ZarrArrayMeta m, ParseZarrV2Array(*text, storage->Locate(v2)));
  return std::make_unique<ForeignArray>(storage, key, std::move(m));
}

uint64_t ForeignArray::MaxStored() const {
  const ChunkCodecs& c = meta_.sharding ? meta_.sharding->inner : meta_.codecs;
  if (!c.compressed()) return c.StoredSizeUncompressed(chunk_bytes_);
  // Incompressible data grows a little under every codec read here (Blosc:
  // 16 bytes + 4 per block; gzip: 5 per 16 KiB + 18; zstd: < 1/128).
  return chunk_bytes_ + chunk_bytes_ / 8 + 4096 + 4 * c.bytes_codecs.size();
}

Status ForeignArray::CheckCoord(const ChunkCoord& c) const {
  bool ok = c.size() == rank();
  for (size_t i = 0; ok && i < c.size(); ++i) ok = c[i] < grid_[i];
  if (!ok) {
    return Status::InvalidArgument(storage_->Locate(key_) + ": chunk " + CoordText(c) +
                                   " is outside the chunk grid " + CoordText(grid_));
  }
  return Status::Ok();
}

ForeignArray::ChunkPlace ForeignArray::Place(const ChunkCoord& c) const {
  ChunkPlace p;
  if (!meta_.sharding) {
    p.key = JoinKey(key_, meta_.ChunkKey(c));
    return p;
  }
  const std::vector<uint64_t>& per = meta_.sharding->inner_per_shard;
  ChunkCoord shard(c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    shard[i] = c[i] / per[i];
    p.slot = p.slot * per[i] + c[i] % per[i];
  }
  p.key = JoinKey(key_, meta_.ChunkKey(shard));
  return p;
}

uint64_t ForeignArray::index_reads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_reads_;
}

Result<std::shared_ptr<const ForeignArray::ShardIndex>> ForeignArray::ReadIndex(
    const std::string& key) {
  const ShardingSpec& s = *meta_.sharding;
  const uint64_t n = s.index_bytes();
  auto index = std::make_shared<ShardIndex>();
  std::string bytes;
  if (s.index_at_start) {
    Result<uint64_t> size = storage_->Size(key);
    if (!size.ok()) {
      if (size.status().code() == Status::Code::kNotFound) return std::shared_ptr<const ShardIndex>(index);
      return size.status();
    }
    index->size = *size;
    if (index->size < n) {
      return Status::Corruption(storage_->Locate(key) + ": shard of " + std::to_string(index->size) +
                                " bytes is shorter than its " + std::to_string(n) + "-byte index");
    }
    BRICKFS_RETURN_IF_ERROR(storage_->ReadRanges(key, {{0, n}}, [&](size_t, std::string_view b) {
      bytes.assign(b);
      return Status::Ok();
    }));
  } else {
    Result<Storage::Tail> tail = storage_->ReadTail(key, n);
    if (!tail.ok()) {
      if (tail.status().code() == Status::Code::kNotFound) return std::shared_ptr<const ShardIndex>(index);
      return tail.status();
    }
    index->size = tail->size;
    if (index->size < n) {
      return Status::Corruption(storage_->Locate(key) + ": shard of " + std::to_string(index->size) +
                                " bytes is shorter than its " + std::to_string(n) + "-byte index");
    }
    bytes = std::move(tail->bytes);
  }
  if (bytes.size() != n) {
    return Status::Corruption(storage_->Locate(key) + ": read " + std::to_string(bytes.size()) +
                              " bytes of the shard index, expected " + std::to_string(n));
  }
  std::string_view entries = bytes;
  if (s.index_crc32c) {
    Result<std::string_view> payload = StripCrc32c(bytes);
    if (!payload.ok()) {
      return payload.status().WithContext(storage_->Locate(key) + ": shard index");
    }
    entries = *payload;
  }
  index->present = true;
  index->offset.resize(s.inner_count);
  index->nbytes.resize(s.inner_count);
  const uint64_t max_stored = MaxStored();
  // Chunks live outside the index: after it (at start) or before it (at end).
  const uint64_t lo = s.index_at_start ? n : 0;
  const uint64_t hi = s.index_at_start ? index->size : index->size - n;
  for (uint64_t i = 0; i < s.inner_count; ++i) {
    uint64_t off = GetU64(reinterpret_cast<const uint8_t*>(entries.data()) + 16 * i);
    uint64_t len = GetU64(reinterpret_cast<const uint8_t*>(entries.data()) + 16 * i + 8);
    if (s.index_big_endian) {
      off = __builtin_bswap64(off);
      len = __builtin_bswap64(len);
    }
    index->offset[i] = off;
    index->nbytes[i] = len;
    if (off == kEmpty && len == kEmpty) continue;
    std::string bad;
    if (off == kEmpty || len == kEmpty) {
      bad = "half empty";
    } else if (len > max_stored) {
      bad = "larger than a chunk may be stored (" + std::to_string(max_stored) + " bytes)";
    } else if (off < lo || off > hi || len > hi - off) {
      bad = "outside the chunk bytes [" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
    }
    if (!bad.empty()) {
      return Status::Corruption(storage_->Locate(key) + ": shard index entry " +
                                std::to_string(i) + " (offset " + std::to_string(off) +
                                ", " + std::to_string(len) + " bytes) is " + bad +
                                "; the shard has " + std::to_string(index->size) + " bytes");
    }
  }
  return std::shared_ptr<const ShardIndex>(index);
}

Result<std::shared_ptr<const ForeignArray::ShardIndex>> ForeignArray::Index(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.index;
    }
  }
  // Two readers may both read a missing index; the second insert is dropped.
  BRICKFS_ASSIGN_OR_RETURN(std::shared_ptr<const ShardIndex> index, ReadIndex(key));
  std::lock_guard<std::mutex> lock(mu_);
  ++index_reads_;
  if (cache_.count(key)) return index;
  const uint64_t cost = 16 * index->offset.size() + 64;
  if (cost > index_cache_bytes_) return index;
  lru_.push_front(key);
  cache_[key] = Cached{index, lru_.begin()};
  cached_bytes_ += cost;
  while (cached_bytes_ > index_cache_bytes_ && !lru_.empty()) {
    auto old = cache_.find(lru_.back());
    cached_bytes_ -= 16 * old->second.index->offset.size() + 64;
    cache_.erase(old);
    lru_.pop_back();
  }
  return index;
}

Status ForeignArray::DecodeChunk(std::string_view stored, uint8_t* out) const {
  const ChunkCodecs& c = meta_.sharding ? meta_.sharding->inner : meta_.codecs;
  const size_t raw = chunk_bytes_;
  // Sizes before each bytes codec (when decoding: its output), known up to
  // the compressor (there is at most one).
  const std::vector<BytesCodecKind>& bc = c.bytes_codecs;
  size_t compressor = bc.size();
  for (size_t j = 0; j < bc.size(); ++j) {
    if (bc[j] != BytesCodecKind::kCrc32c) compressor = j;
  }
  const bool transpose = !c.transposes.empty();
  std::vector<uint8_t> scratch;
  std::string_view cur = stored;
  // Undo the codecs after the compressor (crc32c only), last first.
  for (size_t j = bc.size(); j-- > (compressor == bc.size() ? 0 : compressor + 1);) {
    BRICKFS_ASSIGN_OR_RETURN(cur, StripCrc32c(cur));
  }
  // The bytes the compressor (if any) must produce: raw + a crc per codec
  // before it; uncompressed chains end here with the same size.
  const size_t crcs_before = compressor == bc.size() ? 0 : compressor;
  const size_t want = raw + 4 * crcs_before;
  uint8_t* dst = (!transpose && crcs_before == 0) ? out : nullptr;
  if (!dst) {
    scratch.resize(want);
    dst = scratch.data();
  }
  if (compressor < bc.size()) {
    Status st;
    switch (bc[compressor]) {
      case BytesCodecKind::kGzip: st = InflateExact(cur, true, dst, want); break;
      case BytesCodecKind::kZlib: st = InflateExact(cur, false, dst, want); break;
      case BytesCodecKind::kZstd: st = ZstdDecompressExact(cur, dst, want); break;
      case BytesCodecKind::kBlosc: st = BloscDecompressExact(cur, dst, want); break;
      case BytesCodecKind::kCrc32c: break;
    }
    BRICKFS_RETURN_IF_ERROR(st);
    cur = std::string_view(reinterpret_cast<const char*>(dst), want);
    for (size_t j = compressor; j-- > 0;) {
      BRICKFS_ASSIGN_OR_RETURN(cur, StripCrc32c(cur));
    }
  } else {
    if (cur.size() != raw) {
      return Status::Corruption("uncompressed chunk has " + std::to_string(cur.size()) +
                                " bytes, expected " + std::to_string(raw));
    }
    std::memcpy(dst, cur.data(), raw);
    cur = std::string_view(reinterpret_cast<const char*>(dst), raw);
  }
  // cur now holds the raw chunk at the start of dst.
  if (c.big_endian) ByteSwapInPlace(dst, raw / DTypeSize(meta_.dtype), DTypeSize(meta_.dtype));
  if (transpose) {
    UndoTransposes(c.transposes, chunk(), DTypeSize(meta_.dtype), dst, out);
  } else if (dst != out) {
    std::memcpy(out, dst, raw);
  }
  return Status::Ok();
}

void UndoTransposes(const std::vector<std::vector<size_t>>& transposes,
                    const std::vector<uint64_t>& shape, uint32_t elem, const uint8_t* in,
                    uint8_t* out) {
  const size_t rank = shape.size();
  // Compose: after all transposes, encoded axis i is decoded axis p[i].
  std::vector<size_t> p(rank);
  for (size_t i = 0; i < rank; ++i) p[i] = i;
  for (const std::vector<size_t>& t : transposes) {
    std::vector<size_t> q(rank);
    for (size_t i = 0; i < rank; ++i) q[i] = p[t[i]];
    p = q;
  }
  // Decoded C-order strides (in elements), and the encoded shape.
  std::vector<uint64_t> stride(rank, 1), enc(rank);
  for (size_t i = rank; i-- > 1;) stride[i - 1] = stride[i] * shape[i];
  for (size_t i = 0; i < rank; ++i) enc[i] = shape[p[i]];
  uint64_t total = 1;
  for (uint64_t s : shape) total *= s;
  if (total == 0) return;
  // Walk the encoded array in C order; the innermost axis moves the decoded
  // position by stride[p[rank-1]].
  std::vector<uint64_t> e(rank, 0);
  const uint64_t inner = enc[rank - 1];
  const uint64_t inner_step = stride[p[rank - 1]] * elem;
  for (uint64_t done = 0; done < total; done += inner) {
    uint64_t base = 0;
    for (size_t i = 0; i + 1 < rank; ++i) base += e[i] * stride[p[i]];
    uint8_t* o = out + base * elem;
    for (uint64_t k = 0; k < inner; ++k, in += elem, o += inner_step) std::memcpy(o, in, elem);
    for (size_t i = rank - 1; i-- > 0;) {  // odometer over the outer axes
      if (++e[i] < enc[i]) break;
      e[i] = 0;
    }
  }
}

Status ForeignArray::ReadChunks(const std::vector<ChunkCoord>& chunks, const ChunkVisitor& visit,
                                ThreadPool* pool) {
  for (const ChunkCoord& c : chunks) BRICKFS_RETURN_IF_ERROR(CheckCoord(c));
  // Group the batch by object, keeping each object's chunks together.
  std::map<std::string, std::vector<std::pair<size_t, uint64_t>>> by_key;  // i, slot
  for (size_t i = 0; i < chunks.size(); ++i) {
    ChunkPlace p = Place(chunks[i]);
    by_key[p.key].emplace_back(i, p.slot);
  }
  // Fetch: the stored bytes of every chunk (nullopt: fill).
  std::vector<std::optional<std::string>> stored(chunks.size());
  const uint64_t max_stored = MaxStored();
  using Members = std::vector<std::pair<size_t, uint64_t>>;
  // Fetches one object's chunks into `stored` (each slot is written by one
  // object only, so objects may be fetched in parallel).
  auto fetch = [&](const std::string& key, const Members& members) -> Status {
    if (!meta_.sharding) {
      Result<std::string> bytes = storage_->Get(key, max_stored);
      if (!bytes.ok()) {
        if (bytes.status().code() == Status::Code::kNotFound) return Status::Ok();
        if (bytes.status().code() == Status::Code::kInvalidArgument) {  // too large
          return Status::Corruption(bytes.status().message() + " (chunk " +
                                    CoordText(chunks[members[0].first]) + " of " +
                                    std::to_string(chunk_bytes_) + " bytes decoded)");
        }
        return bytes.status();
      }
      stored[members[0].first] = std::move(*bytes);
      for (size_t m = 1; m < members.size(); ++m) stored[members[m].first] = stored[members[0].first];
      return Status::Ok();
    }
    BRICKFS_ASSIGN_OR_RETURN(std::shared_ptr<const ShardIndex> index, Index(key));
    if (!index->present) return Status::Ok();
    std::vector<Storage::Range> ranges;
    std::vector<size_t> range_chunk;
    for (const auto& [i, slot] : members) {
      if (index->offset[slot] == kEmpty) continue;
      ranges.push_back({index->offset[slot], index->nbytes[slot]});
      range_chunk.push_back(i);
    }
    if (ranges.empty()) return Status::Ok();
    Status st = storage_->ReadRanges(key, ranges, [&](size_t r, std::string_view b) {
      stored[range_chunk[r]] = std::string(b);
      return Status::Ok();
    });
    if (!st.ok()) {
      if (st.code() == Status::Code::kCorruption || st.code() == Status::Code::kNotFound) {
        return Status::Corruption(storage_->Locate(key) + ": shard changed or was cut while read: " +
                                  st.message());
      }
      return st;
    }
    return Status::Ok();
  };
  if (pool && by_key.size() > 1) {
    std::vector<const std::pair<const std::string, Members>*> objects;
    for (const auto& kv : by_key) objects.push_back(&kv);
    std::vector<Status> fetched(objects.size());
    pool->ParallelFor(objects.size(), [&](size_t o) {
      fetched[o] = fetch(objects[o]->first, objects[o]->second);
    });
    for (const Status& st : fetched) BRICKFS_RETURN_IF_ERROR(st);
  } else {
    for (const auto& [key, members] : by_key) BRICKFS_RETURN_IF_ERROR(fetch(key, members));
  }
  auto context = [&](size_t i) {
    ChunkPlace p = Place(chunks[i]);
    std::string where = storage_->Locate(p.key);
    if (meta_.sharding) where += " inner chunk " + std::to_string(p.slot);
    return where + " (chunk " + CoordText(chunks[i]) + ")";
  };
  // Decode and visit.
  if (pool && chunks.size() > 1) {
    // Decoded in waves of a few chunks per thread into buffers reused from
    // wave to wave: fresh memory faults in slowly (DESIGN §11), and a batch
    // may hold far more chunks than threads. Not zeroed: DecodeChunk writes
    // every byte or fails.
    const size_t wave = std::min(chunks.size(), 2 * (pool->size() + 1));
    std::vector<std::unique_ptr<uint8_t[]>> bufs(wave);
    std::vector<Status> status(wave);
    for (size_t w0 = 0; w0 < chunks.size(); w0 += wave) {
      const size_t n = std::min(wave, chunks.size() - w0);
      pool->ParallelFor(n, [&](size_t k) {
        status[k] = Status::Ok();
        if (!stored[w0 + k]) return;
        if (!bufs[k]) bufs[k].reset(new uint8_t[chunk_bytes_]);
        status[k] = DecodeChunk(*stored[w0 + k], bufs[k].get());
      });
      for (size_t k = 0; k < n; ++k) {
        if (!status[k].ok()) return status[k].WithContext(context(w0 + k));
        BRICKFS_RETURN_IF_ERROR(visit(w0 + k, stored[w0 + k] ? bufs[k].get() : nullptr));
      }
    }
    return Status::Ok();
  }
  std::unique_ptr<uint8_t[]> buf(new uint8_t[chunk_bytes_]);  // not zeroed, as above
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!stored[i]) {
      BRICKFS_RETURN_IF_ERROR(visit(i, nullptr));
      continue;
    }
    Status st = DecodeChunk(*stored[i], buf.get());
    if (!st.ok()) return st.WithContext(context(i));
    BRICKFS_RETURN_IF_ERROR(visit(i, buf.get()));
  }
  return Status::Ok();
}

void ForeignArray::Prefetch(const std::vector<ChunkCoord>& chunks) {
  std::map<std::string, std::vector<Storage::Range>> by_key;
  for (const ChunkCoord& c : chunks) {
    if (!CheckCoord(c).ok()) continue;
    ChunkPlace p = Place(c);
    if (!meta_.sharding) {
      by_key[p.key];  // the whole object: no range known before reading it
      continue;
    }
    Result<std::shared_ptr<const ShardIndex>> index = Index(p.key);
    if (!index.ok() || !(*index)->present || (*index)->offset[p.slot] == kEmpty) continue;
    by_key[p.key].push_back({(*index)->offset[p.slot], (*index)->nbytes[p.slot]});
  }
  for (auto& [key, ranges] : by_key) {
    if (ranges.empty() && !meta_.sharding) {
      Result<uint64_t> size = storage_->Size(key);
      if (!size.ok()) continue;
      ranges.push_back({0, *size});
    }
    storage_->Prefetch(key, ranges);
  }
}

}  // namespace brickfs
