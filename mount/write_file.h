// Files being written through a mount, without FUSE: the bytes of a slice
// or brick file between open and close, and of staged files (temporary
// names, volume/naming.h IsStagedName) until they are renamed or removed.
//
// A WriteFile keeps its bytes in memory, with the byte ranges actually
// written (so that a file with holes is refused at close), the modification
// time its writer left, and the memory it holds charged to the mount's
// budget through a Charger. A write or truncate past the file's cap fails
// with EFBIG before anything is allocated.
//
// StagedFiles is the table of staged files of z/ by name.
//
// Thread-safety: WriteFile methods take its own mutex; StagedFiles methods
// take the table's mutex. Neither calls out while holding it, except the
// Charger (which may wait for memory, see Volume::ChargeFileMemory).
#ifndef BRICKFS_MOUNT_WRITE_FILE_H_
#define BRICKFS_MOUNT_WRITE_FILE_H_

#include <sys/types.h>

#include <cstdint>
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

class WriteFile {
 public:
  enum class Kind { kSlice, kStaged, kBrick };

  WriteFile(Kind kind, std::string name, MemoryCharger charger);
  ~WriteFile();  // releases what it charged
  WriteFile(const WriteFile&) = delete;
  WriteFile& operator=(const WriteFile&) = delete;

  // Writes p[0, n) at `off`. Errors: IOError(EFBIG) past `cap` (nothing
  // allocated), NoSpace when the budget refuses the memory.
  Status Write(uint64_t off, const uint8_t* p, size_t n, uint64_t cap);
  // Sets the size; bytes past it are dropped, bytes added are holes.
  Status Truncate(uint64_t size, uint64_t cap);
  // Replaces the content with `bytes`, all counted as written (a file opened
  // for update starts with what it shows).
  Status Preload(std::vector<uint8_t> bytes);
  // Copies [off, off+n) into out; returns bytes copied (0 at or past EOF).
  size_t Read(uint64_t off, uint8_t* out, size_t n) const;

  // Calls f(data, size, written) with the content, under the file's mutex.
  template <typename F>
  auto WithContent(F&& f) const {
    std::lock_guard<std::mutex> lock(mu_);
    return f(data_.data(), size_, written_);
  }

  Kind kind() const { return kind_; }
  std::string name() const;
  void set_name(std::string name);
  uint64_t size() const;
  uint64_t charged() const;
  int64_t mtime_ns() const;
  void set_mtime_ns(int64_t t);
  mode_t mode() const;
  void set_mode(mode_t m);
  // Written since the last ingest (set by Write/Truncate/Preload(dirty)).
  bool dirty() const;
  void set_dirty(bool d);
  // A write went past the cap; the close reports EFBIG.
  bool oversized() const;

 private:
  // Grows capacity to at least `want` bytes (charging); REQUIRES: mu_ held.
  Status ReserveLocked(uint64_t want, uint64_t cap);

  const Kind kind_;
  const MemoryCharger charger_;
  mutable std::mutex mu_;
  std::string name_;            // guarded by mu_
  std::vector<uint8_t> data_;   // guarded by mu_; size() >= size_
  uint64_t size_ = 0;           // guarded by mu_
  uint64_t charged_ = 0;        // guarded by mu_: data_.capacity() charged
  IntervalSet written_;         // guarded by mu_
  int64_t mtime_ns_ = 0;        // guarded by mu_
  mode_t mode_ = 0644;          // guarded by mu_
  bool dirty_ = false;          // guarded by mu_
  bool oversized_ = false;      // guarded by mu_
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
  std::vector<std::string> Names() const;
  // Removes every file, returning their names.
  std::vector<std::string> DropAll();
  uint64_t count() const;
  uint64_t bytes() const;  // memory they hold

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<WriteFile>> files_;  // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_WRITE_FILE_H_
