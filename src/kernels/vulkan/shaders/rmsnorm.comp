#version 450
// y = x / sqrt(mean(x^2) + eps) * w for each row of `dim` floats; one workgroup per row.
// x and y may be the same buffer (each thread rewrites only the elements it read).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer XBuffer { float x[]; };
layout(std430, binding = 1) readonly buffer WBuffer { float w[]; };
layout(std430, binding = 2) buffer YBuffer { float y[]; };
layout(push_constant) uniform Push { uint dim, n_rows, x_offset, y_offset; float eps; } p;

shared float partial[64];

void main() {
  const uint row = gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x;
  if (row >= p.n_rows) return;
  const uint tid = gl_LocalInvocationID.x, xb = p.x_offset + row * p.dim, yb = p.y_offset + row * p.dim;
  float s = 0.0;
  for (uint i = tid; i < p.dim; i += 64u) s += x[xb + i] * x[xb + i];
  partial[tid] = s;
  barrier();
  for (uint k = 32u; k > 0u; k >>= 1) {
    if (tid < k) partial[tid] += partial[tid + k];
    barrier();
  }
  const float inv = 1.0 / sqrt(partial[0] / float(p.dim) + p.eps);
  for (uint i = tid; i < p.dim; i += 64u) y[yb + i] = w[i] * (x[xb + i] * inv);
}
