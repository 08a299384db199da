// Small POSIX file helpers returning Status. Paths appear in every message.
// Thread-safe (no shared state).
#ifndef BRICKFS_COMMON_FILE_UTIL_H_
#define BRICKFS_COMMON_FILE_UTIL_H_

#include <cstdint>
#include <string>

#include "brickfs/status.h"

namespace brickfs {

// Reads the whole file. NotFound if absent, IOError otherwise; refuses files
// over `max_bytes` (InvalidArgument).
Result<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes = 64u << 20);

// Writes `data` to path.tmp, fsyncs it, renames over `path`, fsyncs the
// directory: after return the new content is durable and readers see either
// the old or the new file, never a mix.
Status WriteFileAtomic(const std::string& path, const std::string& data);

// fsync of a directory (makes renames and creations in it durable).
Status SyncDir(const std::string& dir);

// Full pwrite/pread loops (retrying short transfers and EINTR).
Status PwriteAll(int fd, const void* buf, size_t n, uint64_t offset, const std::string& path);
// Reads exactly n bytes; Corruption if the file ends first.
Status PreadAll(int fd, void* buf, size_t n, uint64_t offset, const std::string& path);

// mkdir -p; OK if it exists as a directory.
Status MakeDirs(const std::string& path);

}  // namespace brickfs

#endif  // BRICKFS_COMMON_FILE_UTIL_H_
