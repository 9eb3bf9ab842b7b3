#include "model/transformer.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "kernels/quantize.h"
#include "model/device_model.h"

namespace csq {

KvCache::KvCache(const ModelConfig& config, int32_t n_seqs, int64_t n_ctx, DType type)
    : n_layers_(config.n_layers), width_(config.kv_width()), n_seqs_(n_seqs), n_ctx_(n_ctx), type_(type) {
  if (n_seqs <= 0 || n_ctx <= 0) fail_usage("KV cache needs at least one sequence and one position");
  if (type != DType::F16 && type != DType::F32 && type != DType::Q8_0)
    fail_usage(std::string("KV cache type must be F16, F32 or Q8_0, not ") + dtype_info(type).name);
  // Q8_0 blocks of 32 must not straddle two heads (each head's keys are read on their own).
  if (type == DType::Q8_0 && config.head_dim % 32 != 0)
    fail_usage("a Q8_0 KV cache needs a head_dim that is a multiple of 32; this model's is " +
               std::to_string(config.head_dim));
  row_bytes_ = csq::row_bytes(type, width_);
  const int64_t n = n_layers_ * n_seqs_ * n_ctx_ * row_bytes_;
  k_.reset(new uint8_t[size_t(n)]);
  v_.reset(new uint8_t[size_t(n)]);
}

KvCache::~KvCache() = default;

void KvCache::set_device(std::unique_ptr<DeviceKvCache> device) { device_ = std::move(device); }

void KvCache::store(int64_t layer, int32_t seq, int64_t position, const float* key, const float* value) {
  const int64_t at = offset(layer, seq) + position * row_bytes_;
  quantize_row(type_, key, k_.get() + at, width_);
  quantize_row(type_, value, v_.get() + at, width_);
}

void KvCache::copy_prefix(int32_t from, int32_t to, int64_t n) {
  if (from == to) return;
  // A device holds the first layers (all of them, or those of a partial offload); the host the rest.
  int64_t first_host_layer = 0;
  if (device_) {
    device_copy_prefix(*this, from, to, n);
    first_host_layer = int64_t(device_->k.size());
  }
  for (int64_t layer = first_host_layer; layer < n_layers_; ++layer) {
    std::memcpy(k_.get() + offset(layer, to), k_.get() + offset(layer, from), size_t(n * row_bytes_));
    std::memcpy(v_.get() + offset(layer, to), v_.get() + offset(layer, from), size_t(n * row_bytes_));
  }
}

namespace {

void check_batch(const Model& model, const Batch& batch, const KvCache& cache) {
  const int64_t n = batch.size();
  if (int64_t(batch.positions.size()) != n || int64_t(batch.seq_ids.size()) != n || int64_t(batch.want_logits.size()) != n)
    fail_usage("batch arrays differ in length");
  for (int64_t i = 0; i < n; ++i) {
    if (batch.tokens[i] < 0 || batch.tokens[i] >= model.config().vocab_size)
      fail_input("token id " + std::to_string(batch.tokens[i]) + " is outside the vocabulary (size " +
                 std::to_string(model.config().vocab_size) + ")");
    if (batch.positions[i] < 0 || batch.positions[i] >= cache.n_ctx())
      fail_input("position " + std::to_string(batch.positions[i]) + " is outside the context of " +
                 std::to_string(cache.n_ctx()) + " tokens");
    if (batch.seq_ids[i] < 0 || batch.seq_ids[i] >= cache.n_seqs())
      fail_usage("sequence id " + std::to_string(batch.seq_ids[i]) + " is outside the cache's " +
                 std::to_string(cache.n_seqs()) + " sequences");
  }
}

// y = W x, plus factor · B A x of every attached adapter that adapts this projection.
void project(const Model& model, int64_t layer, LoraTarget target, const kernels::Matrix& w, const float* x,
             int64_t n, float* y, ThreadPool& pool) {
  kernels::matmul(w, x, n, y, pool);
  for (const AttachedLora& lora : model.adapters()) {
    const LoraPair& pair = lora.adapter->layers[size_t(layer)][size_t(target)];
    if (pair.empty()) continue;
    pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
      lora_apply(pair, lora.adapter->rank, w.cols, w.rows, lora.factor, x + begin * w.cols, end - begin,
                 y + begin * w.rows);
    });
  }
}

void add_bias(float* x, const std::vector<float>& bias, int64_t n_rows) {
  const int64_t width = int64_t(bias.size());
  for (int64_t r = 0; r < n_rows; ++r) kernels::add_inplace(x + r * width, bias.data(), width);
}

}  // namespace

void forward(const Model& model, const Batch& batch, KvCache& cache, ThreadPool& pool, std::vector<float>& logits) {
  check_batch(model, batch, cache);
  if (model.device()) return device_forward(model, batch, cache, pool, logits);
  std::vector<float> x(size_t(batch.size() * model.config().hidden_size));
  kernels::embedding_lookup(model.weights().token_embedding, batch.tokens.data(), batch.size(), x.data());
  forward_from_layer(model, batch, cache, pool, x, 0, logits);
}

