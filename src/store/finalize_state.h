// STORE/.brickfs/finalize: how the daemon of a store is doing with its
// finalize, for `brickfs umount` to show (the mount is gone by then, so the
// status page cannot say it).
//
// A daemon creates the file when it mounts and removes it once the store is
// final. While a finalize fails (a full disk: the slabs stay in memory and
// it is retried every few seconds) the file holds the error. The file is a
// JSON object padded with spaces to kSize bytes; it is written once at mount
// time and then overwritten in place, never extended, so that an update
// needs no free space on a full disk. A reader may see a torn update: it
// then fails to parse and the reader tries again later.
//
// Format (one object): {"pid": N, "state": "mounted" | "retrying" |
// "failed", "error": "...", "errno": 28, "errno_name": "ENOSPC",
// "strerror": "No space left on device", "attempts": N, "retry_seconds": 5,
// "since": UNIX_SECONDS}; the error fields only when state != "mounted".
//
// Thread-safety: a FinalizeStateFile is used by one thread; readers are
// other processes.
#ifndef BRICKFS_STORE_FINALIZE_STATE_H_
#define BRICKFS_STORE_FINALIZE_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "brickfs/status.h"

namespace brickfs {

struct FinalizeState {
  int64_t pid = 0;
  std::string state = "mounted";  // "mounted", "retrying" or "failed"
  std::string error;              // the finalize error's message
  int err = 0;                    // its errno (0: none)
  uint64_t attempts = 0;          // finalizes tried so far
  int retry_seconds = 0;          // pause between attempts
  int64_t since = 0;              // unix time of the first failure
};

class FinalizeStateFile {
 public:
  static constexpr size_t kSize = 4096;

  static std::string PathFor(const std::string& store) { return store + "/.brickfs/finalize"; }

  ~FinalizeStateFile();
  FinalizeStateFile(const FinalizeStateFile&) = delete;
  FinalizeStateFile& operator=(const FinalizeStateFile&) = delete;

  // Creates (or takes over) STORE/.brickfs/finalize with OpenOwnedFile and
  // writes `initial` into it, kSize bytes. Errors: those of OpenOwnedFile,
  // IOError (no space for even 4 KiB, ...).
  static Result<std::unique_ptr<FinalizeStateFile>> Create(const std::string& store,
                                                           const FinalizeState& initial);

  // Overwrites the file in place (an error longer than fits is shortened).
  Status Write(const FinalizeState& state);
  // Removes the file (after a finalize that succeeded).
  Status Remove();

 private:
  FinalizeStateFile() = default;
  std::string path_;
  int fd_ = -1;
};

// The state in STORE/.brickfs/finalize; nullopt when there is none or it
// cannot be read or parsed right now (a torn update: ask again).
std::optional<FinalizeState> ReadFinalizeState(const std::string& store);

// The JSON text of `state` (unpadded).
std::string FinalizeStateJson(const FinalizeState& state);

}  // namespace brickfs

#endif  // BRICKFS_STORE_FINALIZE_STATE_H_
