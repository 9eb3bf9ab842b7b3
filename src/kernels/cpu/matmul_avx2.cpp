// AVX2 + FMA + F16C row kernels for the fast matrix product. Compiled for that target with a
// pragma (the rest of the build stays portable) and only called after a run-time CPU check.
//
// Integer formats: the weight block is unpacked once into registers and multiplied with every
// token's 8-bit activations (_mm256_maddubs_epi16: unsigned x signed bytes -> int16 pairs),
// then weighted by the block's integer scales in int32 and by the float scales once per block.
// x86 only: elsewhere this file compiles to nothing and the dispatchers keep to the reference.
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/fast_kernels.h"
#include "kernels/quantize.h"

#include "kernels/cpu/avx2_begin.h"
#include "kernels/cpu/simd_common.h"

namespace csq::kernels::cpu {
namespace {

// ---- Q8_0 and Q4_0 weights with BlockQ8x32 activations ----

template <int N>
void dot_q8_0(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(w_row);
  const BlockQ8x32* xs[N];
  for (int t = 0; t < N; ++t) xs[t] = x_row<BlockQ8x32>(x, x_stride, t);
  // Each block's exact sum added with one scalar fused multiply-add, as the Q8_0 tile kernel
  // does. Four blocks' sums are reduced together (three hadds instead of four horizontal sums).
  float acc[N] = {};
  const int64_t n_blocks = cols / 32;
  int64_t b = 0;
  for (; b + 4 <= n_blocks; b += 4) {
    prefetch_ahead(w + b, 4 * int64_t(sizeof(w[0])));
    __m256i q[4];
    float dw[4];
    for (int k = 0; k < 4; ++k) {
      q[k] = load256(w[b + k].qs);
      dw[k] = half_to_float(w[b + k].d);
    }
    for (int t = 0; t < N; ++t) {
      __m256i p[4];
      for (int k = 0; k < 4; ++k) p[k] = dot_i8(q[k], load256(xs[t][b + k].qs));
      const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
      alignas(16) int32_t sums[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(sums),
                      _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
      for (int k = 0; k < 4; ++k) acc[t] = fma_block(dw[k] * xs[t][b + k].d, sums[k], acc[t]);
    }
  }
  for (; b < n_blocks; ++b) {
    const __m256i q = load256(w[b].qs);
    const float dw = half_to_float(w[b].d);
    for (int t = 0; t < N; ++t)
      acc[t] = fma_block(dw * xs[t][b].d, hsum_i32(dot_i8(q, load256(xs[t][b].qs))), acc[t]);
  }
  for (int t = 0; t < N; ++t) out[t] = acc[t];
}

template <int N>
void dot_q4_0(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const BlockQ4_0* w = static_cast<const BlockQ4_0*>(w_row);
  const BlockQ8x32* xs[N];
  for (int t = 0; t < N; ++t) xs[t] = x_row<BlockQ8x32>(x, x_stride, t);
  __m256 acc[N];
  for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
  for (int64_t b = 0; b < cols / 32; ++b) {
    if (b % 2 == 0) prefetch_ahead(w + b, 2 * int64_t(sizeof(w[0])));
    // Elements 0-15 are the low nibbles, 16-31 the high ones.
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low4);
    const __m256i q = _mm256_sub_epi8(nib, eight);
    const float dw = half_to_float(w[b].d);
    for (int t = 0; t < N; ++t) {
      const __m256i p = dot_i8(q, load256(xs[t][b].qs));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xs[t][b].d), _mm256_cvtepi32_ps(p), acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) out[t] = hsum(acc[t]);
}

// ---- k-quants with BlockQ8_K activations ----


// Exact integer sums of one Q4_K/Q5_K block with N tokens' activation blocks b, as 8 int32 lanes
// to be added up: levels[t] = sum_i scale(i) * level_i * x_i and mins[t] = sum_j min_j * (sum of
// x over sub-block j), x_sub[t] being sub_block_sums of the activation block. Q4_K and Q5_K
// share everything but the fifth bit (HighBits for Q5_K).
template <int N, bool HighBits, typename Block>
inline void q45k_block_sums(const Block& wb, const BlockQ8_K* const* xs, int64_t b, const __m256i* x_sub,
                            __m256i* levels, __m256i* mins) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i scales_mins = scales_mins_k4_i16(wb.scales);
  const __m256i scales = _mm256_permute4x64_epi64(scales_mins, 0x44);  // scales in both lanes
  for (int t = 0; t < N; ++t) levels[t] = _mm256_setzero_si256();
  __m256i qh;
  if constexpr (HighBits) qh = load256(wb.qh);
  for (int i = 0; i < 4; ++i) {
    // 64 elements: sub-block 2i in the low nibbles, 2i+1 in the high nibbles.
    const __m256i raw = load256(wb.qs + 32 * i);
    __m256i lo = _mm256_and_si256(raw, low4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    if constexpr (HighBits) {
      const __m256i bit_lo = _mm256_set1_epi8(char(1 << (2 * i))), bit_hi = _mm256_set1_epi8(char(2 << (2 * i)));
      const __m256i sixteen = _mm256_set1_epi8(16);
      lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_lo), bit_lo), sixteen));
      hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_hi), bit_hi), sixteen));
    }
    // Scale j broadcast to every int16 (bytes 2j and 2j + 1 of each lane).
    const __m256i s_lo = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(short(0x0100 + 0x0404 * i)));
    const __m256i s_hi = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(short(0x0302 + 0x0404 * i)));
    for (int t = 0; t < N; ++t) {
      const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(xs[t][b].qs + 64 * i)), s_lo);
      const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(xs[t][b].qs + 64 * i + 32)), s_hi);
      levels[t] = _mm256_add_epi32(levels[t], _mm256_add_epi32(p_lo, p_hi));
    }
  }
  for (int t = 0; t < N; ++t) mins[t] = _mm256_madd_epi16(scales_mins, x_sub[t]);
}

