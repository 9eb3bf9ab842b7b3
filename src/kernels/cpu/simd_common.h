// Helpers and drivers shared by the x86 kernel files (matmul_avx2.cpp, matmul_avx512.cpp): scalar
// conversions, horizontal sums, k-quant scale unpacking, and the two eight-row drivers (rows read in
// place for generation, unpacked tiles for prompts) that each ISA fills with its own block kernels.
//
// Include it inside each file's target region (after avx2_begin.h or avx512_begin.h): everything
// here is in an anonymous namespace, so each file compiles its own copy for its own instruction
// set and no function compiled for AVX-512 can stand in for one an AVX2-only CPU calls.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/fast_kernels.h"

namespace csq::kernels::cpu {
namespace {

using quants::BlockQ4_0;
using quants::BlockQ4_K;
using quants::BlockQ5_K;
using quants::BlockQ6_K;
using quants::BlockQ8_0;
using quants::BlockQ8_K;
using quants::QK_K;

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Sum of 8 int32 lanes (exact).
inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// acc + scale * float(sum) with one rounding (a fused multiply-add, as the vector kernels do).
inline float fma_block(float scale, int32_t sum, float acc) {
  return std::fma(scale, float(sum), acc);
}

// Generation reads every weight once, so the kernels are bound by memory latency unless the
// next blocks are already on their way: request the bytes kPrefetchAhead ahead of the block in
// use (rows of a thread's range are contiguous, so this runs on into the next row). Into L2, not
// L1: a request into L1 holds one of the core's few L1 fill buffers until the line arrives from
// memory, and those capped a thread at about 10 GB/s (1 thread, Q4_K: 9.7-12.1 GB/s with T0,
// 11.1-13.0 with T1; Q6_K 10.6-11.3 against 9.3-14.4; BF16 10.7-14.5 against 12.0-15.4).
constexpr int64_t kPrefetchAhead = 4096;
inline void prefetch_ahead(const void* block, int64_t block_bytes) {
  const char* p = static_cast<const char*>(block) + kPrefetchAhead;
  for (int64_t off = 0; off < block_bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T1);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Sum of 16 signed int16 pairs -> 8 int32.
inline __m256i pair_sums(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

// signed weights (q in -128..127) . signed activations (±127), 32 bytes -> 8 int32.
inline __m256i dot_i8(__m256i w, __m256i x) {
  return pair_sums(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)));
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K block (quants::scale_min_k4, four at a time) as
// four words of four bytes: scales 0-3, scales 4-7, mins 0-3, mins 4-7.
struct ScalesMinsK4 {
  uint32_t scales_lo, scales_hi, mins_lo, mins_hi;
};
inline ScalesMinsK4 scales_mins_k4(const uint8_t* packed) {
  uint32_t w[3];
  std::memcpy(w, packed, 12);
  return {w[0] & 0x3f3f3f3f, (w[2] & 0x0f0f0f0f) | (((w[0] >> 6) & 0x03030303) << 4), w[1] & 0x3f3f3f3f,
          ((w[2] >> 4) & 0x0f0f0f0f) | (((w[1] >> 6) & 0x03030303) << 4)};
}

inline void unpack_scales_k4(const uint8_t* packed, uint8_t* scales, uint8_t* mins) {
  const ScalesMinsK4 sm = scales_mins_k4(packed);
  std::memcpy(scales, &sm.scales_lo, 4);
  std::memcpy(scales + 4, &sm.scales_hi, 4);
  std::memcpy(mins, &sm.mins_lo, 4);
  std::memcpy(mins + 4, &sm.mins_hi, 4);
}

// [scale 0..7 | min 0..7] as 16 bytes: scales_mins_k4 in vector registers (generation unpacks
// these once per row and block, and the scalar version cost about a third of the Q4_K row
// kernel's instructions). Reads 16 bytes at packed: the 12 packed bytes and the first 4 levels of
// the block, which are not used.
inline __m128i scales_mins_k4_u8(const uint8_t* packed) {
  const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));  // words w0, w1, w2
  // [w0 & 3f, w2 & 0f, w1 & 3f, (w2 >> 4) & 0f] | [0, (w0 >> 6 & 3) << 4, 0, (w1 >> 6 & 3) << 4]
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(2, 1, 2, 0)), _mm_set_epi32(4, 0, 0, 0)),
                                    _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
  const __m128i high = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                     _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
  return _mm_or_si128(low, high);
}
// The same as 16 int16: scales in the low 128-bit lane, mins in the high one.
inline __m256i scales_mins_k4_i16(const uint8_t* packed) { return _mm256_cvtepu8_epi16(scales_mins_k4_u8(packed)); }

