// Batched generation: a decode step of N streams (one forward pass, one token of every stream)
// gives each stream exactly what decoding it alone gives, for every weight type with a batched
// kernel (Q4_K, Q6_K, Q8_0; BF16 through the HF fixture), at 8 streams (AVX-512: rows read in place,
// one pass), 16 (unpacked tiles) and 20 (BF16 on AMX: past one 16-token tile). The kernel tests
// cover every count from 1 to 16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "model/model.h"
#include "model/transformer.h"
#include "test_paths.h"

namespace csq {
namespace {

constexpr int kPrompt = 5, kSteps = 4;

// Stream s's prompt: distinct for every stream, so every stream decodes something else.
std::vector<int32_t> prompt_of(int s, int64_t vocab) {
  std::vector<int32_t> ids;
  for (int i = 0; i < kPrompt; ++i) ids.push_back(int32_t((7 + 31 * s + 13 * i) % vocab));
  return ids;
}

int32_t greedy(const float* logits, int64_t vocab) {
  return int32_t(std::max_element(logits, logits + vocab) - logits);
}

struct Trace {
  std::vector<int32_t> tokens;  // the greedy continuation
  std::vector<float> logits;    // every step's logits, concatenated
};

// Streams [0, n) decoded together: each prompt on its own (as the scheduler prefills prompt
// chunks), then kSteps steps each decoding one token of every stream in one forward pass.
std::vector<Trace> decode_together(const Model& model, int n, ThreadPool& pool) {
  const int64_t vocab = model.config().vocab_size;
  KvCache cache(model.config(), n, kPrompt + kSteps + 1);
  std::vector<Trace> traces(static_cast<size_t>(n));
  std::vector<int32_t> next(static_cast<size_t>(n));
  std::vector<float> logits;
  const auto record = [&](int s, const float* row) {
    traces[size_t(s)].logits.insert(traces[size_t(s)].logits.end(), row, row + vocab);
    next[size_t(s)] = greedy(row, vocab);
    traces[size_t(s)].tokens.push_back(next[size_t(s)]);
  };
  for (int s = 0; s < n; ++s) {
    Batch prompt;
    const auto ids = prompt_of(s, vocab);
    for (int i = 0; i < kPrompt; ++i) prompt.add(ids[size_t(i)], i, s, i + 1 == kPrompt);
    forward(model, prompt, cache, pool, logits);
    record(s, logits.data());
  }
  for (int step = 0; step < kSteps; ++step) {
    Batch batch;
    for (int s = 0; s < n; ++s) batch.add(next[size_t(s)], kPrompt + step, s, true);
    forward(model, batch, cache, pool, logits);
    for (int s = 0; s < n; ++s) record(s, logits.data() + s * vocab);
  }
  return traces;
}

// Stream s alone: the same prompt and steps through a cache of one sequence.
Trace decode_alone(const Model& model, int s, ThreadPool& pool) {
  const int64_t vocab = model.config().vocab_size;
  KvCache cache(model.config(), 1, kPrompt + kSteps + 1);
  Trace trace;
  std::vector<float> logits;
  Batch batch;
  const auto ids = prompt_of(s, vocab);
  for (int i = 0; i < kPrompt; ++i) batch.add(ids[size_t(i)], i, 0, i + 1 == kPrompt);
  for (int step = 0;; ++step) {
    forward(model, batch, cache, pool, logits);
    trace.logits.insert(trace.logits.end(), logits.begin(), logits.begin() + vocab);
    trace.tokens.push_back(greedy(logits.data(), vocab));
    if (step == kSteps) return trace;
    batch = Batch();
    batch.add(trace.tokens.back(), kPrompt + step, 0, true);
  }
}

class BatchedDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchedDecode, EveryStreamGetsWhatItGetsAlone) {
  CSQ_REQUIRE_FIXTURES();
  const auto model = Model::load(test::fixture(GetParam()));
  ThreadPool pool(2);
  std::vector<Trace> alone;
  for (int s = 0; s < 20; ++s) alone.push_back(decode_alone(*model, s, pool));
  for (int n : {8, 16, 20}) {
    const std::vector<Trace> together = decode_together(*model, n, pool);
    for (int s = 0; s < n; ++s) {
      SCOPED_TRACE(GetParam() + ": stream " + std::to_string(s) + " of " + std::to_string(n));
      EXPECT_EQ(together[size_t(s)].tokens, alone[size_t(s)].tokens);
      // Bit for bit: the kernels compute each token with the same arithmetic however tokens are grouped.
      ASSERT_EQ(together[size_t(s)].logits.size(), alone[size_t(s)].logits.size());
      EXPECT_EQ(0, std::memcmp(together[size_t(s)].logits.data(), alone[size_t(s)].logits.data(),
                               alone[size_t(s)].logits.size() * sizeof(float)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BatchedDecode,
                         ::testing::Values("gguf/qwen3-tiny-gqa-Q4_K_M.gguf", "gguf/qwen3-tiny-gqa-Q6_K.gguf",
                                           "gguf/qwen3-tiny-gqa-Q8_0.gguf",
                                           "hf/qwen3-tiny-gqa"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace csq
