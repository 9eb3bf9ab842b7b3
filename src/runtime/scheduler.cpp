#include "runtime/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "runtime/constraint.h"
#include "tokenizer/tokenizer.h"

namespace csq {

using Clock = std::chrono::steady_clock;

std::optional<Job::Event> Job::next_event(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

const GenerationResult& Job::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return finished_; })) {
    cancelled_ = true;
    cv_.wait(lock, [&] { return finished_; });
  }
  return result_;
}

bool Job::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return finished_; });
}

bool Job::finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finished_;
}

struct Scheduler::Slot {
  int32_t index = 0;
  std::vector<int32_t> tokens;  // whose keys/values this slot's cache sequence holds
  std::shared_ptr<Job> job;
  std::unique_ptr<AnswerState> answer;
  size_t prompt_done = 0;  // prompt tokens already in the cache
  int32_t pending = -1;    // sampled token still to be fed
  uint64_t last_used = 0;
  Clock::time_point first_token;
};

namespace {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

// A job that never got a slot (cancelled in the queue, or the scheduler stopped).
void Scheduler::finish_unstarted(Job& job) {
  std::lock_guard<std::mutex> lock(job.mutex_);
  job.result_.finish = FinishReason::Cancelled;
  job.result_.prompt_tokens = int64_t(job.request_.prompt.size());
  job.finished_ = true;
  job.events_.push_back({"", "", true});
  job.cv_.notify_all();
}

Scheduler::Scheduler(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool, SchedulerConfig config)
    : model_(model),
      tokenizer_(tokenizer),
      pool_(pool),
      config_(config),
      cache_(model.config(), config.n_parallel, config.n_ctx, config.kv_type) {
  if (config_.n_batch < 1) fail_usage("n_batch must be at least 1");
  for (int32_t i = 0; i < config_.n_parallel; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->index = i;
  }
  worker_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& job : queue_) job->cancel();
  }
  work_cv_.notify_all();
  worker_.join();
}

std::shared_ptr<Job> Scheduler::submit(GenerationRequest request, std::unique_ptr<TokenConstraint> constraint,
                                       std::chrono::milliseconds timeout) {
  if (request.prompt.empty()) fail_usage("the prompt is empty");
  if (int64_t(request.prompt.size()) > config_.n_ctx)
    fail_input("the prompt is " + std::to_string(request.prompt.size()) + " tokens but the context holds " +
               std::to_string(config_.n_ctx) + " (prompts are never truncated)");
  request.sampling.validate(model_.config().vocab_size);
  if (request.max_tokens < 0) fail_usage("max_tokens must be >= 0");
  for (int32_t id : request.prompt)
    if (id < 0 || id >= model_.config().vocab_size) fail_input("prompt token id " + std::to_string(id) + " is out of range");
  auto job = std::make_shared<Job>();
  job->request_ = std::move(request);
  job->owned_constraint_ = std::move(constraint);
  job->request_.constraint = job->owned_constraint_.get();
  job->submitted_ = Clock::now();
  job->deadline_ = job->submitted_ + timeout;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_ || stopping_ || queue_.size() >= config_.max_queue) return nullptr;
    queue_.push_back(job);
    stats_.queue_depth = int64_t(queue_.size());
  }
  work_cv_.notify_one();
  return job;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void Scheduler::drain(std::chrono::milliseconds deadline) {
  const auto until = Clock::now() + deadline;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    draining_ = true;
  }
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stats_.active == 0 && queue_.empty()) return;
      if (Clock::now() >= until) {
        for (auto& job : queue_) job->cancel();
        for (auto& slot : slots_)
          if (slot->job) slot->job->cancel();
      }
    }
    work_cv_.notify_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Gives queued jobs free slots: the slot whose cached tokens share the longest prefix with the
// prompt (least recently used on ties); a longer prefix held by any other slot is copied over.
void Scheduler::admit_locked() {
  while (!queue_.empty()) {
    std::shared_ptr<Job> job = queue_.front();
    if (job->cancelled()) {
      queue_.pop_front();
      finish_unstarted(*job);
      continue;
    }
    const auto& prompt = job->request_.prompt;
    const size_t limit = prompt.size() - 1;  // the last prompt token is always run for its logits
    Slot* best = nullptr;
    size_t best_shared = 0;
    for (auto& slot : slots_) {
      if (slot->job) continue;
      const size_t shared = std::min(limit, common_prefix(slot->tokens, prompt));
      if (!best || shared > best_shared || (shared == best_shared && slot->last_used < best->last_used)) {
        best = slot.get();
        best_shared = shared;
      }
    }
    if (!best) return;
    queue_.pop_front();
    Slot* donor = nullptr;
    size_t donor_shared = best_shared;
    for (auto& slot : slots_) {
      const size_t shared = std::min(limit, common_prefix(slot->tokens, prompt));
      if (slot.get() != best && shared > donor_shared) {
        donor = slot.get();
        donor_shared = shared;
      }
    }
    if (donor) {
      cache_.copy_prefix(donor->index, best->index, int64_t(donor_shared));
      best_shared = donor_shared;
    }
    best->tokens.assign(prompt.begin(), prompt.begin() + int64_t(best_shared));
    best->prompt_done = best_shared;
    best->pending = -1;
    best->job = job;
    best->answer = std::make_unique<AnswerState>(tokenizer_, job->request_, model_.config().vocab_size);
    best->last_used = ++clock_;
    job->cached_tokens_ = int64_t(best_shared);
    job->started_ = Clock::now();
    stats_.prompt_tokens += prompt.size();
    stats_.cached_prompt_tokens += best_shared;
    ++stats_.active;
    if (best->answer->done()) complete(*best);  // max_tokens = 0
  }
}

