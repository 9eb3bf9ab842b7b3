// AVX-512 kernels for the fast matrix product (F, BW, VL and VNNI): the eight-row kernels of the
// Q4_K, Q6_K and Q8_0 weights and the row kernels of the float weights. Compiled for that target
// with a pragma and called only after cpu_has_avx512().
//
// Every kernel here computes the same exact integer block sums as its AVX2 counterpart and then
// the same float operations in the same order, so its results are bit-identical to the AVX2
// kernels': which ISA ran never changes an answer, the AVX2 row kernel can take a last partial
// group of rows, and the tests compare the two bit for bit.
//
// One token (Q4_K: up to two) reads eight rows in place as the AVX2 kernels do, 64 levels per
// instruction instead of 32; for the k-quants two vpdpbusd results share one vpdpwssd (packed to
// 16 bits). Decode batches and prompts hold 16 rows in the lanes of a vector instead, each
// token's activation bytes broadcast to them (rows_in_lanes for Q4_K and Q6_K, rows_q8_0_lanes
// for Q8_0), with the AMX int8 tiles taking over from their thresholds where the CPU has AMX.
//
// With CSQ_AVX512_EMULATED the file is compiled again for the tests, with SIMDe implementing the
// AVX-512 intrinsics on AVX2 (entry points suffixed _emulated): the kernels' logic is then checked
// on any AVX2 machine, the instructions themselves only where the CPU has them.
// x86 only: elsewhere this file compiles to nothing and the dispatchers keep to the reference.
#if defined(__x86_64__) || defined(__i386__)

#if defined(CSQ_AVX512_EMULATED)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>
// SIMDe 0.7.4 (Debian 12) declares this alias with the masked form's four parameters.
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#else
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/fast_kernels.h"

#if !defined(CSQ_AVX512_EMULATED)
#include "kernels/cpu/avx512_begin.h"
#endif
#include "kernels/cpu/simd_common.h"

#if defined(CSQ_AVX512_EMULATED)
#define CSQ_AVX512_ENTRY(name) name##_emulated
#else
#define CSQ_AVX512_ENTRY(name) name
#endif

namespace csq::kernels::cpu {
namespace {

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline __m512i load_two256(const void* lo, const void* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load256(lo)), load256(hi), 1);
}

// 8 bytes at p in every 64-bit lane.
inline __m512i broadcast8(const void* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}

// The two 256-bit halves added: 8 lanes whose sum is v's.
inline __m256i fold_halves(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

// Two vectors of 4-term dpbusd sums, each of which fits 16 bits, packed into one (vpackssdw: per 128-bit lane a's 4 sums, then b's,
// exactly) and scaled with one vpdpwssd: in each 128-bit lane, scales holds the int16 scale of
// a's sums in words 0-3 and of b's in words 4-7. One instruction leaves the dot-product port (the
// pack runs on the shuffle port): that port bounds the in-place kernels at several tokens.
inline __m512i add_scaled_pair(__m512i acc, __m512i a, __m512i b, __m512i scales) {
  return _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(a, b), scales);
}
// A vpshufb control selecting int16 word s in both halves of a 32-bit lane.
constexpr int pick_word2(int s) { return (2 * s | (2 * s + 1) << 8) * 0x10001; }

// 128-bit lanes of a (0-3) and b (4-7): vshufi64x2's selection, which SIMDe 0.7.4 lacks.
template <int L0, int L1, int L2, int L3>
inline __m512i pick_lanes(__m512i a, __m512i b) {
  return _mm512_permutex2var_epi64(a, _mm512_set_epi64(2 * L3 + 1, 2 * L3, 2 * L2 + 1, 2 * L2, 2 * L1 + 1, 2 * L1, 2 * L0 + 1, 2 * L0), b);
}

// ---- Q4_K ----

// Block sums of one row in place: q45k_block_sums of the AVX2 file with 64 levels per vector.
// Each 32 bytes of qs hold sub-block 2i in the low nibbles and 2i+1 in the high ones: the two
// halves of one vector give elements 64i .. 64i+63 in order, against one 64-byte activation load.
// Per token and 64 levels one vpdpbusd (4-term sums, at most 4 * 15 * 127 = 7620: 16 bits) and
// one vpdpwssd by the sub-block scale: the lanes of AVX2's vpmaddubsw + vpmaddwd + vpaddd, exactly.
struct Q4KFormat512 {
  using Block = BlockQ4_K;
  static constexpr bool kMins = true;
  // Per token, 16 lanes whose sum is sum_j scale_j * (levels of sub-block j . activations).
  template <int N>
  static void levels(const Block& wb, const BlockQ8_K* const* xs, int64_t b, __m512i* out) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    // The 8 scales as int16 in every 128-bit lane.
    const __m512i scales = _mm512_broadcast_i32x4(_mm256_castsi256_si128(scales_mins_k4_i16(wb.scales)));
    for (int t = 0; t < N; ++t) out[t] = _mm512_setzero_si512();
    // Pairs i, i + 1 of 64-element groups (sub-blocks 2i, 2i + 1 in 128-bit lanes 0-1, 2-3).
    for (int i = 0; i < 4; i += 2) {
      __m512i q[2];
      for (int k = 0; k < 2; ++k) {
        const __m256i raw = load256(wb.qs + 32 * (i + k));
        q[k] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1), low4);
      }
      const int a0 = pick_word2(2 * i), a1 = pick_word2(2 * i + 1), b0 = pick_word2(2 * i + 2), b1 = pick_word2(2 * i + 3);
      const __m512i s = _mm512_shuffle_epi8(scales, _mm512_set_epi32(b1, b1, a1, a1, b1, b1, a1, a1, b0, b0, a0, a0, b0, b0, a0, a0));
      for (int t = 0; t < N; ++t) {
        const int8_t* xq = xs[t][b].qs + 64 * i;
        const __m512i sa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], load512(xq));
        const __m512i sb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1], load512(xq + 64));
        out[t] = add_scaled_pair(out[t], sa, sb, s);
      }
    }
  }
  template <int N>
  static void sums(const Block& wb, const BlockQ8_K* const* xs, int64_t b, const __m256i* x_sub, __m256i* out) {
    __m512i lv[N];
    levels<N>(wb, xs, b, lv);
    const __m256i scales_mins = scales_mins_k4_i16(wb.scales);
    for (int t = 0; t < N; ++t)
      out[t] = _mm256_hadd_epi32(fold_halves(lv[t]), _mm256_madd_epi16(scales_mins, x_sub[t]));
  }
};

// ---- One token, rows in place (generation, single stream) ----
//
// A stream's decode step spends nearly all its time here, and two threads must keep ~17 GB/s each
// in flight: KQuantRows8<1> issued about 45 vector instructions per row and block on the two
// 512-bit ports (1 thread, weights in L2: 8.2 ns per Q4_K block, against the 8.5 ns that 17 GB/s
// leaves). This kernel computes the same exact integers with fewer:
// - the activations are laid out once per call in the order of a whole 64-byte load of the
//   weights' nibbles (low nibbles of qs[0..63] are elements 0-31 and 64-95), so the levels need
//   a shift and two masks per 128 levels and no lane inserts;
// - each row's block leaves its 16 lanes in a buffer untouched, and 8 rows' blocks are reduced
//   together (sum_rows16), where KQuantRows8 folded each to 8 lanes and reduced with vphaddd;
// - the Q4_K mins term is formed for 8 rows at once in that pass from the rows' 8 mins (bytes).
// Each (row, block) then takes KQuantRows8's multiply-adds in block order: bit-identical.

// Lane r of the result is the sum of v[r]'s 16 lanes (exact): interleave-and-add in three rounds.
inline __m256i sum_rows16(const __m512i* v) {
  __m512i pairs[4];  // per 128-bit lane [row 2p, row 2p + 1, row 2p, row 2p + 1]
  for (int p = 0; p < 4; ++p)
    pairs[p] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * p], v[2 * p + 1]), _mm512_unpackhi_epi32(v[2 * p], v[2 * p + 1]));
  // Per 128-bit lane [row 0, 1, 2, 3] and [row 4, 5, 6, 7], a quarter of each row's sum per lane.
  const __m512i q0 = _mm512_add_epi32(_mm512_unpacklo_epi64(pairs[0], pairs[1]), _mm512_unpackhi_epi64(pairs[0], pairs[1]));
  const __m512i q1 = _mm512_add_epi32(_mm512_unpacklo_epi64(pairs[2], pairs[3]), _mm512_unpackhi_epi64(pairs[2], pairs[3]));
  // [q0 lanes 0+1, q0 2+3, q1 0+1, q1 2+3], then the halves [q0, q1] added.
  const __m512i even = pick_lanes<0, 2, 4, 6>(q0, q1), odd = pick_lanes<1, 3, 5, 7>(q0, q1);
  const __m512i u = _mm512_add_epi32(even, odd);
  const __m512i t = pick_lanes<0, 2, 1, 3>(u, u);
  return _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
}

// A vpshufb control that puts byte `lo` of each 128-bit lane in words 0-3 and byte `hi` in words
// 4-7 (high bytes zero): a sub-block scale per packed 4-lane group.
inline __m512i word_picks(int lo0, int hi0, int lo1, int hi1) {
  const auto words = [](int byte) { return int64_t(uint64_t(0x0001000100010001) * uint64_t(0x8000 | byte)); };
  return _mm512_set_epi64(words(hi1), words(lo1), words(hi1), words(lo1), words(hi0), words(lo0), words(hi0), words(lo0));
}