template <int N, bool HighBits, typename Block>
void dot_q45_k(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const Block* w = static_cast<const Block*>(w_row);
  const BlockQ8_K* xs[N];
  for (int t = 0; t < N; ++t) xs[t] = x_row<BlockQ8_K>(x, x_stride, t);
  // Each block's integer sums are exact; the float accumulation is one pair of fused
  // multiply-adds per block in block order, exactly as the eight-row kernels do it per lane.
  float acc[N] = {};
  for (int64_t b = 0; b < cols / QK_K; ++b) {
    prefetch_ahead(w + b, int64_t(sizeof(w[0])));
    __m256i x_sub[N], levels[N], mins[N];
    for (int t = 0; t < N; ++t) x_sub[t] = sub_block_sums(xs[t][b]);
    q45k_block_sums<N, HighBits>(w[b], xs, b, x_sub, levels, mins);
    const float d = half_to_float(w[b].d), dmin = half_to_float(w[b].dmin);
    for (int t = 0; t < N; ++t) {
      const float dx = xs[t][b].d;
      acc[t] = fma_block(d * dx, hsum_i32(levels[t]), acc[t]);
      acc[t] = fma_block(-dmin * dx, hsum_i32(mins[t]), acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) out[t] = acc[t];
}



// Q4_K rows read in place (generation): KQuantRows8 over q45k_block_sums.
struct Q4KFormat {
  using Block = BlockQ4_K;
  static constexpr bool kMins = true;
  template <int N>
  static void sums(const Block& wb, const BlockQ8_K* const* xs, int64_t b, const __m256i* x_sub, __m256i* out) {
    __m256i levels[N], mins[N];
    q45k_block_sums<N, false>(wb, xs, b, x_sub, levels, mins);
    for (int t = 0; t < N; ++t) out[t] = _mm256_hadd_epi32(levels[t], mins[t]);
  }
};
template <int N> using Q4KRows8 = KQuantRows8<N, Q4KFormat>;

// ---- Q4_K tiles: eight rows against many tokens (prompt processing) ----
//
// The row kernel spends one multiply by the sub-block scale (madd) per 32 products and token.
// Here the four-bit levels of 8 rows are first unpacked to bytes, interleaved so that one vector
// holds 4 consecutive columns of each row; a token's 4 activation bytes are broadcast to all 8
// rows, so a whole 32-column sub-block is 8 maddubs summed in int16 (each term at most
// 2 * 15 * 127, the sum at most 30480) before one madd by the 8 rows' scales. Block sums stay
// exact integers and each block adds the same two fused multiply-adds as the row kernel, so a
// token's result is bit-identical whichever kernel computed it.

struct alignas(32) Q4KTileBlock {
  uint8_t q[8][8][32];  // [sub-block j][column quad g][4 * row + c] = level(row, 32 j + 4 g + c)
  int16_t scales[8][16];  // [j][2 * row] = [j][2 * row + 1] = the row's 6-bit scale of sub-block j
  int16_t mins[4][16];    // [k][2 * row + e] = the row's 6-bit min of sub-block 2 k + e
  float d[8];             // per row
  float neg_dmin[8];      // per row, negated
};

void unpack_q4k_block(Q4KTileBlock& tile, const BlockQ4_K* const* blocks) {
  unpack_q4k_tile<interleave_quads8>(tile, blocks, [&](int row, int j, uint8_t scale, uint8_t min) {
    tile.scales[j][2 * row] = tile.scales[j][2 * row + 1] = scale;
    tile.mins[j / 2][2 * row + j % 2] = min;
  });
}

inline __m256i broadcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// acc[t][row] carried over the blocks [0, n_blocks) of tiles / the activation rows.
template <int T>
void q4k_tile_tokens(const Q4KTileBlock* tiles, int64_t n_blocks, const BlockQ8_K* const* xs, float* acc) {
  // The float sums stay in memory between blocks: in registers they would push the integer
  // sums of the inner loop onto the stack.
  for (int64_t b = 0; b < n_blocks; ++b) {
    const Q4KTileBlock& tile = tiles[b];
    __m256i sumi[T];
    for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i sc = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.scales[j]));
      // One token at a time: a single int16 chain, the weights read from L1 as memory operands.
      // The empty asm statements keep the chain a chain: reassociated into a tree, the partial
      // products outnumber the registers and go through the stack.
      for (int t = 0; t < T; ++t) {
        const int8_t* xq = xs[t][b].qs + 32 * j;
        __m256i p = _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(tile.q[j][0])), broadcast4(xq));
        for (int g = 1; g < 8; ++g) {
          p = _mm256_add_epi16(p, _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(tile.q[j][g])),
                                                       broadcast4(xq + 4 * g)));
          __asm__("" : "+x"(p));
        }
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, sc));
      }
    }
    // sum_j min_j * (activation sum of sub-block j), two sub-blocks per madd: the sums of
    // sub-blocks 2k and 2k + 1 (each at most 32 * 127) broadcast as an int16 pair.
    __m256i summ[T];
    for (int t = 0; t < T; ++t) {
      alignas(16) int16_t sub_sums[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(sub_sums),
                      _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xs[t][b].bsums)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs[t][b].bsums + 8))));
      summ[t] = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        const __m256i mn = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.mins[k]));
        summ[t] = _mm256_add_epi32(summ[t], _mm256_madd_epi16(mn, broadcast4(sub_sums + 2 * k)));
      }
    }
    const __m256 d = _mm256_load_ps(tile.d), neg_dmin = _mm256_load_ps(tile.neg_dmin);
    for (int t = 0; t < T; ++t) {
      const __m256 dx = _mm256_set1_ps(xs[t][b].d);
      __m256 a = _mm256_loadu_ps(acc + 8 * t);
      a = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sumi[t]), a);
      a = _mm256_fmadd_ps(_mm256_mul_ps(neg_dmin, dx), _mm256_cvtepi32_ps(summ[t]), a);
      _mm256_storeu_ps(acc + 8 * t, a);
    }
  }
}

