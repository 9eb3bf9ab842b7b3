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
  // Uploads the token embedding and the first `n_layers` layers; the output norm and head too
  // when that is every layer (otherwise the CPU runs the rest: a partial offload).
  DeviceModel(std::unique_ptr<vulkan::Device> device, const Model& model, int64_t n_layers);
  vulkan::Device& device() { return *device_; }
  const vulkan::DeviceInfo& info() const { return device_->info(); }

  std::unique_ptr<vulkan::Device> device_;
  std::mutex mutex;  // one forward pass at a time: scratch buffers and the command stream are shared
  std::shared_ptr<vulkan::DeviceMatrix> token_embedding, lm_head;  // the same object when tied; no head when partial
  std::vector<DeviceLayer> layers;  // the model's first layers.size() layers
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

// Bytes of a model's weights on a device, for choosing how many layers go there.
struct OffloadSizes {
  uint64_t embedding = 0;          // token embedding (always on the device)
  uint64_t head = 0;               // output head, when not tied to the embedding
  std::vector<uint64_t> layers;    // each layer's matrices, norms and biases
  uint64_t weights(int64_t n_layers) const;  // on the device with the first n_layers layers
};
OffloadSizes offload_sizes(const Model& model);
// The share of a device's memory the weights may take when csq chooses the layer count: the
// rest is left for the KV cache and activations.
constexpr double kWeightShareOfDeviceMemory = 0.9;
// Layers on a device of `device_bytes`: `requested` (at most every layer) when it is >= 0, else
// every layer when the weights fit kWeightShareOfDeviceMemory of it, else as many as fit.
// Throws csq::Error naming the sizes when not even the embedding and one layer fit.
int64_t choose_gpu_layers(const OffloadSizes& sizes, int requested, uint64_t device_bytes, const std::string& what);

// Places `model` on the chosen device. A Vulkan choice on a machine without a Vulkan loader or
// device prints one line on stderr and leaves the model on the CPU (returns false), as does
// gpu_layers 0; a partial offload chosen because the model does not fit says so in one line. A
// device that exists but fails to open, weights of a type the device cannot run, or a model of
// which not even one layer fits, throw csq::Error.
bool place_model(Model& model, const DeviceChoice& choice);

// The forward pass on the model's device (see forward() in transformer.h).
// The CPU's part of a forward pass whose layers before `first_layer` ran elsewhere (a device's
// partial offload): `x` holds their output, [n_tokens, hidden]; layers first_layer.. run here,
// with their keys and values in `cache`'s host arrays, then the output head.
void forward_from_layer(const Model& model, const Batch& batch, KvCache& cache, ThreadPool& pool, std::vector<float>& x,
                        int64_t first_layer, std::vector<float>& logits);

// Layers beyond the device's (a partial offload) run on the CPU with `pool` (forward_from_layer).
void device_forward(const Model& model, const Batch& batch, KvCache& cache, ThreadPool& pool, std::vector<float>& logits);
// Copies positions [0, n) of sequence `from` to `to` in the cache's device memory.
void device_copy_prefix(KvCache& cache, int32_t from, int32_t to, int64_t n);

}  // namespace csq
