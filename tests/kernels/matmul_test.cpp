// The fast matrix product against the reference, on random weights of every fast type, with
// odd row counts, token counts that leave partial tiles, and (for float weights) column tails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/half.h"
#include "kernels/cpu/fast_kernels.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/raw_weights.h"
#include "kernels/row_model.h"

namespace csq::kernels {
namespace {

struct Case {
  DType type;
  int64_t rows, cols, tokens;
};

std::string name(const Case& c) {
  return std::string(dtype_info(c.type).name) + " " + std::to_string(c.rows) + "x" + std::to_string(c.cols) +
         " tokens=" + std::to_string(c.tokens);
}

struct Problem {
  std::vector<uint8_t> weights;
  std::vector<float> x;
  Matrix w;
};

Problem make_problem(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  Problem p;
  p.w = {c.type, c.rows, c.cols, nullptr};
  p.weights.resize(size_t(c.rows * p.w.row_bytes()));
  std::vector<float> row(size_t(c.cols));
  for (int64_t r = 0; r < c.rows; ++r) {
    // Rows of different magnitudes and an occasional outlier exercise the block scales.
    const float scale = 0.02f * float(1 + r % 5);
    for (float& v : row) v = normal(rng) * scale;
    row[size_t(r % c.cols)] *= 8.f;
    quantize_row(c.type, row.data(), p.weights.data() + r * p.w.row_bytes(), c.cols);
  }
  p.w.data = p.weights.data();
  p.x.resize(size_t(c.tokens * c.cols));
  for (float& v : p.x) v = normal(rng);
  return p;
}

// The activations as the kernel sees them: rounded to 8 bits for the quantized weight types, to
// the sum of two bf16 parts for BF16 weights on the bf16 dot product or AMX.
std::vector<float> kernel_activations(cpu::ActFormat act, const float* x, int64_t cols) {
  std::vector<uint8_t> q(size_t(cpu::act_row_bytes(act, cols)));
  cpu::quantize_act(act, x, q.data(), cols);
  std::vector<float> out(static_cast<size_t>(cols));
  if (act == cpu::ActFormat::Q8x32) {
    const auto* b = reinterpret_cast<const cpu::BlockQ8x32*>(q.data());
    for (int64_t i = 0; i < cols; ++i) out[size_t(i)] = b[i / 32].d * float(b[i / 32].qs[i % 32]);
  } else if (act == cpu::ActFormat::Q8K || act == cpu::ActFormat::Q8KLanes) {
    const auto* b = reinterpret_cast<const quants::BlockQ8_K*>(q.data());
    for (int64_t i = 0; i < cols; ++i) out[size_t(i)] = b[i / 256].d * float(b[i / 256].qs[i % 256]);
  } else if (act == cpu::ActFormat::BF16) {
    const auto* b = reinterpret_cast<const uint16_t*>(q.data());
    for (int64_t i = 0; i < cols; ++i) out[size_t(i)] = bf16_to_f32(b[i]) + bf16_to_f32(b[cols + i]);  // exact
  } else {
    std::memcpy(out.data(), x, size_t(cols) * sizeof(float));
  }
  return out;
}

class FastMatmul : public ::testing::TestWithParam<Case> {};

TEST_P(FastMatmul, MatchesReference) {
  const Case c = GetParam();
  SCOPED_TRACE(name(c));
  if (!cpu::use_avx2() || matmul_arithmetic(c.type) == MatmulArithmetic::Reference)
    GTEST_SKIP() << "matmul runs the reference here (no AVX2, or CSQ_KERNELS=reference or float)";
  const cpu::RowKernel* kernel = cpu::matmul_row_kernel(c.type);  // the one matmul runs
  ASSERT_NE(kernel, nullptr);
  Problem p = make_problem(c, uint32_t(c.rows * 131 + c.cols * 7 + c.tokens));
  ThreadPool pool2(2), pool1(1), pool3(3);

  std::vector<float> fast(size_t(c.tokens * c.rows)), ref(fast.size()), other(fast.size());
  matmul(p.w, p.x.data(), c.tokens, fast.data(), pool2);
  matmul_ref(p.w, p.x.data(), c.tokens, ref.data(), pool2);

  std::vector<float> wrow(size_t(c.cols));
  for (int64_t t = 0; t < c.tokens; ++t) {
    const float* xt = p.x.data() + t * c.cols;
    // AMX splits BF16 weights' activations as the bf16 dot product does.
    const bool amx = matmul_arithmetic(c.type) == MatmulArithmetic::AmxBF16Split;
    const std::vector<float> xq = kernel_activations(amx ? cpu::ActFormat::BF16 : kernel->act, xt, c.cols);
    for (int64_t r = 0; r < c.rows; ++r) {
      dequantize_row(c.type, p.w.row(r), wrow.data(), c.cols);
      // Exact product with the kernel's own activation levels: only float rounding may differ.
      double exact = 0, magnitude = 0, rounding = 0;
      for (int64_t i = 0; i < c.cols; ++i) {
        exact += double(wrow[size_t(i)]) * double(xq[size_t(i)]);
        magnitude += std::fabs(double(wrow[size_t(i)]) * double(xt[i]));
        rounding += std::fabs(double(wrow[size_t(i)]) * (double(xq[size_t(i)]) - double(xt[i])));
      }
      const float got = fast[size_t(t * c.rows + r)];
      ASSERT_NEAR(got, exact, 2e-6 * magnitude + 1e-30) << "row " << r << " token " << t;
      // Against the reference the activation rounding adds at most sum |w| * |x - xq|.
      ASSERT_NEAR(got, ref[size_t(t * c.rows + r)], 1.001 * rounding + 2e-6 * magnitude + 1e-30)
          << "row " << r << " token " << t;
    }
  }

  // Bit-identical whatever the thread count and however tokens are grouped into tiles.
  matmul(p.w, p.x.data(), c.tokens, other.data(), pool1);
  EXPECT_EQ(0, std::memcmp(fast.data(), other.data(), fast.size() * sizeof(float)));
  matmul(p.w, p.x.data(), c.tokens, other.data(), pool3);
  EXPECT_EQ(0, std::memcmp(fast.data(), other.data(), fast.size() * sizeof(float)));
  // A token alone (the row kernel) gives what it gave in the batch (the tile kernel from
  // kTileMinTokens tokens on).
  std::vector<float> single(size_t(c.rows));
  for (int64_t t = 0; t < c.tokens; ++t) {
    matmul(p.w, p.x.data() + t * c.cols, 1, single.data(), pool2);
    EXPECT_EQ(0, std::memcmp(single.data(), fast.data() + t * c.rows, single.size() * sizeof(float))) << "token " << t;
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (DType t : {DType::Q8_0, DType::Q4_0})
    for (int64_t cols : {32, 96, 288})
      for (int64_t tokens : {1, 3, 6, 9}) out.push_back({t, 37, cols, tokens});
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K})
    for (int64_t cols : {256, 768})
      for (int64_t tokens : {1, 2, 5, 8}) out.push_back({t, 21, cols, tokens});
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (int64_t cols : {1, 7, 16, 45, 130})
      for (int64_t tokens : {1, 4, 7}) out.push_back({t, 19, cols, tokens});
  out.push_back({DType::Q4_K, 300, 2560, 4});  // a real row length, rows not a multiple of the block
  // Decode steps of 1..16 streams through the driver: odd row counts (a partial group of 8 rows),
  // every kernel's path (in place, in place twice, tiles).
  for (int64_t tokens = 1; tokens <= 16; ++tokens) {
    out.push_back({DType::Q4_K, 41, 768, tokens});
    out.push_back({DType::Q6_K, 41, 768, tokens});
    out.push_back({DType::Q8_0, 41, 288, tokens});
  }
  // The tile kernels (Q4_K, Q6_K, Q8_0): token counts around kTileMinTokens (Q6_K: kQ6KTileMinTokens),
  // partial row groups, more column blocks than one pass holds.
  for (int64_t tokens : {cpu::kTileMinTokens, cpu::kTileMinTokens + 3}) {
    out.push_back({DType::Q4_K, 21, 1280, tokens});
    out.push_back({DType::Q4_K, 64, 256, tokens});
  }
  out.push_back({DType::Q4_K, 300, 2560, 37});
  for (int64_t tokens : {cpu::kQ6KTileMinTokens, cpu::kQ6KTileMinTokens + 5}) {
    out.push_back({DType::Q6_K, 21, 1280, tokens});
    out.push_back({DType::Q6_K, 64, 256, tokens});
  }
  // The float tile kernel: token groups of 3 with 1 or 2 left over, column tails, more columns than
  // one 512-column pass.
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (int64_t cols : {7, 45, 1100})
      for (int64_t tokens : {cpu::kFloatTileMinTokens, cpu::kFloatTileMinTokens + 2, cpu::kFloatTileMinTokens + 3})
        out.push_back({t, 19, cols, tokens});
  // Q8_0: more blocks (of 32 columns) than the 16 one pass holds.
  for (int64_t tokens : {cpu::kTileMinTokens, cpu::kTileMinTokens + 3}) {
    out.push_back({DType::Q8_0, 21, 1056, tokens});
    out.push_back({DType::Q8_0, 64, 64, tokens});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Kernels, FastMatmul, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string s = name(info.param);
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
});

// The eight-row kernels (rows read in place for few tokens, unpacked tiles from kTileMinTokens or
// kQ6KTileMinTokens on; 2-row x 3-token register blocks for float weights) and the row kernel
// compute a token's result with the same arithmetic:
// matmul sends a last partial group of rows to the row kernel, so any difference would make a
// result depend on the row count.
TEST(FastMatmul, EightRowKernelsMatchTheRowKernelBitForBit) {
  if (!cpu::cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2";
  std::vector<std::pair<DType, const cpu::RowKernel*>> kernels;
  for (DType type : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::F32, DType::F16, DType::BF16})
    kernels.push_back({type, cpu::avx2_kernel(type)});
  if (cpu::cpu_has_avx512_bf16()) kernels.push_back({DType::BF16, cpu::avx512_bf16_kernel()});
  for (const auto& [type, kernel] : kernels) {
    ASSERT_NE(kernel, nullptr);
    ASSERT_NE(kernel->rows8, nullptr);
    for (int64_t tokens : {int64_t(1), int64_t(3), int64_t(6), cpu::kTileMinTokens + 1, cpu::kQ6KTileMinTokens + 1}) {
      // More blocks than one pass of either kernel holds; for the bf16 kernel also an odd step
      // count with a column tail.
      const Case c{type, 8, kernel->act == cpu::ActFormat::BF16 && tokens % 2 ? 32 * 67 + 13 : 256 * 21, tokens};
      SCOPED_TRACE(name(c));
      Problem p = make_problem(c, uint32_t(tokens));
      const int64_t x_stride = cpu::act_row_bytes(kernel->act, c.cols);
      std::vector<uint8_t> xq(size_t(tokens * x_stride));
      for (int64_t t = 0; t < tokens; ++t)
        cpu::quantize_act(kernel->act, p.x.data() + t * c.cols, xq.data() + t * x_stride, c.cols);
      std::vector<float> eight(size_t(tokens * 8));
      kernel->rows8(p.w.data, p.w.row_bytes(), xq.data(), x_stride, tokens, c.cols, eight.data(), 8);
      for (int64_t r = 0; r < 8; ++r)
        for (int64_t t = 0; t < tokens; ++t) {
          float one = 0;
          kernel->dot(p.w.row(r), xq.data() + t * x_stride, x_stride, 1, c.cols, &one);
          EXPECT_EQ(0, std::memcmp(&one, &eight[size_t(t * 8 + r)], sizeof(float))) << "row " << r << " token " << t;
        }
    }
  }
}

// The AVX2 row kernels compute row_model's arithmetic bit for bit (the NEON kernels are checked
// against the same model under emulation by tests/cross/neon_check.cpp, the AVX-512 ones against
// the AVX2 ones below): the same logits on every machine.
TEST(RowModel, Avx2RowKernelsComputeTheModelArithmetic) {
  if (!cpu::cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2";
  for (DType type : {DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::F32, DType::F16, DType::BF16}) {
    const bool blocks = type == DType::Q8_0 || type == DType::Q4_K || type == DType::Q6_K;
    for (int64_t cols : blocks ? std::vector<int64_t>{256, 2560} : std::vector<int64_t>{7, 45, 2560}) {
      const Case c{type, 5, cols, cpu::kMaxTokens};
      SCOPED_TRACE(name(c));
      const cpu::RowKernel* kernel = cpu::avx2_kernel(type);
      Problem p = make_problem(c, uint32_t(cols + 3));
      const int64_t x_stride = cpu::act_row_bytes(kernel->act, cols);
      std::vector<uint8_t> xq(size_t(c.tokens * x_stride));
      for (int64_t t = 0; t < c.tokens; ++t) cpu::quantize_act(kernel->act, p.x.data() + t * cols, xq.data() + t * x_stride, cols);
      for (int64_t r = 0; r < c.rows; ++r) {
        float got[cpu::kMaxTokens];
        kernel->dot(p.w.row(r), xq.data(), x_stride, cpu::kMaxTokens, cols, got);
        for (int t = 0; t < cpu::kMaxTokens; ++t) {
          const float want = row_model::dot(type, p.w.row(r), xq.data() + t * x_stride, cols);
          EXPECT_EQ(0, std::memcmp(&got[t], &want, sizeof(float))) << "row " << r << " token " << t << ": " << got[t] << " vs " << want;
        }
      }
    }
  }
}

// The AVX-512 kernels against the AVX2 ones, bit for bit: SIMDe's portable AVX-512 here (any AVX2
// CPU), the instructions themselves where the CPU has them. Weights are random bytes (every level,
// scale and min, including the largest, whose sums test the 16-bit bounds of the tile kernels) and
// all-0xFF bytes; activations random and constant (every level 127).
struct Avx512Implementation {
  const char* name;
  cpu::Avx512Parts (*parts)(DType);
};

std::vector<Avx512Implementation> avx512_implementations() {
  std::vector<Avx512Implementation> out;
  if (!cpu::cpu_has_avx2()) return out;
#if defined(CSQ_HAVE_AVX512_EMULATION)
  out.push_back({"emulated (SIMDe)", cpu::avx512_parts_emulated});
#endif
  if (cpu::cpu_has_avx512()) out.push_back({"native", cpu::avx512_parts});
  return out;
}

// Every decode batch of 1..16 tokens (one or two in place, more in lanes), and the AVX2 tile
// thresholds around them.
std::vector<int64_t> avx512_token_counts() {
  std::vector<int64_t> counts;
  for (int64_t n = 1; n <= 16; ++n) counts.push_back(n);
  counts.push_back(cpu::kTileMinTokens + 3);
  counts.push_back(cpu::kQ6KTileMinTokens + 3);
  return counts;
}

// y = w x (token t's row r at t * rows + r) through a RowsFn, called on blocks of kRowsFnBlock rows
// as matmul calls it.
std::vector<float> in_row_blocks(cpu::RowsFn fn, const uint8_t* w, int64_t w_row_bytes, int64_t rows, const uint8_t* xq,
                                 int64_t x_stride, int64_t tokens, int64_t cols) {
  std::vector<float> y(size_t(tokens * rows));
  for (int64_t r0 = 0; r0 < rows; r0 += cpu::kRowsFnBlock)
    fn(w + r0 * w_row_bytes, w_row_bytes, std::min(cpu::kRowsFnBlock, rows - r0), xq, x_stride, tokens, cols, y.data() + r0, rows);
  return y;
}

TEST(Avx512Kernels, EightRowKernelsMatchTheAvx2RowKernelBitForBit) {
  const auto implementations = avx512_implementations();
  if (implementations.empty()) GTEST_SKIP() << "no AVX-512 kernels to run here (no AVX2, or no SIMDe in this build)";
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (const Avx512Implementation& impl : implementations)
    for (DType type : {DType::Q4_K, DType::Q6_K, DType::Q8_0}) {
      const cpu::RowKernel* avx2 = cpu::avx2_kernel(type);
      const cpu::Rows8Fn rows8 = impl.parts(type).rows8;
      ASSERT_NE(rows8, nullptr);
      const cpu::ActFormat act = impl.parts(type).act.value_or(avx2->act);
      // K-quants: more blocks than one pass of the in-place kernels (the one-token kernel's 32,
      // KQuantRows8's 64 / tokens) and of the tile holds; Q8_0: an odd block count (the in-place
      // kernel takes blocks in pairs) and a single block.
      const std::vector<int64_t> col_counts =
          type == DType::Q8_0 ? std::vector<int64_t>{32 * 43, 32} : std::vector<int64_t>{256 * 37};
      for (int64_t cols : col_counts)
        for (int weights = 0; weights < 2; ++weights)
          for (int64_t tokens : avx512_token_counts()) {
            SCOPED_TRACE(std::string(impl.name) + " " + dtype_info(type).name + " cols=" + std::to_string(cols) +
                         (weights ? " all-0xFF weights" : " random weights") + " tokens=" + std::to_string(tokens));
            const std::vector<uint8_t> w = test::raw_weight_rows(type, 8, cols, weights == 1 ? test::WeightFill::Ones : test::WeightFill::Random, rng);
            const int64_t w_row_bytes = csq::row_bytes(type, cols);
            const int64_t x_stride = cpu::act_row_bytes(act, cols);
            std::vector<uint8_t> xq(size_t(tokens * x_stride));
            std::vector<float> x(static_cast<size_t>(cols));
            for (int64_t t = 0; t < tokens; ++t) {
              for (float& v : x) v = t % 2 ? 1.f : normal(rng);
              cpu::quantize_act(act, x.data(), xq.data() + t * x_stride, cols);
            }
            std::vector<float> eight(size_t(tokens * 8));
            rows8(w.data(), w_row_bytes, xq.data(), x_stride, tokens, cols, eight.data(), 8);
            for (int64_t r = 0; r < 8; ++r)
              for (int64_t t = 0; t < tokens; ++t) {
                float one = 0;
                avx2->dot(w.data() + r * w_row_bytes, xq.data() + t * x_stride, x_stride, 1, cols, &one);
                ASSERT_EQ(0, std::memcmp(&one, &eight[size_t(t * 8 + r)], sizeof(float)))
                    << "row " << r << " token " << t << ": " << one << " vs " << eight[size_t(t * 8 + r)];
              }
          }
    }
}

// The Q8_0 lane kernel (2 x 16 rows in vector lanes, tokens 6 at a time over chunks of 16
// blocks) against the AVX2 row kernel, bit for bit: decode batches of 1-17 tokens and a 128-token
// prompt, 16 rows, 31 and 45 (a last partial group of 15 and 13, in blocks of at most 32 as matmul
// hands them out), 43 blocks (three chunks) and one; random levels and every level -128, -1, 0 or
// 127, against random activations, every activation level 127 or -127, and every level -128
// (which quantize_act never writes and the AVX2 kernel's sign trick does not multiply exactly:
// those tokens are checked against the row model alone).
TEST(Avx512Kernels, Q8_0LaneRowsMatchTheAvx2RowKernelBitForBit) {
  const auto implementations = avx512_implementations();
  if (implementations.empty()) GTEST_SKIP() << "no AVX-512 kernels to run here (no AVX2, or no SIMDe in this build)";
  std::mt19937 rng(19);
  std::normal_distribution<float> normal(0.f, 1.f);
  const cpu::RowKernel* avx2 = cpu::avx2_kernel(DType::Q8_0);
  std::vector<int64_t> token_counts;
  for (int64_t n = 1; n <= 17; ++n) token_counts.push_back(n);
  token_counts.push_back(128);
  struct Levels {
    const char* name;
    int level;  // every level of every block, or random bytes where out of range
  };
  const Levels fills[] = {{"random", 1000}, {"-128", -128}, {"-1", -1}, {"0", 0}, {"127", 127}};
  for (const Avx512Implementation& impl : implementations) {
    const cpu::RowsFn lanes = impl.parts(DType::Q8_0).rows;
    ASSERT_NE(lanes, nullptr);
    for (int64_t cols : {int64_t(32 * 43), int64_t(32)})
      for (int64_t rows : {int64_t(16), int64_t(31), int64_t(45)})
        for (const Levels& fill : fills) {
          if (fill.level != 1000 && rows != 31) continue;  // the extreme levels need one shape
          std::vector<uint8_t> w = test::raw_weight_rows(DType::Q8_0, rows, cols, test::WeightFill::Random, rng);
          if (fill.level != 1000)
            for (int64_t b = 0; b < rows * cols / 32; ++b)
              std::memset(reinterpret_cast<quants::BlockQ8_0*>(w.data())[b].qs, fill.level, 32);
          const int64_t w_row_bytes = csq::row_bytes(DType::Q8_0, cols);
          const int64_t x_stride = cpu::act_row_bytes(avx2->act, cols);
          for (int64_t tokens : token_counts) {
            if (tokens == 128 && (cols == 32 || fill.level != 1000)) continue;
            SCOPED_TRACE(std::string(impl.name) + " cols=" + std::to_string(cols) + " rows=" + std::to_string(rows) +
                         " levels " + fill.name + " tokens=" + std::to_string(tokens));
            std::vector<uint8_t> xq(size_t(tokens * x_stride));
            std::vector<float> x(static_cast<size_t>(cols));
            const auto all_minus_128 = [](int64_t t) { return t % 4 == 3; };
            for (int64_t t = 0; t < tokens; ++t) {
              for (float& v : x) v = t % 4 == 1 ? 1.f : t % 4 == 2 ? -1.f : normal(rng);
              cpu::quantize_act(avx2->act, x.data(), xq.data() + t * x_stride, cols);
              if (all_minus_128(t))
                for (int64_t b = 0; b < cols / 32; ++b) {
                  auto& block = reinterpret_cast<cpu::BlockQ8x32*>(xq.data() + t * x_stride)[b];
                  std::memset(block.qs, 0x80, 32);
                  block.bias_correction = -128 * (-128 * 32);
                }
            }
            const std::vector<float> got = in_row_blocks(lanes, w.data(), w_row_bytes, rows, xq.data(), x_stride, tokens, cols);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t t = 0; t < tokens; ++t) {
                float one = row_model::dot(DType::Q8_0, w.data() + r * w_row_bytes, xq.data() + t * x_stride, cols);
                if (!all_minus_128(t)) avx2->dot(w.data() + r * w_row_bytes, xq.data() + t * x_stride, x_stride, 1, cols, &one);
                ASSERT_EQ(0, std::memcmp(&one, &got[size_t(t * rows + r)], sizeof(float)))
                    << "row " << r << " token " << t << ": " << one << " vs " << got[size_t(t * rows + r)];
              }
          }
        }
  }
}

// The k-quant rows-in-lanes kernels (16 rows per vector; RowsFn of the k-quant types that have
// one; Q8_0's: Q8_0LaneRowsMatchTheAvx2RowKernelBitForBit) against the AVX2 row kernel, bit for bit: full and partial groups of 16 rows (called in
// blocks of kRowsFnBlock as matmul does), 1-17 tokens (a last partial group of kLaneTokens) and
// 128, several blocks and a single one. Row r takes its weights from one of three fills (random
// bytes, all 0xFF, all 0x80), so neighbouring lanes differ; tokens alternate random activations
// with every level at -127 (x = 1) and at 127 (x = -1), every fourth has every level at -128 (Q6_K:
// against level 0 at scale -128 in the all-0x80 rows, the largest sum its 16-bit packing takes).
TEST(Avx512Kernels, RowsInLanesMatchTheAvx2RowKernelBitForBit) {
  const auto implementations = avx512_implementations();
  if (implementations.empty()) GTEST_SKIP() << "no AVX-512 kernels to run here (no AVX2, or no SIMDe in this build)";
  std::mt19937 rng(19);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<int64_t> token_counts;
  for (int64_t n = 1; n <= 17; ++n) token_counts.push_back(n);
  token_counts.push_back(128);
  int tested = 0;
  for (const Avx512Implementation& impl : implementations)
    for (DType type : {DType::Q4_K, DType::Q6_K}) {
      const cpu::RowsFn rows_fn = impl.parts(type).rows;
      if (!rows_fn) continue;
      ++tested;
      const cpu::RowKernel* avx2 = cpu::avx2_kernel(type);
      const cpu::ActFormat act = impl.parts(type).act.value_or(avx2->act);
      const int64_t block = dtype_info(type).block_elems;
      for (int64_t cols : {block * 37, block})
        for (int64_t rows : {int64_t(16), int64_t(31), int64_t(45)}) {
          std::vector<uint8_t> fills[3];
          const test::WeightFill kinds[3] = {test::WeightFill::Random, test::WeightFill::Ones, test::WeightFill::High};
          for (int f = 0; f < 3; ++f) fills[f] = test::raw_weight_rows(type, rows, cols, kinds[f], rng);
          const int64_t w_row_bytes = csq::row_bytes(type, cols);
          std::vector<uint8_t> w(size_t(rows * w_row_bytes));
          for (int64_t r = 0; r < rows; ++r)
            std::memcpy(w.data() + r * w_row_bytes, fills[r % 3].data() + r * w_row_bytes, size_t(w_row_bytes));
          const int64_t x_stride = cpu::act_row_bytes(act, cols);
          std::vector<uint8_t> xq(size_t(128 * x_stride));
          std::vector<float> x(static_cast<size_t>(cols));
          for (int64_t t = 0; t < 128; ++t) {
            for (float& v : x) v = t % 3 == 0 ? normal(rng) : t % 3 == 1 ? 1.f : -1.f;
            cpu::quantize_act(act, x.data(), xq.data() + t * x_stride, cols);
            if (t % 4 == 3) {  // every level -128, which quantize_q8_k never makes: the kernels' bounds allow it
              for (int64_t b = 0; b < cols / quants::QK_K; ++b) {
                quants::BlockQ8_K& blk = reinterpret_cast<quants::BlockQ8_K*>(xq.data() + t * x_stride)[b];
                std::memset(blk.qs, 0x80, sizeof(blk.qs));
                std::fill(std::begin(blk.bsums), std::end(blk.bsums), int16_t(-16 * 128));
              }
              if (act == cpu::ActFormat::Q8KLanes) cpu::add_lane_sides(xq.data() + t * x_stride, cols);
            }
          }
          std::vector<float> want(size_t(128 * rows));
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t t = 0; t < 128; ++t)
              avx2->dot(w.data() + r * w_row_bytes, xq.data() + t * x_stride, x_stride, 1, cols, &want[size_t(t * rows + r)]);
          for (int64_t tokens : token_counts) {
            if (cols == block && tokens != 3 && tokens != 128) continue;  // a single block needs few token counts
            SCOPED_TRACE(std::string(impl.name) + " " + dtype_info(type).name + " " + std::to_string(rows) + "x" +
                         std::to_string(cols) + " tokens=" + std::to_string(tokens));
            const std::vector<float> got = in_row_blocks(rows_fn, w.data(), w_row_bytes, rows, xq.data(), x_stride, tokens, cols);
            for (int64_t t = 0; t < tokens; ++t)
              for (int64_t r = 0; r < rows; ++r)
                ASSERT_EQ(0, std::memcmp(&want[size_t(t * rows + r)], &got[size_t(t * rows + r)], sizeof(float)))
                    << "row " << r << " token " << t << ": " << want[size_t(t * rows + r)] << " vs " << got[size_t(t * rows + r)];
          }
        }
    }
  EXPECT_GT(tested, 0) << "no k-quant type has a rows-in-lanes kernel";
}

