// libfuse start-up and shut-down shared by brickfs's own mount (fuse_mount.cc)
// and the read-only mount of a foreign store (foreign_fs.cc): the options
// string, fuse_new, fuse_mount, fuse_daemonize, the multi-threaded loop with
// signal handlers, fuse_unmount and fuse_destroy, in that order.
//
// Thread-safety: used by the thread that mounts (the loop's own threads
// call the file system's handlers, not this class).
#ifndef BRICKFS_MOUNT_FUSE_SESSION_H_
#define BRICKFS_MOUNT_FUSE_SESSION_H_

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse3/fuse.h>

#include <cerrno>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "common/log.h"
#include "mount/fuse_mount.h"

namespace brickfs {

// Runs one FUSE handler's body: a stray exception becomes -ENOMEM or -EIO
// and a log line naming the operation, never a dead daemon.
template <typename F>
int FuseGuard(const char* op, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    LogError(std::string(op) + ": out of memory");
    return -ENOMEM;
  } catch (const std::exception& e) {
    LogError(std::string(op) + ": unexpected exception: " + e.what());
    return -EIO;
  } catch (...) {
    LogError(std::string(op) + ": unexpected exception");
    return -EIO;
  }
}

class FuseSession {
 public:
  FuseSession() = default;
  ~FuseSession();  // unmounts and destroys whatever is still held
  FuseSession(const FuseSession&) = delete;
  FuseSession& operator=(const FuseSession&) = delete;

  // fuse_new with FuseOptionString(config) for `ops` serving `fs`, then
  // fuse_mount on config.mountpoint. False on failure, the reason printed
  // on stderr ("brickfs: ...").
  bool Mount(const MountConfig& config, const fuse_operations* ops, size_t ops_size, void* fs);
  // fuse_daemonize (the process stays in the foreground with `foreground`).
  // False on failure; the mount is then undone.
  bool Daemonize(bool foreground);
  // Serves with up to 16 threads until unmounted (or a signal), then
  // unmounts. Returns fuse_loop_mt's code.
  int Loop();
  // fuse_destroy and the libfuse arguments freed (the destructor does it
  // too; brickfs's own mount finalizes between Loop and Destroy).
  void Destroy();

 private:
  std::vector<std::string> argv_s_;
  std::vector<char*> argv_;
  fuse_args args_{};
  fuse* f_ = nullptr;
  bool mounted_ = false;
};

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_FUSE_SESSION_H_
