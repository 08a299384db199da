#include "volume/memory_budget.h"

#include <algorithm>

namespace brickfs {

bool MemoryBudget::TryCharge(uint64_t n, Kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t used = slabs_ + files_;
  if (n > limit_ - std::min(limit_, used)) return false;
  if (kind == Kind::kFile) {
    const uint64_t room = limit_ - std::min(limit_, reserve_);
    if (n > room - std::min(room, files_)) return false;
    files_ += n;
  } else {
    slabs_ += n;
  }
  peak_ = std::max(peak_, slabs_ + files_);
  return true;
}

void MemoryBudget::Release(uint64_t n, Kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t& v = kind == Kind::kFile ? files_ : slabs_;
  v -= std::min(v, n);
}

void MemoryBudget::set_reserve(uint64_t reserve) {
  std::lock_guard<std::mutex> lock(mu_);
  reserve_ = reserve;
}

uint64_t MemoryBudget::used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slabs_ + files_;
}

uint64_t MemoryBudget::peak() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

uint64_t MemoryBudget::used(Kind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  return kind == Kind::kFile ? files_ : slabs_;
}

}  // namespace brickfs
