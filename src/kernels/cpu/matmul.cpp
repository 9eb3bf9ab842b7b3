// The fast matrix product: picks a row kernel for the weight type and the CPU, encodes the
// activations once per product, and walks the weights in row blocks x token tiles so that
// each weight row is decoded once per tile of tokens while the tile stays in cache.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "base/half.h"
#include "kernels/cpu/fast_kernels.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace csq::kernels {
namespace cpu {
namespace {

// Round to nearest, ties to even (as _mm256_round_ps does), for |v| < 2^22.
inline int round_nearest(float v) {
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// One 32-element block as ggml-cpu's quantize_row_q8_0 encodes activations (not the file
// quantizer's quantize_row_q8_0_ref): levels from 127 / max|x| rounded to nearest even, scale
// max|x| / 127 stored in fp16. Any other rounding gives different levels for some inputs.
void quantize_block_q8x32(const float* x, BlockQ8x32& y) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float id = amax != 0 ? 127.f / amax : 0.f;
  y.d = f16_to_f32(f32_to_f16(amax / 127.f));
  int32_t sum = 0;
  for (int i = 0; i < 32; ++i) {
    y.qs[i] = int8_t(round_nearest(x[i] * id));
    sum += y.qs[i];
  }
  y.bias_correction = -128 * sum;
}

}  // namespace

int64_t act_row_bytes(ActFormat format, int64_t cols) {
  switch (format) {
    case ActFormat::Q8x32: return cols / 32 * int64_t(sizeof(BlockQ8x32));
    case ActFormat::Q8K: return cols / quants::QK_K * int64_t(sizeof(quants::BlockQ8_K));
    case ActFormat::Q8KLanes: return cols / quants::QK_K * int64_t(sizeof(quants::BlockQ8_K) + sizeof(LaneSides));
    case ActFormat::BF16: return 2 * cols * int64_t(sizeof(uint16_t));
    default: return cols * int64_t(sizeof(float));
  }
}

void add_lane_sides(void* row, int64_t cols) {
  const int64_t n_blocks = cols / quants::QK_K;
  const auto* blocks = static_cast<const quants::BlockQ8_K*>(row);
  auto* sides = const_cast<LaneSides*>(lane_sides(row, n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) {
    const quants::BlockQ8_K& x = blocks[b];
    LaneSides& side = sides[b];
    for (int g = 0; g < 16; ++g)
      for (int e = 0; e < 2; ++e) {
        int32_t sum = 0;
        for (int i = 0; i < 4; ++i) sum += x.qs[16 * g + 4 * e + i] + x.qs[16 * g + 8 + 4 * e + i];
        side.q6_starts[g][e] = -32 * sum - 1;
      }
  }
}

void quantize_act(ActFormat format, const float* x, void* dst, int64_t cols) {
  switch (format) {
    case ActFormat::Q8x32: {
      BlockQ8x32* y = static_cast<BlockQ8x32*>(dst);
      for (int64_t b = 0; b < cols / 32; ++b) quantize_block_q8x32(x + 32 * b, y[b]);
      return;
    }
    case ActFormat::Q8K:
    case ActFormat::Q8KLanes:
      // ggml-cpu encodes k-quant activations with the reference quantize_row_q8_K on every ISA;
      // the vector version writes the same bytes.
#if CSQ_X86_KERNELS
      if (use_avx2()) quantize_q8_k_avx2(x, static_cast<quants::BlockQ8_K*>(dst), cols);
      else
#endif
        quants::quantize_q8_k(x, static_cast<quants::BlockQ8_K*>(dst), cols);
      if (format == ActFormat::Q8KLanes) {
#if CSQ_X86_KERNELS
        if (use_avx2()) add_lane_sides_avx2(dst, cols);
        else
#endif
          add_lane_sides(dst, cols);
      }
      return;
#if CSQ_X86_KERNELS
    case ActFormat::BF16: split_act_bf16(x, static_cast<uint16_t*>(dst), cols); return;
#endif
    default: std::memcpy(dst, x, size_t(cols) * sizeof(float));
  }
}

#if defined(__x86_64__) || defined(__i386__)
// The register state the OS saves on context switches (XCR0); only call when CPUID reports OSXSAVE.
unsigned saved_register_state() {
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return lo;
}
#endif

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!(fma && osxsave && avx && f16c)) return false;
    // The OS must save the YMM registers (XCR0 bits 1 and 2).
    if ((saved_register_state() & 6u) != 6u) return false;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 5)) != 0;
  }();
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    if (!cpu_has_avx2()) return false;
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    const bool f = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31), vnni = c & (1u << 11);
    if (!(f && bw && vl && vnni)) return false;
    // The OS must save the opmask and all 512-bit registers (XCR0 bits 5-7) besides YMM.
    return (saved_register_state() & 0xE6u) == 0xE6u;
  }();
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    if (!cpu_has_avx512()) return false;
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    if (a < 1) return false;  // no subleaf 1
    __cpuid_count(7, 1, a, b, c, d);
    return (a & (1u << 5)) != 0;  // AVX512_BF16
  }();
  return has;
