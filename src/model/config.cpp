#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"

namespace csq {
namespace {

using json = nlohmann::json;

bool has(const json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

int64_t get_int(const json& j, const char* key, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) fail_input(source + ": missing required field '" + key + "'");
  if (!it->is_number_integer()) fail_input(source + ": field '" + key + "' must be an integer");
  return it->get<int64_t>();
}

double get_number(const json& j, const char* key, double fallback, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail_input(source + ": field '" + key + "' must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) fail_input(source + ": field '" + key + "' is not finite");
  return v;
}

std::string get_string(const json& j, const char* key, const std::string& fallback, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail_input(source + ": field '" + key + "' must be a string");
  return it->get<std::string>();
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail_input(source + ": field '" + key + "' must be true or false");
  return it->get<bool>();
}

int32_t checked_id(const json& v, const std::string& source, const char* key) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
    fail_input(source + ": '" + key + "' holds an invalid token id");
  return int32_t(v.get<int64_t>());
}

// eos_token_id may be an integer or a list of integers.
std::vector<int32_t> read_ids(const json& value, const std::string& source, const char* key) {
  std::vector<int32_t> ids;
  if (value.is_number_integer()) {
    ids.push_back(checked_id(value, source, key));
  } else if (value.is_array()) {
    for (const auto& v : value) {
      if (!v.is_number_integer()) fail_input(source + ": '" + key + "' must hold integers");
      ids.push_back(checked_id(v, source, key));
    }
  } else if (!value.is_null()) {
    fail_input(source + ": '" + key + "' must be an integer or a list of integers");
  }
  return ids;
}

void read_rope(const json& params, RopeConfig& rope, const std::string& source) {
  // "type" is the key of transformers < 4.45.
  const std::string type = get_string(params, "rope_type", get_string(params, "type", "default", source), source);
  if (type == "default") return;
  if (type != "llama3")
    fail_input(source + ": rope type '" + type + "' is not supported (supported: default, llama3)");
  rope.llama3_factor = get_number(params, "factor", 0, source);
  rope.llama3_low_freq_factor = get_number(params, "low_freq_factor", 1, source);
  rope.llama3_high_freq_factor = get_number(params, "high_freq_factor", 4, source);
  rope.llama3_original_context = get_number(params, "original_max_position_embeddings", 8192, source);
  if (rope.llama3_factor <= 0 || rope.llama3_high_freq_factor <= rope.llama3_low_freq_factor)
    fail_input(source + ": llama3 rope scaling needs factor > 0 and high_freq_factor > low_freq_factor");
}

}  // namespace

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::Qwen3: return "qwen3";
    case Arch::Qwen2: return "qwen2";
    case Arch::Llama: return "llama";
  }
  return "?";
}

ModelConfig config_from_hf(const json& j, const std::string& source) {
  if (!j.is_object()) fail_input(source + ": expected a JSON object");
  ModelConfig c;
  const std::string model_type = get_string(j, "model_type", "", source);
  if (model_type == "qwen3") c.arch = Arch::Qwen3;
  else if (model_type == "qwen2") c.arch = Arch::Qwen2;
  else if (model_type == "llama") c.arch = Arch::Llama;
  else
    fail_input(source + ": model_type '" + model_type + "' is not supported (supported: qwen3, qwen2, llama)");

  c.vocab_size = get_int(j, "vocab_size", source);
  c.hidden_size = get_int(j, "hidden_size", source);
  c.n_layers = get_int(j, "num_hidden_layers", source);
  c.n_heads = get_int(j, "num_attention_heads", source);
  c.n_kv_heads = has(j, "num_key_value_heads") ? get_int(j, "num_key_value_heads", source) : c.n_heads;
  c.ffn_size = get_int(j, "intermediate_size", source);
  c.head_dim = has(j, "head_dim") ? get_int(j, "head_dim", source) : (c.n_heads > 0 ? c.hidden_size / c.n_heads : 0);
  c.max_context = has(j, "max_position_embeddings") ? get_int(j, "max_position_embeddings", source) : 0;
  c.rms_eps = get_number(j, "rms_norm_eps", 1e-6, source);
  c.tied_embeddings = get_bool(j, "tie_word_embeddings", false, source);  // the default of all three config classes
  c.qk_norm = c.arch == Arch::Qwen3;
  c.qkv_bias = c.arch == Arch::Qwen2 || get_bool(j, "attention_bias", false, source);
  if (const std::string act = get_string(j, "hidden_act", "silu", source); act != "silu")
    fail_input(source + ": hidden_act '" + act + "' is not supported (expected silu)");
  if (get_bool(j, "mlp_bias", false, source)) fail_input(source + ": mlp_bias = true is not supported");

  // transformers 5.x keeps theta and scaling in rope_parameters; 4.x has rope_theta and rope_scaling.
  if (has(j, "rope_parameters")) {
    if (!j["rope_parameters"].is_object()) fail_input(source + ": 'rope_parameters' must be an object");
    const json& p = j["rope_parameters"];
    c.rope.theta = get_number(p, "rope_theta", get_number(j, "rope_theta", 10000.0, source), source);
    read_rope(p, c.rope, source);
  } else {
    c.rope.theta = get_number(j, "rope_theta", 10000.0, source);
    if (has(j, "rope_scaling")) {
      if (!j["rope_scaling"].is_object()) fail_input(source + ": 'rope_scaling' must be an object");
      read_rope(j["rope_scaling"], c.rope, source);
    }
  }
  if (get_bool(j, "use_sliding_window", false, source))
    fail_input(source + ": sliding-window attention is not supported");

  if (j.contains("bos_token_id")) {
    auto ids = read_ids(j["bos_token_id"], source, "bos_token_id");
    if (!ids.empty()) c.bos_id = ids[0];
  }
  if (j.contains("eos_token_id")) c.eos_ids = read_ids(j["eos_token_id"], source, "eos_token_id");
  validate_config(c, source);
  return c;
}

