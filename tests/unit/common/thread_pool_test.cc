// Tests for ThreadPool: Submit/drain semantics and ParallelFor coverage,
// including nested use from inside a pool task.
#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace brickfs {
namespace {

TEST(ThreadPoolTest, ZeroThreadsMeansOne) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.size(), 1u);
}

TEST(ThreadPoolTest, DestructorRunsEverySubmittedTask) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 1000; ++i) {
      pool.Submit([&ran] {
        if (ran.load() % 97 == 0) std::this_thread::yield();
        ran.fetch_add(1);
      });
    }
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(ThreadPoolTest, TasksRunOnWorkerThreads) {
  ThreadPool pool(2);
  std::promise<std::thread::id> id;
  auto f = id.get_future();
  pool.Submit([&id] { id.set_value(std::this_thread::get_id()); });
  EXPECT_NE(f.get(), std::this_thread::get_id());
}

TEST(ThreadPoolTest, ParallelForCoversEveryIndexExactlyOnce) {
  ThreadPool pool(3);
  for (size_t n : {0u, 1u, 2u, 3u, 7u, 64u, 1000u}) {
    std::vector<std::atomic<int>> hits(n);
    pool.ParallelFor(n, [&](size_t i) {
      ASSERT_LT(i, n);
      hits[i].fetch_add(1);
    });
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPoolTest, ParallelForReturnsOnlyAfterAllIndicesFinish) {
  ThreadPool pool(2);
  std::atomic<int> done{0};
  pool.ParallelFor(16, [&](size_t i) {
    if (i % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    done.fetch_add(1);
  });
  EXPECT_EQ(done.load(), 16);
}

TEST(ThreadPoolTest, ParallelForUsesMoreThanTheCallingThread) {
  ThreadPool pool(2);
  std::mutex mu;
  std::set<std::thread::id> ids;
  pool.ParallelFor(64, [&](size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_GE(ids.size(), 2u);
}

TEST(ThreadPoolTest, ParallelForFromInsidePoolTaskRunsInlineWithoutDeadlock) {
  // A one-thread pool: if the nested ParallelFor queued work for the pool
  // and waited, it would wait on itself forever.
  ThreadPool pool(1);
  std::promise<std::vector<int>> result;
  auto f = result.get_future();
  pool.Submit([&] {
    std::vector<int> hits(50, 0);
    pool.ParallelFor(hits.size(), [&](size_t i) { ++hits[i]; });
    result.set_value(hits);
  });
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "nested ParallelFor deadlocked";
  for (int h : f.get()) EXPECT_EQ(h, 1);
}

TEST(ThreadPoolTest, ParallelForWhilePoolIsBusyStillFinishes) {
  // Every worker is blocked; the caller must do all the work itself.
  ThreadPool pool(2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  for (int i = 0; i < 2; ++i) pool.Submit([gate] { gate.wait(); });
  std::atomic<int> done{0};
  pool.ParallelFor(20, [&](size_t) { done.fetch_add(1); });
  EXPECT_EQ(done.load(), 20);
  release.set_value();
}

TEST(ThreadPoolTest, ConcurrentParallelForsFromSeveralThreads) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 20; ++rep) {
        pool.ParallelFor(100, [&](size_t i) { sum.fetch_add(static_cast<long>(i)); });
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(sum.load(), 4L * 20 * (99 * 100 / 2));
}

}  // namespace
}  // namespace brickfs
