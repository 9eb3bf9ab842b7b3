// BF16 weights on Intel AMX (TDPBF16PS: a 16 x 16 float tile += 16 x 32 bf16 times 32 x 16 bf16,
// 8192 multiply-adds per instruction) for every product of BF16 weights, and the AMX
// enablement: CPUID, the OS's saved state (XCR0) and Linux's per-process permission for the 8 KB
// of tile data (arch_prctl ARCH_REQ_XCOMP_PERM). Compiled for AMX with a pragma and called only
// after use_amx().
//
// The weights stay as stored: a tile of 16 rows x 32 columns is 16 rows of 64 bytes, loaded in
// place with the row length as stride, so nothing is repacked and the memory stays that of the
// file. The activations are packed once per product into the tile layout of the second operand,
// each split into two bf16 parts as on the AVX512-BF16 kernel, x = hi + lo + r with hi = bf16(x),
// lo = bf16(x - hi), |r| <= 2^-16 |x| (activations rounded once to bf16 miss the engine's fixture
// tolerances by a factor of four): per 8 tokens one tile column set, pair rows of [slot][2 columns]
// with token t's hi part in slot t and its lo part in slot 8 + t, so one tile product takes both
// parts of 8 tokens. The bf16 x bf16 products are exact in float, so a result lies within
// 2^-16 * sum |w_i x_i| of the float product plus float accumulation (the instruction treats bf16
// subnormals, below 1.2e-38, as zero). Each (row, token) result is two accumulators (hi, lo) that
// take 32 columns at a time in column order, added at the end: it does not depend on the thread
// count or on which other tokens share its tile or its product.
//
// It is not bit-identical to the float row kernels, so on AMX every BF16 product takes it, whatever
// its token count: a stream decoded alone gets the bits it gets in a decode batch of 16 or a
// prompt. Hi and lo sharing a tile halves a decode step's tile products (a token alone uses 2 of a
// product's 16 slots instead of 2 products' 1 of 16), which makes one token as cheap as the float
// row kernel. csq_matmul_bench, Qwen3-4B FFN matrix from memory, 2 threads, one run: 1 token
// 30.0 GB/s (float row kernel 22.9); 4, 8, 16 tokens 1.70, 1.75, 2.07 ms (2.50, 3.11, 4.87).
#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/fast_kernels.h"

namespace csq::kernels::cpu {

// Detection runs on any x86 CPU: compiled before the AMX target region.
namespace {

// Linux's arch_prctl codes for the dynamically enabled tile data (asm/prctl.h, Linux 5.16+).
constexpr long kArchReqXcompPerm = 0x1023;
constexpr long kXfeatureXtiledata = 18;

struct AmxSupport {
  bool usable = false;
  std::string reason;  // why not, where not usable
};

const AmxSupport& amx_support() {
  static const AmxSupport support = []() -> AmxSupport {
    if (!cpu_has_avx512_bf16()) return {false, "no AVX-512 with BF16"};
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    const bool tile = d & (1u << 24), bf16 = d & (1u << 22), int8 = d & (1u << 25);
    if (!(tile && bf16 && int8)) return {false, "the CPU has no AMX"};
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    // XCR0 bits 17 (tile configuration) and 18 (tile data): the OS saves the tiles.
    if ((lo & (3u << 17)) != (3u << 17)) return {false, "the OS does not enable the AMX tile state"};
#if defined(__linux__)
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
      return {false, "the Linux kernel refused the AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM)"};
#endif
    return {true, ""};
  }();
  return support;
}

}  // namespace

bool cpu_has_amx() { return amx_support().usable; }
const char* amx_unavailable_reason() { return amx_support().reason.c_str(); }

}  // namespace csq::kernels::cpu

#include "kernels/cpu/amx_begin.h"