ModelConfig config_from_gguf(const io::GgufFile& g) {
  const std::string source = g.path();
  ModelConfig c;
  if (g.get_string_opt("general.type") == "adapter") fail_input(source + ": a LoRA adapter, not a model (pass it with --lora)");
  const std::string arch = g.get_string("general.architecture");
  if (arch == "qwen3") c.arch = Arch::Qwen3;
  else if (arch == "qwen2") c.arch = Arch::Qwen2;
  else if (arch == "llama") c.arch = Arch::Llama;
  else fail_input(source + ": architecture '" + arch + "' is not supported (supported: qwen3, qwen2, llama)");

  auto need_int = [&](const std::string& key) {
    auto v = g.get_int_opt(arch + "." + key);
    if (!v) fail_input(source + ": required metadata '" + arch + "." + key + "' is missing");
    return *v;
  };
  c.hidden_size = need_int("embedding_length");
  c.n_layers = need_int("block_count");
  c.ffn_size = need_int("feed_forward_length");
  c.n_heads = need_int("attention.head_count");
  c.n_kv_heads = g.get_int_opt(arch + ".attention.head_count_kv").value_or(c.n_heads);
  c.head_dim = g.get_int_opt(arch + ".attention.key_length").value_or(c.n_heads > 0 ? c.hidden_size / c.n_heads : 0);
  if (auto v = g.get_int_opt(arch + ".attention.value_length"); v && *v != c.head_dim)
    fail_input(source + ": attention.value_length " + std::to_string(*v) + " differs from key_length " +
               std::to_string(c.head_dim) + " (not supported)");
  c.max_context = g.get_int_opt(arch + ".context_length").value_or(0);
  c.rms_eps = g.get_float_opt(arch + ".attention.layer_norm_rms_epsilon").value_or(1e-6);
  c.rope.theta = g.get_float_opt(arch + ".rope.freq_base").value_or(10000.0);
  c.rope.adjacent_pairs = c.arch == Arch::Llama;
  if (auto scaling = g.get_string_opt(arch + ".rope.scaling.type"); scaling && *scaling != "none")
    fail_input(source + ": rope scaling type '" + *scaling + "' is not supported");
  c.qk_norm = c.arch == Arch::Qwen3;
  c.qkv_bias = c.arch == Arch::Qwen2;

  // The vocabulary size: the explicit key, else the embedding matrix.
  if (auto v = g.get_int_opt(arch + ".vocab_size")) c.vocab_size = *v;
  else if (const auto* emb = g.find_tensor("token_embd.weight"); emb && emb->dims.size() == 2) c.vocab_size = emb->dims[1];
  else fail_input(source + ": cannot tell the vocabulary size (no " + arch + ".vocab_size and no token_embd.weight)");
  c.tied_embeddings = g.find_tensor("output.weight") == nullptr;

  if (auto v = g.get_int_opt("tokenizer.ggml.bos_token_id")) c.bos_id = int32_t(*v);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (auto v = g.get_int_opt(key))
      if (std::find(c.eos_ids.begin(), c.eos_ids.end(), int32_t(*v)) == c.eos_ids.end()) c.eos_ids.push_back(int32_t(*v));
  validate_config(c, source);
  return c;
}

void validate_config(const ModelConfig& c, const std::string& source) {
  auto positive = [&](int64_t v, const char* what, int64_t limit) {
    if (v <= 0 || v > limit)
      fail_input(source + ": " + what + " = " + std::to_string(v) + " (expected 1.." + std::to_string(limit) + ")");
  };
  positive(c.vocab_size, "vocabulary size", 1 << 24);
  positive(c.hidden_size, "hidden size", 1 << 18);
  positive(c.n_layers, "layer count", 1024);
  positive(c.n_heads, "attention head count", 1024);
  positive(c.n_kv_heads, "key/value head count", 1024);
  positive(c.head_dim, "head dimension", 4096);
  positive(c.ffn_size, "feed-forward size", 1 << 20);
  if (c.n_heads % c.n_kv_heads != 0)
    fail_input(source + ": " + std::to_string(c.n_heads) + " attention heads are not a multiple of " +
               std::to_string(c.n_kv_heads) + " key/value heads");
  if (c.head_dim % 2 != 0) fail_input(source + ": head dimension " + std::to_string(c.head_dim) + " is odd");
  if (!(c.rms_eps > 0) || !(c.rope.theta > 0)) fail_input(source + ": rms_norm_eps and rope theta must be positive");
  for (int32_t id : c.eos_ids)
    if (id < 0) fail_input(source + ": negative end-of-generation id " + std::to_string(id));
}

}  // namespace csq
