// Every backward kernel against central finite differences of its forward operation, and the
// fast transposed product against its reference, on random data with odd sizes.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/backward.h"
#include "kernels/quantize.h"

namespace csq::kernels {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// d(sum(weights · f(x)))/dx by central differences in double precision of the perturbation.
std::vector<double> numeric_gradient(std::vector<float> x, const std::function<double(const std::vector<float>&)>& f,
                                     float h = 1e-2f) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float saved = x[i];
    x[i] = saved + h;
    const double up = f(x);
    x[i] = saved - h;
    const double down = f(x);
    x[i] = saved;
    grad[i] = (up - down) / (2.0 * double(h));
  }
  return grad;
}

void expect_close(const std::vector<float>& analytic, const std::vector<double>& numeric, double tolerance) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < numeric.size(); ++i) {
    diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
    norm += numeric[i] * numeric[i];
  }
  EXPECT_LT(std::sqrt(diff / std::max(norm, 1e-30)), tolerance);
}

double weighted_sum(const std::vector<float>& y, const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * w[i];
  return s;
}

TEST(Backward, RmsNormMatchesFiniteDifferences) {
  const int64_t rows = 3, dim = 37;
  const auto x = random_vector(size_t(rows * dim), 1), weight = random_vector(size_t(dim), 2), dy = random_vector(size_t(rows * dim), 3);
  std::vector<float> dx(x.size());
  rmsnorm_backward(x.data(), weight.data(), dy.data(), dx.data(), rows, dim, 1e-6f);
  expect_close(dx, numeric_gradient(x, [&](const std::vector<float>& v) {
    std::vector<float> y(v.size());
    rmsnorm(v.data(), weight.data(), y.data(), rows, dim, 1e-6f);
    return weighted_sum(y, dy);
  }), 1e-3);
  // In place (dx aliasing dy) gives the same.
  std::vector<float> inplace = dy;
  rmsnorm_backward(x.data(), weight.data(), inplace.data(), inplace.data(), rows, dim, 1e-6f);
  EXPECT_EQ(inplace, dx);
}

TEST(Backward, SiluMulMatchesFiniteDifferences) {
  const size_t n = 29;
  const auto gate = random_vector(n, 4, 2.0f), up = random_vector(n, 5), dh = random_vector(n, 6);
  std::vector<float> dgate(n), dup(n);
  silu_mul_backward(gate.data(), up.data(), dh.data(), dgate.data(), dup.data(), int64_t(n));
  expect_close(dgate, numeric_gradient(gate, [&](const std::vector<float>& g) {
    std::vector<float> h = g;
    silu_mul(h.data(), up.data(), int64_t(n));
    return weighted_sum(h, dh);
  }), 1e-3);
  expect_close(dup, numeric_gradient(up, [&](const std::vector<float>& u) {
    std::vector<float> h = gate;
    silu_mul(h.data(), u.data(), int64_t(n));
    return weighted_sum(h, dh);
  }), 1e-3);
}

TEST(Backward, RopeTransposeIsTheInverseRotation) {
  for (bool adjacent : {false, true}) {
    const Rope rope(16, 10000.0, 0, 1, 4, 8192, adjacent);
    const auto x = random_vector(48, 7);
    std::vector<float> y = x;
    rope.apply(y.data(), 3, 1234);
    rope.apply_transposed(y.data(), 3, 1234);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-5) << i;
  }
}

TEST(Backward, PackedAttentionMatchesFiniteDifferences) {
  // Two examples packed (5 and 4 tokens), 4 query heads sharing 2 key/value heads.
  const int64_t n = 9, heads = 4, kv_heads = 2, hd = 6;
  const std::vector<int32_t> starts = {0, 0, 0, 0, 0, 5, 5, 5, 5};
  const PackedAttention shape{n, heads, kv_heads, hd, starts.data()};
  ThreadPool pool(2);
  const auto q = random_vector(size_t(n * heads * hd), 8), k = random_vector(size_t(n * kv_heads * hd), 9),
             v = random_vector(size_t(n * kv_heads * hd), 10), dout = random_vector(size_t(n * heads * hd), 11);
  std::vector<float> out(q.size()), lse(size_t(n * heads));
  attention_packed(shape, q.data(), k.data(), v.data(), out.data(), lse.data(), pool);
  // Each token sees only its own example: token 5 attends to itself alone, so its output is v[5].
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t d = 0; d < hd; ++d)
      EXPECT_NEAR(out[size_t(5 * heads * hd + h * hd + d)], v[size_t(5 * kv_heads * hd + (h / 2) * hd + d)], 1e-6);
  // ... and matches the inference kernel over its own prefix.
  std::vector<float> scores(16), single(static_cast<size_t>(hd));
  attention_head(q.data() + 7 * heads * hd + 3 * hd, k.data() + 5 * kv_heads * hd + hd, v.data() + 5 * kv_heads * hd + hd,
                 kv_heads * hd, 3, hd, single.data(), scores.data());
  for (int64_t d = 0; d < hd; ++d) EXPECT_NEAR(out[size_t(7 * heads * hd + 3 * hd + d)], single[size_t(d)], 1e-5);

  std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
  attention_packed_backward(shape, q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(), dq.data(),
                            dk.data(), dv.data(), pool);
  auto loss = [&](const std::vector<float>& qq, const std::vector<float>& kk, const std::vector<float>& vv) {
    std::vector<float> o(q.size()), l(lse.size());
    attention_packed(shape, qq.data(), kk.data(), vv.data(), o.data(), l.data(), pool);
    return weighted_sum(o, dout);
  };
  expect_close(dq, numeric_gradient(q, [&](const std::vector<float>& x) { return loss(x, k, v); }), 2e-3);
  expect_close(dk, numeric_gradient(k, [&](const std::vector<float>& x) { return loss(q, x, v); }), 2e-3);
  expect_close(dv, numeric_gradient(v, [&](const std::vector<float>& x) { return loss(q, k, x); }), 2e-3);
}

