// Q8_0, Q4_K and Q6_K weights on Intel AMX int8 (TDPBSSD: a 16 x 16 int32 tile += 16 rows x 64
// s8 times 64 x 16 s8, 16384 multiply-adds per instruction) for prompts and decode batches from
// amx_int8_min_tokens() tokens on. Compiled for AMX with a pragma and called only after use_amx().
//
// The results are bit-identical to the AVX-512 and AVX2 kernels': each (row, token, block) gets
// the same exact integer sums, then the same float operations in the same order (acc += d * dx *
// levels, then for Q4_K acc += -dmin * dx * mins, block by block), so nothing depends on which
// kernel, thread count or grouping of tokens ran, and every fixture tolerance holds unchanged.
//
// Weights are the first operand, 16 rows per band. Q8_0 rows are loaded in place (32 levels per
// block, the block's scale skipped with the row length as stride): one tile product per block,
// since each block has its own scale. K-quant blocks have a scale per 32 (Q4_K) or 16 (Q6_K)
// columns, which the tile product cannot apply, so each block is unpacked per band into two byte
// planes whose tile sums give the block's sum over all its sub-blocks exactly: Q4_K level x the
// low and the high 3 bits of its scale (levels = C_low + 8 C_high), Q6_K the low byte and the
// rest of p = scale x (level - 32), which takes the +32 bias along (levels = C_low + 256 C_high).
// Q4_K's mins term (min_j x the activations' sub-block sums) is a vpdpwssd per two sub-blocks.
//
// Activations (already quantized per token: Q8x32 or Q8_K) are packed once per product into the
// second operand's layout, per 16-token group: column c of token t at byte c / 4 * 64 + 4 t + c % 4.
// A band's blocks are visited once: each unpacked block meets every group (two at a time, sharing
// the weight tiles) while it stays in L1, the next block unpacked as the tile unit works; a
// decode batch (one group) interleaves that unpacking with the tile products (kquant_band_one_group).
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/fast_kernels.h"

#include "kernels/cpu/amx_begin.h"
#include "kernels/cpu/simd_common.h"

namespace csq::kernels::cpu {
namespace {

constexpr int64_t kGroup = 16;  // tokens per activation tile
constexpr int64_t kBand = 16;   // weight rows per tile

// tmm0-3 accumulators, tmm4-5 weights, tmm6-7 activations. K-quants: every tile 16 rows of 64
// bytes. Q8_0: weights 16 rows x 32 levels (one block), activations 8 rows x 64 (32 columns).
void configure_tiles(bool q8_0) {
  AmxTileConfig config;
  if (q8_0) {
    config.bytes_per_row[4] = config.bytes_per_row[5] = 32;
    config.rows[6] = config.rows[7] = 8;
  }
  _tile_loadconfig(&config);
}

// ---- Activations ----

// One 16-token group of the product's activations: q in the second operand's layout (cols x 16
// bytes), dx[block][token] the tokens' scales, and for Q4_K sub_pairs[block][p][token] the
// activation sums of sub-blocks 2p and 2p + 1 as an int16 pair. Missing tokens stay zero.
struct GroupView {
  uint8_t* q;
  float* dx;
  int32_t* sub_pairs;
};

// Q4_K (q4k: true) takes each block's columns in Q4KBand's order, which swaps the middle two
// 32-column quarters of every 128 (see Q4KBand), and the sub-block sums of its mins term.
void pack_q8k_group(const uint8_t* xq, int64_t x_stride, int64_t n_tok, int64_t n_blocks, bool q4k, const GroupView& g) {
  const __m512i dwords = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(64));
  for (int64_t t = 0; t < n_tok; ++t) {
    const BlockQ8_K* x = reinterpret_cast<const BlockQ8_K*>(xq + t * x_stride);
    for (int64_t b = 0; b < n_blocks; ++b) {
      g.dx[b * kGroup + t] = x[b].d;
      for (int i = 0; i < 4; ++i) {
        // Chunk i of Q4_K: columns 128 (i / 2) + 32 (i % 2) .. + 31, then the same 64 further on.
        const int8_t* first = x[b].qs + (q4k ? 128 * (i / 2) + 32 * (i % 2) : 64 * i);
        const __m512i chunk = q4k ? _mm512_inserti64x4(_mm512_castsi256_si512(load256(first)), load256(first + 64), 1)
                                  : _mm512_loadu_si512(first);
        _mm512_i32scatter_epi32(g.q + (b * QK_K + 64 * i) * kGroup + 4 * t, dwords, chunk, 1);
      }
      if (q4k)
        for (int p = 0; p < 4; ++p) {
          const int16_t* s = x[b].bsums + 4 * p;
          const uint32_t lo = uint16_t(s[0] + s[1]), hi = uint16_t(s[2] + s[3]);
          g.sub_pairs[(b * 4 + p) * kGroup + t] = int32_t(lo | (hi << 16));
        }
    }
  }
}

void pack_q8x32_group(const uint8_t* xq, int64_t x_stride, int64_t n_tok, int64_t n_blocks, const GroupView& g) {
  const __m256i dwords = _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(64));
  for (int64_t t = 0; t < n_tok; ++t) {
    const BlockQ8x32* x = reinterpret_cast<const BlockQ8x32*>(xq + t * x_stride);
    for (int64_t b = 0; b < n_blocks; ++b) {
      g.dx[b * kGroup + t] = x[b].d;
      _mm256_i32scatter_epi32(g.q + b * 32 * kGroup + 4 * t, dwords, load256(x[b].qs), 1);
    }
  }
}

