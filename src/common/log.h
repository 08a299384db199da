// Minimal leveled logging to stderr or a file (the daemon's -o log=FILE).
//
// One event is one line: messages are passed through EscapeUntrusted
// (common/text.h), so a name written to the mount that holds a newline, an
// escape sequence or bytes that are not UTF-8 can neither forge a line nor
// leave the log undecodable.
//
// Thread-safe: each line is written with one write(2).
#ifndef BRICKFS_COMMON_LOG_H_
#define BRICKFS_COMMON_LOG_H_

#include <string>

#include "brickfs/status.h"

namespace brickfs {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

void SetLogLevel(LogLevel level);
// Appends to `path` from now on (empty: stderr). The file is opened with
// OpenOwnedFile (common/file_util.h): a symlink, a hard link, a FIFO or a
// file of another user is refused (the log stays where it was) with a
// message naming it.
Status SetLogFile(const std::string& path);
void Log(LogLevel level, const std::string& message);
// Written whatever the level: lifecycle lines (mounted, finalized + totals).
void LogAlways(const std::string& message);

inline void LogError(const std::string& m) { Log(LogLevel::kError, m); }
inline void LogWarning(const std::string& m) { Log(LogLevel::kWarning, m); }
inline void LogInfo(const std::string& m) { Log(LogLevel::kInfo, m); }

}  // namespace brickfs

#endif  // BRICKFS_COMMON_LOG_H_