struct Q4KOneToken {
  static constexpr int64_t kChunk = 32;  // blocks per pass over the 8 rows: 16 KB of lane sums
  static void run(const uint8_t* w_rows, int64_t w_row_bytes, const BlockQ8_K* const* xs, int64_t n_blocks, float* out,
                  int64_t) {
    alignas(64) __m512i x_perm[kChunk][4];
    alignas(64) __m512i lanes[kChunk][8];
    alignas(16) __m128i x_sub[kChunk];
    alignas(32) uint8_t mins[kChunk][8][8];
    alignas(16) uint16_t d_half[kChunk][8], dmin_half[kChunk][8];
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    // Sub-blocks 0-3 pack as [0 0 1 1 | 2 2 3 3] in 4-word groups per 128-bit lane, 4-7 likewise.
    const __m512i picks_lo = word_picks(0, 1, 2, 3), picks_hi = word_picks(4, 5, 6, 7);
    __m256 acc = _mm256_setzero_ps();
    const BlockQ8_K* x = xs[0];
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunk) {
      const int64_t nb = std::min(kChunk, n_blocks - b0);
      for (int64_t i = 0; i < nb; ++i) {
        const int8_t* q = x[b0 + i].qs;
        for (int k = 0; k < 2; ++k) {
          x_perm[i][2 * k] = load_two256(q + 128 * k, q + 128 * k + 64);
          x_perm[i][2 * k + 1] = load_two256(q + 128 * k + 32, q + 128 * k + 96);
        }
        x_sub[i] = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b0 + i].bsums)),
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b0 + i].bsums + 8)));
      }
      for (int r = 0; r < 8; ++r) {
        const BlockQ4_K* w = reinterpret_cast<const BlockQ4_K*>(w_rows + r * w_row_bytes) + b0;
        for (int64_t i = 0; i < nb; ++i) {
          prefetch_ahead(w + i, int64_t(sizeof(BlockQ4_K)));
          d_half[i][r] = w[i].d;
          dmin_half[i][r] = w[i].dmin;
          const __m128i scales_mins = scales_mins_k4_u8(w[i].scales);
          _mm_storeh_pd(reinterpret_cast<double*>(mins[i][r]), _mm_castsi128_pd(scales_mins));
          const __m512i scales = _mm512_broadcast_i32x4(scales_mins);
          __m512i sum = _mm512_setzero_si512();
          for (int k = 0; k < 2; ++k) {
            // Sub-blocks 4k, 4k + 2 in the low nibbles, 4k + 1, 4k + 3 in the high ones; each
            // vpdpbusd lane at most 4 * 15 * 127 = 7620, packed to 16 bits exactly.
            const __m512i raw = load512(w[i].qs + 64 * k);
            const __m512i lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(raw, low4), x_perm[i][2 * k]);
            const __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4),
                                                   x_perm[i][2 * k + 1]);
            sum = add_scaled_pair(sum, lo, hi, _mm512_shuffle_epi8(scales, k ? picks_hi : picks_lo));
          }
          lanes[i][r] = sum;
        }
      }
      for (int64_t i = 0; i < nb; ++i) {
        const __m256i levels = sum_rows16(lanes[i]);
        // sum_j min_j * (activation sum of sub-block j): a row's 4 pair sums per 128-bit lane,
        // then the rows' lanes added as in sum_rows16.
        const __m512i sub = _mm512_broadcast_i32x4(x_sub[i]);
        // (Mins are at most 63: sign extension is exact.)
        const __m512i m03 = _mm512_madd_epi16(_mm512_cvtepi8_epi16(load256(mins[i][0])), sub);
        const __m512i m47 = _mm512_madd_epi16(_mm512_cvtepi8_epi16(load256(mins[i][4])), sub);
        const __m512i a = pick_lanes<0, 1, 4, 5>(m03, m47), b = pick_lanes<2, 3, 6, 7>(m03, m47);  // rows 0 1 4 5, 2 3 6 7
        __m512i m = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
        m = _mm512_add_epi32(m, _mm512_unpackhi_epi64(m, m));  // [a's row, b's row] in dwords 0-1 of each lane
        const __m256i min_sums = _mm512_castsi512_si256(_mm512_permutexvar_epi32(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 12, 8, 5, 1, 4, 0), m));
        const __m256 d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d_half[i])));
        const __m256 neg_dmin =
            _mm256_xor_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dmin_half[i]))), _mm256_set1_ps(-0.f));
        const __m256 dx = _mm256_set1_ps(x[b0 + i].d);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(levels), acc);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(neg_dmin, dx), _mm256_cvtepi32_ps(min_sums), acc);
      }
    }
    _mm256_storeu_ps(out, acc);
  }
};

template <int N> using Q4KRows8 = std::conditional_t<N == 1, Q4KOneToken, KQuantRows8<N, Q4KFormat512>>;

// ---- Q6_K ----

// Block sums of one row in place: q6k_block_sums of the AVX2 file with 64 levels per vector.
struct Q6KFormat512 {
  using Block = BlockQ6_K;
  static constexpr bool kMins = false;
  // Per token, 16 lanes whose sum is sum_g scale_g * (levels of group g, +32 bias kept . activations).
  template <int N>
  static void levels(const Block& wb, const BlockQ8_K* const* xs, int64_t b, __m512i* out) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), low2 = _mm512_set1_epi8(3);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales)));
    // Shifts of the high bits for elements 0-31 and 32-63 of each half (2 bits per 32 elements).
    const __m512i shift_a = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0), shift_b = _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4);
    for (int t = 0; t < N; ++t) out[t] = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = load512(wb.ql + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(load256(wb.qh + 32 * h));
      // Elements 128h + 0..63 and 128h + 64..127, levels 0..63 with the +32 bias kept.
      const __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                         _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, shift_a), low2), 4));
      const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                         _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, shift_b), low2), 4));
      // Scales 8h..8h+7 in every 128-bit lane; 128-bit lane L of qa covers group L of the half,
      // of qb group 4 + L.
      const __m512i scales = _mm512_broadcast_i32x4(h == 0 ? _mm256_castsi256_si128(sc16) : _mm256_extracti128_si256(sc16, 1));
      constexpr int p0 = pick_word2(0), p1 = pick_word2(1), p2 = pick_word2(2), p3 = pick_word2(3);
      constexpr int p4 = pick_word2(4), p5 = pick_word2(5), p6 = pick_word2(6), p7 = pick_word2(7);
      const __m512i s = _mm512_shuffle_epi8(scales, _mm512_set_epi32(p7, p7, p3, p3, p6, p6, p2, p2, p5, p5, p1, p1, p4, p4, p0, p0));
      // One 4-term sum reaches 4 * 63 * 127 = 32004: 16 bits, packed and scaled exactly.
      for (int t = 0; t < N; ++t) {
        const int8_t* xq = xs[t][b].qs + 128 * h;
        out[t] = add_scaled_pair(out[t], _mm512_dpbusd_epi32(_mm512_setzero_si512(), qa, load512(xq)),
                                 _mm512_dpbusd_epi32(_mm512_setzero_si512(), qb, load512(xq + 64)), s);
      }
    }
  }
  template <int N>
  static void sums(const Block& wb, const BlockQ8_K* const* xs, int64_t b, const __m256i*, __m256i* out) {
    __m512i lv[N];
    levels<N>(wb, xs, b, lv);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales)));
    // The +32 bias: subtract 32 * sum_g scale_g * (sum of activation group g).
    for (int t = 0; t < N; ++t)
      out[t] = _mm256_sub_epi32(fold_halves(lv[t]), _mm256_slli_epi32(_mm256_madd_epi16(load256(xs[t][b].bsums), sc16), 5));
  }
};
template <int N> using Q6KRows8 = KQuantRows8<N, Q6KFormat512>;

// ---- Q8_0 ----
//
// vpdpbusd multiplies unsigned by signed bytes: the weights go in biased by 128 (unsigned), the
// activations as they are, and each (row, token) block sum comes out 128 times the activations'
// sum too high, the same for every row: BlockQ8x32::bias_correction, added once per token and block.
// One token reads 8 rows in place (Q8_0Rows8); more take 16 rows in vector lanes
// (rows_q8_0_lanes).

// lo in lanes 0-7, hi in 8-15.
inline __m512 join_halves(__m256 lo, __m256 hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}
#if defined(CSQ_AVX512_EMULATED)
// SIMDe 0.7.4 lacks _mm512_cvtepi32_ps: the same conversion in 256-bit halves.
inline __m512 i32_to_f32x16(__m512i v) {
  return join_halves(_mm256_cvtepi32_ps(_mm512_castsi512_si256(v)), _mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(v, 1)));
}
#else
inline __m512 i32_to_f32x16(__m512i v) { return _mm512_cvtepi32_ps(v); }
#endif
// Lanes 8-15.
inline __m256 high_half(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
// SIMDe 0.7.4 lacks _mm512_cvtph_ps and _mm512_cvtepu16_epi32: the emulated build does the same
// conversions in 256-bit halves.
#if defined(CSQ_AVX512_EMULATED)
inline __m512 f16_to_f32x16(__m256i h) {
  return join_halves(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)));
}
inline __m512i u16_to_u32x16(__m256i h) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h))),
                            _mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 1);
}
#else
inline __m512 f16_to_f32x16(__m256i h) { return _mm512_cvtph_ps(h); }
inline __m512i u16_to_u32x16(__m256i h) { return _mm512_cvtepu16_epi32(h); }
#endif

// Two rows' sums of two blocks (lanes 0-7 block b, 8-15 block b + 1; 8 lanes each to be added
// up), half-reduced together: in every 128-bit lane, [r0, r1, r0, r1] partial sums (exact).
inline __m512i reduce_row_pair(__m512i r0, __m512i r1) {
  return _mm512_add_epi32(_mm512_unpacklo_epi32(r0, r1), _mm512_unpackhi_epi32(r0, r1));
}
// The four row pairs' halves reduced to lane r = row r's sum of block b, lane 8 + r of block b + 1.
inline __m512i reduce_rows8x2(const __m512i* pairs) {
  const __m512i r0123 = _mm512_add_epi32(_mm512_unpacklo_epi64(pairs[0], pairs[1]), _mm512_unpackhi_epi64(pairs[0], pairs[1]));
  const __m512i r4567 = _mm512_add_epi32(_mm512_unpacklo_epi64(pairs[2], pairs[3]), _mm512_unpackhi_epi64(pairs[2], pairs[3]));
  // 128-bit lanes of r0123: rows 0-3 over block b's lanes 0-3, its lanes 4-7, block b+1's 0-3, 4-7.
  const __m512i first = pick_lanes<0, 4, 2, 6>(r0123, r4567), second = pick_lanes<1, 5, 3, 7>(r0123, r4567);
  return _mm512_add_epi32(first, second);
}