// ---- K-quant blocks unpacked for the tile product ----

struct alignas(64) KBlock {
  uint8_t planes[2][kBand][QK_K];  // [low | high][row][column]: block sum = C_low + (C_high << kHighShift)
  float d[kBand];
  float neg_dmin[kBand];            // Q4_K
  int32_t min_pairs[kBand][4];      // Q4_K: [row][p] = min 2p | min 2p+1 << 16
};

// Word j of the result is scales[first + kSpan[j]] (scales: int16 words of a 512-bit vector).
alignas(64) constexpr int16_t kHalvesTwoApart[32] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                     2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
alignas(64) constexpr int16_t kQuarters[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                               2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
inline __m512i spread_scales(__m512i scales, int first, const int16_t* span) {
  return _mm512_permutexvar_epi16(_mm512_add_epi16(_mm512_load_si512(span), _mm512_set1_epi16(int16_t(first))), scales);
}

// Q4_K: the 6-bit scale s = 8 s_high + s_low, and a level q (0..15) times either part fits a byte
// (at most 105), so one vpmullw per plane forms both bytes of a word (the low byte's product never
// carries into the high one): low plane q s_low, high plane q s_high, block sum C_low + 8 C_high.
struct Q4KBand {
  using Block = BlockQ4_K;
  static constexpr bool kMins = true;
  static constexpr int kHighShift = 3;
  static void unpack_row(const Block& wb, KBlock& k, int r) {
    k.d[r] = half_to_float(wb.d);
    k.neg_dmin[r] = -half_to_float(wb.dmin);
    // Scales and mins in registers (through memory, small stores and a wide load stall on forwarding).
    const __m256i scales_mins = scales_mins_k4_i16(wb.scales);  // words 0-7 scales, 8-15 mins
    _mm_store_si128(reinterpret_cast<__m128i*>(k.min_pairs[r]), _mm256_extracti128_si256(scales_mins, 1));
    const __m512i sc = _mm512_castsi256_si512(scales_mins);
    const __m512i sc_low = _mm512_and_si512(sc, _mm512_set1_epi16(7)), sc_high = _mm512_srli_epi16(sc, 3);
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int h = 0; h < 2; ++h) {
      // 64 bytes of qs: sub-blocks 4h and 4h + 2 in the low nibbles, 4h + 1 and 4h + 3 in the high
      // ones. Taken as they lie, the columns of each 128 go in the order of the sub-blocks 4h,
      // 4h + 2, 4h + 1, 4h + 3 (pack_q8k_group orders the activations to match): two fewer
      // shuffles per 128 than the natural order.
      const __m512i raw = _mm512_loadu_si512(wb.qs + 64 * h);
      const __m512i lo = _mm512_and_si512(raw, low4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
      uint8_t* low_plane = k.planes[0][r] + 128 * h;
      uint8_t* high_plane = k.planes[1][r] + 128 * h;
      _mm512_storeu_si512(low_plane, _mm512_mullo_epi16(lo, spread_scales(sc_low, 4 * h, kHalvesTwoApart)));
      _mm512_storeu_si512(high_plane, _mm512_mullo_epi16(lo, spread_scales(sc_high, 4 * h, kHalvesTwoApart)));
      _mm512_storeu_si512(low_plane + 64, _mm512_mullo_epi16(hi, spread_scales(sc_low, 4 * h + 1, kHalvesTwoApart)));
      _mm512_storeu_si512(high_plane + 64, _mm512_mullo_epi16(hi, spread_scales(sc_high, 4 * h + 1, kHalvesTwoApart)));
    }
  }
};

// Q6_K: p = scale x (level - 32), |p| <= 4096, formed in 16 bits: low plane its low byte
// (unsigned), high plane p >> 8 (-16..16), block sum C_low + 256 C_high.
struct Q6KBand {
  using Block = BlockQ6_K;
  static constexpr bool kMins = false;
  static constexpr int kHighShift = 8;
  static void unpack_row(const Block& wb, KBlock& k, int r) {
    k.d[r] = half_to_float(wb.d);
    const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales))));
    const __mmask64 odd_bytes = 0xAAAAAAAAAAAAAAAAull;
    __m256i q[8];
    q6k_half_levels(wb, 0, q);
    q6k_half_levels(wb, 1, q + 4);
    for (int i = 0; i < 4; ++i) {
      const __m512i levels = _mm512_inserti64x4(_mm512_castsi256_si512(q[2 * i]), q[2 * i + 1], 1);
      const __m512i v = _mm512_sub_epi8(levels, _mm512_set1_epi8(32));
      const __m512i sw = spread_scales(sc, 4 * i, kQuarters);
      const __m512i pe = _mm512_mullo_epi16(_mm512_srai_epi16(_mm512_slli_epi16(v, 8), 8), sw);
      const __m512i po = _mm512_mullo_epi16(_mm512_srai_epi16(v, 8), sw);
      _mm512_storeu_si512(k.planes[0][r] + 64 * i, _mm512_mask_blend_epi8(odd_bytes, pe, _mm512_slli_epi16(po, 8)));
      _mm512_storeu_si512(k.planes[1][r] + 64 * i, _mm512_mask_blend_epi8(odd_bytes, _mm512_srli_epi16(pe, 8), po));
    }
  }
};

