// Where a store's bytes live: the interface between the engine and files.
//
// A Storage holds objects named by keys: '/'-separated paths relative to the
// store's root ("zarr.json", "0/zarr.json", "0/c/1/2/3"). Keys never start
// with '/', never contain "." or ".." components or empty components; every
// implementation refuses such a key (InvalidArgument) before touching
// anything.
//
// Reading (every storage): whole small objects (metadata), the tail of an
// object (a shard index at the end), and batches of byte ranges (the blocks
// of one read, which a remote storage fetches in parallel and coalesces),
// plus prefetch hints. Writing (local stores only; a read-only storage
// returns Unsupported): positional writes that extend an object (the append
// protocol of DESIGN.md §4), truncation (recovery), whole-object
// replacement with a hook between "new object durable" and "new object
// visible" (the journal's kBrickReplace record), removal, and durability
// (Sync). Listing walks one directory level (shard key components).
//
// The private state of a writable local store (STORE/.brickfs/: lock,
// journal, spool, sync log, names) is not reached through a Storage: it
// exists only for a local store brickfs writes, and keeps its own file code.
//
// Thread-safety: every method of every implementation is thread-safe.
// Concurrent writes to one object must be serialized by the caller
// (ShardStore holds a mutex per brick).
#ifndef BRICKFS_STORE_STORAGE_H_
#define BRICKFS_STORE_STORAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brickfs/status.h"

namespace brickfs {

class ThreadPool;

class Storage {
 public:
  virtual ~Storage() = default;

  // The path or URL of `key`, for messages ("" names the root).
  virtual std::string Locate(std::string_view key) const = 0;
  virtual bool read_only() const = 0;

  // ---- Reading ------------------------------------------------------------

  // The whole object. NotFound when it does not exist; InvalidArgument
  // (naming it and both sizes) when it is larger than `max_bytes`, before
  // reading it.
  virtual Result<std::string> Get(std::string_view key, uint64_t max_bytes) = 0;

  // The object's size in bytes; NotFound when it does not exist.
  virtual Result<uint64_t> Size(std::string_view key) = 0;

  // The last min(n, size) bytes of the object and its size, in one
  // operation where the storage can (a suffix range request). NotFound when
  // the object does not exist. `cut_at`, when not UINT64_MAX, treats the
  // object as if it ended there (recovery reads a shard as it was before a
  // torn append); a local storage only.
  struct Tail {
    std::string bytes;
    uint64_t size = 0;
  };
  virtual Result<Tail> ReadTail(std::string_view key, uint64_t n,
                                uint64_t cut_at = UINT64_MAX) = 0;

  // Byte ranges of one object, each [offset, offset + length) inside it.
  // visit(i, bytes) is called once for each range i, in any order (a remote
  // storage calls it as responses arrive, possibly from several threads but
  // never concurrently); `bytes` lives only during the call. The first error
  // (a visit's, or the storage's: NotFound, IOError, Corruption for a short
  // object) stops the batch and is returned.
  struct Range {
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  using RangeVisitor = std::function<Status(size_t i, std::string_view bytes)>;
  virtual Status ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                            const RangeVisitor& visit) = 0;

  // A hint that these ranges will be read soon: the storage may start
  // fetching them without waiting (posix_fadvise, background requests).
  // Errors are ignored.
  virtual void Prefetch(std::string_view key, const std::vector<Range>& ranges) = 0;

  // The names in directory `prefix` (one level; "" is the root), sorted;
  // empty when it does not exist. A storage that cannot list (plain HTTP)
  // returns Unsupported.
  virtual Result<std::vector<std::string>> List(std::string_view prefix) = 0;

  // An identity of the object now at `key` (a local file's inode), 0 when
  // nothing (or not a regular file) is there. Recovery uses it to tell a
  // replacement that was renamed into place from one that was not.
  virtual Result<uint64_t> Identity(std::string_view key) = 0;

  // ---- Writing (Unsupported on a read-only storage) -------------------------

  // Writes `bytes` at `offset` of the object, creating it (and the
  // directories above it) when missing. On failure the object is cut back
  // to `offset` (it stays what it was before, when offset was its end).
  virtual Status WriteAt(std::string_view key, uint64_t offset, std::string_view bytes) = 0;

  // Cuts the object to `length` bytes (no-op when already that short).
  virtual Status Truncate(std::string_view key, uint64_t length) = 0;

  // Replaces the object whole with `bytes`: the new object is made durable
  // beside the old one, then before_visible(identity of the new object)
  // runs (an error stops the replacement, the old object stays), then the
  // new one takes the key atomically and durably: a reader sees the old or
  // the new object, never a mix.
  using BeforeVisible = std::function<Status(uint64_t identity)>;
  virtual Status Replace(std::string_view key, std::string_view bytes,
                         const BeforeVisible& before_visible) = 0;

  // Removes the object (durably); OK when it does not exist.
  virtual Status Remove(std::string_view key) = 0;

  // Removes every object whose key starts with `prefix` + "/" and the
  // prefix itself (a whole array: "1"), durably; OK when none exists.
  // Unsupported unless a storage implements it.
  virtual Status RemoveAll(std::string_view prefix);

  // Makes the objects' contents durable (on `io` in parallel, when given),
  // and every directory created by WriteAt since the last Sync.
  virtual Status Sync(const std::vector<std::string>& keys, ThreadPool* io = nullptr) = 0;
};

// Checks a key as the header says; empty when valid, else why not.
std::string KeyProblem(std::string_view key);

// Joins key components: JoinKey("0/c", "1") == "0/c/1"; JoinKey("", k) == k.
std::string JoinKey(std::string_view a, std::string_view b);

}  // namespace brickfs

#endif  // BRICKFS_STORE_STORAGE_H_
