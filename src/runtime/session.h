// One sequence being processed: feeds prompt tokens in chunks and decodes one token at a
// time, keeping its own KV cache. The context limit is enforced, never silently truncated.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "model/transformer.h"

namespace csq {

class Session {
 public:
  // n_ctx: the most positions this session can hold; n_batch: tokens per forward chunk;
  // kv_type: the KV cache's storage (F16, F32 or Q8_0).
  Session(const Model& model, int64_t n_ctx, ThreadPool& pool, int64_t n_batch = 512, DType kv_type = DType::F16);

  // Appends `tokens` at the current position. Returns the logits of the last token, or of every
  // appended token ([tokens.size(), vocab]) when all_positions. Throws csq::Error when the
  // tokens do not fit in the context, naming both lengths.
  const std::vector<float>& feed(const std::vector<int32_t>& tokens, bool all_positions = false);

  const Model& model() const { return model_; }
  int64_t position() const { return int64_t(tokens_.size()); }
  int64_t n_ctx() const { return cache_.n_ctx(); }
  // The tokens whose keys and values are in the cache, in order.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Forgets everything after the first n tokens (their cache entries get overwritten).
  void rewind(int64_t n);
  void reset() { rewind(0); }

 private:
  const Model& model_;
  ThreadPool& pool_;
  KvCache cache_;
  int64_t n_batch_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
  std::vector<float> chunk_logits_;
};

// Index of the largest logit (the first one on exact ties, as torch.argmax).
int32_t argmax(const float* logits, int64_t n);

}  // namespace csq
