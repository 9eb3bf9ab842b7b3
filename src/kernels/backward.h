// The operations training needs beyond the forward pass: the gradient of each forward
// operation with respect to its inputs, attention over packed sequences that keeps what its
// backward pass needs, and the causal-LM cross-entropy. float32 throughout; the reductions have
// a fixed order, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/ops.h"

namespace csq::kernels {

// c[i * ldc + j] += sum_p a[i * lda + p] * b[j * ldb + p] (i < m, j < n, p < k): the dense
// float32 product of training, C += A · B^T with both operands row-major over k. The reference is
// plain loops; the fast version is a register-blocked AVX2 micro-kernel over packed k-panels
// (threads own whole column blocks, so results do not depend on the thread count).
void gemm_nt_ref(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k);
void gemm_nt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
             int64_t k, ThreadPool& pool);

// y = W x as matmul computes it, but never rounding the activations to 8 bits: gradients need
// the exact products. Weights are decoded a tile of rows at a time and multiplied by gemm_nt (as
// QLoRA computes with dequantized weights); a few tokens go through matmul's float kernels.
void matmul_float_activations(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// dx[t, c] = sum_r dy[t, r] w[r, c]: the gradient of y = W x with respect to x, W in its stored
// type (a frozen base weight). dx is [n_tokens, cols], dy [n_tokens, rows]; dx is overwritten.
// The reference decodes one row at a time; the fast version decodes a tile of rows, transposes
// it and runs gemm_nt over it.
void matmul_transposed_ref(const Matrix& w, const float* dy, int64_t n_tokens, float* dx);
void matmul_transposed(const Matrix& w, const float* dy, int64_t n_tokens, float* dx, ThreadPool& pool);

// For y = rmsnorm(x) * weight: dx from dy (n_rows rows of dim). dx may alias dy.
void rmsnorm_backward(const float* x, const float* weight, const float* dy, float* dx, int64_t n_rows, int64_t dim,
                      float eps);

// For h = silu(gate) * up: dgate and dup from dh, given the pre-activation gate and up.
void silu_mul_backward(const float* gate, const float* up, const float* dh, float* dgate, float* dup, int64_t n);

// Causal self-attention over packed examples: token t attends to tokens segment_start[t]..t
// (its own example only). q [n, n_heads*head_dim], k and v [n, n_kv_heads*head_dim], out like q.
// lse [n, n_heads] receives each row's log-sum-exp of the scaled scores, which is all the
// backward pass needs to recompute the probabilities.
struct PackedAttention {
  int64_t n_tokens, n_heads, n_kv_heads, head_dim;
  const int32_t* segment_start;
};
void attention_packed(const PackedAttention& shape, const float* q, const float* k, const float* v, float* out,
                      float* lse, ThreadPool& pool);
// Gradients of attention_packed: dq [n, q width], dk and dv [n, kv width], all overwritten.
void attention_packed_backward(const PackedAttention& shape, const float* q, const float* k, const float* v,
                               const float* out, const float* lse, const float* dout, float* dq, float* dk, float* dv,
                               ThreadPool& pool);

// Cross-entropy of n rows of logits against target ids (rows with target < 0 are ignored).
// Returns the summed loss; when dlogits is non-null writes (softmax - onehot) * grad_scale
// for each row (zero rows for ignored targets). dlogits may alias logits.
double cross_entropy(const float* logits, const int32_t* targets, int64_t n, int64_t vocab, float grad_scale,
                     float* dlogits);

}  // namespace csq::kernels