// Kernel<T>::run(tiles, n_blocks, xs, acc): T tokens (1..kTileTokens) over n_blocks tile blocks.
template <int T> struct Q4KTileTokens {
  static void run(const Q4KTileBlock* tiles, int64_t n, const BlockQ8_K* const* xs, float* acc) {
    q4k_tile_tokens<T>(tiles, n, xs, acc);
  }
};



// ---- Q8_0 tiles ----
//
// As for Q4_K, 8 rows interleaved 4 columns at a time, a token's 4 activation bytes broadcast.
// Signed levels need the sign trick (|w| times x with w's sign), and a pair of products can reach
// 2 * 127 * 127, so each vector goes to int32 at once; what the tile saves is the per-token
// float work (one scale multiply per block for 8 rows instead of one per row). The row kernel
// adds each block's exact sum with the same scalar fused multiply-add, so results are identical.

struct alignas(32) Q8_0TileBlock {
  int8_t q[8][32];       // [column quad g][4 * row + c] = level(row, 4 g + c)
  uint8_t abs_q[8][32];  // |level|
  float d[8];            // per row
};

void unpack_q8_0_block(Q8_0TileBlock& tile, const BlockQ8_0* const* blocks) {
  const uint8_t* rows[8];
  for (int row = 0; row < 8; ++row) {
    tile.d[row] = half_to_float(blocks[row]->d);
    rows[row] = reinterpret_cast<const uint8_t*>(blocks[row]->qs);
  }
  interleave_quads8(rows, 32, reinterpret_cast<uint8_t*>(&tile.q[0][0]));
  for (int g = 0; g < 8; ++g) {
    const __m256i q = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.q[g]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(tile.abs_q[g]), _mm256_sign_epi8(q, q));
  }
}

