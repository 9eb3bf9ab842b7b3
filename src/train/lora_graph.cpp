#include "train/lora_graph.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "kernels/backward.h"

namespace csq::train {
namespace {

// c[i, j] (+)= sum_p a[i, p] b[j, p]: every product of the LoRA path.
void matmul_nt(const float* a, const float* b, int64_t m, int64_t n, int64_t k, float* c, bool accumulate,
               ThreadPool& pool) {
  if (!accumulate) std::fill(c, c + m * n, 0.0f);
  kernels::gemm_nt(a, k, b, k, c, n, m, n, k, pool);
}

std::vector<float> transposed(const float* src, int64_t rows, int64_t cols) {
  std::vector<float> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[size_t(c * rows + r)] = src[r * cols + c];
  return out;
}

void round_to_bf16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser: a counter-based generator needs no state
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Rounds to bfloat16 up or down with probability proportional to the distance (unbiased: the
// expected value is x), by adding 16 random bits below the kept mantissa before truncating.
void round_to_bf16_stochastic(float* x, int64_t n, uint64_t stream) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    if ((bits & 0x7f800000u) == 0x7f800000u) continue;  // inf and NaN stay as they are
    bits += uint32_t(mix64(stream + uint64_t(i)) & 0xffffu);
    bits &= 0xffff0000u;
    std::memcpy(&x[i], &bits, 4);
  }
}

void add_bias(float* x, const std::vector<float>& bias, int64_t n_rows) {
  const int64_t width = int64_t(bias.size());
  for (int64_t r = 0; r < n_rows; ++r) kernels::add_inplace(x + r * width, bias.data(), width);
}

}  // namespace

int64_t PackedBatch::loss_tokens() const {
  return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; });
}

void PackedBatch::add_example(const std::vector<int32_t>& example_tokens, const std::vector<int32_t>& labels) {
  if (example_tokens.size() != labels.size()) fail_usage("an example's tokens and labels differ in length");
  const int32_t start = int32_t(tokens.size());
  for (size_t i = 0; i < example_tokens.size(); ++i) {
    tokens.push_back(example_tokens[i]);
    positions.push_back(int32_t(i));
    segment_start.push_back(start);
    targets.push_back(i + 1 < labels.size() ? labels[i + 1] : -1);
  }
}

// What one layer's backward pass needs, recomputed from the layer's input.
struct LoraGraph::LayerActivations {
  struct Tape {
    const float* input = nullptr;  // what the LoRA path multiplied: the projection input after dropout
    std::vector<float> dropped;    // that input when dropout made a copy
    std::vector<float> keep;       // dropout's per-element factor (0 or 1/(1-p)); empty without dropout
    std::vector<float> u;          // A · input, [n, rank]
    std::vector<float> a, b;       // the LoRA weights as multiplied (rounded in bf16 mode)
  };
  std::array<Tape, kLoraTargetCount> tapes;
  std::vector<float> xn, q_raw, k_raw, q, k, v, attn, lse, x1, hn, gate, up, mlp;
};

LoraGraph::LoraGraph(const Model& model, const LoraAdapter& params, LoraAdapter& grads, GraphOptions options)
    : model_(model), params_(params), grads_(grads), options_(options), lora_factor_(float(params.scale())) {
  if (int64_t(params.layers.size()) != model.config().n_layers || grads.layers.size() != params.layers.size())
    fail_usage("the LoRA adapter's layers do not match the model");
  if (options.dropout < 0 || options.dropout >= 1) fail_usage("LoRA dropout must be in [0, 1)");
}

void LoraGraph::check(const PackedBatch& b) const {
  const int64_t n = b.size();
  if (n == 0) fail_usage("empty training batch");
  if (int64_t(b.positions.size()) != n || int64_t(b.segment_start.size()) != n || int64_t(b.targets.size()) != n)
    fail_usage("packed batch arrays differ in length");
  const ModelConfig& c = model_.config();
  for (int64_t t = 0; t < n; ++t) {
    if (b.tokens[t] < 0 || b.tokens[t] >= c.vocab_size || b.targets[t] >= c.vocab_size)
      fail_input("training token id outside the vocabulary of " + std::to_string(c.vocab_size));
    if (b.segment_start[t] < 0 || b.segment_start[t] > t) fail_usage("packed batch: bad segment start");
  }
}

