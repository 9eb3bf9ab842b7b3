#include "model/device_model.h"

#include <cstdio>

#include "base/error.h"

namespace csq {
namespace {

std::unique_ptr<vulkan::Buffer> floats(vulkan::Device& d, const std::vector<float>& v) {
  return v.empty() ? nullptr : vulkan::upload_floats(d, v.data(), int64_t(v.size()));
}

vulkan::DeviceMatrix float_matrix(vulkan::Device& d, const std::vector<float>& values, int64_t rows, int64_t cols) {
  return vulkan::upload_matrix(d, kernels::Matrix{DType::F32, rows, cols, reinterpret_cast<const uint8_t*>(values.data())});
}

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / (1024.0 * 1024 * 1024));
  return buf;
}

void ensure_scratch(DeviceModel& m, const ModelConfig& c, int64_t n, int64_t n_out) {
  DeviceScratch& s = m.scratch;
  vulkan::Device& d = m.device();
  auto make = [&](int64_t count) { return d.create_buffer(uint64_t(count) * 4); };
  if (n > s.tokens) {
    int64_t lora_rank = 1;
    for (const DeviceLayer& layer : m.layers)
      for (const auto& target : layer.lora)
        for (const DeviceLora& l : target) lora_rank = std::max(lora_rank, l.a.rows);
    const int64_t widest = std::max({c.hidden_size, c.q_width(), c.ffn_size});
    s.ids = make(n);
    s.meta = make(2 * n);
    s.x = make(n * c.hidden_size);
    s.xn = make(n * c.hidden_size);
    s.q = make(n * c.q_width());
    s.k = make(n * c.kv_width());
    s.v = make(n * c.kv_width());
    s.attn = make(n * c.q_width());
    s.gate = make(n * c.ffn_size);
    s.up = make(n * c.ffn_size);
    s.lora_mid = make(n * lora_rank);
    s.lora_out = make(n * widest);
    s.tokens = n;
  }
  if (n_out > s.outputs) {
    s.selected = make(n_out * c.hidden_size);
    s.logits = make(n_out * c.vocab_size);
    s.outputs = n_out;
  }
}

DeviceKvCache& device_cache(DeviceModel& m, KvCache& cache) {
  if (!cache.device()) {
    auto d = std::make_unique<DeviceKvCache>();
    d->model = &m;
    const uint64_t bytes = uint64_t(row_bytes(cache.type(), cache.n_seqs() * cache.n_ctx() * cache.row_width()));
    // Keys and values of the device's layers only; a partial offload keeps the rest on the host.
    const uint64_t kv_bytes = 2 * bytes * m.layers.size();
    const vulkan::DeviceInfo& info = m.info();
    if (m.weight_bytes + kv_bytes > info.device_local_bytes)
      fail_runtime("the KV cache of " + std::to_string(m.layers.size()) + " layers (" + std::to_string(cache.n_seqs()) +
                   " sequences x " + std::to_string(cache.n_ctx()) + " positions, " + dtype_info(cache.type()).name +
                   ") takes " + gib(kv_bytes) + " on vulkan:" + std::to_string(info.index) + " (" + info.name +
                   ") beside " + gib(m.weight_bytes) + " of weights, but it has " + gib(info.device_local_bytes) +
                   "; use a smaller --ctx, --cache-type q8_0, or fewer --gpu-layers");
    for (size_t layer = 0; layer < m.layers.size(); ++layer) {
      d->k.push_back(m.device().create_buffer(bytes));
      d->v.push_back(m.device().create_buffer(bytes));
    }
    cache.set_device(std::move(d));
  }
  return *cache.device();
}

// y (+)= W x over n tokens, plus factor · B A x of every adapter of this projection.
void project(DeviceModel& m, const DeviceLayer& layer, LoraTarget target, const vulkan::DeviceMatrix& w,
             const vulkan::Buffer& x, int64_t n, const vulkan::Buffer& y, bool accumulate) {
  vulkan::Device& d = m.device();
  vulkan::matmul(d, w, x, 0, n, y, 0, accumulate);
  for (const DeviceLora& l : layer.lora[size_t(target)]) {
    vulkan::matmul(d, l.a, x, 0, n, *m.scratch.lora_mid, 0);
    vulkan::matmul(d, l.b, *m.scratch.lora_mid, 0, n, *m.scratch.lora_out, 0);
    vulkan::add(d, y, 0, *m.scratch.lora_out, 0, n * w.rows, n * w.rows, l.factor);
  }
}

