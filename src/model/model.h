// A loaded decoder model: configuration plus weights used in place from the checkpoint's
// memory map (stored type kept; only the small norm and bias vectors are decoded to float).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/lora.h"

namespace csq {
namespace io {
class GgufFile;
class SafetensorsCheckpoint;
}  // namespace io
class DeviceModel;

struct LayerWeights {
  std::vector<float> attn_norm;        // [hidden]
  kernels::Matrix wq, wk, wv, wo;      // [q_width, hidden], [kv_width, hidden] x2, [hidden, q_width]
  std::vector<float> bq, bk, bv;       // Qwen2 only
  std::vector<float> q_norm, k_norm;   // Qwen3 only, [head_dim]
  std::vector<float> ffn_norm;         // [hidden]
  kernels::Matrix w_gate, w_up, w_down;  // [ffn, hidden] x2, [hidden, ffn]
};

struct ModelWeights {
  kernels::Matrix token_embedding;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> output_norm;   // [hidden]
  kernels::Matrix lm_head;          // [vocab, hidden]; the embedding itself when tied
};

enum class CheckpointFormat { HuggingFace, Gguf };

// What `csq info` reports about the checkpoint itself.
struct CheckpointInfo {
  CheckpointFormat format = CheckpointFormat::HuggingFace;
  std::string path;
  uint64_t file_bytes = 0;
  int64_t parameter_count = 0;
  std::map<std::string, int> tensor_types;  // type name -> tensor count
};

// The Hugging Face name of a tensor that llama.cpp names `gguf_name` ("blk.3.ffn_up.weight" ->
// "model.layers.3.mlp.up_proj.weight"), or "" where a Hugging Face checkpoint has no such tensor.
std::string hf_tensor_name(const std::string& gguf_name);

class Model {
 public:
  // `path`: a Hugging Face model directory or a .gguf file. Throws csq::Error naming the file
  // and the tensor or field that is missing or wrong. `memory`: the checkpoint loaded into
  // memory (generation runs faster) or mapped (opens at once; for commands that read each
  // weight once or not at all).
  static std::unique_ptr<Model> load(const std::string& path, io::FileMemory memory = io::FileMemory::Loaded);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const CheckpointInfo& checkpoint() const { return checkpoint_; }
  const kernels::Rope& rope() const { return *rope_; }
  // The GGUF file when the model came from one (tokenizer and template metadata live there).
  const io::GgufFile* gguf() const { return gguf_.get(); }

  // LoRA adapters added to the projections by every forward pass (none by default). Set them
  // before the model is used: forward passes read the list without locking.
  void set_adapters(std::vector<AttachedLora> adapters) { adapters_ = std::move(adapters); }
  const std::vector<AttachedLora>& adapters() const { return adapters_; }

  // The device the forward pass runs on (model/device_model.h); nullptr: the CPU. Place the
  // model after its adapters are set.
  DeviceModel* device() const { return device_.get(); }
  void set_device(std::unique_ptr<DeviceModel> device);

 private:
  Model() = default;
  void load_hf(const std::string& dir, io::FileMemory memory);
  void load_gguf(const std::string& path, io::FileMemory memory);
  void finish();

  ModelConfig config_;
  ModelWeights weights_;
  CheckpointInfo checkpoint_;
  std::unique_ptr<kernels::Rope> rope_;
  std::unique_ptr<io::GgufFile> gguf_;
  std::unique_ptr<io::SafetensorsCheckpoint> safetensors_;
  std::vector<AttachedLora> adapters_;
  std::unique_ptr<DeviceModel> device_;
};

}  // namespace csq
