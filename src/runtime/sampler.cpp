#include "runtime/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "base/error.h"

namespace csq {

void SamplingParams::validate(int64_t vocab_size) const {
  auto bad = [](const std::string& what) { fail_usage("sampling: " + what); };
  if (!(temperature >= 0) || !std::isfinite(temperature)) bad("temperature must be >= 0");
  if (top_k < 0) bad("top_k must be >= 0 (0 disables it)");
  if (!(top_p > 0 && top_p <= 1)) bad("top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) bad("min_p must be in [0, 1]");
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty)) bad("repetition_penalty must be > 0");
  if (!(presence_penalty >= -2 && presence_penalty <= 2)) bad("presence_penalty must be in [-2, 2]");
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2)) bad("frequency_penalty must be in [-2, 2]");
  if (penalty_last_n < -1) bad("penalty_last_n must be >= -1");
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= vocab_size)
      bad("logit_bias names token " + std::to_string(id) + ", outside the vocabulary of " + std::to_string(vocab_size));
    if (!std::isfinite(bias) && bias != -INFINITY) bad("logit_bias for token " + std::to_string(id) + " is not a number");
  }
}

namespace sampling {

void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> recent, float penalty) {
  if (penalty == 1.0f) return;
  std::vector<int32_t> seen(recent.begin(), recent.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (int32_t id : seen) {
    if (id < 0 || size_t(id) >= logits.size()) continue;
    float& l = logits[size_t(id)];
    l = l > 0 ? l / penalty : l * penalty;
  }
}

void apply_presence_frequency(std::span<float> logits, std::span<const int32_t> answer, float presence, float frequency) {
  if (presence == 0 && frequency == 0) return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t id : answer) ++counts[id];
  for (const auto& [id, count] : counts) {
    if (id < 0 || size_t(id) >= logits.size()) continue;
    logits[size_t(id)] -= presence + frequency * float(count);
  }
}

void keep_top_k(std::vector<std::pair<int32_t, float>>& sorted, int32_t k) {
  if (k > 0 && size_t(k) < sorted.size()) sorted.resize(size_t(k));
}

void softmax(std::vector<std::pair<int32_t, float>>& sorted) {
  if (sorted.empty()) return;
  const float max_logit = sorted.front().second;
  double sum = 0;
  for (auto& [id, v] : sorted) {
    v = std::exp(v - max_logit);
    sum += v;
  }
  for (auto& [id, v] : sorted) v = float(v / sum);
}

void keep_top_p(std::vector<std::pair<int32_t, float>>& sorted_probs, float p) {
  if (p >= 1.0f) return;
  double cumulative = 0;
  for (size_t i = 0; i < sorted_probs.size(); ++i) {
    cumulative += sorted_probs[i].second;
    if (cumulative >= p) {
      sorted_probs.resize(i + 1);
      return;
    }
  }
}

void keep_min_p(std::vector<std::pair<int32_t, float>>& sorted_probs, float min_p) {
  if (min_p <= 0 || sorted_probs.empty()) return;
  const float threshold = min_p * sorted_probs.front().second;
  size_t keep = 1;
  while (keep < sorted_probs.size() && sorted_probs[keep].second >= threshold) ++keep;
  sorted_probs.resize(keep);
}

