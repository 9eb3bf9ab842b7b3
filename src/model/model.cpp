#include "model/model.h"

#include "model/device_model.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace csq {
namespace {

std::string shape_str(int64_t rows, int64_t cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

// Looks tensors up by name in either checkpoint format and checks type and shape.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // A 2-D weight of shape [rows, cols] in HF order.
  virtual kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const = 0;
  // A 1-D vector decoded to float.
  virtual std::vector<float> vector(const std::string& name, int64_t n) const = 0;
  virtual bool has(const std::string& name) const = 0;
};

void require_weight_type(DType type, const std::string& where) {
  if (!dtype_info(type).weight_type)
    fail_input(where + " has type " + dtype_info(type).name + ", which cannot be used as a weight");
}

class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(const io::SafetensorsCheckpoint& ckpt) : ckpt_(ckpt) {}

  const io::SafetensorsTensor& get(const std::string& name) const {
    const io::SafetensorsTensor* t = ckpt_.find(name);
    if (!t) fail_input(ckpt_.dir() + ": required tensor '" + name + "' is missing");
    if (t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
      fail_input(ckpt_.dir() + ": tensor '" + name + "' has dtype " + dtype_info(t->dtype).name +
                 " (expected BF16, F16 or F32)");
    return *t;
  }
  kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const override {
    const auto& t = get(name);
    if (t.shape.size() != 2 || t.shape[0] != rows || t.shape[1] != cols)
      fail_input(ckpt_.dir() + ": tensor '" + name + "' has shape " + t.shape_string() + ", expected " +
                 shape_str(rows, cols));
    return {t.dtype, rows, cols, t.data};
  }
  std::vector<float> vector(const std::string& name, int64_t n) const override {
    const auto& t = get(name);
    if (t.shape.size() != 1 || t.shape[0] != n)
      fail_input(ckpt_.dir() + ": tensor '" + name + "' has shape " + t.shape_string() + ", expected [" +
                 std::to_string(n) + "]");
    return dequantize_vector(t.dtype, t.data, n);
  }
  bool has(const std::string& name) const override { return ckpt_.find(name) != nullptr; }

 private:
  const io::SafetensorsCheckpoint& ckpt_;
};

class GgufSource : public TensorSource {
 public:
  explicit GgufSource(const io::GgufFile& gguf) : gguf_(gguf) {}

  const io::GgufTensorInfo& get(const std::string& name) const {
    const io::GgufTensorInfo* t = gguf_.find_tensor(name);
    if (!t) fail_input(gguf_.path() + ": required tensor '" + name + "' is missing");
    require_weight_type(t->type, gguf_.path() + ": tensor '" + name + "'");
    return *t;
  }
  kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const override {
    const auto& t = get(name);
    if (t.dims.size() != 2 || t.dims[0] != cols || t.dims[1] != rows)
      fail_input(gguf_.path() + ": tensor '" + name + "' has dims " + dims_str(t.dims) + ", expected [" +
                 std::to_string(cols) + ", " + std::to_string(rows) + "] (ggml order)");
    return {t.type, rows, cols, t.data};
  }
  std::vector<float> vector(const std::string& name, int64_t n) const override {
    const auto& t = get(name);
    if (t.dims.size() != 1 || t.dims[0] != n)
      fail_input(gguf_.path() + ": tensor '" + name + "' has dims " + dims_str(t.dims) + ", expected [" +
                 std::to_string(n) + "]");
    return dequantize_vector(t.type, t.data, n);
  }
  bool has(const std::string& name) const override { return gguf_.find_tensor(name) != nullptr; }

