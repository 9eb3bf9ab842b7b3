#include "kernels/backward.h"

#include "kernels/cpu/fast_kernels.h"
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace csq::kernels {

void matmul_transposed_ref(const Matrix& w, const float* dy, int64_t n_tokens, float* dx) {
  std::fill(dx, dx + n_tokens * w.cols, 0.0f);
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float g = dy[t * w.rows + r];
      float* out = dx + t * w.cols;
      for (int64_t c = 0; c < w.cols; ++c) out[c] += g * row[size_t(c)];
    }
  }
}

void gemm_nt_ref(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += a[i * lda + p] * b[j * ldb + p];
      c[i * ldc + j] += sum;
    }
}

void gemm_nt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
             int64_t k, ThreadPool& pool) {
#if CSQ_X86_KERNELS
  if (cpu::use_avx2()) return cpu::gemm_nt_avx2(a, lda, b, ldb, c, ldc, m, n, k, pool);
#endif
  pool.parallel_for(m, [&](int64_t begin, int64_t end, int) {
    gemm_nt_ref(a + begin * lda, lda, b, ldb, c + begin * ldc, ldc, end - begin, n, k);
  });
}

namespace {

// Rows of a frozen weight decoded to float at a time (rows × cols floats).
constexpr int64_t kTileRows = 256;
// Below this many tokens the matrix-vector kernels of matmul are faster than packing for gemm.
constexpr int64_t kGemmMinTokens = 16;

void decode_rows(const Matrix& w, int64_t r0, int64_t rows, float* out, ThreadPool& pool) {
  pool.parallel_for(rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) dequantize_row(w.type, w.row(r0 + i), out + i * w.cols, w.cols);
  });
}

}  // namespace

void matmul_float_activations(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const bool float_weights = w.type == DType::F32 || w.type == DType::F16 || w.type == DType::BF16;
  if (float_weights && n_tokens < kGemmMinTokens) return matmul(w, x, n_tokens, y, pool);
  std::vector<float> tile(size_t(std::min(kTileRows, w.rows) * w.cols));
  for (int64_t r0 = 0; r0 < w.rows; r0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, w.rows - r0);
    decode_rows(w, r0, rows, tile.data(), pool);
    for (int64_t t = 0; t < n_tokens; ++t) std::fill(y + t * w.rows + r0, y + t * w.rows + r0 + rows, 0.0f);
    gemm_nt(x, w.cols, tile.data(), w.cols, y + r0, w.rows, n_tokens, rows, w.cols, pool);
  }
}

void matmul_transposed(const Matrix& w, const float* dy, int64_t n_tokens, float* dx, ThreadPool& pool) {
  // dx = sum over row tiles of dy[:, tile] · W[tile, :]: each tile is decoded and transposed to
  // [cols, rows] for gemm_nt; tiles are added in row order.
  std::fill(dx, dx + n_tokens * w.cols, 0.0f);
  std::vector<float> tile(size_t(std::min(kTileRows, w.rows) * w.cols)), tile_t(tile.size());
  for (int64_t r0 = 0; r0 < w.rows; r0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, w.rows - r0);
    decode_rows(w, r0, rows, tile.data(), pool);
    pool.parallel_for(w.cols, [&](int64_t begin, int64_t end, int) {
      for (int64_t c = begin; c < end; ++c)
        for (int64_t i = 0; i < rows; ++i) tile_t[size_t(c * rows + i)] = tile[size_t(i * w.cols + c)];
    });
    gemm_nt(dy + r0, w.rows, tile_t.data(), rows, dx, w.cols, n_tokens, w.cols, rows, pool);
  }
}

void rmsnorm_backward(const float* x, const float* weight, const float* dy, float* dx, int64_t n_rows, int64_t dim,
                      float eps) {
  // y_i = w_i x_i r with r = (mean(x^2) + eps)^-1/2, so
  // dx_i = r w_i dy_i - x_i r^3 / dim * sum_j w_j dy_j x_j.
  for (int64_t row = 0; row < n_rows; ++row) {
    const float* xr = x + row * dim;
    const float* g = dy + row * dim;
    float* out = dx + row * dim;
    const float mean_square = dot(xr, xr, dim) / float(dim);
    const float inv = 1.0f / std::sqrt(mean_square + eps);
    double projection = 0;
    for (int64_t i = 0; i < dim; ++i) projection += double(weight[i]) * g[i] * xr[i];
    const float coef = float(projection) * inv * inv * inv / float(dim);
    for (int64_t i = 0; i < dim; ++i) out[i] = inv * weight[i] * g[i] - xr[i] * coef;
  }
}

void silu_mul_backward(const float* gate, const float* up, const float* dh, float* dgate, float* dup, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float sigmoid = 1.0f / (1.0f + std::exp(-g));
    const float silu = g * sigmoid;
    dup[i] = dh[i] * silu;
    dgate[i] = dh[i] * up[i] * sigmoid * (1.0f + g * (1.0f - sigmoid));
  }
}