uint64_t matrix_bytes(const kernels::Matrix& m) { return uint64_t(m.rows) * uint64_t(m.row_bytes()); }

}  // namespace

uint64_t OffloadSizes::weights(int64_t n_layers) const {
  uint64_t total = embedding + (n_layers == int64_t(layers.size()) ? head : 0);
  for (int64_t i = 0; i < n_layers && i < int64_t(layers.size()); ++i) total += layers[size_t(i)];
  return total;
}

OffloadSizes offload_sizes(const Model& model) {
  const ModelWeights& w = model.weights();
  OffloadSizes s;
  s.embedding = matrix_bytes(w.token_embedding);
  s.head = (w.lm_head.data == w.token_embedding.data ? 0 : matrix_bytes(w.lm_head)) + 4 * w.output_norm.size();
  for (const LayerWeights& l : w.layers) {
    uint64_t bytes = 4 * (l.attn_norm.size() + l.ffn_norm.size() + l.q_norm.size() + l.k_norm.size() + l.bq.size() +
                          l.bk.size() + l.bv.size());
    for (const kernels::Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) bytes += matrix_bytes(*m);
    s.layers.push_back(bytes);
  }
  return s;
}

int64_t choose_gpu_layers(const OffloadSizes& sizes, int requested, uint64_t device_bytes, const std::string& what) {
  const int64_t all = int64_t(sizes.layers.size());
  if (requested >= 0) return std::min<int64_t>(requested, all);
  const auto budget = uint64_t(double(device_bytes) * kWeightShareOfDeviceMemory);
  int64_t n = all;
  while (n > 0 && sizes.weights(n) > budget) --n;
  if (n == 0)
    fail_runtime("the model's weights take " + gib(sizes.weights(all)) + " (embedding " + gib(sizes.embedding) +
                 ", first layer " + gib(sizes.layers.empty() ? 0 : sizes.layers[0]) + ") but " + what + " has " +
                 gib(device_bytes) + " of device memory, " + gib(budget) +
                 " of it for weights: not even one layer fits; use --device cpu");
  return n;
}

DeviceChoice parse_device(const std::string& text) {
  if (text == "cpu") return {};
  if (text == "vulkan") return {true, 0};
  if (text.rfind("vulkan:", 0) == 0) {
    const std::string n = text.substr(7);
    if (!n.empty() && n.size() < 4 && n.find_first_not_of("0123456789") == std::string::npos) return {true, std::stoi(n)};
  }
  fail_usage("--device must be cpu, vulkan or vulkan:N (N a device number from csq info --devices), not '" + text + "'");
}

DeviceModel::DeviceModel(std::unique_ptr<vulkan::Device> device, const Model& model, int64_t n_layers)
    : device_(std::move(device)) {
  vulkan::Device& d = *device_;
  const ModelWeights& w = model.weights();
  const bool whole = n_layers == int64_t(w.layers.size());
  weight_bytes = offload_sizes(model).weights(n_layers);
  const vulkan::DeviceInfo& info = d.info();
  if (weight_bytes > info.device_local_bytes)
    fail_runtime("the weights of " + model.checkpoint().path + " on the device (" + std::to_string(n_layers) + " of " +
                 std::to_string(w.layers.size()) + " layers) take " + gib(weight_bytes) + " but vulkan:" +
                 std::to_string(info.index) + " (" + info.name + ") has " + gib(info.device_local_bytes) +
                 " of device memory; use fewer --gpu-layers or --device cpu");
  auto matrix = [&](const kernels::Matrix& m) { return vulkan::upload_matrix(d, m); };
  token_embedding = std::make_shared<vulkan::DeviceMatrix>(matrix(w.token_embedding));
  if (whole)
    lm_head = w.lm_head.data == w.token_embedding.data ? token_embedding
                                                        : std::make_shared<vulkan::DeviceMatrix>(matrix(w.lm_head));
  for (size_t i = 0; i < size_t(n_layers); ++i) {
    const LayerWeights& lw = w.layers[i];
    DeviceLayer l;
    l.attn_norm = floats(d, lw.attn_norm);
    l.ffn_norm = floats(d, lw.ffn_norm);
    l.q_norm = floats(d, lw.q_norm);
    l.k_norm = floats(d, lw.k_norm);
    l.bq = floats(d, lw.bq);
    l.bk = floats(d, lw.bk);
    l.bv = floats(d, lw.bv);
    l.wq = matrix(lw.wq);
    l.wk = matrix(lw.wk);
    l.wv = matrix(lw.wv);
    l.wo = matrix(lw.wo);
    l.w_gate = matrix(lw.w_gate);
    l.w_up = matrix(lw.w_up);
    l.w_down = matrix(lw.w_down);
    for (const AttachedLora& lora : model.adapters())
      for (int t = 0; t < kLoraTargetCount; ++t) {
        const LoraPair& pair = lora.adapter->layers[i][size_t(t)];
        if (pair.empty()) continue;
        const int64_t rank = lora.adapter->rank, in = int64_t(pair.a.size()) / rank, out = int64_t(pair.b.size()) / rank;
        l.lora[size_t(t)].push_back({float_matrix(d, pair.a, rank, in), float_matrix(d, pair.b, out, rank), lora.factor});
      }
    layers.push_back(std::move(l));
  }
  if (whole) output_norm = floats(d, w.output_norm);
  d.finish();
}

