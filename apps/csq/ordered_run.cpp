#include "ordered_run.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace csq::app {

void run_ordered(size_t n, int threads, const std::function<nlohmann::ordered_json(size_t)>& produce,
                 const std::function<void(size_t, const nlohmann::ordered_json&)>& emit,
                 const std::function<void(size_t)>& done) {
  std::vector<std::optional<nlohmann::ordered_json>> results(n);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::exception_ptr error;
  size_t emitted = 0, finished = 0;
  auto worker = [&] {
    for (size_t k; !failed && (k = next++) < n;) {
      try {
        nlohmann::ordered_json result = produce(k);
        std::lock_guard<std::mutex> lock(mutex);
        results[k] = std::move(result);
        ++finished;
        if (done) done(finished);
        for (; emitted < n && results[emitted]; ++emitted) emit(emitted, *results[emitted]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < std::min(n, size_t(std::max(threads, 1))); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace csq::app
