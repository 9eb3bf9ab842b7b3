// BF16 weights with the AVX512-BF16 dot product (vdpbf16ps: 16 lanes, each adding the products of
// two adjacent bf16 pairs to a float accumulator), with CSQ_KERNELS=bf16dp on a CPU that has it.
// Not the default: on an Intel Xeon (Sapphire Rapids class) the instruction's probe gives half the
// multiply-adds per second of the 512-bit FMA, and this kernel lost to the AVX-512 float tile on
// 128-token products at every measurement (docs/performance.md); Zen 5 is yet to be timed.
//
// Activations rounded once to bf16 (as llama.cpp does) miss the engine's fixture tolerances by a
// factor of four (logits 4e-3 of the largest away from the float32 reference, greedy tokens
// diverging). So each activation is split into two bf16 parts, x = hi + lo + r with hi = bf16(x),
// lo = bf16(x - hi) and |r| <= 2^-16 |x| (ActFormat::BF16); the bf16 x bf16 products are exact in
// float, and a result lies within 2^-16 * sum |w_i x_i| of the float product plus float
// accumulation (not bit-identical to the float kernels). The instruction treats bf16 subnormals
// (below 1.2e-38) as zero. Two products per multiply-add is the float FMA's rate, but the weights
// go in as stored: no widening shifts and shuffles on the multiply ports.
//
// Every (row, token) result follows one arithmetic whichever kernel computes it: a 16-lane
// accumulator for the hi parts and one for the lo parts, each over the columns in order, 32 at a
// time, the column tail as a last masked step, then the two added and reduced. The row kernel
// (generation) and the tile kernel (several tokens) both follow it, so a token's result never
// depends on how tokens were batched, and a last partial group of rows can go to the row kernel.
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/fast_kernels.h"

#if defined(__clang__)
#pragma clang attribute push(                                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/cpu/simd_common.h"