// Q8_0 rows read in place (generation), two blocks of each row per vector, block b of the 8 rows
// in turn as in the AVX2 kernel. The weights go in biased by 128 (one xor per row and pair of
// blocks), the activations as they are, so a row's sums exceed the exact ones by 128 times the
// activations' sum, the same for every row: BlockQ8x32::bias_correction, added once per token and block.
// The 8 rows' sums of both blocks are reduced together in 512-bit registers, a lane per (block,
// row), and each block weighed as the tile kernel does: the same integers and float operations.
template <int N>
struct Q8_0Rows8 {
  static void run(const uint8_t* w_rows, int64_t w_row_bytes, const BlockQ8x32* const* xs, int64_t n_blocks, float* out,
                  int64_t out_stride) {
    const __m512i bias = _mm512_set1_epi8(char(0x80));
    __m256 acc[N];
    for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= n_blocks; b += 2) {
      prefetch_next_group(w_rows + b * int64_t(sizeof(BlockQ8_0)), w_row_bytes, 2 * 64);
      __m512i x[N];
      for (int t = 0; t < N; ++t) x[t] = load_two256(xs[t][b].qs, xs[t][b + 1].qs);
      __m512i pairs[N][4];
      alignas(32) uint16_t d_half[16];  // rows' scales of block b, then of block b + 1
      for (int r = 0; r < 8; r += 2) {
        const BlockQ8_0* w0 = reinterpret_cast<const BlockQ8_0*>(w_rows + r * w_row_bytes) + b;
        const BlockQ8_0* w1 = reinterpret_cast<const BlockQ8_0*>(w_rows + (r + 1) * w_row_bytes) + b;
        d_half[r] = w0[0].d, d_half[r + 1] = w1[0].d, d_half[8 + r] = w0[1].d, d_half[9 + r] = w1[1].d;
        const __m512i q0 = _mm512_xor_si512(load_two256(w0[0].qs, w0[1].qs), bias);
        const __m512i q1 = _mm512_xor_si512(load_two256(w1[0].qs, w1[1].qs), bias);
        for (int t = 0; t < N; ++t)
          pairs[t][r / 2] = reduce_row_pair(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, x[t]),
                                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), q1, x[t]));
      }
      const __m512 d = f16_to_f32x16(load256(d_half));
      for (int t = 0; t < N; ++t) {
        const __m512i correction =
            _mm512_inserti64x4(_mm512_set1_epi32(xs[t][b].bias_correction), _mm256_set1_epi32(xs[t][b + 1].bias_correction), 1);
        const __m512 sums = i32_to_f32x16(_mm512_add_epi32(reduce_rows8x2(pairs[t]), correction));
        const __m512 scale = _mm512_mul_ps(d, join_halves(_mm256_set1_ps(xs[t][b].d), _mm256_set1_ps(xs[t][b + 1].d)));
        acc[t] = _mm256_fmadd_ps(_mm512_castps512_ps256(scale), _mm512_castps512_ps256(sums), acc[t]);
        acc[t] = _mm256_fmadd_ps(high_half(scale), high_half(sums), acc[t]);
      }
    }
    if (b < n_blocks) {
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
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[t][b].d)), _mm256_cvtepi32_ps(sum_lanes8(sums[t])), acc[t]);
    }
    for (int t = 0; t < N; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
  }
};

// ---- Q8_0 rows in vector lanes (decode batches and prompts) ----
//
// Lane r of every vector is weight row r of a group of 16: one vpdpbusd multiplies 4 consecutive
// levels of each of the 16 rows (biased by 128: unsigned) by a token's 4 activation bytes
// broadcast from memory ({1to16}), 64 multiply-adds into 16 (row, token) block sums with no
// reduction, so the block's 8 vpdpbusd leave the 16 rows' exact sums in one vector, and the block
// is weighed for the 16 rows at once: a conversion, the d * dx product and a fused multiply-add,
// the row kernels' float operations lane for lane, in block order (bit-identical). The weights
// stay in place: a chunk of 16 blocks of 2 x 16 rows is brought into lane order in registers (two
// rows per vector, two rounds of unpacks and one two-source lane pick: a 16 x 8 transpose of
// 32-bit words) into an L1 buffer that every group of up to 6 tokens then reads, its 2 x 6
// accumulators in registers. Per 16 rows and block: 8 loads, 8 inserts, 8 xors (the bias), 16
// unpacks and 8 picks, shared by all tokens; per token 8 vpdpbusd and 3 float operations on the
// two vector ports, and loads: each activation broadcast feeds both groups of rows, the bias's
// broadcast starts the sum. Instruction counts and timings: docs/performance.md.

struct alignas(64) Q8_0LaneBlock {
  uint8_t q[8][64];  // [column quad k][4 * r + c] = level(row r, 4 k + c) + 128
  float d[16];       // per row
};
constexpr int64_t kQ8LaneChunk = 16;  // blocks per pass: 2 x 9 KB of lane-ordered weights
constexpr int kLaneRows = 16;  // weight rows per vector (and per lane-ordered block): one per 32-bit lane
constexpr int kQ8LaneTokens = 6;      // tokens per pass over the chunk
// Decode batches from this many tokens on (and prompts) take the lanes; one token keeps Q8_0Rows8,
// bound by memory either way (1 thread, CPU time, 9728 x 2560 read from memory, three alternating
// pairs: 1 token 2.11-2.15 ms in place, 2.06-2.12 in lanes; 2 tokens 2.32-2.36 against
// 2.19-2.28; 4 tokens 2.71-2.78 against 2.41-2.47).
constexpr int64_t kQ8LaneMinTokens = 2;

// Block b of rows[0..15] (blocks[r] points at row r's first block of the chunk) in lane order.
inline void q8_0_lane_order(const BlockQ8_0* const* blocks, int64_t b, Q8_0LaneBlock& out) {
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  alignas(32) uint16_t d_half[16];
  __m512i v[8];  // [row i | row i + 8]
  for (int i = 0; i < 8; ++i) {
    d_half[i] = blocks[i][b].d, d_half[i + 8] = blocks[i + 8][b].d;
    v[i] = _mm512_xor_si512(load_two256(blocks[i][b].qs, blocks[i + 8][b].qs), bias);
  }
  // Per 128-bit lane, rows 4h .. 4h + 3 (h = 0, 1) of one quad of each half of the vector pairs:
  // u[4h + k] holds quad k of rows 4h..4h+3 in 128-bit lane 0, quad 4 + k in lane 1, and the
  // same of rows 8 + 4h .. in lanes 2 and 3.
  __m512i u[8];
  for (int h = 0; h < 2; ++h) {
    const __m512i* w = v + 4 * h;
    const __m512i t0 = _mm512_unpacklo_epi32(w[0], w[1]), t1 = _mm512_unpackhi_epi32(w[0], w[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(w[2], w[3]), t3 = _mm512_unpackhi_epi32(w[2], w[3]);
    u[4 * h] = _mm512_unpacklo_epi64(t0, t2), u[4 * h + 1] = _mm512_unpackhi_epi64(t0, t2);
    u[4 * h + 2] = _mm512_unpacklo_epi64(t1, t3), u[4 * h + 3] = _mm512_unpackhi_epi64(t1, t3);
  }
  for (int k = 0; k < 4; ++k) {
    const __m512i low = pick_lanes<0, 4, 2, 6>(u[k], u[4 + k]), high = pick_lanes<1, 5, 3, 7>(u[k], u[4 + k]);
    _mm512_store_si512(out.q[k], low);
    _mm512_store_si512(out.q[k + 4], high);
  }
  _mm512_store_ps(out.d, f16_to_f32x16(_mm256_load_si256(reinterpret_cast<const __m256i*>(d_half))));
}

inline __m512i broadcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// *p in every lane, one load per call: GCC would broadcast once and copy the register for each
// further use (an operation on the vector ports each, where a second broadcast load costs none).
#if defined(CSQ_AVX512_EMULATED)
inline __m512i broadcast_load(const int32_t* p) { return _mm512_set1_epi32(*p); }
#else
inline __m512i broadcast_load(const int32_t* p) {
  __m512i v;
  __asm__ volatile("vpbroadcastd %1, %0" : "=v"(v) : "m"(*p));
  return v;
}
#endif

// T tokens (xs[t] at the chunk's first block) against nb lane-ordered blocks of G groups of 16
// rows (group g's at lanes + g * kQ8LaneChunk): acc[2 t + g] (16 rows of token t) += each
// block's d * dx times its exact sum. Each sum starts from the token block's bias correction
// (-128 times its levels' sum: what the weights' bias adds, taken off). Each activation broadcast
// feeds both groups: one load per vpdpbusd was what bound a single group of 16 rows.
template <int G, int T>
void q8_0_lane_tokens(const Q8_0LaneBlock* lanes, int64_t nb, const BlockQ8x32* const* xs, float* acc) {
  __m512 a[G][T];
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < T; ++t) a[g][t] = _mm512_load_ps(acc + 16 * (2 * t + g));
  for (int64_t b = 0; b < nb; ++b) {
    // The chains of all (group, token) pairs interleaved: each vpdpbusd waits on the one before
    // it in its chain. At most 32 * 255 * 128 from -128 * 32 * 128: exact in 32 bits.
    __m512i s[G][T];
    for (int g = 0; g < G; ++g)
      for (int t = 0; t < T; ++t) s[g][t] = broadcast_load(&xs[t][b].bias_correction);
    for (int k = 0; k < 8; ++k) {
      __m512i q[G];
      for (int g = 0; g < G; ++g) q[g] = _mm512_load_si512(lanes[g * kQ8LaneChunk + b].q[k]);
      for (int t = 0; t < T; ++t) {
        const __m512i x = broadcast4(xs[t][b].qs + 4 * k);
        for (int g = 0; g < G; ++g) s[g][t] = _mm512_dpbusd_epi32(s[g][t], q[g], x);
      }
    }
    for (int g = 0; g < G; ++g) {
      const __m512 d = _mm512_load_ps(lanes[g * kQ8LaneChunk + b].d);
      for (int t = 0; t < T; ++t)
        a[g][t] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xs[t][b].d)), i32_to_f32x16(s[g][t]), a[g][t]);
    }
  }
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < T; ++t) _mm512_store_ps(acc + 16 * (2 * t + g), a[g][t]);
}

