// ARM NEON row kernels for the fast matrix product (64-bit ARM, where NEON is always present):
// Q8_0, Q4_K and Q6_K weights with 8-bit activations, F32/F16/BF16 weights with float ones.
//
// Each kernel computes a block's exact integer sums (vmull_s8 products, pairwise widening adds)
// and then exactly the float operations of the AVX2 row kernel, in the same order — a fused
// multiply-add per block sum for the integer formats, two 8-lane accumulators and the same final
// additions for the float ones — so an ARM machine gives the same bits as an x86 one.
// row_model.h (tests) holds that arithmetic in plain C++; the tests check both ISAs against it.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "base/half.h"
#include "kernels/cpu/fast_kernels.h"

namespace csq::kernels::cpu {
namespace {

using quants::BlockQ4_K;
using quants::BlockQ6_K;
using quants::BlockQ8_0;
using quants::BlockQ8_K;
using quants::QK_K;

// Sum of a[i] * b[i] over 16 signed bytes whose pairwise products add up within int16.
inline int32x4_t dot16(int8x16_t a, int8x16_t b) {
  const int16x8_t p = vmlal_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), vget_high_s8(a), vget_high_s8(b));
  return vpaddlq_s16(p);
}

// ---- Q8_0 (BlockQ8x32 activations) ----

template <int N>
void dot_q8_0(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(w_row);
  float acc[N] = {};
  for (int64_t b = 0; b < cols / 32; ++b) {
    const int8x16_t w0 = vld1q_s8(w[b].qs), w1 = vld1q_s8(w[b].qs + 16);
    const float dw = f16_to_f32(w[b].d);
    for (int t = 0; t < N; ++t) {
      const BlockQ8x32& xb = x_row<BlockQ8x32>(x, x_stride, t)[b];
      // Products reach 128 * 127, two of them 32512: within int16.
      const int32_t sum = vaddvq_s32(vaddq_s32(dot16(w0, vld1q_s8(xb.qs)), dot16(w1, vld1q_s8(xb.qs + 16))));
      acc[t] = std::fma(dw * xb.d, float(sum), acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) out[t] = acc[t];
}

// ---- Q4_K (Q8_K activations) ----

template <int N>
void dot_q4_k(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const BlockQ4_K* w = static_cast<const BlockQ4_K*>(w_row);
  float acc[N] = {};
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  for (int64_t b = 0; b < cols / QK_K; ++b) {
    int32_t scales[8], mins[8];
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, mn;
      quants::scale_min_k4(j, w[b].scales, sc, mn);
      scales[j] = sc;
      mins[j] = mn;
    }
    int32_t levels[N] = {}, min_sums[N] = {};
    for (int i = 0; i < 4; ++i) {
      // 32 bytes: sub-block 2i in the low nibbles, 2i+1 in the high ones.
      const uint8x16_t r0 = vld1q_u8(w[b].qs + 32 * i), r1 = vld1q_u8(w[b].qs + 32 * i + 16);
      const int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(r0, low4)), lo1 = vreinterpretq_s8_u8(vandq_u8(r1, low4));
      const int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(r0, 4)), hi1 = vreinterpretq_s8_u8(vshrq_n_u8(r1, 4));
      for (int t = 0; t < N; ++t) {
        const int8_t* xq = x_row<BlockQ8_K>(x, x_stride, t)[b].qs + 64 * i;
        const int32_t s_lo = vaddvq_s32(vaddq_s32(dot16(lo0, vld1q_s8(xq)), dot16(lo1, vld1q_s8(xq + 16))));
        const int32_t s_hi = vaddvq_s32(vaddq_s32(dot16(hi0, vld1q_s8(xq + 32)), dot16(hi1, vld1q_s8(xq + 48))));
        levels[t] += scales[2 * i] * s_lo + scales[2 * i + 1] * s_hi;
      }
    }
    for (int t = 0; t < N; ++t) {
      const BlockQ8_K& xb = x_row<BlockQ8_K>(x, x_stride, t)[b];
      for (int j = 0; j < 8; ++j) min_sums[t] += mins[j] * (xb.bsums[2 * j] + xb.bsums[2 * j + 1]);
    }
    const float d = f16_to_f32(w[b].d), dmin = f16_to_f32(w[b].dmin);
    for (int t = 0; t < N; ++t) {
      const float dx = x_row<BlockQ8_K>(x, x_stride, t)[b].d;
      acc[t] = std::fma(d * dx, float(levels[t]), acc[t]);
      acc[t] = std::fma(-dmin * dx, float(min_sums[t]), acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) out[t] = acc[t];
}

// ---- Q6_K (Q8_K activations) ----

template <int N>
void dot_q6_k(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const BlockQ6_K* w = static_cast<const BlockQ6_K*>(w_row);
  float acc[N] = {};
  const uint8x16_t low4 = vdupq_n_u8(0x0F), low2 = vdupq_n_u8(3);
  const int8x16_t bias = vdupq_n_s8(32);
  for (int64_t b = 0; b < cols / QK_K; ++b) {
    // The signed levels (-32..31) in element order, 16 at a time.
    int8x16_t q[16];
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 2; ++k) {
        // Elements 128h + 16k + e (e < 16) and the ones 32, 64 and 96 further on.
        const uint8x16_t ql0 = vld1q_u8(w[b].ql + 64 * h + 16 * k), ql1 = vld1q_u8(w[b].ql + 64 * h + 32 + 16 * k);
        const uint8x16_t qh = vld1q_u8(w[b].qh + 32 * h + 16 * k);
        const auto level = [&](uint8x16_t low, int shift) {
          const uint8x16_t high = vshlq_n_u8(vandq_u8(vshlq_u8(qh, vdupq_n_s8(int8_t(-shift))), low2), 4);
          return vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, high)), bias);
        };
        q[8 * h + k] = level(vandq_u8(ql0, low4), 0);
        q[8 * h + 2 + k] = level(vandq_u8(ql1, low4), 2);
        q[8 * h + 4 + k] = level(vshrq_n_u8(ql0, 4), 4);
        q[8 * h + 6 + k] = level(vshrq_n_u8(ql1, 4), 6);
      }
    const float d = f16_to_f32(w[b].d);
    for (int t = 0; t < N; ++t) {
      const BlockQ8_K& xb = x_row<BlockQ8_K>(x, x_stride, t)[b];
      int32_t sum = 0;
      for (int g = 0; g < 16; ++g) sum += int32_t(w[b].scales[g]) * vaddvq_s32(dot16(q[g], vld1q_s8(xb.qs + 16 * g)));
      acc[t] = std::fma(d * xb.d, float(sum), acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) out[t] = acc[t];
}