void LoraGraph::layer_forward(int64_t layer, const PackedBatch& batch, const float* x_in, float* x_out,
                              LayerActivations& acts, bool training, uint64_t dropout_key, ThreadPool& pool) {
  const ModelConfig& c = model_.config();
  const LayerWeights& lw = model_.weights().layers[size_t(layer)];
  const int64_t n = batch.size(), hidden = c.hidden_size, hd = c.head_dim;
  const float eps = float(c.rms_eps);
  const bool bf16 = options_.precision == Precision::BF16;
  auto resize = [](std::vector<float>& v, int64_t size) { v.resize(size_t(size)); };

  // y = W x + factor · B (A dropout(x)), recording what the backward pass needs.
  auto project = [&](LoraTarget target, const kernels::Matrix& w, const float* x, float* y) {
    kernels::matmul_float_activations(w, x, n, y, pool);
    const LoraPair& pair = params_.layers[size_t(layer)][size_t(target)];
    auto& tape = acts.tapes[size_t(target)];
    if (pair.empty()) return;
    const int64_t rank = params_.rank;
    tape.input = x;
    tape.keep.clear();
    if (training && options_.dropout > 0) {
      tape.dropped.assign(x, x + n * w.cols);
      tape.keep.resize(tape.dropped.size());
      const uint64_t stream = mix64(options_.dropout_seed ^ mix64(dropout_key ^ mix64(uint64_t(layer) * 8 + uint64_t(target))));
      const float kept = 1.0f / (1.0f - options_.dropout);
      for (size_t i = 0; i < tape.keep.size(); ++i) {
        const float uniform = float(mix64(stream + i) >> 40) * 0x1.0p-24f;
        tape.keep[i] = uniform >= options_.dropout ? kept : 0.0f;
        tape.dropped[i] *= tape.keep[i];
      }
      tape.input = tape.dropped.data();
    }
    tape.a = pair.a;
    tape.b = pair.b;
    if (bf16 && options_.stochastic_rounding) {
      // Keyed like dropout, so the recomputation in the backward pass rounds the same way.
      const uint64_t stream = mix64(~options_.dropout_seed ^ mix64(dropout_key ^ mix64(uint64_t(layer) * 8 + uint64_t(target))));
      round_to_bf16_stochastic(tape.a.data(), int64_t(tape.a.size()), stream);
      round_to_bf16_stochastic(tape.b.data(), int64_t(tape.b.size()), mix64(stream));
    } else if (bf16) {
      round_to_bf16(tape.a.data(), int64_t(tape.a.size()));
      round_to_bf16(tape.b.data(), int64_t(tape.b.size()));
    }
    resize(tape.u, n * rank);
    matmul_nt(tape.input, tape.a.data(), n, rank, w.cols, tape.u.data(), false, pool);
    std::vector<float> delta(size_t(n * w.rows));
    matmul_nt(tape.u.data(), tape.b.data(), n, w.rows, rank, delta.data(), false, pool);
    for (size_t i = 0; i < delta.size(); ++i) y[i] += lora_factor_ * delta[i];
  };

  resize(acts.xn, n * hidden);
  kernels::rmsnorm(x_in, lw.attn_norm.data(), acts.xn.data(), n, hidden, eps);
  if (bf16) round_to_bf16(acts.xn.data(), n * hidden);
  resize(acts.q_raw, n * c.q_width());
  resize(acts.k_raw, n * c.kv_width());
  resize(acts.v, n * c.kv_width());
  project(LoraTarget::Q, lw.wq, acts.xn.data(), acts.q_raw.data());
  project(LoraTarget::K, lw.wk, acts.xn.data(), acts.k_raw.data());
  project(LoraTarget::V, lw.wv, acts.xn.data(), acts.v.data());
  if (c.qkv_bias) {
    add_bias(acts.q_raw.data(), lw.bq, n);
    add_bias(acts.k_raw.data(), lw.bk, n);
    add_bias(acts.v.data(), lw.bv, n);
  }
  acts.q = acts.q_raw;
  acts.k = acts.k_raw;
  if (c.qk_norm) {
    kernels::rmsnorm(acts.q.data(), lw.q_norm.data(), acts.q.data(), n * c.n_heads, hd, eps);
    kernels::rmsnorm(acts.k.data(), lw.k_norm.data(), acts.k.data(), n * c.n_kv_heads, hd, eps);
  }
  for (int64_t t = 0; t < n; ++t) {
    model_.rope().apply(acts.q.data() + t * c.q_width(), c.n_heads, batch.positions[t]);
    model_.rope().apply(acts.k.data() + t * c.kv_width(), c.n_kv_heads, batch.positions[t]);
  }
  const kernels::PackedAttention shape{n, c.n_heads, c.n_kv_heads, hd, batch.segment_start.data()};
  resize(acts.attn, n * c.q_width());
  resize(acts.lse, n * c.n_heads);
  kernels::attention_packed(shape, acts.q.data(), acts.k.data(), acts.v.data(), acts.attn.data(), acts.lse.data(), pool);
  if (bf16) round_to_bf16(acts.attn.data(), n * c.q_width());
  resize(acts.x1, n * hidden);
  project(LoraTarget::O, lw.wo, acts.attn.data(), acts.x1.data());
  kernels::add_inplace(acts.x1.data(), x_in, n * hidden);

  resize(acts.hn, n * hidden);
  kernels::rmsnorm(acts.x1.data(), lw.ffn_norm.data(), acts.hn.data(), n, hidden, eps);
  if (bf16) round_to_bf16(acts.hn.data(), n * hidden);
  resize(acts.gate, n * c.ffn_size);
  resize(acts.up, n * c.ffn_size);
  project(LoraTarget::Gate, lw.w_gate, acts.hn.data(), acts.gate.data());
  project(LoraTarget::Up, lw.w_up, acts.hn.data(), acts.up.data());
  acts.mlp = acts.gate;
  kernels::silu_mul(acts.mlp.data(), acts.up.data(), n * c.ffn_size);
  if (bf16) round_to_bf16(acts.mlp.data(), n * c.ffn_size);
  project(LoraTarget::Down, lw.w_down, acts.mlp.data(), x_out);
  kernels::add_inplace(x_out, acts.x1.data(), n * hidden);
}

