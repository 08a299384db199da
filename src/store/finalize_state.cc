#include "store/finalize_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_util.h"
#include "format/json.h"

namespace brickfs {

std::string FinalizeStateJson(const FinalizeState& s) {
  Json doc = Json::MakeObject();
  doc.Set("pid", s.pid);
  doc.Set("state", s.state);
  if (s.state != "mounted") {
    doc.Set("error", s.error);
    doc.Set("errno", s.err);
    const char* name = s.err ? ::strerrorname_np(s.err) : nullptr;
    doc.Set("errno_name", name ? Json(name) : Json());
    doc.Set("strerror", s.err ? Json(std::strerror(s.err)) : Json());
    doc.Set("attempts", s.attempts);
    doc.Set("retry_seconds", s.retry_seconds);
    doc.Set("since", s.since);
  }
  return doc.Dump();
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
  auto doc = Json::Parse(*text);
  if (!doc.ok() || !doc->is_object()) return std::nullopt;
  FinalizeState s;
  const Json* pid = doc->Get("pid");
  const Json* state = doc->Get("state");
  if (!pid || !pid->is_number() || !state || !state->is_string()) return std::nullopt;
  s.pid = pid->as_int();
  s.state = state->as_string();
  if (const Json* e = doc->Get("error"); e && e->is_string()) s.error = e->as_string();
  if (const Json* e = doc->Get("errno"); e && e->is_number()) s.err = static_cast<int>(e->as_int());
  if (const Json* a = doc->Get("attempts"); a && a->is_uint()) s.attempts = a->as_uint();
  if (const Json* r = doc->Get("retry_seconds"); r && r->is_number()) {
    s.retry_seconds = static_cast<int>(r->as_int());
  }
  if (const Json* t = doc->Get("since"); t && t->is_number()) s.since = t->as_int();
  return s;
}

}  // namespace brickfs