namespace csq::kernels::cpu {

namespace {

// Configures this thread's tiles, every one 16 rows of 64 bytes: tmm0-3 the accumulators (2 row
// blocks x 2 token groups), tmm4-5 the weights, tmm6-7 the activations. Paired with
// _tile_release() when the thread's share is done (an unconfigured thread saves and restores less
// on every context switch).
void configure_tiles() {
  const AmxTileConfig config;
  _tile_loadconfig(&config);
}

constexpr int64_t kGroup = 8;        // tokens per activation tile: hi parts in slots 0-7, lo in 8-15
constexpr int64_t kStep = 32;        // columns per tile product
constexpr int64_t kBlockRows = 32;   // weight rows per task (two weight tiles)
constexpr int64_t kChunkSteps = 16;  // steps per column chunk (512 columns)

// Bytes of one group's activation tiles: cols_pad / 2 pair rows of 64 bytes.
inline int64_t group_bytes(int64_t cols_pad) { return cols_pad / 2 * 64; }

// Packs tokens [t0, t0 + n) (n <= 8) of x into one group's tiles at dst: the hi part of token t,
// column c at pair row c / 2, slot t, half c % 2, its lo part in slot 8 + t; columns past cols are
// 0. The slots of missing tokens keep what they held: column s of a result tile depends on slot s
// alone, and the results of missing tokens are never read (a decode step of a few tokens clears
// no tile).
void pack_group(const float* x, int64_t cols, int64_t n, uint8_t* dst) {
  // Pair p of a 32-column step goes to pair row p: 16 dwords 64 bytes apart.
  const __m512i pair_rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                               _mm512_set1_epi32(64));
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * cols;
    for (int64_t c = 0; c < cols; c += kStep) {
      const int64_t left = std::min<int64_t>(kStep, cols - c);
      const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
      const __mmask16 m1 = left >= 32 ? __mmask16(0xFFFF) : left <= 16 ? __mmask16(0) : __mmask16((1u << (left - 16)) - 1);
      const __m512 v0 = _mm512_maskz_loadu_ps(m0, xt + c), v1 = _mm512_maskz_loadu_ps(m1, xt + c + 16);
      // hi = bf16(v), lo = bf16(v - hi); _mm512_cvtne2ps_pbh(b, a) puts a's 16 in the low half.
      const __m512bh hi = _mm512_cvtne2ps_pbh(v1, v0);
      const __m512i hi_bits = (__m512i)hi;
      const __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hi_bits)), 16));
      const __m512 h1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hi_bits, 1)), 16));
      const __m512i lo_bits = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(v1, h1), _mm512_sub_ps(v0, h0));
      // Dword p of each is the column pair (c + 2p, c + 2p + 1).
      uint8_t* row = dst + c / 2 * 64;
      _mm512_i32scatter_epi32(row + t * 4, pair_rows, hi_bits, 1);
      _mm512_i32scatter_epi32(row + (kGroup + t) * 4, pair_rows, lo_bits, 1);
    }
  }
}

// C tiles of one block (tmm0: rows 0-15 x group a, tmm1: rows 0-15 x group b, tmm2: rows 16-31 x
// group a, tmm3: rows 16-31 x group b) += the steps [0, n_steps) of weights w (row stride w_stride
// bytes) times groups a and b; without kPair, group a alone (tmm0 and tmm2 take the same
// instructions, so a token's result does not depend on whether its group has a partner).
// With `ahead`, step k also requests the 32 rows (ahead_stride bytes apart) of step k's columns
// at `ahead`: the block's next chunk, or after its last chunk the next block's first. 32 strided
// rows are more streams than the hardware prefetcher follows, and the weight loads waited on
// memory for half the cycles without it.
template <bool kPair>
void block_steps(const uint8_t* w, int64_t w_stride, const uint8_t* group_a, const uint8_t* group_b, int64_t n_steps,
                 const uint8_t* ahead, int64_t ahead_stride) {
  for (int64_t k = 0; k < n_steps; ++k) {
    const uint8_t* wk = w + k * kStep * 2;
    if (ahead)
      for (int r = 0; r < kBlockRows; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(ahead + k * kStep * 2 + r * ahead_stride), _MM_HINT_T0);
    _tile_loadd(4, wk, w_stride);
    _tile_loadd(5, wk + 16 * w_stride, w_stride);
    _tile_loadd(6, group_a + k * 1024, 64);
    if constexpr (kPair) _tile_loadd(7, group_b + k * 1024, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kPair) _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    if constexpr (kPair) _tile_dpbf16ps(3, 5, 7);
  }
}

}  // namespace

