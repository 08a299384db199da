#include "brickfs/status.h"

#include <cstring>

namespace brickfs {

Status Status::IOError(std::string msg, int err) {
  msg += ": ";
  msg += std::strerror(err);
  return Status(Code::kIOError, std::move(msg), err);
}

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: name = "Invalid argument"; break;
    case Code::kCorruption: name = "Corruption"; break;
    case Code::kIOError: name = "I/O error"; break;
    case Code::kNotFound: name = "Not found"; break;
    case Code::kUnsupported: name = "Unsupported"; break;
    case Code::kBusy: name = "Busy"; break;
    case Code::kNoSpace: name = "No space"; break;
  }
  return std::string(name) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_, errno_);
}

}  // namespace brickfs
