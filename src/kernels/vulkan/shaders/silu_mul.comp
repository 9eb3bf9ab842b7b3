#version 450
// gate[i] = silu(gate[i]) * up[i]
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Gate { float gate[]; };
layout(std430, binding = 1) readonly buffer Up { float up[]; };
layout(push_constant) uniform Push { uint n, groups_x; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * p.groups_x * 64u;
  if (i >= p.n) return;
  const float g = gate[i];
  gate[i] = g / (1.0 + exp(-g)) * up[i];
}
