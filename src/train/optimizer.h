// AdamW with decoupled weight decay, as torch.optim.AdamW computes it (float32 moments), the
// learning-rate schedule of transformers' get_cosine_schedule_with_warmup, and gradient clipping
// by global norm.
#pragma once

#include <cstdint>
#include <vector>

namespace csq::train {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

// One parameter tensor with its gradient and moments, all float32 and of equal length.
struct AdamWSlot {
  std::vector<float>* param;
  std::vector<float>* grad;
  std::vector<float>* m;
  std::vector<float>* v;
};

// step: the 1-based number of this update (for the bias corrections); lr: this step's rate.
// p ← p·(1 − lr·wd); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
// p ← p − lr/(1−β1^step) · m / (sqrt(v)/sqrt(1−β2^step) + eps).
void adamw_step(const std::vector<AdamWSlot>& slots, const AdamWConfig& config, int64_t step, double lr);

// Linear warm-up from 0 over warmup_steps, then half a cosine down to 0 at total_steps.
// `step` is 0-based (the rate of the first update is lr_at(0)), as transformers' LambdaLR.
double cosine_with_warmup(double peak_lr, int64_t step, int64_t warmup_steps, int64_t total_steps);

// Scales every gradient so that their global L2 norm is at most max_norm (no-op for max_norm <= 0).
// Returns the norm before clipping.
double clip_global_norm(const std::vector<std::vector<float>*>& grads, double max_norm);

}  // namespace csq::train