void sort_by_logit(std::vector<std::pair<int32_t, float>>& candidates, std::vector<uint64_t>& scratch) {
  // Each candidate as one 64-bit word: a 32-bit key that orders floats descending in the high
  // half, the id in the low half. A stable LSD radix sort on the key alone (3 passes of 11 bits)
  // keeps candidates that arrive in id order in id order on ties, which is the comparison sort's
  // order (descending logit, lowest id first) at O(n) instead of O(n log n).
  const size_t n = candidates.size();
  if (n < 2) return;
  scratch.resize(2 * n);
  uint64_t* words = scratch.data();
  constexpr int kBits = 11;
  constexpr uint32_t kMask = (1u << kBits) - 1;
  std::array<std::array<uint32_t, 1u << kBits>, 3> counts{};
  for (size_t i = 0; i < n; ++i) {
    const float v = candidates[i].second == 0 ? 0.0f : candidates[i].second;  // -0 ties with +0
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    const uint32_t key = ~ascending;
    words[i] = (uint64_t(key) << 32) | uint32_t(candidates[i].first);
    for (int pass = 0; pass < 3; ++pass) ++counts[size_t(pass)][(key >> (kBits * pass)) & kMask];
  }
  uint64_t* from = words;
  uint64_t* to = words + n;
  for (int pass = 0; pass < 3; ++pass) {
    auto& c = counts[size_t(pass)];
    if (c[(uint32_t(from[0] >> 32) >> (kBits * pass)) & kMask] == n) continue;  // one bucket: already in order
    uint32_t offset = 0;
    for (auto& bucket : c) offset += std::exchange(bucket, offset);
    for (size_t i = 0; i < n; ++i) to[c[(uint32_t(from[i] >> 32) >> (kBits * pass)) & kMask]++] = from[i];
    std::swap(from, to);
  }
  for (size_t i = 0; i < n; ++i) {
    const uint32_t ascending = ~uint32_t(from[i] >> 32);
    const uint32_t bits = (ascending & 0x80000000u) ? (ascending & 0x7FFFFFFFu) : ~ascending;
    float v;
    std::memcpy(&v, &bits, sizeof v);
    candidates[i] = {int32_t(uint32_t(from[i])), v};
  }
}

size_t draw(const std::vector<std::pair<int32_t, float>>& probs, double u) {
  double total = 0;
  for (const auto& [id, p] : probs) total += p;
  const double target = u * total;
  double cumulative = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    cumulative += probs[i].second;
    if (target < cumulative) return i;
  }
  return probs.size() - 1;
}

}  // namespace sampling

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> context, size_t answer_begin,
                        const std::vector<uint8_t>& allowed) {
  for (const auto& [id, bias] : params_.logit_bias)
    if (size_t(id) < logits.size()) logits[size_t(id)] += bias;
  const size_t window = params_.penalty_last_n < 0 ? context.size()
                                                   : std::min(context.size(), size_t(params_.penalty_last_n));
  sampling::apply_repetition_penalty(logits, context.subspan(context.size() - window), params_.repetition_penalty);
  sampling::apply_presence_frequency(logits, context.subspan(std::min(answer_begin, context.size())),
                                     params_.presence_penalty, params_.frequency_penalty);

  candidates_.clear();
  for (size_t id = 0; id < logits.size(); ++id)
    if ((allowed.empty() || allowed[id]) && logits[id] != -INFINITY && !std::isnan(logits[id]))
      candidates_.emplace_back(int32_t(id), logits[id]);
  if (candidates_.empty()) return -1;
  // Descending logit, lower id first on ties: the greedy choice is candidates_[0].
  auto by_logit = [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); };

  if (params_.temperature == 0) {
    const auto best = std::min_element(candidates_.begin(), candidates_.end(), by_logit);
    const int32_t id = best->first;
    candidates_.assign(1, {id, 1.0f});
    return id;
  }
  for (auto& [id, v] : candidates_) v /= params_.temperature;
  if (params_.top_k > 0 && size_t(params_.top_k) < candidates_.size()) {
    std::partial_sort(candidates_.begin(), candidates_.begin() + params_.top_k, candidates_.end(), by_logit);
    candidates_.resize(size_t(params_.top_k));
  } else {
    sampling::sort_by_logit(candidates_, sort_scratch_);
  }
  sampling::softmax(candidates_);
  sampling::keep_top_p(candidates_, params_.top_p);
  sampling::keep_min_p(candidates_, params_.min_p);
  double kept = 0;
  for (const auto& [id, p] : candidates_) kept += p;
  for (auto& [id, p] : candidates_) p = float(p / kept);
  // 53 random bits -> uniform double in [0, 1), independent of the standard library's distributions.
  const double u = double(rng_() >> 11) * 0x1.0p-53;
  return candidates_[sampling::draw(candidates_, u)].first;
}

}  // namespace csq