// Requests each row's bytes `ahead` bytes past `offset` from memory (T0), running on into the
// thread's next band (nullptr: none) past a row's end: 16 strided rows are more streams than the
// hardware prefetchers follow, and rows of a few blocks end before a prefetch distance pays.
struct Lookahead {
  const uint8_t* band;
  const uint8_t* next_band;
  int64_t w_row_bytes;
  void request(int r, int64_t offset, int64_t bytes) const {
    const uint8_t* p = band + r * w_row_bytes + offset;
    if (offset >= w_row_bytes) {
      if (!next_band) return;
      p = next_band + r * w_row_bytes + offset - w_row_bytes;
    }
    for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T0);
  }
};

// Block b of the band's rows [first_row, end_row) below n_rows (rows past n_rows stay as they
// were: zero).
template <typename Format>
void unpack_block(const Lookahead& ahead, int n_rows, int64_t b, KBlock& k, int first_row = 0, int end_row = kBand) {
  using Block = typename Format::Block;
  constexpr int64_t kAhead = 8;  // blocks
  for (int r = first_row; r < std::min(n_rows, end_row); ++r) {
    ahead.request(r, (b + kAhead) * int64_t(sizeof(Block)), sizeof(Block));
    Format::unpack_row(reinterpret_cast<const Block*>(ahead.band + r * ahead.w_row_bytes)[b], k, r);
  }
}

