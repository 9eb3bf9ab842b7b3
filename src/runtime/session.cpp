#include "runtime/session.h"

#include "base/error.h"

namespace csq {

Session::Session(const Model& model, int64_t n_ctx, ThreadPool& pool, int64_t n_batch, DType kv_type)
    : model_(model), pool_(pool), cache_(model.config(), 1, n_ctx, kv_type), n_batch_(n_batch) {}

const std::vector<float>& Session::feed(const std::vector<int32_t>& tokens, bool all_positions) {
  const int64_t n = int64_t(tokens.size());
  if (n == 0) fail_usage("nothing to feed: the token list is empty");
  const int64_t first_position = position();
  if (first_position + n > cache_.n_ctx())
    fail_input("the input needs " + std::to_string(first_position + n) + " positions but the context holds " +
               std::to_string(cache_.n_ctx()) + " tokens");
  logits_.clear();
  Batch batch;
  for (int64_t chunk = 0; chunk < n; chunk += n_batch_) {
    const int64_t end = std::min(n, chunk + n_batch_);
    batch.clear();
    for (int64_t i = chunk; i < end; ++i)
      batch.add(tokens[size_t(i)], int32_t(first_position + i), 0, all_positions || i == n - 1);
    forward(model_, batch, cache_, pool_, chunk_logits_);
    logits_.insert(logits_.end(), chunk_logits_.begin(), chunk_logits_.end());
  }
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  return logits_;
}

void Session::rewind(int64_t n) {
  if (n < 0 || n > position()) fail_usage("cannot rewind a session of " + std::to_string(position()) + " tokens to " + std::to_string(n));
  tokens_.resize(size_t(n));
}

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

}  // namespace csq