bool place_model(Model& model, const DeviceChoice& choice) {
  if (!choice.vulkan) {
    model.set_device(nullptr);
    return false;
  }
  const vulkan::DeviceList list = vulkan::list_devices();
  if (list.devices.empty()) {
    std::fprintf(stderr, "csq: no Vulkan device (%s); running on the CPU\n", list.problem.c_str());
    return false;
  }
  if (choice.gpu_layers == 0) {
    model.set_device(nullptr);
    return false;
  }
  std::unique_ptr<vulkan::Device> device = vulkan::Device::open(choice.index);
  const vulkan::DeviceInfo& info = device->info();
  const std::string what = "vulkan:" + std::to_string(info.index) + " (" + info.name + ")";
  const OffloadSizes sizes = offload_sizes(model);
  const int64_t n = choose_gpu_layers(sizes, choice.gpu_layers, info.device_local_bytes, what);
  if (choice.gpu_layers < 0 && n < int64_t(sizes.layers.size()))
    std::fprintf(stderr, "csq: the weights (%s) do not fit %s (%s); %lld of %zu layers run there, the rest on the CPU\n",
                 gib(sizes.weights(int64_t(sizes.layers.size()))).c_str(), what.c_str(),
                 gib(info.device_local_bytes).c_str(), (long long)n, sizes.layers.size());
  model.set_device(std::make_unique<DeviceModel>(std::move(device), model, n));
  return true;
}

