// The persistent cache of remote objects: bytes exactly as fetched (shard
// indexes, compressed blocks, metadata), kept on local disk across mounts and
// processes, bounded in size, evicted least recently used first.
//
// Layout under the cache directory DIR (created 0700, must be owned by the
// user and not a symlink):
//
//   DIR/v1/usage                       bytes and files in the cache (a 28-byte
//                                      record), and the lock (flock) that
//                                      serializes accounting and eviction
//                                      between processes
//   DIR/v1/tmp/PID.N                   entries being written
//   DIR/v1/objects/HH/HASH/meta        the object's record: its URL, the store
//                                      it was read for, its validator, 404-ness
//   DIR/v1/objects/HH/HASH/w           the whole object
//   DIR/v1/objects/HH/HASH/tN          its last N bytes
//   DIR/v1/objects/HH/HASH/rOFF-LEN    bytes [OFF, OFF+LEN)
//
// HASH is the 64-bit FNV-1a of the URL in hex, HH its first two digits.
// Every file (entry or record) is one entry file, little-endian:
//
//   0   u32  magic 0x45434642 ("BFCE")
//   4   u32  version (1)
//   8   u64  payload length P
//   16  u32  crc32c of the payload
//   20  u32  length M of the description (at most 64 KiB)
//   24  M    description: url, entry name, ETag, Last-Modified (each u32
//            length + bytes), object size u64 (2^64-1: unknown)
//   24+M u32 crc32c of bytes [0, 24+M)
//   28+M P   payload
//
// A file is used only if it is exactly 28+M+P bytes long and both checksums,
// the URL, the entry name and the validator match; anything else is removed
// and counts as a miss, so a crash (or power loss) while filling can never
// serve a torn entry. Entries are written to tmp/ and renamed into place
// (atomic; no fsync: a torn file fails its checksum). Leftover temp files of
// processes that died are removed when a cache is opened.
//
// An entry belongs to the object version (validator) it was fetched under;
// recording a conflicting validator for an object (it changed on the server)
// removes all its entries, and an entry whose validator conflicts with the
// one asked for is removed when found.
//
// LRU: a file's mtime is its last use (set on every hit, at full clock
// resolution). When the bytes in the cache pass max_bytes, the process that
// noticed takes the lock, scans the cache, and removes the least recently
// used files until the cache is under 90% of max_bytes. Several processes
// may share one cache directory: entries appear by rename, usage is updated
// under the lock, and a file removed under a reader is still read whole.
//
// Thread-safety: all methods are thread-safe.
#ifndef BRICKFS_REMOTE_DISK_CACHE_H_
#define BRICKFS_REMOTE_DISK_CACHE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brickfs/status.h"
#include "remote/validator.h"

namespace brickfs {

class DiskCache {
 public:
  struct Options {
    std::string dir;                          // REQUIRES: absolute or relative path, not empty
    uint64_t max_bytes = uint64_t{4} << 30;   // bound of the files' bytes
  };

  // Creates the directories when missing (DIR with mode 0700), removes temp
  // files left by dead processes, and checks the usage record (rescanning
  // when it is missing or torn). InvalidArgument when DIR is a symlink or
  // belongs to another user; IOError when it cannot be created.
  static Result<std::unique_ptr<DiskCache>> Open(const Options& options);
  ~DiskCache();
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  // ---- Objects -------------------------------------------------------------

  struct ObjectRecord {
    std::string base;       // URL of the store it was read for (cache info/clear)
    Validator validator;
    bool absent = false;    // the server answered 404
    int64_t checked_at = 0; // unix seconds of the last revalidation
  };
  // The recorded state of `url`, if any (a torn record counts as none).
  std::optional<ObjectRecord> LookupObject(const std::string& url);
  // Records the object's state. When the previous record conflicts (another
  // validator, or absent vs present), every entry of the object is removed
  // first and *invalidated (when given) is set.
  Status RecordObject(const std::string& url, const ObjectRecord& record,
                      bool* invalidated = nullptr);
  // Removes the object's record and every entry of it.
  void ForgetObject(const std::string& url);

  // ---- Entries -------------------------------------------------------------

  static std::string WholeEntry() { return "w"; }
  static std::string TailEntry(uint64_t n) { return "t" + std::to_string(n); }
  static std::string RangeEntry(uint64_t offset, uint64_t length) {
    return "r" + std::to_string(offset) + "-" + std::to_string(length);
  }