TEST(Avx512Kernels, FloatRowKernelsMatchTheAvx2OnesBitForBit) {
  const auto implementations = avx512_implementations();
  if (implementations.empty()) GTEST_SKIP() << "no AVX-512 kernels to run here (no AVX2, or no SIMDe in this build)";
  for (const Avx512Implementation& impl : implementations)
    for (DType type : {DType::F32, DType::F16, DType::BF16})
      for (int64_t cols : {1, 7, 16, 45, 130, 2560})
        for (int tokens = 1; tokens <= cpu::kMaxTokens; ++tokens) {
          const Case c{type, 3, cols, tokens};
          SCOPED_TRACE(std::string(impl.name) + " " + name(c));
          const cpu::DotFn dot = impl.parts(type).dot;
          ASSERT_NE(dot, nullptr);
          Problem p = make_problem(c, uint32_t(cols * 5 + tokens));
          const int64_t x_stride = cols * int64_t(sizeof(float));
          for (int64_t r = 0; r < c.rows; ++r) {
            float got[cpu::kMaxTokens], want[cpu::kMaxTokens];
            dot(p.w.row(r), p.x.data(), x_stride, tokens, cols, got);
            cpu::avx2_kernel(type)->dot(p.w.row(r), p.x.data(), x_stride, tokens, cols, want);
            EXPECT_EQ(0, std::memcmp(got, want, size_t(tokens) * sizeof(float))) << "row " << r;
          }
        }
}