void device_forward(const Model& model, const Batch& batch, KvCache& cache, ThreadPool& pool, std::vector<float>& logits) {
  DeviceModel& m = *model.device();
  const std::lock_guard<std::mutex> lock(m.mutex);
  vulkan::Device& d = m.device();
  const ModelConfig& c = model.config();
  const int64_t n = batch.size(), hidden = c.hidden_size, hd = c.head_dim;
  const float eps = float(c.rms_eps);
  int64_t n_out = 0;
  for (uint8_t want : batch.want_logits) n_out += want;
  ensure_scratch(m, c, n, std::max<int64_t>(n_out, 1));
  DeviceKvCache& kv = device_cache(m, cache);
  if (m.rope_positions < cache.n_ctx()) {
    m.rope_table = vulkan::rope_table(d, model.rope(), cache.n_ctx());
    m.rope_positions = cache.n_ctx();
  }
  DeviceScratch& s = m.scratch;
  std::vector<int32_t> meta(size_t(2 * n));
  for (int64_t t = 0; t < n; ++t) {
    meta[size_t(2 * t)] = batch.positions[size_t(t)];
    meta[size_t(2 * t + 1)] = batch.seq_ids[size_t(t)];
  }
  d.upload(*s.ids, 0, batch.tokens.data(), uint64_t(n) * 4);
  d.upload(*s.meta, 0, meta.data(), uint64_t(2 * n) * 4);

  vulkan::embedding_lookup(d, *m.token_embedding, *s.ids, n, *s.x);
  const int64_t device_layers = int64_t(m.layers.size());
  for (int64_t layer = 0; layer < device_layers; ++layer) {
    const DeviceLayer& l = m.layers[size_t(layer)];
    // Self-attention block: x += Wo . attention(rope(norm(Wq xn)), rope(norm(Wk xn)), Wv xn)
    vulkan::rmsnorm(d, *s.x, 0, *l.attn_norm, *s.xn, 0, n, hidden, eps);
    project(m, l, LoraTarget::Q, l.wq, *s.xn, n, *s.q, false);
    project(m, l, LoraTarget::K, l.wk, *s.xn, n, *s.k, false);
    project(m, l, LoraTarget::V, l.wv, *s.xn, n, *s.v, false);
    if (c.qkv_bias) {
      vulkan::add(d, *s.q, 0, *l.bq, 0, n * c.q_width(), c.q_width());
      vulkan::add(d, *s.k, 0, *l.bk, 0, n * c.kv_width(), c.kv_width());
      vulkan::add(d, *s.v, 0, *l.bv, 0, n * c.kv_width(), c.kv_width());
    }
    if (c.qk_norm) {
      vulkan::rmsnorm(d, *s.q, 0, *l.q_norm, *s.q, 0, n * c.n_heads, hd, eps);
      vulkan::rmsnorm(d, *s.k, 0, *l.k_norm, *s.k, 0, n * c.n_kv_heads, hd, eps);
    }
    const bool adjacent = model.rope().adjacent_pairs();
    vulkan::rope(d, *s.q, *m.rope_table, *s.meta, n, c.n_heads, hd, c.q_width(), adjacent);
    vulkan::rope(d, *s.k, *m.rope_table, *s.meta, n, c.n_kv_heads, hd, c.kv_width(), adjacent);
    vulkan::kv_store(d, cache.type(), *kv.k[size_t(layer)], *s.k, *s.meta, n, c.kv_width(), cache.n_ctx());
    vulkan::kv_store(d, cache.type(), *kv.v[size_t(layer)], *s.v, *s.meta, n, c.kv_width(), cache.n_ctx());
    vulkan::attention(d, cache.type(), *s.q, *kv.k[size_t(layer)], *kv.v[size_t(layer)], *s.meta, *s.attn, n,
                      c.n_heads, c.n_kv_heads, hd, cache.n_ctx());
    project(m, l, LoraTarget::O, l.wo, *s.attn, n, *s.x, true);

    // Feed-forward block (SwiGLU): x += W_down (silu(W_gate xn) * W_up xn)
    vulkan::rmsnorm(d, *s.x, 0, *l.ffn_norm, *s.xn, 0, n, hidden, eps);
    project(m, l, LoraTarget::Gate, l.w_gate, *s.xn, n, *s.gate, false);
    project(m, l, LoraTarget::Up, l.w_up, *s.xn, n, *s.up, false);
    vulkan::silu_mul(d, *s.gate, *s.up, n * c.ffn_size);
    project(m, l, LoraTarget::Down, l.w_down, *s.gate, n, *s.x, true);
  }

  if (device_layers < c.n_layers) {  // partial offload: the hidden states go to the CPU for the rest
    std::vector<float> x(size_t(n * hidden));
    d.download(*s.x, 0, x.data(), uint64_t(n * hidden) * 4);
    return forward_from_layer(model, batch, cache, pool, x, device_layers, logits);
  }

  // Final norm and the output head, only for the rows that want logits.
  int64_t row = 0;
  for (int64_t t = 0; t < n; ++t)
    if (batch.want_logits[size_t(t)])
      d.copy(*s.x, uint64_t(t * hidden) * 4, *s.selected, uint64_t(row++ * hidden) * 4, uint64_t(hidden) * 4);
  logits.resize(size_t(n_out * c.vocab_size));
  if (n_out == 0) {
    d.finish();
    return;
  }
  vulkan::rmsnorm(d, *s.selected, 0, *m.output_norm, *s.selected, 0, n_out, hidden, eps);
  vulkan::matmul(d, *m.lm_head, *s.selected, 0, n_out, *s.logits, 0);
  d.download(*s.logits, 0, logits.data(), uint64_t(n_out * c.vocab_size) * 4);
}

void device_copy_prefix(KvCache& cache, int32_t from, int32_t to, int64_t n) {
  DeviceKvCache& kv = *cache.device();
  const std::lock_guard<std::mutex> lock(kv.model->mutex);
  const uint64_t row = uint64_t(row_bytes(cache.type(), cache.row_width()));
  const uint64_t seq = row * uint64_t(cache.n_ctx());
  for (size_t layer = 0; layer < kv.k.size(); ++layer) {
    kv.model->device().copy(*kv.k[layer], uint64_t(from) * seq, *kv.k[layer], uint64_t(to) * seq, uint64_t(n) * row);
    kv.model->device().copy(*kv.v[layer], uint64_t(from) * seq, *kv.v[layer], uint64_t(to) * seq, uint64_t(n) * row);
  }
}

}  // namespace csq
