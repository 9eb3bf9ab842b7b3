// The generation loop for one sequence: prompt in, streamed answer out, with sampling,
// end-of-generation ids, stop strings, an optional vocabulary constraint and the split of
// <think> reasoning from the answer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/session.h"

namespace csq {

class Tokenizer;
class TokenConstraint;

enum class FinishReason {
  Stop,       // an end-of-generation id, a stop string, or a completed constraint
  Length,     // max_tokens reached, or the context is full
  Cancelled,  // the stream callback asked to stop
};
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled"

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = 512;
  std::vector<std::string> stop;   // never emitted; matched across token boundaries
  std::vector<int32_t> eos_ids;    // end the answer; not part of the text
  bool ignore_eos = false;
  TokenConstraint* constraint = nullptr;  // not owned; fresh for each request
  bool split_reasoning = true;     // route <think>...</think> to GenerationResult::reasoning
  bool reasoning_open = false;     // the prompt ends inside <think> (template pre-opened it)
  int32_t top_logprobs = -1;       // >= 0: record the chosen token's log-probability and this many alternatives
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely alternatives, descending
};

struct GenerationResult {
  std::string content;
  std::string reasoning;
  std::vector<int32_t> tokens;  // every generated id, including a final end-of-generation id
  std::vector<TokenLogprob> logprobs;
  FinishReason finish = FinishReason::Length;
  int64_t prompt_tokens = 0;
  double prompt_ms = 0;
  double generation_ms = 0;
  double tokens_per_second() const {
    return generation_ms > 0 ? double(tokens.size()) * 1000.0 / generation_ms : 0.0;
  }
};

// Receives each new piece of answer and reasoning text as it becomes final; returns false to cancel.
using StreamCallback = std::function<bool(const std::string& content, const std::string& reasoning)>;

// The state of one answer being generated, independent of how the model is run: the
// single-sequence loop below and the server's batch scheduler both drive it.
class AnswerState {
 public:
  // Validates the request (sampling parameters, max_tokens) against the model's vocabulary.
  AnswerState(const Tokenizer& tokenizer, const GenerationRequest& request, int64_t vocab_size);
  ~AnswerState();
  AnswerState(const AnswerState&) = delete;
  AnswerState& operator=(const AnswerState&) = delete;

  // Consumes the logits of the latest position and picks the next token. Returns it when the
  // answer goes on (the caller feeds it to the model), or -1 when the answer is finished.
  // `room`: positions still free in the context once this token is fed (< 0: it cannot be).
  int32_t step(std::vector<float>& logits, int64_t room, const StreamCallback& on_text = {});
  bool done() const { return done_; }
  // Ends the answer early (e.g. a client went away).
  void cancel() { finish(FinishReason::Cancelled, {}); }
  GenerationResult& result() { return result_; }

 private:
  void finish(FinishReason reason, const StreamCallback& on_text);
  bool emit(const std::string& text, const StreamCallback& on_text);

  const Tokenizer& tokenizer_;
  GenerationRequest request_;
  std::vector<uint8_t> decodable_;
  std::vector<uint8_t> allowed_;
  std::vector<int32_t> context_;
  struct Streams;
  std::unique_ptr<Streams> streams_;
  GenerationResult result_;
  bool done_ = false;
};

// Runs `request` on `session`, reusing the cached prefix the prompt shares with session.tokens(). Throws csq::Error when the
// prompt does not fit in the context (naming both lengths) or a parameter is invalid.
GenerationResult generate(Session& session, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const StreamCallback& on_text = {});

}  // namespace csq
