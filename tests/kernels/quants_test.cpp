#include "kernels/quants.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/gguf.h"
#include "kernels/dtype.h"
#include "kernels/quantize.h"
#include "test_paths.h"

namespace csq::quants {
namespace {

template <typename Block>
std::vector<float> decode(const Block& b, void (*dequantize)(const Block*, float*, int64_t), int n) {
  std::vector<float> out(static_cast<size_t>(n));
  dequantize(&b, out.data(), n);
  return out;
}

template <typename Block>
Block zeroed() {
  Block b;
  std::memset(&b, 0, sizeof(b));
  return b;
}

// ---- Hand-built blocks; expected values worked out by hand from the layouts in quants.h ----

TEST(QuantDecode, Q4_0NegativeScale) {
  auto b = zeroed<BlockQ4_0>();
  b.d = 0xb800;  // -0.5
  std::memset(b.qs, 0x88, sizeof(b.qs));  // level 8 on both halves decodes to 0
  b.qs[0] = 0x0F;   // element 0: 15-8=7, element 16: 0-8=-8
  b.qs[15] = 0x39;  // element 15: 9-8=1, element 31: 3-8=-5
  const auto y = decode(b, dequantize_q4_0, 32);
  std::vector<float> expected(32, 0.0f);
  expected[0] = -3.5f;
  expected[16] = 4.0f;
  expected[15] = -0.5f;
  expected[31] = 2.5f;
  EXPECT_EQ(y, expected);
}

TEST(QuantDecode, Q4_1ScaleAndMin) {
  auto b = zeroed<BlockQ4_1>();
  b.d = 0x3800;  // 0.5
  b.m = 0xbc00;  // -1
  b.qs[0] = 0xF0;  // element 0: 0 -> -1, element 16: 15 -> 6.5
  b.qs[3] = 0x21;  // element 3: 1 -> -0.5, element 19: 2 -> 0
  const auto y = decode(b, dequantize_q4_1, 32);
  std::vector<float> expected(32, -1.0f);
  expected[16] = 6.5f;
  expected[3] = -0.5f;
  expected[19] = 0.0f;
  EXPECT_EQ(y, expected);
}

TEST(QuantDecode, Q5_0HighBits) {
  auto b = zeroed<BlockQ5_0>();
  b.d = 0x3c00;  // 1
  // Fifth bits for elements 0, 17 and 31 (bit j of the little-endian qh word).
  b.qh[0] = 0x01;
  b.qh[2] = 0x02;
  b.qh[3] = 0x80;
  b.qs[0] = 0x3F;   // element 0: 15|16 -> 15; element 16: 3 -> -13
  b.qs[1] = 0x00;   // element 1: -16; element 17: 0|16 -> 0
  b.qs[15] = 0xA5;  // element 15: 5 -> -11; element 31: 10|16 -> 10
  const auto y = decode(b, dequantize_q5_0, 32);
  std::vector<float> expected(32, -16.0f);
  expected[0] = 15;
  expected[16] = -13;
  expected[17] = 0;
  expected[15] = -11;
  expected[31] = 10;
  EXPECT_EQ(y, expected);
}

TEST(QuantDecode, Q5_1SubnormalScale) {
  auto b = zeroed<BlockQ5_1>();
  b.d = 0x0200;  // subnormal: 512 * 2^-24 = 2^-15
  b.m = 0x3c00;  // 1
  std::memset(b.qh, 0xFF, 4);
  b.qh[0] = 0xFE;  // element 0 without its fifth bit
  std::memset(b.qs, 0x10, sizeof(b.qs));  // low elements 0 (+16), high elements 1 (+16)
  b.qs[0] = 0x0F;                          // element 0: 15; element 16: 0|16
  const auto y = decode(b, dequantize_q5_1, 32);
  for (int j = 1; j < 16; ++j) EXPECT_EQ(y[j], 1.0f + 16 * 0x1p-15f) << j;
  for (int j = 17; j < 32; ++j) EXPECT_EQ(y[j], 1.0f + 17 * 0x1p-15f) << j;
  EXPECT_EQ(y[0], 1.0f + 15 * 0x1p-15f);
  EXPECT_EQ(y[16], 1.0f + 16 * 0x1p-15f);
}

TEST(QuantDecode, Q8_0SubnormalScale) {
  auto b = zeroed<BlockQ8_0>();
  b.d = 0x0001;  // smallest subnormal, 2^-24
  for (int j = 0; j < 32; ++j) b.qs[j] = int8_t(j * 8 - 128);
  const auto y = decode(b, dequantize_q8_0, 32);
  EXPECT_EQ(y[0], -0x1p-17f);  // -128 * 2^-24
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[31], 120 * 0x1p-24f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], std::ldexp(float(j * 8 - 128), -24)) << j;
}