// acc[r][t] += the block's contribution, in the row kernels' order: d dx levels, then -dmin dx mins.
template <bool kMins, int kHighShift>
void weigh_kquant(const int32_t* c_low, const int32_t* c_high, const KBlock& k, const float* dx, const int32_t* sub_pairs,
                  float* acc) {
  const __m512 dxv = _mm512_loadu_ps(dx);
  __m512i sub[4];
  if constexpr (kMins)
    for (int p = 0; p < 4; ++p) sub[p] = _mm512_loadu_si512(sub_pairs + p * kGroup);
  for (int r = 0; r < kBand; ++r) {
    const __m512i levels = _mm512_add_epi32(_mm512_load_si512(c_low + 16 * r), _mm512_slli_epi32(_mm512_load_si512(c_high + 16 * r), kHighShift));
    __m512 a = _mm512_loadu_ps(acc + 16 * r);
    a = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(k.d[r]), dxv), _mm512_cvtepi32_ps(levels), a);
    if constexpr (kMins) {
      __m512i mins = _mm512_setzero_si512();
      for (int p = 0; p < 4; ++p) mins = _mm512_dpwssd_epi32(mins, sub[p], _mm512_set1_epi32(k.min_pairs[r][p]));
      a = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(k.neg_dmin[r]), dxv), _mm512_cvtepi32_ps(mins), a);
    }
    _mm512_storeu_ps(acc + 16 * r, a);
  }
}

// The product of one unpacked block with groups a and (where two) b into acc_a, acc_b.
template <typename Format>
void kquant_block_groups(const KBlock& k, int64_t b, const GroupView& ga, const GroupView* gb, float* acc_a, float* acc_b) {
  alignas(64) int32_t c[4][256];
  _tile_zero(0);
  _tile_zero(1);
  if (gb) {
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int s = 0; s < 4; ++s) {
    _tile_loadd(4, k.planes[0][0] + 64 * s, QK_K);
    _tile_loadd(5, k.planes[1][0] + 64 * s, QK_K);
    _tile_loadd(6, ga.q + (b * QK_K + 64 * s) * kGroup, 64);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbssd(1, 5, 6);
    if (gb) {
      _tile_loadd(7, gb->q + (b * QK_K + 64 * s) * kGroup, 64);
      _tile_dpbusd(2, 4, 7);
      _tile_dpbssd(3, 5, 7);
    }
  }
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  weigh_kquant<Format::kMins, Format::kHighShift>(c[0], c[1], k, ga.dx + b * kGroup, Format::kMins ? ga.sub_pairs + b * 4 * kGroup : nullptr, acc_a);
  if (gb) {
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
    weigh_kquant<Format::kMins, Format::kHighShift>(c[2], c[3], k, gb->dx + b * kGroup, Format::kMins ? gb->sub_pairs + b * 4 * kGroup : nullptr, acc_b);
  }
}

// The tile intrinsics take tile numbers as literals (GCC pastes them into the instruction text).
#define CSQ_CHUNK_PRODUCTS(low, high, act, s)                  \
  do {                                                         \
    _tile_loadd(4, k.planes[0][0] + 64 * (s), QK_K);           \
    _tile_loadd(5, k.planes[1][0] + 64 * (s), QK_K);           \
    _tile_loadd(act, gq + 64 * (s) * kGroup, 64);              \
    _tile_dpbusd(low, 4, act);                                 \
    _tile_dpbssd(high, 5, act);                                \
  } while (0)
#define CSQ_BLOCK_PRODUCTS(low, high)                          \
  do {                                                         \
    _tile_zero(low);                                           \
    _tile_zero(high);                                          \
    for (int s = 0; s < 4; s += 2) {                           \
      CSQ_CHUNK_PRODUCTS(low, high, 6, s);                     \
      between(s);                                              \
      CSQ_CHUNK_PRODUCTS(low, high, 7, s + 1);                 \
      between(s + 1);                                          \
    }                                                          \
  } while (0)