template <int G>
void q8_0_lane_token_group(int tt, const Q8_0LaneBlock* lanes, int64_t nb, const BlockQ8x32* const* xs,
                           float* acc) {
  static_assert(kQ8LaneTokens == 6);
  switch (tt) {
    case 1: return q8_0_lane_tokens<G, 1>(lanes, nb, xs, acc);
    case 2: return q8_0_lane_tokens<G, 2>(lanes, nb, xs, acc);
    case 3: return q8_0_lane_tokens<G, 3>(lanes, nb, xs, acc);
    case 4: return q8_0_lane_tokens<G, 4>(lanes, nb, xs, acc);
    case 5: return q8_0_lane_tokens<G, 5>(lanes, nb, xs, acc);
    default: return q8_0_lane_tokens<G, 6>(lanes, nb, xs, acc);
  }
}

// Rows [0, n_rows) (n_rows <= kRowsFnBlock = 2 groups of 16) against n_tok tokens; a last group
// of fewer rows reads its last row again in the lanes beyond n_rows and stores only its own.
void rows_q8_0_lanes(const uint8_t* w_rows, int64_t w_row_bytes, int64_t n_rows, const void* x, int64_t x_stride,
                     int64_t n_tok, int64_t cols, float* out, int64_t out_stride) {
  static_assert(kRowsFnBlock == 2 * kLaneRows);
  const int64_t n_blocks = cols / 32;
  const int groups = n_rows > kLaneRows ? 2 : 1;
  thread_local std::vector<Q8_0LaneBlock> lanes;
  thread_local std::vector<float> acc_storage;
  lanes.resize(size_t(2 * kQ8LaneChunk));
  acc_storage.resize(size_t(n_tok * 2 * 16 + 16));
  float* acc = cache_line_aligned(acc_storage.data());  // token t, group g at acc + 16 (2 t + g)
  std::fill(acc, acc + n_tok * 2 * 16, 0.f);
  const BlockQ8_0* blocks[2][kLaneRows];
  for (int g = 0; g < groups; ++g)
    for (int64_t r = 0; r < kLaneRows; ++r)
      blocks[g][r] = reinterpret_cast<const BlockQ8_0*>(w_rows + std::min(g * kLaneRows + r, n_rows - 1) * w_row_bytes);
  for (int64_t b0 = 0; b0 < n_blocks; b0 += kQ8LaneChunk) {
    const int64_t nb = std::min(kQ8LaneChunk, n_blocks - b0);
    for (int g = 0; g < groups; ++g)
      for (int64_t i = 0; i < nb; ++i) {
        // The rows that follow (a thread's rows are consecutive: its next block) are requested
        // while these are multiplied, each block's last byte: every line of the rows but a row's
        // first. 32 streams are more than the hardware prefetcher follows.
        for (int r = 0; r < kLaneRows; ++r)
          _mm_prefetch(reinterpret_cast<const char*>(blocks[g][r] + b0 + i) + kRowsFnBlock * w_row_bytes + sizeof(BlockQ8_0) - 1,
                       _MM_HINT_T1);
        q8_0_lane_order(blocks[g], b0 + i, lanes[size_t(g * kQ8LaneChunk + i)]);
      }
    for (int64_t t0 = 0; t0 < n_tok; t0 += kQ8LaneTokens) {
      const int tt = int(std::min<int64_t>(kQ8LaneTokens, n_tok - t0));
      const BlockQ8x32* xs[kQ8LaneTokens];
      for (int t = 0; t < tt; ++t) xs[t] = x_row<BlockQ8x32>(x, x_stride, int(t0 + t)) + b0;
      float* a = acc + 16 * 2 * t0;
      if (groups == 2) q8_0_lane_token_group<2>(tt, lanes.data(), nb, xs, a);
      else q8_0_lane_token_group<1>(tt, lanes.data(), nb, xs, a);
    }
  }
  for (int64_t t = 0; t < n_tok; ++t)
    for (int g = 0; g < groups; ++g)
      std::memcpy(out + t * out_stride + g * kLaneRows, acc + 16 * (2 * t + g),
                  size_t(std::min<int64_t>(kLaneRows, n_rows - g * kLaneRows)) * sizeof(float));
}

// ---- Rows in vector lanes: 16 rows per vector, activations broadcast (decode batches, prompts) ----
//
// Without AMX every integer product of 2 or more tokens runs on vpdpbusd. Read in place, a row's
// sums fill the lanes of a vector and must be reduced per (row, token, block), which cost about as
// much as the products at 8 tokens (the eight-row kernels above). Here one zmm
// holds 16 weight rows, 4 consecutive columns (bytes) per 32-bit lane, and one vpdpbusd against 4
// activation bytes of one token broadcast to every lane (an embedded {1to16} memory operand) adds
// 64 products into 16 (row, token) sums: lane r is row r throughout, so per-row scales and mins
// are lane-aligned vectors, each token's result for 16 rows is one vector, and nothing is reduced
// across lanes. The weights stay where they are in memory: each block of 16 rows is brought into
// lane order in registers (two 16 x 16 transposes of 32-bit words for 128 bytes of levels per
// row), once per block, and that cost is shared by every token (kLaneTokens at a time from the
// lane-ordered block, which stays in L1).
//
// Each (row, token, block) gets the same exact integer sums and then the same float multiply-adds
// in block order as the AVX2 row kernel: bit-identical, whatever the token count or the grouping.
//
// A Format supplies Block, kSides (whether it reads Q8KLanes rows), Lanes (one block of 16 rows in
// lane order) and
//   load(rows, b, lanes): block b of the 16 rows (rows[r]: row r's first block) into lanes;
//   dot<T>(lanes, xs, sides, b, acc): acc[16 t + r] += row r . token t's block b, in the row kernel's
//     float operations, for T tokens (xs[t]: token t's activation row, sides[t] its LaneSides where
//     kSides).
constexpr int kLaneTokens = 8;
// Q4_K products of this many tokens or more take the lanes instead of the eight-row kernels: the
// lanes' transposes are paid once per block whatever the token count, and at 2 tokens they cost as
// much as the eight-row kernels' reductions (1 thread, CPU time, 9728 x 2560 from memory, three
// alternating pairs: 2 tokens 1.42-1.50 ms in lanes against 1.40-1.49, 3 1.50-1.59 against
// 1.58-1.70, 4 1.53-1.61 against 1.82-1.98, 5 1.61-1.71 against 1.97-2.03; earlier, 8 tokens
// 2.1-2.4 against 2.3-2.5, 16 3.1-3.3 against 4.0-4.2, the 128-token prompt 163-173 GMAC/s against
// 137-149).
constexpr int64_t kQ4KLaneMinTokens = 3;
// Q6_K from this many (under AMX too, up to its int8 tiles' kAmxQ6KMinTokens). With the
// prefetch into L1, 2-4 tokens are even or faster than the eight-row kernels, 8 and more faster (1
// thread, CPU time, 9728 x 2560 from memory, three alternating pairs: under AMX 2 tokens 1.89-2.00
// ms against 2.02-2.13, 4 2.08-2.15 against 2.24-2.36; CSQ_KERNELS=avx512 2 tokens 2.00-2.02
// against 1.96-2.14, 4 2.12-2.22 against 2.19-2.38, 8 2.64-2.73 against 2.91-2.96, 16 4.07-4.10
// against 5.98-6.33).
constexpr int64_t kQ6KLaneMinTokens = 2;
// Each row's bytes are requested this many blocks ahead, into L1: 16 interleaved streams are more
// than the hardware prefetcher follows by itself (1 thread, Q4_K, 8 tokens from memory: 2.1-2.4 ms
// at 1 or 2 blocks, 2.5-2.8 at 3 or 4, 3.0 without; every line is needed: one or two per row and
// block, 2.7-2.9; the next 16 rows as one linear stream instead, 2.4-2.6. Into L1 rather than L2:
// 16 tokens 2.56-2.87 ms against 2.87-2.90, 12 2.15-2.40 against 2.33-2.35, 8 even). Since the
// fifth session the same block of the next 16 rows is also requested into L2, a group ahead, and
// one block ahead into L1 is then enough (1 thread, from memory, 2-16 tokens, the same process
// alternating: Q6_K 2-4% faster, Q4_K 0-4%, against 2 blocks into L1 alone; the next-but-one
// group, or 6 blocks ahead into L2, were no better).
constexpr int64_t kLanePrefetchBlocks = 1;

// Every line of block b of the 16 rows from `first` on (w_row_bytes apart) into the cache level
// kHint names.
template <auto kHint, int64_t kBlockBytes>
inline void request_block(const uint8_t* first, int64_t w_row_bytes, int64_t b) {
  for (int64_t r = 0; r < kLaneRows; ++r) {
    const char* p = reinterpret_cast<const char*>(first + r * w_row_bytes) + b * kBlockBytes;
    for (int64_t off = 0; off < kBlockBytes; off += 64) _mm_prefetch(p + off, kHint);
  }
}

// A 16 x 16 transpose of 32-bit words: on entry v[r] holds row r's 16 words, on return v[w] holds
// word w of the 16 rows (lane r = row r). 64 shuffles in four rounds.
inline void transpose16x16_epi32(__m512i* v) {
  __m512i t[16], u[16];
  for (int p = 0; p < 16; p += 2) {
    t[p] = _mm512_unpacklo_epi32(v[p], v[p + 1]);
    t[p + 1] = _mm512_unpackhi_epi32(v[p], v[p + 1]);
  }
  // u[4 q + c], 128-bit lane L: word 4 L + c of rows 4 q .. 4 q + 3.
  for (int q = 0; q < 16; q += 4) {
    u[q] = _mm512_unpacklo_epi64(t[q], t[q + 2]);
    u[q + 1] = _mm512_unpackhi_epi64(t[q], t[q + 2]);
    u[q + 2] = _mm512_unpacklo_epi64(t[q + 1], t[q + 3]);
    u[q + 3] = _mm512_unpackhi_epi64(t[q + 1], t[q + 3]);
  }
  // Word 4 L + c of the 16 rows: 128-bit lane L of u[c], u[4 + c], u[8 + c], u[12 + c] in turn.
  for (int c = 0; c < 4; ++c) {
    const __m512i ab_lo = pick_lanes<0, 1, 4, 5>(u[c], u[4 + c]), ab_hi = pick_lanes<2, 3, 6, 7>(u[c], u[4 + c]);
    const __m512i cd_lo = pick_lanes<0, 1, 4, 5>(u[8 + c], u[12 + c]), cd_hi = pick_lanes<2, 3, 6, 7>(u[8 + c], u[12 + c]);
    v[c] = pick_lanes<0, 2, 4, 6>(ab_lo, cd_lo);
    v[4 + c] = pick_lanes<1, 3, 5, 7>(ab_lo, cd_lo);
    v[8 + c] = pick_lanes<0, 2, 4, 6>(ab_hi, cd_hi);
    v[12 + c] = pick_lanes<1, 3, 5, 7>(ab_hi, cd_hi);
  }
}

