// Each sampler transform against a hand-computed distribution, and the chain's reproducibility.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "base/error.h"
#include "runtime/sampler.h"

namespace csq {
namespace {

using Dist = std::vector<std::pair<int32_t, float>>;

// softmax([1, 2, 3, 4]) = [0.0320586, 0.0871443, 0.2368828, 0.6439143]
constexpr float p1 = 0.0320586f, p2 = 0.0871443f, p3 = 0.2368828f, p4 = 0.6439143f;

Dist run(SamplingParams params, std::vector<float> logits, std::vector<int32_t> context = {}, size_t answer_begin = 0) {
  Sampler sampler(params);
  sampler.sample(logits, context, answer_begin, {});
  return sampler.candidates();
}

void expect_dist(const Dist& got, const Dist& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first) << "rank " << i;
    EXPECT_NEAR(got[i].second, want[i].second, 1e-5f) << "rank " << i;
  }
}

TEST(Sampler, PlainSoftmaxAtTemperatureOne) {
  expect_dist(run({}, {1, 2, 3, 4}), {{3, p4}, {2, p3}, {1, p2}, {0, p1}});
}

TEST(Sampler, TemperatureDividesLogits) {
  SamplingParams p;
  p.temperature = 2;
  // softmax([0.5, 1, 1.5, 2])
  const double z = std::exp(0.5) + std::exp(1.0) + std::exp(1.5) + std::exp(2.0);
  expect_dist(run(p, {1, 2, 3, 4}), {{3, float(std::exp(2.0) / z)}, {2, float(std::exp(1.5) / z)},
                                     {1, float(std::exp(1.0) / z)}, {0, float(std::exp(0.5) / z)}});
}

TEST(Sampler, TopKKeepsTheKLargest) {
  SamplingParams p;
  p.top_k = 2;
  expect_dist(run(p, {1, 2, 3, 4}), {{3, p4 / (p3 + p4)}, {2, p3 / (p3 + p4)}});
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  SamplingParams p;
  p.top_p = 0.9f;  // 0.644 + 0.237 = 0.881 < 0.9, so a third token is needed
  const float kept = p4 + p3 + p2;
  expect_dist(run(p, {1, 2, 3, 4}), {{3, p4 / kept}, {2, p3 / kept}, {1, p2 / kept}});
  p.top_p = 0.5f;
  expect_dist(run(p, {1, 2, 3, 4}), {{3, 1.0f}});
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplingParams p;
  p.min_p = 0.2f;  // threshold 0.2 * 0.644 = 0.129
  expect_dist(run(p, {1, 2, 3, 4}), {{3, p4 / (p4 + p3)}, {2, p3 / (p4 + p3)}});
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  std::vector<float> logits = {2, -2, 1};
  const std::vector<int32_t> recent = {0, 1, 0};
  sampling::apply_repetition_penalty(logits, recent, 2.0f);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
  EXPECT_FLOAT_EQ(logits[1], -4.0f);
  EXPECT_FLOAT_EQ(logits[2], 1.0f);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  std::vector<float> logits = {5, 5, 5};
  const std::vector<int32_t> answer = {0, 0, 2};
  sampling::apply_presence_frequency(logits, answer, 0.5f, 0.25f);
  EXPECT_FLOAT_EQ(logits[0], 5 - 0.5f - 0.5f);
  EXPECT_FLOAT_EQ(logits[1], 5);
  EXPECT_FLOAT_EQ(logits[2], 5 - 0.5f - 0.25f);
}

TEST(Sampler, PresencePenaltyOnlyCountsTheAnswer) {
  SamplingParams p;
  p.presence_penalty = 1.0f;
  p.temperature = 0;
  // Token 1 is in the prompt only: not penalised, stays the greedy choice.
  Sampler s(p);
  std::vector<float> logits = {0, 1, 0.5f};
  const std::vector<int32_t> context = {1, 1, 2};
  EXPECT_EQ(s.sample(logits, context, /*answer_begin=*/2, {}), 1);
}

