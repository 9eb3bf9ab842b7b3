// Throughput of the Vulkan matrix kernels per weight type: the vector kernel against the tiled
// one (and the cooperative-matrix one where the device has it) on a rows x cols weight matrix
// for batches of 1, 8, 64 and 512 tokens, in GFLOP/s (2 * rows * cols * tokens per product,
// best of the repetitions, each a submitted and finished dispatch).
// Usage: csq_vulkan_matmul_bench [device] [rows] [cols] [types...]   (default 0 2048 2048, all)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/quantize.h"
#include "kernels/vulkan/ops.h"

int main(int argc, char** argv) {
  using namespace csq;
  try {
    const int index = argc > 1 ? std::atoi(argv[1]) : 0;
    const int64_t rows = argc > 2 ? std::atoll(argv[2]) : 2048, cols = argc > 3 ? std::atoll(argv[3]) : 2048;
    std::vector<std::string> names;
    for (int i = 4; i < argc; ++i) names.emplace_back(argv[i]);
    if (names.empty()) names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"};
    if (rows <= 0 || cols <= 0 || cols % 256 != 0) fail_usage("rows > 0 and cols a multiple of 256, please");
    auto device = vulkan::Device::open(index);
    std::printf("device %d: %s (%s, %s)\n", index, device->info().name.c_str(), device->info().type.c_str(),
                device->info().driver.c_str());
    std::printf("%-5s %7s %12s %12s %12s   (GFLOP/s, %lld x %lld)\n", "type", "tokens", "vector", "tiled",
                "cooperative", (long long)rows, (long long)cols);

    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> w(size_t(rows * cols));
    for (float& v : w) v = normal(rng);
    const std::vector<int64_t> batches = {1, 8, 64, 512};
    std::vector<float> x(size_t(cols * batches.back()));
    for (float& v : x) v = normal(rng);
    auto xb = vulkan::upload_floats(*device, x.data(), int64_t(x.size()));
    auto yb = device->create_buffer(uint64_t(rows * batches.back()) * 4);

    for (const std::string& name : names) {
      const DType* type_of_name = nullptr;
      static const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                                     DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};
      for (const DType& t : kTypes)
        if (name == dtype_info(t).name) type_of_name = &t;
      if (!type_of_name) fail_usage("unknown weight type '" + name + "' (F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K)");
      const DType type = *type_of_name;
      const int64_t stride = row_bytes(type, cols);
      std::vector<uint8_t> bytes(size_t(rows * stride));
      for (int64_t r = 0; r < rows; ++r) quantize_row(type, w.data() + r * cols, bytes.data() + r * stride, cols);
      const vulkan::DeviceMatrix dm = vulkan::upload_matrix(*device, kernels::Matrix{type, rows, cols, bytes.data()});
      for (int64_t n : batches) {
        std::printf("%-5s %7lld", name.c_str(), (long long)n);
        for (vulkan::MatmulKernel k :
             {vulkan::MatmulKernel::Vector, vulkan::MatmulKernel::Tiled, vulkan::MatmulKernel::Cooperative}) {
          if (k == vulkan::MatmulKernel::Cooperative && !device->info().coopmat_f16) {
            std::printf(" %12s", "-");
            continue;
          }
          double best = 1e30;
          for (int rep = 0; rep < 3; ++rep) {
            const auto start = std::chrono::steady_clock::now();
            vulkan::matmul(*device, dm, *xb, 0, n, *yb, 0, false, k);
            device->finish();
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
          }
          std::printf(" %12.2f", 2.0 * double(rows) * double(cols) * double(n) / best * 1e-9);
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  } catch (const csq::Error& e) {
    std::fprintf(stderr, "csq_vulkan_matmul_bench: %s\n", e.what());
    return 3;
  }
}
