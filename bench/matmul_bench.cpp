// Throughput of the fast matrix product per weight type: one token (generation: weight bytes
// per second, read from memory as in a forward pass: copies of the matrix that together exceed
// the last-level cache are multiplied in turn) and a 128-token tile (prompt processing:
// multiply-adds per second), on a Qwen3-4B FFN-sized matrix; and batched generation, 2, 4, 8, 12
// and 16 tokens against the matrix read from memory (a decode step of that many streams), in ms.
// Usage: csq_matmul_bench [--cpu-time] [threads] [types...]
// --cpu-time times the process's CPU time instead of the wall clock: with 1 thread, a kernel's own
// cost on a machine that others share (with more threads it also counts the pool's spinning).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"

namespace {

using csq::DType;

bool g_cpu_time = false;

double now_seconds() {
  if (!g_cpu_time)
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double best_seconds(int reps, const std::function<void()>& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double start = now_seconds();
    fn();
    best = std::min(best, now_seconds() - start);
  }
  return best;
}

}  // namespace

// The type named `name` (ggml's spelling, e.g. Q4_K), if there is one.
std::optional<DType> type_named(const std::string& name) {
  for (uint32_t id = 0; id < 40; ++id)
    if (const csq::DTypeInfo* info = csq::dtype_info(id); info && name == info->name) return DType(id);
  return std::nullopt;
}

// `problem` with the offending argument in place of %s.
int usage(const char* problem, const char* argument) {
  std::fprintf(stderr, "csq_matmul_bench: ");
  std::fprintf(stderr, problem, argument);
  std::fprintf(stderr, "\nUsage: csq_matmul_bench [--cpu-time] [threads] [types...]\n");
  return 1;
}

int main(int argc, char** argv) {
  int arg = 1;
  if (arg < argc && std::string(argv[arg]) == "--cpu-time") g_cpu_time = true, ++arg;
  int threads = 2;
  if (arg < argc && std::isdigit(static_cast<unsigned char>(argv[arg][0]))) {
    char* end = nullptr;
    const long n = std::strtol(argv[arg], &end, 10);
    if (*end != '\0' || n < 1 || n > 1024) return usage("'%s' is not a thread count (1-1024)", argv[arg]);
    threads = int(n), ++arg;
  }
  std::vector<std::pair<std::string, DType>> types;
  for (; arg < argc; ++arg) {
    const std::optional<DType> type = type_named(argv[arg]);
    if (!type) return usage("unknown option or weight type '%s' (types as ggml names them: Q4_K, Q8_0, BF16, ...)", argv[arg]);
    types.emplace_back(argv[arg], *type);
  }
  if (types.empty())
    for (const char* name : {"Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "BF16", "F16"}) types.emplace_back(name, *type_named(name));
  csq::ThreadPool pool(threads);
  const int64_t rows = 9728, cols = 2560;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 0.05f);
  std::vector<float> src(static_cast<size_t>(cols)), x(size_t(128 * cols)), y(size_t(128 * rows));
  for (float& v : x) v = normal(rng) * 20.f;
  const int64_t batches[] = {2, 4, 8, 12, 16};
  std::printf("%-6s %10s %12s %12s %14s", "type", "MiB", "tg GB/s", "tg ms", "pp128 GMAC/s");
  for (int64_t n : batches) std::printf(" %*sb%lld ms", n < 10 ? 3 : 2, "", static_cast<long long>(n));  // "b12 ms" in 8 columns
  std::printf("\n");
  for (const auto& [name, type] : types) {
    csq::kernels::Matrix w{type, rows, cols, nullptr};
    std::vector<uint8_t> data(size_t(rows * w.row_bytes()));
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : src) v = normal(rng);
      csq::quantize_row(type, src.data(), data.data() + r * w.row_bytes(), cols);
    }
    w.data = data.data();
    constexpr size_t kBeyondCache = size_t(256) << 20;
    std::vector<std::vector<uint8_t>> copies((kBeyondCache + data.size() - 1) / data.size(), data);
    const auto from_memory = [&](int64_t tokens) {
      return best_seconds(5, [&] {
        for (const std::vector<uint8_t>& copy : copies) {
          csq::kernels::Matrix m = w;
          m.data = copy.data();
          csq::kernels::matmul(m, x.data(), tokens, y.data(), pool);
        }
      }) / double(copies.size());
    };
    const double tg = from_memory(1);
    const double pp = best_seconds(3, [&] { csq::kernels::matmul(w, x.data(), 128, y.data(), pool); });
    std::printf("%-6s %10.1f %12.2f %12.3f %14.1f", name.c_str(), double(data.size()) / (1 << 20), double(data.size()) / tg / 1e9,
                tg * 1e3, double(rows * cols) * 128 / pp / 1e9);
    for (int64_t n : batches) std::printf(" %8.3f", from_memory(n) * 1e3);
    std::printf("\n");
  }
}