TEST(Backward, CrossEntropyMatchesFiniteDifferences) {
  const int64_t n = 3, vocab = 11;
  const auto logits = random_vector(size_t(n * vocab), 12, 3.0f);
  const std::vector<int32_t> targets = {4, -1, 10};
  std::vector<float> grad(logits.size());
  const double loss = cross_entropy(logits.data(), targets.data(), n, vocab, 0.5f, grad.data());
  EXPECT_GT(loss, 0);
  for (int64_t i = 0; i < vocab; ++i) EXPECT_EQ(grad[size_t(vocab + i)], 0.0f);  // ignored row
  expect_close(grad, numeric_gradient(logits, [&](const std::vector<float>& x) {
    return 0.5 * cross_entropy(x.data(), targets.data(), n, vocab, 0, nullptr);
  }), 1e-3);
}

TEST(Backward, GemmMatchesTheReferenceWithOddSizesAndStrides) {
  ThreadPool pool(2);
  for (auto [m, n, k] : {std::array<int64_t, 3>{1, 1, 1}, {7, 17, 300}, {13, 5, 257}, {64, 48, 512}, {5, 33, 9}}) {
    const int64_t lda = k + 3, ldb = k + 1, ldc = n + 2;
    const auto a = random_vector(size_t(m * lda), 16), b = random_vector(size_t(n * ldb), 17);
    auto want = random_vector(size_t(m * ldc), 18);
    auto got = want;
    gemm_nt_ref(a.data(), lda, b.data(), ldb, want.data(), ldc, m, n, k);
    gemm_nt(a.data(), lda, b.data(), ldb, got.data(), ldc, m, n, k, pool);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << m << "x" << n << "x" << k;
    // Thread count never changes a result.
    ThreadPool one(1);
    auto single = random_vector(size_t(m * ldc), 18);
    gemm_nt(a.data(), lda, b.data(), ldb, single.data(), ldc, m, n, k, one);
    EXPECT_EQ(single, got);
  }
}

TEST(Backward, FrozenWeightProductsMatchTheReferenceForEveryWeightType) {
  ThreadPool pool(2);
  for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t block = dtype_info(type).block_elems;
    const int64_t rows = 173, cols = block == 256 ? 768 : block * 21;  // a slab and a partial one, odd rows
    const auto values = random_vector(size_t(rows * cols), 13);
    std::vector<uint8_t> bytes(size_t(rows * row_bytes(type, cols)));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(type, values.data() + r * cols, bytes.data() + r * row_bytes(type, cols), cols);
    const Matrix w{type, rows, cols, bytes.data()};
    for (const int64_t tokens : {int64_t(7), int64_t(40)}) {
    const auto dy = random_vector(size_t(tokens * rows), 14);
    std::vector<float> want(size_t(tokens * cols)), got(size_t(tokens * cols), 123.0f);
    matmul_transposed_ref(w, dy.data(), tokens, want.data());
    matmul_transposed(w, dy.data(), tokens, got.data(), pool);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << dtype_info(type).name << " " << i;
    // And it is the transpose of the forward product: <W^T dy, x> = <dy, W x>.
    const auto x = random_vector(size_t(tokens * cols), 15);
    std::vector<float> y(size_t(tokens * rows)), y_fast(y.size());
    matmul_ref(w, x.data(), tokens, y.data(), pool);
    // The forward product training uses keeps the activations exact.
    matmul_float_activations(w, x.data(), tokens, y_fast.data(), pool);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y_fast[i], y[i], 1e-4f * (1 + std::fabs(y[i]))) << dtype_info(type).name;
    EXPECT_NEAR(weighted_sum(want, x), weighted_sum(y, dy), 1e-3 * std::fabs(weighted_sum(y, dy)) + 1e-2);
    }
  }
}

}  // namespace
}  // namespace csq::kernels
