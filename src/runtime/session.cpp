#include "runtime/session.h"

#include "base/error.h"

namespace csq {

Session::Session(const Model& model, int64_t n_ctx, ThreadPool& pool, int64_t n_batch)
    : model_(model), pool_(pool), cache_(model.config(), 1, n_ctx), n_batch_(n_batch) {}

const std::vector<float>& Session::feed(const std::vector<int32_t>& tokens, bool all_positions) {
  const int64_t n = int64_t(tokens.size());
  if (n == 0) fail_usage("nothing to feed: the token list is empty");
  if (position_ + n > cache_.n_ctx())
    fail_input("the input needs " + std::to_string(position_ + n) + " positions but the context holds " +
               std::to_string(cache_.n_ctx()) + " tokens");
  logits_.clear();
  Batch batch;
  for (int64_t start = 0; start < n; start += n_batch_) {
    const int64_t end = std::min(n, start + n_batch_);
    batch.clear();
    for (int64_t i = start; i < end; ++i)
      batch.add(tokens[size_t(i)], int32_t(position_ + i), 0, all_positions || i == n - 1);
    forward(model_, batch, cache_, pool_, chunk_logits_);
    logits_.insert(logits_.end(), chunk_logits_.begin(), chunk_logits_.end());
  }
  position_ += n;
  return logits_;
}

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

}  // namespace csq
