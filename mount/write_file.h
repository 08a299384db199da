// Files being written through a mount, without FUSE: the bytes of a slice
// or brick file between open and close, and of staged files (temporary
// names, volume/naming.h IsStagedName) until they are renamed or removed.
//
// A WriteFile keeps its bytes in memory, with the byte ranges its writer
// wrote (so that a file with holes is refused at close), the bytes it
// started with when opened for update (preloaded, lazily: only when first
// read or written, so `touch` costs nothing), the modification time its
// writer left, and the memory it holds charged to the mount's budget
// through a MemoryCharger. A write or truncate past the file's cap fails
// with EFBIG before anything is allocated. Bytes never written read as 0.
//
// StagedFiles is the table of staged files of z/ by name.
//
// Thread-safety: WriteFile methods take its own mutex; StagedFiles methods
// take the table's mutex. Neither calls out while holding it, except the
// MemoryCharger and a preload's fill function.
#ifndef BRICKFS_MOUNT_WRITE_FILE_H_
#define BRICKFS_MOUNT_WRITE_FILE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "common/interval_set.h"

namespace brickfs {

// Charges (n > 0) or releases (n < 0) bytes of the mount's memory budget.
using MemoryCharger = std::function<Status(int64_t n)>;
// Fills out[0, n) with a file's current content (a preload).
using PreloadFn = std::function<Status(uint8_t* out, uint64_t n)>;

// Spare file buffers kept for reuse: a slice file's bytes are allocated and
// faulted in for every file otherwise, which costs more than reusing memory
// (DESIGN §11). Spares stay charged to the budget; Trim gives them back.
class BufferPool {
 public:
  explicit BufferPool(MemoryCharger charger, size_t max_buffers = 4,
                      uint64_t max_bytes = uint64_t{256} << 20)
      : charger_(std::move(charger)), max_buffers_(max_buffers), max_bytes_(max_bytes) {}
  ~BufferPool() { Trim(); }

  // A spare of at least `want` bytes (its charge goes with it): the pointer
  // and its capacity; {nullptr, 0} when there is none.
  std::pair<uint8_t*, uint64_t> Take(uint64_t want);
  // Keeps a buffer for reuse (still charged) or frees it (releasing).
  void Give(uint8_t* data, uint64_t capacity);
  // Frees every spare, releasing its charge; returns the bytes.
  uint64_t Trim();

 private:
  const MemoryCharger charger_;
  const size_t max_buffers_;
  const uint64_t max_bytes_;
  std::mutex mu_;
  std::vector<std::pair<uint8_t*, uint64_t>> spares_;  // guarded by mu_
};

class WriteFile {
 public:
  enum class Kind { kSlice, kStaged, kBrick };

  // `pool` (may be null) provides and takes back buffers.
  WriteFile(Kind kind, std::string name, MemoryCharger charger,
            std::shared_ptr<BufferPool> pool = nullptr);
  ~WriteFile();  // releases what it charged
  WriteFile(const WriteFile&) = delete;
  WriteFile& operator=(const WriteFile&) = delete;

  // Writes p[0, n) at `off`. Errors: IOError(EFBIG) past `cap` (nothing
  // allocated), NoSpace when the budget refuses the memory, or what a
  // pending preload returned.
  Status Write(uint64_t off, const uint8_t* p, size_t n, uint64_t cap);
  // Sets the size; bytes past it are dropped, bytes added read as 0 and
  // count as never written.
  Status Truncate(uint64_t size, uint64_t cap);
  // The file starts with `size` bytes that `fill` provides, fetched (and
  // charged) only when the content is first needed; they count as there
  // but not as written by this writer.
  void SetPreload(uint64_t size, PreloadFn fill);
  // Copies [off, off+n) into out; returns bytes copied (0 at or past EOF).
  Result<size_t> Read(uint64_t off, uint8_t* out, size_t n);

  // What IngestFile and WriteBrick see: the content, the bytes the writer
  // wrote, the bytes preloaded (empty when not opened for update).
  struct Content {
    const uint8_t* data;
    uint64_t size;
    const IntervalSet& written;
    const IntervalSet& preloaded;
  };
  // Calls f(content) under the file's mutex (materializing a preload).
  Status WithContent(const std::function<Status(const Content&)>& f);

  Kind kind() const;
  // A staged file renamed onto a slice name becomes that slice's file (and
  // back, when that ingest failed).
  void BecomeSlice(std::string name, uint64_t z);
  void BecomeStaged(std::string name);
  std::string name() const;
  void set_name(std::string name);
  uint64_t z() const;  // kSlice: the slice it writes
  uint64_t size() const;
  uint64_t charged() const;
  int64_t mtime_ns() const;
  void set_mtime_ns(int64_t t);
  mode_t mode() const;
  void set_mode(mode_t m);
  // Written since the last ingest.
  bool dirty() const;
  void set_dirty(bool d);
  // A write went past the cap; the close reports EFBIG.
  bool oversized() const;
  // A write failed for want of memory; the close fails too (ENOSPC).
  bool write_failed() const;
  // fsync was called on it (a staged file: its rename makes it durable).
  bool fsynced() const;
  void set_fsynced();

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  // Grows capacity to at least `want` bytes, charging; REQUIRES: mu_ held.
  Status ReserveLocked(uint64_t want, uint64_t cap);
  // Fetches a pending preload; REQUIRES: mu_ held.
  Status MaterializeLocked();

  const MemoryCharger charger_;
  const std::shared_ptr<BufferPool> pool_;
  mutable std::mutex mu_;
  Kind kind_;                                   // guarded by mu_
  std::string name_;                            // guarded by mu_
  uint64_t z_ = 0;                              // guarded by mu_
  std::unique_ptr<uint8_t, FreeDeleter> data_;  // guarded by mu_; capacity_ bytes
  uint64_t capacity_ = 0;                       // guarded by mu_ (== bytes charged)
  uint64_t size_ = 0;                           // guarded by mu_
  IntervalSet written_;                         // guarded by mu_
  IntervalSet preloaded_;                       // guarded by mu_
  uint64_t lazy_size_ = 0;                      // guarded by mu_: a preload not fetched yet
  PreloadFn lazy_fill_;                         // guarded by mu_
  int64_t mtime_ns_ = 0;                        // guarded by mu_
  mode_t mode_ = 0644;                          // guarded by mu_
  bool dirty_ = false;                          // guarded by mu_
  bool oversized_ = false;                      // guarded by mu_
  bool write_failed_ = false;                   // guarded by mu_
  bool fsynced_ = false;                        // guarded by mu_
};

// Staged files of z/ by name.
class StagedFiles {
 public:
  std::shared_ptr<WriteFile> Find(const std::string& name) const;
  // Adds (replacing any file of that name).
  void Put(const std::string& name, std::shared_ptr<WriteFile> file);
  std::shared_ptr<WriteFile> Remove(const std::string& name);
  // Moves `from` to `to` (replacing `to`); false when `from` is absent.
  bool Rename(const std::string& from, const std::string& to);
  // Names in order, from the first one after `after` (all: ""), at most n.
  std::vector<std::string> Names(const std::string& after = "", size_t n = SIZE_MAX) const;
  // Removes every file, returning their names.
  std::vector<std::string> DropAll();
  uint64_t count() const;
  uint64_t bytes() const;  // memory they hold (walks the table: for the status)

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<WriteFile>> files_;  // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_WRITE_FILE_H_
