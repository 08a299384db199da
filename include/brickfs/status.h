// Status and Result<T>: how every library function in brickfs reports failure.
//
// A Status is either OK or carries a Code and a message. Messages carry the
// numbers that explain the failure (path, brick, block, offset, expected vs
// found). Codes mean something:
//   kInvalidArgument  the user's input is wrong (a bad TIFF, a bad option)
//   kCorruption       bytes on disk fail validation (checksum, range, size)
//   kIOError          a system call failed; errno() holds its errno
//   kNotFound         a file or entry does not exist
//   kUnsupported      valid input that brickfs does not handle
//   kBusy             the resource is held by someone else (lock, mount)
//   kNoSpace          the memory budget or the disk is exhausted
//
// Statuses are translated to errno in mount/ and to exit codes in src/cli,
// nowhere else. Thread-safety: values; safe to copy between threads.
#ifndef BRICKFS_STATUS_H_
#define BRICKFS_STATUS_H_

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace brickfs {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,
    kCorruption,
    kIOError,
    kNotFound,
    kUnsupported,
    kBusy,
    kNoSpace,
  };

  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status Corruption(std::string msg) {
    return Status(Code::kCorruption, std::move(msg));
  }
  // `err` is the errno of the failed call; the message gets strerror appended.
  static Status IOError(std::string msg, int err);
  static Status NotFound(std::string msg) {
    return Status(Code::kNotFound, std::move(msg));
  }
  static Status Unsupported(std::string msg) {
    return Status(Code::kUnsupported, std::move(msg));
  }
  static Status Busy(std::string msg) {
    return Status(Code::kBusy, std::move(msg));
  }
  static Status NoSpace(std::string msg) {
    return Status(Code::kNoSpace, std::move(msg));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int err() const { return errno_; }
  const std::string& message() const { return message_; }
  // "Corruption: brick 0/1/2 block 7: crc32c mismatch" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message".
  Status WithContext(const std::string& context) const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  Status(Code code, std::string msg, int err = 0)
      : code_(code), errno_(err), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string message_;
};

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace brickfs

// Returns early from the enclosing function if `expr` (a Status) is not OK.
#define BRICKFS_RETURN_IF_ERROR(expr)              \
  do {                                             \
    ::brickfs::Status brickfs_status_ = (expr);    \
    if (!brickfs_status_.ok()) return brickfs_status_; \
  } while (0)

#define BRICKFS_CONCAT_INNER_(a, b) a##b
#define BRICKFS_CONCAT_(a, b) BRICKFS_CONCAT_INNER_(a, b)

// `lhs = value of expr` or return its Status. expr yields a Result<T>.
#define BRICKFS_ASSIGN_OR_RETURN(lhs, expr) \
  BRICKFS_ASSIGN_OR_RETURN_IMPL_(BRICKFS_CONCAT_(brickfs_result_, __LINE__), lhs, expr)
#define BRICKFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(tmp).value()

#endif  // BRICKFS_STATUS_H_