// The first 16 bytes of 16 rows' blocks (p[r]) as 4 vectors: out[w], lane r = word w of row r's.
inline void transpose_heads16(const uint8_t* const* p, __m512i* out) {
  __m512i v[4];  // v[a], 128-bit lane m: row a + 4 m
  for (int a = 0; a < 4; ++a) {
    __m512i x = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[a])));
    x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[a + 4])), 1);
    x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[a + 8])), 2);
    v[a] = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[a + 12])), 3);
  }
  const __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]), t1 = _mm512_unpackhi_epi32(v[0], v[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]), t3 = _mm512_unpackhi_epi32(v[2], v[3]);
  out[0] = _mm512_unpacklo_epi64(t0, t2);
  out[1] = _mm512_unpackhi_epi64(t0, t2);
  out[2] = _mm512_unpacklo_epi64(t1, t3);
  out[3] = _mm512_unpackhi_epi64(t1, t3);
}

// A vpshufb control that fills each 32-bit lane with bytes b0..b3 of that lane (-1: zero).
inline __m512i lane_bytes(int b0, int b1, int b2, int b3) {
  const auto control = [&](int p) {
    uint32_t w = 0;
    const int bytes[4] = {b0, b1, b2, b3};
    for (int i = 0; i < 4; ++i) w |= uint32_t(bytes[i] < 0 ? 0x80 : 4 * p + bytes[i]) << (8 * i);
    return int(w);
  };
  return _mm512_broadcast_i32x4(_mm_set_epi32(control(3), control(2), control(1), control(0)));
}

// The low 16 bits of each 32-bit lane, in order (vpmovdw, which SIMDe 0.7.4 lacks).
#if defined(CSQ_AVX512_EMULATED)
inline __m256i low_words(__m512i v) {
  const __m512i w = _mm512_and_si512(v, _mm512_set1_epi32(0xFFFF));
  return _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm512_castsi512_si256(w), _mm512_extracti64x4_epi64(w, 1)), 0xD8);
}
#else
inline __m256i low_words(__m512i v) { return _mm512_cvtepi32_epi16(v); }
#endif

// acc + w . (the 4 bytes at x in every lane): vpdpbusd with an embedded {1to16} broadcast. Written
// out because GCC merges neighbouring 4-byte loads into one vector load and broadcasts each word
// with a shuffle (vpsrldq + vpbroadcastd), two shuffle-port instructions per vpdpbusd.
// dpwssd_broadcast: the same for vpdpwssd and the two int16 at x.
#if defined(CSQ_AVX512_EMULATED)
inline __m512i dpbusd_broadcast(__m512i acc, __m512i w, const int8_t* x) { return _mm512_dpbusd_epi32(acc, w, broadcast4(x)); }
inline __m512i dpwssd_broadcast(__m512i acc, __m512i w, const int16_t* x) { return _mm512_dpwssd_epi32(acc, w, broadcast4(x)); }
#else
inline __m512i dpbusd_broadcast(__m512i acc, __m512i w, const int8_t* x) {
  __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int32_t*>(x)));
  return acc;
}
inline __m512i dpwssd_broadcast(__m512i acc, __m512i w, const int16_t* x) {
  __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int32_t*>(x)));
  return acc;
}
#endif

// Q4_K: q45k_block_sums' integers per lane. A sub-block's 32 columns are two sums of 16 columns
// (4 vpdpbusd each, at most 16 * 15 * 128 = 30720: 16 bits), each scaled by one vpdpwssd whose
// other operand holds the row's scale in the low word (the sum's high word, its sign, meets 0).
struct Q4KLanes {
  using Block = BlockQ4_K;
  static constexpr bool kSides = false;  // reads Q8K rows: its side terms from LaneSides did not pay (docs/performance.md)
  struct Lanes {
    __m512i q[8][8];    // [sub-block j][column quad k]: lane r = row r's levels 32 j + 4 k .. + 3
    __m512i scales[8];  // [j]: lane r = row r's scale of sub-block j
    __m512i mins[4];    // [p]: lane r = row r's mins of sub-blocks 2 p, 2 p + 1 as two int16
    __m512 d, neg_dmin;
  };

  static void load(const uint8_t* const* rows, int64_t b, Lanes& lanes) {
    const uint8_t* blocks[kLaneRows];
    for (int r = 0; r < kLaneRows; ++r) blocks[r] = rows[r] + b * int64_t(sizeof(Block));
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    // qs byte 32 i + c holds level c of sub-block 2 i (low nibble) and of 2 i + 1 (high nibble).
    for (int h = 0; h < 2; ++h) {
      __m512i v[16];
      for (int r = 0; r < kLaneRows; ++r) v[r] = load512(reinterpret_cast<const Block*>(blocks[r])->qs + 64 * h);
      transpose16x16_epi32(v);
      for (int w = 0; w < 16; ++w) {
        const int i = 2 * h + w / 8, k = w % 8;
        lanes.q[2 * i][k] = _mm512_and_si512(v[w], low4);
        lanes.q[2 * i + 1][k] = _mm512_and_si512(_mm512_srli_epi16(v[w], 4), low4);
      }
    }
    // Words: d | dmin, then the 12 bytes of packed scales and mins (scales_mins_k4, 16 rows at once).
    __m512i head[4];
    transpose_heads16(blocks, head);
    const __m512i six = _mm512_set1_epi8(0x3F), four = _mm512_set1_epi8(0x0F), top2 = _mm512_set1_epi8(0x30);
    const __m512i scales_lo = _mm512_and_si512(head[1], six), mins_lo = _mm512_and_si512(head[2], six);
    const __m512i scales_hi = _mm512_or_si512(_mm512_and_si512(head[3], four), _mm512_and_si512(_mm512_srli_epi32(head[1], 2), top2));
    const __m512i mins_hi =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(head[3], 4), four), _mm512_and_si512(_mm512_srli_epi32(head[2], 2), top2));
    for (int j = 0; j < 4; ++j) {
      const __m512i pick = lane_bytes(j, -1, -1, -1);
      lanes.scales[j] = _mm512_shuffle_epi8(scales_lo, pick);
      lanes.scales[4 + j] = _mm512_shuffle_epi8(scales_hi, pick);
    }
    for (int p = 0; p < 2; ++p) {
      const __m512i pick = lane_bytes(2 * p, -1, 2 * p + 1, -1);
      lanes.mins[p] = _mm512_shuffle_epi8(mins_lo, pick);
      lanes.mins[2 + p] = _mm512_shuffle_epi8(mins_hi, pick);
    }
    lanes.d = f16_to_f32x16(low_words(head[0]));
    lanes.neg_dmin = _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(f16_to_f32x16(low_words(_mm512_srli_epi32(head[0], 16)))), _mm512_set1_epi32(INT32_MIN)));
  }

  template <int T>
  static void dot(const Lanes& lanes, const BlockQ8_K* const* xs, const LaneSides* const*, int64_t b, float* acc) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i levels[T];
    for (int t = 0; t < T; ++t) levels[t] = zero;
    for (int j = 0; j < 8; ++j) {
      const __m512i* q = lanes.q[j];
      for (int t = 0; t < T; ++t) {
        const int8_t* xq = xs[t][b].qs + 32 * j;
        __m512i lo = zero, hi = zero;
        for (int k = 0; k < 4; ++k) {
          lo = dpbusd_broadcast(lo, q[k], xq + 4 * k);
          hi = dpbusd_broadcast(hi, q[4 + k], xq + 16 + 4 * k);
        }
        levels[t] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(levels[t], lo, lanes.scales[j]), hi, lanes.scales[j]);
      }
    }
    for (int t = 0; t < T; ++t) {
      const BlockQ8_K& x = xs[t][b];
      // sum_j min_j * (activation sum of sub-block j), two sub-blocks per vpdpwssd.
      alignas(16) int16_t sub[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(sub), _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums)),
                                                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + 8))));
      __m512i mins = zero;
      for (int p = 0; p < 4; ++p) mins = dpwssd_broadcast(mins, lanes.mins[p], sub + 2 * p);
      const __m512 dx = _mm512_set1_ps(x.d);
      __m512 a = _mm512_loadu_ps(acc + 16 * t);
      a = _mm512_fmadd_ps(_mm512_mul_ps(lanes.d, dx), i32_to_f32x16(levels[t]), a);
      a = _mm512_fmadd_ps(_mm512_mul_ps(lanes.neg_dmin, dx), i32_to_f32x16(mins), a);
      _mm512_storeu_ps(acc + 16 * t, a);
    }
  }
};

// Q6_K: a 16-column sub-block's sum reaches 16 * 63 * 128, 18 bits, too many for one vpdpwssd
// by its scale, so here the lanes are (row, half) pairs: one vector holds 8 rows x one column
// octet (lane 2 r + e: columns 8 o + 4 e .. + 3 of row r), and one vpdpbusd against a token's 8
// activation bytes broadcast makes 64 multiply-adds into 16 (row, half) sums, with no horizontal
// reduction; two vectors (halves) hold the 16 rows. Lane (r, e) of a sub-block's chain (two octets) sums 8
// of its columns, starting from -32 times those 8 activations' sum, minus 1: it ends at
// sum (level - 32) x - 1. (level - 32) x lies in [-4064, 4096] (4096 only for level 0 against
// -128), so the chain lies in [-32513, 32767]: 16 bits. A sub-block's chains in the two halves
// therefore pack into one vector exactly (vpackssdw) and one vpdpwssd weighs each row's two
// column halves by its int8 scale into one dword per row, in row order (the halves' row
// assignment, below, arranges that); the sums start from 2 sum_g scale_g, which gives the 1s back. The chains' starts depend on
// the token alone and come with its activations (LaneSides::q6_starts, once per product: computed
// per 16 rows, as at first, they were 20 of about 140 operations per token and block). Per (16 rows, token,
// block): 64 vpdpbusd, 16 vpackssdw, 16 vpdpwssd and 3 operations to weigh the block (32 broadcast
// loads of activations and 32 of chain starts besides); per (16 rows, block), shared by the
// tokens: three 8 x 8 transposes of 64-bit words per 8 rows (72 shuffles), 11 operations per 4
// level vectors (88), about 70 for the 16 rows' scales. Tokens go 8 at a time: a sub-block's 4
// level vectors and its scales stay in registers beside the 8 tokens' sums. The
// integer is the AVX2 kernel's exact sum_g scale_g (levels . x - 32 bsum_g), weighed by the same
// multiply-add in block order, so the results are its own bit for bit.

