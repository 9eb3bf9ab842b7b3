#include "model/lora.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "kernels/ops.h"

namespace csq {
namespace {

constexpr std::array<const char*, kLoraTargetCount> kPeftNames = {"q_proj", "k_proj",    "v_proj",  "o_proj",
                                                                  "gate_proj", "up_proj", "down_proj"};
constexpr std::array<const char*, kLoraTargetCount> kGgufNames = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                                  "ffn_gate", "ffn_up", "ffn_down"};

bool is_attention(LoraTarget target) { return int(target) <= int(LoraTarget::O); }
bool is_rotary(LoraTarget target) { return target == LoraTarget::Q || target == LoraTarget::K; }

std::string peft_tensor_name(int64_t layer, LoraTarget target, char which) {
  return "base_model.model.model.layers." + std::to_string(layer) + (is_attention(target) ? ".self_attn." : ".mlp.") +
         lora_target_name(target) + ".lora_" + which + ".weight";
}

std::string gguf_tensor_name(int64_t layer, LoraTarget target, char which) {
  return "blk." + std::to_string(layer) + "." + lora_target_gguf_name(target) + ".weight.lora_" +
         char(which - 'A' + 'a');
}

std::vector<float> decode_tensor(DType type, const uint8_t* data, int64_t n, const std::string& where) {
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16)
    fail_input(where + " has type " + dtype_info(type).name + " (expected F32, F16 or BF16)");
  return dequantize_vector(type, data, n);
}

std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(float));
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

// Heads of the rotated projection: q has n_heads, k n_kv_heads.
int64_t rotary_heads(const ModelConfig& config, LoraTarget target) {
  return target == LoraTarget::Q ? config.n_heads : config.n_kv_heads;
}

// The adapter's rank from the first pair present, and every pair checked against it and the model.
void check_pair(const LoraPair& pair, int64_t rank, const ModelConfig& config, LoraTarget target,
                const std::string& where) {
  const auto [out, in] = lora_target_shape(config, target);
  if (int64_t(pair.a.size()) != rank * in || int64_t(pair.b.size()) != out * rank)
    fail_input(where + ": " + lora_target_name(target) + " expects A [" + std::to_string(rank) + ", " +
               std::to_string(in) + "] and B [" + std::to_string(out) + ", " + std::to_string(rank) +
               "] for this model, but holds " + std::to_string(pair.a.size()) + " and " +
               std::to_string(pair.b.size()) + " values (an adapter for another model?)");
}

}  // namespace

const char* lora_target_name(LoraTarget target) { return kPeftNames[size_t(target)]; }
const char* lora_target_gguf_name(LoraTarget target) { return kGgufNames[size_t(target)]; }

LoraTarget lora_target_from_name(const std::string& name) {
  for (int i = 0; i < kLoraTargetCount; ++i)
    if (name == kPeftNames[size_t(i)]) return LoraTarget(i);
  fail_usage("unknown LoRA target '" + name + "' (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj)");
}

std::array<int64_t, 2> lora_target_shape(const ModelConfig& c, LoraTarget target) {
  switch (target) {
    case LoraTarget::Q: return {c.q_width(), c.hidden_size};
    case LoraTarget::K:
    case LoraTarget::V: return {c.kv_width(), c.hidden_size};
    case LoraTarget::O: return {c.hidden_size, c.q_width()};
    case LoraTarget::Gate:
    case LoraTarget::Up: return {c.ffn_size, c.hidden_size};
    case LoraTarget::Down: return {c.hidden_size, c.ffn_size};
  }
  return {0, 0};
}

double LoraAdapter::scale() const { return rslora ? alpha / std::sqrt(double(rank)) : alpha / double(rank); }

LoraAdapter LoraAdapter::zeros(const ModelConfig& config, int64_t rank, double alpha, bool rslora,
                               const std::vector<LoraTarget>& targets) {
  if (rank <= 0) fail_usage("LoRA rank must be positive");
  if (targets.empty()) fail_usage("LoRA needs at least one target projection");
  LoraAdapter adapter;
  adapter.rank = rank;
  adapter.alpha = alpha;
  adapter.rslora = rslora;
  adapter.targets = targets;
  adapter.layers.resize(size_t(config.n_layers));
  for (auto& layer : adapter.layers)
    for (LoraTarget target : targets) {
      const auto [out, in] = lora_target_shape(config, target);
      layer[size_t(target)].a.assign(size_t(rank * in), 0.0f);
      layer[size_t(target)].b.assign(size_t(out * rank), 0.0f);
    }
  return adapter;
}

