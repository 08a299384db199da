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

std::pair<uint8_t*, uint64_t> BufferPool::Take(uint64_t want) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < spares_.size(); ++i) {
    if (spares_[i].second >= want) {
      auto b = spares_[i];
      spares_.erase(spares_.begin() + static_cast<long>(i));
      return b;
    }
  }
  return {nullptr, 0};
}

void BufferPool::Give(uint8_t* data, uint64_t capacity) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (spares_.size() < max_buffers_ && capacity <= max_bytes_) {
      spares_.emplace_back(data, capacity);
      return;
    }
  }
  std::free(data);
  charger_(-static_cast<int64_t>(capacity)).IgnoreError();
}

uint64_t BufferPool::Trim() {
  std::vector<std::pair<uint8_t*, uint64_t>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone.swap(spares_);
  }
  uint64_t n = 0;
  for (auto [p, c] : gone) {
    std::free(p);
    charger_(-static_cast<int64_t>(c)).IgnoreError();
    n += c;
  }
  return n;
}

WriteFile::WriteFile(Kind kind, std::string name, MemoryCharger charger,
                     std::shared_ptr<BufferPool> pool)
    : charger_(std::move(charger)),
      pool_(std::move(pool)),
      kind_(kind),
      name_(std::move(name)),
      mtime_ns_(NowNs()) {}

WriteFile::~WriteFile() {
  if (!capacity_) return;
  if (pool_) {
    pool_->Give(data_.release(), capacity_);  // its charge goes with it
  } else {
    charger_(-static_cast<int64_t>(capacity_)).IgnoreError();
  }
}

Status WriteFile::ReserveLocked(uint64_t want, uint64_t cap) {
  if (want <= capacity_) return Status::Ok();
  if (!data_ && pool_) {
    auto [p, c] = pool_->Take(want);
    if (p) {
      data_.reset(p);
      capacity_ = c;
      return Status::Ok();
    }
  }
  // Grow geometrically (few reallocations for sequential writers), never
  // past the cap; when the budget refuses the doubled size, try exactly
  // what is needed.
  uint64_t target = std::max(want, std::min<uint64_t>(cap, capacity_ * 2));
  Status charged = charger_(static_cast<int64_t>(target - capacity_));
  if (!charged.ok() && target > want) {
    target = want;
    charged = charger_(static_cast<int64_t>(target - capacity_));
  }
  BRICKFS_RETURN_IF_ERROR(charged);
  // realloc, not a vector: no zero-fill of bytes about to be overwritten.
  void* p = std::realloc(data_.get(), target);
  if (!p) {
    charger_(-static_cast<int64_t>(target - capacity_)).IgnoreError();
    return Status::NoSpace(name_ + ": out of memory for " + std::to_string(target) + " bytes");
  }
  (void)data_.release();
  data_.reset(static_cast<uint8_t*>(p));
  capacity_ = target;
  return Status::Ok();
}

Status WriteFile::MaterializeLocked() {
  if (!lazy_fill_) return Status::Ok();
  const uint64_t n = lazy_size_;
  PreloadFn fill = std::move(lazy_fill_);
  lazy_fill_ = nullptr;
  lazy_size_ = 0;
  BRICKFS_RETURN_IF_ERROR(ReserveLocked(n, n));
  Status s = fill(data_.get(), n);
  if (!s.ok()) return s.WithContext(name_ + ": reading what it holds now");
  size_ = n;
  preloaded_.Insert(0, n);
  return Status::Ok();
}

void WriteFile::SetPreload(uint64_t size, PreloadFn fill) {
  std::lock_guard<std::mutex> lock(mu_);
  lazy_size_ = size;
  lazy_fill_ = std::move(fill);
}

Status WriteFile::Write(uint64_t off, const uint8_t* p, size_t n, uint64_t cap) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t end = off + n;
  if (end < off || end > cap) {
    oversized_ = true;
    return TooLarge(name_, end, cap);
  }
  BRICKFS_RETURN_IF_ERROR(MaterializeLocked());
  if (Status s = ReserveLocked(end, cap); !s.ok()) {
    write_failed_ = true;
    return s;
  }
  if (off > size_) std::memset(data_.get() + size_, 0, off - size_);  // a hole reads as 0
  std::memcpy(data_.get() + off, p, n);
  written_.Insert(off, end);
  preloaded_.Erase(off, end);
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
  if (size == 0) {  // O_TRUNC: no need to fetch what is dropped anyway
    lazy_fill_ = nullptr;
    lazy_size_ = 0;
  }
  BRICKFS_RETURN_IF_ERROR(MaterializeLocked());
  BRICKFS_RETURN_IF_ERROR(ReserveLocked(size, cap));
  if (size > size_) std::memset(data_.get() + size_, 0, size - size_);
  written_.Erase(size, UINT64_MAX);
  preloaded_.Erase(size, UINT64_MAX);
  size_ = size;
  dirty_ = true;
  mtime_ns_ = NowNs();
  return Status::Ok();
}

Result<size_t> WriteFile::Read(uint64_t off, uint8_t* out, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  BRICKFS_RETURN_IF_ERROR(MaterializeLocked());
  if (off >= size_) return size_t{0};
  const size_t k = static_cast<size_t>(std::min<uint64_t>(n, size_ - off));
  std::memcpy(out, data_.get() + off, k);
  return k;
}

Status WriteFile::WithContent(const std::function<Status(const Content&)>& f) {
  std::lock_guard<std::mutex> lock(mu_);
  BRICKFS_RETURN_IF_ERROR(MaterializeLocked());
  return f(Content{data_.get(), size_, written_, preloaded_});
}

WriteFile::Kind WriteFile::kind() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kind_;
}
void WriteFile::BecomeSlice(std::string name, uint64_t z) {
  std::lock_guard<std::mutex> lock(mu_);
  kind_ = Kind::kSlice;
  name_ = std::move(name);
  z_ = z;
}
void WriteFile::BecomeStaged(std::string name) {
  std::lock_guard<std::mutex> lock(mu_);
  kind_ = Kind::kStaged;
  name_ = std::move(name);
}
std::string WriteFile::name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return name_;
}
void WriteFile::set_name(std::string name) {
  std::lock_guard<std::mutex> lock(mu_);
  name_ = std::move(name);
}
uint64_t WriteFile::z() const {
  std::lock_guard<std::mutex> lock(mu_);
  return z_;
}
uint64_t WriteFile::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lazy_fill_ ? lazy_size_ : size_;
}
uint64_t WriteFile::charged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return capacity_;
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
bool WriteFile::write_failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_failed_;
}
bool WriteFile::fsynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fsynced_;
}
void WriteFile::set_fsynced() {
  std::lock_guard<std::mutex> lock(mu_);
  fsynced_ = true;
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

std::vector<std::string> StagedFiles::Names(const std::string& after, size_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (auto it = after.empty() ? files_.begin() : files_.upper_bound(after);
       it != files_.end() && out.size() < n; ++it) {
    out.push_back(it->first);
  }
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
