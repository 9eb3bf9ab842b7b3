#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "base/error.h"
#include "runtime/constraint.h"
#include "runtime/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace csq {
namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Log-probabilities over the whole vocabulary of the raw (unmasked) model output.
TokenLogprob logprob_of(const std::vector<float>& logits, int32_t chosen, int32_t n_top) {
  float max_logit = -INFINITY;
  for (float l : logits) max_logit = std::max(max_logit, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l - max_logit));
  const float log_z = max_logit + float(std::log(sum));
  TokenLogprob out;
  out.id = chosen;
  out.logprob = logits[size_t(chosen)] - log_z;
  std::vector<std::pair<int32_t, float>> all;
  all.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) all.emplace_back(int32_t(i), logits[i] - log_z);
  const size_t k = std::min(all.size(), size_t(std::max(0, n_top)));
  std::partial_sort(all.begin(), all.begin() + k, all.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); });
  out.top.assign(all.begin(), all.begin() + k);
  return out;
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

struct AnswerState::Streams {
  Streams(const Tokenizer& tokenizer, const GenerationRequest& request)
      : sampler(request.sampling), stops(request.stop), splitter(request.reasoning_open), decoder(tokenizer) {}
  Sampler sampler;
  StopStringFilter stops;
  ReasoningSplitter splitter;
  IncrementalDecoder decoder;
};

AnswerState::AnswerState(const Tokenizer& tokenizer, const GenerationRequest& request, int64_t vocab_size)
    : tokenizer_(tokenizer), request_(request), context_(request.prompt) {
  request_.sampling.validate(vocab_size);
  if (request_.max_tokens < 0) fail_usage("max_tokens must be >= 0");
  // Ids the tokenizer cannot decode (padding rows of the embedding) are never produced.
  decodable_.assign(size_t(vocab_size), 0);
  for (int64_t id = 0; id < vocab_size; ++id) decodable_[size_t(id)] = tokenizer.kind(int32_t(id)) != TokenKind::Absent;
  streams_ = std::make_unique<Streams>(tokenizer, request_);
  result_.prompt_tokens = int64_t(request_.prompt.size());
  if (request_.max_tokens == 0) finish(FinishReason::Length, {});
}

AnswerState::~AnswerState() = default;

bool AnswerState::emit(const std::string& text, const StreamCallback& on_text) {
  ReasoningSplitter::Parts parts;
  if (request_.split_reasoning) parts = streams_->splitter.push(text);
  else parts.content = text;
  result_.content += parts.content;
  result_.reasoning += parts.reasoning;
  return !on_text || (parts.content.empty() && parts.reasoning.empty()) || on_text(parts.content, parts.reasoning);
}

void AnswerState::finish(FinishReason reason, const StreamCallback& on_text) {
  if (done_) return;
  done_ = true;
  result_.finish = reason;
  if (reason == FinishReason::Cancelled) return;
  // Release what the streams still hold back: an unfinished character, a partial stop string.
  emit(streams_->stops.push(streams_->decoder.finish()), on_text);
  emit(streams_->stops.flush(), on_text);
  if (request_.split_reasoning) {
    ReasoningSplitter::Parts rest = streams_->splitter.flush();
    result_.content += rest.content;
    result_.reasoning += rest.reasoning;
    if (on_text && (!rest.content.empty() || !rest.reasoning.empty())) on_text(rest.content, rest.reasoning);
  }
}

int32_t AnswerState::step(std::vector<float>& logits, int64_t room, const StreamCallback& on_text) {
  if (done_) return -1;
  const auto& eos = request_.eos_ids;
  allowed_ = decodable_;
  if (request_.constraint) {
    request_.constraint->mask(allowed_);
    const bool may_end = request_.constraint->can_end();
    for (int32_t id : eos)
      if (size_t(id) < allowed_.size()) allowed_[size_t(id)] = may_end ? 1 : 0;
  }
  if (request_.ignore_eos)
    for (int32_t id : eos)
      if (size_t(id) < allowed_.size()) allowed_[size_t(id)] = 0;
  std::vector<float> raw;
  if (request_.top_logprobs >= 0) raw = logits;
  const int32_t next = streams_->sampler.sample(logits, context_, request_.prompt.size(), allowed_);
  if (next < 0) {  // nothing allowed: the constraint is complete or unsatisfiable
    finish(FinishReason::Stop, on_text);
    return -1;
  }
  result_.tokens.push_back(next);
  if (request_.top_logprobs >= 0) result_.logprobs.push_back(logprob_of(raw, next, request_.top_logprobs));
  if (!request_.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
    finish(FinishReason::Stop, on_text);
    return -1;
  }
  if (request_.constraint) request_.constraint->accept(next);
  context_.push_back(next);
  if (!emit(streams_->stops.push(streams_->decoder.push(next)), on_text)) {
    finish(FinishReason::Cancelled, on_text);
    return -1;
  }
  if (streams_->stops.stopped() || (request_.constraint && request_.constraint->must_end())) {
    finish(FinishReason::Stop, on_text);
    return -1;
  }
  if (int64_t(result_.tokens.size()) >= request_.max_tokens || room < 0) {
    finish(FinishReason::Length, on_text);
    return -1;
  }
  return next;
}

GenerationResult generate(Session& session, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const StreamCallback& on_text) {
  if (request.prompt.empty()) fail_usage("the prompt is empty (no tokens to condition on)");
  const int64_t prompt_len = int64_t(request.prompt.size());
  if (prompt_len > session.n_ctx())
    fail_input("the prompt is " + std::to_string(prompt_len) + " tokens but the context holds " +
               std::to_string(session.n_ctx()) + " (it is never truncated: shorten it or raise --ctx)");
  AnswerState answer(tokenizer, request, session.model().config().vocab_size);

  // Reuse the cached keys/values of the prefix this prompt shares with what the session holds
  // (the previous turns of a chat); at least the last prompt token is run again for its logits.
  const auto& cached = session.tokens();
  size_t shared = 0;
  while (shared < cached.size() && shared + 1 < request.prompt.size() && cached[shared] == request.prompt[shared]) ++shared;
  session.rewind(int64_t(shared));
  const auto prompt_start = std::chrono::steady_clock::now();
  std::vector<float> logits = session.feed(std::vector<int32_t>(request.prompt.begin() + int64_t(shared), request.prompt.end()));
  const double prompt_ms = ms_since(prompt_start);
  const auto gen_start = std::chrono::steady_clock::now();
  for (;;) {
    const int32_t next = answer.step(logits, session.n_ctx() - session.position() - 1, on_text);
    if (next < 0) break;
    logits = session.feed({next});
  }
  GenerationResult result = std::move(answer.result());
  result.prompt_ms = prompt_ms;
  result.generation_ms = ms_since(gen_start);
  return result;
}

}  // namespace csq