// Block k's products with the group's activations gq into accumulator pair kPair (tmm0-1 or
// tmm2-3), between(s) run after chunk s's: the core's work goes between the tile instructions,
// the activation tiles alternating so that a chunk's load need not wait for the previous chunk's
// products.
template <int kPair, typename Between>
inline void issue_block_products(const KBlock& k, const uint8_t* gq, Between between) {
  if constexpr (kPair == 0) CSQ_BLOCK_PRODUCTS(0, 1);
  else CSQ_BLOCK_PRODUCTS(2, 3);
}
#undef CSQ_BLOCK_PRODUCTS
#undef CSQ_CHUNK_PRODUCTS

// Stores accumulator pair kPair to c.
template <int kPair>
inline void store_pair(int32_t (*c)[256]) {
  if constexpr (kPair == 0) {
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
  } else {
    _tile_stored(2, c[0], 64);
    _tile_stored(3, c[1], 64);
  }
}

// One group (a decode batch of up to 16 tokens), software-pipelined: block b's tile products go
// into one accumulator pair while the core weighs block b - 1's (stored from the other pair) and
// unpacks block b + 1, a quarter of its rows after each chunk's products. Done one after the
// other, the core and the tile unit mostly waited on each other (1 thread, 9728 x 2560 Q4_K in
// cache, 8 tokens: 2.1 ms in sequence, 1.75-1.9 pipelined). Tried and slower: the weighing split
// between the chunks, or put after the first; the unpacking split between every product.
template <typename Format>
void kquant_band_one_group(const Lookahead& ahead, int n_rows, int64_t n_blocks, const GroupView& g, KBlock* blocks, float* acc) {
  const auto weigh_previous = [&](int64_t b) {
    alignas(64) int32_t c[2][256];
    if (b % 2 == 0) store_pair<1>(c);
    else store_pair<0>(c);
    weigh_kquant<Format::kMins, Format::kHighShift>(c[0], c[1], blocks[(b - 1) % 3], g.dx + (b - 1) * kGroup,
                                                    Format::kMins ? g.sub_pairs + (b - 1) * 4 * kGroup : nullptr, acc);
  };
  unpack_block<Format>(ahead, n_rows, 0, blocks[0]);
  for (int64_t b = 0; b < n_blocks; ++b) {
    if (b > 0) weigh_previous(b);
    const auto between = [&](int s) {
      if (b + 1 < n_blocks) unpack_block<Format>(ahead, n_rows, b + 1, blocks[(b + 1) % 3], 4 * s, 4 * s + 4);
    };
    const uint8_t* gq = g.q + b * QK_K * kGroup;
    if (b % 2 == 0) issue_block_products<0>(blocks[b % 3], gq, between);
    else issue_block_products<1>(blocks[b % 3], gq, between);
  }
  weigh_previous(n_blocks);
}

template <typename Format>
void kquant_band(const Lookahead& ahead, int n_rows, int64_t n_blocks, const std::vector<GroupView>& groups, float* acc) {
  thread_local KBlock blocks[4];
  for (KBlock& k : blocks)
    if (n_rows < kBand) std::memset(&k, 0, sizeof k);
  if (groups.size() == 1) return kquant_band_one_group<Format>(ahead, n_rows, n_blocks, groups[0], blocks, acc);
  unpack_block<Format>(ahead, n_rows, 0, blocks[0]);
  const int64_t n_groups = int64_t(groups.size());
  for (int64_t b = 0; b < n_blocks; ++b) {
    const KBlock& k = blocks[b & 3];
    for (int64_t g = 0; g < n_groups; g += 2) {
      const GroupView* second = g + 1 < n_groups ? &groups[size_t(g + 1)] : nullptr;
      kquant_block_groups<Format>(k, b, groups[size_t(g)], second, acc + g * 256, acc + (g + 1) * 256);
      // The next block unpacked while the tile unit works on this one.
      if (g == 0 && b + 1 < n_blocks) unpack_block<Format>(ahead, n_rows, b + 1, blocks[(b + 1) & 3]);
    }
  }
}

// ---- Q8_0 ----