#else
  return false;
#endif
}

namespace {
// Whether CSQ_KERNELS is set to `value` (reference, avx2, avx512, bf16dp, float: see ops.h).
bool kernels_env_is(std::string_view value) {
  const char* v = std::getenv("CSQ_KERNELS");
  return v && value == v;
}
}  // namespace

bool use_avx2() {
  static const bool use = cpu_has_avx2() && !kernels_env_is("reference");
  return use;
}

bool use_neon() {
#if defined(__aarch64__)
  static const bool use = !kernels_env_is("reference");
  return use;
#else
  return false;
#endif
}

bool use_avx512() {
  static const bool use = use_avx2() && cpu_has_avx512() && !kernels_env_is("avx2");
  return use;
}

bool use_avx512_bf16() {
  static const bool use = use_avx2() && cpu_has_avx512() && cpu_has_avx512_bf16() && kernels_env_is("bf16dp");
  return use;
}

bool use_amx() {
#if CSQ_X86_KERNELS
  static const bool use = use_avx512() && !use_avx512_bf16() && !kernels_env_is("avx512") && !kernels_env_is("float") &&
                          cpu_has_amx();
  return use;
#else
  return false;
#endif
}

}  // namespace cpu

namespace {

// CSQ_KERNELS=float keeps quantized weights off the integer kernels (decoded exactly, float32
// products: the reference path), for comparisons with the 8-bit activation rounding. Read per
// product: negligible next to the product.
bool integer_kernels_allowed() { return !cpu::kernels_env_is("float"); }

#if CSQ_X86_KERNELS
// The AVX2 kernel with the AVX-512 parts put in, per ggml type id (BF16 is the largest with a kernel).
constexpr int kNumDTypes = int(DType::BF16) + 1;
const cpu::RowKernel* avx512_kernel(DType type) {
  if (int(type) >= kNumDTypes) return nullptr;
  // A type without an AVX2 kernel keeps a null dot.
  static const auto table = [] {
    std::array<cpu::RowKernel, kNumDTypes> kernels{};
    for (int i = 0; i < kNumDTypes; ++i) {
      const cpu::RowKernel* base = cpu::avx2_kernel(DType(i));
      if (!base) continue;
      const cpu::Avx512Parts parts = cpu::avx512_parts(DType(i));
      kernels[size_t(i)] = {parts.act.value_or(base->act), parts.dot ? parts.dot : base->dot, parts.rows8 ? parts.rows8 : base->rows8,
                            base->rows8_min_tokens, parts.rows, parts.rows_min_tokens};
    }
    return kernels;
  }();
  return table[size_t(type)].dot ? &table[size_t(type)] : nullptr;
}
#endif

// Rows per block: the weights of one block are reused from cache by every token tile.
constexpr int64_t kRowBlock = 16;

}  // namespace

namespace cpu {
const RowKernel* matmul_row_kernel(DType type) {
  if (!use_avx2() && !use_neon()) return nullptr;
  const bool float_weights = type == DType::F32 || type == DType::F16 || type == DType::BF16;
  if (!float_weights && !integer_kernels_allowed()) return nullptr;
#if CSQ_X86_KERNELS
  if (type == DType::BF16 && use_avx512_bf16()) return avx512_bf16_kernel();
  return use_avx512() ? avx512_kernel(type) : avx2_kernel(type);
#elif defined(__aarch64__)
  return neon_kernel(type);
#else
  return nullptr;
#endif
}
}  // namespace cpu

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
#if CSQ_X86_KERNELS
  if (w.type == DType::BF16 && cpu::use_amx())
    return cpu::matmul_amx_bf16(w, x, n_tokens, y, pool);
