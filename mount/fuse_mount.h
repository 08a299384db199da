// Runs a brickfs mount: opens the store, mounts with libfuse (3.14 API),
// daemonizes unless foreground, serves requests until unmounted or signalled
// (SIGTERM/SIGINT/SIGHUP), then finalizes the store and returns.
//
// This is the only place, with fuse_ops.cc, that includes libfuse.
#ifndef BRICKFS_MOUNT_FUSE_MOUNT_H_
#define BRICKFS_MOUNT_FUSE_MOUNT_H_

#include <string>
#include <vector>

#include "brickfs/status.h"
#include "remote/remote_options.h"
#include "volume/volume.h"

namespace brickfs {

struct MountConfig {
  std::string store;       // absolute path of STORE, or the URL of a remote store
  std::string mountpoint;  // absolute path of MOUNT
  VolumeOptions volume;
  bool read_only = false;
  bool foreground = false;
  bool verbose = false;
  bool nonempty = false;               // allow mounting over a non-empty directory
  std::string log_file;                // empty: STORE/.brickfs/daemon.log (stderr with -f)
  std::vector<std::string> fuse_opts;  // passed through to libfuse (allow_other, ...)
  // A remote store (`store` is an http:// or https:// URL, IsRemoteUrl):
  // always mounted read-only, its bytes fetched by src/remote into a cache.
  RemoteOptions remote;
  bool remote_options = false;  // cache_dir=, cache_size=, offline or auth_file= given
  bool asked_rw = false;        // rw given (refused for a remote store)
};

// Parses a comma-separated -o string into `config`. Options brickfs knows:
// first_index=N, mem=SIZE, cache=SIZE, threads=N, block=Z,Y,X, brick=Z,Y,X,
// zstd_level=N, pyramid=0|1, nopyramid, downsample=mean|mode,
// voxel_size=Z:Y:X (or one number; commas also work, as in block=),
// unit=NAME (an OME-Zarr space unit), ro, rw, log=FILE, verbose,
// nonempty, nojournal, journal, and for a remote store cache_dir=DIR,
// cache_size=SIZE, offline, auth_file=FILE; fstab-only options (noauto,
// nofail, auto, user, users, nouser, _netdev, defaults, x-*) are ignored; the
// rest go to libfuse. InvalidArgument names a malformed option, and also
// refuses values no mount could use: mem= above PhysicalMemoryBytes() (slab
// buffers must fit in RAM), and block=/brick= (as given so far in `config`,
// with the defaults for what is not given) that Geometry::Validate refuses
// whatever the dtype of the first slice. Give all -o options in one call
// (the CLI joins them) so that block= and brick= are checked together.
Status ParseMountOptions(const std::string& opts, MountConfig* config);

// The machine's physical memory in bytes (0 if unknown).
uint64_t PhysicalMemoryBytes();

// Refuses (InvalidArgument, saying why) a store inside its own mount point
// or the mount point inside the store, and a log file or (remote store) a
// cache directory inside the mount point: the daemon would then wait on its own mount, for ever. Paths are
// compared with symlinks resolved as far as they exist (STORE and the log
// may not exist yet). Looks at the paths only: creates nothing.
Status CheckNotSelfMount(const MountConfig& config);

// Checks that precede mounting (mount point exists, is a directory, is not
// already a mount, is empty unless `nonempty`; /dev/fuse present). Messages
// say what to do.
Status CheckMountPoint(const std::string& mountpoint, bool nonempty = false);

// The -o string given to libfuse: fsname (the store, commas escaped),
// subtype, ro, the pass-through options; allow_other and allow_root always
// come with default_permissions, so that the kernel enforces the modes the
// mount shows (other users may read, only the owner may write).
std::string FuseOptionString(const MountConfig& config);

// Seconds between two finalize attempts while slices cannot be written.
inline constexpr int kFinalizeRetrySeconds = 5;

// Mounts and serves. Returns the process exit code: 0 after a clean
// finalize, 1 if finalize failed, 2 on a setup error (printed to stderr).
// A finalize that fails while slices exist only in memory (a full disk) is
// retried every kFinalizeRetrySeconds, with the error in
// STORE/.brickfs/finalize (store/finalize_state.h) for `brickfs umount`,
// until it succeeds: the daemon does not exit, and ignores SIGTERM, SIGINT
// and SIGHUP, until then (SIGKILL loses those slices).
int RunMount(const MountConfig& config);

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_FUSE_MOUNT_H_
