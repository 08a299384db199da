#include "store/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/file_util.h"

namespace brickfs {

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& store, uint64_t valid_bytes) {
  std::unique_ptr<Journal> j(new Journal());
  j->path_ = PathFor(store);
  BRICKFS_ASSIGN_OR_RETURN(j->fd_, OpenOwnedFile(j->path_, O_WRONLY | O_CREAT, 0644));
  if (::ftruncate(j->fd_, static_cast<off_t>(valid_bytes)) != 0 || ::fsync(j->fd_) != 0) {
    return Status::IOError("truncate journal " + j->path_, errno);
  }
  j->size_ = valid_bytes;
  return j;
}

Status Journal::Append(const std::string& frames, bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  BRICKFS_RETURN_IF_ERROR(PwriteAll(fd_, frames.data(), frames.size(), size_, path_));
  size_ += frames.size();
  if (sync && ::fdatasync(fd_) != 0) return Status::IOError("fsync journal " + path_, errno);
  return Status::Ok();
}

Status Journal::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  if (::ftruncate(fd_, 0) != 0 || ::fsync(fd_) != 0) {
    return Status::IOError("truncate journal " + path_, errno);
  }
  size_ = 0;
  return Status::Ok();
}

Status Journal::Restart(const std::string& frames) {
  std::lock_guard<std::mutex> lock(mu_);
  BRICKFS_RETURN_IF_ERROR(WriteFileAtomic(path_, frames));
  BRICKFS_ASSIGN_OR_RETURN(int fd, OpenOwnedFile(path_, O_WRONLY));
  ::close(fd_);
  fd_ = fd;
  size_ = frames.size();
  return Status::Ok();
}

uint64_t Journal::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

Result<JournalState> ReadJournal(const std::string& store) {
  auto bytes = ReadStoreFileToString(Journal::PathFor(store), uint64_t{1} << 32);
  if (!bytes.ok()) {
    if (bytes.status().code() == Status::Code::kNotFound) return JournalState{};
    return bytes.status();
  }
  return ReplayJournal(*bytes, Journal::PathFor(store));
}

}  // namespace brickfs
