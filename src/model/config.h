// Hyper-parameters of the supported decoder-only architectures, read from a Hugging Face
// config.json (transformers 4.x and 5.x forms) or from GGUF metadata.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace csq {
namespace io {
class GgufFile;
}

enum class Arch { Qwen3, Qwen2, Llama };
const char* arch_name(Arch arch);  // "qwen3", "qwen2", "llama" (the GGUF architecture keys)

struct RopeConfig {
  double theta = 10000.0;
  // Llama-3.x frequency scaling ("rope_type": "llama3"); factor == 0 means none.
  double llama3_factor = 0;
  double llama3_low_freq_factor = 1;
  double llama3_high_freq_factor = 4;
  double llama3_original_context = 8192;
  // GGUF files of the llama architecture store Q/K rows permuted for rotation of adjacent
  // pairs (x0,x1),(x2,x3)...; Hugging Face and qwen GGUFs rotate halves (x_i, x_{i+d/2}).
  bool adjacent_pairs = false;
};

struct ModelConfig {
  Arch arch = Arch::Qwen3;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_size = 0;
  int64_t max_context = 0;  // max_position_embeddings / GGUF context_length
  double rms_eps = 1e-6;
  RopeConfig rope;
  bool tied_embeddings = false;
  bool qk_norm = false;   // Qwen3: RMSNorm over each head of q and k before RoPE
  bool qkv_bias = false;  // Qwen2: biases on the q, k and v projections
  std::optional<int32_t> bos_id;
  std::vector<int32_t> eos_ids;  // every id that ends generation

  int64_t q_width() const { return n_heads * head_dim; }
  int64_t kv_width() const { return n_kv_heads * head_dim; }
};

// `source` names the file in error messages. Throws csq::Error for a missing or invalid field,
// an unsupported architecture or rope type, naming it.
ModelConfig config_from_hf(const nlohmann::json& config, const std::string& source);
ModelConfig config_from_gguf(const io::GgufFile& gguf);

// Checks internal consistency (positive sizes, heads divide evenly, ...); the error names `source`.
void validate_config(const ModelConfig& config, const std::string& source);

}  // namespace csq
