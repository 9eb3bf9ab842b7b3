// `csq train`: LoRA supervised fine-tuning end to end — data, adapter initialisation, the
// optimisation loop (AdamW, warm-up + cosine, clipping, accumulation), checkpoints that resume
// bit-identically, the log, and the adapter in PEFT and llama.cpp formats.
//
// The output directory holds
//   adapter_model.safetensors, adapter_config.json   the PEFT adapter (at the end)
//   adapter.gguf                                     the same adapter for llama.cpp / csq --lora
//   train_log.jsonl                                  one line per optimizer step
//   loss.svg                                         the loss curve
//   checkpoint-N/                                    adapter, optimizer state and trainer state
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/lora.h"
#include "train/lora_graph.h"

namespace csq::train {

struct TrainConfig {
  std::string model;
  std::string template_file;
  std::string data;
  std::string out;
  std::string resume;  // a checkpoint-N directory, or an output directory (its latest checkpoint)

  int64_t lora_r = 16;
  double lora_alpha = 32;
  double lora_dropout = 0.05;
  bool rslora = false;
  std::vector<LoraTarget> targets = {LoraTarget::Q, LoraTarget::K,    LoraTarget::V,   LoraTarget::O,
                                     LoraTarget::Gate, LoraTarget::Up, LoraTarget::Down};

  double lr = 2e-4;
  int64_t epochs = 1;
  int64_t max_steps = 0;    // > 0: stop after this many optimizer steps (and size the schedule to it)
  int64_t batch = 1;        // packed sequences per micro-batch
  int64_t grad_accum = 1;   // micro-batches per optimizer step
  int64_t seq_len = 2048;
  double warmup_ratio = 0.03;
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;
  double val_split = 0;     // fraction of examples held out for a validation loss
  int64_t save_steps = 0;   // checkpoint every N steps (0: only at the end)
  uint64_t seed = 42;
  Precision precision = Precision::BF16;
  bool stochastic_rounding = false;
  int threads = 0;
  bool progress = true;
};

// The CyberSecQwen-4B recipe: r 64, alpha 64, dropout 0.05 on all seven projections, lr 5e-5
// cosine with 5% warm-up, weight decay 0.01, 10 epochs, effective batch 16 (1 × 16
// accumulation), 4,096-token packed sequences, bf16.
void apply_recipe(TrainConfig& config, const std::string& recipe);

struct TrainSummary {
  int64_t steps = 0;
  double final_loss = 0;
  double val_loss = -1;  // < 0: no validation split
  double tokens_per_s = 0;
  double seconds = 0;
};

// Throws csq::Error: Usage for inconsistent options or a checkpoint of another configuration,
// BadInput for bad data.
TrainSummary run_training(const TrainConfig& config);

}  // namespace csq::train