// [a.L0, a.L2, b.L0, b.L2] and [a.L1, a.L3, b.L1, b.L3] of 128-bit lanes.
inline __m512i even_lanes(__m512i a, __m512i b) { return pick_lanes<0, 2, 4, 6>(a, b); }
inline __m512i odd_lanes(__m512i a, __m512i b) { return pick_lanes<1, 3, 5, 7>(a, b); }

// out[o] qword r = a[r] qword o: an 8 x 8 transpose of 64-bit words (8 rows' 64 bytes to 8
// column octets of the 8 rows).
inline void transpose_qwords8(const __m512i* a, __m512i* out) {
  __m512i t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_epi64(a[i], a[i + 1]);  // per 128-bit lane L: octet 2L of rows i, i + 1
    t[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 1]);  // octet 2L + 1
  }
  for (int j = 0; j < 2; ++j) {
    const __m512i v0 = even_lanes(t[j], t[2 + j]), v1 = odd_lanes(t[j], t[2 + j]);
    const __m512i v2 = even_lanes(t[4 + j], t[6 + j]), v3 = odd_lanes(t[4 + j], t[6 + j]);
    out[j] = even_lanes(v0, v2);
    out[2 + j] = even_lanes(v1, v3);
    out[4 + j] = odd_lanes(v0, v2);
    out[6 + j] = odd_lanes(v1, v3);
  }
}

// Bits of a where mask has 1s, of b elsewhere.
inline __m512i select_bits(__m512i mask, __m512i a, __m512i b) { return _mm512_ternarylogic_epi32(mask, a, b, 0xCA); }


struct Q6KLanes {
  using Block = BlockQ6_K;
  static constexpr bool kSides = true;
  // One block of 16 rows. Half h holds rows 4 j + 2 h and 4 j + 2 h + 1 (j < 4) as its rows 2 j,
  // 2 j + 1, so that packing a chain of half 0 with the same chain of half 1 (vpackssdw, per
  // 128-bit lane j) puts row 4 j + k in dword k of lane j: one vpdpwssd weighs the 16 rows' two
  // halves in row order, and a token's sums are one vector.
  struct Lanes {
    __m512i levels[32][2];  // [octet o][half]: lane 2 i + e = levels (0..63) of columns 8 o + 4 e .. + 3 of the half's row i
    __m512i scales[16];     // [sub-block g]: lane r = row r's scale of g in both int16 halves
    __m512i start;          // the sums' start: lane r = 2 sum_g scale_g of row r
    alignas(64) float d[16];  // per row
  };

  static void load(const uint8_t* const* row_starts, int64_t b, Lanes& out) {
    const BlockQ6_K* w[kLaneRows];
    for (int r = 0; r < kLaneRows; ++r) w[r] = reinterpret_cast<const Block*>(row_starts[r]) + b;
    const __m512i low4 = _mm512_set1_epi8(0x0F), fields = _mm512_set1_epi8(0x33);
    for (int half = 0; half < 2; ++half) {
      const BlockQ6_K* rows[8];
      for (int i = 0; i < 8; ++i) rows[i] = w[4 * (i / 2) + 2 * half + i % 2];
      __m512i raw[8], qh[8], ql[8];
      for (int r = 0; r < 8; ++r) raw[r] = load512(rows[r]->qh);
      transpose_qwords8(raw, qh);  // qh[4 h + m]: bytes 32 h + 8 m .. + 7
      for (int h = 0; h < 2; ++h) {
        for (int r = 0; r < 8; ++r) raw[r] = load512(rows[r]->ql + 64 * h);
        transpose_qwords8(raw, ql);  // ql[4 k + m]: bytes 64 h + 32 k + 8 m .. + 7
        for (int m = 0; m < 4; ++m) {
          // Level of element 128 h + 32 k + i: the low (k < 2) or high nibble of ql[64 h + 32 (k % 2) + i]
          // and bits 2k, 2k + 1 of qh[32 h + i]. fields02 keeps qh bits 0-1 and 4-5 (k = 0, 2) in
          // place, fields13 bits 2-3 and 6-7 (k = 1, 3) moved down by 2.
          const __m512i fields02 = _mm512_and_si512(qh[4 * h + m], fields);
          const __m512i fields13 = _mm512_and_si512(_mm512_srli_epi16(qh[4 * h + m], 2), fields);
          // Octet 16 h + 4 k + m: elements 128 h + 32 k + 8 m .. + 7.
          out.levels[16 * h + m][half] = select_bits(low4, ql[m], _mm512_slli_epi16(fields02, 4));
          out.levels[16 * h + 4 + m][half] = select_bits(low4, ql[4 + m], _mm512_slli_epi16(fields13, 4));
          out.levels[16 * h + 8 + m][half] = select_bits(low4, _mm512_srli_epi16(ql[m], 4), fields02);
          out.levels[16 * h + 12 + m][half] = select_bits(low4, _mm512_srli_epi16(ql[4 + m], 4), fields13);
        }
      }
    }
    // Scale g of the 16 rows: byte g % 4 of word g / 4 into the high byte of both halves of each
    // lane (low bytes zero), then shifted down with its sign: int16.
    const uint8_t* scale_bytes[kLaneRows];
    for (int r = 0; r < kLaneRows; ++r) scale_bytes[r] = reinterpret_cast<const uint8_t*>(w[r]->scales);
    __m512i words[4];
    transpose_heads16(scale_bytes, words);
    const __m512i picks[4] = {lane_bytes(-1, 0, -1, 0), lane_bytes(-1, 1, -1, 1), lane_bytes(-1, 2, -1, 2), lane_bytes(-1, 3, -1, 3)};
    __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      out.scales[g] = _mm512_srai_epi16(_mm512_shuffle_epi8(words[g / 4], picks[g % 4]), 8);
      sum = _mm512_add_epi16(sum, out.scales[g]);  // at most 16 * 128 per word
    }
    out.start = _mm512_madd_epi16(sum, _mm512_set1_epi16(1));
    alignas(32) uint16_t d[16];
    for (int r = 0; r < kLaneRows; ++r) d[r] = w[r]->d;
    _mm512_store_ps(out.d, f16_to_f32x16(load256(d)));
  }

  template <int T>
  static void dot(const Lanes& w, const BlockQ8_K* const* xs, const LaneSides* const* sides, int64_t b, float* acc) {
    __m512i sums[T];
    for (int t = 0; t < T; ++t) sums[t] = w.start;
    for (int g = 0; g < 16; ++g) {
      // Sub-block g: octets 2 g and 2 g + 1 of both halves and its scales, for all T tokens.
      const __m512i lv00 = _mm512_load_si512(&w.levels[2 * g][0]), lv01 = _mm512_load_si512(&w.levels[2 * g][1]);
      const __m512i lv10 = _mm512_load_si512(&w.levels[2 * g + 1][0]), lv11 = _mm512_load_si512(&w.levels[2 * g + 1][1]);
      const __m512i sc = _mm512_load_si512(&w.scales[g]);
      for (int t = 0; t < T; ++t) {
        const int8_t* xq = xs[t][b].qs + 16 * g;
        const __m512i x0 = broadcast8(xq), x1 = broadcast8(xq + 8);
        // Both halves' chains start from the token's sides (a broadcast load each).
        const int32_t* start = sides[t][b].q6_starts[g];
        const __m512i c0 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(broadcast8(start), lv00, x0), lv10, x1);
        const __m512i c1 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(broadcast8(start), lv01, x0), lv11, x1);
        sums[t] = _mm512_dpwssd_epi32(sums[t], _mm512_packs_epi32(c0, c1), sc);
      }
    }
    const __m512 d = _mm512_load_ps(w.d);
    for (int t = 0; t < T; ++t)
      _mm512_storeu_ps(acc + 16 * t, _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xs[t][b].d)), i32_to_f32x16(sums[t]),
                                                     _mm512_loadu_ps(acc + 16 * t)));
  }
};

template <typename Format, int T>
void lanes_dot(const typename Format::Lanes& lanes, const BlockQ8_K* const* xs, const LaneSides* const* sides, int64_t b, float* acc) {
  Format::template dot<T>(lanes, xs, sides, b, acc);
}

