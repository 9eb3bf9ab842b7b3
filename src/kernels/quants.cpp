#include "kernels/quants.h"

#include <cstring>

#include "base/half.h"

// The decoded floats must equal ggml's bit for bit, and ggml's reference C is built without
// FMA contraction; forbid it here too (GCC fuses across statements even in ISO mode).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace csq::quants {

// Each decoder evaluates, per element, the same float expression as ggml's dequantize_row_*:
// an int quant converted to float, multiplied by the fp16-decoded scale (and, where the format
// has one, the min added or subtracted last), in ggml's order of operations.

void dequantize_q4_0(const BlockQ4_0* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_0; ++i, dst += QK4_0) {
    const BlockQ4_0& b = src[i];
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      dst[j] = float((b.qs[j] & 0xF) - 8) * d;
      dst[j + QK4_0 / 2] = float((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const BlockQ4_1* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_1; ++i, dst += QK4_1) {
    const BlockQ4_1& b = src[i];
    const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      dst[j] = float(b.qs[j] & 0xF) * d + m;
      dst[j + QK4_1 / 2] = float(b.qs[j] >> 4) * d + m;
    }
  }
}

// Q5_0/Q5_1: bit j of the little-endian 32-bit qh is the fifth bit of element j.
static uint32_t load_qh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

void dequantize_q5_0(const BlockQ5_0* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK5_0; ++i, dst += QK5_0) {
    const BlockQ5_0& b = src[i];
    const float d = f16_to_f32(b.d);
    const uint32_t qh = load_qh(b.qh);
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int lo = (b.qs[j] & 0xF) | int((qh >> j) & 1) << 4;
      const int hi = (b.qs[j] >> 4) | int((qh >> (j + QK5_0 / 2)) & 1) << 4;
      dst[j] = float(lo - 16) * d;
      dst[j + QK5_0 / 2] = float(hi - 16) * d;
    }
  }
}

void dequantize_q5_1(const BlockQ5_1* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK5_1; ++i, dst += QK5_1) {
    const BlockQ5_1& b = src[i];
    const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
    const uint32_t qh = load_qh(b.qh);
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int lo = (b.qs[j] & 0xF) | int((qh >> j) & 1) << 4;
      const int hi = (b.qs[j] >> 4) | int((qh >> (j + QK5_1 / 2)) & 1) << 4;
      dst[j] = float(lo) * d + m;
      dst[j + QK5_1 / 2] = float(hi) * d + m;
    }
  }
}

void dequantize_q8_0(const BlockQ8_0* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, dst += QK8_0) {
    const float d = f16_to_f32(src[i].d);
    for (int j = 0; j < QK8_0; ++j) dst[j] = float(src[i].qs[j]) * d;
  }
}

// Q2_K and Q3_K share the 2-bit layout: element k (0..127) of each 128-element half sits in byte
// 32*half + k%32 at bit 2*(k/32); sub-blocks of 16 elements run in element order.

void dequantize_q2_k(const BlockQ2_K* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    const BlockQ2_K& b = src[i];
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int e = 0; e < QK_K; ++e) {
      const int sub = e / 16, half = e / 128, k = e % 128;
      const uint8_t sc = b.scales[sub];
      const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
      const int q = (b.qs[32 * half + k % 32] >> (2 * (k / 32))) & 3;
      dst[e] = dl * float(q) - ml;
    }
  }
}

void dequantize_q3_k(const BlockQ3_K* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    const BlockQ3_K& b = src[i];
    const float d = f16_to_f32(b.d);
    for (int e = 0; e < QK_K; ++e) {
      const int half = e / 128, k = e % 128;
      const float dl = d * float(scale_q3_k(e / 16, b.scales));
      const int low = (b.qs[32 * half + k % 32] >> (2 * (k / 32))) & 3;
      // hmask bit set means +0, clear means -4: element e's bit is bit e/32 of byte e%32.
      const int high = (b.hmask[e % 32] >> (e / 32)) & 1;
      dst[e] = dl * float(low - (high ? 0 : 4));
    }
  }
}

// Q4_K/Q5_K: 8 sub-blocks of 32; each 64-element chunk c takes the low nibbles of qs[32c..32c+31]
// for its first 32 elements and the high nibbles for the next 32.

void dequantize_q4_k(const BlockQ4_K* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    const BlockQ4_K& b = src[i];
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int sub = 0; sub < QK_K / 32; ++sub) {
      uint8_t sc, m;
      scale_min_k4(sub, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      const uint8_t* q = b.qs + 32 * (sub / 2);
      const int shift = 4 * (sub % 2);
      for (int l = 0; l < 32; ++l) dst[32 * sub + l] = d1 * float((q[l] >> shift) & 0xF) - m1;
    }
  }
}

void dequantize_q5_k(const BlockQ5_K* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    const BlockQ5_K& b = src[i];
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int sub = 0; sub < QK_K / 32; ++sub) {
      uint8_t sc, m;
      scale_min_k4(sub, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      const uint8_t* q = b.qs + 32 * (sub / 2);
      const int shift = 4 * (sub % 2);
      // The fifth bit of element l of sub-block `sub` is bit `sub` of qh[l].
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xF) + (((b.qh[l] >> sub) & 1) ? 16 : 0);
        dst[32 * sub + l] = d1 * float(v) - m1;
      }
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    const BlockQ6_K& b = src[i];
    const float d = f16_to_f32(b.d);
    // Element k (0..127) of half h: low 4 bits in ql[64h + k%64] (low nibble for k < 64, high
    // nibble above), top 2 bits in qh[32h + k%32] at bit pair k/32; 16 sub-blocks of 16 with
    // int8 scales.
    for (int e = 0; e < QK_K; ++e) {
      const int half = e / 128, k = e % 128;
      const int low = (b.ql[64 * half + k % 64] >> (4 * (k / 64))) & 0xF;
      const int high = (b.qh[32 * half + k % 32] >> (2 * (k / 32))) & 3;
      const int q = (low | (high << 4)) - 32;
      dst[e] = d * float(b.scales[e / 16]) * float(q);
    }
  }
}

void dequantize_q8_k(const BlockQ8_K* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K)
    for (int j = 0; j < QK_K; ++j) dst[j] = src[i].d * float(src[i].qs[j]);
}

}  // namespace csq::quants
