// BF16 weights on the AMX tile product (CPUs with AMX whose OS grants it; skipped elsewhere):
// within the stated bound of the exact product, independent of the thread count and of the other
// tokens in the product, and never reading weights outside the matrix.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "kernels/cpu/fast_kernels.h"
#include "kernels/ops.h"

namespace csq::kernels {
namespace {

struct Bf16Problem {
  std::vector<uint16_t> weights;  // rows x cols, then a guard of NaNs
  std::vector<float> x;
  Matrix w;
};

// Rows of different magnitudes with an outlier each; NaN bits after the last row, which a kernel
// reading past the matrix would turn into NaN results.
Bf16Problem make_bf16_problem(int64_t rows, int64_t cols, int64_t tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  Bf16Problem p;
  p.weights.assign(size_t(rows * cols + 64), 0xFFFF);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float v = normal(rng) * 0.02f * float(1 + r % 5) * (c == r % cols ? 8.f : 1.f);
      p.weights[size_t(r * cols + c)] = f32_to_bf16(v);
    }
  p.w = {DType::BF16, rows, cols, reinterpret_cast<const uint8_t*>(p.weights.data())};
  p.x.resize(size_t(tokens * cols));
  for (float& v : p.x) v = normal(rng);
  return p;
}

std::string label(int64_t rows, int64_t cols, int64_t tokens) {
  return std::to_string(rows) + "x" + std::to_string(cols) + " tokens=" + std::to_string(tokens);
}

// Each activation is split into two bf16 parts within 2^-16 of it (relative), the products are
// exact in float: a result lies within 2^-16 * sum |w_i x_i| of the exact product, plus float
// accumulation (2e-6 of the same sum covers it at these lengths).
TEST(AmxBf16, WithinTheStatedBoundOfTheExactProduct) {
  if (!cpu::use_amx()) GTEST_SKIP() << "no AMX here: " << matmul_amx_problem();
  ThreadPool pool(2);
  // Odd row counts (partial 16- and 32-row blocks), column tails, odd numbers of 16-token groups.
  for (int64_t rows : {1, 17, 32, 45})
    for (int64_t cols : {1, 31, 32, 33, 97, 2560, 2605})
      for (int64_t tokens : {1, 2, 8, 9, 17, 32, 49}) {
        SCOPED_TRACE(label(rows, cols, tokens));
        const Bf16Problem p = make_bf16_problem(rows, cols, tokens, uint32_t(rows * 7 + cols * 3 + tokens));
        std::vector<float> got(size_t(tokens * rows));
        matmul(p.w, p.x.data(), tokens, got.data(), pool);
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t r = 0; r < rows; ++r) {
            double exact = 0, magnitude = 0;
            for (int64_t i = 0; i < cols; ++i) {
              const double term = double(bf16_to_f32(p.weights[size_t(r * cols + i)])) * double(p.x[size_t(t * cols + i)]);
              exact += term;
              magnitude += std::fabs(term);
            }
            ASSERT_NEAR(got[size_t(t * rows + r)], exact, (std::ldexp(1.0, -16) + 2e-6) * magnitude + 1e-30)
                << "row " << r << " token " << t;
          }
      }
}

// Each (row, token) is one accumulator over the columns in order: the thread count and the other
// tokens of the product (how they fall into 16-token groups, whether a group has a partner) never
// change a result; a token alone (a decode step of one stream) gets what it gets among 53.
TEST(AmxBf16, IndependentOfThreadsAndOfTheOtherTokens) {
  if (!cpu::use_amx()) GTEST_SKIP() << "no AMX here: " << matmul_amx_problem();
  const int64_t rows = 70, cols = 1100, tokens = 53;
  const Bf16Problem p = make_bf16_problem(rows, cols, tokens, 11);
  ThreadPool pool1(1), pool2(2), pool3(3);
  std::vector<float> all(size_t(tokens * rows)), other(all.size());
  matmul(p.w, p.x.data(), tokens, all.data(), pool2);
  matmul(p.w, p.x.data(), tokens, other.data(), pool1);
  EXPECT_EQ(0, std::memcmp(all.data(), other.data(), all.size() * sizeof(float)));
  matmul(p.w, p.x.data(), tokens, other.data(), pool3);
  EXPECT_EQ(0, std::memcmp(all.data(), other.data(), all.size() * sizeof(float)));
  // Tokens 5..(5 + n) alone: other group boundaries (one group, a pair, a pair and a lone group).
  for (int64_t n : {1, 3, 16, 20, 40}) {
    const int64_t first = 5;
    std::vector<float> part(size_t(n * rows));
    matmul(p.w, p.x.data() + first * cols, n, part.data(), pool2);
    EXPECT_EQ(0, std::memcmp(part.data(), all.data() + first * rows, part.size() * sizeof(float))) << n << " tokens";
  }
}

}  // namespace
}  // namespace csq::kernels
