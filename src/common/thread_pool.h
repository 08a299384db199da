// A fixed pool of worker threads running queued tasks in FIFO order.
//
// Used for slab compression (write path) and parallel block decoding (read
// path). Tasks must not throw. Thread-safety: all methods may be called from
// any thread; the destructor drains the queue and joins the workers.
#ifndef BRICKFS_COMMON_THREAD_POOL_H_
#define BRICKFS_COMMON_THREAD_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace brickfs {

class ThreadPool {
 public:
  // REQUIRES: threads >= 1.
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  size_t size() const { return workers_.size(); }

  // Runs fn(0) ... fn(n-1) on the pool and the calling thread; returns when
  // all are done. Safe to call from a pool thread (it then runs inline).
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

 private:
  void WorkerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace brickfs

#endif  // BRICKFS_COMMON_THREAD_POOL_H_