TEST(QuantDecode, Q2_KScaleAndMinNibbles) {
  auto b = zeroed<BlockQ2_K>();
  b.d = 0x3c00;     // 1
  b.dmin = 0x3800;  // 0.5
  b.scales[0] = 0x21;  // scale 1, min 2*0.5
  b.scales[1] = 0x03;  // scale 3, min 0
  b.scales[2] = 0x11;  // scale 1, min 0.5
  b.scales[4] = 0x01;  // scale 1, min 0
  b.scales[6] = 0x10;  // scale 0, min 0.5
  b.scales[8] = 0xF4;  // scale 4, min 7.5 (first sub-block of the second half)
  // qs[0] holds elements 0, 32, 64, 96 in bit pairs 0..3.
  b.qs[0] = 0xE7;   // 3, 1, 2, 3
  b.qs[16] = 0x02;  // element 16: 2
  b.qs[32] = 0x01;  // element 128: 1
  const auto y = decode(b, dequantize_q2_k, 256);
  EXPECT_EQ(y[0], 2.0f);    // 1*3 - 1
  EXPECT_EQ(y[1], -1.0f);   // 1*0 - 1
  EXPECT_EQ(y[16], 6.0f);   // 3*2 - 0
  EXPECT_EQ(y[32], 0.5f);   // 1*1 - 0.5
  EXPECT_EQ(y[64], 2.0f);   // 1*2 - 0
  EXPECT_EQ(y[96], -0.5f);  // 0*3 - 0.5
  EXPECT_EQ(y[128], -3.5f); // 4*1 - 7.5
  EXPECT_EQ(y[129], -7.5f);
  EXPECT_EQ(y[200], 0.0f);
}

TEST(QuantDecode, Q3_KScalePackingAndHmask) {
  auto b = zeroed<BlockQ3_K>();
  b.d = 0xb400;  // -0.25
  // 6-bit scales biased by 32: sub-block 0 -> 31, 5 -> -32, 10 -> 1, 15 -> -2, the rest 0
  // (biased 32 = low nibble 0, high bits 2). Low nibbles in bytes 0-7, high pairs in 8-11.
  b.scales[0] = 0x0F;   // sub 0 low F, sub 8 low 0
  b.scales[2] = 0x10;   // sub 2 low 0, sub 10 low 1
  b.scales[7] = 0xE0;   // sub 7 low 0, sub 15 low E
  b.scales[8] = 0xAB;   // subs 0,4,8,12: high 3,2,2,2
  b.scales[9] = 0xA2;   // subs 1,5,9,13: high 2,0,2,2
  b.scales[10] = 0xAA;  // subs 2,6,10,14: high 2
  b.scales[11] = 0x6A;  // subs 3,7,11,15: high 2,2,2,1
  b.qs[0] = 0x03;       // element 0: low bits 3
  b.hmask[0] = 0x01;    // element 0: high bit set (no -4)
  b.qs[16] = 0x20;      // element 80 (half 0, bit pair 2): 2
  b.hmask[16] = 0x04;   // element 80: bit 2
  b.qs[32] = 0x04;      // element 160 (half 1, bit pair 1): 1, hmask bit 5 clear -> -3
  b.qs[63] = 0xC0;      // element 255 (half 1, bit pair 3): 3
  b.hmask[31] = 0x80;   // element 255: bit 7
  const auto y = decode(b, dequantize_q3_k, 256);
  EXPECT_EQ(y[0], -23.25f);  // -0.25*31 * 3
  EXPECT_EQ(y[1], 31.0f);    // -7.75 * -4
  EXPECT_EQ(y[80], 16.0f);   // 8 * 2
  EXPECT_EQ(y[81], -32.0f);  // 8 * -4
  EXPECT_EQ(y[160], 0.75f);  // -0.25 * -3
  EXPECT_EQ(y[161], 1.0f);   // -0.25 * -4
  EXPECT_EQ(y[240], -2.0f);  // 0.5 * -4
  EXPECT_EQ(y[255], 1.5f);   // 0.5 * 3
  EXPECT_EQ(y[20], 0.0f);    // scale 0
  EXPECT_EQ(scale_q3_k(0, b.scales), 31);
  EXPECT_EQ(scale_q3_k(5, b.scales), -32);
  EXPECT_EQ(scale_q3_k(10, b.scales), 1);
  EXPECT_EQ(scale_q3_k(15, b.scales), -2);
  EXPECT_EQ(scale_q3_k(7, b.scales), 0);
}