  // The payload of entry `name` of `url` fetched under a validator that
  // does not conflict with `v`; nullopt on a miss (also a torn, stale or
  // corrupt file, which is removed). A hit marks the entry used.
  std::optional<std::string> Lookup(const std::string& url, const std::string& name,
                                    const Validator& v);
  // Whether Lookup would find the entry (checks its description, not its
  // payload; does not mark it used).
  bool Contains(const std::string& url, const std::string& name, const Validator& v);
  // Bytes [offset, offset+length) of `url` under `v`: the range entry of
  // exactly that range, else pieced together from range entries that cover
  // it (a read may ask for blocks in other groupings than they were cached
  // in: one range for several blocks, or a block of a larger fetch). Each
  // piece is checked as by Lookup; nullopt when any is missing or bad.
  std::optional<std::string> LookupRange(const std::string& url, uint64_t offset, uint64_t length,
                                         const Validator& v);
  // Whether LookupRange would find the bytes (as Contains, per piece).
  bool ContainsRange(const std::string& url, uint64_t offset, uint64_t length, const Validator& v);
  // Removes the range entries LookupRange would use for the bytes (the
  // reader found them bad: they are fetched again).
  void DropRange(const std::string& url, uint64_t offset, uint64_t length);
  // Stores `bytes` as entry `name` of `url` under `v`, replacing any entry of
  // that name. Entries over a quarter of max_bytes are not kept (OK).
  // May evict. IOError when the file cannot be written (the cache is then
  // unchanged).
  Status Insert(const std::string& url, const std::string& name, const Validator& v,
                std::string_view bytes);

  // Evicts least recently used files until at most `target` bytes remain.
  Status EvictTo(uint64_t target);

  struct Stats {
    uint64_t hits = 0, misses = 0;
    uint64_t hit_bytes = 0;
    uint64_t inserts = 0, insert_bytes = 0;
    uint64_t dropped_bad = 0;      // torn, corrupt or stale files removed
    uint64_t evicted_files = 0, evicted_bytes = 0;
  };
  Stats stats() const;
  const std::string& dir() const { return dir_; }
  uint64_t max_bytes() const { return max_bytes_; }

  // ---- Administration (brickfs cache info / clear) --------------------------

  struct StoreUsage {
    std::string base;      // "" for objects without a record
    uint64_t objects = 0, files = 0, bytes = 0;
    int64_t last_used = 0;  // unix seconds
  };
  struct Usage {
    std::string dir;
    uint64_t objects = 0, files = 0, bytes = 0;
    std::vector<StoreUsage> stores;  // by base URL
  };
  // Scans the cache at `dir` (read-only; no lock). NotFound when there is
  // no cache there.
  static Result<Usage> Inspect(const std::string& dir);

  struct Cleared {
    uint64_t objects = 0, files = 0, bytes = 0;
  };
  // Removes the objects whose URL is `url_prefix` or lies below it
  // (url_prefix + "/..."), or that were read for that store; everything
  // when `url_prefix` is empty. Safe while mounts use the cache (they
  // refetch what they miss). NotFound when there is no cache at `dir`.
  static Result<Cleared> Clear(const std::string& dir, const std::string& url_prefix);

 private:
  DiskCache(std::string dir, uint64_t max_bytes, int lock_fd);
  std::string ObjectDir(const std::string& url) const;
  std::optional<std::string> ReadEntry(const std::string& url, const std::string& name,
                                       const Validator& v, bool count_miss);
  // The (offset, length) of range entries of `url` that together cover
  // [offset, offset+length), in order; empty when they do not.
  std::vector<std::pair<uint64_t, uint64_t>> Covering(const std::string& url, uint64_t offset,
                                                      uint64_t length) const;
  // Adds to the shared usage record under the lock; evicts when over.
  void AddUsage(int64_t bytes, int64_t files);
  void CountDropped(uint64_t bytes);

  const std::string dir_;   // DIR
  const std::string root_;  // DIR/v1
  const uint64_t max_bytes_;
  const int lock_fd_;       // DIR/v1/usage

  std::mutex usage_mu_;     // serializes this process's flock sections
  std::atomic<uint64_t> tmp_seq_{0};

  std::atomic<uint64_t> hits_{0}, misses_{0}, hit_bytes_{0}, inserts_{0}, insert_bytes_{0},
      dropped_bad_{0}, evicted_files_{0}, evicted_bytes_{0};
};

}  // namespace brickfs

#endif  // BRICKFS_REMOTE_DISK_CACHE_H_
