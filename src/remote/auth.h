// Credentials for a remote store, read from a file (-o auth_file=PATH) so
// that they never appear on a command line, in `ps`, or in the status.
//
// The file holds one line: "user:password" (HTTP basic authentication) or
// "bearer TOKEN" (an Authorization: Bearer header); a trailing newline is
// ignored. It must be a regular file owned by the effective user and not
// readable by group or others (like ssh's private keys).
//
// Thread-safety: values and pure functions.
#ifndef BRICKFS_REMOTE_AUTH_H_
#define BRICKFS_REMOTE_AUTH_H_

#include <string>

#include "brickfs/status.h"

namespace brickfs {

struct Credentials {
  enum class Kind { kNone, kBasic, kBearer };
  Kind kind = Kind::kNone;
  std::string user;      // kBasic
  std::string password;  // kBasic
  std::string token;     // kBearer
};

// Reads and checks `path` (see above). InvalidArgument naming the file and
// the reason: group/world readable (with its mode and the chmod that fixes
// it), not owned by the user, not a regular file, empty, more than one
// line, no ':' and no "bearer ", control characters, over 16 KiB.
// NotFound/IOError when it cannot be read.
Result<Credentials> ReadAuthFile(const std::string& path);

}  // namespace brickfs

#endif  // BRICKFS_REMOTE_AUTH_H_