 private:
  static std::string dims_str(const std::vector<int64_t>& dims) {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }
  const io::GgufFile& gguf_;
};

// Tensor names of one layer in each format.
struct LayerNames {
  std::string attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate, w_up, w_down;
};

LayerNames hf_names(int64_t layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  return {p + "input_layernorm.weight", p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
          p + "self_attn.v_proj.weight", p + "self_attn.o_proj.weight", p + "self_attn.q_proj.bias",
          p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias", p + "self_attn.q_norm.weight",
          p + "self_attn.k_norm.weight", p + "post_attention_layernorm.weight", p + "mlp.gate_proj.weight",
          p + "mlp.up_proj.weight", p + "mlp.down_proj.weight"};
}

LayerNames gguf_names(int64_t layer) {
  const std::string p = "blk." + std::to_string(layer) + ".";
  return {p + "attn_norm.weight", p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight",
          p + "attn_output.weight", p + "attn_q.bias", p + "attn_k.bias", p + "attn_v.bias",
          p + "attn_q_norm.weight", p + "attn_k_norm.weight", p + "ffn_norm.weight", p + "ffn_gate.weight",
          p + "ffn_up.weight", p + "ffn_down.weight"};
}

constexpr std::string LayerNames::*kLayerNameFields[] = {
    &LayerNames::attn_norm, &LayerNames::wq,     &LayerNames::wk,       &LayerNames::wv,
    &LayerNames::wo,        &LayerNames::bq,     &LayerNames::bk,       &LayerNames::bv,
    &LayerNames::q_norm,    &LayerNames::k_norm, &LayerNames::ffn_norm, &LayerNames::w_gate,
    &LayerNames::w_up,      &LayerNames::w_down};

void load_weights(const ModelConfig& c, const TensorSource& src, const std::string& embed_name,
                  const std::string& norm_name, const std::string& head_name,
                  LayerNames (*names)(int64_t), ModelWeights& w) {
  w.token_embedding = src.matrix(embed_name, c.vocab_size, c.hidden_size);
  w.output_norm = src.vector(norm_name, c.hidden_size);
  w.lm_head = c.tied_embeddings ? w.token_embedding : src.matrix(head_name, c.vocab_size, c.hidden_size);
  w.layers.resize(size_t(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerNames n = names(l);
    LayerWeights& lw = w.layers[size_t(l)];
    lw.attn_norm = src.vector(n.attn_norm, c.hidden_size);
    lw.wq = src.matrix(n.wq, c.q_width(), c.hidden_size);
    lw.wk = src.matrix(n.wk, c.kv_width(), c.hidden_size);
    lw.wv = src.matrix(n.wv, c.kv_width(), c.hidden_size);
    lw.wo = src.matrix(n.wo, c.hidden_size, c.q_width());
    if (c.qkv_bias) {
      lw.bq = src.vector(n.bq, c.q_width());
      lw.bk = src.vector(n.bk, c.kv_width());
      lw.bv = src.vector(n.bv, c.kv_width());
    }
    if (c.qk_norm) {
      lw.q_norm = src.vector(n.q_norm, c.head_dim);
      lw.k_norm = src.vector(n.k_norm, c.head_dim);
    }
    lw.ffn_norm = src.vector(n.ffn_norm, c.hidden_size);
    lw.w_gate = src.matrix(n.w_gate, c.ffn_size, c.hidden_size);
    lw.w_up = src.matrix(n.w_up, c.ffn_size, c.hidden_size);
    lw.w_down = src.matrix(n.w_down, c.hidden_size, c.ffn_size);
  }
}

// generation_config.json may add end-of-generation ids (Qwen3 instruct lists two).
void merge_generation_config(const std::string& dir, ModelConfig& c) {
  const std::string path = dir + "/generation_config.json";
  if (!io::file_exists(path)) return;
  nlohmann::json j = nlohmann::json::parse(io::read_text_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail_input(path + ": not a JSON object");
  auto add = [&](const nlohmann::json& v) {
    if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX &&
        std::find(c.eos_ids.begin(), c.eos_ids.end(), v.get<int32_t>()) == c.eos_ids.end())
      c.eos_ids.push_back(v.get<int32_t>());
  };
  if (j.contains("eos_token_id")) {
    if (j["eos_token_id"].is_array())
      for (const auto& v : j["eos_token_id"]) add(v);
    else
      add(j["eos_token_id"]);
  }
}

}  // namespace

std::string hf_tensor_name(const std::string& gguf_name) {
  if (gguf_name == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf_name == "output_norm.weight") return "model.norm.weight";
  if (gguf_name == "output.weight") return "lm_head.weight";
  if (gguf_name.rfind("blk.", 0) != 0) return "";
  const size_t dot = gguf_name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return "";
  int64_t layer = 0;
  for (size_t i = 4; i < dot; ++i) {
    if (gguf_name[i] < '0' || gguf_name[i] > '9' || layer > 1'000'000) return "";
    layer = layer * 10 + (gguf_name[i] - '0');
  }
  const LayerNames gguf = gguf_names(layer), hf = hf_names(layer);
  for (const auto field : kLayerNameFields)
    if (gguf.*field == gguf_name) return hf.*field;
  return "";
}

Model::~Model() = default;

void Model::set_device(std::unique_ptr<DeviceModel> device) { device_ = std::move(device); }

std::unique_ptr<Model> Model::load(const std::string& path, io::FileMemory memory) {
  std::unique_ptr<Model> model(new Model());
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) model->load_hf(path, memory);
  else if (std::filesystem::is_regular_file(path, ec)) model->load_gguf(path, memory);
  else fail_input(path + ": no such model (expected a Hugging Face model directory or a .gguf file)");
  model->finish();
  return model;
}