void LoraGraph::layer_backward(int64_t layer, const PackedBatch& batch, const float* x_in, LayerActivations& acts,
                               float* dx, ThreadPool& pool) {
  const ModelConfig& c = model_.config();
  const LayerWeights& lw = model_.weights().layers[size_t(layer)];
  const int64_t n = batch.size(), hidden = c.hidden_size, hd = c.head_dim;
  const float eps = float(c.rms_eps);

  // From dy (the gradient of a projection's output) to dx_out (of its input, overwritten), adding
  // the adapter's gradients: dB += factor dy^T u, du = factor dy B, dA += du^T input, dx += du A.
  auto project_back = [&](LoraTarget target, const kernels::Matrix& w, const float* dy, float* dx_out) {
    kernels::matmul_transposed(w, dy, n, dx_out, pool);
    const LoraPair& pair = params_.layers[size_t(layer)][size_t(target)];
    if (pair.empty()) return;
    LoraPair& grad = grads_.layers[size_t(layer)][size_t(target)];
    const auto& tape = acts.tapes[size_t(target)];
    const int64_t rank = params_.rank, in = w.cols, out = w.rows;
    std::vector<float> dy_scaled(dy, dy + n * out);
    for (float& g : dy_scaled) g *= lora_factor_;
    const std::vector<float> dy_t = transposed(dy_scaled.data(), n, out);
    const std::vector<float> u_t = transposed(tape.u.data(), n, rank);
    matmul_nt(dy_t.data(), u_t.data(), out, rank, n, grad.b.data(), true, pool);
    const std::vector<float> b_t = transposed(tape.b.data(), out, rank);
    std::vector<float> du(size_t(n * rank));
    matmul_nt(dy_scaled.data(), b_t.data(), n, rank, out, du.data(), false, pool);
    const std::vector<float> du_t = transposed(du.data(), n, rank);
    const std::vector<float> input_t = transposed(tape.input, n, in);
    matmul_nt(du_t.data(), input_t.data(), rank, in, n, grad.a.data(), true, pool);
    const std::vector<float> a_t = transposed(tape.a.data(), rank, in);
    std::vector<float> dx_lora(size_t(n * in));
    matmul_nt(du.data(), a_t.data(), n, in, rank, dx_lora.data(), false, pool);
    for (size_t i = 0; i < dx_lora.size(); ++i) dx_out[i] += tape.keep.empty() ? dx_lora[i] : dx_lora[i] * tape.keep[i];
  };

  // Feed-forward block.
  std::vector<float> dmlp(size_t(n * c.ffn_size)), dgate(size_t(n * c.ffn_size)), dup(size_t(n * c.ffn_size));
  project_back(LoraTarget::Down, lw.w_down, dx, dmlp.data());
  kernels::silu_mul_backward(acts.gate.data(), acts.up.data(), dmlp.data(), dgate.data(), dup.data(), n * c.ffn_size);
  std::vector<float> dhn(size_t(n * hidden)), dtmp(size_t(n * hidden));
  project_back(LoraTarget::Gate, lw.w_gate, dgate.data(), dhn.data());
  project_back(LoraTarget::Up, lw.w_up, dup.data(), dtmp.data());
  kernels::add_inplace(dhn.data(), dtmp.data(), n * hidden);
  kernels::rmsnorm_backward(acts.x1.data(), lw.ffn_norm.data(), dhn.data(), dtmp.data(), n, hidden, eps);
  kernels::add_inplace(dx, dtmp.data(), n * hidden);  // dx is now the gradient of x1

  // Attention block.
  std::vector<float> dattn(size_t(n * c.q_width()));
  project_back(LoraTarget::O, lw.wo, dx, dattn.data());
  std::vector<float> dq(size_t(n * c.q_width())), dk(size_t(n * c.kv_width())), dv(size_t(n * c.kv_width()));
  const kernels::PackedAttention shape{n, c.n_heads, c.n_kv_heads, hd, batch.segment_start.data()};
  kernels::attention_packed_backward(shape, acts.q.data(), acts.k.data(), acts.v.data(), acts.attn.data(),
                                     acts.lse.data(), dattn.data(), dq.data(), dk.data(), dv.data(), pool);
  for (int64_t t = 0; t < n; ++t) {
    model_.rope().apply_transposed(dq.data() + t * c.q_width(), c.n_heads, batch.positions[t]);
    model_.rope().apply_transposed(dk.data() + t * c.kv_width(), c.n_kv_heads, batch.positions[t]);
  }
  if (c.qk_norm) {
    kernels::rmsnorm_backward(acts.q_raw.data(), lw.q_norm.data(), dq.data(), dq.data(), n * c.n_heads, hd, eps);
    kernels::rmsnorm_backward(acts.k_raw.data(), lw.k_norm.data(), dk.data(), dk.data(), n * c.n_kv_heads, hd, eps);
  }
  std::vector<float> dxn(size_t(n * hidden));
  project_back(LoraTarget::Q, lw.wq, dq.data(), dxn.data());
  project_back(LoraTarget::K, lw.wk, dk.data(), dtmp.data());
  kernels::add_inplace(dxn.data(), dtmp.data(), n * hidden);
  project_back(LoraTarget::V, lw.wv, dv.data(), dtmp.data());
  kernels::add_inplace(dxn.data(), dtmp.data(), n * hidden);
  kernels::rmsnorm_backward(x_in, lw.attn_norm.data(), dxn.data(), dtmp.data(), n, hidden, eps);
  kernels::add_inplace(dx, dtmp.data(), n * hidden);
}