// Rows [0, n_rows) (n_rows <= kRowsFnBlock) against n_tok tokens, 16 rows at a time; a last
// partial group repeats its last row in the empty lanes and stores only its own.
template <typename Format>
void rows_in_lanes(const uint8_t* w_rows, int64_t w_row_bytes, int64_t n_rows, const void* x, int64_t x_stride,
                   int64_t n_tok, int64_t cols, float* out, int64_t out_stride) {
  constexpr int64_t kBlockBytes = sizeof(typename Format::Block);
  const int64_t n_blocks = cols / QK_K;
  thread_local std::vector<const BlockQ8_K*> xs;
  thread_local std::vector<const LaneSides*> sides;
  thread_local std::vector<float> acc;  // [token][row]
  xs.resize(size_t(n_tok));
  sides.resize(size_t(n_tok));
  for (int64_t t = 0; t < n_tok; ++t) {
    xs[size_t(t)] = x_row<BlockQ8_K>(x, x_stride, int(t));
    sides[size_t(t)] = Format::kSides ? lane_sides(xs[size_t(t)], n_blocks) : nullptr;
  }
  using DotFn = void (*)(const typename Format::Lanes&, const BlockQ8_K* const*, const LaneSides* const*, int64_t, float*);
  static constexpr DotFn dots[kLaneTokens] = {lanes_dot<Format, 1>, lanes_dot<Format, 2>, lanes_dot<Format, 3>, lanes_dot<Format, 4>,
                                              lanes_dot<Format, 5>, lanes_dot<Format, 6>, lanes_dot<Format, 7>, lanes_dot<Format, 8>};
  for (int64_t r0 = 0; r0 < n_rows; r0 += kLaneRows) {
    const int64_t live = std::min<int64_t>(kLaneRows, n_rows - r0);
    const uint8_t* rows[kLaneRows];
    for (int64_t r = 0; r < kLaneRows; ++r) rows[r] = w_rows + (r0 + std::min(r, live - 1)) * w_row_bytes;
    acc.assign(size_t(kLaneRows * n_tok), 0.f);
    typename Format::Lanes lanes;
    for (int64_t b = 0; b < n_blocks; ++b) {
      // Past the rows' end, the same blocks of the next group's rows (this call's or the next one's).
      const int64_t ahead = b + kLanePrefetchBlocks, wrap = ahead < n_blocks ? 0 : 1;
      request_block<_MM_HINT_T0, kBlockBytes>(w_rows + (r0 + wrap * kLaneRows) * w_row_bytes, w_row_bytes, ahead - wrap * n_blocks);
      request_block<_MM_HINT_T1, kBlockBytes>(w_rows + (r0 + kLaneRows) * w_row_bytes, w_row_bytes, b);
      Format::load(rows, b, lanes);
      for (int64_t t0 = 0; t0 < n_tok; t0 += kLaneTokens)
        dots[std::min<int64_t>(kLaneTokens, n_tok - t0) - 1](lanes, xs.data() + t0, sides.data() + t0, b, acc.data() + kLaneRows * t0);
    }
    for (int64_t t = 0; t < n_tok; ++t)
      for (int64_t r = 0; r < live; ++r) out[t * out_stride + r0 + r] = acc[size_t(kLaneRows * t + r)];
  }
}

// Eight rows: below the lanes' threshold in place (Rows8<N>, one pass: a decode step of that many
// streams reads each block once), from it in lanes (matmul calls the lanes itself from that many
// tokens, 32 rows at a time).
template <typename XBlock, int64_t kBlockElems, template <int> class Rows8, RowsFn kLanes, int64_t kLaneMinTokens>
void rows8_or_lanes(const uint8_t* w_rows, int64_t w_row_bytes, const void* x, int64_t x_stride, int64_t n_tok, int64_t cols,
                    float* out, int64_t out_stride) {
  static_assert(kLaneMinTokens >= 2 && kLaneMinTokens <= 3);
  if (n_tok >= kLaneMinTokens) return kLanes(w_rows, w_row_bytes, 8, x, x_stride, n_tok, cols, out, out_stride);
  const XBlock* xs[2] = {x_row<XBlock>(x, x_stride, 0), n_tok > 1 ? x_row<XBlock>(x, x_stride, 1) : nullptr};
  if constexpr (kLaneMinTokens == 3)
    if (n_tok == 2) return Rows8<2>::run(w_rows, w_row_bytes, xs, cols / kBlockElems, out, out_stride);
  Rows8<1>::run(w_rows, w_row_bytes, xs, cols / kBlockElems, out, out_stride);
}
constexpr auto rows8_q8_0 = rows8_or_lanes<BlockQ8x32, 32, Q8_0Rows8, rows_q8_0_lanes, kQ8LaneMinTokens>;
constexpr auto rows8_q4_k = rows8_or_lanes<BlockQ8_K, QK_K, Q4KRows8, rows_in_lanes<Q4KLanes>, kQ4KLaneMinTokens>;
constexpr auto rows8_q6_k = rows8_or_lanes<BlockQ8_K, QK_K, Q6KRows8, rows_in_lanes<Q6KLanes>, kQ6KLaneMinTokens>;

// ---- float weights (F32, F16, BF16) with float activations ----
//
// The AVX2 row kernel keeps two 8-lane accumulators per token over 16 columns at a time; one
// 16-lane accumulator is the same two, lane for lane, and the final sum and column tail are the
// same code.


template <DType T>
inline __m512 load_w16(const void* w, int64_t i) {
  if constexpr (T == DType::F32) return _mm512_loadu_ps(static_cast<const float*>(w) + i);
  const __m256i h = load256(static_cast<const uint16_t*>(w) + i);
  if constexpr (T == DType::F16) return f16_to_f32x16(h);
  else return _mm512_castsi512_ps(_mm512_slli_epi32(u16_to_u32x16(h), 16));
}

template <int N, DType T>
struct FloatDot {
  static void run(const void* w_row, const void* x, int64_t x_stride, int64_t cols, float* out) {
    const float* xs[N];
    for (int t = 0; t < N; ++t) xs[t] = x_row<float>(x, x_stride, t);
    __m512 acc[N];
    for (int t = 0; t < N; ++t) acc[t] = _mm512_setzero_ps();
    int64_t c = 0;
    constexpr int64_t elem_bytes = T == DType::F32 ? 4 : 2;
    for (; c + 16 <= cols; c += 16) {
      prefetch_ahead(static_cast<const char*>(w_row) + c * elem_bytes, 16 * elem_bytes);
      const __m512 w = load_w16<T>(w_row, c);
      for (int t = 0; t < N; ++t) acc[t] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xs[t] + c), acc[t]);
    }
    for (int t = 0; t < N; ++t) {
      const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1));
      float s = hsum(_mm256_add_ps(_mm512_castps512_ps256(acc[t]), hi));
      for (int64_t i = c; i < cols; ++i) s = std::fma(scalar_w<T>(w_row, i), xs[t][i], s);
      out[t] = s;
    }
  }
};

template <int N> struct F32Dot { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { FloatDot<N, DType::F32>::run(w, x, s, c, o); } };
template <int N> struct F16Dot { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { FloatDot<N, DType::F16>::run(w, x, s, c, o); } };
template <int N> struct BF16Dot { static void run(const void* w, const void* x, int64_t s, int64_t c, float* o) { FloatDot<N, DType::BF16>::run(w, x, s, c, o); } };

// Float weights against a decode batch (kFloatTileMinTokens to kFloatBlockTileMinTokens - 1
// tokens, bound by memory): eight rows in place, register blocks of 4 rows x 6 tokens, 16 lanes.
// Per 16 columns, 4 weight vectors (widened once) and 6 activation loads feed 24 FMAs into 24
// accumulators; columns go 1024 at a time so that the 8 rows' slice stays in L1 while every token
// passes, the accumulators waiting in memory between chunks. The same bits as FloatDot.
constexpr int kFloatBlockRows = 4;
constexpr int kFloatBlockTokens = 6;
constexpr int64_t kRows8Chunk = 1024;

// A (row, token) result from its 16-lane accumulator: FloatDot's final sum and column tail.
template <DType Type>
inline float finish_float_dot(const float* acc16, const void* w_row, const float* xt, int64_t body, int64_t cols) {
  const __m512 v = _mm512_loadu_ps(acc16);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  float s = hsum(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
  for (int64_t i = body; i < cols; ++i) s = std::fma(scalar_w<Type>(w_row, i), xt[i], s);
  return s;
}

template <DType Type, int T>
void rows8_block512(const uint8_t* const* w, const float* const* xs, int64_t c0, int64_t n16, float* acc, int64_t n_tok) {
  __m512 a[kFloatBlockRows][T];
  for (int r = 0; r < kFloatBlockRows; ++r)
    for (int t = 0; t < T; ++t) a[r][t] = _mm512_loadu_ps(acc + (r * n_tok + t) * 16);
  for (int64_t c = c0; c < c0 + 16 * n16; c += 16) {
    __m512 wv[kFloatBlockRows];
    for (int r = 0; r < kFloatBlockRows; ++r) wv[r] = load_w16<Type>(w[r], c);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_loadu_ps(xs[t] + c);
      for (int r = 0; r < kFloatBlockRows; ++r) a[r][t] = _mm512_fmadd_ps(wv[r], xv, a[r][t]);
    }
  }
  for (int r = 0; r < kFloatBlockRows; ++r)
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(acc + (r * n_tok + t) * 16, a[r][t]);
}

template <DType Type>
void rows8_float512(const uint8_t* w_rows, int64_t w_row_bytes, const void* x, int64_t x_stride, int64_t n_tok,
                    int64_t cols, float* out, int64_t out_stride) {
  const uint8_t* rows[8];
  for (int r = 0; r < 8; ++r) rows[r] = w_rows + r * w_row_bytes;
  const int64_t body = cols / 16 * 16;
  thread_local std::vector<float> acc;  // [row][token] x 16 lanes
  acc.assign(size_t(8 * n_tok * 16), 0.f);
  for (int64_t c0 = 0; c0 < body; c0 += kRows8Chunk) {
    const int64_t n16 = (std::min(body, c0 + kRows8Chunk) - c0) / 16;
    for (int q = 0; q < 8 / kFloatBlockRows; ++q)
      for (int64_t t0 = 0; t0 < n_tok; t0 += kFloatBlockTokens) {
        const float* xs[kFloatBlockTokens];
        const int n = int(std::min<int64_t>(kFloatBlockTokens, n_tok - t0));
        for (int t = 0; t < n; ++t) xs[t] = x_row<float>(x, x_stride, int(t0 + t));
        float* a = acc.data() + (q * kFloatBlockRows * n_tok + t0) * 16;
        const uint8_t* const* w = rows + q * kFloatBlockRows;
        switch (n) {
          case 1: rows8_block512<Type, 1>(w, xs, c0, n16, a, n_tok); break;
          case 2: rows8_block512<Type, 2>(w, xs, c0, n16, a, n_tok); break;
          case 3: rows8_block512<Type, 3>(w, xs, c0, n16, a, n_tok); break;
          case 4: rows8_block512<Type, 4>(w, xs, c0, n16, a, n_tok); break;
          case 5: rows8_block512<Type, 5>(w, xs, c0, n16, a, n_tok); break;
          default: rows8_block512<Type, 6>(w, xs, c0, n16, a, n_tok); break;
        }
      }
  }
  for (int r = 0; r < 8; ++r)
    for (int64_t t = 0; t < n_tok; ++t)
      out[t * out_stride + r] =
          finish_float_dot<Type>(acc.data() + (r * n_tok + t) * 16, rows[r], x_row<float>(x, x_stride, int(t)), body, cols);
}

