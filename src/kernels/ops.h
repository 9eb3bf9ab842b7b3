// The numerical operations of a decoder forward pass. Most are the plain reference versions:
// float32 arithmetic, fixed summation order (results never depend on the thread count).
// matmul is the fast ISA-dispatched product (cpu/matmul*.cpp), checked against matmul_ref.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/dtype.h"

namespace csq::kernels {

// A row-major weight matrix in its stored type: rows = output features, cols = input features.
// (HF shape [out, in]; GGUF dims [in, out].)
struct Matrix {
  DType type = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  int64_t row_bytes() const { return csq::row_bytes(type, cols); }
  const uint8_t* row(int64_t r) const { return data + r * row_bytes(); }
};

// y[t, r] = sum_c w[r, c] * x[t, c] for t < n_tokens. x is [n_tokens, cols], y is [n_tokens, rows].
// Reference: each row decoded exactly to float, float32 dot products.
void matmul_ref(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// The same product with the fastest kernel this CPU has: AVX2 float kernels for F32/F16/BF16,
// AVX2 integer kernels for Q8_0/Q4_0/Q4_K/Q5_K/Q6_K (on CPUs with AVX-512 VNNI, AVX-512 kernels
// for F32/F16/BF16/Q8_0/Q4_K/Q6_K, bit-identical to the AVX2 ones; on 64-bit ARM NEON kernels for
// the same types, bit-identical too), the reference otherwise;
// CSQ_KERNELS=avx2 keeps an AVX-512 CPU on the AVX2 kernels. On CPUs with AMX (and an OS that
// grants it) every BF16 product takes the AMX tile product, each activation split into two bf16
// parts as with bf16dp below (same bound; not bit-identical to the float row kernels, which AMX
// replaces for every token count), and Q8_0, Q4_K and Q6_K weights the AMX int8 tile product from
// cpu::amx_int8_min_tokens tokens on (bit-identical to the row kernels); CSQ_KERNELS=avx512 turns
// AMX off. CSQ_KERNELS=bf16dp (CPUs with
// AVX512-BF16) gives BF16 weights the bf16 dot product instead, each activation split into two
// bf16 parts (a result within 2^-16 * sum |w_i x_i| of the float product, not bit-identical to it). The integer kernels
// round the activations to 8 bits per block first, exactly as llama.cpp's CPU backend does
// (Q8_0 levels for Q8_0/Q4_0 weights, Q8_K for the k-quants), so they differ from matmul_ref by
// that rounding and agree with llama.cpp. CSQ_KERNELS=float sends quantized weights to the
// reference instead; CSQ_KERNELS=reference sends everything there. Rows are split between
// threads, never a sum, so results do not depend on the thread count.
void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// Which arithmetic matmul uses for a weight type on this CPU, and the peak rate of each with
// every thread of the pool busy (multiply-adds per second, measured by register-only probes of
// the kernels' inner instructions; 0 where matmul has no such kernel here). csq bench divides a
// prompt's multiply-adds by these for its compute roofline.
// AmxBF16Split: AMX bf16 tiles with split activations, two tile multiply-adds per model one.
// AmxInt8: AMX int8 tiles (Q8_0, Q4_K, Q6_K), also two tile multiply-adds per model one (k-quants:
// two byte planes per weight; Q8_0: half-depth tiles, one 32-level block per product).
enum class MatmulArithmetic { Int8, Float, BF16, AmxBF16Split, AmxInt8, Reference };
// The kernel set matmul runs here: "avx512-amx" (AVX-512 with AMX for prompts of BF16 weights and
// for prompts and decode batches of Q8_0, Q4_K and Q6_K weights),
// "avx512-bf16dp" (CSQ_KERNELS=bf16dp: AVX-512 with the bf16 dot
// product for BF16 weights), "avx512" (with AVX2 for the types it lacks), "avx2", "neon"
// (64-bit ARM: Q8_0, Q4_K, Q6_K and float weights) or "reference".
const char* matmul_kernel_set();
MatmulArithmetic matmul_arithmetic(DType weight_type);
// Why matmul does not use AMX here ("" where it does): the CPU lacks it, the OS or the Linux
// kernel refused the tile state, or CSQ_KERNELS chose another kernel set.
const char* matmul_amx_problem();
struct ComputePeak {
  double int8_macs_per_s = 0;
  double float_macs_per_s = 0;
  double bf16_macs_per_s = 0;  // the bf16 dot product, where the CPU has AVX512-BF16
  // The AMX tile products (TDPBF16PS, TDPBSSD), where the CPU has AMX and the OS grants it.
  double amx_bf16_macs_per_s = 0;
  double amx_int8_macs_per_s = 0;
};
ComputePeak measure_compute_peak(ThreadPool& pool);

// out[t, :] = table row ids[t], decoded to float.
void embedding_lookup(const Matrix& table, const int32_t* ids, int64_t n_tokens, float* out);

// y = x / sqrt(mean(x^2) + eps) * weight, for each of n_rows rows of length dim (in place allowed).
void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim, float eps);

// gate[i] = silu(gate[i]) * up[i]
void silu_mul(float* gate, const float* up, int64_t n);

// x[i] += y[i]
void add_inplace(float* x, const float* y, int64_t n);

// Dot product with a fixed 8-lane summation order.
float dot(const float* a, const float* b, int64_t n);

// Rotary position embedding with precomputed float32 inverse frequencies, computed as
// Hugging Face does (float32 angle = position * inv_freq, then cos/sin).
class Rope {
 public:
  Rope(int64_t head_dim, double theta, double llama3_factor, double llama3_low, double llama3_high,
       double llama3_original_context, bool adjacent_pairs);
  // Rotates n_heads consecutive vectors of head_dim at `position`.
  void apply(float* heads, int64_t n_heads, int64_t position) const { rotate(heads, n_heads, position, 1.0f); }
  // The transposed (inverse) rotation: turns the gradient of rotated vectors into the gradient
  // of the vectors before rotation.
  void apply_transposed(float* heads, int64_t n_heads, int64_t position) const {
    rotate(heads, n_heads, position, -1.0f);
  }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  bool adjacent_pairs() const { return adjacent_pairs_; }
  // llama.cpp's rope_freqs tensor (Llama-3 scaling stored in GGUF): frequency i is divided by factors[i].
  void divide_frequencies(const std::vector<float>& factors);

 private:
  int64_t head_dim_;
  void rotate(float* heads, int64_t n_heads, int64_t position, float direction) const;

  bool adjacent_pairs_;
  std::vector<float> inv_freq_;  // head_dim / 2 entries
};

// Attention of one query head over n_ctx cached positions: softmax(q.k / sqrt(head_dim)) . v.
// q, out: [head_dim]; the key and value of position p are at k + p * kv_stride and v + p * kv_stride;
// scores: scratch of n_ctx floats.
void attention_head(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_ctx,
                    int64_t head_dim, float* out, float* scores);

// Fused attention of the n_group query heads that share one key/value head: a single pass over
// the cache with an online softmax (running max and sum, rescaled per chunk of positions), so
// K and V are read once for the whole group. q, out: [n_group, head_dim]; the key and value of
// position p are rows of kv_type (F32, F16 or Q8_0; Q8_0 rows start at a block) at element
// offset p * kv_stride of k and v.
// Matches attention_head on the decoded keys and values up to float rounding.
void attention_group(const float* q, int64_t n_group, const void* k, const void* v, DType kv_type, int64_t kv_stride,
                     int64_t n_ctx, int64_t head_dim, float* out);

}  // namespace csq::kernels
