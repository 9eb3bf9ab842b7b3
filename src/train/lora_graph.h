// The training graph of a decoder with LoRA adapters: a forward pass over packed examples that
// yields the causal-LM loss, and the backward pass that yields the gradient of every LoRA A
// and B. The base weights stay frozen in their stored type (BF16 safetensors or a quantized
// GGUF: QLoRA-style fine-tuning), so only the adapters take memory for parameters, gradients and
// optimizer moments.
//
// Gradient checkpointing: the forward pass keeps only each layer's input; the backward pass
// recomputes one layer's activations at a time from it. Peak activation memory is then
// n_layers × tokens × hidden plus one layer's intermediates.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "model/lora.h"
#include "model/model.h"

namespace csq::train {

// Examples laid end to end. Token t belongs to the example starting at segment_start[t], sits
// at positions[t] within it and attends only to its own example's earlier tokens.
// targets[t] is the token the model should predict after t (the next token's label), or -1
// where no loss is taken (prompt tokens, the last token of an example, padding).
struct PackedBatch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<int32_t> segment_start;
  std::vector<int32_t> targets;

  int64_t size() const { return int64_t(tokens.size()); }
  int64_t loss_tokens() const;
  // Appends one example (tokens and per-token labels, -1 = not trained on; labels[0] is never used).
  void add_example(const std::vector<int32_t>& example_tokens, const std::vector<int32_t>& labels);
};

enum class Precision {
  F32,   // float32 everywhere (the reference the fixtures check)
  BF16,  // inputs of every matrix product (activations, LoRA weights) rounded to bfloat16,
         // products accumulated in float32; master weights, gradients and moments in float32
};

struct GraphOptions {
  float dropout = 0;  // LoRA dropout on each adapted projection's input (its own mask per target)
  uint64_t dropout_seed = 0;
  Precision precision = Precision::F32;
  // BF16 only: round the LoRA weights' bfloat16 copies stochastically (unbiased) instead of to
  // nearest, so that updates smaller than a bfloat16 step still move the products on average.
  bool stochastic_rounding = false;
};

class LoraGraph {
 public:
  // `params`: the trained adapter (master weights); `grads`: same shapes, accumulated into.
  LoraGraph(const Model& model, const LoraAdapter& params, LoraAdapter& grads, GraphOptions options);

  // Summed cross-entropy over the batch's targets; adds grad_scale × d(summed loss)/d(param) to
  // grads. `dropout_key` selects the dropout masks (a micro-batch's identity: step and index).
  double forward_backward(const PackedBatch& batch, float grad_scale, uint64_t dropout_key, ThreadPool& pool);
  // The summed loss without gradients or dropout (evaluation).
  double loss(const PackedBatch& batch, ThreadPool& pool);

 private:
  struct LayerActivations;
  void check(const PackedBatch& batch) const;
  void layer_forward(int64_t layer, const PackedBatch& batch, const float* x_in, float* x_out, LayerActivations& acts,
                     bool training, uint64_t dropout_key, ThreadPool& pool);
  void layer_backward(int64_t layer, const PackedBatch& batch, const float* x_in, LayerActivations& acts, float* dx,
                      ThreadPool& pool);
  // Loss of the final layer's output; with dx non-null also its gradient (scaled).
  double head(const PackedBatch& batch, const float* x, float grad_scale, float* dx, ThreadPool& pool);

  const Model& model_;
  const LoraAdapter& params_;
  LoraAdapter& grads_;
  GraphOptions options_;
  float lora_factor_;
};

}  // namespace csq::train
