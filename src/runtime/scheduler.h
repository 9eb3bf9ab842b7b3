// Continuous batching for many independent requests on one model: every active sequence
// advances in the same forward pass (one pass over the weights per decode step), new
// requests join between steps, and long prompts are processed in chunks interleaved with
// the decoding of running answers. Each of the n_parallel slots owns one KV-cache sequence;
// an idle slot keeps its tokens, so a new prompt that shares a prefix with it (or with any
// running slot) reuses those keys and values instead of recomputing them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_pool.h"
#include "model/transformer.h"
#include "runtime/generator.h"

namespace csq {

class Tokenizer;

struct SchedulerConfig {
  int32_t n_parallel = 4;     // sequences decoded together (KV-cache slots)
  int64_t n_ctx = 4096;       // positions per slot
  int64_t n_batch = 256;      // most tokens in one forward pass (prompt chunks fill what decoding leaves)
  size_t max_queue = 64;      // requests waiting for a slot; more are refused
  DType kv_type = DType::F16;  // KV cache storage: F16, F32 or Q8_0
};

// One request travelling through the scheduler. Text arrives as events; the owner reads them
// with next_event() from its own thread and may cancel at any time.
class Job {
 public:
  struct Event {
    std::string content;
    std::string reasoning;
    bool final = false;  // the result below is complete
  };

  // Waits up to `timeout` for the next event; nullopt on timeout.
  std::optional<Event> next_event(std::chrono::milliseconds timeout);
  // Waits until the answer is complete (or the timeout passes; then it is cancelled).
  const GenerationResult& wait(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the answer to complete; false if it is still running (and left so).
  bool wait_for(std::chrono::milliseconds timeout);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  bool finished() const;
  const GenerationResult& result() const { return result_; }  // valid once finished
  int64_t cached_prompt_tokens() const { return cached_tokens_; }

 private:
  friend class Scheduler;
  GenerationRequest request_;
  std::unique_ptr<TokenConstraint> owned_constraint_;
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool finished_ = false;
  GenerationResult result_;
  int64_t cached_tokens_ = 0;
  std::chrono::steady_clock::time_point submitted_, started_;
};

struct SchedulerStats {
  int64_t queue_depth = 0;
  int64_t active = 0;
  int64_t last_batch_tokens = 0;
  int64_t last_batch_sequences = 0;
  uint64_t forward_passes = 0;
  uint64_t prompt_tokens = 0;         // every prompt token of every admitted request
  uint64_t cached_prompt_tokens = 0;  // of which reused from the prefix cache
  uint64_t generated_tokens = 0;
  uint64_t completed = 0;
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool, SchedulerConfig config);
  ~Scheduler();  // cancels what is left and stops the worker

  // Queues a request (its constraint, if any, is owned by the job). Throws csq::Error when the
  // prompt does not fit in a slot's context (naming both lengths) or a parameter is invalid;
  // returns nullptr when the queue is full (the caller answers 429).
  std::shared_ptr<Job> submit(GenerationRequest request, std::unique_ptr<TokenConstraint> constraint,
                              std::chrono::milliseconds timeout);

  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }
  // Stops admitting requests; waits up to `deadline` for running ones, then cancels the rest.
  void drain(std::chrono::milliseconds deadline);

 private:
  struct Slot;
  void run();
  void admit_locked();
  void step();
  void complete(Slot& slot);  // needs mutex_ held
  static void finish_unstarted(Job& job);

  const Model& model_;
  const Tokenizer& tokenizer_;
  ThreadPool& pool_;
  SchedulerConfig config_;
  KvCache cache_;
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  bool draining_ = false;
  SchedulerStats stats_;
  uint64_t clock_ = 0;  // for least-recently-used slot choice
  std::thread worker_;
};

}  // namespace csq
