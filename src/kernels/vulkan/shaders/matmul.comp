#version 450
#extension GL_GOOGLE_include_directive : require
// y[t, r] = sum_c W[r, c] x[t, c]. A workgroup of 64 threads takes 64 / row_threads rows, for
// every token in tiles of 8: row_threads threads (a power of two, fewer for short rows) split
// each row, so a decoded weight serves the whole tile, and add their partial sums in shared
// memory. Few, long-running workgroups: what software devices (lavapipe) run fastest.
#include "dequant.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer XBuffer { float x[]; };
layout(std430, binding = 2) buffer YBuffer { float y[]; };
layout(push_constant) uniform Push {
  uint rows, cols, row_bytes, n_tokens;
  uint x_offset, y_offset;  // in floats
  uint accumulate;          // 1: y += W x
  uint row_threads;
} p;

#define TILE 8u
shared float partial[TILE][64];

void main() {
  const uint tid = gl_LocalInvocationID.x, lane = tid % p.row_threads, slot = tid / p.row_threads;
  const uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint r = group * (64u / p.row_threads) + slot;
  const bool has_row = r < p.rows;  // no early return: every thread reaches the barriers
  const uint row_off = r * p.row_bytes;
  for (uint t0 = 0u; t0 < p.n_tokens; t0 += TILE) {
    const uint n = min(TILE, p.n_tokens - t0);
    float acc[TILE];
    for (uint t = 0u; t < TILE; ++t) acc[t] = 0.0;
    for (uint e = lane * 8u; has_row && e < p.cols; e += p.row_threads * 8u) {
      float v[8];
      dequant8(row_off, e, p.cols, v);
      const uint valid = min(8u, p.cols - e);
      for (uint t = 0u; t < n; ++t) {
        const uint xb = p.x_offset + (t0 + t) * p.cols + e;
        float s = 0.0;
        for (uint k = 0u; k < valid; ++k) s += v[k] * x[xb + k];
        acc[t] += s;
      }
    }
    for (uint t = 0u; t < TILE; ++t) partial[t][tid] = acc[t];
    barrier();
    for (uint s = p.row_threads / 2u; s > 0u; s >>= 1) {
      if (lane < s)
        for (uint t = 0u; t < TILE; ++t) partial[t][tid] += partial[t][tid + s];
      barrier();
    }
    for (uint t = lane; has_row && t < n; t += p.row_threads) {
      const uint at = p.y_offset + (t0 + t) * p.rows + r;
      const float sum = partial[t][slot * p.row_threads];
      y[at] = p.accumulate != 0u ? y[at] + sum : sum;
    }
    barrier();  // partial is rewritten by the next tile
  }
}
