#version 450
// Writes each token's key or value row (width floats) into one layer's cache at its
// (sequence, position): element (s, pos, i) at (s * n_ctx + pos) * width + i, as F16 (pairs
// packed in a uint, round to nearest) or F32.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Cache { uint cache[]; };
layout(std430, binding = 1) readonly buffer Src { float src[]; };
layout(std430, binding = 2) readonly buffer Meta { int meta[]; };
layout(push_constant) uniform Push { uint width, n_tokens, n_ctx; } p;

void main() {
  const uint t = gl_GlobalInvocationID.y;
  if (t >= p.n_tokens) return;
  const uint row = (uint(meta[2u * t + 1u]) * p.n_ctx + uint(meta[2u * t])) * p.width;
#if defined(CACHE_F16)
  const uint i = 2u * gl_GlobalInvocationID.x;
  if (i >= p.width) return;
  cache[(row + i) / 2u] = packHalf2x16(vec2(src[t * p.width + i], src[t * p.width + i + 1u]));
#else
  const uint i = gl_GlobalInvocationID.x;
  if (i >= p.width) return;
  cache[row + i] = floatBitsToUint(src[t * p.width + i]);
#endif
}
