#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/file_util.h"
#include "common/text.h"

namespace brickfs {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarning)};
std::atomic<int> g_fd{2};
}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

Status SetLogFile(const std::string& path) {
  if (path.empty()) {
    g_fd = 2;
    return Status::Ok();
  }
  BRICKFS_ASSIGN_OR_RETURN(int fd, OpenOwnedFile(path, O_WRONLY | O_CREAT | O_APPEND, 0644));
  g_fd = fd;
  return Status::Ok();
}

namespace {
void WriteLine(LogLevel level, const std::string& message) {
  static const char* kNames[] = {"E", "W", "I", "D"};
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm;
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  std::string line = std::string(stamp) + " brickfs[" + std::to_string(::getpid()) + "] " +
                     kNames[static_cast<int>(level)] + " " + EscapeUntrusted(message) + "\n";
  ssize_t rc = ::write(g_fd.load(), line.data(), line.size());
  (void)rc;
}
}  // namespace

void Log(LogLevel level, const std::string& message) {
  if (static_cast<int>(level) > g_level.load()) return;
  WriteLine(level, message);
}

void LogAlways(const std::string& message) { WriteLine(LogLevel::kInfo, message); }

}  // namespace brickfs