void Scheduler::complete(Slot& slot) {
  std::shared_ptr<Job> job = std::move(slot.job);
  GenerationResult result = std::move(slot.answer->result());
  const auto now = Clock::now();
  const auto first = slot.first_token == Clock::time_point{} ? now : slot.first_token;
  result.prompt_ms = ms_between(job->started_, first);
  result.generation_ms = ms_between(first, now);
  slot.answer.reset();
  slot.pending = -1;
  slot.first_token = {};
  slot.last_used = ++clock_;
  stats_.generated_tokens += result.tokens.size();
  ++stats_.completed;
  --stats_.active;
  std::lock_guard<std::mutex> lock(job->mutex_);
  job->result_ = std::move(result);
  job->finished_ = true;
  job->events_.push_back({"", "", true});
  job->cv_.notify_all();
}

void Scheduler::step() {
  // Cancelled or overdue answers end first.
  const auto now = Clock::now();
  for (auto& slot : slots_)
    if (slot->job && (slot->job->cancelled() || now > slot->job->deadline_)) {
      slot->answer->cancel();
      std::lock_guard<std::mutex> lock(mutex_);
      complete(*slot);
    }

  Batch batch;
  std::vector<Slot*> rows;  // the slot of each logits row, in batch order
  std::vector<std::pair<Slot*, size_t>> chunks;
  for (auto& slot : slots_)
    if (slot->job && slot->pending >= 0) {
      batch.add(slot->pending, int32_t(slot->tokens.size()), slot->index, true);
      rows.push_back(slot.get());
    }
  const int64_t decoding = int64_t(rows.size());
  int64_t budget = std::max<int64_t>(1, config_.n_batch - batch.size());
  for (auto& slot : slots_) {
    if (!slot->job || slot->pending >= 0 || budget <= 0) continue;
    const auto& prompt = slot->job->request_.prompt;
    const size_t n = std::min<size_t>(prompt.size() - slot->prompt_done, size_t(budget));
    for (size_t i = 0; i < n; ++i) {
      const size_t at = slot->prompt_done + i;
      batch.add(prompt[at], int32_t(at), slot->index, at + 1 == prompt.size());
    }
    if (slot->prompt_done + n == prompt.size()) rows.push_back(slot.get());
    chunks.emplace_back(slot.get(), n);
    budget -= int64_t(n);
  }
  if (batch.size() == 0) return;

  std::vector<float> logits;
  forward(model_, batch, cache_, pool_, logits);
  for (auto& slot : slots_)
    if (slot->job && slot->pending >= 0) slot->tokens.push_back(slot->pending);
  for (auto& [slot, n] : chunks) {
    const auto& prompt = slot->job->request_.prompt;
    slot->tokens.insert(slot->tokens.end(), prompt.begin() + int64_t(slot->prompt_done),
                        prompt.begin() + int64_t(slot->prompt_done + n));
    slot->prompt_done += n;
  }
  const int64_t vocab = model_.config().vocab_size;
  std::vector<float> row;
  for (size_t r = 0; r < rows.size(); ++r) {
    Slot& slot = *rows[r];
    row.assign(logits.begin() + int64_t(r) * vocab, logits.begin() + int64_t(r + 1) * vocab);
    Job& job = *slot.job;
    const int32_t next = slot.answer->step(row, config_.n_ctx - int64_t(slot.tokens.size()) - 1,
                                           [&job](const std::string& content, const std::string& reasoning) {
                                             std::lock_guard<std::mutex> lock(job.mutex_);
                                             job.events_.push_back({content, reasoning, false});
                                             job.cv_.notify_all();
                                             return !job.cancelled();
                                           });
    if (slot.first_token == Clock::time_point{}) slot.first_token = Clock::now();
    if (next < 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      complete(slot);
    } else {
      slot.pending = next;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.forward_passes;
  stats_.last_batch_tokens = batch.size();
  stats_.last_batch_sequences = decoding + int64_t(chunks.size());
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || stats_.active > 0 || !queue_.empty(); });
      if (stopping_) break;
      admit_locked();
      stats_.queue_depth = int64_t(queue_.size());
      if (stats_.active == 0) continue;  // the queue held only cancelled jobs
    }
    try {
      step();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "csq: scheduler: %s; cancelling the running requests\n", e.what());
      for (auto& slot : slots_)
        if (slot->job) {
          slot->answer->cancel();
          std::lock_guard<std::mutex> lock(mutex_);
          complete(*slot);
        }
    }
  }
  // Shutting down: end whatever is still running.
  for (auto& slot : slots_)
    if (slot->job) {
      slot->answer->cancel();
      std::lock_guard<std::mutex> lock(mutex_);
      complete(*slot);
    }
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& job : queue_) finish_unstarted(*job);
  queue_.clear();
}

}  // namespace csq
