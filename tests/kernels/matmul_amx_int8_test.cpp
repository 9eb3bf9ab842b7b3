// Q8_0, Q4_K and Q6_K weights on the AMX int8 tile product (CPUs with AMX whose OS grants it;
// skipped elsewhere): bit for bit the row kernels' results, at row counts that leave partial
// 16-row bands, for every decode batch size and for prompts of several 16-token groups, on weights
// whose levels, scales and mins reach their extremes; and through matmul, independent of the
// thread count and of which tokens share a product.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/fast_kernels.h"
#include "kernels/ops.h"
#include "kernels/raw_weights.h"

namespace csq::kernels {
namespace {

using test::WeightFill;

// Token t's activations: random, or constant 1 (every level 127) or -1 (every level -127: both
// quantizers map the largest magnitude to 127 in size; levels of -128 are the lane tests' case).
std::vector<uint8_t> activations(cpu::ActFormat format, int64_t cols, int64_t tokens, std::mt19937& rng) {
  const int64_t stride = cpu::act_row_bytes(format, cols);
  std::vector<uint8_t> xq(size_t(tokens * stride));
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(cols));
  for (int64_t t = 0; t < tokens; ++t) {
    for (float& v : x) v = t % 3 == 1 ? 1.f : t % 3 == 2 ? -1.f : normal(rng);
    cpu::quantize_act(format, x.data(), xq.data() + t * stride, cols);
  }
  return xq;
}

TEST(AmxInt8, MatchesTheRowKernelBitForBit) {
  if (!cpu::use_amx()) GTEST_SKIP() << "no AMX here: " << matmul_amx_problem();
  ThreadPool pool(2);
  std::mt19937 rng(5);
  std::vector<int64_t> token_counts;
  for (int64_t n = 1; n <= 17; ++n) token_counts.push_back(n);
  for (int64_t n : {31, 32, 33, 48, 200}) token_counts.push_back(n);
  for (DType type : {DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const cpu::RowKernel* row_kernel = cpu::avx2_kernel(type);
    ASSERT_NE(row_kernel, nullptr);
    // Q8_0: an odd block count (blocks go in pairs) and a single block; k-quants: odd and even
    // block counts (a decode batch's blocks alternate between two accumulator pairs) and one.
    const std::vector<int64_t> col_counts =
        type == DType::Q8_0 ? std::vector<int64_t>{32 * 43, 32} : std::vector<int64_t>{256 * 11, 256 * 2, 256};
    for (int64_t rows : {1, 16, 45})
      for (int64_t cols : col_counts)
        for (WeightFill fill : {WeightFill::Random, WeightFill::Ones, WeightFill::High})
          for (int64_t tokens : token_counts) {
            if (cols * rows * tokens > 256 * 11 * 45 * 48 && fill != WeightFill::Random) continue;  // keeps the test short
            SCOPED_TRACE(std::string(dtype_info(type).name) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                         " fill " + std::to_string(int(fill)) + " tokens=" + std::to_string(tokens));
            const std::vector<uint8_t> w = test::raw_weight_rows(type, rows, cols, fill, rng);
            const Matrix m{type, rows, cols, w.data()};
            const int64_t x_stride = cpu::act_row_bytes(row_kernel->act, cols);
            const std::vector<uint8_t> xq = activations(row_kernel->act, cols, tokens, rng);
            std::vector<float> got(size_t(tokens * rows));
            cpu::matmul_amx_int8(m, xq.data(), x_stride, tokens, got.data(), pool);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t t = 0; t < tokens; ++t) {
                float one = 0;
                row_kernel->dot(w.data() + r * m.row_bytes(), xq.data() + t * x_stride, x_stride, 1, cols, &one);
                ASSERT_EQ(0, std::memcmp(&one, &got[size_t(t * rows + r)], sizeof(float)))
                    << "row " << r << " token " << t << ": " << one << " vs " << got[size_t(t * rows + r)];
              }
          }
  }
}

// Through matmul: the thread count never changes a result, and a decode batch below the AMX
// threshold (the AVX-512 kernels) gives each token what a prompt on the tiles gives it.
TEST(AmxInt8, IndependentOfThreadsAndOfTheOtherTokens) {
  if (!cpu::use_amx()) GTEST_SKIP() << "no AMX here: " << matmul_amx_problem();
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.f, 1.f);
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (DType type : {DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    SCOPED_TRACE(dtype_info(type).name);
    const int64_t rows = 70, cols = 1024, tokens = 53;
    const std::vector<uint8_t> w = test::raw_weight_rows(type, rows, cols, WeightFill::Random, rng);
    const Matrix m{type, rows, cols, w.data()};
    std::vector<float> x(size_t(tokens * cols));
    for (float& v : x) v = normal(rng);
    std::vector<float> all(size_t(tokens * rows)), other(all.size());
    matmul(m, x.data(), tokens, all.data(), pool2);
    matmul(m, x.data(), tokens, other.data(), pool1);
    EXPECT_EQ(0, std::memcmp(all.data(), other.data(), all.size() * sizeof(float)));
    matmul(m, x.data(), tokens, other.data(), pool3);
    EXPECT_EQ(0, std::memcmp(all.data(), other.data(), all.size() * sizeof(float)));
    for (int64_t n : {int64_t(1), cpu::amx_int8_min_tokens(type) - 1, cpu::amx_int8_min_tokens(type), int64_t(19)}) {
      const int64_t first = 5;
      std::vector<float> part(size_t(n * rows));
      matmul(m, x.data() + first * cols, n, part.data(), pool2);
      EXPECT_EQ(0, std::memcmp(part.data(), all.data() + first * rows, part.size() * sizeof(float))) << n << " tokens";
    }
  }
}

}  // namespace
}  // namespace csq::kernels