// The AVX-512 float tiles (blocks of up to 32 rows for prompts, eight rows for decode batches;
// register blocks of 4 rows x 6 tokens, 16 lanes) against the AVX2 row kernel, bit for bit: a full
// block, quads with 1-3 rows left over and fewer rows than a quad, token groups with 1..5 left
// over and more tokens than one panel (128), column tails, more columns than one 1024-column chunk.
TEST(Avx512Kernels, FloatTileMatchesTheAvx2RowKernelBitForBit) {
  const auto implementations = avx512_implementations();
  if (implementations.empty()) GTEST_SKIP() << "no AVX-512 kernels to run here (no AVX2, or no SIMDe in this build)";
  for (const Avx512Implementation& impl : implementations)
    for (DType type : {DType::F32, DType::F16, DType::BF16})
      for (int64_t cols : {7, 45, 2600})
        for (int64_t rows : {cpu::kRowsFnBlock, int64_t(13), int64_t(3)})
          for (int64_t tokens : {cpu::kFloatTileMinTokens, int64_t(13), int64_t(17), int64_t(131)}) {
            if (tokens == 131 && cols != 45) continue;  // the token panels need no long rows
            const Case c{type, rows, cols, tokens};
            SCOPED_TRACE(std::string(impl.name) + " " + name(c));
            const cpu::RowsFn tile = impl.parts(type).rows;
            ASSERT_NE(tile, nullptr);
            ASSERT_NE(impl.parts(type).rows8, nullptr);
            Problem p = make_problem(c, uint32_t(cols * 7 + tokens + rows));
            const int64_t x_stride = cols * int64_t(sizeof(float));
            std::vector<float> got(size_t(tokens * rows));
            tile(p.w.data, p.w.row_bytes(), rows, p.x.data(), x_stride, tokens, cols, got.data(), rows);
            // The eight-row tile of decode batches (below kFloatBlockTileMinTokens) on the first 8 rows.
            std::vector<float> eight(size_t(tokens * 8));
            if (rows >= 8) impl.parts(type).rows8(p.w.data, p.w.row_bytes(), p.x.data(), x_stride, tokens, cols, eight.data(), 8);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t t = 0; t < tokens; ++t) {
                float one = 0;
                cpu::avx2_kernel(type)->dot(p.w.row(r), p.x.data() + t * cols, x_stride, 1, cols, &one);
                ASSERT_EQ(0, std::memcmp(&one, &got[size_t(t * rows + r)], sizeof(float))) << "row " << r << " token " << t;
                if (r < 8 && rows >= 8) {
                  ASSERT_EQ(0, std::memcmp(&one, &eight[size_t(t * 8 + r)], sizeof(float))) << "eight-row tile, row " << r << " token " << t;
                }
              }
          }
}

