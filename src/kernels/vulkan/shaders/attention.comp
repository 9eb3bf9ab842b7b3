#version 450
// Causal attention of one query head of one token over its sequence's cached keys and values
// (positions 0..pos): 64 positions at a time, one per thread, with an online softmax (running
// max and sum rescaled per chunk), so any context length runs in fixed shared memory. Each
// thread then owns head_dim / 64 output dimensions. Cache layout as kv_store.comp writes it.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, binding = 3) readonly buffer Meta { int meta[]; };
layout(std430, binding = 4) writeonly buffer Out { float outv[]; };
layout(push_constant) uniform Push { uint head_dim, n_heads, n_kv_heads, q_width, kv_width, n_ctx; float scale; } p;

#if defined(CACHE_F16)
float kval(uint i) { return unpackHalf2x16(kc[i >> 1] >> ((i & 1u) << 4)).x; }
float vval(uint i) { return unpackHalf2x16(vc[i >> 1] >> ((i & 1u) << 4)).x; }
#elif defined(CACHE_Q8_0)
// Element i of a cache of Q8_0 blocks (34 bytes: float16 scale, 32 int8), given the words that
// hold its block's scale (at byte scale_at) and its quant (at byte quant_at).
float q8_0(uint scale_word, uint scale_at, uint quant_word, uint quant_at) {
  const float d = unpackHalf2x16((scale_word >> ((scale_at & 2u) << 3)) & 0xFFFFu).x;
  return d * float(int(((quant_word >> ((quant_at & 3u) << 3)) & 0xFFu) << 24) >> 24);
}
uint scale_byte(uint i) { return i / 32u * 34u; }
uint quant_byte(uint i) { return i / 32u * 34u + 2u + i % 32u; }
float kval(uint i) { return q8_0(kc[scale_byte(i) >> 2], scale_byte(i), kc[quant_byte(i) >> 2], quant_byte(i)); }
float vval(uint i) { return q8_0(vc[scale_byte(i) >> 2], scale_byte(i), vc[quant_byte(i) >> 2], quant_byte(i)); }
#else
float kval(uint i) { return uintBitsToFloat(kc[i]); }
float vval(uint i) { return uintBitsToFloat(vc[i]); }
#endif

#define MAX_HEAD_DIM 256u
shared float qs[MAX_HEAD_DIM];
shared float weights[64];
shared float reduce[64];

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint pos = uint(meta[2u * t]), seq = uint(meta[2u * t + 1u]);
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint qb = t * p.q_width + h * p.head_dim;
  for (uint d = tid; d < p.head_dim; d += 64u) qs[d] = q[qb + d];
  barrier();
  const uint kv_base = seq * p.n_ctx * p.kv_width + g * p.head_dim;
  float m = -1.0 / 0.0, l = 0.0;
  float o[MAX_HEAD_DIM / 64u];
  for (uint j = 0u; j < MAX_HEAD_DIM / 64u; ++j) o[j] = 0.0;
  for (uint c = 0u; c <= pos; c += 64u) {
    const uint at = c + tid;
    float s = -1.0 / 0.0;
    if (at <= pos) {
      const uint kb = kv_base + at * p.kv_width;
      s = 0.0;
      for (uint d = 0u; d < p.head_dim; ++d) s += qs[d] * kval(kb + d);
      s *= p.scale;
    }
    reduce[tid] = s;
    barrier();
    for (uint k = 32u; k > 0u; k >>= 1) {
      if (tid < k) reduce[tid] = max(reduce[tid], reduce[tid + k]);
      barrier();
    }
    const float m_new = max(m, reduce[0]);
    barrier();
    const float e = at <= pos ? exp(s - m_new) : 0.0;
    weights[tid] = e;
    reduce[tid] = e;
    barrier();
    for (uint k = 32u; k > 0u; k >>= 1) {
      if (tid < k) reduce[tid] += reduce[tid + k];
      barrier();
    }
    const float rescale = exp(m - m_new);
    l = l * rescale + reduce[0];
    m = m_new;
    const uint n = min(64u, pos + 1u - c);
    for (uint j = 0u; j * 64u + tid < p.head_dim; ++j) {
      const uint d = j * 64u + tid;
      float acc = 0.0;
      for (uint k = 0u; k < n; ++k) acc += weights[k] * vval(kv_base + (c + k) * p.kv_width + d);
      o[j] = o[j] * rescale + acc;
    }
    barrier();
  }
  for (uint j = 0u; j * 64u + tid < p.head_dim; ++j) outv[qb + j * 64u + tid] = o[j] / l;
}
