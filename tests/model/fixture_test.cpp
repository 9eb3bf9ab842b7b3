// The engine against Hugging Face transformers and llama.cpp reference outputs
// (../shared/fixtures/hf and ../shared/fixtures/gguf).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "model/model.h"
#include "reference.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "vulkan_device.h"

namespace csq {
namespace {

struct Scores {
  float max_abs_diff = 0;
  float max_abs_ref = 0;
};

Scores compare(const float* ours, const float* ref, int64_t n) {
  Scores s;
  for (int64_t i = 0; i < n; ++i) {
    s.max_abs_diff = std::max(s.max_abs_diff, std::fabs(ours[i] - ref[i]));
    s.max_abs_ref = std::max(s.max_abs_ref, std::fabs(ref[i]));
  }
  return s;
}

float top_margin(const float* logits, int64_t n) {
  float first = -INFINITY, second = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    if (logits[i] > first) {
      second = first;
      first = logits[i];
    } else if (logits[i] > second) {
      second = logits[i];
    }
  }
  return first - second;
}

int count_sequences(const test::Reference& ref) {
  int n = 0;
  while (ref.has("tokens." + std::to_string(n))) ++n;
  return n;
}

// A fixture, on the CPU or on the Vulkan device (device 0; lavapipe in CI). Every check and
// tolerance is the same on both.
struct FixtureCase {
  std::string name;
  bool vulkan = false;
};

std::vector<FixtureCase> cases(bool vulkan, std::initializer_list<const char*> names) {
  std::vector<FixtureCase> v;
  for (const char* n : names) v.push_back({n, vulkan});
  return v;
}

std::string case_name(const ::testing::TestParamInfo<FixtureCase>& info) {
  std::string name = info.param.name;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// On the device (lavapipe in CI: a software GPU on 2 cores) the suites check prompts up to 300
// tokens and the first 16 greedy tokens of each sequence; the CPU suites check every length
// (1500) and all 48 greedy tokens. Attention over 1500 positions and long greedy runs cost
// lavapipe minutes while checking no device code that the shorter runs leave out (300 tokens
// already span five 64-position attention chunks, 16 steps the cache's decode path).
constexpr int64_t kDevicePromptTokens = 300;
constexpr size_t kDeviceGreedyTokens = 16;

// Whether sequence `tokens` is checked in this case (every one on the CPU).
bool checked_here(const FixtureCase& c, size_t tokens) {
  return !c.vulkan || int64_t(tokens) <= kDevicePromptTokens;
}

#define CSQ_PLACE_MODEL(model)                                         \
  if (GetParam().vulkan) {                                             \
    std::string why;                                                   \
    if (!test::place_on_vulkan(*model, why)) {                         \
      GTEST_SKIP() << "no Vulkan device: " << why;                     \
    }                                                                  \
  }

class HfFixture : public ::testing::TestWithParam<FixtureCase> {};

// Logits at every position, the last position in full, and the greedy continuation.
TEST_P(HfFixture, MatchesTransformers) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = test::fixture("hf/" + GetParam().name);
  auto model = Model::load(dir);
  CSQ_PLACE_MODEL(model);
  test::Reference ref(dir + "/reference.safetensors");
  const int64_t vocab = model->config().vocab_size;
  ThreadPool pool(0);
  const int n_seq = count_sequences(ref);
  ASSERT_GT(n_seq, 0);
  for (int s = 0; s < n_seq; ++s) {
    SCOPED_TRACE("sequence " + std::to_string(s));
    const auto tokens = ref.ints("tokens." + std::to_string(s));
    const auto greedy = ref.ints("greedy." + std::to_string(s));
    const auto topk_ids = ref.ints("topk_ids." + std::to_string(s));
    const auto topk_vals = ref.floats("topk_vals." + std::to_string(s));
    const auto last = ref.floats("logits_last." + std::to_string(s));
    if (!checked_here(GetParam(), tokens.size())) continue;
    const int64_t T = int64_t(tokens.size());
    const int64_t K = int64_t(topk_ids.size()) / T;

    Session session(*model, T + int64_t(greedy.size()), pool);
    const std::vector<float> logits = session.feed(tokens, /*all_positions=*/true);
    ASSERT_EQ(int64_t(logits.size()), T * vocab);

    const Scores sc = compare(logits.data() + (T - 1) * vocab, last.data(), vocab);
    EXPECT_LE(sc.max_abs_diff, 1e-3f * sc.max_abs_ref) << "last-position logits differ";

    for (int64_t t = 0; t < T; ++t) {
      const float* row = logits.data() + t * vocab;
      const int32_t ours = argmax(row, vocab);
      const bool near_tie = topk_vals[size_t(t * K)] - topk_vals[size_t(t * K + 1)] < 1e-4f;
      if (!near_tie) {
        EXPECT_EQ(ours, topk_ids[size_t(t * K)]) << "top-1 differs at position " << t;
      }
    }
    if (ref.has("logits_first." + std::to_string(s))) {
      const auto first = ref.floats("logits_first." + std::to_string(s));
      const Scores f = compare(logits.data(), first.data(), vocab);
      EXPECT_LE(f.max_abs_diff, 1e-3f * f.max_abs_ref) << "first-position logits differ";
    }

    // Greedy decoding through the KV cache; a divergence is only acceptable at a near-tie.
    std::vector<float> step(logits.end() - vocab, logits.end());
    const size_t n_greedy = GetParam().vulkan ? std::min(greedy.size(), kDeviceGreedyTokens) : greedy.size();
    for (size_t g = 0; g < n_greedy; ++g) {
      const int32_t next = argmax(step.data(), vocab);
      if (next != greedy[g]) {
        EXPECT_LT(top_margin(step.data(), vocab), 1e-2f)
            << "greedy token " << g << ": ours " << next << ", reference " << greedy[g] << " with a clear margin";
        break;
      }
      step = session.feed({next});
    }
  }
}

#define CSQ_HF_FIXTURES "qwen3-tiny-gqa", "qwen3-tiny-vocab", "llama31-tiny", "qwen2-tiny"
INSTANTIATE_TEST_SUITE_P(Fixtures, HfFixture, ::testing::ValuesIn(cases(false, {CSQ_HF_FIXTURES})), case_name);
INSTANTIATE_TEST_SUITE_P(Vulkan, HfFixture, ::testing::ValuesIn(cases(true, {CSQ_HF_FIXTURES})), case_name);

class GgufFixture : public ::testing::TestWithParam<FixtureCase> {};

// F16 weights: float32 arithmetic matches the exact reference to 1e-3. Quantized weights (8-bit
// activations in the integer kernels): as far from it as llama.cpp is. That distance is chaotic
// (one level rounded the other way in an early layer moves every later one), so it is compared
// over the file's sequences together: RMS over the vocabulary within 1.25x llama.cpp's, the
// largest single logit within 1.5x. Either way the top-1 choice agrees with llama.cpp's own run
// on the same file at 95% of the positions.
TEST_P(GgufFixture, MatchesExactDequantizationAndLlamaCpp) {
  CSQ_REQUIRE_FIXTURES();
  const std::string base = test::fixture("gguf/qwen3-tiny-gqa-" + GetParam().name);
  auto model = Model::load(base + ".gguf");
  CSQ_PLACE_MODEL(model);
  test::Reference ref(base + ".reference.safetensors");
  const int64_t vocab = model->config().vocab_size;
  ThreadPool pool(0);
  int agree = 0, total = 0;
  double ours_sq = 0, llama_sq = 0;
  float ours_max = 0, llama_max = 0;
  for (int s = 0; ref.has("tokens." + std::to_string(s)); ++s) {
    SCOPED_TRACE("sequence " + std::to_string(s));
    const auto tokens = ref.ints("tokens." + std::to_string(s));
    const auto exact = ref.floats("exact_logits_last." + std::to_string(s));
    const auto llama = ref.floats("llamacpp_logits_last." + std::to_string(s));
    const auto llama_top1 = ref.ints("llamacpp_top1." + std::to_string(s));
    const int64_t T = int64_t(tokens.size());
    Session session(*model, T, pool);
    const std::vector<float> logits = session.feed(tokens, true);
    const float* last = logits.data() + (T - 1) * vocab;
    const Scores sc = compare(last, exact.data(), vocab);
    if (GetParam().name == "F16") {
      EXPECT_LE(sc.max_abs_diff, 1e-3f * sc.max_abs_ref);
    }
    for (int64_t i = 0; i < vocab; ++i) {
      ours_sq += double(last[i] - exact[size_t(i)]) * double(last[i] - exact[size_t(i)]);
      llama_sq += double(llama[size_t(i)] - exact[size_t(i)]) * double(llama[size_t(i)] - exact[size_t(i)]);
    }
    ours_max = std::max(ours_max, sc.max_abs_diff);
    llama_max = std::max(llama_max, compare(llama.data(), exact.data(), vocab).max_abs_diff);
    ASSERT_EQ(int64_t(llama_top1.size()), T);
    for (int64_t t = 0; t < T; ++t) {
      agree += argmax(logits.data() + t * vocab, vocab) == llama_top1[size_t(t)];
      ++total;
    }
  }
  ASSERT_GT(total, 0);
  if (GetParam().name != "F16") {
    EXPECT_LE(std::sqrt(ours_sq), 1.25 * std::sqrt(llama_sq)) << "RMS distance to the exact logits vs llama.cpp's";
    EXPECT_LE(ours_max, 1.5f * llama_max) << "largest distance to the exact logits vs llama.cpp's " << llama_max;
  }
  EXPECT_GE(double(agree) / total, 0.95) << agree << " of " << total << " positions agree with llama.cpp";
}

#define CSQ_GGUF_FIXTURES "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"
INSTANTIATE_TEST_SUITE_P(Fixtures, GgufFixture, ::testing::ValuesIn(cases(false, {CSQ_GGUF_FIXTURES})), case_name);
INSTANTIATE_TEST_SUITE_P(Vulkan, GgufFixture, ::testing::ValuesIn(cases(true, {CSQ_GGUF_FIXTURES})), case_name);

// The F16 GGUF of qwen3-tiny-gqa holds the bf16 weights of the transformers reference exactly.
struct F16GgufAndReference {
  std::unique_ptr<Model> model = Model::load(test::fixture("gguf/qwen3-tiny-gqa-F16.gguf"));
  test::Reference ref{test::fixture("hf/qwen3-tiny-gqa/reference.safetensors")};
  int64_t vocab = model->config().vocab_size;
};

// So it must meet the Hugging Face reference too.
TEST(GgufFixture, F16MatchesTransformersReference) {
  CSQ_REQUIRE_FIXTURES();
  const F16GgufAndReference f;
  const Model* model = f.model.get();
  const test::Reference& ref = f.ref;
  const int64_t vocab = f.vocab;
  ThreadPool pool(0);
  for (int s = 0; s < 3; ++s) {
    const auto tokens = ref.ints("tokens." + std::to_string(s));
    const auto last = ref.floats("logits_last." + std::to_string(s));
    const auto greedy = ref.ints("greedy." + std::to_string(s));
    Session session(*model, int64_t(tokens.size() + greedy.size()), pool);
    std::vector<float> logits = session.feed(tokens);
    const Scores sc = compare(logits.data(), last.data(), vocab);
    EXPECT_LE(sc.max_abs_diff, 1e-3f * sc.max_abs_ref) << "sequence " << s;
    for (size_t g = 0; g < greedy.size(); ++g) {
      const int32_t next = argmax(logits.data(), vocab);
      ASSERT_EQ(next, greedy[g]) << "sequence " << s << " greedy step " << g;
      logits = session.feed({next});
    }
  }
}

class Q8_0KvCache : public ::testing::TestWithParam<FixtureCase> {};

// A Q8_0 KV cache (--cache-type q8_0) rounds every key and value to 8 bits per block of 32: the
// logits move, but stay close to transformers' and keep its choices where they are clear.
TEST_P(Q8_0KvCache, StaysCloseToTheReference) {
  CSQ_REQUIRE_FIXTURES();
  F16GgufAndReference f;
  CSQ_PLACE_MODEL(f.model);
  const test::Reference& ref = f.ref;
  const int64_t vocab = f.vocab;
  ThreadPool pool(0);
  int agree = 0, clear = 0;
  for (int s = 0; s < count_sequences(ref); ++s) {
    const auto tokens = ref.ints("tokens." + std::to_string(s));
    const auto topk_ids = ref.ints("topk_ids." + std::to_string(s));
    const auto topk_vals = ref.floats("topk_vals." + std::to_string(s));
    const auto last = ref.floats("logits_last." + std::to_string(s));
    if (!checked_here(GetParam(), tokens.size())) continue;
    const int64_t T = int64_t(tokens.size()), K = int64_t(topk_ids.size()) / T;
    Session session(*f.model, T, pool, 512, DType::Q8_0);
    const std::vector<float> logits = session.feed(tokens, /*all_positions=*/true);
    const Scores sc = compare(logits.data() + (T - 1) * vocab, last.data(), vocab);
    std::printf("sequence %d: largest last-position difference %.2e of %.2e\n", s, sc.max_abs_diff, sc.max_abs_ref);
    EXPECT_LE(sc.max_abs_diff, 2e-2f * sc.max_abs_ref) << "sequence " << s;
    for (int64_t t = 0; t < T; ++t) {
      if (topk_vals[size_t(t * K)] - topk_vals[size_t(t * K + 1)] < 1e-2f) continue;  // a near-tie either way
      ++clear;
      agree += argmax(logits.data() + t * vocab, vocab) == topk_ids[size_t(t * K)];
    }
  }
  ASSERT_GT(clear, 0);
  EXPECT_GE(double(agree) / clear, 0.95) << agree << " of " << clear << " clear top-1 choices kept";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Q8_0KvCache, ::testing::ValuesIn(cases(false, {"F16"})), case_name);
INSTANTIATE_TEST_SUITE_P(Vulkan, Q8_0KvCache, ::testing::ValuesIn(cases(true, {"F16"})), case_name);

}  // namespace
}  // namespace csq
