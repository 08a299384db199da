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
#include "volume/volume.h"

namespace brickfs {

struct MountConfig {
  std::string store;       // absolute path of STORE
  std::string mountpoint;  // absolute path of MOUNT
  VolumeOptions volume;
  bool read_only = false;
  bool foreground = false;
  bool verbose = false;
  bool nonempty = false;               // allow mounting over a non-empty directory
  std::string log_file;                // empty: STORE/.brickfs/daemon.log (stderr with -f)
  std::vector<std::string> fuse_opts;  // passed through to libfuse (allow_other, ...)
};

// Parses a comma-separated -o string into `config`. Options brickfs knows:
// first_index=N, mem=SIZE, cache=SIZE, threads=N, block=Z,Y,X, brick=Z,Y,X,
// zstd_level=N, pyramid=0|1, nopyramid, downsample=mean|mode,
// voxel_size=Z:Y:X (or one number; commas also work, as in block=),
// unit=NAME (an OME-Zarr space unit), ro, rw, log=FILE, verbose,
// nonempty, nojournal, journal; fstab-only options (noauto,
// nofail, auto, user, users, nouser, _netdev, defaults, x-*) are ignored; the
// rest go to libfuse. InvalidArgument names a malformed option.
Status ParseMountOptions(const std::string& opts, MountConfig* config);

// Checks that precede mounting (mount point exists, is a directory, is not
// already a mount, is empty unless `nonempty`; /dev/fuse present). Messages
// say what to do.
Status CheckMountPoint(const std::string& mountpoint, bool nonempty = false);

// Mounts and serves. Returns the process exit code: 0 after a clean
// finalize, 1 if finalize failed, 2 on a setup error (printed to stderr).
int RunMount(const MountConfig& config);

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_FUSE_MOUNT_H_
