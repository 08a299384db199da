// Escaping of untrusted text: file names written to the mount (any bytes but
// '/' and NUL) and the messages that quote them, before they go into the
// status JSON or the daemon log. Thread-safe: pure functions.
#ifndef BRICKFS_COMMON_TEXT_H_
#define BRICKFS_COMMON_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace brickfs {

// Length (1-4) of the well-formed UTF-8 sequence that starts at s[i], or 0
// when the bytes there are not one (a stray continuation byte, a cut
// sequence, an overlong form, a UTF-16 surrogate, a code point past
// U+10FFFF). REQUIRES: i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// True when all of `s` is well-formed UTF-8.
bool IsValidUtf8(std::string_view s);

// `s` made safe to show on one line: every control character (C0, DEL and
// the C1 range U+0080..U+009F, which terminals obey) and every byte that is
// not part of well-formed UTF-8 is spelled out as \n, \r, \t or \xNN (one
// escape per byte); printable UTF-8, non-ASCII included, is kept as it is.
// Backslashes are kept, so escaping twice changes nothing: the log escapes
// every line and the status escapes names, and a name goes through both.
// The result is valid UTF-8 without control characters.
std::string EscapeUntrusted(std::string_view s);

}  // namespace brickfs

#endif  // BRICKFS_COMMON_TEXT_H_