void forward_from_layer(const Model& model, const Batch& batch, KvCache& cache, ThreadPool& pool, std::vector<float>& x,
                        int64_t first_layer, std::vector<float>& logits) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t n = batch.size();
  const int64_t hidden = c.hidden_size, q_width = c.q_width(), kv_width = c.kv_width(), hd = c.head_dim;
  const float eps = float(c.rms_eps);

  std::vector<float> xn(size_t(n * hidden)), attn(size_t(n * q_width));
  std::vector<float> q(size_t(n * q_width)), k(size_t(n * kv_width)), v(size_t(n * kv_width));
  std::vector<float> gate(size_t(n * c.ffn_size)), up(size_t(n * c.ffn_size)), proj(size_t(n * hidden));

  for (int64_t layer = first_layer; layer < c.n_layers; ++layer) {
    const LayerWeights& lw = w.layers[size_t(layer)];

    // Self-attention block: x += Wo . attention(rope(norm(Wq xn)), rope(norm(Wk xn)), Wv xn)
    kernels::rmsnorm(x.data(), lw.attn_norm.data(), xn.data(), n, hidden, eps);
    project(model, layer, LoraTarget::Q, lw.wq, xn.data(), n, q.data(), pool);
    project(model, layer, LoraTarget::K, lw.wk, xn.data(), n, k.data(), pool);
    project(model, layer, LoraTarget::V, lw.wv, xn.data(), n, v.data(), pool);
    if (c.qkv_bias) {
      add_bias(q.data(), lw.bq, n);
      add_bias(k.data(), lw.bk, n);
      add_bias(v.data(), lw.bv, n);
    }
    if (c.qk_norm) {
      kernels::rmsnorm(q.data(), lw.q_norm.data(), q.data(), n * c.n_heads, hd, eps);
      kernels::rmsnorm(k.data(), lw.k_norm.data(), k.data(), n * c.n_kv_heads, hd, eps);
    }
    for (int64_t t = 0; t < n; ++t) {
      model.rope().apply(q.data() + t * q_width, c.n_heads, batch.positions[t]);
      model.rope().apply(k.data() + t * kv_width, c.n_kv_heads, batch.positions[t]);
      cache.store(layer, batch.seq_ids[t], batch.positions[t], k.data() + t * kv_width, v.data() + t * kv_width);
    }
    // One task per (token, key/value head): the group of query heads sharing it reads K and V once.
    const int64_t group = c.n_heads / c.n_kv_heads;
    const int64_t head_bytes = row_bytes(cache.type(), hd);
    // Handed out as threads come free: under the causal mask a prompt's later tokens cost more.
    pool.parallel_for_dynamic(n * c.n_kv_heads, c.n_kv_heads, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t t = i / c.n_kv_heads, g = i % c.n_kv_heads;
        const int64_t n_ctx = int64_t(batch.positions[t]) + 1;
        const uint8_t* keys = static_cast<const uint8_t*>(cache.keys(layer, batch.seq_ids[t])) + g * head_bytes;
        const uint8_t* values = static_cast<const uint8_t*>(cache.values(layer, batch.seq_ids[t])) + g * head_bytes;
        const int64_t head0 = t * q_width + g * group * hd;
        kernels::attention_group(q.data() + head0, group, keys, values, cache.type(), kv_width, n_ctx, hd,
                                 attn.data() + head0);
      }
    });
    project(model, layer, LoraTarget::O, lw.wo, attn.data(), n, proj.data(), pool);
    kernels::add_inplace(x.data(), proj.data(), n * hidden);

    // Feed-forward block (SwiGLU): x += W_down (silu(W_gate xn) * W_up xn)
    kernels::rmsnorm(x.data(), lw.ffn_norm.data(), xn.data(), n, hidden, eps);
    project(model, layer, LoraTarget::Gate, lw.w_gate, xn.data(), n, gate.data(), pool);
    project(model, layer, LoraTarget::Up, lw.w_up, xn.data(), n, up.data(), pool);
    // Element-wise, so split freely (an exp per element is a few percent of a prompt's time).
    constexpr int64_t kSiluChunk = 4096;
    pool.parallel_for((n * c.ffn_size + kSiluChunk - 1) / kSiluChunk, [&](int64_t begin, int64_t end, int) {
      const int64_t first = begin * kSiluChunk, last = std::min(n * c.ffn_size, end * kSiluChunk);
      kernels::silu_mul(gate.data() + first, up.data() + first, last - first);
    });
    project(model, layer, LoraTarget::Down, lw.w_down, gate.data(), n, proj.data(), pool);
    kernels::add_inplace(x.data(), proj.data(), n * hidden);
  }

  // Final norm and the output head, only for the rows that want logits.
  std::vector<float> selected;
  for (int64_t t = 0; t < n; ++t)
    if (batch.want_logits[t]) selected.insert(selected.end(), x.begin() + t * hidden, x.begin() + (t + 1) * hidden);
  const int64_t n_out = int64_t(selected.size()) / hidden;
  kernels::rmsnorm(selected.data(), w.output_norm.data(), selected.data(), n_out, hidden, eps);
  logits.resize(size_t(n_out * c.vocab_size));
  kernels::matmul(w.lm_head, selected.data(), n_out, logits.data(), pool);
}

}  // namespace csq
