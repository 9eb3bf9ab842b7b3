#include "base/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace csq {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or the spin time is up; true when done() became true.
template <typename Done>
bool spin_until(Done done, std::chrono::microseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace

int ThreadPool::default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = default_threads();
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_share(int index) {
  if (job_guided_) {
    const int64_t divisor = 2 * int64_t(size());
    int64_t begin = next_chunk_.load(std::memory_order_relaxed);
    while (begin < job_size_) {
      const int64_t end = std::min(job_size_, begin + std::max(job_grain_, (job_size_ - begin) / divisor));
      if (next_chunk_.compare_exchange_weak(begin, end, std::memory_order_relaxed)) {
        (*job_)(begin, end, index);
        begin = next_chunk_.load(std::memory_order_relaxed);
      }
    }
    return;
  }
  if (job_grain_ > 0) {
    for (;;) {
      const int64_t begin = next_chunk_.fetch_add(job_grain_, std::memory_order_relaxed);
      if (begin >= job_size_) return;
      (*job_)(begin, std::min(job_size_, begin + job_grain_), index);
    }
  }
  const int64_t threads = size();
  const int64_t begin = job_size_ * index / threads;
  const int64_t end = job_size_ * (index + 1) / threads;
  if (begin < end) (*job_)(begin, end, index);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const auto started = [&] { return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(started, kSpin)) {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, started);
    }
    if (stopping_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    run_share(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Taking the lock orders this notify after the caller's check of pending_ (no lost wake-up).
      std::lock_guard<std::mutex> lock(mutex_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) { run(n, 0, false, fn); }

void ThreadPool::parallel_for_dynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
  run(n, std::max<int64_t>(grain, 1), false, fn);
}

void ThreadPool::parallel_for_guided(int64_t n, int64_t min_grain, const std::function<void(int64_t, int64_t, int)>& fn) {
  run(n, std::max<int64_t>(min_grain, 1), true, fn);
}

void ThreadPool::run(int64_t n, int64_t grain, bool guided, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_size_ = n;
  job_grain_ = grain;
  job_guided_ = guided;
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_share(0);
  const auto finished = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(finished, kSpin)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, finished);
  }
  job_ = nullptr;
}

}  // namespace csq