void Model::load_hf(const std::string& dir, io::FileMemory memory) {
  const std::string config_path = dir + "/config.json";
  if (!io::file_exists(config_path)) {
    if (io::file_exists(dir + "/adapter_config.json")) fail_input(dir + ": a LoRA adapter, not a model (pass it with --lora)");
    fail_input(dir + ": no config.json (not a Hugging Face model directory?)");
  }
  nlohmann::json j = nlohmann::json::parse(io::read_text_file(config_path), nullptr, false);
  if (j.is_discarded()) fail_input(config_path + ": invalid JSON");
  config_ = config_from_hf(j, config_path);
  merge_generation_config(dir, config_);
  safetensors_ = std::make_unique<io::SafetensorsCheckpoint>(dir, memory);
  // Some tied checkpoints still ship lm_head.weight; untied ones must.
  load_weights(config_, SafetensorsSource(*safetensors_), "model.embed_tokens.weight", "model.norm.weight",
               "lm_head.weight", hf_names, weights_);
  checkpoint_.format = CheckpointFormat::HuggingFace;
  checkpoint_.path = dir;
  for (const io::SafetensorsTensor* t : safetensors_->tensors()) {
    checkpoint_.parameter_count += t->n_elements();
    checkpoint_.tensor_types[dtype_info(t->dtype).name]++;
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors")
      checkpoint_.file_bytes += entry.file_size();
}

void Model::load_gguf(const std::string& path, io::FileMemory memory) {
  gguf_ = std::make_unique<io::GgufFile>(path, memory);
  config_ = config_from_gguf(*gguf_);
  load_weights(config_, GgufSource(*gguf_), "token_embd.weight", "output_norm.weight", "output.weight", gguf_names,
               weights_);
  checkpoint_.format = CheckpointFormat::Gguf;
  checkpoint_.path = path;
  checkpoint_.file_bytes = gguf_->file_size();
  for (const io::GgufTensorInfo& t : gguf_->tensors()) {
    checkpoint_.parameter_count += t.n_elements;
    checkpoint_.tensor_types[dtype_info(t.type).name]++;
  }
}

void Model::finish() {
  if (config_.vocab_size > int64_t(INT32_MAX)) fail_input(checkpoint_.path + ": vocabulary too large");
  const RopeConfig& r = config_.rope;
  rope_ = std::make_unique<kernels::Rope>(config_.head_dim, r.theta, r.llama3_factor, r.llama3_low_freq_factor,
                                          r.llama3_high_freq_factor, r.llama3_original_context, r.adjacent_pairs);
  // llama.cpp stores Llama-3 frequency scaling as a tensor of per-frequency divisors.
  if (gguf_ && gguf_->find_tensor("rope_freqs.weight"))
    rope_->divide_frequencies(GgufSource(*gguf_).vector("rope_freqs.weight", config_.head_dim / 2));
}

}  // namespace csq
