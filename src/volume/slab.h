// Slab memory: the buffers that collect the slices of one block row in z
// (a slab) until it is compressed and written, and the state of each slab.
//
// SlabPool hands out buffers of one slab's bytes, charged to the mem=
// budget (MemoryBudget::Kind::kSlab). Buffers are mapped once, touched, and
// reused: memory returned to the kernel and touched again is several times
// slower than reuse (DESIGN.md §11). A buffer goes back to the pool when its
// last shared_ptr is dropped; TrimFree gives idle ones back to the kernel.
//
// Slab is the engine's record of one slab in memory: which slots (slices)
// hold data, whether its buffer or a spool file holds them, and its flush
// state. Its fields are guarded by Volume::mu_ except those marked for the
// flush tasks.
//
// Thread-safety: SlabPool is thread-safe. Slab is not (see above).
#ifndef BRICKFS_VOLUME_SLAB_H_
#define BRICKFS_VOLUME_SLAB_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "volume/memory_budget.h"

namespace brickfs {

class SlabPool {
 public:
  SlabPool(uint64_t slab_bytes, MemoryBudget* budget) : slab_bytes_(slab_bytes), budget_(budget) {}
  ~SlabPool() { TrimFree(); }
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // A buffer of slab_bytes (its content undefined: the slab tracks which
  // slots hold data, Slab::valid), or null when the budget has no room or
  // the kernel gives no memory. REQUIRES: the pool outlives the buffer.
  std::shared_ptr<uint8_t> TryGet();

  // Gives every idle buffer back (to the kernel and the budget); returns bytes.
  uint64_t TrimFree();

  uint64_t slab_bytes() const { return slab_bytes_; }
  uint64_t in_use_bytes() const;
  uint64_t allocated_bytes() const;
  uint64_t peak_bytes() const;

 private:
  void Release(uint8_t* p);

  const uint64_t slab_bytes_;
  MemoryBudget* const budget_;
  mutable std::mutex mu_;
  std::vector<uint8_t*> free_;  // guarded by mu_
  uint64_t allocated_ = 0;      // guarded by mu_
  uint64_t in_use_ = 0;         // guarded by mu_
  uint64_t peak_ = 0;           // guarded by mu_
};

struct Slab {
  enum class State {
    kLoading,   // being set up (loading stored or spooled slices)
    kFilling,   // buf valid, accepting slices
    kSpooled,   // buf null, data in the spool file
    kFlushing,  // buf valid and read only, blocks being compressed/appended
    kCommitted, // in the store; no longer in the slab table
  };
  explicit Slab(uint64_t i, uint64_t slots)
      : index(i), present(slots), valid(slots), renewed(slots), synced(slots) {}

  const uint64_t index;
  State state = State::kLoading;      // all fields guarded by Volume::mu_ ...
  std::shared_ptr<uint8_t> buf;
  std::vector<uint8_t> present;       // per slot: slice received
  std::vector<uint8_t> valid;         // per slot: its bytes in buf are defined (data or zeros)
  uint64_t count = 0;                 // present slots
  uint64_t pins = 0;                  // writers decoding into buf
  uint64_t last_touch = 0;
  bool spool_valid = false;           // the spool file holds the data
  bool dirty = false;                 // holds a slice the store does not have
  bool retry = false;                 // its last flush failed; RetryLoop retries it
  // A slab loaded from the store to take rewritten slices: it flushes when
  // every slot was re-sent, or kBurstIdle after the last one (RetryLoop).
  bool reloaded = false;
  std::vector<uint8_t> renewed;       // per slot: re-sent since the reload
  uint64_t renewed_count = 0;
  std::chrono::steady_clock::time_point last_write{};
  std::vector<uint8_t> synced;        // per slot: its current version is in the sync log
  // ... except these, used by flush tasks:
  std::atomic<uint64_t> pending_bricks{0};
  std::mutex err_mu;
  Status flush_error;  // guarded by err_mu
  std::vector<std::pair<Shape3, uint64_t>> appended;  // brick, new length; guarded by err_mu
  // The slab downsampled for pyramid level 1 (planes of `down_from` level-0
  // slices), each flush task filling its brick column's part.
  std::vector<uint8_t> down;
  uint64_t down_from = 0;
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_SLAB_H_