void matmul_amx_bf16(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const int64_t cols = w.cols, rows = w.rows, w_stride = w.row_bytes();
  const int64_t cols_pad = (cols + kStep - 1) / kStep * kStep;
  const int64_t body_steps = cols / kStep;
  // Groups in pairs; an odd last group goes alone.
  const int64_t n_groups = (n_tokens + kGroup - 1) / kGroup, n_pairs = (n_groups + 1) / 2;
  const int64_t g_bytes = group_bytes(cols_pad);
  thread_local std::vector<uint8_t> scratch;
  // The pool's threads see the caller's buffer through this reference (a thread_local named
  // inside the lambdas would be each thread's own).
  std::vector<uint8_t>& packed = scratch;
  packed.resize(size_t(n_groups * g_bytes));
  pool.parallel_for(n_groups, [&](int64_t begin, int64_t end, int) {
    for (int64_t g = begin; g < end; ++g)
      pack_group(x + g * kGroup * cols, cols, std::min(kGroup, n_tokens - g * kGroup), packed.data() + g * g_bytes);
  });

  const int64_t n_blocks = (rows + kBlockRows - 1) / kBlockRows;
  // Runs of consecutive blocks (about 16 a thread), so that a block's last chunk can prefetch the
  // next block: a decode step's few tokens leave too little work per chunk to hide a fresh
  // block's first loads.
  const int64_t grain = std::max<int64_t>(1, n_blocks / (16 * pool.size()));
  pool.parallel_for_dynamic(n_blocks, grain, [&](int64_t begin, int64_t end, int) {
    configure_tiles();
    // The column tail of a full block, and a last partial block whole, from zero-padded copies
    // (weights past the matrix could be any bits, NaN included, and NaN x 0 is NaN).
    std::vector<uint16_t> padded;
    alignas(64) float out[16 * 16];
    std::vector<float> acc(size_t(n_pairs * 4 * 256));  // [pair][tile] x 16 x 16
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r0 = blk * kBlockRows, n_rows = std::min(kBlockRows, rows - r0);
      const uint8_t* body = w.data + r0 * w_stride;
      int64_t stride = w_stride, steps = body_steps;
      const uint8_t* tail = nullptr;
      if (n_rows < kBlockRows) {
        padded.assign(size_t(kBlockRows * cols_pad), 0);
        for (int64_t r = 0; r < n_rows; ++r) std::memcpy(padded.data() + r * cols_pad, body + r * w_stride, size_t(cols * 2));
        body = reinterpret_cast<const uint8_t*>(padded.data()), stride = cols_pad * 2, steps = cols_pad / kStep;
      } else if (body_steps * kStep < cols) {
        padded.assign(size_t(kBlockRows * kStep), 0);
        const int64_t done = body_steps * kStep;
        for (int64_t r = 0; r < kBlockRows; ++r)
          std::memcpy(padded.data() + r * kStep, body + r * w_stride + done * 2, size_t((cols - done) * 2));
        tail = reinterpret_cast<const uint8_t*>(padded.data());
      }
      // Columns a chunk at a time for every pair of groups, so that the block's weights of a chunk
      // (32 KB) stay in L1 while all the tokens pass; the accumulators wait in memory between chunks
      // (exactly: each still sees its steps in column order).
      const int64_t total_steps = steps + (tail ? 1 : 0);
      for (int64_t k0 = 0; k0 < total_steps; k0 += kChunkSteps) {
        const int64_t k1 = std::min(total_steps, k0 + kChunkSteps), body_end = std::min(k1, steps);
        for (int64_t p = 0; p < n_pairs; ++p) {
          const uint8_t* group_a = packed.data() + 2 * p * g_bytes;
          const uint8_t* group_b = group_a + g_bytes;
          const bool pair = 2 * p + 1 < n_groups;
          float* saved = acc.data() + p * 4 * 256;
          if (k0 == 0) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
          } else {
            _tile_loadd(0, saved, 64);
            _tile_loadd(2, saved + 512, 64);
            if (pair) {
              _tile_loadd(1, saved + 256, 64);
              _tile_loadd(3, saved + 768, 64);
            }
          }
          const auto steps_of = pair ? block_steps<true> : block_steps<false>;
          // The first pair prefetches (the others find the chunk in L1).
          const uint8_t* ahead = nullptr;
          int64_t ahead_stride = stride;
          if (p == 0 && k1 < steps) ahead = body + k1 * kStep * 2;
          else if (p == 0 && blk + 1 < end && r0 + 2 * kBlockRows <= rows)
            ahead = w.data + (r0 + kBlockRows) * w_stride, ahead_stride = w_stride;
          if (body_end > k0)
            steps_of(body + k0 * kStep * 2, stride, group_a + k0 * 1024, group_b + k0 * 1024, body_end - k0, ahead,
                     ahead_stride);
          if (tail && k1 > steps)
            steps_of(tail, kStep * 2, group_a + steps * 1024, group_b + steps * 1024, 1, nullptr, 0);
          if (k1 < total_steps) {
            _tile_stored(0, saved, 64);
            _tile_stored(2, saved + 512, 64);
            if (pair) {
              _tile_stored(1, saved + 256, 64);
              _tile_stored(3, saved + 768, 64);
            }
            continue;
          }
          // Out of the tiles (rows x tokens) into y (tokens x rows).
          const auto store = [&](int64_t row_half, int64_t group) {
            const int64_t t0 = (2 * p + group) * kGroup, rr = r0 + 16 * row_half;
            const int64_t n_t = std::min(kGroup, n_tokens - t0), n_r = std::min<int64_t>(16, rows - rr);
            for (int64_t i = 0; i < n_r; ++i)
              for (int64_t t = 0; t < n_t; ++t) y[(t0 + t) * rows + rr + i] = out[i * 16 + t] + out[i * 16 + kGroup + t];
          };
          _tile_stored(0, out, 64);
          store(0, 0);
          _tile_stored(2, out, 64);
          store(1, 0);
          if (!pair) continue;
          _tile_stored(1, out, 64);
          store(0, 1);
          _tile_stored(3, out, 64);
          store(1, 1);
        }
      }
    }
    _tile_release();
  });
}

