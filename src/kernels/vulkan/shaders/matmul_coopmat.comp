#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
// y[t, r] = sum_c W[r, c] x[t, c] on cooperative-matrix hardware (VK_NV_cooperative_matrix:
// the extension Debian 12's glslang compiles; tensor cores on NVIDIA). A workgroup of four
// 32-wide subgroups owns 64 weight rows x 64 tokens; each step decodes a 64 x 32 weight tile and
// the 64 x 32 activation tile into shared memory as float16, and every subgroup multiplies its
// 32 x 32 quarter as 2 x 2 blocks of 16 x 16 x 16 with float32 accumulators. Chosen only where
// the device reports that shape (vulkan::choose_matmul_kernel); activations beyond float16's
// range are clamped to +-65504.
#include "dequant.glsl"

layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer XBuffer { float x[]; };
layout(std430, binding = 2) buffer YBuffer { float y[]; };
layout(push_constant) uniform Push {
  uint rows, cols, row_bytes, n_tokens;
  uint x_offset, y_offset;  // in floats
  uint accumulate;          // 1: y += W x
} p;

const uint BM = 64u, BN = 64u, BK = 32u;
const uint STRIDE = BK + 8u;  // halves; 80-byte rows keep every 16 x 16 load 16-byte aligned
shared float16_t ws[BM * STRIDE];
shared float16_t xs[BN * STRIDE];
shared float cs[BM * BN];  // the finished tile, token-major, for bounds-checked stores

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
  const uint sr = gl_SubgroupID % 2u, sc = gl_SubgroupID / 2u;  // this subgroup's 32 x 32 quarter
  ACC acc[2][2];
  for (uint i = 0u; i < 2u; ++i)
    for (uint j = 0u; j < 2u; ++j) acc[i][j] = ACC(0.0);

  for (uint k0 = 0u; k0 < p.cols; k0 += BK) {
    for (uint g = tid; g < BM * (BK / 8u); g += 128u) {
      const uint r = g / (BK / 8u), kk = (g % (BK / 8u)) * 8u, row = row0 + r, e = k0 + kk;
      float v[8];
      if (row < p.rows && e < p.cols)
        dequant8(row * p.row_bytes, e, p.cols, v);
      else
        for (uint k = 0u; k < 8u; ++k) v[k] = 0.0;
      for (uint k = 0u; k < 8u; ++k) ws[r * STRIDE + kk + k] = float16_t(v[k]);
    }
    for (uint i = tid; i < BN * BK; i += 128u) {
      const uint t = i / BK, kk = i % BK, tok = tok0 + t, e = k0 + kk;
      const float v = tok < p.n_tokens && e < p.cols ? x[p.x_offset + tok * p.cols + e] : 0.0;
      xs[t * STRIDE + kk] = float16_t(clamp(v, -65504.0, 65504.0));
    }
    barrier();
    for (uint kb = 0u; kb < BK; kb += 16u) {
      HALF a[2], b[2];
      for (uint i = 0u; i < 2u; ++i) coopMatLoadNV(a[i], ws, (sr * 32u + i * 16u) * STRIDE + kb, STRIDE, false);
      for (uint j = 0u; j < 2u; ++j) coopMatLoadNV(b[j], xs, (sc * 32u + j * 16u) * STRIDE + kb, STRIDE, true);
      for (uint i = 0u; i < 2u; ++i)
        for (uint j = 0u; j < 2u; ++j) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
    }
    barrier();
  }

  for (uint i = 0u; i < 2u; ++i)
    for (uint j = 0u; j < 2u; ++j)
      coopMatStoreNV(acc[i][j], cs, (sc * 32u + j * 16u) * BM + sr * 32u + i * 16u, BM, true);
  barrier();
  for (uint i = tid; i < BM * BN; i += 128u) {
    const uint row = row0 + i % BM, tok = tok0 + i / BM;
    if (row >= p.rows || tok >= p.n_tokens) continue;
    const uint at = p.y_offset + tok * p.rows + row;
    y[at] = p.accumulate != 0u ? y[at] + cs[i] : cs[i];
  }
}
