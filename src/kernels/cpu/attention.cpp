// attention_group: the AVX2 kernel where it applies, else the reference per head on decoded rows.
#include <vector>

#include "kernels/cpu/fast_kernels.h"
#include "kernels/ops.h"

namespace csq::kernels {

void attention_group(const float* q, int64_t n_group, const void* k, const void* v, DType kv_type, int64_t kv_stride,
                     int64_t n_ctx, int64_t head_dim, float* out) {
#if CSQ_X86_KERNELS
  if (cpu::use_avx2() && cpu::attention_avx2_fits(n_group, head_dim))
    return cpu::attention_group_avx2(q, n_group, k, v, kv_type, kv_stride, n_ctx, head_dim, out);
#endif
  const int64_t row_stride = csq::row_bytes(kv_type, kv_stride);
  const size_t n = size_t(n_ctx * head_dim);
  std::vector<float> keys(n), values(n), scores(static_cast<size_t>(n_ctx));
  for (int64_t p = 0; p < n_ctx; ++p) {
    dequantize_row(kv_type, static_cast<const uint8_t*>(k) + p * row_stride, keys.data() + p * head_dim, head_dim);
    dequantize_row(kv_type, static_cast<const uint8_t*>(v) + p * row_stride, values.data() + p * head_dim, head_dim);
  }
  for (int64_t h = 0; h < n_group; ++h)
    attention_head(q + h * head_dim, keys.data(), values.data(), head_dim, n_ctx, head_dim, out + h * head_dim,
                   scores.data());
}

}  // namespace csq::kernels
