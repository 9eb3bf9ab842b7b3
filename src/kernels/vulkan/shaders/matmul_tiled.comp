#version 450
#extension GL_GOOGLE_include_directive : require
// y[t, r] = sum_c W[r, c] x[t, c] for prompts and batches: a workgroup owns a BM x BN tile of
// (weight rows x tokens) and walks the columns BK at a time. Each step decodes the weight tile
// once into shared memory (BM * BK / 8 dequant8 calls shared by all BN tokens) and copies the
// activation tile beside it; each invocation then accumulates TM rows x TN tokens from shared
// memory. Tile sizes are specialisation constants (chosen per device by vulkan/ops.cpp).
#include "dequant.glsl"

layout(constant_id = 0) const uint BM = 64;  // weight rows per workgroup, a multiple of TM
layout(constant_id = 1) const uint BN = 32;  // tokens per workgroup, a multiple of TN
layout(constant_id = 2) const uint BK = 32;  // columns per step, a multiple of 8
layout(constant_id = 3) const uint TM = 4;   // rows per invocation
layout(constant_id = 4) const uint TN = 4;   // tokens per invocation
layout(local_size_x_id = 5) in;              // (BM / TM) * (BN / TN) invocations

layout(std430, binding = 1) readonly buffer XBuffer { float x[]; };
layout(std430, binding = 2) buffer YBuffer { float y[]; };
layout(push_constant) uniform Push {
  uint rows, cols, row_bytes, n_tokens;
  uint x_offset, y_offset;  // in floats
  uint accumulate;          // 1: y += W x
} p;

// One padding float per row keeps invocations reading different rows off the same bank.
const uint STRIDE = BK + 1u;
shared float ws[BM * STRIDE];
shared float xs[BN * STRIDE];

void main() {
  const uint tid = gl_LocalInvocationID.x, threads = (BM / TM) * (BN / TN);
  const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
  // Invocation (tr, tc) owns rows row0 + tr + i * (BM / TM) and tokens tok0 + tc + j * (BN / TN):
  // neighbouring invocations write neighbouring rows of one token's output.
  const uint tr = tid % (BM / TM), tc = tid / (BM / TM);
  float acc[TM][TN];
  for (uint i = 0u; i < TM; ++i)
    for (uint j = 0u; j < TN; ++j) acc[i][j] = 0.0;

  for (uint k0 = 0u; k0 < p.cols; k0 += BK) {
    for (uint g = tid; g < BM * (BK / 8u); g += threads) {
      const uint r = g / (BK / 8u), kk = (g % (BK / 8u)) * 8u, row = row0 + r, e = k0 + kk;
      float v[8];
      if (row < p.rows && e < p.cols)
        dequant8(row * p.row_bytes, e, p.cols, v);
      else
        for (uint k = 0u; k < 8u; ++k) v[k] = 0.0;
      for (uint k = 0u; k < 8u; ++k) ws[r * STRIDE + kk + k] = v[k];
    }
    for (uint i = tid; i < BN * BK; i += threads) {
      const uint t = i / BK, kk = i % BK, tok = tok0 + t, e = k0 + kk;
      xs[t * STRIDE + kk] = tok < p.n_tokens && e < p.cols ? x[p.x_offset + tok * p.cols + e] : 0.0;
    }
    barrier();
    for (uint k = 0u; k < BK; ++k) {
      float a[TM], b[TN];
      for (uint i = 0u; i < TM; ++i) a[i] = ws[(tr + i * (BM / TM)) * STRIDE + k];
      for (uint j = 0u; j < TN; ++j) b[j] = xs[(tc + j * (BN / TN)) * STRIDE + k];
      for (uint i = 0u; i < TM; ++i)
        for (uint j = 0u; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    barrier();  // the tiles are rewritten by the next step
  }

  for (uint j = 0u; j < TN; ++j) {
    const uint tok = tok0 + tc + j * (BN / TN);
    if (tok >= p.n_tokens) continue;
    for (uint i = 0u; i < TM; ++i) {
      const uint row = row0 + tr + i * (BM / TM);
      if (row >= p.rows) continue;
      const uint at = p.y_offset + tok * p.rows + row;
      y[at] = p.accumulate != 0u ? y[at] + acc[i][j] : acc[i][j];
    }
  }
}