// Scales/mins (6 bits each) of sub-blocks 0, 1, 4, 7 shared by the Q4_K and Q5_K cases:
// 0: 63/1, 1: 2/0, 4: 37 (0x25) / 58 (0x3A), 7: 16 (0x10) / 1, the rest 0/0.
void set_k4_scales(uint8_t* q) {
  q[0] = 0xBF;   // scale 0 = 63, top bits of scale 4 = 2
  q[4] = 0xC1;   // min 0 = 1, top bits of min 4 = 3
  q[1] = 0x02;   // scale 1 = 2
  q[3] = 0x40;   // scale 3 = 0, top bits of scale 7 = 1
  q[8] = 0xA5;   // sub-block 4: scale low 5, min low A
  q[11] = 0x10;  // sub-block 7: scale low 0, min low 1
}

TEST(QuantDecode, Q4_KScalePacking) {
  auto b = zeroed<BlockQ4_K>();
  b.d = 0x3c00;     // 1
  b.dmin = 0x3800;  // 0.5
  set_k4_scales(b.scales);
  uint8_t sc, m;
  scale_min_k4(4, b.scales, sc, m);
  EXPECT_EQ(sc, 37);
  EXPECT_EQ(m, 58);
  scale_min_k4(7, b.scales, sc, m);
  EXPECT_EQ(sc, 16);
  EXPECT_EQ(m, 1);
  scale_min_k4(3, b.scales, sc, m);
  EXPECT_EQ(sc, 0);
  EXPECT_EQ(m, 0);
  b.qs[0] = 0x3F;    // element 0: 15 (sub 0), element 32: 3 (sub 1)
  b.qs[64] = 0x07;   // element 128: 7 (sub 4), element 160: 0 (sub 5)
  b.qs[127] = 0xC0;  // element 223: 0 (sub 6), element 255: 12 (sub 7)
  const auto y = decode(b, dequantize_q4_k, 256);
  EXPECT_EQ(y[0], 944.5f);   // 63*15 - 0.5*1
  EXPECT_EQ(y[1], -0.5f);
  EXPECT_EQ(y[32], 6.0f);    // 2*3
  EXPECT_EQ(y[128], 230.0f); // 37*7 - 0.5*58
  EXPECT_EQ(y[129], -29.0f);
  EXPECT_EQ(y[160], 0.0f);
  EXPECT_EQ(y[223], 0.0f);
  EXPECT_EQ(y[255], 191.5f); // 16*12 - 0.5
}

