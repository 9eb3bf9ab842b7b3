// Weight rows in their stored type, read from a uint array (binding 0) by byte offset, and
// decoded with ggml's formulas (kernels/quants.cpp): exactly one of the TYPE_* macros is set.
// Every format's block holds a multiple of 8 elements, so dequant8 decodes 8 consecutive
// elements of one block; float types may have rows whose length is not a multiple of 8, and
// dequant8 returns 0 past `cols` for them.
layout(std430, binding = 0) readonly buffer WeightBuffer { uint wq[]; };

uint wbyte(uint off) { return (wq[off >> 2] >> ((off & 3u) << 3)) & 0xFFu; }
uint wu16(uint off) { return (wq[off >> 2] >> ((off & 2u) << 3)) & 0xFFFFu; }  // off even
float wf16(uint off) { return unpackHalf2x16(wu16(off)).x; }
int wi8(uint off) { return int(wbyte(off) << 24) >> 24; }

#if defined(TYPE_F32) || defined(TYPE_F16) || defined(TYPE_BF16)
#define FLOAT_WEIGHTS 1
#endif

void scale_min_k4(uint j, uint q, out uint sc, out uint m) {
  if (j < 4u) {
    sc = wbyte(q + j) & 63u;
    m = wbyte(q + j + 4u) & 63u;
  } else {
    sc = (wbyte(q + j + 4u) & 0xFu) | ((wbyte(q + j - 4u) >> 6) << 4);
    m = (wbyte(q + j + 4u) >> 4) | ((wbyte(q + j) >> 6) << 4);
  }
}

// v[k] = element e + k of the row starting at byte row_off (e a multiple of 8).
void dequant8(uint row_off, uint e, uint cols, out float v[8]) {
#if defined(TYPE_F32)
  for (uint k = 0u; k < 8u; ++k) v[k] = e + k < cols ? uintBitsToFloat(wq[(row_off >> 2) + e + k]) : 0.0;
#elif defined(TYPE_F16)
  for (uint k = 0u; k < 8u; ++k) v[k] = e + k < cols ? wf16(row_off + 2u * (e + k)) : 0.0;
#elif defined(TYPE_BF16)
  for (uint k = 0u; k < 8u; ++k) v[k] = e + k < cols ? uintBitsToFloat(wu16(row_off + 2u * (e + k)) << 16) : 0.0;
#elif defined(TYPE_Q8_0)
  const uint base = row_off + 34u * (e / 32u), k0 = e % 32u;
  const float d = wf16(base);
  for (uint k = 0u; k < 8u; ++k) v[k] = float(wi8(base + 2u + k0 + k)) * d;
#elif defined(TYPE_Q4_0)
  const uint base = row_off + 18u * (e / 32u), k0 = e % 32u;
  const float d = wf16(base);
  for (uint k = 0u; k < 8u; ++k) {
    const uint j = k0 + k;
    const uint q = j < 16u ? wbyte(base + 2u + j) & 0xFu : wbyte(base + 2u + j - 16u) >> 4;
    v[k] = float(int(q) - 8) * d;
  }
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#if defined(TYPE_Q4_K)
  const uint base = row_off + 144u * (e / 256u), qs = base + 16u;
#else
  const uint base = row_off + 176u * (e / 256u), qh = base + 16u, qs = base + 48u;
#endif
  const uint el = e % 256u, sub = el / 32u, l0 = el % 32u, shift = 4u * (sub % 2u);
  uint sc, m;
  scale_min_k4(sub, base + 4u, sc, m);
  const float d1 = wf16(base) * float(sc), m1 = wf16(base + 2u) * float(m);
  for (uint k = 0u; k < 8u; ++k) {
    uint q = (wbyte(qs + 32u * (sub / 2u) + l0 + k) >> shift) & 0xFu;
#if defined(TYPE_Q5_K)
    q += ((wbyte(qh + l0 + k) >> sub) & 1u) << 4;
#endif
    v[k] = d1 * float(q) - m1;
  }
#elif defined(TYPE_Q6_K)
  const uint base = row_off + 210u * (e / 256u), el = e % 256u;
  const uint half_ = el / 128u, k0 = el % 128u;
  const float ds = wf16(base + 208u) * float(wi8(base + 192u + el / 16u));
  for (uint k = 0u; k < 8u; ++k) {
    const uint kk = k0 + k;
    const uint low = (wbyte(base + 64u * half_ + kk % 64u) >> (4u * (kk / 64u))) & 0xFu;
    const uint high = (wbyte(base + 128u + 32u * half_ + kk % 32u) >> (2u * (kk / 32u))) & 3u;
    v[k] = ds * float(int(low | (high << 4)) - 32);
  }
#else
#error "no TYPE_* defined"
#endif
}
