#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

namespace csq::train {

void adamw_step(const std::vector<AdamWSlot>& slots, const AdamWConfig& c, int64_t step, double lr) {
  // float32 arithmetic in torch's order; only the scalar factors are computed in double, as
  // torch computes them in Python floats.
  const double bias1 = 1.0 - std::pow(c.beta1, double(step));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(c.beta2, double(step)));
  const float decay = float(1.0 - lr * c.weight_decay);
  const float step_size = float(lr / bias1);
  const float one_minus_b1 = float(1.0 - c.beta1), one_minus_b2 = float(1.0 - c.beta2), b2 = float(c.beta2);
  const float eps = float(c.eps), bias2_sqrt_f = float(bias2_sqrt);
  for (const AdamWSlot& s : slots) {
    float* p = s.param->data();
    const float* g = s.grad->data();
    float* m = s.m->data();
    float* v = s.v->data();
    for (size_t i = 0; i < s.param->size(); ++i) {
      p[i] *= decay;
      m[i] += one_minus_b1 * (g[i] - m[i]);  // torch: exp_avg.lerp_(grad, 1 - beta1)
      v[i] = v[i] * b2 + one_minus_b2 * (g[i] * g[i]);
      const float denom = std::sqrt(v[i]) / bias2_sqrt_f + eps;
      p[i] -= step_size * (m[i] / denom);
    }
  }
}

double cosine_with_warmup(double peak_lr, int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return peak_lr * double(step) / double(std::max<int64_t>(1, warmup_steps));
  const double progress = double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps));
  return peak_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

double clip_global_norm(const std::vector<std::vector<float>*>& grads, double max_norm) {
  double sum = 0;
  for (const auto* g : grads)
    for (float x : *g) sum += double(x) * x;
  const double norm = std::sqrt(sum);
  if (max_norm > 0 && norm > max_norm) {
    // torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6)
    const float coef = float(max_norm / (norm + 1e-6));
    for (auto* g : grads)
      for (float& x : *g) x *= coef;
  }
  return norm;
}

}  // namespace csq::train
