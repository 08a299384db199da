// Runs a callable when the scope ends, unless dismissed.
#ifndef BRICKFS_COMMON_SCOPE_GUARD_H_
#define BRICKFS_COMMON_SCOPE_GUARD_H_

#include <utility>

namespace brickfs {

template <typename F>
class ScopeGuard {
 public:
  explicit ScopeGuard(F f) : f_(std::move(f)) {}
  ~ScopeGuard() {
    if (active_) f_();
  }
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  void Dismiss() { active_ = false; }

 private:
  F f_;
  bool active_ = true;
};

}  // namespace brickfs

#endif  // BRICKFS_COMMON_SCOPE_GUARD_H_
