// Internals of the fast kernels (matrix product, attention), shared by the ISA-specific files, the driver
// (matmul.cpp) and the kernel tests. Not part of the kernels layer's public interface.
#pragma once

#include <cstdint>
#include <optional>

#include "base/half.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/quants.h"

// 1 where the x86 kernel files (*_avx2.cpp, matmul_avx512.cpp) are compiled: the dispatchers may
// call into them only then.
#if defined(__x86_64__) || defined(__i386__)
#define CSQ_X86_KERNELS 1
#else
#define CSQ_X86_KERNELS 0
#endif

namespace csq::kernels::cpu {

// How activations are encoded before the integer dot products.
enum class ActFormat {
  F32,   // float as given (F32/F16/BF16 weights)
  Q8x32, // BlockQ8x32: Q4_0 and Q8_0 weights
  Q8K,   // quants::BlockQ8_K: k-quant weights (bsums carry the per-16 sums for the mins/offsets)
  Q8KLanes,  // Q8K, then each block's LaneSides: the AVX-512 Q6_K kernels
  BF16,  // two bf16 rows, hi = bf16(x) then lo = bf16(x - hi): BF16 weights on the AVX512-BF16 kernel
};

// 8-bit activations in 32-element blocks: the levels and scale of ggml's Q8_0 (symmetric,
// ±127, scale rounded to fp16), with the scale kept as a float so the kernels need not decode it,
// and -128 times the levels' sum: the AVX-512 Q8_0 kernels multiply weights biased by 128, which
// adds 128 times that sum to a block's dot product, and start each sum from this (a broadcast load).
struct BlockQ8x32 {
  float d;
  int8_t qs[32];
  int32_t bias_correction;
};

// A token's terms of one 256-column block that the AVX-512 Q6_K rows in vector lanes need besides
// its levels and that depend on its activations alone: computed once per product when the
// activations are quantized, instead of once per 16 weight rows. A Q8KLanes row holds the row's
// BlockQ8_K blocks, then one LaneSides per block.
struct LaneSides {
  // The start of half e of sub-block g's chains: -32 (sum of activations 16 g + 4 e + i and
  // 16 g + 8 + 4 e + i, i < 4) - 1.
  int32_t q6_starts[16][2];
};
// Token row `row`'s LaneSides (n_blocks blocks of 256 columns).
inline const LaneSides* lane_sides(const void* row, int64_t n_blocks) {
  return reinterpret_cast<const LaneSides*>(static_cast<const uint8_t*>(row) + n_blocks * int64_t(sizeof(quants::BlockQ8_K)));
}
// Computes the LaneSides of a Q8KLanes row from its blocks (quantize_act does, with the AVX2
// version where use_avx2(); a test that edits the levels afterwards calls it again).
// add_lane_sides_avx2 writes the same bytes; only call it when cpu_has_avx2().
void add_lane_sides(void* row, int64_t cols);
void add_lane_sides_avx2(void* row, int64_t cols);

// Bytes of one activation row of `cols` elements in `format`.
int64_t act_row_bytes(ActFormat format, int64_t cols);
// Encodes one row; cols a multiple of the block size (32 or 256) for the 8-bit formats.
void quantize_act(ActFormat format, const float* x, void* dst, int64_t cols);

// Dot products of one weight row with n_tok (1..kMaxTokens) activation rows that lie x_stride
// bytes apart: out[t] = w . x_t. Each out[t] is computed with the same arithmetic whatever
// n_tok is, so a token's result never depends on how tokens were grouped.
constexpr int kMaxTokens = 4;
using DotFn = void (*)(const void* w_row, const void* x, int64_t x_stride, int n_tok, int64_t cols, float* out);

// A DotFn from a row kernel templated on the token count: K<N>::run(w_row, x, x_stride, cols, out)
// for N = 1..kMaxTokens. In an anonymous namespace: GCC gives a specialization over an
// anonymous-namespace K external linkage, and the AVX-512 file compiled twice (native and
// emulated) would then share one copy.
namespace {
template <template <int> class K>
void dot_for_tokens(const void* w, const void* x, int64_t x_stride, int n_tok, int64_t cols, float* out) {
  switch (n_tok) {
    case 1: return K<1>::run(w, x, x_stride, cols, out);
    case 2: return K<2>::run(w, x, x_stride, cols, out);
    case 3: return K<3>::run(w, x, x_stride, cols, out);
    default: return K<4>::run(w, x, x_stride, cols, out);
  }
}

// Token t's activation row, the rows lying x_stride bytes apart.
template <typename XBlock>
inline const XBlock* x_row(const void* x, int64_t x_stride, int t) {
  return reinterpret_cast<const XBlock*>(static_cast<const uint8_t*>(x) + t * x_stride);
}

// Element i of an F32, F16 or BF16 weight row as float (exact): the row kernels' column tails.
template <DType T>
inline float scalar_w(const void* w, int64_t i) {
  if constexpr (T == DType::F32) return static_cast<const float*>(w)[i];
  else if constexpr (T == DType::F16) return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
}
}  // namespace

// Eight consecutive weight rows (w_row_bytes apart) against n_tok activation rows:
// out[t * out_stride + i] = w_i . x_t for i < 8, bit-identical to DotFn's result for every n_tok.
// One vector lane per row: faster than eight calls of DotFn, and from kTileMinTokens (Q6_K:
// kQ6KTileMinTokens) tokens on the rows are unpacked into tiles first (prompt processing).
using Rows8Fn = void (*)(const uint8_t* w_rows, int64_t w_row_bytes, const void* x, int64_t x_stride,
                         int64_t n_tok, int64_t cols, float* out, int64_t out_stride);
// The same for any n_rows <= kRowsFnBlock consecutive rows (out[t * out_stride + i], i < n_rows),
// which matmul hands out in blocks of kRowsFnBlock: the AVX-512 float tile, which reuses a block's
// widened weights and each token group's activations across all of the block's rows, and the
// AVX-512 integer kernels with rows in vector lanes (two groups of 16 rows).
using RowsFn = void (*)(const uint8_t* w_rows, int64_t w_row_bytes, int64_t n_rows, const void* x, int64_t x_stride,
                        int64_t n_tok, int64_t cols, float* out, int64_t out_stride);
constexpr int64_t kRowsFnBlock = 32;
// The first 64-byte boundary at or after p (4-byte aligned): a float buffer allocated 15 floats
// over its need holds a cache-line-aligned one there.
inline float* cache_line_aligned(float* p) { return p + (16 - reinterpret_cast<uintptr_t>(p) / 4 % 16) % 16; }
// Tokens from which unpacking the rows into tiles pays: Q4_K and Q8_0 from 16; Q6_K's unpacking
// costs more (six-bit levels, 16 scales a block) and only pays from 48 (measured: the tile and the
// in-place kernel break even at about 32 tokens, the tile is 1.3x faster at 64).
constexpr int64_t kTileMinTokens = 16;
constexpr int64_t kQ6KTileMinTokens = 48;
// Float weights take their eight-row (tile) kernel from this many tokens on; fewer stream each
// row once through the row kernel (generation is bound by memory, not by the activations' loads).
constexpr int64_t kFloatTileMinTokens = 8;
// The AVX-512 float tile (RowsFn) from this many tokens on; decode batches below it are bound by
// memory and take the eight-row tile, whose 8 row streams the hardware prefetcher follows.
constexpr int64_t kFloatBlockTileMinTokens = 16;

struct RowKernel {
  ActFormat act;
  DotFn dot;
  Rows8Fn rows8 = nullptr;  // where the weight type has one
  int64_t rows8_min_tokens = 1;  // products with fewer tokens use dot
  RowsFn rows = nullptr;  // where there is one, taken instead of rows8 from rows_min_tokens tokens
  int64_t rows_min_tokens = kFloatBlockTileMinTokens;
};

// Whether this CPU runs the AVX2 kernels (AVX2, FMA and F16C).
bool cpu_has_avx2();
// Whether it also runs the AVX-512 kernels (AVX-512 F, BW, VL and VNNI, with the OS saving the
// 512-bit registers).
bool cpu_has_avx512();
// cpu_has_avx2() unless CSQ_KERNELS=reference forces the plain reference path (for
// comparisons and bisecting).
bool use_avx2();
// cpu_has_avx512() and use_avx2(), unless CSQ_KERNELS=avx2 keeps an AVX-512 CPU on the AVX2
// kernels.
bool use_avx512();
// The AVX2 kernel for a weight type, or nullptr where there is none (the caller falls back to
// the reference). Only call when cpu_has_avx2().
const RowKernel* avx2_kernel(DType weight_type);
// quants::quantize_q8_k bit for bit (ggml's encoding of k-quant activations), 8 lanes at a time.
void quantize_q8_k_avx2(const float* x, quants::BlockQ8_K* y, int64_t n);
// 64-bit ARM: the NEON row kernel for a weight type (bit-identical to the AVX2 one), or nullptr.
// use_neon() unless CSQ_KERNELS=reference.
const RowKernel* neon_kernel(DType weight_type);
bool use_neon();

// The AVX-512 replacements for parts of a weight type's AVX2 kernel (nullptr: keep the AVX2
// part). Each is bit-identical to the part it replaces, so the two mix freely (a last partial
// group of rows goes to the AVX2 row kernel). Only call when cpu_has_avx512().
struct Avx512Parts {
  DotFn dot = nullptr;
  Rows8Fn rows8 = nullptr;
  RowsFn rows = nullptr;
  int64_t rows_min_tokens = kFloatBlockTileMinTokens;
  std::optional<ActFormat> act = std::nullopt;  // where the parts read more than the AVX2 kernel's format (which they extend)
};
Avx512Parts avx512_parts(DType weight_type);
// The same kernels compiled with SIMDe's portable AVX-512 (test builds only, run on any AVX2
// CPU): checks the kernels' logic where the CPU lacks the instructions.
Avx512Parts avx512_parts_emulated(DType weight_type);

// Whether this CPU has the AVX512-BF16 dot product (vdpbf16ps) besides cpu_has_avx512().
bool cpu_has_avx512_bf16();
// CSQ_KERNELS=bf16dp on a CPU with cpu_has_avx512_bf16(): the AVX-512 kernels, with the bf16 dot
// product for BF16 weights (opt-in: on the Xeon it was written on it ran below the float kernels).
bool use_avx512_bf16();
// The BF16-weight kernel with the bf16 dot product (ActFormat::BF16 activations); not
// bit-identical to the float kernels (see matmul_avx512bf16.cpp for the bound). Only call when
// cpu_has_avx512_bf16().
const RowKernel* avx512_bf16_kernel();
// n floats to ActFormat::BF16: dst[i] = bf16(x[i]), dst[n + i] = bf16(x[i] - bf16(x[i])), to
// nearest even with subnormal inputs as zero (vcvtneps2bf16). Only call when cpu_has_avx512_bf16().
void split_act_bf16(const float* x, uint16_t* dst, int64_t n);

// Intel AMX (matmul_amx.cpp): whether the CPU has AMX-TILE, AMX-BF16 and AMX-INT8 besides
// cpu_has_avx512_bf16(), the OS saves the tile state and (Linux) granted this process the tile
// data; the first call asks for that permission. Where not, amx_unavailable_reason() says why.
bool cpu_has_amx();
const char* amx_unavailable_reason();
// cpu_has_amx() and use_avx512(), unless CSQ_KERNELS (avx512, avx2, bf16dp, float, reference)
// asks for another kernel set.
bool use_amx();
// y = w x for BF16 weights on AMX, each activation split into two bf16 parts (see
// matmul_amx.cpp for the bound): every BF16 product where use_amx(), whatever its token count, so
// that a token's result never depends on how many others share its product (decode steps, prompt
// chunks). Only call when use_amx().
void matmul_amx_bf16(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// The 64-byte operand of _tile_loadconfig (palette 1), with tiles 0-7 at 16 rows of 64 bytes:
// the shape both AMX kernels configure (the int8 one narrows its Q8_0 tiles).
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
  AmxTileConfig() {
    for (int i = 0; i < 8; ++i) bytes_per_row[i] = 64, rows[i] = 16;
  }
};

// Q8_0, Q4_K and Q6_K weights on AMX int8 tiles (matmul_amx_int8.cpp), bit-identical to the row
// kernels: products of amx_int8_min_tokens(type) tokens or more go there (the maximum int64 for
// other types), fewer stay on the AVX-512 kernels, which read the rows in place (Q8_0: in
// vector lanes, faster than the tiles up to 8 tokens: 1 thread, CPU time, 9728 x 2560 read from
// memory, three alternating pairs, 5 tokens 2.48-2.57 ms against 2.74-2.84 on AMX, 6: 2.56-2.66
// against 2.79-2.85, 8: 2.77-2.85 against 2.86-2.89, 10: 2.98-3.07 against 2.88-2.93).
constexpr int64_t kAmxQ8_0MinTokens = 9;
// Q4_K: the lanes beat the tiles at 7-8 tokens, are even at 9 and lose from 10 (1 thread, CPU
// time, 9728 x 2560 from memory, three alternating pairs: 7 tokens 1.76-1.81 ms against 2.00-2.13,
// 8 1.90-1.93 against 1.99-2.11, 9 2.05-2.11 against 1.99-2.09, 10 2.22-2.26 against 2.07-2.10).
constexpr int64_t kAmxQ4KMinTokens = 9;
// Q6_K from 11: since the Q6_K lanes take their chain starts with the activations they beat the
// tiles at 8-10 tokens on one thread (8 tokens 2.35-2.43 ms against 2.88-2.95, 9728 x 2560 from
// memory; even at 11), and a whole decode step agrees (csq bench Q4_K_M --mmap --streams 8,12,
// two alternating pairs: S_TG at 8 streams 46.0 / 46.9 tok/s against 43.0 / 43.5 with AMX from
// 8, at 12 streams 53.3 / 52.7 against 50.8 / 50.4). Before them, AMX from 8 was the faster.
constexpr int64_t kAmxQ6KMinTokens = 11;
int64_t amx_int8_min_tokens(DType type);
// y = w x from the activations quantized for the weight type's row kernel (xq: n_tokens rows
// x_stride bytes apart). Only call when use_amx() and n_tokens >= amx_int8_min_tokens(w.type).
void matmul_amx_int8(const Matrix& w, const uint8_t* xq, int64_t x_stride, int64_t n_tokens, float* y, ThreadPool& pool);

// The row kernel matmul uses for a weight type on this CPU under this CSQ_KERNELS, or nullptr
// (the reference).
const RowKernel* matmul_row_kernel(DType weight_type);


// Peak-rate probes for csq bench's compute roofline (AVX2 only): `rounds` rounds of independent
// register-only multiply-add chains of the instructions the kernels' inner loops issue, no memory
// traffic. The result depends on every product, so nothing is optimised away.
// int8: 8 x (vpmaddubsw + vpaddw) per round, as in the integer tile kernels.
constexpr int64_t kProbeInt8MacsPerRound = 8 * 32;
int32_t probe_int8_madd(int64_t rounds);
// float: 12 x vfmadd per round, as in the float-weight kernels.
constexpr int64_t kProbeFloatMacsPerRound = 12 * 8;
float probe_float_fma(int64_t rounds);
// The AVX-512 kernels' instructions (cpu_has_avx512() only): 12 x vpdpbusd per round (64
// multiply-adds each), and 12 x 16-lane vfmadd.
constexpr int64_t kProbeDpbusdMacsPerRound = 12 * 64;
int32_t probe_int8_dpbusd(int64_t rounds);
constexpr int64_t kProbeFloat512MacsPerRound = 12 * 16;
float probe_float_fma512(int64_t rounds);
// The BF16 kernel's (cpu_has_avx512_bf16() only): 12 x vdpbf16ps per round, 32 multiply-adds each.
constexpr int64_t kProbeBf16MacsPerRound = 12 * 32;
float probe_bf16_dp(int64_t rounds);
// AMX (cpu_has_amx() only): 4 x TDPBF16PS (16 x 16 x 32 multiply-adds each) or 4 x TDPBSSD
// (16 x 16 x 64) per round into four independent accumulator tiles, as in the tile kernel.
constexpr int64_t kProbeAmxBf16MacsPerRound = 4 * 16 * 16 * 32;
float probe_amx_bf16(int64_t rounds);
constexpr int64_t kProbeAmxInt8MacsPerRound = 4 * 16 * 16 * 64;
int32_t probe_amx_int8(int64_t rounds);

}  // namespace csq::kernels::cpu

namespace csq::kernels::cpu {

// attention_group for kv_type F32, F16 or Q8_0 when attention_avx2_fits (AVX2 only).
bool attention_avx2_fits(int64_t n_group, int64_t head_dim);
void attention_group_avx2(const float* q, int64_t n_group, const void* k, const void* v, DType kv_type,
                          int64_t kv_stride, int64_t n_ctx, int64_t head_dim, float* out);

}  // namespace csq::kernels::cpu