TEST(QuantDecode, Q5_KHighBitsSubnormalScale) {
  auto b = zeroed<BlockQ5_K>();
  b.d = 0x0100;     // subnormal: 2^-16
  b.dmin = 0x3c00;  // 1
  set_k4_scales(b.scales);
  b.qh[0] = 0x83;   // element 0 of sub-blocks 0, 1 and 7 gets +16
  b.qh[31] = 0x10;  // element 31 of sub-block 4 gets +16
  b.qs[0] = 0x3F;   // sub 0: 15, sub 1: 3
  b.qs[96] = 0x50;  // sub 7, element 0: 5
  b.qs[95] = 0x09;  // sub 4, element 31: 9
  const auto y = decode(b, dequantize_q5_k, 256);
  EXPECT_EQ(y[0], 1953 * 0x1p-16f - 1.0f);           // 63*2^-16 * 31 - 1
  EXPECT_EQ(y[1], -1.0f);
  EXPECT_EQ(y[32], 38 * 0x1p-16f);                     // 2*2^-16 * 19
  EXPECT_EQ(y[224], 336 * 0x1p-16f - 1.0f);            // 16*2^-16 * 21 - 1
  EXPECT_EQ(y[159], 925 * 0x1p-16f - 58.0f);           // 37*2^-16 * 25 - 58
  EXPECT_EQ(y[128], -58.0f);
}

TEST(QuantDecode, Q6_KSignedScalesAndHighBits) {
  auto b = zeroed<BlockQ6_K>();
  b.d = 0xc000;  // -2
  b.scales[0] = -3;
  b.scales[5] = 127;
  b.scales[15] = -128;
  b.ql[0] = 0x0F;     // element 0: low 15
  b.qh[0] = 0x03;     // element 0: high 3 -> 63 - 32 = 31
  b.ql[16] = 0x50;    // element 80 (high nibble of ql[16]): 5
  b.qh[16] = 0x20;    // element 80 (bit pair 2 of qh[16]): 2 -> 37 - 32 = 5
  b.ql[127] = 0xA0;   // element 255 (high nibble of ql[64+63]): 10
  b.qh[63] = 0x40;    // element 255 (bit pair 3 of qh[32+31]): 1 -> 26 - 32 = -6
  const auto y = decode(b, dequantize_q6_k, 256);
  EXPECT_EQ(y[0], 186.0f);     // -2*-3 * 31
  EXPECT_EQ(y[1], -192.0f);    // 6 * -32
  EXPECT_EQ(y[80], -1270.0f);  // -2*127 * 5
  EXPECT_EQ(y[81], 8128.0f);   // -254 * -32
  EXPECT_EQ(y[255], -1536.0f); // 256 * -6
  EXPECT_EQ(y[240], -8192.0f); // 256 * -32
  EXPECT_EQ(y[100], 0.0f);     // scale 0
}

TEST(QuantDecode, DispatchMatchesDirectCall) {
  auto b = zeroed<BlockQ6_K>();
  b.d = 0x3c00;
  for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(j - 8);
  for (int j = 0; j < 128; ++j) b.ql[j] = uint8_t(j * 37);
  for (int j = 0; j < 64; ++j) b.qh[j] = uint8_t(j * 11);
  std::vector<float> direct(256), dispatched(256);
  dequantize_q6_k(&b, direct.data(), 256);
  dequantize_row(DType::Q6_K, &b, dispatched.data(), 256);
  EXPECT_EQ(direct, dispatched);
}

// ---- Encoders ----

struct Format {
  DType type;
  double max_rel_rms;  // bound on RMS(error)/RMS(data) for Gaussian data
};

// Measured on this data (N(0,1) with 1% of values x8, five seeds) plus ~20% headroom: each is
// the error the format's step size implies, so a broken scale search or packing fails it.
const Format kFormats[] = {
    {DType::Q4_0, 0.165}, {DType::Q4_1, 0.115}, {DType::Q5_0, 0.08},   {DType::Q5_1, 0.056},
    {DType::Q8_0, 0.0105}, {DType::Q2_K, 0.42}, {DType::Q3_K, 0.235},  {DType::Q4_K, 0.107},
    {DType::Q5_K, 0.054}, {DType::Q6_K, 0.031}, {DType::F16, 0.00025}, {DType::BF16, 0.002},
};

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng) * (u(rng) < 0.01f ? 8.0f : 1.0f);
  return x;
}

double rel_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    ref += double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

