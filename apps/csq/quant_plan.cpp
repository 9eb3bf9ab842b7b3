#include "quant_plan.h"

#include <cmath>
#include <numbers>

#include "base/error.h"

namespace csq::app {
namespace {

constexpr FileType kFileTypes[] = {
    {"F32", 0, DType::F32, false},     {"F16", 1, DType::F16, false},     {"BF16", 32, DType::BF16, false}, {"Q8_0", 7, DType::Q8_0, false},
    {"Q4_0", 2, DType::Q4_0, false},   {"Q4_K_M", 15, DType::Q4_K, true}, {"Q5_K_M", 17, DType::Q5_K, true},
    {"Q6_K", 18, DType::Q6_K, false},
};

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between.
bool use_more_bits(int64_t layer, int64_t n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

bool is_k_quant(DType t) {
  return t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

const FileType& parse_file_type(const std::string& name) {
  for (const FileType& ft : kFileTypes)
    if (name == ft.name) return ft;
  fail_usage("unknown type '" + name + "' (expected one of " + file_type_names() + ")");
}

std::string file_type_names() {
  std::string s;
  for (const FileType& ft : kFileTypes) s += (s.empty() ? "" : ", ") + std::string(ft.name);
  return s;
}

const char* file_type_name(uint32_t ftype) {
  for (const FileType& ft : kFileTypes)
    if (ft.ftype == ftype) return ft.name;
  return nullptr;
}

std::vector<PlannedTensor> plan_tensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.q_width(), kv = c.kv_width(), f = c.ffn_size;
  std::vector<PlannedTensor> out;
  // Global tensors sorted by name, as llama.cpp's loader orders them.
  if (!c.tied_embeddings) out.push_back({"output.weight", {h, c.vocab_size}});
  out.push_back({"output_norm.weight", {h}});
  if (c.rope.llama3_factor > 0) out.push_back({"rope_freqs.weight", {c.head_dim / 2}});
  out.push_back({"token_embd.weight", {h, c.vocab_size}});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    auto add = [&](const std::string& n, std::vector<int64_t> dims) { out.push_back({p + n, std::move(dims), l}); };
    if (c.qkv_bias) add("attn_k.bias", {kv});
    add("attn_k.weight", {h, kv});
    if (c.qk_norm) add("attn_k_norm.weight", {c.head_dim});
    add("attn_norm.weight", {h});
    add("attn_output.weight", {q, h});
    if (c.qkv_bias) add("attn_q.bias", {q});
    add("attn_q.weight", {h, q});
    if (c.qk_norm) add("attn_q_norm.weight", {c.head_dim});
    if (c.qkv_bias) add("attn_v.bias", {kv});
    add("attn_v.weight", {h, kv});
    add("ffn_down.weight", {f, h});
    add("ffn_gate.weight", {h, f});
    add("ffn_norm.weight", {h});
    add("ffn_up.weight", {h, f});
  }
  return out;
}

DType tensor_type(const FileType& ft, const ModelConfig& c, const PlannedTensor& t) {
  if (t.dims.size() < 2) return DType::F32;  // norms, biases and rope factors stay float
  if (!ft.mixed && (ft.base == DType::F32 || ft.base == DType::F16 || ft.base == DType::BF16)) return ft.base;
  DType type = ft.base;
  const bool is_output = t.name == "output.weight" || (c.tied_embeddings && t.name == "token_embd.weight");
  if (is_output) {
    if (t.dims[0] % 256 != 0) type = DType::Q8_0;
    else if (type != DType::Q8_0) type = DType::Q6_K;
  } else if (ft.mixed && (ends_with(t.name, ".attn_v.weight") || ends_with(t.name, ".ffn_down.weight"))) {
    if (use_more_bits(t.layer, c.n_layers)) type = DType::Q6_K;
  }
  // Rows that are not whole 256-element super-blocks fall back as llama-quantize does.
  if (is_k_quant(type) && t.dims[0] % 256 != 0) {
    switch (type) {
      case DType::Q4_K: type = DType::Q5_0; break;
      case DType::Q5_K: type = DType::Q5_1; break;
      case DType::Q6_K: type = DType::Q8_0; break;
      default: fail_input(t.name + ": row length " + std::to_string(t.dims[0]) + " does not fit " + dtype_info(type).name);
    }
  }
  return type;
}

void write_metadata(io::GgufWriter& w, const ModelConfig& c, const std::string& model_name, const FileType& ft) {
  const std::string a = arch_name(c.arch);
  w.set_string("general.architecture", a);
  w.set_string("general.name", model_name);
  w.set_u32(a + ".block_count", uint32_t(c.n_layers));
  w.set_u32(a + ".context_length", uint32_t(c.max_context > 0 ? c.max_context : 4096));
  w.set_u32(a + ".embedding_length", uint32_t(c.hidden_size));
  w.set_u32(a + ".feed_forward_length", uint32_t(c.ffn_size));
  w.set_u32(a + ".attention.head_count", uint32_t(c.n_heads));
  w.set_u32(a + ".attention.head_count_kv", uint32_t(c.n_kv_heads));
  w.set_u32(a + ".attention.key_length", uint32_t(c.head_dim));
  w.set_u32(a + ".attention.value_length", uint32_t(c.head_dim));
  if (c.arch == Arch::Llama) {
    w.set_u32(a + ".vocab_size", uint32_t(c.vocab_size));
    w.set_u32(a + ".rope.dimension_count", uint32_t(c.head_dim));
  }
  w.set_f32(a + ".rope.freq_base", float(c.rope.theta));
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", float(c.rms_eps));
  w.set_u32("general.file_type", ft.ftype);
  if (ft.base != DType::F32 && ft.base != DType::F16 && ft.base != DType::BF16) w.set_u32("general.quantization_version", 2);
}

std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeConfig& r = c.rope;
  const double low_wavelen = r.llama3_original_context / r.llama3_low_freq_factor;
  const double high_wavelen = r.llama3_original_context / r.llama3_high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    // float32 frequencies, as the converter computes them with torch.
    const float freq = 1.0f / std::pow(float(r.theta), float(2 * i) / float(c.head_dim));
    const double wavelen = 2 * std::numbers::pi / double(freq);
    if (wavelen < high_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      factors.push_back(float(r.llama3_factor));
    } else {
      const double smooth = (r.llama3_original_context / wavelen - r.llama3_low_freq_factor) /
                            (r.llama3_high_freq_factor - r.llama3_low_freq_factor);
      factors.push_back(float(1.0 / ((1 - smooth) / r.llama3_factor + smooth)));
    }
  }
  return factors;
}

}  // namespace csq::app