// BF16 weights on the bf16 dot product (AVX512-BF16 CPUs only): each activation is split into two
// bf16 parts whose sum is within 2^-16 of it (relative), so a result lies within
// 2^-16 * sum |w_i x_i| of the float product, plus float accumulation; the eight-row kernel and the
// row kernel agree bit for bit (FastMatmul.EightRowKernelsMatchTheRowKernelBitForBit).
TEST(Bf16DotProduct, WithinTheStatedBoundOfTheFloatProduct) {
  if (!cpu::cpu_has_avx512_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  const cpu::RowKernel* kernel = cpu::avx512_bf16_kernel();
  ASSERT_EQ(kernel->act, cpu::ActFormat::BF16);
  for (int64_t cols : {1, 31, 32, 33, 64, 97, 2560, 2605})
    for (int64_t tokens : {1, 2, 5, 7, 13}) {
      const Case c{DType::BF16, 11, cols, tokens};
      SCOPED_TRACE(name(c));
      Problem p = make_problem(c, uint32_t(cols * 3 + tokens));
      const int64_t x_stride = cpu::act_row_bytes(kernel->act, cols);
      std::vector<uint8_t> xq(size_t(tokens * x_stride));
      for (int64_t t = 0; t < tokens; ++t) cpu::quantize_act(kernel->act, p.x.data() + t * cols, xq.data() + t * x_stride, cols);
      std::vector<float> got(size_t(tokens * c.rows));
      kernel->rows8(p.w.data, p.w.row_bytes(), xq.data(), x_stride, tokens, cols, got.data(), c.rows);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t r = 8; r < c.rows; ++r) kernel->dot(p.w.row(r), xq.data() + t * x_stride, x_stride, 1, cols, &got[size_t(t * c.rows + r)]);
      std::vector<float> wrow(static_cast<size_t>(cols));
      for (int64_t r = 0; r < c.rows; ++r) {
        dequantize_row(c.type, p.w.row(r), wrow.data(), cols);
        for (int64_t t = 0; t < tokens; ++t) {
          double exact = 0, magnitude = 0;
          for (int64_t i = 0; i < cols; ++i) {
            exact += double(wrow[size_t(i)]) * double(p.x[size_t(t * cols + i)]);
            magnitude += std::fabs(double(wrow[size_t(i)]) * double(p.x[size_t(t * cols + i)]));
          }
          ASSERT_NEAR(got[size_t(t * c.rows + r)], exact, (std::ldexp(1.0, -16) + 2e-6) * magnitude + 1e-30)
              << "row " << r << " token " << t;
        }
      }
    }
}