template <int T>
struct Q8_0TileTokens {
  static void run(const Q8_0TileBlock* tiles, int64_t n_blocks, const BlockQ8x32* const* xs, float* acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const Q8_0TileBlock& tile = tiles[b];
      __m256i sumi[T];
      for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.q[g]));
        const __m256i aw = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.abs_q[g]));
        for (int t = 0; t < T; ++t) {
          const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(broadcast4(xs[t][b].qs + 4 * g), w));
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, ones));
        }
      }
      const __m256 d = _mm256_load_ps(tile.d);
      for (int t = 0; t < T; ++t) {
        __m256 a = _mm256_loadu_ps(acc + 8 * t);
        a = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[t][b].d)), _mm256_cvtepi32_ps(sumi[t]), a);
        _mm256_storeu_ps(acc + 8 * t, a);
      }
    }
  }
};

// Q8_0 rows read in place (generation), with the Q8_0 tile kernel's arithmetic lane for lane.
template <int N>
struct Q8_0Rows8 {
  static void run(const uint8_t* w_rows, int64_t w_row_bytes, const BlockQ8x32* const* xs, int64_t n_blocks, float* out,
                  int64_t out_stride) {
    __m256 acc[N];
    for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      // Two 34-byte blocks per row fit in the two lines requested every other block.
      if (b % 2 == 0) prefetch_next_group(w_rows + b * int64_t(sizeof(BlockQ8_0)), w_row_bytes, 2 * 64);
      __m256i sums[N][8];
      alignas(16) uint16_t d_half[8];
      for (int r = 0; r < 8; ++r) {
        const BlockQ8_0& wb = reinterpret_cast<const BlockQ8_0*>(w_rows + r * w_row_bytes)[b];
        d_half[r] = wb.d;
        const __m256i q = load256(wb.qs);
        for (int t = 0; t < N; ++t) sums[t][r] = dot_i8(q, load256(xs[t][b].qs));
      }
      const __m256 d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d_half)));
      for (int t = 0; t < N; ++t)
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[t][b].d)), _mm256_cvtepi32_ps(sum_lanes8(sums[t])),
                                 acc[t]);
    }
    for (int t = 0; t < N; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
  }
};

// 4 Q4_K blocks of 8 rows = 9.75 KB; 16 Q8_0 blocks = 8.5 KB.
constexpr auto rows8_q4_k = rows8<Q4KTileBlock, BlockQ4_K, BlockQ8_K, QK_K, 4, unpack_q4k_block, Q4KTileTokens, Q4KRows8>;
constexpr auto rows8_q8_0 = rows8<Q8_0TileBlock, BlockQ8_0, BlockQ8x32, 32, 16, unpack_q8_0_block, Q8_0TileTokens, Q8_0Rows8>;


// Exact integer sums of one Q6_K block with N tokens' activation blocks b, as 8 int32 lanes to
// be added up: sum_i scale(i) * (level_i - 32) * x_i.
template <int N>
inline void q6k_block_sums(const BlockQ6_K& wb, const BlockQ8_K* const* xs, int64_t b, __m256i* sums) {
  const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales)));
  // Levels are stored with a +32 bias: subtract 32 * sum_g scale_g * (sum of activation group g).
  for (int t = 0; t < N; ++t)
    sums[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(load256(xs[t][b].bsums), sc16), 5));
  for (int h = 0; h < 2; ++h) {
    // Scales 8h..8h+7 in both 128-bit lanes, for one shuffle per pair of groups below.
    const __m256i sc_half = h == 0 ? _mm256_permute4x64_epi64(sc16, 0x44) : _mm256_permute4x64_epi64(sc16, 0xEE);
    __m256i q[4];
    q6k_half_levels(wb, h, q);
    for (int k = 0; k < 4; ++k) {
      // 32 elements = two groups of 16 with their own scales: group 8h + 2k's scale in every
      // int16 of the low lane, group 8h + 2k + 1's in the high one.
      const __m256i s = _mm256_shuffle_epi8(
          sc_half, _mm256_set_m128i(_mm_set1_epi16(short(0x0302 + 0x0404 * k)), _mm_set1_epi16(short(0x0100 + 0x0404 * k))));
      for (int t = 0; t < N; ++t) {
        const __m256i p = _mm256_maddubs_epi16(q[k], load256(xs[t][b].qs + 128 * h + 32 * k));
        sums[t] = _mm256_add_epi32(sums[t], _mm256_madd_epi16(p, s));
      }
    }
  }
}