void permute_rotary_rows(float* rows, int64_t n_heads, int64_t head_dim, int64_t cols, bool inverse) {
  const int64_t half = head_dim / 2;
  std::vector<float> head(size_t(head_dim * cols));
  for (int64_t h = 0; h < n_heads; ++h) {
    float* base = rows + h * head_dim * cols;
    std::memcpy(head.data(), base, head.size() * sizeof(float));
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t split = j * half + i, adjacent = 2 * i + j;
        const int64_t from = inverse ? adjacent : split, to = inverse ? split : adjacent;
        std::memcpy(base + to * cols, head.data() + from * cols, size_t(cols) * sizeof(float));
      }
  }
}

LoraAdapter read_peft_adapter(const std::string& path, const ModelConfig& config) {
  namespace fs = std::filesystem;
  const std::string dir = fs::is_directory(path) ? path : fs::path(path).parent_path().string();
  const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
  const std::string weights_path = (fs::path(dir) / "adapter_model.safetensors").string();
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(io::read_text_file(config_path));
  } catch (const nlohmann::json::exception& e) {
    fail_input(config_path + ": not valid JSON: " + e.what());
  }
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!cfg.contains(key)) fail_input(config_path + ": missing field '" + key + "'");
    return cfg[key];
  };
  auto wrong_type = [&](const char* key, const char* expected) {
    fail_input(config_path + ": field '" + key + "' must be " + expected);
  };
  if (cfg.value("peft_type", "LORA") != "LORA")
    fail_input(config_path + ": peft_type is '" + cfg["peft_type"].get<std::string>() + "' (only LORA is supported)");
  if (cfg.value("use_dora", false)) fail_input(config_path + ": DoRA adapters (use_dora) are not supported");
  for (const char* pattern : {"rank_pattern", "alpha_pattern"})
    if (cfg.contains(pattern) && cfg[pattern].is_object() && !cfg[pattern].empty())
      fail_input(config_path + ": per-module " + pattern + " is not supported");
  if (cfg.contains("bias") && cfg["bias"].is_string() && cfg["bias"] != "none")
    fail_input(config_path + ": trained biases (bias = " + cfg["bias"].get<std::string>() + ") are not supported");
  if (cfg.value("fan_in_fan_out", false)) fail_input(config_path + ": fan_in_fan_out adapters are not supported");

  LoraAdapter adapter;
  try {
    if (!field("r").is_number_integer()) wrong_type("r", "an integer");
    adapter.rank = field("r").get<int64_t>();
    if (!field("lora_alpha").is_number()) wrong_type("lora_alpha", "a number");
    adapter.alpha = field("lora_alpha").get<double>();
    adapter.rslora = cfg.value("use_rslora", false);
    const auto& modules = field("target_modules");
    if (modules.is_string()) fail_input(config_path + ": target_modules as a regular expression is not supported");
    if (!modules.is_array()) wrong_type("target_modules", "a list of module names");
    for (const auto& m : modules) {
      if (!m.is_string()) wrong_type("target_modules", "a list of module names");
      const std::string name = m.get<std::string>();
      try {
        adapter.targets.push_back(lora_target_from_name(name));
      } catch (const Error&) {
        fail_input(config_path + ": target module '" + name + "' is not one of the seven decoder projections");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail_input(config_path + ": wrong field type: " + e.what());
  }
  if (adapter.rank <= 0) fail_input(config_path + ": r must be positive");

  const io::SafetensorsFile file(weights_path);
  adapter.layers.resize(size_t(config.n_layers));
  size_t used = 0;
  for (int64_t layer = 0; layer < config.n_layers; ++layer)
    for (LoraTarget target : adapter.targets) {
      LoraPair& pair = adapter.layers[size_t(layer)][size_t(target)];
      for (char which : {'A', 'B'}) {
        const std::string name = peft_tensor_name(layer, target, which);
        const io::SafetensorsTensor* t = file.find(name);
        // PEFT may save the name without the adapter's ".default" infix; older versions with it.
        if (!t) t = file.find(name.substr(0, name.size() - 7) + ".default.weight");
        if (!t) fail_input(weights_path + ": tensor '" + name + "' is missing");
        (which == 'A' ? pair.a : pair.b) = decode_tensor(t->dtype, t->data, t->n_elements(), weights_path + ": " + name);
        ++used;
      }
      check_pair(pair, adapter.rank, config, target, weights_path + " layer " + std::to_string(layer));
    }
  if (used != file.tensors().size())
    fail_input(weights_path + ": holds " + std::to_string(file.tensors().size()) + " tensors, of which only " +
               std::to_string(used) + " are LoRA A/B weights of this model's layers (embedding or bias training is not supported)");
  return adapter;
}

void write_peft_adapter(const std::string& dir, const LoraAdapter& adapter, const ModelConfig& config,
                        const std::string& base_model_name, double dropout) {
  std::filesystem::create_directories(dir);
  std::vector<io::SafetensorsOutput> tensors;
  for (int64_t layer = 0; layer < int64_t(adapter.layers.size()); ++layer)
    for (LoraTarget target : adapter.targets) {
      const LoraPair& pair = adapter.layers[size_t(layer)][size_t(target)];
      const auto [out, in] = lora_target_shape(config, target);
      tensors.push_back({peft_tensor_name(layer, target, 'A'), DType::F32, {adapter.rank, in}, float_bytes(pair.a)});
      tensors.push_back({peft_tensor_name(layer, target, 'B'), DType::F32, {out, adapter.rank}, float_bytes(pair.b)});
    }
  io::write_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});

  nlohmann::ordered_json cfg;
  cfg["base_model_name_or_path"] = base_model_name;
  cfg["bias"] = "none";
  cfg["fan_in_fan_out"] = false;
  cfg["inference_mode"] = true;
  cfg["init_lora_weights"] = true;
  cfg["lora_alpha"] = adapter.alpha;
  cfg["lora_dropout"] = dropout;
  cfg["modules_to_save"] = nullptr;
  cfg["peft_type"] = "LORA";
  cfg["r"] = adapter.rank;
  cfg["rank_pattern"] = nlohmann::ordered_json::object();
  cfg["alpha_pattern"] = nlohmann::ordered_json::object();
  cfg["target_modules"] = nlohmann::ordered_json::array();
  for (LoraTarget target : adapter.targets) cfg["target_modules"].push_back(lora_target_name(target));
  cfg["task_type"] = "CAUSAL_LM";
  cfg["use_dora"] = false;
  cfg["use_rslora"] = adapter.rslora;
  std::ofstream out(dir + "/adapter_config.json");
  out << cfg.dump(2) << "\n";
  if (!out) fail_runtime(dir + "/adapter_config.json: cannot write");
}

