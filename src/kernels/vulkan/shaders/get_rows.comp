#version 450
#extension GL_GOOGLE_include_directive : require
// Embedding lookup: out[t, :] = row ids[t] of the table, decoded to float. One thread per 8
// elements of one token's row.
#include "dequant.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, binding = 2) writeonly buffer Out { float outv[]; };
layout(push_constant) uniform Push { uint cols, row_bytes, n_tokens; } p;

void main() {
  const uint e = gl_GlobalInvocationID.x * 8u, t = gl_GlobalInvocationID.y;
  if (e >= p.cols || t >= p.n_tokens) return;
  float v[8];
  dequant8(uint(ids[t]) * p.row_bytes, e, p.cols, v);
  for (uint k = 0u; k < 8u && e + k < p.cols; ++k) outv[t * p.cols + e + k] = v[k];
}
