#include "mount/write_file.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace brickfs {
namespace {

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

Status TooLarge(const std::string& name, uint64_t end, uint64_t cap) {
  return Status::IOError(name + " would grow to " + std::to_string(end) + " bytes, past " +
                             std::to_string(cap) + ", the largest file it can be",
                         EFBIG);
}

}  // namespace

WriteFile::WriteFile(Kind kind, std::string name, MemoryCharger charger)
    : kind_(kind), charger_(std::move(charger)), name_(std::move(name)), mtime_ns_(NowNs()) {}

WriteFile::~WriteFile() {
  if (charged_) charger_(-static_cast<int64_t>(charged_)).IgnoreError();
}

Status WriteFile::ReserveLocked(uint64_t want, uint64_t cap) {
  if (want <= data_.capacity()) return Status::Ok();
  // Grow geometrically (few reallocations for sequential writers), never
  // past the cap.
  const uint64_t cap_now = data_.capacity();
  const uint64_t target = std::max(want, std::min<uint64_t>(cap, cap_now * 2));
  BRICKFS_RETURN_IF_ERROR(charger_(static_cast<int64_t>(target - charged_)));
  try {
    data_.reserve(target);
  } catch (const std::bad_alloc&) {
    charger_(-static_cast<int64_t>(target - charged_)).IgnoreError();
    return Status::NoSpace(name_ + ": out of memory for " + std::to_string(target) + " bytes");
  }
  charged_ = target;
  return Status::Ok();
}

Status WriteFile::Write(uint64_t off, const uint8_t* p, size_t n, uint64_t cap) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t end = off + n;
  if (end < off || end > cap) {
    oversized_ = true;
    return TooLarge(name_, end, cap);
  }
  BRICKFS_RETURN_IF_ERROR(ReserveLocked(end, cap));
  if (data_.size() < end) data_.resize(end);
  std::memcpy(data_.data() + off, p, n);
  written_.Insert(off, end);
  size_ = std::max(size_, end);
  dirty_ = true;
  mtime_ns_ = NowNs();
  return Status::Ok();
}

Status WriteFile::Truncate(uint64_t size, uint64_t cap) {
  std::lock_guard<std::mutex> lock(mu_);
  if (size > cap) {
    oversized_ = true;
    return TooLarge(name_, size, cap);
  }
  BRICKFS_RETURN_IF_ERROR(ReserveLocked(size, cap));
  if (data_.size() < size) data_.resize(size);
  if (size < size_) {
    // What a later extension brings back is a hole, not old bytes.
    std::memset(data_.data() + size, 0, size_ - size);
    written_.Erase(size, UINT64_MAX);
  }
  size_ = size;
  dirty_ = true;
  mtime_ns_ = NowNs();
  return Status::Ok();
}

Status WriteFile::Preload(std::vector<uint8_t> bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t n = bytes.size();
  BRICKFS_RETURN_IF_ERROR(charger_(static_cast<int64_t>(bytes.capacity()) -
                                   static_cast<int64_t>(charged_)));
  charged_ = bytes.capacity();
  data_ = std::move(bytes);
  size_ = n;
  written_.Clear();
  written_.Insert(0, n);
  return Status::Ok();
}

size_t WriteFile::Read(uint64_t off, uint8_t* out, size_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (off >= size_) return 0;
  const size_t k = static_cast<size_t>(std::min<uint64_t>(n, size_ - off));
  std::memcpy(out, data_.data() + off, k);
  return k;
}

std::string WriteFile::name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return name_;
}
void WriteFile::set_name(std::string name) {
  std::lock_guard<std::mutex> lock(mu_);
  name_ = std::move(name);
}
uint64_t WriteFile::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}
uint64_t WriteFile::charged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return charged_;
}
int64_t WriteFile::mtime_ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mtime_ns_;
}
void WriteFile::set_mtime_ns(int64_t t) {
  std::lock_guard<std::mutex> lock(mu_);
  mtime_ns_ = t;
}
mode_t WriteFile::mode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mode_;
}
void WriteFile::set_mode(mode_t m) {
  std::lock_guard<std::mutex> lock(mu_);
  mode_ = m;
}
bool WriteFile::dirty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dirty_;
}
void WriteFile::set_dirty(bool d) {
  std::lock_guard<std::mutex> lock(mu_);
  dirty_ = d;
}
bool WriteFile::oversized() const {
  std::lock_guard<std::mutex> lock(mu_);
  return oversized_;
}

// ---------------------------------------------------------------------------

std::shared_ptr<WriteFile> StagedFiles::Find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(name);
  return it == files_.end() ? nullptr : it->second;
}

void StagedFiles::Put(const std::string& name, std::shared_ptr<WriteFile> file) {
  std::lock_guard<std::mutex> lock(mu_);
  files_[name] = std::move(file);
}

std::shared_ptr<WriteFile> StagedFiles::Remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(name);
  if (it == files_.end()) return nullptr;
  auto f = std::move(it->second);
  files_.erase(it);
  return f;
}

bool StagedFiles::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(from);
  if (it == files_.end()) return false;
  auto f = std::move(it->second);
  files_.erase(it);
  f->set_name(to);
  files_[to] = std::move(f);
  return true;
}

std::vector<std::string> StagedFiles::Names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [n, f] : files_) out.push_back(n);
  return out;
}

std::vector<std::string> StagedFiles::DropAll() {
  std::map<std::string, std::shared_ptr<WriteFile>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone.swap(files_);
  }
  std::vector<std::string> out;
  for (const auto& [n, f] : gone) out.push_back(n);
  return out;
}

uint64_t StagedFiles::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return files_.size();
}

uint64_t StagedFiles::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& [name, f] : files_) n += f->charged();
  return n;
}

}  // namespace brickfs
