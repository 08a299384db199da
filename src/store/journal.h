// The journal file STORE/.brickfs/journal: appends frames (format in
// src/format/journal.h), fsyncs on request, empties itself after a clean
// finalize. Thread-safety: all methods are thread-safe (one mutex).
#ifndef BRICKFS_STORE_JOURNAL_H_
#define BRICKFS_STORE_JOURNAL_H_

#include <memory>
#include <mutex>
#include <string>

#include "brickfs/status.h"
#include "format/journal.h"

namespace brickfs {

class Journal {
 public:
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  static std::string PathFor(const std::string& store) { return store + "/.brickfs/journal"; }

  // Opens (creating) the journal for appending, after truncating it to
  // `valid_bytes` (drops a torn tail found by replay). The file is opened
  // with OpenOwnedFile: a symlink, a hard link, a FIFO or a file of another
  // user is refused (InvalidArgument naming it) and left unchanged.
  static Result<std::unique_ptr<Journal>> Open(const std::string& store, uint64_t valid_bytes);

  // Appends frames; with sync, returns once they are durable.
  Status Append(const std::string& frames, bool sync);
  // Empties the journal durably (after the store's metadata is final).
  Status Reset();
  // Replaces the whole journal with `frames`, atomically (new file, fsync,
  // rename, directory fsync): a crash leaves the old journal or the new one.
  Status Restart(const std::string& frames);
  uint64_t size() const;

 private:
  Journal() = default;
  std::string path_;
  int fd_ = -1;
  mutable std::mutex mu_;
  uint64_t size_ = 0;  // guarded by mu_
};

// Reads and replays STORE's journal; an absent journal replays as empty. A
// journal that is a symlink (or not a regular file) is refused.
Result<JournalState> ReadJournal(const std::string& store);

}  // namespace brickfs

#endif  // BRICKFS_STORE_JOURNAL_H_
