// ggml block formats and their reference (plain C++) decoders. Layouts and arithmetic follow
// ggml-quants.c exactly, so a decoded value is the bit-exact float ggml produces.
#pragma once

#include <cstdint>

namespace csq::quants {

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK_K = 256, K_SCALE_SIZE = 12;

#pragma pack(push, 1)
struct BlockQ4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[QK4_1 / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[QK8_0]; };
struct BlockQ2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct BlockQ3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct BlockQ6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
// Activations only (never stored in files): float scale, and sums of 16 quants for the k-quant dot products.
struct BlockQ8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };
#pragma pack(pop)

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// Q4_K/Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. Sub-blocks 0-3
// keep theirs in the low 6 bits of bytes j and j+4; 4-7 use the nibbles of bytes j+4 plus the
// top 2 bits of bytes j-4 (scale) and j (min).
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q3_K: signed 6-bit scale of sub-block j (0..15). Low nibbles: bytes 0-7 (j < 8 low half,
// j >= 8 high half of byte j-8); high 2 bits: byte 8 + j%4, bit pair j/4. Stored with bias 32.
inline int scale_q3_k(int j, const uint8_t* q) {
  const int low = j < 8 ? q[j] & 0xF : q[j - 8] >> 4;
  const int high = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// n is a multiple of the block size of the format.
void dequantize_q4_0(const BlockQ4_0* src, float* dst, int64_t n);
void dequantize_q4_1(const BlockQ4_1* src, float* dst, int64_t n);
void dequantize_q5_0(const BlockQ5_0* src, float* dst, int64_t n);
void dequantize_q5_1(const BlockQ5_1* src, float* dst, int64_t n);
void dequantize_q8_0(const BlockQ8_0* src, float* dst, int64_t n);
void dequantize_q2_k(const BlockQ2_K* src, float* dst, int64_t n);
void dequantize_q3_k(const BlockQ3_K* src, float* dst, int64_t n);
void dequantize_q4_k(const BlockQ4_K* src, float* dst, int64_t n);
void dequantize_q5_k(const BlockQ5_K* src, float* dst, int64_t n);
void dequantize_q6_k(const BlockQ6_K* src, float* dst, int64_t n);
void dequantize_q8_k(const BlockQ8_K* src, float* dst, int64_t n);

}  // namespace csq::quants
