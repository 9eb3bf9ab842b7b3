#include "kernels/backward.h"

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

void matmul_transposed(const Matrix& w, const float* dy, int64_t n_tokens, float* dx, ThreadPool& pool) {
  // Column slabs start on block boundaries so that each can be decoded on its own; a tile of
  // decoded rows stays in cache while every token's slab of dx accumulates from it, in row
  // order (the same sums as the reference).
  constexpr int64_t kTileRows = 32, kSlabBlocks = 8;
  const DTypeInfo& info = dtype_info(w.type);
  const int64_t block = info.block_elems;
  const int64_t slab_elems = std::max<int64_t>(block * kSlabBlocks, 256 / block * block);
  const int64_t n_slabs = (w.cols + slab_elems - 1) / slab_elems;
  pool.parallel_for(n_slabs, [&](int64_t begin, int64_t end, int) {
    std::vector<float> tile(size_t(kTileRows * slab_elems));
    for (int64_t s = begin; s < end; ++s) {
      const int64_t c0 = s * slab_elems, width = std::min(slab_elems, w.cols - c0);
      const int64_t byte_offset = c0 / block * info.block_bytes;
      for (int64_t t = 0; t < n_tokens; ++t) std::fill(dx + t * w.cols + c0, dx + t * w.cols + c0 + width, 0.0f);
      for (int64_t r0 = 0; r0 < w.rows; r0 += kTileRows) {
        const int64_t rows = std::min(kTileRows, w.rows - r0);
        for (int64_t i = 0; i < rows; ++i)
          dequantize_row(w.type, w.row(r0 + i) + byte_offset, tile.data() + i * slab_elems, width);
        for (int64_t t = 0; t < n_tokens; ++t) {
          float* out = dx + t * w.cols + c0;
          const float* g = dy + t * w.rows + r0;
          for (int64_t i = 0; i < rows; ++i) {
            const float gi = g[i];
            const float* src = tile.data() + i * slab_elems;
            for (int64_t c = 0; c < width; ++c) out[c] += gi * src[c];
          }
        }
      }
    }
  });
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