template <int N>
void dot_q6_k(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const BlockQ6_K* w = static_cast<const BlockQ6_K*>(w_row);
  const BlockQ8_K* xs[N];
  for (int t = 0; t < N; ++t) xs[t] = x_row<BlockQ8_K>(x, x_stride, t);
  // Each block's exact sum added with one scalar fused multiply-add, as the eight-row kernels do
  // per lane.
  float acc[N] = {};
  for (int64_t b = 0; b < cols / QK_K; ++b) {
    prefetch_ahead(w + b, int64_t(sizeof(w[0])));
    __m256i sums[N];
    q6k_block_sums<N>(w[b], xs, b, sums);
    const float d = half_to_float(w[b].d);
    for (int t = 0; t < N; ++t) acc[t] = fma_block(d * xs[t][b].d, hsum_i32(sums[t]), acc[t]);
  }
  for (int t = 0; t < N; ++t) out[t] = acc[t];
}

// Q6_K rows read in place (generation): KQuantRows8 over q6k_block_sums.
struct Q6KFormat {
  using Block = BlockQ6_K;
  static constexpr bool kMins = false;
  template <int N>
  static void sums(const Block& wb, const BlockQ8_K* const* xs, int64_t b, const __m256i*, __m256i* out) {
    q6k_block_sums<N>(wb, xs, b, out);
  }
};
template <int N> using Q6KRows8 = KQuantRows8<N, Q6KFormat>;

// ---- Q6_K tiles (prompt processing) ----
//
// As for Q4_K: 8 rows interleaved 4 columns at a time, a token's 4 activation bytes broadcast.
// Scales cover 16 columns, and a maddubs of six-bit levels can reach 2 * 63 * 127, so two
// maddubs are summed in int16 (at most 32004) before each madd by the 8 rows' scales.

struct alignas(32) Q6KTileBlock {
  uint8_t q[16][4][32];   // [group k of 16 columns][column quad g][4 * row + c] = level (0..63)
  int16_t scales[16][16];  // [k][2 * row] = [k][2 * row + 1] = the row's scale of group k
  int16_t bias[8][16];     // [k][2 * row + e] = the row's scale of group 2 k + e (for the +32 bias)
  float d[8];              // per row
};

void unpack_q6k_block(Q6KTileBlock& tile, const BlockQ6_K* const* blocks) {
  unpack_q6k_tile<interleave_quads8>(tile, blocks, [&](int row, int k, int8_t scale) {
    tile.scales[k][2 * row] = tile.scales[k][2 * row + 1] = scale;
    tile.bias[k / 2][2 * row + k % 2] = scale;
  });
}

template <int T>
struct Q6KTileTokens {
  static void run(const Q6KTileBlock* tiles, int64_t n_blocks, const BlockQ8_K* const* xs, float* acc) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      const Q6KTileBlock& tile = tiles[b];
      __m256i sums[T];
      for (int t = 0; t < T; ++t) {
        // The +32 bias: 32 * sum_k scale_k * (activation sum of group k), two groups per madd.
        __m256i bias = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k)
          bias = _mm256_add_epi32(bias, _mm256_madd_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(tile.bias[k])),
                                                          broadcast4(xs[t][b].bsums + 2 * k)));
        sums[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(bias, 5));
      }
      for (int k = 0; k < 16; ++k) {
        const __m256i sc = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.scales[k]));
        for (int t = 0; t < T; ++t) {
          const int8_t* xq = xs[t][b].qs + 16 * k;
          const auto pair = [&](int g) {
            return _mm256_add_epi16(
                _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(tile.q[k][g])), broadcast4(xq + 4 * g)),
                _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(tile.q[k][g + 1])),
                                     broadcast4(xq + 4 * g + 4)));
          };
          sums[t] = _mm256_add_epi32(sums[t], _mm256_add_epi32(_mm256_madd_epi16(pair(0), sc), _mm256_madd_epi16(pair(2), sc)));
        }
      }
      const __m256 d = _mm256_load_ps(tile.d);
      for (int t = 0; t < T; ++t) {
        __m256 a = _mm256_loadu_ps(acc + 8 * t);
        a = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[t][b].d)), _mm256_cvtepi32_ps(sums[t]), a);
        _mm256_storeu_ps(acc + 8 * t, a);
      }
    }
  }
};

// 4 Q6_K blocks of 8 rows = 11.1 KB.
constexpr auto rows8_q6_k = rows8<Q6KTileBlock, BlockQ6_K, BlockQ8_K, QK_K, 4, unpack_q6k_block, Q6KTileTokens, Q6KRows8, kQ6KTileMinTokens>;

// ---- float weights (F32, F16, BF16) with float activations ----

template <DType T>
inline __m256 load_w8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (T == DType::F16) return _mm256_cvtph_ps(h);
  else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}