LoraAdapter read_gguf_adapter(const std::string& path, const ModelConfig& config) {
  const io::GgufFile file(path);
  if (file.get_string_opt("general.type").value_or("") != "adapter" ||
      file.get_string_opt("adapter.type").value_or("") != "lora")
    fail_input(path + ": not a LoRA adapter GGUF (general.type must be 'adapter' and adapter.type 'lora')");
  const std::string arch = file.get_string("general.architecture");
  if (arch != arch_name(config.arch))
    fail_input(path + ": adapter for architecture '" + arch + "', but the model is '" + arch_name(config.arch) + "'");
  LoraAdapter adapter;
  adapter.alpha = file.get_float_opt("adapter.lora.alpha").value_or(0);
  adapter.layers.resize(size_t(config.n_layers));
  size_t used = 0;
  for (int t = 0; t < kLoraTargetCount; ++t) {
    const LoraTarget target = LoraTarget(t);
    bool present = false;
    for (int64_t layer = 0; layer < config.n_layers; ++layer) {
      const io::GgufTensorInfo* a = file.find_tensor(gguf_tensor_name(layer, target, 'A'));
      const io::GgufTensorInfo* b = file.find_tensor(gguf_tensor_name(layer, target, 'B'));
      if (!a && !b) continue;
      const std::string where = path + ": " + gguf_tensor_name(layer, target, 'A');
      if (!a || !b) fail_input(where + ": lora_a and lora_b must come in pairs");
      if (a->dims.size() != 2 || b->dims.size() != 2 || a->dims[1] != b->dims[0])
        fail_input(where + ": lora_a [in, rank] and lora_b [rank, out] (ggml order) disagree on the rank");
      if (adapter.rank == 0) adapter.rank = a->dims[1];
      if (a->dims[1] != adapter.rank) fail_input(where + ": every pair must have the same rank");
      LoraPair& pair = adapter.layers[size_t(layer)][size_t(t)];
      pair.a = decode_tensor(a->type, a->data, a->n_elements, where);
      pair.b = decode_tensor(b->type, b->data, b->n_elements, where);
      check_pair(pair, adapter.rank, config, target, where);
      if (config.rope.adjacent_pairs && is_rotary(target))
        permute_rotary_rows(pair.b.data(), rotary_heads(config, target), config.head_dim, adapter.rank, true);
      present = true;
      used += 2;
    }
    if (present) adapter.targets.push_back(target);
  }
  if (adapter.targets.empty()) fail_input(path + ": no LoRA tensors for this model's layers");
  for (int64_t layer = 0; layer < config.n_layers; ++layer)
    for (LoraTarget target : adapter.targets)
      if (adapter.layers[size_t(layer)][size_t(target)].empty())
        fail_input(path + ": layer " + std::to_string(layer) + " has no " + lora_target_gguf_name(target) +
                   " pair although other layers do");
  if (used != file.tensors().size())
    fail_input(path + ": holds tensors that are not LoRA pairs of this model's layers");
  if (adapter.alpha == 0) adapter.alpha = double(adapter.rank);  // llama.cpp: no alpha means scale 1
  return adapter;
}

