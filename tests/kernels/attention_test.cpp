// The fused attention (online softmax over F32, F16 or Q8_0 keys/values) against the reference
// attention_head on the same decoded values.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "kernels/quantize.h"

namespace csq::kernels {
namespace {

struct AttnCase {
  DType kv_type;
  int64_t n_group, head_dim, n_ctx;
};

class FusedAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(FusedAttention, MatchesReferencePerHead) {
  const AttnCase c = GetParam();
  const int64_t n_kv_heads = 2, stride = n_kv_heads * c.head_dim;  // rows hold two kv heads; use the second
  std::mt19937 rng(uint32_t(c.n_ctx * 31 + c.head_dim + c.n_group));
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> q(size_t(c.n_group * c.head_dim));
  for (float& v : q) v = 3.f * normal(rng);  // sharp softmax: large score differences across chunks
  std::vector<float> k_rows(size_t(c.n_ctx * stride)), v_rows(k_rows.size());
  for (float& v : k_rows) v = normal(rng);
  for (float& v : v_rows) v = normal(rng);
  // The cache in its stored type, and the same values decoded for the reference.
  const int64_t row_bytes = csq::row_bytes(c.kv_type, stride);
  std::vector<uint8_t> k_store(size_t(c.n_ctx * row_bytes)), v_store(k_store.size());
  std::vector<float> k_dec(k_rows.size()), v_dec(v_rows.size());
  for (int64_t p = 0; p < c.n_ctx; ++p) {
    quantize_row(c.kv_type, k_rows.data() + p * stride, k_store.data() + p * row_bytes, stride);
    quantize_row(c.kv_type, v_rows.data() + p * stride, v_store.data() + p * row_bytes, stride);
    dequantize_row(c.kv_type, k_store.data() + p * row_bytes, k_dec.data() + p * stride, stride);
    dequantize_row(c.kv_type, v_store.data() + p * row_bytes, v_dec.data() + p * stride, stride);
  }
  const int64_t head_off = c.head_dim;  // second kv head
  const int64_t head_bytes = csq::row_bytes(c.kv_type, c.head_dim);
  std::vector<float> fused(q.size()), ref(c.head_dim), scores(size_t(c.n_ctx));
  attention_group(q.data(), c.n_group, k_store.data() + head_bytes, v_store.data() + head_bytes, c.kv_type, stride,
                  c.n_ctx, c.head_dim, fused.data());
  for (int64_t h = 0; h < c.n_group; ++h) {
    attention_head(q.data() + h * c.head_dim, k_dec.data() + head_off, v_dec.data() + head_off, stride, c.n_ctx,
                   c.head_dim, ref.data(), scores.data());
    for (int64_t d = 0; d < c.head_dim; ++d)
      ASSERT_NEAR(fused[size_t(h * c.head_dim + d)], ref[size_t(d)], 2e-5f * (1.f + std::fabs(ref[size_t(d)])))
          << "head " << h << " dim " << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, FusedAttention,
                         ::testing::Values(AttnCase{DType::F16, 4, 128, 1}, AttnCase{DType::F16, 4, 128, 63},
                                           AttnCase{DType::F16, 4, 128, 200}, AttnCase{DType::F32, 1, 64, 130},
                                           AttnCase{DType::F32, 3, 8, 65}, AttnCase{DType::F16, 2, 12, 70},
                                           AttnCase{DType::F16, 16, 16, 129}, AttnCase{DType::Q8_0, 4, 128, 1},
                                           AttnCase{DType::Q8_0, 4, 128, 200}, AttnCase{DType::Q8_0, 2, 32, 70},
                                           AttnCase{DType::Q8_0, 16, 64, 129}));

}  // namespace
}  // namespace csq::kernels