namespace csq::kernels::cpu {
namespace {

constexpr int64_t kStep = 32;  // columns per vdpbf16ps

inline __m512bh load_bf16(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
// The first n (< 32) columns at p, zeros after: zero products leave the sums as they are.
inline __m512bh load_bf16_head(const uint16_t* p, int64_t n) {
  return (__m512bh)_mm512_maskz_loadu_epi16((__mmask32(1) << n) - 1, p);
}
inline __m512 dp(__m512 acc, __m512bh w, __m512bh x) { return _mm512_dpbf16_ps(acc, w, x); }

// The last masked step of one (row, token) into both accumulators, then the result. x: the hi
// parts; the lo parts follow cols elements later.
inline float finish(const uint16_t* w, const uint16_t* x, int64_t cols, __m512 hi, __m512 lo) {
  const int64_t body = cols / kStep * kStep;
  if (body < cols) {
    const __m512bh wv = load_bf16_head(w + body, cols - body);
    hi = dp(hi, wv, load_bf16_head(x + body, cols - body));
    lo = dp(lo, wv, load_bf16_head(x + cols + body, cols - body));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(hi, lo));
}

// ---- generation: one row against 1..kMaxTokens tokens, the row read in place ----

template <int N>
struct Bf16Dot {
  static void run(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
    const uint16_t* w = static_cast<const uint16_t*>(w_row);
    const uint16_t* xs[N];
    for (int t = 0; t < N; ++t) xs[t] = x_row<uint16_t>(x, x_stride, t);
    __m512 hi[N], lo[N];
    for (int t = 0; t < N; ++t) hi[t] = lo[t] = _mm512_setzero_ps();
    const int64_t body = cols / kStep * kStep;
    for (int64_t c = 0; c < body; c += kStep) {
      prefetch_ahead(w + c, kStep * 2);
      const __m512bh wv = load_bf16(w + c);
      for (int t = 0; t < N; ++t) {
        hi[t] = dp(hi[t], wv, load_bf16(xs[t] + c));
        lo[t] = dp(lo[t], wv, load_bf16(xs[t] + cols + c));
      }
    }
    for (int t = 0; t < N; ++t) out[t] = finish(w, xs[t], cols, hi[t], lo[t]);
  }
};

// ---- several tokens: register blocks of 4 rows x up to 6 tokens ----
//
// Per step, 4 weight and 6 activation loads feed 24 vdpbf16ps into 24 accumulators (29 of the 32
// vector registers). Columns go kChunkCols at a time so that the 8 rows' slice (16 KB) stays in L1
// while every token passes; the accumulators wait in memory between chunks, and the hi and the lo
// parts run as passes of their own, so each accumulator still sees its steps in column order.
constexpr int kBlockRows = 4;
constexpr int kBlockTokens = 6;
constexpr int64_t kChunkCols = 1024;

// Steps c_first, c_first + kStep, ... of rows w[0..3] against one part (xs[t] + part offset) of
// tokens xs[0..T-1]; the accumulator of row r and token t at acc + (r * n_tok + t) * 16.
template <int T>
void bf16_block(const uint16_t* const* w, const uint16_t* const* xs, int64_t c_first, int64_t n_steps, float* acc,
                int64_t n_tok) {
  __m512 a[kBlockRows][T];
  for (int r = 0; r < kBlockRows; ++r)
    for (int t = 0; t < T; ++t) a[r][t] = _mm512_loadu_ps(acc + (r * n_tok + t) * 16);
  for (int64_t k = 0; k < n_steps; ++k) {
    const int64_t c = c_first + kStep * k;
    __m512bh wv[kBlockRows];
    for (int r = 0; r < kBlockRows; ++r) wv[r] = load_bf16(w[r] + c);
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = load_bf16(xs[t] + c);
      for (int r = 0; r < kBlockRows; ++r) a[r][t] = dp(a[r][t], wv[r], xv);
    }
  }
  for (int r = 0; r < kBlockRows; ++r)
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(acc + (r * n_tok + t) * 16, a[r][t]);
}

void rows8_bf16(const uint8_t* w_rows, int64_t w_row_bytes, const void* x, int64_t x_stride, int64_t n_tok, int64_t cols,
                float* out, int64_t out_stride) {
  const uint16_t* rows[8];
  for (int r = 0; r < 8; ++r) rows[r] = reinterpret_cast<const uint16_t*>(w_rows + r * w_row_bytes);
  const auto token = [&](int64_t t) { return x_row<uint16_t>(x, x_stride, int(t)); };
  const int64_t body = cols / kStep * kStep;
  // [part (hi, lo)][row][token] x 16 lanes
  thread_local std::vector<float> acc;
  acc.assign(size_t(2 * 8 * n_tok * 16), 0.f);
  for (int64_t c0 = 0; c0 < body; c0 += kChunkCols) {
    const int64_t n_steps = (std::min(body, c0 + kChunkCols) - c0) / kStep;
    for (int part = 0; part < 2; ++part)
      for (int q = 0; q < 8 / kBlockRows; ++q)
        for (int64_t t0 = 0; t0 < n_tok; t0 += kBlockTokens) {
          const uint16_t* xs[kBlockTokens];
          const int n = int(std::min<int64_t>(kBlockTokens, n_tok - t0));
          for (int t = 0; t < n; ++t) xs[t] = token(t0 + t) + part * cols;
          float* a = acc.data() + ((part * 8 + q * kBlockRows) * n_tok + t0) * 16;
          const uint16_t* const* w = rows + q * kBlockRows;
          switch (n) {
            case 1: bf16_block<1>(w, xs, c0, n_steps, a, n_tok); break;
            case 2: bf16_block<2>(w, xs, c0, n_steps, a, n_tok); break;
            case 3: bf16_block<3>(w, xs, c0, n_steps, a, n_tok); break;
            case 4: bf16_block<4>(w, xs, c0, n_steps, a, n_tok); break;
            case 5: bf16_block<5>(w, xs, c0, n_steps, a, n_tok); break;
            default: bf16_block<6>(w, xs, c0, n_steps, a, n_tok); break;
          }
        }
  }
  for (int r = 0; r < 8; ++r)
    for (int64_t t = 0; t < n_tok; ++t)
      out[t * out_stride + r] = finish(rows[r], token(t), cols, _mm512_loadu_ps(acc.data() + (r * n_tok + t) * 16),
                                       _mm512_loadu_ps(acc.data() + ((8 + r) * n_tok + t) * 16));
}

// From two tokens on the register blocks pay: each weight load feeds every token of the block.
constexpr RowKernel kBF16Dp{ActFormat::BF16, dot_for_tokens<Bf16Dot>, rows8_bf16, 2};

}  // namespace

const RowKernel* avx512_bf16_kernel() { return &kBF16Dp; }

void split_act_bf16(const float* x, uint16_t* dst, int64_t n) {
  // hi = bf16(x), lo = bf16(x - hi); x - hi is exact in float.
  const auto split = [](__m512 v, __m256i& hi, __m256i& lo) {
    const __m256bh h = _mm512_cvtneps_pbh(v);
    const __m512 h32 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
    hi = (__m256i)h;
    lo = (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(v, h32));
  };
  int64_t i = 0;
  __m256i hi, lo;
  for (; i + 16 <= n; i += 16) {
    split(_mm512_loadu_ps(x + i), hi, lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + n + i), lo);
  }
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    split(_mm512_maskz_loadu_ps(m, x + i), hi, lo);
    _mm256_mask_storeu_epi16(dst + i, m, hi);
    _mm256_mask_storeu_epi16(dst + n + i, m, lo);
  }
}

float probe_bf16_dp(int64_t rounds) {
  // Twelve chains, as the other probes; the activations pass an empty asm statement every round.
  __m512 acc[12];
  __m512bh w[12];
  for (int i = 0; i < 12; ++i) {
    w[i] = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.f + 0.01f * float(i)), _mm512_set1_ps(1.f));
    acc[i] = _mm512_setzero_ps();
  }
  __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-7f), _mm512_set1_ps(1e-7f));
  for (int64_t r = 0; r < rounds; ++r) {
    __asm__ volatile("" : "+v"(x));
    for (int i = 0; i < 12; ++i) acc[i] = dp(acc[i], w[i], x);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

}  // namespace csq::kernels::cpu

#include "kernels/cpu/avx512_end.h"

#endif  // x86
