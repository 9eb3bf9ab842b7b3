#include "base/half.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace csq {
namespace {

bool is_f16_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

// Value of a finite f16 pattern from its definition, in double (independent of half.h).
double f16_value(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  return (h & 0x8000) ? -magnitude : magnitude;
}

TEST(Half, F16ToF32AllPatterns) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    const bool negative = h & 0x8000;
    EXPECT_EQ(std::signbit(f), negative) << std::hex << h;
    if (is_f16_nan(uint16_t(h))) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
    } else if ((h & 0x7fff) == 0x7c00) {
      EXPECT_TRUE(std::isinf(f)) << std::hex << h;
    } else {
      EXPECT_EQ(double(f), f16_value(uint16_t(h))) << std::hex << h;
    }
  }
}

TEST(Half, F16RoundTripsThroughF32) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t back = f32_to_f16(f16_to_f32(uint16_t(h)));
    if (is_f16_nan(uint16_t(h))) {
      EXPECT_TRUE(is_f16_nan(back)) << std::hex << h << " -> " << back;
      EXPECT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;
    } else {
      EXPECT_EQ(back, h) << std::hex << h;
    }
  }
}

// Every midpoint between neighbouring f16 values (exact in float) must round to the even
// neighbour, and the floats just around it to the nearer one. Covers subnormal ties, the
// subnormal/normal boundary and exponent carries (the overflow tie at 65520 is hand-picked below).
TEST(Half, F32ToF16TiesToEvenEverywhere) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const uint16_t lo = uint16_t(h | sign), hi = uint16_t((h + 1) | sign);
      const float a = f16_to_f32(lo), b = f16_to_f32(hi);
      const float mid = float((double(a) + double(b)) / 2);
      ASSERT_EQ(double(mid), (double(a) + double(b)) / 2) << "midpoint not exact";
      const uint16_t even = (h & 1) ? hi : lo;
      EXPECT_EQ(f32_to_f16(mid), even) << std::hex << lo;
      EXPECT_EQ(f32_to_f16(std::nextafter(mid, a)), lo) << std::hex << lo;
      EXPECT_EQ(f32_to_f16(std::nextafter(mid, b)), hi) << std::hex << lo;
    }
  }
}

TEST(Half, F32ToF16HandPicked) {
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(0.1f), 0x2e66);    // 0.0999755859375 is nearer than 0.10003662109375
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);  // largest finite
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // tie with 65536 rounds to even: infinity
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_f16(INFINITY), 0x7c00);
  EXPECT_EQ(f32_to_f16(-INFINITY), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24: even is 0
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);   // tie between 1 and 2 ulps: 2
  EXPECT_EQ(f32_to_f16(-std::ldexp(5.0f, -25)), 0x8002);  // tie between 2 and 3 ulps: 2
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.5f, -24)), 0x0400);  // largest subnormal tie carries into normal
  EXPECT_EQ(f32_to_f16(1e-30f), 0x0000);
  EXPECT_EQ(f32_to_f16(-1e-30f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(f32_to_f16(2049.0f), 0x6800);  // tie between 2048 and 2050: even mantissa 2048
  EXPECT_EQ(f32_to_f16(2051.0f), 0x6802);  // tie between 2050 and 2052: 2052
  EXPECT_TRUE(is_f16_nan(f32_to_f16(NAN)));
  EXPECT_TRUE(is_f16_nan(f32_to_f16(bits_to_f32(0x7f800001u))));  // signalling NaN, tiny payload
  EXPECT_TRUE(is_f16_nan(f32_to_f16(bits_to_f32(0xffc00000u))));
  EXPECT_EQ(f32_to_f16(bits_to_f32(0xffc00000u)) & 0x8000, 0x8000);
}

// Random floats against a nearest-value search over the sorted table of all finite f16 values.
TEST(Half, F32ToF16MatchesNearestSearch) {
  std::vector<double> table;  // positive finite f16 values, ascending with the pattern
  for (uint32_t h = 0; h < 0x7c00; ++h) table.push_back(f16_value(uint16_t(h)));
  std::mt19937 rng(7);
  // Exponents from well below the subnormal range to beyond the overflow threshold.
  std::uniform_int_distribution<uint32_t> exponent(127 - 30, 127 + 17), mantissa(0, (1u << 23) - 1);
  for (int t = 0; t < 200000; ++t) {
    const uint32_t bits = (exponent(rng) << 23) | mantissa(rng);
    const float f = bits_to_f32(bits);
    uint16_t expected;
    if (double(f) >= 65520.0) {
      expected = 0x7c00;
    } else {
      const size_t up = size_t(std::lower_bound(table.begin(), table.end(), double(f)) - table.begin());
      if (up == table.size()) {
        expected = 0x7bff;  // between 65504 and the overflow threshold
      } else if (table[up] == double(f)) {
        expected = uint16_t(up);
      } else {
        const double below = double(f) - table[up - 1], above = table[up] - double(f);
        expected = uint16_t(below < above ? up - 1 : above < below ? up : (up % 2 == 0 ? up : up - 1));
      }
    }
    ASSERT_EQ(f32_to_f16(f), expected) << std::hexfloat << f;
    ASSERT_EQ(f32_to_f16(-f), expected | 0x8000) << std::hexfloat << -f;
  }
}

TEST(Half, Bf16RoundTripsAllPatterns) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    EXPECT_EQ(f32_to_bits(f), h << 16);
    const uint16_t back = f32_to_bf16(f);
    const bool nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;
    if (nan) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(back))) << std::hex << h;
    } else {
      EXPECT_EQ(back, h) << std::hex << h;
    }
  }
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000u)), 0x3f80);  // tie, even below
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000u)), 0x3f82);  // tie, odd below: up
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808001u)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0xbf818000u)), 0xbf82);  // sign does not change rounding
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3fff8000u)), 0x4000);  // carry into the exponent
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x7f7fffffu)), 0x7f80);  // largest float rounds to infinity
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x00018000u)), 0x0002);  // subnormals round too, not flushed
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7f80);
  // NaNs stay NaN, also when rounding the payload would carry into the infinity pattern.
  const uint16_t snan = f32_to_bf16(bits_to_f32(0x7f800001u));
  EXPECT_TRUE(std::isnan(bf16_to_f32(snan)));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(bits_to_f32(0x7fffffffu)))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(bits_to_f32(0xff800001u)))));
}

}  // namespace
}  // namespace csq
