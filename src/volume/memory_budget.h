// The memory budget of a mount (-o mem=): one account for every byte the
// daemon holds on behalf of writers — slab buffers, the bytes of files being
// written (open handles and staged temporary files), and decode scratch.
//
// Slab buffers are charged when allocated and stay charged while the pool
// keeps them for reuse (freeing and re-faulting memory is slow, DESIGN §11);
// the pool gives idle buffers back when writers need the room.
// Writers' bytes ("file" charges) may never take the last `reserve` bytes,
// so that at least one slab always fits and ingest can make progress.
//
// Thread-safety: all methods are thread-safe (one mutex).
#ifndef BRICKFS_VOLUME_MEMORY_BUDGET_H_
#define BRICKFS_VOLUME_MEMORY_BUDGET_H_

#include <cstdint>
#include <mutex>

namespace brickfs {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit) : limit_(limit) {}

  enum class Kind { kSlab, kFile };

  // Charges n bytes when they fit (for kFile also: files' bytes stay below
  // limit - reserve). Returns false, charging nothing, when they do not.
  bool TryCharge(uint64_t n, Kind kind);
  void Release(uint64_t n, Kind kind);

  // Bytes files may never take: set to one slab once the geometry is known.
  void set_reserve(uint64_t reserve);

  uint64_t limit() const { return limit_; }
  uint64_t used() const;
  uint64_t peak() const;
  uint64_t used(Kind kind) const;

 private:
  const uint64_t limit_;
  mutable std::mutex mu_;
  uint64_t reserve_ = 0;  // guarded by mu_
  uint64_t slabs_ = 0;    // guarded by mu_
  uint64_t files_ = 0;    // guarded by mu_
  uint64_t peak_ = 0;     // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_MEMORY_BUDGET_H_