#endif
  const cpu::RowKernel* kernel = cpu::matmul_row_kernel(w.type);
  if (!kernel) return matmul_ref(w, x, n_tokens, y, pool);

  int64_t x_stride = cpu::act_row_bytes(kernel->act, w.cols);
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(x);
#if CSQ_X86_KERNELS
  const bool amx_int8 = n_tokens >= cpu::amx_int8_min_tokens(w.type) && cpu::use_amx();
#else
  const bool amx_int8 = false;
#endif
  // Only the rows in lanes read a Q8KLanes row's side terms: elsewhere its blocks alone are written.
  const bool lane_sides = kernel->rows && n_tokens >= kernel->rows_min_tokens && !amx_int8;
  const cpu::ActFormat encoding = kernel->act == cpu::ActFormat::Q8KLanes && !lane_sides ? cpu::ActFormat::Q8K : kernel->act;
  thread_local std::vector<uint8_t> scratch;
  if (kernel->act != cpu::ActFormat::F32) {
    scratch.resize(size_t(n_tokens * x_stride));
    uint8_t* dst = scratch.data();
    pool.parallel_for(n_tokens, [&](int64_t begin, int64_t end, int) {
      for (int64_t t = begin; t < end; ++t) cpu::quantize_act(encoding, x + t * w.cols, dst + t * x_stride, w.cols);
    });
    xq = dst;
  }
#if CSQ_X86_KERNELS
  if (amx_int8) return cpu::matmul_amx_int8(w, xq, x_stride, n_tokens, y, pool);
#endif

  // Rows [r0, r1) for every token through the row kernel, a tile of tokens at a time so each
  // row is decoded once per tile while the tile's activations stay in cache.
  const int64_t w_row_bytes = w.row_bytes();
  const auto by_rows = [&](int64_t r0, int64_t r1) {
    float out[cpu::kMaxTokens];
    for (int64_t t0 = 0; t0 < n_tokens; t0 += cpu::kMaxTokens) {
      const int n_tok = int(std::min<int64_t>(cpu::kMaxTokens, n_tokens - t0));
      for (int64_t r = r0; r < r1; ++r) {
        kernel->dot(w.data + r * w_row_bytes, xq + t0 * x_stride, x_stride, n_tok, w.cols, out);
        for (int i = 0; i < n_tok; ++i) y[(t0 + i) * w.rows + r] = out[i];
      }
    }
  };
  if (kernel->rows && n_tokens >= kernel->rows_min_tokens) {
    // The tile loads 64 bytes of a token's activations at a time: from rows that start on a
    // cache line, or every load spans two lines (13% slower, all in L1). One copy per product.
    if (kernel->act == cpu::ActFormat::F32 && (reinterpret_cast<uintptr_t>(xq) % 64 != 0 || x_stride % 64 != 0)) {
      const int64_t stride = (w.cols + 15) / 16 * 16;
      scratch.resize(size_t(n_tokens * stride + 16) * sizeof(float));
      float* dst = cpu::cache_line_aligned(reinterpret_cast<float*>(scratch.data()));
      for (int64_t t = 0; t < n_tokens; ++t) std::memcpy(dst + t * stride, xq + t * x_stride, size_t(w.cols) * sizeof(float));
      xq = reinterpret_cast<const uint8_t*>(dst), x_stride = stride * int64_t(sizeof(float));
    }
    const int64_t blocks = (w.rows + cpu::kRowsFnBlock - 1) / cpu::kRowsFnBlock;
    pool.parallel_for_guided(blocks, 1, [&](int64_t begin, int64_t end, int) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t r0 = b * cpu::kRowsFnBlock;
        kernel->rows(w.data + r0 * w_row_bytes, w_row_bytes, std::min(cpu::kRowsFnBlock, w.rows - r0), xq, x_stride,
                     n_tokens, w.cols, y + r0, w.rows);
      }
    });
    return;
  }
  if (kernel->rows8 && n_tokens >= kernel->rows8_min_tokens) {
    // Groups of 8 rows through the eight-row kernel, a last partial group through the row
    // kernel (bit-identical results either way).
    // Groups handed out in chunks as threads come free (the two threads of a core pair rarely
    // stream their halves of the weights at the same speed), shrinking towards the end so that
    // the last thread busy holds the others up for one short chunk.
    const int64_t groups = (w.rows + 7) / 8;
    pool.parallel_for_guided(groups, 1, [&](int64_t begin, int64_t end, int) {
      for (int64_t g = begin; g < end; ++g) {
        const int64_t r0 = 8 * g;
        if (r0 + 8 <= w.rows) kernel->rows8(w.data + r0 * w_row_bytes, w_row_bytes, xq, x_stride, n_tokens, w.cols, y + r0, w.rows);
        else by_rows(r0, w.rows);
      }
    });
    return;
  }
  pool.parallel_for((w.rows + kRowBlock - 1) / kRowBlock, [&](int64_t begin, int64_t end, int) {
    for (int64_t blk = begin; blk < end; ++blk) by_rows(blk * kRowBlock, std::min(w.rows, (blk + 1) * kRowBlock));
  });
}