TEST(Bf16DotProduct, ActivationsSplitIntoTwoBf16Parts) {
  if (!cpu::cpu_has_avx512_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 10.f);
  const size_t n = 37;  // two full vectors and a masked tail
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  // Exact ties between two bf16 values: 1 + 2^-8 rounds down to 1 (even), 1 + 3 * 2^-8 up, the
  // rest going to the lo part.
  x[0] = 1.f + std::ldexp(1.f, -8), x[1] = 1.f + 3 * std::ldexp(1.f, -8), x[36] = -0.f;
  ASSERT_EQ(cpu::act_row_bytes(cpu::ActFormat::BF16, int64_t(n)), int64_t(4 * n));
  std::vector<uint16_t> got(2 * n + 1, 0xABCD);
  cpu::quantize_act(cpu::ActFormat::BF16, x.data(), got.data(), int64_t(n));
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(got[i], f32_to_bf16(x[i])) << "element " << i;
    EXPECT_EQ(got[n + i], f32_to_bf16(x[i] - bf16_to_f32(got[i]))) << "element " << i;
    EXPECT_LE(std::fabs(bf16_to_f32(got[i]) + bf16_to_f32(got[n + i]) - x[i]), std::ldexp(std::fabs(x[i]), -16));
  }
  EXPECT_EQ(got[2 * n], 0xABCD) << "wrote past the row";
  EXPECT_EQ(got[0], 0x3F80);
  EXPECT_EQ(got[n], 0x3B80);  // 2^-8
  EXPECT_EQ(got[1], 0x3F82);
  EXPECT_EQ(got[n + 1], 0xBB80);  // -2^-8
}

