// A model placed on a Vulkan device: weights uploaded once in their stored type, norms and
// biases as float, LoRA adapters as float matrices; the forward pass (forward() in
// transformer.h sends the work here once a model is placed) runs every layer on the device,
// with the KV cache in device memory, and reads back only the logits.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/vulkan/ops.h"
#include "model/device_choice.h"
#include "model/transformer.h"

namespace csq {

class DeviceModel;

struct DeviceLora {
  vulkan::DeviceMatrix a, b;  // F32 [rank, in], [out, rank]
  float factor = 1;
};

struct DeviceLayer {
  std::unique_ptr<vulkan::Buffer> attn_norm, ffn_norm, q_norm, k_norm, bq, bk, bv;
  vulkan::DeviceMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
  std::array<std::vector<DeviceLora>, kLoraTargetCount> lora;  // by LoraTarget
};

// Activations of one forward pass, grown to the largest batch seen.
struct DeviceScratch {
  int64_t tokens = 0, outputs = 0;
  std::unique_ptr<vulkan::Buffer> ids, meta, x, xn, q, k, v, attn, gate, up, lora_mid, lora_out, selected, logits;
};

class DeviceModel {
 public:
  DeviceModel(std::unique_ptr<vulkan::Device> device, const Model& model);
  vulkan::Device& device() { return *device_; }
  const vulkan::DeviceInfo& info() const { return device_->info(); }

  std::unique_ptr<vulkan::Device> device_;
  std::mutex mutex;  // one forward pass at a time: scratch buffers and the command stream are shared
  std::shared_ptr<vulkan::DeviceMatrix> token_embedding, lm_head;  // the same object when tied
  std::vector<DeviceLayer> layers;
  std::unique_ptr<vulkan::Buffer> output_norm;
  std::unique_ptr<vulkan::Buffer> rope_table;
  int64_t rope_positions = 0;
  DeviceScratch scratch;
  uint64_t weight_bytes = 0;
};

// A KvCache's keys and values in device memory: one buffer each per layer, on the device of
// `model` (a cache never outlives the model it serves).
struct DeviceKvCache {
  DeviceModel* model = nullptr;
  std::vector<std::unique_ptr<vulkan::Buffer>> k, v;
};

// Places `model` on the chosen device. A Vulkan choice on a machine without a Vulkan loader or
// device prints one line on stderr and leaves the model on the CPU (returns false); a device
// that exists but fails to open, or weights of a type the device cannot run, throw csq::Error.
bool place_model(Model& model, const DeviceChoice& choice);

// The forward pass on the model's device (see forward() in transformer.h).
void device_forward(const Model& model, const Batch& batch, KvCache& cache, std::vector<float>& logits);
// Copies positions [0, n) of sequence `from` to `to` in the cache's device memory.
void device_copy_prefix(KvCache& cache, int32_t from, int32_t to, int64_t n);

}  // namespace csq
