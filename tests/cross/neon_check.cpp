// Runs on 64-bit ARM (under qemu-aarch64 in scripts/check_portable.sh): the NEON row kernels, and
// matmul dispatching to them, against tests/kernels/row_model.h bit for bit. The x86 tests check
// the AVX2 kernels against the same model, so both ISAs give the same logits. No test framework:
// the program prints each mismatch and exits 1 if there was one.
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/fast_kernels.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/row_model.h"

using namespace csq;
using namespace csq::kernels;

namespace {

int failures = 0;

void expect_same(float got, float want, const std::string& what) {
  if (std::memcmp(&got, &want, sizeof(float)) == 0) return;
  if (++failures <= 20) std::printf("MISMATCH %s: %.9g vs model %.9g\n", what.c_str(), double(got), double(want));
}

void check_type(DType type, int64_t cols, std::mt19937& rng) {
  const std::string label = std::string(dtype_info(type).name) + " cols=" + std::to_string(cols);
  const cpu::RowKernel* kernel = cpu::neon_kernel(type);
  if (!kernel) {
    ++failures;
    std::printf("MISSING no NEON kernel for %s\n", label.c_str());
    return;
  }
  std::normal_distribution<float> normal(0.f, 1.f);
  constexpr int64_t kRows = 5, kTokens = cpu::kMaxTokens;
  const int64_t row_bytes = csq::row_bytes(type, cols);
  std::vector<uint8_t> w(size_t(kRows * row_bytes));
  std::vector<float> row(static_cast<size_t>(cols)), x(static_cast<size_t>(kTokens * cols));
  for (int64_t r = 0; r < kRows; ++r) {
    for (float& v : row) v = normal(rng) * 0.05f;
    quantize_row(type, row.data(), w.data() + r * row_bytes, cols);
  }
  for (float& v : x) v = normal(rng);
  const int64_t x_stride = cpu::act_row_bytes(kernel->act, cols);
  std::vector<uint8_t> xq(size_t(kTokens * x_stride));
  for (int64_t t = 0; t < kTokens; ++t) cpu::quantize_act(kernel->act, x.data() + t * cols, xq.data() + t * x_stride, cols);

  std::vector<float> want(size_t(kTokens * kRows));
  for (int64_t t = 0; t < kTokens; ++t)
    for (int64_t r = 0; r < kRows; ++r)
      want[size_t(t * kRows + r)] = row_model::dot(type, w.data() + r * row_bytes, xq.data() + t * x_stride, cols);
  for (int n_tok = 1; n_tok <= kTokens; ++n_tok)
    for (int64_t r = 0; r < kRows; ++r) {
      float got[cpu::kMaxTokens];
      kernel->dot(w.data() + r * row_bytes, xq.data(), x_stride, n_tok, cols, got);
      for (int t = 0; t < n_tok; ++t)
        expect_same(got[t], want[size_t(t * kRows + r)],
                    label + " row " + std::to_string(r) + " token " + std::to_string(t) + " of " + std::to_string(n_tok));
    }
  // matmul picks the NEON kernel and encodes the activations itself.
  ThreadPool pool(2);
  std::vector<float> y(size_t(kTokens * kRows));
  const Matrix m{type, kRows, cols, w.data()};
  matmul(m, x.data(), kTokens, y.data(), pool);
  for (size_t i = 0; i < y.size(); ++i) expect_same(y[i], want[i], label + " matmul output " + std::to_string(i));
}

}  // namespace

int main() {
  if (std::string(matmul_kernel_set()) != "neon") {
    std::printf("MISMATCH matmul runs the '%s' kernels, not neon\n", matmul_kernel_set());
    return 1;
  }
  std::mt19937 rng(5);
  for (DType type : {DType::Q8_0, DType::Q4_K, DType::Q6_K})
    for (int64_t cols : {256, 2560}) check_type(type, cols, rng);
  for (DType type : {DType::F32, DType::F16, DType::BF16})
    for (int64_t cols : {7, 16, 45, 2560}) check_type(type, cols, rng);
  if (failures) {
    std::printf("neon_check: %d mismatches\n", failures);
    return 1;
  }
  std::printf("neon_check: the NEON kernels compute the row model's arithmetic bit for bit\n");
  return 0;
}
