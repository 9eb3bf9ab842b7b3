// Dense float32 C (+)= A · B^T for training: a register-blocked AVX2/FMA micro-kernel (6 rows of
// A × 16 rows of B held in 12 accumulators), with A and B packed per k-panel so the kernel reads
// both sequentially. Compiled for AVX2 with a pragma and called only after the run-time check.
// x86 only: elsewhere this file compiles to nothing and the dispatchers keep to the reference.
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"

#include "kernels/cpu/avx2_begin.h"

namespace csq::kernels::cpu {
namespace {

constexpr int64_t kMr = 6, kNr = 16, kKc = 256;

// acc[6][16] = sum_p a[p][0..6) ⊗ b[p][0..16) over kc packed steps; added to the c tile.
void micro_kernel(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, int64_t rows, int64_t cols) {
  __m256 acc[kMr][2];
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * kNr), b1 = _mm256_loadu_ps(b + p * kNr + 8);
    for (int64_t i = 0; i < kMr; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + p * kMr + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  alignas(32) float tile[kMr][kNr];
  for (int64_t i = 0; i < kMr; ++i) {
    _mm256_store_ps(tile[i], acc[i][0]);
    _mm256_store_ps(tile[i] + 8, acc[i][1]);
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) c[i * ldc + j] += tile[i][j];
}

}  // namespace

void gemm_nt_avx2(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                  int64_t n, int64_t k, ThreadPool& pool) {
  const int64_t m_blocks = (m + kMr - 1) / kMr, n_blocks = (n + kNr - 1) / kNr;
  std::vector<float> a_packed(size_t(m_blocks * kMr * kKc));
  for (int64_t k0 = 0; k0 < k; k0 += kKc) {
    const int64_t kc = std::min(kKc, k - k0);
    // A panel: for each block of 6 rows, kc steps of 6 values (zero past the last row).
    pool.parallel_for(m_blocks, [&](int64_t begin, int64_t end, int) {
      for (int64_t blk = begin; blk < end; ++blk) {
        float* dst = a_packed.data() + blk * kMr * kKc;
        for (int64_t i = 0; i < kMr; ++i) {
          const int64_t row = blk * kMr + i;
          for (int64_t p = 0; p < kc; ++p) dst[p * kMr + i] = row < m ? a[row * lda + k0 + p] : 0.0f;
        }
      }
    });
    // Each thread owns whole column blocks of C, so every element has one writer and one order.
    pool.parallel_for(n_blocks, [&](int64_t begin, int64_t end, int) {
      std::vector<float> b_packed(size_t(kNr * kKc));
      for (int64_t nb = begin; nb < end; ++nb) {
        const int64_t j0 = nb * kNr, cols = std::min(kNr, n - j0);
        for (int64_t j = 0; j < kNr; ++j)
          for (int64_t p = 0; p < kc; ++p) b_packed[size_t(p * kNr + j)] = j < cols ? b[(j0 + j) * ldb + k0 + p] : 0.0f;
        for (int64_t mb = 0; mb < m_blocks; ++mb) {
          const int64_t i0 = mb * kMr;
          micro_kernel(a_packed.data() + mb * kMr * kKc, b_packed.data(), kc, c + i0 * ldc + j0, ldc,
                       std::min(kMr, m - i0), cols);
        }
      }
    });
  }
}

}  // namespace csq::kernels::cpu

#include "kernels/cpu/avx2_end.h"

#endif  // x86