double LoraGraph::head(const PackedBatch& batch, const float* x, float grad_scale, float* dx, ThreadPool& pool) {
  // Only rows with a target matter; they go through the output head in chunks so that the
  // logits never need more than kChunk rows of the vocabulary at once.
  constexpr int64_t kChunk = 32;
  const ModelConfig& c = model_.config();
  const ModelWeights& w = model_.weights();
  const int64_t hidden = c.hidden_size, vocab = c.vocab_size;
  const float eps = float(c.rms_eps);
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < batch.size(); ++t)
    if (batch.targets[t] >= 0) rows.push_back(t);
  if (dx) std::fill(dx, dx + batch.size() * hidden, 0.0f);
  double total = 0;
  std::vector<float> xs, xn, logits, dxn, dxs;
  std::vector<int32_t> targets;
  for (size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const int64_t m = std::min<int64_t>(kChunk, int64_t(rows.size() - begin));
    xs.resize(size_t(m * hidden));
    xn.resize(size_t(m * hidden));
    targets.resize(size_t(m));
    for (int64_t i = 0; i < m; ++i) {
      const int64_t t = rows[begin + size_t(i)];
      std::copy(x + t * hidden, x + (t + 1) * hidden, xs.begin() + i * hidden);
      targets[size_t(i)] = batch.targets[t];
    }
    kernels::rmsnorm(xs.data(), w.output_norm.data(), xn.data(), m, hidden, eps);
    if (options_.precision == Precision::BF16) round_to_bf16(xn.data(), m * hidden);
    logits.resize(size_t(m * vocab));
    kernels::matmul_float_activations(w.lm_head, xn.data(), m, logits.data(), pool);
    total += kernels::cross_entropy(logits.data(), targets.data(), m, vocab, grad_scale, dx ? logits.data() : nullptr);
    if (!dx) continue;
    dxn.resize(size_t(m * hidden));
    dxs.resize(size_t(m * hidden));
    kernels::matmul_transposed(w.lm_head, logits.data(), m, dxn.data(), pool);
    kernels::rmsnorm_backward(xs.data(), w.output_norm.data(), dxn.data(), dxs.data(), m, hidden, eps);
    for (int64_t i = 0; i < m; ++i) {
      const int64_t t = rows[begin + size_t(i)];
      std::copy(dxs.begin() + i * hidden, dxs.begin() + (i + 1) * hidden, dx + t * hidden);
    }
  }
  return total;
}