template <DType T>
inline __m256 load_w(const void* w, int64_t i) {
  if constexpr (T == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  else return load_w8<T>(static_cast<const uint16_t*>(w) + i);
}

template <int N, DType T>
void dot_float(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
  const float* xs[N];
  for (int t = 0; t < N; ++t) xs[t] = x_row<float>(x, x_stride, t);
  // Two accumulators per token hide the FMA latency.
  __m256 acc0[N], acc1[N];
  for (int t = 0; t < N; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
  int64_t c = 0;
  constexpr int64_t elem_bytes = T == DType::F32 ? 4 : 2;
  for (; c + 16 <= cols; c += 16) {
    prefetch_ahead(static_cast<const char*>(w_row) + c * elem_bytes, 16 * elem_bytes);
    const __m256 w0 = load_w<T>(w_row, c), w1 = load_w<T>(w_row, c + 8);
    for (int t = 0; t < N; ++t) {
      acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xs[t] + c), acc0[t]);
      acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xs[t] + c + 8), acc1[t]);
    }
  }
  for (int t = 0; t < N; ++t) {
    float s = hsum(_mm256_add_ps(acc0[t], acc1[t]));
    // An explicit fused multiply-add: whether the compiler contracts a * b + c depends on the target.
    for (int64_t i = c; i < cols; ++i) s = std::fma(scalar_w<T>(w_row, i), xs[t][i], s);
    out[t] = s;
  }
}

// ---- Float weights against many tokens (prompts): 2 rows x 3 tokens per register block ----
//
// The row kernel streams every token's activations past each row: with more than a few tokens it
// waits on the L2 cache, not on the FMAs. Here each load feeds more than one FMA: per 16 columns,
// 2 rows' weight vectors and 3 tokens' activation vectors make 12 FMAs into 12 accumulators, on
// columns taken 512 at a time so that the 8 rows' slice and a token group's slice stay in L1.
// Every (row, token) keeps the row kernel's own two accumulators (columns 16i .. 16i + 7 and
// 16i + 8 .. 16i + 15, in column order), its final sum and its column tail, so a token's result is
// bit-identical to dot_float's whichever kernel ran.
constexpr int kFloatTileTokens = 3;
constexpr int64_t kFloatChunkCols = 512;
// Accumulators of one register block, in memory between column chunks: [row][token][half] x 8 lanes.
constexpr int kFloatBlockFloats = 2 * kFloatTileTokens * 2 * 8;

template <DType Type, int T>
void float_block(const void* w0, const void* w1, const float* const* xs, int64_t c0, int64_t n16, float* acc) {
  __m256 a[2][T][2];
  for (int r = 0; r < 2; ++r)
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < 2; ++h) a[r][t][h] = _mm256_loadu_ps(acc + ((r * kFloatTileTokens + t) * 2 + h) * 8);
  for (int64_t c = c0; c < c0 + 16 * n16; c += 16) {
    for (int h = 0; h < 2; ++h) {
      const __m256 wa = load_w<Type>(w0, c + 8 * h), wb = load_w<Type>(w1, c + 8 * h);
      for (int t = 0; t < T; ++t) {
        // Loaded once into a register for both rows: left to itself, GCC folds the load into
        // each FMA and reads it twice, and this loop is bound by loads, not by FMAs.
        __m256 x = _mm256_loadu_ps(xs[t] + c + 8 * h);
        __asm__("" : "+x"(x));
        a[0][t][h] = _mm256_fmadd_ps(wa, x, a[0][t][h]);
        a[1][t][h] = _mm256_fmadd_ps(wb, x, a[1][t][h]);
      }
    }
  }
  for (int r = 0; r < 2; ++r)
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(acc + ((r * kFloatTileTokens + t) * 2 + h) * 8, a[r][t][h]);
}

