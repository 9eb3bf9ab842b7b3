#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/ops.h"

namespace csq::kernels {

float dot(const float* a, const float* b, int64_t n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l) lanes[l] += a[i] * b[i];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

void matmul_ref(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  pool.parallel_for(w.rows, [&](int64_t begin, int64_t end, int) {
    std::vector<float> row(size_t(w.cols));
    for (int64_t r = begin; r < end; ++r) {
      dequantize_row(w.type, w.row(r), row.data(), w.cols);
      for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + r] = dot(row.data(), x + t * w.cols, w.cols);
    }
  });
}

void embedding_lookup(const Matrix& table, const int32_t* ids, int64_t n_tokens, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) dequantize_row(table.type, table.row(ids[t]), out + t * table.cols, table.cols);
}

void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    const float mean_square = dot(xr, xr, dim) / float(dim);
    const float inv = 1.0f / std::sqrt(mean_square + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * inv);
  }
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

Rope::Rope(int64_t head_dim, double theta, double llama3_factor, double llama3_low, double llama3_high,
           double llama3_original_context, bool adjacent_pairs)
    : head_dim_(head_dim), adjacent_pairs_(adjacent_pairs) {
  const int64_t half = head_dim / 2;
  inv_freq_.resize(size_t(half));
  // float32 throughout, in the order transformers evaluates it.
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = float(2 * i) / float(head_dim);
    inv_freq_[i] = 1.0f / std::pow(float(theta), exponent);
  }
  if (llama3_factor > 0) {
    const float factor = float(llama3_factor), low = float(llama3_low), high = float(llama3_high);
    const float old_context = float(llama3_original_context);
    const float low_freq_wavelen = old_context / low;
    const float high_freq_wavelen = old_context / high;
    for (float& f : inv_freq_) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const float smooth = (old_context / wavelen - low) / (high - low);
        f = (1.0f - smooth) * scaled / factor + smooth * scaled;
      } else {
        f = scaled;
      }
    }
  }
}

void Rope::divide_frequencies(const std::vector<float>& factors) {
  for (size_t i = 0; i < inv_freq_.size() && i < factors.size(); ++i) inv_freq_[i] /= factors[i];
}

void Rope::rotate(float* heads, int64_t n_heads, int64_t position, float direction) const {
  const int64_t half = head_dim_ / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = float(position) * inv_freq_[i];
    const float c = std::cos(angle), s = direction * std::sin(angle);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = heads + h * head_dim_;
      float* a = adjacent_pairs_ ? v + 2 * i : v + i;
      float* b = adjacent_pairs_ ? v + 2 * i + 1 : v + i + half;
      const float x0 = *a, x1 = *b;
      *a = x0 * c - x1 * s;
      *b = x1 * c + x0 * s;
    }
  }
}

void attention_head(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_ctx,
                    int64_t head_dim, float* out, float* scores) {
  const float scale = 1.0f / std::sqrt(float(head_dim));
  float max_score = -INFINITY;
  for (int64_t p = 0; p < n_ctx; ++p) {
    scores[p] = dot(q, k + p * kv_stride, head_dim) * scale;
    max_score = std::max(max_score, scores[p]);
  }
  float sum = 0;
  for (int64_t p = 0; p < n_ctx; ++p) {
    scores[p] = std::exp(scores[p] - max_score);
    sum += scores[p];
  }
  const float inv_sum = 1.0f / sum;
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t p = 0; p < n_ctx; ++p) {
    const float weight = scores[p] * inv_sum;
    const float* vp = v + p * kv_stride;
    for (int64_t d = 0; d < head_dim; ++d) out[d] += weight * vp[d];
  }
}

}  // namespace csq::kernels