void attention_packed(const PackedAttention& a, const float* q, const float* k, const float* v, float* out, float* lse,
                      ThreadPool& pool) {
  const int64_t q_width = a.n_heads * a.head_dim, kv_width = a.n_kv_heads * a.head_dim;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const float scale = 1.0f / std::sqrt(float(a.head_dim));
  pool.parallel_for(a.n_tokens * a.n_heads, [&](int64_t begin, int64_t end, int) {
    std::vector<float> scores;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = i / a.n_heads, h = i % a.n_heads, g = h / group;
      const int64_t start = a.segment_start[t];
      const float* qt = q + t * q_width + h * a.head_dim;
      scores.resize(size_t(t - start + 1));
      float max_score = -INFINITY;
      for (int64_t j = start; j <= t; ++j) {
        const float s = dot(qt, k + j * kv_width + g * a.head_dim, a.head_dim) * scale;
        scores[size_t(j - start)] = s;
        max_score = std::max(max_score, s);
      }
      float sum = 0;
      for (float& s : scores) sum += (s = std::exp(s - max_score));
      float* o = out + t * q_width + h * a.head_dim;
      std::fill(o, o + a.head_dim, 0.0f);
      for (int64_t j = start; j <= t; ++j) {
        const float p = scores[size_t(j - start)] / sum;
        const float* vj = v + j * kv_width + g * a.head_dim;
        for (int64_t d = 0; d < a.head_dim; ++d) o[d] += p * vj[d];
      }
      lse[t * a.n_heads + h] = max_score + std::log(sum);
    }
  });
}

void attention_packed_backward(const PackedAttention& a, const float* q, const float* k, const float* v,
                               const float* out, const float* lse, const float* dout, float* dq, float* dk, float* dv,
                               ThreadPool& pool) {
  // With p_j = exp(s_j - lse) and D = dout . out: ds_j = p_j (dout . v_j - D), dq = scale sum ds_j k_j,
  // dk_j += scale ds_j q, dv_j += p_j dout. One task per key/value head owns its dk, dv columns
  // and the dq of its query heads, so no two threads write the same element.
  const int64_t q_width = a.n_heads * a.head_dim, kv_width = a.n_kv_heads * a.head_dim;
  const int64_t group = a.n_heads / a.n_kv_heads, hd = a.head_dim;
  const float scale = 1.0f / std::sqrt(float(hd));
  pool.parallel_for(a.n_kv_heads, [&](int64_t begin, int64_t end, int) {
    for (int64_t g = begin; g < end; ++g) {
      for (int64_t t = 0; t < a.n_tokens; ++t) {
        std::fill(dk + t * kv_width + g * hd, dk + t * kv_width + (g + 1) * hd, 0.0f);
        std::fill(dv + t * kv_width + g * hd, dv + t * kv_width + (g + 1) * hd, 0.0f);
      }
      for (int64_t h = g * group; h < (g + 1) * group; ++h)
        for (int64_t t = 0; t < a.n_tokens; ++t) {
          const float* qt = q + t * q_width + h * hd;
          const float* gt = dout + t * q_width + h * hd;
          float* dqt = dq + t * q_width + h * hd;
          std::fill(dqt, dqt + hd, 0.0f);
          const float d_row = dot(gt, out + t * q_width + h * hd, hd);
          const float row_lse = lse[t * a.n_heads + h];
          for (int64_t j = a.segment_start[t]; j <= t; ++j) {
            const float* kj = k + j * kv_width + g * hd;
            const float* vj = v + j * kv_width + g * hd;
            const float p = std::exp(dot(qt, kj, hd) * scale - row_lse);
            const float ds = p * (dot(gt, vj, hd) - d_row) * scale;
            float* dkj = dk + j * kv_width + g * hd;
            float* dvj = dv + j * kv_width + g * hd;
            for (int64_t d = 0; d < hd; ++d) {
              dqt[d] += ds * kj[d];
              dkj[d] += ds * qt[d];
              dvj[d] += p * gt[d];
            }
          }
        }
    }
  });
}

double cross_entropy(const float* logits, const int32_t* targets, int64_t n, int64_t vocab, float grad_scale,
                     float* dlogits) {
  double total = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float* row = logits + t * vocab;
    float* grad = dlogits ? dlogits + t * vocab : nullptr;
    if (targets[t] < 0) {
      if (grad) std::fill(grad, grad + vocab, 0.0f);
      continue;
    }
    const float max_logit = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(row[i] - max_logit));
    const double log_sum = std::log(sum) + max_logit;
    total += log_sum - row[targets[t]];
    if (grad) {
      for (int64_t i = 0; i < vocab; ++i) grad[i] = float(std::exp(double(row[i]) - log_sum)) * grad_scale;
      grad[targets[t]] -= grad_scale;
    }
  }
  return total;
}

}  // namespace csq::kernels