TEST(Sampler, LogitBiasAndMask) {
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{0, 10.0f}};
  Sampler s(p);
  std::vector<float> logits = {1, 2, 3, 4};
  EXPECT_EQ(s.sample(logits, {}, 0, {}), 0);
  std::vector<float> again = {1, 2, 3, 4};
  EXPECT_EQ(s.sample(again, {}, 0, {0, 1, 1, 0}), 2);  // masked: 0 and 3 out
  std::vector<float> none = {1, 2, 3, 4};
  EXPECT_EQ(s.sample(none, {}, 0, {0, 0, 0, 0}), -1);
}

TEST(Sampler, GreedyPrefersTheLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  std::vector<float> logits = {1, 3, 3, 2};
  EXPECT_EQ(s.sample(logits, {}, 0, {}), 1);
}

TEST(Sampler, DrawFollowsTheCumulativeDistribution) {
  const Dist probs = {{7, 0.5f}, {8, 0.25f}, {9, 0.25f}};
  EXPECT_EQ(sampling::draw(probs, 0.0), 0u);
  EXPECT_EQ(sampling::draw(probs, 0.49), 0u);
  EXPECT_EQ(sampling::draw(probs, 0.5), 1u);
  EXPECT_EQ(sampling::draw(probs, 0.74), 1u);
  EXPECT_EQ(sampling::draw(probs, 0.99), 2u);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDiffers) {
  auto draws = [](uint64_t seed) {
    SamplingParams p;
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> logits = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
      out.push_back(s.sample(logits, {}, 0, {}));
    }
    return out;
  };
  EXPECT_EQ(draws(42), draws(42));
  EXPECT_NE(draws(42), draws(43));
}

TEST(Sampler, EmpiricalFrequenciesMatchTheDistribution) {
  SamplingParams p;
  p.seed = 1;
  Sampler s(p);
  std::vector<int> counts(4, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = {1, 2, 3, 4};
    ++counts[size_t(s.sample(logits, {}, 0, {}))];
  }
  EXPECT_NEAR(counts[3] / double(n), p4, 0.015);
  EXPECT_NEAR(counts[2] / double(n), p3, 0.015);
  EXPECT_NEAR(counts[0] / double(n), p1, 0.01);
}

// The sampler as it was before the linear-time sort: a comparison sort of every candidate, then
// the same chain. The new one must give the same tokens and the same distribution, bit for bit.
struct ComparisonSortSampler {
  SamplingParams params;
  std::mt19937_64 rng{params.seed};
  Dist candidates{};

  int32_t sample(const std::vector<float>& logits, const std::vector<uint8_t>& allowed) {
    candidates.clear();
    for (size_t id = 0; id < logits.size(); ++id)
      if ((allowed.empty() || allowed[id]) && logits[id] != -INFINITY && !std::isnan(logits[id]))
        candidates.emplace_back(int32_t(id), logits[id]);
    auto by_logit = [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); };
    for (auto& [id, v] : candidates) v /= params.temperature;
    if (params.top_k > 0 && size_t(params.top_k) < candidates.size()) {
      std::partial_sort(candidates.begin(), candidates.begin() + params.top_k, candidates.end(), by_logit);
      candidates.resize(size_t(params.top_k));
    } else {
      std::sort(candidates.begin(), candidates.end(), by_logit);
    }
    sampling::softmax(candidates);
    sampling::keep_top_p(candidates, params.top_p);
    sampling::keep_min_p(candidates, params.min_p);
    double kept = 0;
    for (const auto& [id, p] : candidates) kept += p;
    for (auto& [id, p] : candidates) p = float(p / kept);
    const double u = double(rng() >> 11) * 0x1.0p-53;
    return candidates[sampling::draw(candidates, u)].first;
  }
};

bool same_bits(const Dist& a, const Dist& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
           return x.first == y.first && std::memcmp(&x.second, &y.second, sizeof(float)) == 0;
         });
}