void write_gguf_adapter(const std::string& path, const LoraAdapter& adapter, const ModelConfig& config) {
  if (adapter.rslora)
    fail_usage("llama.cpp's LoRA GGUF has no rank-stabilised scaling; merge the adapter or use the PEFT format");
  io::GgufWriter writer;
  writer.set_string("general.architecture", arch_name(config.arch));
  writer.set_string("general.type", "adapter");
  writer.set_string("adapter.type", "lora");
  writer.set_f32("adapter.lora.alpha", float(adapter.alpha));
  for (int64_t layer = 0; layer < int64_t(adapter.layers.size()); ++layer)
    for (LoraTarget target : adapter.targets) {
      const LoraPair& pair = adapter.layers[size_t(layer)][size_t(target)];
      const auto [out, in] = lora_target_shape(config, target);
      std::vector<float> b = pair.b;
      if (config.rope.adjacent_pairs && is_rotary(target))
        permute_rotary_rows(b.data(), rotary_heads(config, target), config.head_dim, adapter.rank, false);
      writer.add_tensor(gguf_tensor_name(layer, target, 'A'), DType::F32, {in, adapter.rank}, float_bytes(pair.a));
      writer.add_tensor(gguf_tensor_name(layer, target, 'B'), DType::F32, {adapter.rank, out}, float_bytes(b));
    }
  writer.write(path);
}

LoraAdapter read_adapter(const std::string& path, const ModelConfig& config) {
  if (std::filesystem::is_regular_file(path) && std::filesystem::path(path).extension() == ".gguf")
    return read_gguf_adapter(path, config);
  if (!std::filesystem::exists(path)) fail_input(path + ": no such LoRA adapter (a PEFT directory or a .gguf file)");
  return read_peft_adapter(path, config);
}

void convert_rotary_order(LoraAdapter& adapter, const ModelConfig& config, bool to_model_order) {
  if (!config.rope.adjacent_pairs) return;
  for (auto& layer : adapter.layers)
    for (LoraTarget target : {LoraTarget::Q, LoraTarget::K})
      if (!layer[size_t(target)].empty())
        permute_rotary_rows(layer[size_t(target)].b.data(), rotary_heads(config, target), config.head_dim, adapter.rank,
                            !to_model_order);
}

AttachedLora attach_lora(LoraAdapter adapter, const ModelConfig& config, float strength) {
  if (int64_t(adapter.layers.size()) != config.n_layers)
    fail_input("the LoRA adapter has " + std::to_string(adapter.layers.size()) + " layers, the model " +
               std::to_string(config.n_layers));
  convert_rotary_order(adapter, config, true);
  const float factor = float(adapter.scale()) * strength;
  return {std::make_shared<const LoraAdapter>(std::move(adapter)), factor};
}

AttachedLora load_lora_spec(const std::string& spec, const ModelConfig& config) {
  std::string path = spec;
  float strength = 1.0f;
  if (const size_t colon = spec.rfind(':'); colon != std::string::npos && !std::filesystem::exists(spec)) {
    path = spec.substr(0, colon);
    const std::string number = spec.substr(colon + 1);
    try {
      size_t used = 0;
      strength = std::stof(number, &used);
      if (used != number.size() || !std::isfinite(strength)) throw std::invalid_argument(number);
    } catch (const std::exception&) {
      fail_usage("--lora " + spec + ": the strength after ':' must be a number, not '" + number + "'");
    }
  }
  return attach_lora(read_adapter(path, config), config, strength);
}

std::vector<AttachedLora> load_lora_specs(const std::vector<std::string>& specs, const ModelConfig& config) {
  std::vector<AttachedLora> adapters;
  for (const std::string& spec : specs) adapters.push_back(load_lora_spec(spec, config));
  return adapters;
}

void lora_add_to_row(const LoraPair& pair, int64_t rank, int64_t in, float factor, int64_t row, float* values) {
  const float* b = pair.b.data() + row * rank;
  for (int64_t r = 0; r < rank; ++r) {
    const float coef = factor * b[r];
    const float* a = pair.a.data() + r * in;
    for (int64_t c = 0; c < in; ++c) values[c] += coef * a[c];
  }
}

void lora_apply(const LoraPair& pair, int64_t rank, int64_t in, int64_t out, float factor, const float* x,
                int64_t n_tokens, float* y) {
  std::vector<float> ax(static_cast<size_t>(rank));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x + t * in;
    for (int64_t r = 0; r < rank; ++r) ax[size_t(r)] = kernels::dot(pair.a.data() + r * in, xt, in) * factor;
    float* yt = y + t * out;
    for (int64_t o = 0; o < out; ++o) {
      const float* b = pair.b.data() + o * rank;
      float sum = 0;
      for (int64_t r = 0; r < rank; ++r) sum += b[r] * ax[size_t(r)];
      yt[o] += sum;
    }
  }
}

}  // namespace csq