// acc[r][t] += d_r dx_t sum, as the row kernels weigh a block.
inline void weigh_q8_0(const int32_t* c, const float* d, const float* dx, float* acc) {
  const __m512 dxv = _mm512_loadu_ps(dx);
  for (int r = 0; r < kBand; ++r) {
    __m512 a = _mm512_loadu_ps(acc + 16 * r);
    a = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(d[r]), dxv), _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * r)), a);
    _mm512_storeu_ps(acc + 16 * r, a);
  }
}

// The band's rows lie w_row_bytes apart (16 of them: a last partial band comes zero-padded).
void q8_0_band(const Lookahead& ahead, int64_t n_blocks, const std::vector<GroupView>& groups, float* acc) {
  const uint8_t* band = ahead.band;
  const int64_t w_row_bytes = ahead.w_row_bytes;
  constexpr int64_t kBlockBytes = sizeof(BlockQ8_0), kAhead = 8;
  const int64_t n_groups = int64_t(groups.size());
  alignas(64) int32_t c[4][256];
  for (int64_t b = 0; b < n_blocks; b += 2) {
    const bool two = b + 1 < n_blocks;
    alignas(64) float d[2][kBand];
    for (int r = 0; r < kBand; ++r) {
      const uint8_t* row = band + r * w_row_bytes + b * kBlockBytes;
      ahead.request(r, (b + kAhead) * kBlockBytes, 2 * kBlockBytes);
      d[0][r] = half_to_float(reinterpret_cast<const BlockQ8_0*>(row)->d);
      d[1][r] = two ? half_to_float(reinterpret_cast<const BlockQ8_0*>(row + kBlockBytes)->d) : 0.f;
    }
    // tmm4: block b, tmm5: block b + 1 (16 rows x 32 levels, in place past each block's scale).
    _tile_loadd(4, band + b * kBlockBytes + 2, w_row_bytes);
    if (two) _tile_loadd(5, band + (b + 1) * kBlockBytes + 2, w_row_bytes);
    for (int64_t g = 0; g < n_groups; ++g) {
      const GroupView& gv = groups[size_t(g)];
      // tmm0/tmm1 for even groups, tmm2/tmm3 for odd: a group's stores need not wait for the next's products.
      float* a = acc + g * 256;
      if (g % 2 == 0) {
        _tile_zero(0);
        _tile_loadd(6, gv.q + b * 32 * kGroup, 64);
        _tile_dpbssd(0, 4, 6);
        if (two) {
          _tile_zero(1);
          _tile_loadd(7, gv.q + (b + 1) * 32 * kGroup, 64);
          _tile_dpbssd(1, 5, 7);
        }
        _tile_stored(0, c[0], 64);
        if (two) _tile_stored(1, c[1], 64);
        weigh_q8_0(c[0], d[0], gv.dx + b * kGroup, a);
        if (two) weigh_q8_0(c[1], d[1], gv.dx + (b + 1) * kGroup, a);
      } else {
        _tile_zero(2);
        _tile_loadd(6, gv.q + b * 32 * kGroup, 64);
        _tile_dpbssd(2, 4, 6);
        if (two) {
          _tile_zero(3);
          _tile_loadd(7, gv.q + (b + 1) * 32 * kGroup, 64);
          _tile_dpbssd(3, 5, 7);
        }
        _tile_stored(2, c[2], 64);
        if (two) _tile_stored(3, c[3], 64);
        weigh_q8_0(c[2], d[0], gv.dx + b * kGroup, a);
        if (two) weigh_q8_0(c[3], d[1], gv.dx + (b + 1) * kGroup, a);
      }
    }
  }
}

}  // namespace

int64_t amx_int8_min_tokens(DType type) {
  switch (type) {
    case DType::Q8_0: return kAmxQ8_0MinTokens;
    case DType::Q4_K: return kAmxQ4KMinTokens;
    case DType::Q6_K: return kAmxQ6KMinTokens;
    default: return std::numeric_limits<int64_t>::max();
  }
}

