// Small POSIX file helpers returning Status. Paths appear in every message.
//
// The safe opens (OpenOwnedFile, OpenStoreFile, OpenFileBeneath, ...) are the
// one place that decides how brickfs opens a file in a store: the store may
// belong to another user, who can replace any file or directory in it by a
// symlink, a hard link or a FIFO between two mounts (or while one runs). They
// never follow a symlink, never truncate before checking what they opened,
// never block on a FIFO, and refuse what they should not touch with an
// InvalidArgument naming the path and the reason.
//
// Thread-safe (no shared state).
#ifndef BRICKFS_COMMON_FILE_UTIL_H_
#define BRICKFS_COMMON_FILE_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "brickfs/status.h"

namespace brickfs {

// Reads the whole file. NotFound if absent, IOError otherwise; refuses files
// over `max_bytes` (InvalidArgument).
Result<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes = 64u << 20);
// The same, opening `path` as OpenStoreFile does (no symlink, no FIFO).
Result<std::string> ReadStoreFileToString(const std::string& path,
                                          uint64_t max_bytes = 64u << 20);

// Writes `data` to path.tmp, fsyncs it, renames over `path`, fsyncs the
// directory: after return the new content is durable and readers see either
// the old or the new file, never a mix. A path.tmp left behind (or planted:
// a symlink, a hard link) is removed and created afresh (O_EXCL), and the
// directory of `path` must not be a symlink (InvalidArgument).
Status WriteFileAtomic(const std::string& path, const std::string& data);

// fsync of a directory (makes renames and creations in it durable).
Status SyncDir(const std::string& dir);

// Full pwrite/pread loops (retrying short transfers and EINTR).
Status PwriteAll(int fd, const void* buf, size_t n, uint64_t offset, const std::string& path);
// Reads exactly n bytes; Corruption if the file ends first.
Status PreadAll(int fd, void* buf, size_t n, uint64_t offset, const std::string& path);

// mkdir -p; OK if it exists as a directory.
Status MakeDirs(const std::string& path);

// Opens a file of brickfs's private state (STORE/.brickfs/: lock, journal,
// daemon.log, spool files, the finalize state) with O_NOFOLLOW | O_CLOEXEC.
// Refused (InvalidArgument, naming `path`): a symlink (also as the last
// directory of `path`), anything but a regular file (a FIFO is opened
// without blocking and refused), a file not owned by the effective user,
// a file with more than one hard link. O_TRUNC is applied (ftruncate) only
// after those checks, so a refused file is never changed. A missing file
// without O_CREAT: IOError with errno ENOENT. Returns the descriptor, owned
// by the caller.
Result<int> OpenOwnedFile(const std::string& path, int flags, mode_t mode = 0600);

// As OpenOwnedFile, for a file of a store that may belong to someone else
// (the lock of a read-only mount, the journal read by `info`): any owner is
// fine; a hard-linked file is refused only when opened for writing.
Result<int> OpenStoreFile(const std::string& path, int flags, mode_t mode = 0644);

// Opens root/rel (rel relative, '/'-separated) walking one directory at a
// time with O_NOFOLLOW | O_DIRECTORY, so that neither `root` nor anything
// below it may be a symlink; the file is opened as OpenStoreFile does. Used
// for shard files: a brick or a directory of the array replaced by a link to
// elsewhere is refused (InvalidArgument), never written through.
Result<int> OpenFileBeneath(const std::string& root, const std::string& rel, int flags,
                            mode_t mode = 0644);

// The directory root/rel ("" for root itself), opened the same way; for
// openat/renameat/unlinkat of files in it. Returns the descriptor.
Result<int> OpenDirBeneath(const std::string& root, const std::string& rel);

// Opens `name` (one component) in the directory `dir_fd` as OpenStoreFile
// does; `path` is its full name for messages.
Result<int> OpenFileAt(int dir_fd, const std::string& name, const std::string& path, int flags,
                       mode_t mode = 0644);

// mkdir -p of root/rel without following symlinks: `root` must exist, and
// it and every directory below it must be a real directory (InvalidArgument
// names the first that is a symlink or not a directory).
Status MakeDirsBeneath(const std::string& root, const std::string& rel);

// OK when `path` (lstat) is a directory, not a symlink, owned by the
// effective user: a directory where brickfs keeps its private state.
// InvalidArgument otherwise (IOError when it cannot be examined).
Status CheckOwnedDir(const std::string& path);

}  // namespace brickfs

#endif  // BRICKFS_COMMON_FILE_UTIL_H_
