// Cost of one sampling step over the full Qwen3 vocabulary (151,936 logits, Gaussian, sd 3) with
// top_k 0: csq's Sampler (linear-time radix sort) against the comparison sort it replaced
// (std::sort of every candidate, then the same chain), in one run so the ratio holds under load.
// Both draw the same tokens; the program checks that and exits 3 if not.
//
//   csq_sampler_bench [--steps N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace {

using Clock = std::chrono::steady_clock;
using Dist = std::vector<std::pair<int32_t, float>>;

// The old chain from step 6 on.
int32_t comparison_sort_sample(const csq::SamplingParams& p, const std::vector<float>& logits,
                               const std::vector<uint8_t>& allowed, std::mt19937_64& rng, Dist& c) {
  c.clear();
  for (size_t id = 0; id < logits.size(); ++id)
    if ((allowed.empty() || allowed[id]) && logits[id] != -INFINITY && !std::isnan(logits[id]))
      c.emplace_back(int32_t(id), logits[id]);
  for (auto& [id, v] : c) v /= p.temperature;
  std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  });
  csq::sampling::softmax(c);
  csq::sampling::keep_top_p(c, p.top_p);
  csq::sampling::keep_min_p(c, p.min_p);
  double kept = 0;
  for (const auto& [id, q] : c) kept += q;
  for (auto& [id, q] : c) q = float(q / kept);
  const double u = double(rng() >> 11) * 0x1.0p-53;
  return c[csq::sampling::draw(c, u)].first;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: csq_sampler_bench [--steps N]\n");
      return 1;
    }
  }
  constexpr size_t kVocab = 151936;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0, 3);
  std::vector<std::vector<float>> logits(16, std::vector<float>(kVocab));
  for (auto& l : logits)
    for (float& v : l) v = normal(gen);
  std::vector<uint8_t> mask(kVocab, 1);
  for (size_t i = 0; i < kVocab; i += 4) mask[i] = 0;  // a constraint allowing 3/4 of the vocabulary

  struct Setting {
    const char* name;
    float temperature, top_p, min_p;
    bool masked;
  };
  const Setting settings[] = {{"T=1 (no truncation)", 1.0f, 1.0f, 0.0f, false},
                              {"T=0.7 top_p=0.95", 0.7f, 0.95f, 0.0f, false},
                              {"T=0.7 top_p=0.95, masked", 0.7f, 0.95f, 0.0f, true},
                              {"T=1 min_p=0.05", 1.0f, 1.0f, 0.05f, false}};
  std::printf("%-28s %12s %12s %8s\n", "setting (vocab 151936)", "old us/step", "new us/step", "ratio");
  for (const Setting& s : settings) {
    csq::SamplingParams p;
    p.temperature = s.temperature;
    p.top_p = s.top_p;
    p.min_p = s.min_p;
    p.seed = 9;
    csq::Sampler sampler(p);
    std::mt19937_64 rng(p.seed);
    Dist scratch;
    std::vector<int32_t> old_tokens, new_tokens;
    double old_us = 0, new_us = 0;
    const std::vector<uint8_t> allowed = s.masked ? mask : std::vector<uint8_t>{};
    for (int i = 0; i < steps; ++i) {
      const std::vector<float>& l = logits[size_t(i) % logits.size()];
      auto t0 = Clock::now();
      old_tokens.push_back(comparison_sort_sample(p, l, allowed, rng, scratch));
      auto t1 = Clock::now();
      std::vector<float> work = l;
      auto t2 = Clock::now();
      new_tokens.push_back(sampler.sample(work, {}, 0, allowed));
      auto t3 = Clock::now();
      old_us += std::chrono::duration<double, std::micro>(t1 - t0).count();
      new_us += std::chrono::duration<double, std::micro>(t3 - t2).count();
    }
    if (old_tokens != new_tokens) {
      std::fprintf(stderr, "%s: the two samplers drew different tokens\n", s.name);
      return 3;
    }
    std::printf("%-28s %12.1f %12.1f %7.1fx\n", s.name, old_us / steps, new_us / steps, old_us / new_us);
  }
  return 0;
}