double LoraGraph::forward_backward(const PackedBatch& batch, float grad_scale, uint64_t dropout_key, ThreadPool& pool) {
  check(batch);
  const ModelConfig& c = model_.config();
  const int64_t n = batch.size(), hidden = c.hidden_size;
  // checkpoints[l]: the input of layer l; checkpoints[n_layers]: the last layer's output.
  std::vector<std::vector<float>> checkpoints(size_t(c.n_layers + 1), std::vector<float>(size_t(n * hidden)));
  kernels::embedding_lookup(model_.weights().token_embedding, batch.tokens.data(), n, checkpoints[0].data());
  LayerActivations acts;
  for (int64_t layer = 0; layer < c.n_layers; ++layer)
    layer_forward(layer, batch, checkpoints[size_t(layer)].data(), checkpoints[size_t(layer + 1)].data(), acts, true,
                  dropout_key, pool);
  std::vector<float> dx(size_t(n * hidden));
  const double loss = head(batch, checkpoints.back().data(), grad_scale, dx.data(), pool);
  std::vector<float> scratch(size_t(n * hidden));
  for (int64_t layer = c.n_layers - 1; layer >= 0; --layer) {
    // Recompute this layer's activations (same dropout masks: same key), then go back through it.
    layer_forward(layer, batch, checkpoints[size_t(layer)].data(), scratch.data(), acts, true, dropout_key, pool);
    layer_backward(layer, batch, checkpoints[size_t(layer)].data(), acts, dx.data(), pool);
    checkpoints[size_t(layer + 1)] = {};
  }
  return loss;
}

double LoraGraph::loss(const PackedBatch& batch, ThreadPool& pool) {
  check(batch);
  const ModelConfig& c = model_.config();
  const int64_t n = batch.size(), hidden = c.hidden_size;
  std::vector<float> x(size_t(n * hidden)), next(size_t(n * hidden));
  kernels::embedding_lookup(model_.weights().token_embedding, batch.tokens.data(), n, x.data());
  LayerActivations acts;
  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    layer_forward(layer, batch, x.data(), next.data(), acts, false, 0, pool);
    std::swap(x, next);
  }
  return head(batch, x.data(), 0.0f, nullptr, pool);
}

}  // namespace csq::train
