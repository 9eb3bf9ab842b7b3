// Turns logits into the next token. One documented chain, applied in this order:
//   1. logit bias            logits[id] += bias[id]
//   2. repetition penalty    (Hugging Face / CTRL) over the last `penalty_last_n` tokens of prompt
//                            and answer: a positive logit is divided by the penalty, a negative one
//                            multiplied by it
//   3. presence / frequency  (OpenAI) over the answer's tokens:
//                            logits[id] -= presence * [count > 0] + frequency * count
//   4. mask                  tokens a constraint forbids get -inf
//   5. temperature == 0      greedy: the largest logit (lowest id on ties); stop here
//   6. temperature           logits / T
//   7. top-k                 keep the k largest (k = 0: off)
//   8. top-p                 keep the smallest set whose probability reaches p (p = 1: off)
//   9. min-p                 drop tokens with probability < min_p * max probability
//  10. draw                  from the renormalised distribution with a seeded 64-bit Mersenne
//                            Twister, so a seed reproduces a run bit for bit on the same machine
// Temperature before the truncations follows transformers and vLLM.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <vector>

namespace csq {

struct SamplingParams {
  float temperature = 1.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  int32_t penalty_last_n = 64;  // -1: the whole context
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  std::map<int32_t, float> logit_bias;

  // Throws csq::Error (usage) naming the first out-of-range parameter.
  void validate(int64_t vocab_size) const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks the next token. `logits` (vocab entries) is modified in place. `context` holds prompt and
  // answer so far, `answer_begin` the index where the answer starts. `allowed` (empty: all) masks
  // tokens out with 0. Returns -1 when the mask allows nothing.
  int32_t sample(std::span<float> logits, std::span<const int32_t> context, size_t answer_begin,
                 const std::vector<uint8_t>& allowed);

  // The probability distribution (after steps 1-9) of the last sample() call, as (id, p) pairs
  // sorted by descending p; used for logprobs.
  const std::vector<std::pair<int32_t, float>>& candidates() const { return candidates_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<int32_t, float>> candidates_;
  std::vector<uint64_t> sort_scratch_;
};

// Each transform on its own, for tests and for callers that build their own chain.
namespace sampling {
void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> recent, float penalty);
void apply_presence_frequency(std::span<float> logits, std::span<const int32_t> answer, float presence, float frequency);
// Sorts candidates given in ascending id order by descending logit, lowest id first on ties (the
// order std::sort with that comparison gives), in linear time; `scratch` is reused memory.
// Sampling with top_k 0 sorts the whole vocabulary each step: its normalising sums are taken in
// this order, so exact results need all of it, not a prefix.
void sort_by_logit(std::vector<std::pair<int32_t, float>>& candidates, std::vector<uint64_t>& scratch);
// Candidates sorted by descending logit; each step keeps a prefix.
void keep_top_k(std::vector<std::pair<int32_t, float>>& sorted, int32_t k);
// Converts sorted logits to probabilities (softmax) in place.
void softmax(std::vector<std::pair<int32_t, float>>& sorted);
void keep_top_p(std::vector<std::pair<int32_t, float>>& sorted_probs, float p);
void keep_min_p(std::vector<std::pair<int32_t, float>>& sorted_probs, float min_p);
// Index drawn from (possibly unnormalised) probabilities, using uniform u in [0, 1).
size_t draw(const std::vector<std::pair<int32_t, float>>& probs, double u);
}  // namespace sampling

}  // namespace csq