// An activation block's side of the mins term: [0 | the 8 sub-block sums] as int16 (each at most
// 32 * 127), so that madd with scales_mins_k4_i16 leaves sum_j min_j * sum_j spread over 4 lanes.
inline __m256i sub_block_sums(const BlockQ8_K& x) {
  const __m128i sums = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + 8)));
  return _mm256_set_m128i(sums, _mm_setzero_si128());
}

// Lane r of the result is the sum of v[r]'s eight lanes (exact): a transpose by horizontal adds.
inline __m256i sum_lanes8(const __m256i* v) {
  const __m256i v01 = _mm256_hadd_epi32(v[0], v[1]), v23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i v45 = _mm256_hadd_epi32(v[4], v[5]), v67 = _mm256_hadd_epi32(v[6], v[7]);
  // [rows 0-3 | rows 0-3] and [rows 4-7 | rows 4-7], each half holding half of a row's lanes.
  const __m256i v0123 = _mm256_hadd_epi32(v01, v23), v4567 = _mm256_hadd_epi32(v45, v67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(v0123, v4567, 0x20),
                          _mm256_permute2x128_si256(v0123, v4567, 0x31));
}

// u[r] = hadd(levels of row r, mins of row r), 4 partial sums of each. Lane r of levels_out is
// row r's levels sum, of mins_out its mins sum (exact).
inline void split_sums8(const __m256i* u, __m256i& levels_out, __m256i& mins_out) {
  // [L0 M0 L1 M1 | L0 M0 L1 M1] (each half holding half of a row's lanes), and so on.
  const __m256 u01 = _mm256_castsi256_ps(_mm256_hadd_epi32(u[0], u[1]));
  const __m256 u23 = _mm256_castsi256_ps(_mm256_hadd_epi32(u[2], u[3]));
  const __m256 u45 = _mm256_castsi256_ps(_mm256_hadd_epi32(u[4], u[5]));
  const __m256 u67 = _mm256_castsi256_ps(_mm256_hadd_epi32(u[6], u[7]));
  const __m256i l0123 = _mm256_castps_si256(_mm256_shuffle_ps(u01, u23, 0x88));
  const __m256i m0123 = _mm256_castps_si256(_mm256_shuffle_ps(u01, u23, 0xDD));
  const __m256i l4567 = _mm256_castps_si256(_mm256_shuffle_ps(u45, u67, 0x88));
  const __m256i m4567 = _mm256_castps_si256(_mm256_shuffle_ps(u45, u67, 0xDD));
  levels_out = _mm256_add_epi32(_mm256_permute2x128_si256(l0123, l4567, 0x20),
                                _mm256_permute2x128_si256(l0123, l4567, 0x31));
  mins_out = _mm256_add_epi32(_mm256_permute2x128_si256(m0123, m4567, 0x20),
                              _mm256_permute2x128_si256(m0123, m4567, 0x31));
}

// Requests one block of each of the next group's 8 rows (rows of one thread's range are
// contiguous, so the next group is what this thread reads next; eight interleaved streams are
// more than the hardware prefetcher follows by itself).
inline void prefetch_next_group(const uint8_t* block_in_row0, int64_t w_row_bytes, int64_t block_bytes) {
  const uint8_t* p = block_in_row0 + 8 * w_row_bytes;
  for (int r = 0; r < 8; ++r, p += w_row_bytes)
    for (int64_t off = 0; off < block_bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
}

// The levels (0..63, the +32 bias kept) of elements 128h + 32k + i, i < 32, in q[k].
inline void q6k_half_levels(const BlockQ6_K& wb, int h, __m256i* q) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3);
  const __m256i ql0 = load256(wb.ql + 64 * h), ql1 = load256(wb.ql + 64 * h + 32);
  const __m256i qh = load256(wb.qh + 32 * h);
  q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), low2), 4));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), low2), 4));
}

// The levels (0..63, the +32 bias kept) of one Q6_K block in element order.
inline void q6k_levels(const BlockQ6_K& wb, uint8_t* levels) {
  for (int h = 0; h < 2; ++h) {
    __m256i q[4];
    q6k_half_levels(wb, h, q);
    for (int k = 0; k < 4; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(levels + 128 * h + 32 * k), q[k]);
  }
}

// The levels (0..15) of one Q4_K block in element order: each 32 bytes of qs hold sub-block 2i in
// the low nibbles and 2i+1 in the high ones.
inline void q4k_levels(const BlockQ4_K& wb, uint8_t* levels) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int i = 0; i < 4; ++i) {
    const __m256i raw = load256(wb.qs + 32 * i);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(levels + 64 * i), _mm256_and_si256(raw, low4));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(levels + 64 * i + 32), _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4));
  }
}

