// Internal: the AVX2 dense product behind kernels::gemm_nt (backward.h).
#pragma once

#include <cstdint>

#include "base/thread_pool.h"

namespace csq::kernels::cpu {

// c[i * ldc + j] += sum_p a[i * lda + p] * b[j * ldb + p] for i < m, j < n, p < k.
void gemm_nt_avx2(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                  int64_t n, int64_t k, ThreadPool& pool);

}  // namespace csq::kernels::cpu
