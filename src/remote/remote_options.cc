#include "remote/remote_options.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace brickfs {

namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Length of "http://" or "https://" at the start of `url`, 0 if neither.
size_t SchemeLength(std::string_view url) {
  if (StartsWithNoCase(url, "http://")) return 7;
  if (StartsWithNoCase(url, "https://")) return 8;
  return 0;
}

}  // namespace

Result<std::string> DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/brickfs";
  const char* home = std::getenv("HOME");
  std::string dir = (home != nullptr && home[0] == '/') ? home : "";
  if (dir.empty()) {
    struct passwd pw;
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
        found->pw_dir != nullptr && found->pw_dir[0] == '/') {
      dir = found->pw_dir;
    }
  }
  if (dir.empty()) {
    return Status::InvalidArgument(
        "no cache directory: neither XDG_CACHE_HOME nor HOME is set to an absolute path and the "
        "user has no home directory; give -o cache_dir=DIR");
  }
  return dir + "/.cache/brickfs";
}

bool IsRemoteUrl(std::string_view source) { return SchemeLength(source) != 0; }

Result<std::string> NormalizeStoreUrl(std::string_view url) {
  const std::string shown = RedactUrl(url);
  const size_t scheme = SchemeLength(url);
  if (scheme == 0) {
    return Status::InvalidArgument("store URL " + shown + ": only http:// and https:// are supported");
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return Status::InvalidArgument("store URL " + shown +
                                     ": holds a space or a control character (percent-encode it)");
    }
  }
  if (url.find_first_of("?#") != std::string_view::npos) {
    return Status::InvalidArgument("store URL " + shown +
                                   ": a query or fragment is not supported (the store's objects "
                                   "are named by paths below the URL)");
  }
  const size_t host_end = url.find('/', scheme);
  const std::string_view authority =
      url.substr(scheme, host_end == std::string_view::npos ? std::string_view::npos
                                                            : host_end - scheme);
  if (authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument("store URL " + shown +
                                   ": credentials in the URL are refused (they would show in the "
                                   "process list and the status); put them in a file given by "
                                   "-o auth_file=FILE");
  }
  if (authority.empty() || authority[0] == ':') {
    return Status::InvalidArgument("store URL " + shown + ": no host");
  }
  std::string out(url);
  // The scheme in lower case: cache keys must not depend on how it was typed.
  for (size_t i = 0; i < scheme; ++i) {
    if (out[i] >= 'A' && out[i] <= 'Z') out[i] = static_cast<char>(out[i] - 'A' + 'a');
  }
  while (out.size() > scheme && out.back() == '/') out.pop_back();
  if (out.size() <= scheme) return Status::InvalidArgument("store URL " + shown + ": no host");
  return out;
}

std::string RedactUrl(std::string_view url) {
  const size_t scheme = SchemeLength(url);
  if (scheme == 0) return std::string(url);
  const size_t host_end = url.find('/', scheme);
  const size_t at = url.substr(0, host_end).rfind('@');
  if (at == std::string_view::npos || at < scheme) return std::string(url);
  return std::string(url.substr(0, scheme)) + "***@" + std::string(url.substr(at + 1));
}

}  // namespace brickfs