// ---- Tile order: 8 rows' levels interleaved, so that one vector holds a column group of all 8 ----
//
// rows[r] points at row r's levels (n_cols bytes, a multiple of 32). Both are transposes done 32
// columns at a time in registers: placing 4 or 8 bytes per store costs about ten times as much.

// dst[32 (e / 4) + 4 r + c] = level(r, e + c) for e a multiple of 4: the AVX2 tiles, one 32-byte
// vector per column quad (an 8 x 8 transpose of 32-bit words).
inline void interleave_quads8(const uint8_t* const* rows, int n_cols, uint8_t* dst) {
  for (int col = 0; col < n_cols; col += 32, dst += 256) {
    __m256i v[8];
    for (int r = 0; r < 8; ++r) v[r] = load256(rows[r] + col);
    __m256i t[8], u[8];
    for (int r = 0; r < 8; r += 2) {
      t[r] = _mm256_unpacklo_epi32(v[r], v[r + 1]);  // quads 0, 1 | 4, 5 of rows r, r + 1
      t[r + 1] = _mm256_unpackhi_epi32(v[r], v[r + 1]);  // quads 2, 3 | 6, 7
    }
    for (int r = 0; r < 8; r += 4) {
      u[r] = _mm256_unpacklo_epi64(t[r], t[r + 2]);  // quad 0 | 4 of rows r .. r + 3
      u[r + 1] = _mm256_unpackhi_epi64(t[r], t[r + 2]);  // quad 1 | 5
      u[r + 2] = _mm256_unpacklo_epi64(t[r + 1], t[r + 3]);  // quad 2 | 6
      u[r + 3] = _mm256_unpackhi_epi64(t[r + 1], t[r + 3]);  // quad 3 | 7
    }
    for (int g = 0; g < 4; ++g) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * g), _mm256_permute2x128_si256(u[g], u[4 + g], 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * (g + 4)), _mm256_permute2x128_si256(u[g], u[4 + g], 0x31));
    }
  }
}

// dst[64 (e / 8) + 8 r + c] = level(r, e + c) for e a multiple of 8: the AVX-512 tiles, one
// 64-byte vector per column octet (two 4 x 4 transposes of 64-bit words, rows 0-3 and 4-7).
inline void interleave_octets8(const uint8_t* const* rows, int n_cols, uint8_t* dst) {
  for (int col = 0; col < n_cols; col += 32, dst += 256) {
    for (int half = 0; half < 2; ++half) {
      __m256i v[4];
      for (int r = 0; r < 4; ++r) v[r] = load256(rows[4 * half + r] + col);
      const __m256i t0 = _mm256_unpacklo_epi64(v[0], v[1]), t1 = _mm256_unpackhi_epi64(v[0], v[1]);  // octets 0|2, 1|3
      const __m256i t2 = _mm256_unpacklo_epi64(v[2], v[3]), t3 = _mm256_unpackhi_epi64(v[2], v[3]);
      const __m256i octet[4] = {_mm256_permute2x128_si256(t0, t2, 0x20), _mm256_permute2x128_si256(t1, t3, 0x20),
                                _mm256_permute2x128_si256(t0, t2, 0x31), _mm256_permute2x128_si256(t1, t3, 0x31)};
      for (int g = 0; g < 4; ++g)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64 * g + 32 * half), octet[g]);
    }
  }
}

// One Q4_K block of each of 8 rows (blocks[r] of row r) into a tile that holds d[8], neg_dmin[8]
// and the levels q in Interleave's order; place(row, j, scale, min) puts sub-block j's six-bit
// scale and min where the ISA's tile kernel reads them.
template <void (*Interleave)(const uint8_t* const*, int, uint8_t*), typename Tile, typename Place>
inline void unpack_q4k_tile(Tile& tile, const BlockQ4_K* const* blocks, Place place) {
  alignas(32) uint8_t levels[8][QK_K];
  const uint8_t* rows[8];
  for (int row = 0; row < 8; ++row) {
    const BlockQ4_K& w = *blocks[row];
    alignas(8) uint8_t scales[8], mins[8];
    tile.d[row] = half_to_float(w.d);
    tile.neg_dmin[row] = -half_to_float(w.dmin);
    unpack_scales_k4(w.scales, scales, mins);
    for (int j = 0; j < 8; ++j) place(row, j, scales[j], mins[j]);
    q4k_levels(w, levels[row]);
    rows[row] = levels[row];
  }
  Interleave(rows, QK_K, &tile.q[0][0][0]);
}