std::vector<uint8_t> encode(DType type, const std::vector<float>& x) {
  std::vector<uint8_t> bytes(size_t(row_bytes(type, int64_t(x.size()))));
  quantize_row(type, x.data(), bytes.data(), int64_t(x.size()));
  return bytes;
}

std::vector<float> decode_row(DType type, const std::vector<uint8_t>& bytes, size_t n) {
  std::vector<float> y(n);
  dequantize_row(type, bytes.data(), y.data(), int64_t(n));
  return y;
}

TEST(QuantEncode, RoundTripErrorWithinFormatBound) {
  const auto x = gaussian(256 * 64, 1);
  for (const Format& f : kFormats) {
    const double e = rel_rms_error(x, decode_row(f.type, encode(f.type, x), x.size()));
    EXPECT_LT(e, f.max_rel_rms) << dtype_info(f.type).name;
  }
}

TEST(QuantEncode, ScaledInputsKeepRelativeError) {
  // Tiny and huge magnitudes exercise fp16 scale rounding (subnormal d) and large d.
  for (float scale : {1e-3f, 300.0f}) {
    auto x = gaussian(256 * 16, 2);
    for (float& v : x) v *= scale;
    for (const Format& f : kFormats) {
      const double e = rel_rms_error(x, decode_row(f.type, encode(f.type, x), x.size()));
      EXPECT_LT(e, f.max_rel_rms * 1.1) << dtype_info(f.type).name << " scale " << scale;
    }
  }
}

TEST(QuantEncode, ZeroAndConstantBlocks) {
  for (const Format& f : kFormats) {
    const std::vector<float> zeros(512, 0.0f);
    for (float v : decode_row(f.type, encode(f.type, zeros), zeros.size()))
      ASSERT_EQ(v, 0.0f) << dtype_info(f.type).name;
    // A constant block has no spread to fit; it must still decode close to the constant.
    const std::vector<float> ones(512, 0.75f);
    for (float v : decode_row(f.type, encode(f.type, ones), ones.size()))
      ASSERT_NEAR(v, 0.75f, 0.75f * 0.01) << dtype_info(f.type).name;
  }
}

// Re-encoding decoded data reproduces the bytes where ggml's algorithm guarantees it: for
// Q8_0, Q4_0 and Q5_0 the block's extreme decodes to exactly the largest level times the fp16
// scale, so the re-derived scale is that fp16 value and every level rounds back to itself.
TEST(QuantEncode, ReencodingDecodedBlocksIsStable) {
  const auto x = gaussian(256 * 64, 3);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
    const auto bytes = encode(type, x);
    EXPECT_EQ(encode(type, decode_row(type, bytes, x.size())), bytes) << dtype_info(type).name;
  }
}

TEST(QuantEncode, Q8_KBlockSums) {
  const auto x = gaussian(512, 4);
  BlockQ8_K b[2];
  quantize_row(DType::Q8_K, x.data(), b, 512);
  std::vector<float> y(512);
  dequantize_q8_k(b, y.data(), 512);
  EXPECT_LT(rel_rms_error(x, y), 0.023);  // 256-element blocks: coarser than Q8_0
  for (const BlockQ8_K& blk : b) {
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += blk.qs[16 * g + j];
      EXPECT_EQ(blk.bsums[g], sum);
    }
  }
  // The largest magnitude maps to -127 (the sign of d flips it), never to -128.
  int extreme = 0;
  for (int j = 0; j < 256; ++j) extreme = std::max(extreme, std::abs(int(b[0].qs[j])));
  EXPECT_EQ(extreme, 127);
}

TEST(QuantEncode, Q4_0HandComputedBlock) {
  // Largest magnitude -4 maps to level 0, so d = -4/-8 = 0.5 and x/d + 8.5 truncates.
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;  // level 0
  x[1] = 3.5f;   // 7 + 8.5 = 15.5 -> 15
  x[2] = 0.26f;  // 0.52 + 8.5 -> 9
  x[16] = 0.24f; // 0.48 + 8.5 -> 8
  x[17] = -0.25f; // -0.5 + 8.5 = 8 -> 8: halves round up
  BlockQ4_0 b;
  quantize_q4_0(x.data(), &b, 32);
  EXPECT_EQ(b.d, 0x3800);  // 0.5
  EXPECT_EQ(b.qs[0], 0x80);
  EXPECT_EQ(b.qs[1], 0x8F);
  EXPECT_EQ(b.qs[2], 0x89);
  EXPECT_EQ(b.qs[3], 0x88);
}