TEST(Sampler, LinearSortOrdersAsTheComparisonSortDoes) {
  // Ties, signed zeros, infinities, subnormals, negatives and repeated values.
  std::vector<float> special = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, 1e-45f, -1e-45f, 3.5f, 3.5f, -2.25f,
                                std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(), 1e-38f};
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick(0, special.size() - 1);
  std::normal_distribution<float> normal(0, 4);
  for (int round = 0; round < 20; ++round) {
    Dist c;
    const size_t n = round == 0 ? 1 : 1 + size_t(rng() % 5000);
    for (size_t id = 0; id < n; ++id)
      c.emplace_back(int32_t(id * 3), rng() % 3 == 0 ? special[pick(rng)] : std::round(normal(rng) * 8) / 8);
    Dist want = c;
    std::sort(want.begin(), want.end(), [](const auto& a, const auto& b) {
      return a.second > b.second || (a.second == b.second && a.first < b.first);
    });
    std::vector<uint64_t> scratch;
    sampling::sort_by_logit(c, scratch);
    ASSERT_EQ(c.size(), want.size());
    for (size_t i = 0; i < c.size(); ++i) {
      ASSERT_EQ(c[i].first, want[i].first) << "round " << round << " rank " << i;
      ASSERT_EQ(c[i].second, want[i].second) << "round " << round << " rank " << i;  // -0 == +0
    }
  }
}

TEST(Sampler, SameTokensAndDistributionAsTheComparisonSortOnTheQwen3Vocabulary) {
  constexpr size_t kVocab = 151936;  // the fixture tokenizer's (qwen3-tiny-vocab) vocabulary
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(0, 3);
  std::vector<float> base(kVocab);
  for (float& v : base) v = normal(gen);
  for (size_t i = 0; i < 64; ++i) base[i * 997] = 14.0f;  // ties at the top
  std::vector<uint8_t> mask(kVocab, 1);
  for (size_t i = 0; i < kVocab; i += 3) mask[i] = 0;
  struct Setting {
    float temperature, top_p, min_p;
    int32_t top_k;
    bool masked;
  };
  const Setting settings[] = {{1.0f, 1.0f, 0.0f, 0, false}, {0.7f, 0.95f, 0.0f, 0, false}, {1.3f, 0.8f, 0.05f, 0, true},
                              {0.6f, 1.0f, 0.1f, 0, false}, {1.0f, 0.9f, 0.0f, 40, false}, {2.0f, 0.999f, 0.0f, 0, true}};
  size_t steps = 0;
  for (const Setting& st : settings) {
    for (uint64_t seed = 0; seed < 4; ++seed) {
      SamplingParams p;
      p.temperature = st.temperature;
      p.top_p = st.top_p;
      p.min_p = st.min_p;
      p.top_k = st.top_k;
      p.seed = seed;
      Sampler fast(p);
      ComparisonSortSampler reference{p};
      std::vector<float> logits = base;
      for (int step = 0; step < 2; ++step) {
        for (size_t i = 0; i < 256; ++i) logits[(size_t(step) * 7919 + i * 593) % kVocab] += 0.5f;  // drift per step
        std::vector<float> work = logits;
        const int32_t got = fast.sample(work, {}, 0, st.masked ? mask : std::vector<uint8_t>{});
        const int32_t want = reference.sample(logits, st.masked ? mask : std::vector<uint8_t>{});
        ASSERT_EQ(got, want) << "seed " << seed << " step " << step;
        ASSERT_TRUE(same_bits(fast.candidates(), reference.candidates)) << "seed " << seed << " step " << step;
        ++steps;
      }
    }
  }
  EXPECT_EQ(steps, 6u * 4 * 2);
}

TEST(Sampler, InvalidParametersAreUsageErrors) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_THROW(p.validate(10), Error);
  p = {};
  p.temperature = -1;
  EXPECT_THROW(p.validate(10), Error);
  p = {};
  p.logit_bias = {{10, 1.0f}};
  EXPECT_THROW(p.validate(10), Error);
  p = {};
  EXPECT_NO_THROW(p.validate(10));
}

}  // namespace
}  // namespace csq