// Float weights against many tokens (prompts), blocked as a GEMM: a block of up to
// kRowsFnBlock rows is widened to float kFloatChunk columns at a time into a buffer (32 rows x
// 1024 columns = 128 KB, in L2), once per chunk; then for each group of 6 tokens, whose 24 KB of
// activations stay in L1 while every quad of rows passes, a register block of 4 rows x 6 tokens
// takes 4 weight loads and 6 activation loads per 16 columns for 24 FMAs into 24 accumulators,
// which wait in memory between chunks. So each weight is widened once per chunk rather than once
// per token group, and the activations come from L2 once per block rather than once per 4 rows
// (the eight-row tile before this read them from L3 for every 8 rows of a 9728-column matrix).
// Each (row, token) has the row kernel's one 16-lane accumulator over the same columns in order,
// its final sum and its column tail: bit-identical to FloatDot and to the AVX2 kernels, whatever
// the block, the token group or the thread count.
constexpr int64_t kFloatChunk = 1024;
// Tokens per pass over a block's columns: the block's accumulators (32 rows x 128 tokens x 64
// bytes = 256 KB) stay in L2.
constexpr int64_t kFloatTokenPanel = 128;

// The accumulators of rows 4 q .. 4 q + 3 (a[r][t] at acc + (r * n_tok + t) * 16) += the chunk's
// steps: wq holds, per step of 16 columns, the 4 rows' widened weights one after the other.
template <int T>
void float_block512(const float* wq, const float* const* xs, int64_t steps, float* acc, int64_t n_tok) {
  __m512 a[kFloatBlockRows][T];
  for (int r = 0; r < kFloatBlockRows; ++r)
    for (int t = 0; t < T; ++t) a[r][t] = _mm512_loadu_ps(acc + (r * n_tok + t) * 16);
  for (int64_t s = 0; s < steps; ++s) {
    __m512 wv[kFloatBlockRows];
    for (int r = 0; r < kFloatBlockRows; ++r) wv[r] = _mm512_load_ps(wq + (s * kFloatBlockRows + r) * 16);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_loadu_ps(xs[t] + s * 16);
      for (int r = 0; r < kFloatBlockRows; ++r) a[r][t] = _mm512_fmadd_ps(wv[r], xv, a[r][t]);
    }
  }
  for (int r = 0; r < kFloatBlockRows; ++r)
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(acc + (r * n_tok + t) * 16, a[r][t]);
}

// One token panel [t_begin, t_end) of rows [0, 4 * quads) through the register blocks.
template <DType Type>
void float_panel512(const uint8_t* const* rows, int64_t row_bytes, int64_t quads, const void* x, int64_t x_stride,
                    int64_t t_begin, int64_t t_end, int64_t body, float* acc, float* widened) {
  constexpr int64_t kElemBytes = Type == DType::F32 ? 4 : 2, kChunkLines = kFloatChunk * kElemBytes / 64;
  const int64_t n_tok = t_end - t_begin;
  for (int64_t c0 = 0; c0 < body; c0 += kFloatChunk) {
    const int64_t steps = (std::min(body, c0 + kFloatChunk) - c0) / 16;
    for (int64_t q = 0; q < quads; ++q)
      for (int64_t s = 0; s < steps; ++s)
        for (int r = 0; r < kFloatBlockRows; ++r)
          _mm512_store_ps(widened + ((q * steps + s) * kFloatBlockRows + r) * 16, load_w16<Type>(rows[4 * q + r], c0 + 16 * s));
    // The next chunk's weights (after the last, the next block's first: the rows that follow)
    // are requested while this one is computed, a share of every row's lines per token group:
    // read only when widened, a chunk's 32 strided rows are more streams than the hardware
    // prefetcher follows, and the widening waited on memory.
    const int64_t next = c0 + kFloatChunk < body ? (c0 + kFloatChunk) * kElemBytes : quads * kFloatBlockRows * row_bytes;
    const int64_t groups = (n_tok + kFloatBlockTokens - 1) / kFloatBlockTokens;
    for (int64_t t0 = 0; t0 < n_tok; t0 += kFloatBlockTokens) {
      const float* xs[kFloatBlockTokens];
      const int n = int(std::min<int64_t>(kFloatBlockTokens, n_tok - t0));
      for (int t = 0; t < n; ++t) xs[t] = x_row<float>(x, x_stride, int(t_begin + t0 + t)) + c0;
      const int64_t g = t0 / kFloatBlockTokens, line_lo = g * kChunkLines / groups, line_hi = (g + 1) * kChunkLines / groups;
      for (int64_t q = 0; q < quads; ++q) {
        for (int r = 0; r < kFloatBlockRows; ++r)
          for (int64_t line = line_lo; line < line_hi; ++line)
            _mm_prefetch(reinterpret_cast<const char*>(rows[4 * q + r] + next + 64 * line), _MM_HINT_T1);
        const float* wq = widened + q * steps * kFloatBlockRows * 16;
        float* a = acc + (q * kFloatBlockRows * n_tok + t0) * 16;
        switch (n) {
          case 1: float_block512<1>(wq, xs, steps, a, n_tok); break;
          case 2: float_block512<2>(wq, xs, steps, a, n_tok); break;
          case 3: float_block512<3>(wq, xs, steps, a, n_tok); break;
          case 4: float_block512<4>(wq, xs, steps, a, n_tok); break;
          case 5: float_block512<5>(wq, xs, steps, a, n_tok); break;
          default: float_block512<6>(wq, xs, steps, a, n_tok); break;
        }
      }
    }
  }
}

// Rows [0, n_rows) (n_rows <= kRowsFnBlock) against n_tok tokens: quads of rows through the
// register blocks, the last n_rows % 4 rows through the row kernel (the same bits).
template <DType Type>
void rows_float512(const uint8_t* w_rows, int64_t w_row_bytes, int64_t n_rows, const void* x, int64_t x_stride,
                   int64_t n_tok, int64_t cols, float* out, int64_t out_stride) {
  const uint8_t* rows[kRowsFnBlock];
  for (int64_t r = 0; r < n_rows; ++r) rows[r] = w_rows + r * w_row_bytes;
  const int64_t quads = n_rows / kFloatBlockRows, body = cols / 16 * 16;
  thread_local std::vector<float> widened_storage, acc;
  // 64-byte aligned: every widened vector is one cache line.
  widened_storage.resize(size_t(kRowsFnBlock * kFloatChunk + 16));
  float* widened = cache_line_aligned(widened_storage.data());
  for (int64_t t_begin = 0; t_begin < n_tok; t_begin += kFloatTokenPanel) {
    const int64_t t_end = std::min(n_tok, t_begin + kFloatTokenPanel), n = t_end - t_begin;
    acc.assign(size_t(quads * kFloatBlockRows * n * 16), 0.f);  // [row][token] x 16 lanes
    if (body > 0) float_panel512<Type>(rows, w_row_bytes, quads, x, x_stride, t_begin, t_end, body, acc.data(), widened);
    for (int64_t r = 0; r < quads * kFloatBlockRows; ++r)
      for (int64_t t = t_begin; t < t_end; ++t)
        out[t * out_stride + r] =
            finish_float_dot<Type>(acc.data() + (r * n + t - t_begin) * 16, rows[r], x_row<float>(x, x_stride, int(t)), body, cols);
  }
  for (int64_t r = quads * kFloatBlockRows; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tok; ++t)
      FloatDot<1, Type>::run(rows[r], x_row<float>(x, x_stride, int(t)), x_stride, cols, out + t * out_stride + r);
}

}  // namespace

Avx512Parts CSQ_AVX512_ENTRY(avx512_parts)(DType weight_type) {
  switch (weight_type) {
    case DType::Q4_K: return {nullptr, rows8_q4_k, rows_in_lanes<Q4KLanes>, kQ4KLaneMinTokens};
    case DType::Q6_K: return {nullptr, rows8_q6_k, rows_in_lanes<Q6KLanes>, kQ6KLaneMinTokens, ActFormat::Q8KLanes};
    case DType::Q8_0: return {nullptr, rows8_q8_0, rows_q8_0_lanes, kQ8LaneMinTokens};
    case DType::F32: return {dot_for_tokens<F32Dot>, rows8_float512<DType::F32>, rows_float512<DType::F32>};
    case DType::F16: return {dot_for_tokens<F16Dot>, rows8_float512<DType::F16>, rows_float512<DType::F16>};
    case DType::BF16: return {dot_for_tokens<BF16Dot>, rows8_float512<DType::BF16>, rows_float512<DType::BF16>};
    default: return {};
  }
}

#if !defined(CSQ_AVX512_EMULATED)
int32_t probe_int8_dpbusd(int64_t rounds) {
  // Twelve chains, enough to cover vpdpbusd's latency; the activations pass an empty asm
  // statement every round so the compiler can neither hoist nor merge the products.
  __m512i w[12], acc[12];
  for (int i = 0; i < 12; ++i) {
    w[i] = _mm512_set1_epi8(char(i + 1));
    acc[i] = _mm512_setzero_si512();
  }
  __m512i x = _mm512_set1_epi8(3);
  for (int64_t r = 0; r < rounds; ++r) {
    __asm__ volatile("" : "+v"(x));
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], w[i], x);
  }
  __m512i sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  return _mm_cvtsi128_si32(_mm512_castsi512_si128(sum));
}

float probe_float_fma512(int64_t rounds) {
  __m512 w[12], acc[12];
  for (int i = 0; i < 12; ++i) {
    w[i] = _mm512_set1_ps(1.f + 1e-7f * float(i));
    acc[i] = _mm512_setzero_ps();
  }
  __m512 x = _mm512_set1_ps(1e-7f);
  for (int64_t r = 0; r < rounds; ++r) {
    __asm__ volatile("" : "+v"(x));
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(w[i], x, acc[i]);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm_cvtss_f32(_mm512_castps512_ps128(sum));
}
#endif

}  // namespace csq::kernels::cpu

#if !defined(CSQ_AVX512_EMULATED)
#include "kernels/cpu/avx512_end.h"
#endif

#endif  // x86
