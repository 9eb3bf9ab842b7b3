#version 450
// x[x_offset + i] += scale * y[y_offset + i % period] for i < n: residual additions (period = n),
// biases broadcast over tokens (period = width), LoRA updates (scale = the adapter's factor).
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer XBuffer { float x[]; };
layout(std430, binding = 1) readonly buffer YBuffer { float y[]; };
layout(push_constant) uniform Push { uint n, period, x_offset, y_offset, groups_x; float scale; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * p.groups_x * 64u;
  if (i >= p.n) return;
  x[p.x_offset + i] += p.scale * y[p.y_offset + i % p.period];
}
