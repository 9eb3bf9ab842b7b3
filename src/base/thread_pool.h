// A persistent pool of worker threads. parallel_for splits [0, n) into one contiguous
// range per thread, so every output element is always computed by exactly one thread with
// the same arithmetic: results do not depend on the thread count. parallel_for_dynamic hands
// out chunks to whichever thread is free, for work whose items cost unequal or unpredictable
// time (the same guarantee holds where fn computes each item on its own).
//
// A forward pass issues hundreds of short parallel_for calls back to back, so waiting threads
// first spin for a short while (kSpin) on an atomic before sleeping on a condition variable:
// the next job starts without a futex wake-up, and an idle pool still costs no CPU.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace csq {

class ThreadPool {
 public:
  // threads <= 0 means one per hardware core.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls fn(begin, end, thread_index) on disjoint ranges covering [0, n); returns when all are done.
  // Not re-entrant: call it from one thread at a time, never from inside fn.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);
  // The same with [0, n) handed out in chunks of `grain` items, each to the first thread free:
  // fn may be called several times per thread (once for all of [0, n) where one thread works). Threads that share memory bandwidth rarely finish
  // equal shares together; here none waits for another while chunks remain.
  void parallel_for_dynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);
  // The same with chunks that shrink as the work runs out: each takes 1 / (2 size()) of the items
  // left, at least min_grain. Few, long runs early (one stream per thread for the prefetchers) and
  // short ones at the end, so that the thread still busy when the items run out holds up the rest
  // for a short chunk, not an average one (a generation step waits on that ~250 times).
  void parallel_for_guided(int64_t n, int64_t min_grain, const std::function<void(int64_t, int64_t, int)>& fn);

  static int default_threads();

 private:
  static constexpr std::chrono::microseconds kSpin{300};

  void run(int64_t n, int64_t grain, bool guided, const std::function<void(int64_t, int64_t, int)>& fn);
  void worker_loop(int index);
  void run_share(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_size_ = 0;
  int64_t job_grain_ = 0;  // 0: one contiguous range per thread
  bool job_guided_ = false;  // chunks of the items left / (2 size()), at least job_grain_
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace csq