// Activations are encoded as ggml-cpu encodes them, level for level: any other rounding makes
// the 8-bit products drift away from llama.cpp's.
TEST(ActivationQuantization, MatchesGgml) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::vector<float> x(512);
  for (float& v : x) v = normal(rng);
  x[5] = 0;
  x[32] = 127.f, x[33] = 2.5f, x[34] = -3.5f;  // block 1 scales by exactly 1: ties go to even
  std::fill(x.begin() + 256, x.begin() + 288, 0.f);  // an all-zero block

  // Q8x32: levels round(x * (127 / max|x|)) with ties to even, scale max|x| / 127 through fp16,
  // and the levels' sum.
  std::vector<cpu::BlockQ8x32> q(512 / 32);
  cpu::quantize_act(cpu::ActFormat::Q8x32, x.data(), q.data(), 512);
  for (int b = 0; b < 512 / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(b * 32 + i)]));
    EXPECT_EQ(q[size_t(b)].d, f16_to_f32(f32_to_f16(amax / 127.f)));
    const float id = amax != 0 ? 127.f / amax : 0.f;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(q[size_t(b)].qs[i], int8_t(std::nearbyint(x[size_t(b * 32 + i)] * id)));
      sum += q[size_t(b)].qs[i];
    }
    EXPECT_EQ(q[size_t(b)].bias_correction, -128 * sum);
  }

  // Q8K: the bytes of ggml's quantize_row_q8_K (quants::quantize_q8_k).
  std::vector<quants::BlockQ8_K> k(2), expected(2);
  cpu::quantize_act(cpu::ActFormat::Q8K, x.data(), k.data(), 512);
  quants::quantize_q8_k(x.data(), expected.data(), 512);
  EXPECT_EQ(0, std::memcmp(k.data(), expected.data(), sizeof(quants::BlockQ8_K) * 2));

  // Q8KLanes: the same blocks, then per block the sums the AVX-512 rows in lanes start from.
  ASSERT_EQ(cpu::act_row_bytes(cpu::ActFormat::Q8KLanes, 512), int64_t(2 * (sizeof(quants::BlockQ8_K) + sizeof(cpu::LaneSides))));
  std::vector<uint8_t> lanes(size_t(cpu::act_row_bytes(cpu::ActFormat::Q8KLanes, 512)));
  cpu::quantize_act(cpu::ActFormat::Q8KLanes, x.data(), lanes.data(), 512);
  EXPECT_EQ(0, std::memcmp(lanes.data(), expected.data(), sizeof(quants::BlockQ8_K) * 2));
  const cpu::LaneSides* sides = cpu::lane_sides(lanes.data(), 2);
  std::vector<uint8_t> portable = lanes;  // the sides again, from the portable code (quantize_act took AVX2 where it could)
  std::memset(portable.data() + 2 * sizeof(quants::BlockQ8_K), 0, 2 * sizeof(cpu::LaneSides));
  cpu::add_lane_sides(portable.data(), 512);
  EXPECT_EQ(portable, lanes);
  for (int b = 0; b < 2; ++b) {
    const int8_t* qs = expected[size_t(b)].qs;
    for (int g = 0; g < 16; ++g)
      for (int e = 0; e < 2; ++e) {
        const int8_t* first = qs + 16 * g + 4 * e;  // columns 4 e .. 4 e + 3 and 8 + 4 e .. 8 + 4 e + 3 of sub-block g
        EXPECT_EQ(sides[b].q6_starts[g][e], -32 * (std::accumulate(first, first + 4, 0) + std::accumulate(first + 8, first + 12, 0)) - 1)
            << "block " << b << " sub-block " << g << " half " << e;
      }
  }
}