// ---- float weights ----

template <DType T>
inline float32x4_t load_w4(const void* w, int64_t i) {
  if constexpr (T == DType::F32) {
    return vld1q_f32(static_cast<const float*>(w) + i);
  } else if constexpr (T == DType::F16) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(static_cast<const uint16_t*>(w) + i)));
  } else {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(static_cast<const uint16_t*>(w) + i), 16));
  }
}

// The AVX2 kernel's two 8-lane accumulators as four 4-lane ones (a: columns 0-7 of each 16,
// b: 8-15), and its final sum: (a + b), then the upper half onto the lower, then pairs.
template <int N, DType T>
void dot_float(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  float32x4_t a_lo[N], a_hi[N], b_lo[N], b_hi[N];
  for (int t = 0; t < N; ++t) a_lo[t] = a_hi[t] = b_lo[t] = b_hi[t] = vdupq_n_f32(0.f);
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const float32x4_t w0 = load_w4<T>(w_row, c), w1 = load_w4<T>(w_row, c + 4);
    const float32x4_t w2 = load_w4<T>(w_row, c + 8), w3 = load_w4<T>(w_row, c + 12);
    for (int t = 0; t < N; ++t) {
      const float* xt = x_row<float>(x, x_stride, t) + c;
      a_lo[t] = vfmaq_f32(a_lo[t], w0, vld1q_f32(xt));
      a_hi[t] = vfmaq_f32(a_hi[t], w1, vld1q_f32(xt + 4));
      b_lo[t] = vfmaq_f32(b_lo[t], w2, vld1q_f32(xt + 8));
      b_hi[t] = vfmaq_f32(b_hi[t], w3, vld1q_f32(xt + 12));
    }
  }
  for (int t = 0; t < N; ++t) {
    const float32x4_t s = vaddq_f32(vaddq_f32(a_lo[t], b_lo[t]), vaddq_f32(a_hi[t], b_hi[t]));
    float total = (vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 2)) + (vgetq_lane_f32(s, 1) + vgetq_lane_f32(s, 3));
    const float* xt = x_row<float>(x, x_stride, t);
    for (int64_t i = c; i < cols; ++i) total = std::fma(scalar_w<T>(w_row, i), xt[i], total);
    out[t] = total;
  }
}

template <int N> struct Q8_0K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q8_0<N>(w, x, s, c, o); } };
template <int N> struct Q4_KK { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q4_k<N>(w, x, s, c, o); } };
template <int N> struct Q6_KK { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q6_k<N>(w, x, s, c, o); } };
template <int N> struct F32K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_float<N, DType::F32>(w, x, s, c, o); } };
template <int N> struct F16K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_float<N, DType::F16>(w, x, s, c, o); } };
template <int N> struct BF16K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_float<N, DType::BF16>(w, x, s, c, o); } };

constexpr RowKernel kQ8_0{ActFormat::Q8x32, dot_for_tokens<Q8_0K>};
constexpr RowKernel kQ4_K{ActFormat::Q8K, dot_for_tokens<Q4_KK>};
constexpr RowKernel kQ6_K{ActFormat::Q8K, dot_for_tokens<Q6_KK>};
constexpr RowKernel kF32{ActFormat::F32, dot_for_tokens<F32K>};
constexpr RowKernel kF16{ActFormat::F32, dot_for_tokens<F16K>};
constexpr RowKernel kBF16{ActFormat::F32, dot_for_tokens<BF16K>};

}  // namespace

const RowKernel* neon_kernel(DType weight_type) {
  switch (weight_type) {
    case DType::Q8_0: return &kQ8_0;
    case DType::Q4_K: return &kQ4_K;
    case DType::Q6_K: return &kQ6_K;
    case DType::F32: return &kF32;
    case DType::F16: return &kF16;
    case DType::BF16: return &kBF16;
    default: return nullptr;
  }
}

}  // namespace csq::kernels::cpu

#endif  // __aarch64__