namespace {
// `rounds` rounds of `products` (four independent tile products, tmm0-3 += tmm4-5 x tmm6-7, as in
// the kernel's block) on operand tiles of `operand` (16 rows of 64 bytes); the result depends on
// every accumulator.
template <typename Acc, typename Products>
Acc probe_tiles(const void* operand, int64_t rounds, Products products) {
  configure_tiles();
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t r = 0; r < rounds; ++r) products();
  alignas(64) Acc out[4][256];
  _tile_stored(0, out[0], 64);
  _tile_stored(1, out[1], 64);
  _tile_stored(2, out[2], 64);
  _tile_stored(3, out[3], 64);
  _tile_release();
  return out[0][0] + out[1][17] + out[2][255] + out[3][3];
}
}  // namespace

float probe_amx_bf16(int64_t rounds) {
  alignas(64) uint16_t operand[16 * 32];
  for (uint16_t& v : operand) v = 0x3380;  // 2^-24: the sums stay finite
  return probe_tiles<float>(operand, rounds, [] {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  });
}

int32_t probe_amx_int8(int64_t rounds) {
  alignas(64) int8_t operand[16 * 64];
  for (size_t i = 0; i < sizeof operand; ++i) operand[i] = int8_t(i % 7) - 3;
  return probe_tiles<int32_t>(operand, rounds, [] {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  });
}

}  // namespace csq::kernels::cpu

#include "kernels/cpu/avx512_end.h"

#endif  // x86
