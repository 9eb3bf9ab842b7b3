// The arithmetic every fast row kernel implements (AVX2, AVX-512, NEON), in plain C++: a block's
// exact integer sums, then one fused multiply-add per sum in block order (integer formats), or
// 16 float lanes and a fixed tree of final additions (float weights). A kernel that matches this
// bit for bit on every ISA gives the same logits on every machine. Header-only, so the ARM check
// (tests/cross/neon_check.cpp) and the x86 tests share it.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "base/half.h"
#include "kernels/cpu/fast_kernels.h"
#include "kernels/quants.h"

namespace csq::kernels::row_model {

inline float weight_f32(DType type, const void* w, int64_t i) {
  if (type == DType::F32) return static_cast<const float*>(w)[i];
  const uint16_t h = static_cast<const uint16_t*>(w)[i];
  return type == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// w_row . x for one token; x in the kernel's activation format (cpu::act_row_bytes layout).
inline float dot(DType type, const void* w_row, const void* x, int64_t cols) {
  using namespace quants;
  float acc = 0;
  switch (type) {
    case DType::Q8_0: {
      const auto* w = static_cast<const BlockQ8_0*>(w_row);
      const auto* xb = static_cast<const cpu::BlockQ8x32*>(x);
      for (int64_t b = 0; b < cols / 32; ++b) {
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) sum += int32_t(w[b].qs[i]) * xb[b].qs[i];
        acc = std::fma(f16_to_f32(w[b].d) * xb[b].d, float(sum), acc);
      }
      return acc;
    }
    case DType::Q4_K: {
      const auto* w = static_cast<const BlockQ4_K*>(w_row);
      const auto* xb = static_cast<const BlockQ8_K*>(x);
      for (int64_t b = 0; b < cols / QK_K; ++b) {
        int32_t levels = 0, mins = 0;
        for (int j = 0; j < 8; ++j) {
          uint8_t scale, min;
          scale_min_k4(j, w[b].scales, scale, min);
          int32_t sum = 0;
          for (int e = 32 * j; e < 32 * j + 32; ++e) {
            const uint8_t byte = w[b].qs[32 * (e / 64) + e % 32];
            sum += ((e % 64) < 32 ? byte & 0xF : byte >> 4) * xb[b].qs[e];
          }
          levels += scale * sum;
          mins += min * (xb[b].bsums[2 * j] + xb[b].bsums[2 * j + 1]);
        }
        const float d = f16_to_f32(w[b].d), dmin = f16_to_f32(w[b].dmin);
        acc = std::fma(d * xb[b].d, float(levels), acc);
        acc = std::fma(-dmin * xb[b].d, float(mins), acc);
      }
      return acc;
    }
    case DType::Q6_K: {
      const auto* w = static_cast<const BlockQ6_K*>(w_row);
      const auto* xb = static_cast<const BlockQ8_K*>(x);
      for (int64_t b = 0; b < cols / QK_K; ++b) {
        int32_t sum = 0;
        for (int e = 0; e < QK_K; ++e) {
          // ggml's layout: halves of 128; in each, 32-element quarters k take the low (k even) or
          // high nibble of ql and bit pair k of qh.
          const int h = e / 128, l = e % 32, k = (e % 128) / 32;
          const uint8_t low = w[b].ql[64 * h + 32 * (k % 2) + l];
          const int nibble = k < 2 ? low & 0xF : low >> 4;
          const int high = (w[b].qh[32 * h + l] >> (2 * k)) & 3;
          sum += int32_t(w[b].scales[e / 16]) * ((nibble | (high << 4)) - 32) * xb[b].qs[e];
        }
        acc = std::fma(f16_to_f32(w[b].d) * xb[b].d, float(sum), acc);
      }
      return acc;
    }
    default: {
      const float* xf = static_cast<const float*>(x);
      float lanes[16] = {};
      int64_t c = 0;
      for (; c + 16 <= cols; c += 16)
        for (int l = 0; l < 16; ++l) lanes[l] = std::fma(weight_f32(type, w_row, c + l), xf[c + l], lanes[l]);
      float eight[8], four[4];
      for (int i = 0; i < 8; ++i) eight[i] = lanes[i] + lanes[i + 8];
      for (int i = 0; i < 4; ++i) four[i] = eight[i] + eight[i + 4];
      float total = (four[0] + four[2]) + (four[1] + four[3]);
      for (int64_t i = c; i < cols; ++i) total = std::fma(weight_f32(type, w_row, i), xf[i], total);
      return total;
    }
  }
}

}  // namespace csq::kernels::row_model
