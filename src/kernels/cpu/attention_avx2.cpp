// AVX2 fused attention over an F32, F16 or Q8_0 key/value cache (see attention_group in ops.h).
// x86 only: elsewhere this file compiles to nothing and the dispatchers keep to the reference.
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/fast_kernels.h"

#include "kernels/cpu/avx2_begin.h"

namespace csq::kernels::cpu {
namespace {

constexpr int kMaxGroup = 16;    // query heads per key/value head
constexpr int64_t kChunk = 64;   // positions scored before each softmax rescale
constexpr int64_t kMaxHeadDim = 512;

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Elements i..i+7 of a cache row, decoded as dequantize_row does (i is a multiple of 8, so the
// eight never straddle a Q8_0 block).
template <DType T>
inline __m256 load8(const void* base, int64_t i) {
  if constexpr (T == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else if constexpr (T == DType::Q8_0) {
    const quants::BlockQ8_0& block = static_cast<const quants::BlockQ8_0*>(base)[i / 32];
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block.qs + i % 32));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(block.d)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

template <DType T>
void attend(const float* q, int64_t n_group, const void* k, const void* v, int64_t kv_stride, int64_t n_ctx,
            int64_t head_dim, float* out) {
  const float scale = 1.0f / std::sqrt(float(head_dim));
  alignas(32) float acc[kMaxGroup][kMaxHeadDim];
  float scores[kMaxGroup][kChunk];
  float running_max[kMaxGroup], running_sum[kMaxGroup];
  for (int64_t h = 0; h < n_group; ++h) {
    std::fill(acc[h], acc[h] + head_dim, 0.0f);
    running_max[h] = -INFINITY;
    running_sum[h] = 0;
  }
  for (int64_t p0 = 0; p0 < n_ctx; p0 += kChunk) {
    const int64_t n = std::min(kChunk, n_ctx - p0);
    // Scores: each key row is converted once and dotted with every head of the group.
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = (p0 + i) * kv_stride;
      __m256 dots[kMaxGroup];
      for (int64_t h = 0; h < n_group; ++h) dots[h] = _mm256_setzero_ps();
      for (int64_t d = 0; d < head_dim; d += 8) {
        const __m256 kv = load8<T>(k, row + d);
        for (int64_t h = 0; h < n_group; ++h) dots[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * head_dim + d), kv, dots[h]);
      }
      for (int64_t h = 0; h < n_group; ++h) scores[h][i] = hsum(dots[h]) * scale;
    }
    // Online softmax: rescale what was accumulated so far to the new running maximum.
    for (int64_t h = 0; h < n_group; ++h) {
      float chunk_max = running_max[h];
      for (int64_t i = 0; i < n; ++i) chunk_max = std::max(chunk_max, scores[h][i]);
      const float correction = std::exp(running_max[h] - chunk_max);
      running_max[h] = chunk_max;
      float sum = running_sum[h] * correction;
      for (int64_t i = 0; i < n; ++i) {
        scores[h][i] = std::exp(scores[h][i] - chunk_max);
        sum += scores[h][i];
      }
      running_sum[h] = sum;
      if (correction != 1.0f) {
        const __m256 c = _mm256_set1_ps(correction);
        for (int64_t d = 0; d < head_dim; d += 8) _mm256_store_ps(acc[h] + d, _mm256_mul_ps(c, _mm256_load_ps(acc[h] + d)));
      }
    }
    // Values: each row converted once, added to every head with its weight.
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = (p0 + i) * kv_stride;
      for (int64_t d = 0; d < head_dim; d += 8) {
        const __m256 vv = load8<T>(v, row + d);
        for (int64_t h = 0; h < n_group; ++h)
          _mm256_store_ps(acc[h] + d, _mm256_fmadd_ps(_mm256_set1_ps(scores[h][i]), vv, _mm256_load_ps(acc[h] + d)));
      }
    }
  }
  for (int64_t h = 0; h < n_group; ++h) {
    const __m256 inv = _mm256_set1_ps(1.0f / running_sum[h]);
    for (int64_t d = 0; d < head_dim; d += 8)
      _mm256_storeu_ps(out + h * head_dim + d, _mm256_mul_ps(inv, _mm256_load_ps(acc[h] + d)));
  }
}

}  // namespace

bool attention_avx2_fits(int64_t n_group, int64_t head_dim) {
  return n_group <= kMaxGroup && head_dim % 8 == 0 && head_dim <= kMaxHeadDim;
}

void attention_group_avx2(const float* q, int64_t n_group, const void* k, const void* v, DType kv_type,
                          int64_t kv_stride, int64_t n_ctx, int64_t head_dim, float* out) {
  switch (kv_type) {
    case DType::F16: return attend<DType::F16>(q, n_group, k, v, kv_stride, n_ctx, head_dim, out);
    case DType::Q8_0: return attend<DType::Q8_0>(q, n_group, k, v, kv_stride, n_ctx, head_dim, out);
    default: return attend<DType::F32>(q, n_group, k, v, kv_stride, n_ctx, head_dim, out);
  }
}

}  // namespace csq::kernels::cpu

#include "kernels/cpu/avx2_end.h"

#endif  // x86
