#include "remote/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/file_util.h"
#include "common/scope_guard.h"

namespace brickfs {

namespace {

constexpr size_t kMaxAuthFileBytes = 16 << 10;

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

Result<Credentials> ReadAuthFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("auth file " + path + ": does not exist");
    if (err == ELOOP) return Status::InvalidArgument("auth file " + path + ": is a symlink");
    return Status::IOError("auth file " + path + ": cannot open", err);
  }
  ScopeGuard close_fd([fd] { ::close(fd); });
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError("auth file " + path + ": fstat", errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("auth file " + path + ": is not a regular file");
  }
  if (st.st_uid != ::geteuid()) {
    return Status::InvalidArgument("auth file " + path + ": is owned by uid " +
                                   std::to_string(st.st_uid) + ", not by the user (uid " +
                                   std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::InvalidArgument("auth file " + path + ": is accessible by group or others (mode " +
                                   OctalMode(st.st_mode) + "); run `chmod 600 " + path + "`");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxAuthFileBytes) {
    return Status::InvalidArgument("auth file " + path + ": is " + std::to_string(st.st_size) +
                                   " bytes, more than the " + std::to_string(kMaxAuthFileBytes) +
                                   " a credential needs");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  BRICKFS_RETURN_IF_ERROR(PreadAll(fd, text.data(), text.size(), 0, "auth file " + path));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return Status::InvalidArgument("auth file " + path + ": is empty");
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      return Status::InvalidArgument("auth file " + path +
                                     ": holds more than one line (expected \"user:password\" or "
                                     "\"bearer TOKEN\")");
    }
    if (u < 0x20 || u == 0x7f) {
      return Status::InvalidArgument("auth file " + path + ": holds a control character");
    }
  }
  Credentials c;
  if (text.size() > 7 && (text.compare(0, 7, "bearer ") == 0 || text.compare(0, 7, "Bearer ") == 0)) {
    c.kind = Credentials::Kind::kBearer;
    c.token = text.substr(7);
    while (!c.token.empty() && c.token.front() == ' ') c.token.erase(0, 1);
    if (c.token.empty() || c.token.find(' ') != std::string::npos) {
      return Status::InvalidArgument("auth file " + path +
                                     ": \"bearer\" must be followed by one token");
    }
    return c;
  }
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("auth file " + path +
                                   ": expected \"user:password\" or \"bearer TOKEN\"");
  }
  c.kind = Credentials::Kind::kBasic;
  c.user = text.substr(0, colon);
  c.password = text.substr(colon + 1);
  return c;
}

}  // namespace brickfs
