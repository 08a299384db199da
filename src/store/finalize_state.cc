#include "store/finalize_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <optional>
#include <cstring>

#include "common/file_util.h"
#include "format/json.h"

namespace brickfs {

std::string FinalizeStateJson(const FinalizeState& s) {
  Json doc = Json::object();
  doc["pid"] = s.pid;
  doc["state"] = s.state;
  if (s.state != "mounted") {
    doc["error"] = s.error;
    doc["errno"] = s.err;
    const char* name = s.err ? ::strerrorname_np(s.err) : nullptr;
    doc["errno_name"] = name ? Json(name) : Json();
    doc["strerror"] = s.err ? Json(std::strerror(s.err)) : Json();
    doc["attempts"] = s.attempts;
    doc["retry_seconds"] = s.retry_seconds;
    doc["since"] = s.since;
  }
  return DumpJson(doc);
}

FinalizeStateFile::~FinalizeStateFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<FinalizeStateFile>> FinalizeStateFile::Create(
    const std::string& store, const FinalizeState& initial) {
  std::unique_ptr<FinalizeStateFile> f(new FinalizeStateFile());
  f->path_ = PathFor(store);
  BRICKFS_ASSIGN_OR_RETURN(f->fd_, OpenOwnedFile(f->path_, O_RDWR | O_CREAT | O_TRUNC, 0644));
  BRICKFS_RETURN_IF_ERROR(f->Write(initial));
  // Make the blocks real now, while there is space: later updates only
  // overwrite them.
  if (::fdatasync(f->fd_) != 0) return Status::IOError("fsync " + f->path_, errno);
  return f;
}

Status FinalizeStateFile::Write(const FinalizeState& state) {
  FinalizeState s = state;
  std::string text = FinalizeStateJson(s);
  if (text.size() + 1 > kSize) {
    s.error.resize(std::min<size_t>(s.error.size(), kSize / 2));
    s.error += " ...";
    text = FinalizeStateJson(s);
  }
  text.resize(kSize - 1, ' ');
  text += '\n';
  return PwriteAll(fd_, text.data(), text.size(), 0, path_);
}

Status FinalizeStateFile::Remove() {
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    return Status::IOError("remove " + path_, errno);
  }
  return Status::Ok();
}

std::optional<FinalizeState> ReadFinalizeState(const std::string& store) {
  auto text = ReadStoreFileToString(FinalizeStateFile::PathFor(store), 1 << 20);
  if (!text.ok()) return std::nullopt;
  auto doc = ParseJson(*text, FinalizeStateFile::PathFor(store));
  if (!doc.ok() || !doc->is_object()) return std::nullopt;
  FinalizeState s;
  // An integer field that fits T, or nullopt.
  auto integer = [&doc](const char* key, int64_t lo, int64_t hi) -> std::optional<int64_t> {
    const Json* v = JsonField(*doc, key);
    if (!v || !v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX)) {
      return std::nullopt;
    }
    const int64_t i = v->get<int64_t>();
    return i >= lo && i <= hi ? std::optional<int64_t>(i) : std::nullopt;
  };
  const auto pid = integer("pid", INT64_MIN, INT64_MAX);
  const Json* state = JsonField(*doc, "state");
  if (!pid || !state || !state->is_string()) return std::nullopt;
  s.pid = *pid;
  s.state = state->get<std::string>();
  if (const Json* e = JsonField(*doc, "error"); e && e->is_string()) s.error = e->get<std::string>();
  if (auto e = integer("errno", INT_MIN, INT_MAX)) s.err = static_cast<int>(*e);
  if (const Json* a = JsonField(*doc, "attempts"); a && JsonIsUint(*a)) s.attempts = a->get<uint64_t>();
  if (auto r = integer("retry_seconds", INT_MIN, INT_MAX)) s.retry_seconds = static_cast<int>(*r);
  if (auto t = integer("since", INT64_MIN, INT64_MAX)) s.since = *t;
  return s;
}

}  // namespace brickfs