void matmul_amx_int8(const Matrix& w, const uint8_t* xq, int64_t x_stride, int64_t n_tokens, float* y, ThreadPool& pool) {
  const bool q8_0 = w.type == DType::Q8_0;
  const int64_t block_elems = q8_0 ? 32 : QK_K, n_blocks = w.cols / block_elems;
  const int64_t n_groups = (n_tokens + kGroup - 1) / kGroup;
  const int64_t q_bytes = w.cols * kGroup, dx_floats = n_blocks * kGroup, pair_words = w.type == DType::Q4_K ? n_blocks * 4 * kGroup : 0;
  thread_local std::vector<uint8_t> packed_q;
  thread_local std::vector<float> packed_dx;
  thread_local std::vector<int32_t> packed_pairs;
  // The pool's threads see the caller's buffers through these references.
  std::vector<uint8_t>& q = packed_q;
  std::vector<float>& dx = packed_dx;
  std::vector<int32_t>& pairs = packed_pairs;
  q.assign(size_t(n_groups * q_bytes), 0);
  dx.assign(size_t(n_groups * dx_floats), 0.f);
  pairs.assign(size_t(n_groups * pair_words), 0);
  std::vector<GroupView> groups(static_cast<size_t>(n_groups));
  for (int64_t g = 0; g < n_groups; ++g)
    groups[size_t(g)] = {q.data() + g * q_bytes, dx.data() + g * dx_floats, pairs.data() + g * pair_words};
  pool.parallel_for(n_groups, [&](int64_t begin, int64_t end, int) {
    for (int64_t g = begin; g < end; ++g) {
      const uint8_t* x = xq + g * kGroup * x_stride;
      const int64_t n = std::min(kGroup, n_tokens - g * kGroup);
      if (q8_0) pack_q8x32_group(x, x_stride, n, n_blocks, groups[size_t(g)]);
      else pack_q8k_group(x, x_stride, n, n_blocks, pair_words > 0, groups[size_t(g)]);
    }
  });

  const int64_t w_row_bytes = w.row_bytes(), n_bands = (w.rows + kBand - 1) / kBand;
  pool.parallel_for_dynamic(n_bands, std::max<int64_t>(1, n_bands / (16 * pool.size())), [&](int64_t begin, int64_t end, int) {
    configure_tiles(q8_0);
    std::vector<float> acc(size_t(n_groups * 256));
    std::vector<uint8_t> padded;
    for (int64_t band = begin; band < end; ++band) {
      const int64_t r0 = band * kBand;
      const int n_rows = int(std::min(kBand, w.rows - r0));
      const uint8_t* rows = w.data + r0 * w_row_bytes;
      std::fill(acc.begin(), acc.end(), 0.f);
      // The next band's rows, where it is this thread's and whole (a partial one is copied).
      const uint8_t* next = band + 1 < end && r0 + 2 * kBand <= w.rows ? rows + kBand * w_row_bytes : nullptr;
      switch (w.type) {
        case DType::Q4_K: kquant_band<Q4KBand>({rows, next, w_row_bytes}, n_rows, n_blocks, groups, acc.data()); break;
        case DType::Q6_K: kquant_band<Q6KBand>({rows, next, w_row_bytes}, n_rows, n_blocks, groups, acc.data()); break;
        default:
          // A last partial band from a zero-padded copy: the tile loads read 16 rows.
          if (n_rows < kBand) {
            padded.assign(size_t(kBand * w_row_bytes), 0);
            std::memcpy(padded.data(), rows, size_t(n_rows * w_row_bytes));
            rows = padded.data();
          }
          q8_0_band({rows, next, w_row_bytes}, n_blocks, groups, acc.data());
      }
      for (int64_t g = 0; g < n_groups; ++g) {
        const int64_t t0 = g * kGroup, n_t = std::min(kGroup, n_tokens - t0);
        for (int64_t t = 0; t < n_t; ++t)
          for (int r = 0; r < n_rows; ++r) y[(t0 + t) * w.rows + r0 + r] = acc[size_t(g * 256 + r * 16 + t)];
      }
    }
    _tile_release();
  });
}

}  // namespace csq::kernels::cpu

#include "kernels/cpu/avx512_end.h"

#endif  // x86