TEST(QuantEncode, UnsupportedTypeFails) {
  float x[32] = {};
  uint8_t out[64];
  EXPECT_FALSE(can_quantize(DType::Q8_1));
  EXPECT_THROW(quantize_row(DType::Q8_1, x, out, 32), Error);
}

// ---- Real data: llama.cpp's own quantizations of the same F16 weights ----

// Every quantized tensor must decode close to the F16 weights, and re-encoding the F16 weights
// (widened to f32, as llama-quantize does) must give llama.cpp's bytes exactly.
void check_against_llama_cpp(const std::string& file) {
  const io::GgufFile f16(test::fixture("gguf/qwen3-tiny-gqa-F16.gguf"));
  const io::GgufFile q(test::fixture("gguf/" + file));
  std::map<std::string, int> matched;
  int quantized = 0;
  for (const io::GgufTensorInfo& t : q.tensors()) {
    const io::GgufTensorInfo* src = f16.find_tensor(t.name);
    ASSERT_NE(src, nullptr) << t.name;
    ASSERT_EQ(src->n_elements, t.n_elements) << t.name;
    std::vector<float> x(size_t(src->n_elements));
    dequantize_row(src->type, src->data, x.data(), src->n_elements);
    if (t.type == src->type) {  // tensors llama-quantize leaves alone (norms)
      EXPECT_EQ(std::memcmp(t.data, src->data, size_t(t.n_bytes)), 0) << t.name;
      continue;
    }
    ++quantized;
    const char* name = dtype_info(t.type).name;
    std::vector<float> y(x.size());
    dequantize_row(t.type, t.data, y.data(), t.n_elements);
    double bound = 0;
    for (const Format& fmt : kFormats)
      if (fmt.type == t.type) bound = fmt.max_rel_rms;
    ASSERT_GT(bound, 0) << t.name << " has unexpected type " << name;
    EXPECT_LT(rel_rms_error(x, y), bound) << t.name << " " << name;

    std::vector<uint8_t> ours(size_t(t.n_bytes));
    quantize_row(t.type, x.data(), ours.data(), t.n_elements);
    const int64_t block_bytes = dtype_info(t.type).block_bytes;
    int64_t differing = 0;
    for (int64_t off = 0; off < t.n_bytes; off += block_bytes)
      differing += std::memcmp(ours.data() + off, t.data + off, size_t(block_bytes)) != 0;
    EXPECT_EQ(differing, 0) << t.name << " (" << name << "): " << differing << " of "
                            << t.n_bytes / block_bytes << " blocks differ from llama.cpp's";
    if (differing == 0) ++matched[name];
  }
  EXPECT_GT(quantized, 0);
  for (const auto& [type, n] : matched) std::cout << "  " << file << ": " << n << " " << type << " tensors byte-identical\n";
}

TEST(QuantLlamaCpp, Q8_0) {
  CSQ_REQUIRE_FIXTURES();
  check_against_llama_cpp("qwen3-tiny-gqa-Q8_0.gguf");
}
TEST(QuantLlamaCpp, Q4_0) {
  CSQ_REQUIRE_FIXTURES();
  check_against_llama_cpp("qwen3-tiny-gqa-Q4_0.gguf");
}
TEST(QuantLlamaCpp, Q6_K) {
  CSQ_REQUIRE_FIXTURES();
  check_against_llama_cpp("qwen3-tiny-gqa-Q6_K.gguf");
}
TEST(QuantLlamaCpp, Q4_K_M) {
  CSQ_REQUIRE_FIXTURES();
  check_against_llama_cpp("qwen3-tiny-gqa-Q4_K_M.gguf");
}

}  // namespace
}  // namespace csq::quants
