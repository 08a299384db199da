#include "volume/slab.h"

#include <sys/mman.h>

#include <algorithm>

namespace brickfs {

std::shared_ptr<uint8_t> SlabPool::TryGet() {
  uint8_t* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      p = free_.back();
      free_.pop_back();
    } else if (budget_->TryCharge(slab_bytes_, MemoryBudget::Kind::kSlab)) {
      ++allocated_;
    } else {
      return nullptr;
    }
    ++in_use_;
    peak_ = std::max(peak_, in_use_);
  }
  if (!p) {
    // Ask for huge pages: faulting in 4 KiB pages is what makes first use of
    // a buffer slow.
    void* m =
        ::mmap(nullptr, slab_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      std::lock_guard<std::mutex> lock(mu_);
      --allocated_;
      --in_use_;
      budget_->Release(slab_bytes_, MemoryBudget::Kind::kSlab);
      return nullptr;
    }
    ::madvise(m, slab_bytes_, MADV_HUGEPAGE);
    p = static_cast<uint8_t*>(m);
  }
  // No zeroing: a reused buffer is overwritten slice by slice; only slots
  // that never get a slice are zeroed, when the slab is flushed.
  return std::shared_ptr<uint8_t>(p, [this](uint8_t* q) { Release(q); });
}

uint64_t SlabPool::TrimFree() {
  std::vector<uint8_t*> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone.swap(free_);
    allocated_ -= gone.size();
  }
  for (uint8_t* p : gone) {
    ::munmap(p, slab_bytes_);
    budget_->Release(slab_bytes_, MemoryBudget::Kind::kSlab);
  }
  return gone.size() * slab_bytes_;
}

uint64_t SlabPool::in_use_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_ * slab_bytes_;
}

uint64_t SlabPool::allocated_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocated_ * slab_bytes_;
}

uint64_t SlabPool::peak_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_ * slab_bytes_;
}

void SlabPool::Release(uint8_t* p) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(p);
  --in_use_;
}

}  // namespace brickfs