const char* matmul_kernel_set() {
  if (cpu::use_neon()) return "neon";
  if (!cpu::use_avx2()) return "reference";
  if (!cpu::use_avx512()) return "avx2";
  if (cpu::use_avx512_bf16()) return "avx512-bf16dp";
  return cpu::use_amx() ? "avx512-amx" : "avx512";
}

const char* matmul_amx_problem() {
#if CSQ_X86_KERNELS
  if (cpu::use_amx()) return "";
  if (!cpu::cpu_has_amx()) return cpu::amx_unavailable_reason();
  return "turned off by CSQ_KERNELS";
#else
  return "not an x86 CPU";
#endif
}

MatmulArithmetic matmul_arithmetic(DType type) {
  if (type == DType::BF16 && cpu::use_amx()) return MatmulArithmetic::AmxBF16Split;
#if CSQ_X86_KERNELS
  if (cpu::amx_int8_min_tokens(type) < std::numeric_limits<int64_t>::max() && cpu::use_amx() && integer_kernels_allowed())
    return MatmulArithmetic::AmxInt8;
#endif
  const cpu::RowKernel* kernel = cpu::matmul_row_kernel(type);
  if (!kernel) return MatmulArithmetic::Reference;
  switch (kernel->act) {
    case cpu::ActFormat::F32: return MatmulArithmetic::Float;
    case cpu::ActFormat::BF16: return MatmulArithmetic::BF16;
    default: return integer_kernels_allowed() ? MatmulArithmetic::Int8 : MatmulArithmetic::Reference;
  }
}

ComputePeak measure_compute_peak(ThreadPool& pool) {
  ComputePeak peak;
#if CSQ_X86_KERNELS
  if (!cpu::use_avx2()) return peak;
  // Each probe runs about 0.1 s per thread; the best of five passes counts (the slower ones
  // were shared with something else).
  const auto best_rate = [&](int64_t rounds, int64_t macs_per_round, auto probe) {
    std::vector<double> sinks(size_t(pool.size()));
    double best = 0;
    for (int pass = 0; pass < 5; ++pass) {
      const auto start = std::chrono::steady_clock::now();
      pool.parallel_for(pool.size(), [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) sinks[size_t(i)] = double(probe(rounds));
      });
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = std::max(best, double(pool.size() * rounds * macs_per_round) / seconds);
    }
    return best;
  };
  if (cpu::use_avx512()) {
    peak.int8_macs_per_s = best_rate(int64_t(10'000'000), cpu::kProbeDpbusdMacsPerRound, cpu::probe_int8_dpbusd);
    peak.float_macs_per_s = best_rate(int64_t(20'000'000), cpu::kProbeFloat512MacsPerRound, cpu::probe_float_fma512);
    if (cpu::cpu_has_avx512_bf16())
      peak.bf16_macs_per_s = best_rate(int64_t(10'000'000), cpu::kProbeBf16MacsPerRound, cpu::probe_bf16_dp);
    if (cpu::cpu_has_amx()) {
      peak.amx_bf16_macs_per_s = best_rate(int64_t(2'000'000), cpu::kProbeAmxBf16MacsPerRound, cpu::probe_amx_bf16);
      peak.amx_int8_macs_per_s = best_rate(int64_t(1'000'000), cpu::kProbeAmxInt8MacsPerRound, cpu::probe_amx_int8);
    }
  } else {
    peak.int8_macs_per_s = best_rate(int64_t(20'000'000), cpu::kProbeInt8MacsPerRound, cpu::probe_int8_madd);
    peak.float_macs_per_s = best_rate(int64_t(40'000'000), cpu::kProbeFloatMacsPerRound, cpu::probe_float_fma);
  }
#else
  (void)pool;  // no probes for the reference kernels
#endif
  return peak;
}

}  // namespace csq::kernels