// One Q6_K block of each of 8 rows into a tile that holds d[8] and the levels q (0..63) in
// Interleave's order; place(row, k, scale) puts group k's scale where the ISA's tile kernel reads it.
template <void (*Interleave)(const uint8_t* const*, int, uint8_t*), typename Tile, typename Place>
inline void unpack_q6k_tile(Tile& tile, const BlockQ6_K* const* blocks, Place place) {
  alignas(32) uint8_t levels[8][QK_K];
  const uint8_t* rows[8];
  for (int row = 0; row < 8; ++row) {
    const BlockQ6_K& w = *blocks[row];
    tile.d[row] = half_to_float(w.d);
    for (int k = 0; k < 16; ++k) place(row, k, w.scales[k]);
    q6k_levels(w, levels[row]);
    rows[row] = levels[row];
  }
  Interleave(rows, QK_K, &tile.q[0][0][0]);
}

// ---- Eight rows read in place against a few tokens (generation), k-quant weights ----
// (1..kMaxTokens per call on AVX2; on AVX-512 the one or two tokens below the lane kernels)
//
// Each row's block sums are the row kernel's, but instead of reducing each to a scalar (two
// horizontal sums and two dependent scalar multiply-adds per row and block), 8 rows' sums are
// transposed into one vector with a lane per row and weighted with vector multiply-adds: the tile
// kernel's arithmetic, lane for lane, so a token's result does not depend on which of the two
// computed it. The rows are still read one after the other (one linear stream the prefetchers
// follow; block b of 8 rows in turn is 8 streams and reads measurably slower), the sums of a chunk
// of blocks waiting in a buffer for the transpose.
//
// Format supplies the block kernel: Format::Block, Format::kMins (Q4_K/Q5_K: a d and a dmin per
// block; Q6_K: a d only) and Format::sums<N>(block, xs, b, x_sub, out), which leaves in out[t] the
// block's exact integer sums for token t as 8 int32 lanes to be added up: with mins,
// hadd(levels, mins) (4 lanes of each, see split_sums8); without, the levels. x_sub[t] is
// sub_block_sums of token t's activation block b where kMins.
template <int N, typename Format>
struct KQuantRows8 {
  using Block = typename Format::Block;
  static void run(const uint8_t* w_rows, int64_t w_row_bytes, const BlockQ8_K* const* xs, int64_t n_blocks, float* out,
                  int64_t out_stride) {
    constexpr int64_t kChunk = 64 / N;  // 16 KB of partial sums
    alignas(32) __m256i partial[kChunk][N][8];
    alignas(32) __m256i x_sub[kChunk][N];
    alignas(16) uint16_t d_half[kChunk][8], dmin_half[kChunk][8];
    __m256 acc[N];
    for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunk) {
      const int64_t nb = std::min(kChunk, n_blocks - b0);
      if constexpr (Format::kMins)
        for (int64_t i = 0; i < nb; ++i)
          for (int t = 0; t < N; ++t) x_sub[i][t] = sub_block_sums(xs[t][b0 + i]);
      for (int r = 0; r < 8; ++r) {
        const Block* w = reinterpret_cast<const Block*>(w_rows + r * w_row_bytes) + b0;
        for (int64_t i = 0; i < nb; ++i) {
          prefetch_ahead(w + i, int64_t(sizeof(Block)));
          d_half[i][r] = w[i].d;
          if constexpr (Format::kMins) dmin_half[i][r] = w[i].dmin;
          __m256i sums[N];
          Format::template sums<N>(w[i], xs, b0 + i, x_sub[i], sums);
          for (int t = 0; t < N; ++t) partial[i][t][r] = sums[t];
        }
      }
      for (int64_t i = 0; i < nb; ++i) {
        const __m256 d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d_half[i])));
        if constexpr (Format::kMins) {
          const __m256 neg_dmin = _mm256_xor_ps(
              _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dmin_half[i]))), _mm256_set1_ps(-0.f));
          for (int t = 0; t < N; ++t) {
            __m256i levels, mins;
            split_sums8(partial[i][t], levels, mins);
            const __m256 dx = _mm256_set1_ps(xs[t][b0 + i].d);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(levels), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(neg_dmin, dx), _mm256_cvtepi32_ps(mins), acc[t]);
          }
        } else {
          for (int t = 0; t < N; ++t)
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[t][b0 + i].d)),
                                     _mm256_cvtepi32_ps(sum_lanes8(partial[i][t])), acc[t]);
        }
      }
    }
    for (int t = 0; t < N; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
  }
};