template <DType Type>
void rows8_float(const uint8_t* w_rows, int64_t w_row_bytes, const void* x, int64_t x_stride, int64_t n_tok, int64_t cols,
                 float* out, int64_t out_stride) {
  const int64_t n_groups = (n_tok + kFloatTileTokens - 1) / kFloatTileTokens;
  const int64_t body = cols / 16 * 16;
  thread_local std::vector<float> acc;  // [token group][row pair] blocks
  acc.assign(size_t(n_groups * 4 * kFloatBlockFloats), 0.f);
  const auto row = [&](int r) -> const void* { return w_rows + r * w_row_bytes; };
  const auto group_tokens = [&](int64_t g, const float** xs) {
    const int n = int(std::min<int64_t>(kFloatTileTokens, n_tok - g * kFloatTileTokens));
    for (int t = 0; t < n; ++t) xs[t] = x_row<float>(x, x_stride, int(g * kFloatTileTokens + t));
    return n;
  };
  for (int64_t c0 = 0; c0 < body; c0 += kFloatChunkCols) {
    const int64_t n16 = (std::min(body, c0 + kFloatChunkCols) - c0) / 16;
    for (int64_t g = 0; g < n_groups; ++g) {
      const float* xs[kFloatTileTokens];
      const int n = group_tokens(g, xs);
      for (int p = 0; p < 4; ++p) {
        float* a = acc.data() + (g * 4 + p) * kFloatBlockFloats;
        switch (n) {
          case 1: float_block<Type, 1>(row(2 * p), row(2 * p + 1), xs, c0, n16, a); break;
          case 2: float_block<Type, 2>(row(2 * p), row(2 * p + 1), xs, c0, n16, a); break;
          default: float_block<Type, 3>(row(2 * p), row(2 * p + 1), xs, c0, n16, a); break;
        }
      }
    }
  }
  for (int64_t g = 0; g < n_groups; ++g) {
    const float* xs[kFloatTileTokens];
    const int n = group_tokens(g, xs);
    for (int r = 0; r < 8; ++r)
      for (int t = 0; t < n; ++t) {
        const float* a = acc.data() + (g * 4 + r / 2) * kFloatBlockFloats + ((r % 2 * kFloatTileTokens + t) * 2) * 8;
        float s = hsum(_mm256_add_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(a + 8)));
        for (int64_t i = body; i < cols; ++i) s = std::fma(scalar_w<Type>(row(r), i), xs[t][i], s);
        out[(g * kFloatTileTokens + t) * out_stride + r] = s;
      }
  }
}

template <int N> struct Q8_0K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q8_0<N>(w, x, s, c, o); } };
template <int N> struct Q4_0K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q4_0<N>(w, x, s, c, o); } };
template <int N> struct Q4_KK { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q45_k<N, false, BlockQ4_K>(w, x, s, c, o); } };
template <int N> struct Q5_KK { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q45_k<N, true, BlockQ5_K>(w, x, s, c, o); } };
template <int N> struct Q6_KK { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_q6_k<N>(w, x, s, c, o); } };
template <int N> struct F32K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_float<N, DType::F32>(w, x, s, c, o); } };
template <int N> struct F16K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_float<N, DType::F16>(w, x, s, c, o); } };
template <int N> struct BF16K { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { dot_float<N, DType::BF16>(w, x, s, c, o); } };

constexpr RowKernel kQ8_0{ActFormat::Q8x32, dot_for_tokens<Q8_0K>, rows8_q8_0};
constexpr RowKernel kQ4_0{ActFormat::Q8x32, dot_for_tokens<Q4_0K>};
constexpr RowKernel kQ4_K{ActFormat::Q8K, dot_for_tokens<Q4_KK>, rows8_q4_k};
constexpr RowKernel kQ5_K{ActFormat::Q8K, dot_for_tokens<Q5_KK>};
constexpr RowKernel kQ6_K{ActFormat::Q8K, dot_for_tokens<Q6_KK>, rows8_q6_k};
constexpr RowKernel kF32{ActFormat::F32, dot_for_tokens<F32K>, rows8_float<DType::F32>, kFloatTileMinTokens};
constexpr RowKernel kF16{ActFormat::F32, dot_for_tokens<F16K>, rows8_float<DType::F16>, kFloatTileMinTokens};
constexpr RowKernel kBF16{ActFormat::F32, dot_for_tokens<BF16K>, rows8_float<DType::BF16>, kFloatTileMinTokens};

}  // namespace

int32_t probe_int8_madd(int64_t rounds) {
  // Eight chains, each with its own weights; the activations pass an empty asm statement every
  // round, so the compiler can neither hoist nor merge the products.
  __m256i w[8], acc[8];
  for (int i = 0; i < 8; ++i) {
    w[i] = _mm256_set1_epi8(char(i + 1));
    acc[i] = _mm256_setzero_si256();
  }
  __m256i x = _mm256_set1_epi8(3);
  for (int64_t r = 0; r < rounds; ++r) {
    __asm__ volatile("" : "+x"(x));
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_add_epi16(acc[i], _mm256_maddubs_epi16(w[i], x));
  }
  __m256i sum = acc[0];
  for (int i = 1; i < 8; ++i) sum = _mm256_add_epi16(sum, acc[i]);
  return _mm256_extract_epi16(sum, 0);
}

