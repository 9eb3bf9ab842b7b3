#version 450
// Rotary position embedding with the host's table of float32 cos/sin per (position, frequency)
// (computed as the CPU computes them, so both rotate by the same values). One thread per
// (pair, head) of one token; adjacent pairs (GGUF Llama layout) or halves (Hugging Face).
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer XBuffer { float x[]; };
layout(std430, binding = 1) readonly buffer Table { vec2 cos_sin[]; };
layout(std430, binding = 2) readonly buffer Meta { int meta[]; };  // (position, sequence) per token
layout(push_constant) uniform Push { uint n_heads, head_dim, stride, n_tokens, adjacent; } p;

void main() {
  const uint half_ = p.head_dim / 2u;
  const uint i = gl_GlobalInvocationID.x % half_, h = gl_GlobalInvocationID.x / half_, t = gl_GlobalInvocationID.y;
  if (h >= p.n_heads || t >= p.n_tokens) return;
  const vec2 cs = cos_sin[uint(meta[2u * t]) * half_ + i];
  const uint base = t * p.stride + h * p.head_dim;
  const uint a = p.adjacent != 0u ? base + 2u * i : base + i;
  const uint b = p.adjacent != 0u ? a + 1u : a + half_;
  const float x0 = x[a], x1 = x[b];
  x[a] = x0 * cs.x - x1 * cs.y;
  x[b] = x1 * cs.x + x0 * cs.y;
}