// The vector Q8_K encoder writes the reference's bytes for the inputs where they could part:
// magnitude ties between signs (the first decides the scale's sign), levels exactly half-way
// (ties to even), blocks of zeros, a lone value, subnormal and huge magnitudes.
TEST(ActivationQuantization, VectorQ8KIsTheReferenceByteForByte) {
  if (!cpu::cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2";
  constexpr int kBlocks = 40;
  std::mt19937 rng(11);
  std::vector<float> x(size_t(kBlocks) * quants::QK_K);
  for (int b = 0; b < kBlocks; ++b) {
    float* block = x.data() + size_t(b) * quants::QK_K;
    std::normal_distribution<float> normal(0.f, std::ldexp(1.f, b % 20 - 10));
    for (int j = 0; j < quants::QK_K; ++j) block[j] = normal(rng);
    switch (b % 8) {
      case 0: block[17] = -100.f, block[200] = 100.f; break;  // the negative comes first
      case 1: block[3] = 100.f, block[255] = -100.f; break;   // the positive comes first
      case 2:  // max 127: levels are the values themselves, half-way ones tie to even
        for (int j = 0; j < quants::QK_K; ++j) block[j] = float(j % 64) * 0.5f - 16.f;
        block[0] = 127.f;
        break;
      case 3: std::fill(block, block + quants::QK_K, 0.f); break;
      case 4: std::fill(block, block + quants::QK_K, 0.f), block[99] = -1e-3f; break;
      case 5: for (int j = 0; j < quants::QK_K; ++j) block[j] *= 1e-40f; break;  // subnormal
      case 6: for (int j = 0; j < quants::QK_K; ++j) block[j] *= 1e30f; break;
      default: break;
    }
  }
  std::vector<quants::BlockQ8_K> got(kBlocks), expected(kBlocks);
  cpu::quantize_q8_k_avx2(x.data(), got.data(), int64_t(x.size()));
  quants::quantize_q8_k(x.data(), expected.data(), int64_t(x.size()));
  for (int b = 0; b < kBlocks; ++b)
    EXPECT_EQ(0, std::memcmp(&got[size_t(b)], &expected[size_t(b)], sizeof(quants::BlockQ8_K))) << "block " << b;
  // The first extreme becomes level -127: d = -extreme / 127.
  EXPECT_EQ(got[0].qs[17], -127);
  EXPECT_GT(got[0].d, 0.f);
  EXPECT_EQ(got[1].qs[3], -127);
  EXPECT_LT(got[1].d, 0.f);
}

}  // namespace
}  // namespace csq::kernels