float probe_float_fma(int64_t rounds) {
  // Twelve chains: enough to cover the fused multiply-add latency on two pipes.
  __m256 w[12], acc[12];
  for (int i = 0; i < 12; ++i) {
    w[i] = _mm256_set1_ps(1.f + 1e-7f * float(i));
    acc[i] = _mm256_setzero_ps();
  }
  __m256 x = _mm256_set1_ps(1e-7f);
  for (int64_t r = 0; r < rounds; ++r) {
    __asm__ volatile("" : "+x"(x));
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(w[i], x, acc[i]);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  return hsum(sum);
}

void add_lane_sides_avx2(void* row, int64_t cols) {
  const int64_t n_blocks = cols / quants::QK_K;
  const auto* blocks = static_cast<const quants::BlockQ8_K*>(row);
  auto* sides = const_cast<LaneSides*>(lane_sides(row, n_blocks));
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < n_blocks; ++b)
    for (int i = 0; i < 8; ++i) {
      // 128-bit lane L: sub-block g = 2 i + L; dword k = the sum of its activations 4 k .. 4 k + 3.
      const __m256i quads = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, load256(blocks[b].qs + 32 * i)), ones16);
      // Dword e (0, 1) of each lane: half e's 8 activations; not(32 s) = -32 s - 1.
      const __m256i halves = _mm256_add_epi32(quads, _mm256_shuffle_epi32(quads, _MM_SHUFFLE(3, 2, 3, 2)));
      const __m256i starts = _mm256_xor_si256(_mm256_slli_epi32(halves, 5), _mm256_set1_epi32(-1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(sides[b].q6_starts[2 * i]), _mm256_castsi256_si128(_mm256_permute4x64_epi64(starts, 0x08)));
    }
}

void quantize_q8_k_avx2(const float* x, quants::BlockQ8_K* y, int64_t n) {
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // packs_epi32 then packs_epi16 interleave 128-bit lanes; this puts the bytes back in order.
  const __m256i in_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / quants::QK_K; ++b, x += quants::QK_K) {
    quants::BlockQ8_K& out = y[b];
    // max_ps returns its second operand when the first is NaN: NaNs are skipped, as the
    // reference's `ax > amax` skips them.
    __m256 amax8 = _mm256_setzero_ps();
    for (int j = 0; j < quants::QK_K; j += 8) amax8 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), magnitude), amax8);
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (amax == 0) {
      std::memset(&out, 0, sizeof(out));
      continue;
    }
    // The scale's sign is that of the first value of largest magnitude.
    int first = 0;
    for (int j = 0; j < quants::QK_K; j += 8) {
      const __m256 hit = _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), magnitude), _mm256_set1_ps(amax), _CMP_EQ_OQ);
      if (const int mask = _mm256_movemask_ps(hit)) {
        first = j + __builtin_ctz(unsigned(mask));
        break;
      }
    }
    const float iscale = -127.f / x[first];
    if (!std::isfinite(iscale)) {
      // A block so small (below about 4e-37) that the scale overflows: the reference's levels
      // come from its rounding trick applied to infinities, which a conversion does not copy.
      quants::quantize_q8_k(x, &out, quants::QK_K);
      continue;
    }
    const __m256 scale = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int j = 0; j < quants::QK_K; j += 32) {
      // Round to nearest even, as nearest_int does (exact: |iscale * x| <= 127).
      __m256i q[4];
      for (int k = 0; k < 4; ++k)
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(scale, _mm256_loadu_ps(x + j + 8 * k))), top);
      for (int h = 0; h < 2; ++h) {
        const __m256i sum16 = _mm256_add_epi32(q[2 * h], q[2 * h + 1]);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum16), _mm256_extracti128_si256(sum16, 1));
        s = _mm_hadd_epi32(s, s);
        s = _mm_hadd_epi32(s, s);
        out.bsums[(j + 16 * h) / 16] = int16_t(_mm_cvtsi128_si32(s));
      }
      const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.qs + j), _mm256_permutevar8x32_epi32(bytes, in_order));
    }
    out.d = 1 / iscale;
  }
}

const RowKernel* avx2_kernel(DType weight_type) {
  switch (weight_type) {
    case DType::Q8_0: return &kQ8_0;
    case DType::Q4_0: return &kQ4_0;
    case DType::Q4_K: return &kQ4_K;
    case DType::Q5_K: return &kQ5_K;
    case DType::Q6_K: return &kQ6_K;
    case DType::F32: return &kF32;
    case DType::F16: return &kF16;
    case DType::BF16: return &kBF16;
    default: return nullptr;
  }
}

}  // namespace csq::kernels::cpu

#include "kernels/cpu/avx2_end.h"

#endif  // x86