constexpr int kTileTokens = 4;

// Eight rows of one weight format against n_tok tokens. From kTileFrom tokens on, the rows
// are unpacked once into tiles, then passed over one chunk of blocks at a time, so the chunk
// (about 8-10 KB) stays in L1 while every token streams its activations past it; fewer tokens
// read the rows in place (Rows8), kMaxTokens at a time.
//
// UnpackBlock(tile, blocks) puts one weight block of each of the 8 rows (blocks[r] of row r) into
// its tile block.
template <typename Tile, typename WBlock, typename XBlock, int64_t kBlockElems, int64_t kChunkBlocks,
          void (*UnpackBlock)(Tile&, const WBlock* const*), template <int> class Kernel, template <int> class Rows8,
          int64_t kTileFrom = kTileMinTokens>
void rows8(const uint8_t* w_rows, int64_t w_row_bytes, const void* x, int64_t x_stride, int64_t n_tok, int64_t cols,
           float* out, int64_t out_stride) {
  const int64_t n_blocks = cols / kBlockElems;
  if (n_tok < kTileFrom) {
    for (int64_t t0 = 0; t0 < n_tok; t0 += kMaxTokens) {
      const XBlock* xs[kMaxTokens];
      const int tt = int(std::min<int64_t>(kMaxTokens, n_tok - t0));
      for (int t = 0; t < tt; ++t) xs[t] = x_row<XBlock>(x, x_stride, int(t0 + t));
      float* o = out + t0 * out_stride;
      switch (tt) {
        case 1: Rows8<1>::run(w_rows, w_row_bytes, xs, n_blocks, o, out_stride); break;
        case 2: Rows8<2>::run(w_rows, w_row_bytes, xs, n_blocks, o, out_stride); break;
        case 3: Rows8<3>::run(w_rows, w_row_bytes, xs, n_blocks, o, out_stride); break;
        default: Rows8<4>::run(w_rows, w_row_bytes, xs, n_blocks, o, out_stride); break;
      }
    }
    return;
  }
  thread_local std::vector<Tile> tiles;
  thread_local std::vector<float> acc;
  if (int64_t(tiles.size()) < n_blocks) tiles.resize(size_t(n_blocks));
  acc.assign(size_t(8 * n_tok), 0.f);
  const WBlock* blocks[8];
  for (int row = 0; row < 8; ++row) blocks[row] = reinterpret_cast<const WBlock*>(w_rows + row * w_row_bytes);
  for (int64_t b = 0; b < n_blocks; ++b) {
    UnpackBlock(tiles[size_t(b)], blocks);
    for (const WBlock*& block : blocks) ++block;
  }
  // The next 8 rows (this thread's next group: groups are handed out in runs) are requested from
  // memory a few lines per token tile while these are multiplied, so that their unpacking reads
  // cache instead of waiting on memory.
  const char* next_group = reinterpret_cast<const char*>(w_rows + 8 * w_row_bytes);
  const int64_t next_lines = 8 * w_row_bytes / 64;
  const int64_t steps = (n_blocks + kChunkBlocks - 1) / kChunkBlocks * ((n_tok + kTileTokens - 1) / kTileTokens);
  const int64_t lines_per_step = (next_lines + steps - 1) / steps;
  int64_t next_line = 0;
  for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
    const int64_t nb = std::min(kChunkBlocks, n_blocks - b0);
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTileTokens) {
      for (const int64_t end = std::min(next_lines, next_line + lines_per_step); next_line < end; ++next_line)
        _mm_prefetch(next_group + 64 * next_line, _MM_HINT_T1);
      const XBlock* xs[kTileTokens];
      const int tt = int(std::min<int64_t>(kTileTokens, n_tok - t0));
      for (int t = 0; t < tt; ++t) xs[t] = x_row<XBlock>(x, x_stride, int(t0 + t)) + b0;
      float* a = acc.data() + 8 * t0;
      switch (tt) {
        case 1: Kernel<1>::run(tiles.data() + b0, nb, xs, a); break;
        case 2: Kernel<2>::run(tiles.data() + b0, nb, xs, a); break;
        case 3: Kernel<3>::run(tiles.data() + b0, nb, xs, a); break;
        default: Kernel<4>::run(tiles.data() + b0, nb, xs, a); break;
      }
    }
  }
  for (int64_t t = 0; t < n_tok; ++t) std::memcpy(out + t * out_stride, acc.data() + 8 * t, 8 * sizeof(float));
}

}  // namespace
}  // namespace csq::kernels::cpu
