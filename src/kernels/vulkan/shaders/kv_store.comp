#version 450
// Writes each token's key or value row (width floats) into one layer's cache at its
// (sequence, position): element (s, pos, i) at (s * n_ctx + pos) * width + i, as F16 (pairs
// packed in a uint, round to nearest), F32, or Q8_0 blocks of 32 (34 bytes: float16 scale
// amax / 127, then round-half-away(x / scale) as int8, as the CPU's quantize_q8_0). A Q8_0
// invocation writes two blocks, 17 whole words, so none shares a word with another; vulkan/ops
// requires rows of a multiple of 64 elements, which keeps every pair word-aligned.
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
#elif defined(CACHE_Q8_0)
  const uint pair = gl_GlobalInvocationID.x;
  if (64u * pair >= p.width) return;
  const uint first = t * p.width + 64u * pair;
  uint scale_bits[2];
  int q[64];
  for (uint b = 0u; b < 2u; ++b) {
    float amax = 0.0;
    for (uint j = 0u; j < 32u; ++j) amax = max(amax, abs(src[first + 32u * b + j]));
    const float d = amax / 127.0, id = d != 0.0 ? 1.0 / d : 0.0;
    scale_bits[b] = packHalf2x16(vec2(d, 0.0)) & 0xFFFFu;
    for (uint j = 0u; j < 32u; ++j) {
      const float v = src[first + 32u * b + j] * id;
      q[32u * b + j] = int(sign(v) * floor(abs(v) + 0.5));
    }
  }
  // Bytes 0-1 and 34-35 are the scales; 2-33 and 36-67 the quants.
  const uint word0 = (row / 32u) * 34u / 4u + pair * 17u;
  for (uint w = 0u; w < 17u; ++w) {
    uint word = 0u;
    for (uint k = 0u; k < 4u; ++k) {
      const uint at = 4u * w + k, b = at / 34u, in_block = at % 34u;
      const uint byte = in_block < 2u ? (scale_bits[b] >> (8u * in_block)) & 0xFFu : uint(q[32u * b + in_block - 2u]) & 0xFFu;
      word |= byte << (8u * k);
    }
    cache[word0 + w] = word;
  }
#else
  const uint i = gl_GlobalInvocationID.x;
  if (i >= p.width) return;
  cache[row + i] = floatBitsToUint(src[t * p.width + i]);
#endif
}
