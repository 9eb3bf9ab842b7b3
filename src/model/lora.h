// LoRA adapters (Hu et al. 2021): a projection y = W x becomes y = W x + scale · B (A x), with
// A [rank, in] and B [out, rank] small and W frozen. Read and written in PEFT's format
// (adapter_config.json + adapter_model.safetensors) and llama.cpp's LoRA GGUF; attached to a
// Model at run time (several at once, each with its own strength) or merged into its weights.
//
// In memory the adapter is always in Hugging Face row order; GGUF files of the llama
// architecture permute q/k rows for adjacent-pair RoPE, so B of q_proj/k_proj is permuted when
// reading or writing such a file and when attaching to such a model.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"

namespace csq {

// The seven projections of a decoder block LoRA can adapt, in PEFT's module names.
enum class LoraTarget { Q, K, V, O, Gate, Up, Down };
inline constexpr int kLoraTargetCount = 7;
const char* lora_target_name(LoraTarget target);       // "q_proj", ...
const char* lora_target_gguf_name(LoraTarget target);  // "attn_q", ...
// Throws csq::Error (Usage) for a name that is not one of the seven.
LoraTarget lora_target_from_name(const std::string& name);
// [out, in] of the projection for this model.
std::array<int64_t, 2> lora_target_shape(const ModelConfig& config, LoraTarget target);

struct LoraPair {
  std::vector<float> a;  // [rank, in], row-major; empty when the target is not adapted
  std::vector<float> b;  // [out, rank]
  bool empty() const { return a.empty(); }
};

struct LoraAdapter {
  int64_t rank = 0;
  double alpha = 0;
  bool rslora = false;  // scale alpha / sqrt(rank) instead of alpha / rank
  std::vector<LoraTarget> targets;
  // layers[l][target]: empty pairs where a target is not adapted.
  std::vector<std::array<LoraPair, kLoraTargetCount>> layers;

  // The factor in front of B A.
  double scale() const;
  // Zero-initialised (A and B) pairs for every target of every layer of `config`.
  static LoraAdapter zeros(const ModelConfig& config, int64_t rank, double alpha, bool rslora,
                           const std::vector<LoraTarget>& targets);
};

// PEFT adapter: `path` is a directory holding adapter_config.json and adapter_model.safetensors
// (F32, F16 or BF16). Checks every tensor's shape against `config`. Throws csq::Error naming the
// file and the field or tensor (DoRA, per-module rank/alpha patterns and bias training are
// refused by name).
LoraAdapter read_peft_adapter(const std::string& path, const ModelConfig& config);
// Writes adapter_config.json and adapter_model.safetensors (F32) into `dir`, with PEFT's names.
// `dropout` is recorded in adapter_config.json as the dropout the adapter was trained with.
void write_peft_adapter(const std::string& dir, const LoraAdapter& adapter, const ModelConfig& config,
                        const std::string& base_model_name, double dropout = 0);

// llama.cpp LoRA GGUF (general.type "adapter", adapter.type "lora", tensors
// blk.N.<name>.weight.lora_a / lora_b in F32, F16 or BF16).
LoraAdapter read_gguf_adapter(const std::string& path, const ModelConfig& config);
void write_gguf_adapter(const std::string& path, const LoraAdapter& adapter, const ModelConfig& config);

// Either format: a directory (PEFT), adapter_model.safetensors inside one, or a .gguf file.
LoraAdapter read_adapter(const std::string& path, const ModelConfig& config);

// An adapter as the forward pass uses it: B already in the model's row order, with the
// combined factor scale() · strength.
struct AttachedLora {
  std::shared_ptr<const LoraAdapter> adapter;
  float factor = 1;
};
// Prepares `adapter` for a model with `config` at `strength` (llama.cpp's --lora-scaled).
AttachedLora attach_lora(LoraAdapter adapter, const ModelConfig& config, float strength);

// "PATH" or "PATH:STRENGTH" (as --lora takes it): reads and attaches the adapter. Throws
// csq::Error naming the spec when the strength is not a number or the file is bad.
AttachedLora load_lora_spec(const std::string& spec, const ModelConfig& config);
// Every spec of a repeated --lora, in order.
std::vector<AttachedLora> load_lora_specs(const std::vector<std::string>& specs, const ModelConfig& config);

// Adds factor · (B A)[row, :] of `pair` to one row of the projection's weight (merging).
void lora_add_to_row(const LoraPair& pair, int64_t rank, int64_t in, float factor, int64_t row, float* values);

// Converts an adapter between Hugging Face row order and the model's (they differ only for llama
// GGUF files, whose q/k rows are permuted for adjacent-pair RoPE): B of q_proj and k_proj.
void convert_rotary_order(LoraAdapter& adapter, const ModelConfig& config, bool to_model_order);

// Permutes the rows of an [n_heads * head_dim, cols] matrix from Hugging Face's half-split rotary
// layout to the adjacent-pair layout of llama GGUF files (or back, `inverse`).
void permute_rotary_rows(float* rows, int64_t n_heads, int64_t head_dim, int64_t cols, bool inverse);

// y[t, :] += factor · B (A x[t, :]) for n_tokens rows; x [n, in], y [n, out].
void lora_apply(const LoraPair& pair, int64_t rank, int64_t in, int64_t out, float factor, const float* x,
                int64_t n_tokens, float* y);

}  // namespace csq
