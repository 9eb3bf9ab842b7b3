// ThreadPool: every split covers [0, n) exactly once, whatever the thread count and chunk size.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "base/thread_pool.h"

namespace csq {
namespace {

enum class Split { Even, Dynamic, Guided };

void expect_each_item_once(ThreadPool& pool, int64_t n, int64_t grain, Split split) {
  std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
  std::atomic<int> bad_range{0};
  const bool several = pool.size() > 1 && n > 1;
  const auto fn = [&](int64_t begin, int64_t end, int thread) {
    if (begin >= end || begin < 0 || end > n || thread < 0 || thread >= pool.size()) bad_range.fetch_add(1);
    if (split == Split::Dynamic && several && end - begin > grain) bad_range.fetch_add(1);
    // Guided: at least the minimum unless the items ran out, at most a 2 size()-th of them.
    if (split == Split::Guided && several && ((end - begin < grain && end != n) || end - begin > std::max(grain, n / (2 * pool.size()))))
      bad_range.fetch_add(1);
    for (int64_t i = begin; i < end; ++i) seen[size_t(i)].fetch_add(1);
  };
  if (split == Split::Dynamic) pool.parallel_for_dynamic(n, grain, fn);
  else if (split == Split::Guided) pool.parallel_for_guided(n, grain, fn);
  else pool.parallel_for(n, fn);
  EXPECT_EQ(bad_range.load(), 0);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[size_t(i)].load(), 1) << "item " << i << " of " << n;
}

TEST(ThreadPool, EverySplitCoversEachItemOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 64, 1000}) {
      SCOPED_TRACE("threads=" + std::to_string(threads) + " n=" + std::to_string(n));
      expect_each_item_once(pool, n, 0, Split::Even);
      for (int64_t grain : {1, 3, 16, 5000}) {
        expect_each_item_once(pool, n, grain, Split::Dynamic);
        expect_each_item_once(pool, n, grain, Split::Guided);
      }
    }
  }
}

TEST(ThreadPool, ManyBackToBackJobs) {
  // A forward pass issues hundreds of short jobs in a row; none may be lost or run twice.
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int job = 0; job < 2000; ++job) {
    const auto add = [&](int64_t begin, int64_t end, int) { total.fetch_add(end - begin); };
    if (job % 3 == 1) pool.parallel_for_dynamic(37, 4, add);
    else if (job % 3 == 2) pool.parallel_for_guided(37, 2, add);
    else pool.parallel_for(37, add);
  }
  EXPECT_EQ(total.load(), 2000 * 37);
}

}  // namespace
}  // namespace csq
