// Continuous batching gives every request the answer it would get alone, and the prefix cache
// changes nothing but the work done.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "greedy_request.h"
#include "test_paths.h"

namespace csq {
namespace {

GenerationRequest greedy_request(const Engine& engine, const std::string& user, int64_t max_tokens) {
  return test::greedy_request(engine, nlohmann::ordered_json::array({{{"role", "user"}, {"content", user}}}), max_tokens);
}

TEST(Scheduler, BatchedAnswersEqualSingleSequenceAnswers) {
  CSQ_REQUIRE_FIXTURES();
  Engine engine = load_engine(test::fixture("hf/qwen3-tiny-vocab"));
  ThreadPool pool(2);
  const std::vector<std::string> questions = {"Map CVE-2024-23848 to a CWE.", "What is T1059?", "Triage: failed logins x500",
                                              "Explain Kerberoasting.", "CVSS for an unauthenticated RCE?"};
  std::vector<GenerationResult> alone;
  for (const auto& q : questions) {
    Session session(*engine.model, 512, pool);
    alone.push_back(generate(session, engine.tokenizer, greedy_request(engine, q, 20)));
  }
  SchedulerConfig config;
  config.n_parallel = 3;  // fewer slots than requests: some wait in the queue
  config.n_ctx = 512;
  config.n_batch = 16;    // prompts arrive in several chunks, interleaved with decoding
  Scheduler scheduler(*engine.model, engine.tokenizer, pool, config);
  std::vector<std::shared_ptr<Job>> jobs;
  for (const auto& q : questions)
    jobs.push_back(scheduler.submit(greedy_request(engine, q, 20), nullptr, std::chrono::seconds(120)));
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_NE(jobs[i], nullptr);
    const GenerationResult& r = jobs[i]->wait(std::chrono::seconds(120));
    EXPECT_EQ(r.tokens, alone[i].tokens) << questions[i];
    EXPECT_EQ(r.content, alone[i].content);
  }
  EXPECT_GT(scheduler.stats().forward_passes, 0u);
}

TEST(Scheduler, PrefixCacheReusesSharedPromptsWithoutChangingAnswers) {
  CSQ_REQUIRE_FIXTURES();
  Engine engine = load_engine(test::fixture("hf/qwen3-tiny-vocab"));
  ThreadPool pool(2);
  SchedulerConfig config;
  config.n_parallel = 2;
  config.n_ctx = 1024;
  Scheduler scheduler(*engine.model, engine.tokenizer, pool, config);
  const std::string playbook(600, 'x');
  auto ask = [&](const std::string& q) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array(
        {{{"role", "system"}, {"content", "SOC playbook: " + playbook}}, {{"role", "user"}, {"content", q}}});
    GenerationRequest r;
    r.prompt = engine.encode_chat(engine.render(messages));
    r.sampling.temperature = 0;
    r.max_tokens = 12;
    r.ignore_eos = true;
    return r;
  };
  auto first = scheduler.submit(ask("alert one"), nullptr, std::chrono::seconds(120));
  const GenerationResult a = first->wait(std::chrono::seconds(120));
  EXPECT_EQ(first->cached_prompt_tokens(), 0);
  auto second = scheduler.submit(ask("alert two"), nullptr, std::chrono::seconds(120));
  second->wait(std::chrono::seconds(120));
  EXPECT_GT(second->cached_prompt_tokens(), 50) << "the shared system prompt should come from the cache";
  // The first prompt again: its slot now holds "alert two", so the shared system prompt comes from
  // the cache and the rest is recomputed; the answer is unchanged either way.
  auto again = scheduler.submit(ask("alert one"), nullptr, std::chrono::seconds(120));
  const GenerationResult& b = again->wait(std::chrono::seconds(120));
  EXPECT_GE(again->cached_prompt_tokens(), second->cached_prompt_tokens());
  EXPECT_EQ(a.tokens, b.tokens);
  const SchedulerStats stats = scheduler.stats();
  EXPECT_GT(stats.cached_prompt_tokens, 0u);
  EXPECT_EQ(stats.completed, 3u);
}

TEST(Scheduler, FullQueueRefusesAndCancelStops) {
  CSQ_REQUIRE_FIXTURES();
  Engine engine = load_engine(test::fixture("hf/qwen3-tiny-vocab"));
  ThreadPool pool(1);
  SchedulerConfig config;
  config.n_parallel = 1;
  config.n_ctx = 256;
  config.max_queue = 1;
  Scheduler scheduler(*engine.model, engine.tokenizer, pool, config);
  auto long_job = scheduler.submit(greedy_request(engine, "long", 200), nullptr, std::chrono::seconds(120));
  ASSERT_NE(long_job, nullptr);
  // One may wait; with the slot busy and the queue full, the next is refused.
  std::vector<std::shared_ptr<Job>> more;
  for (int i = 0; i < 3; ++i) more.push_back(scheduler.submit(greedy_request(engine, "q", 4), nullptr, std::chrono::seconds(120)));
  EXPECT_TRUE(std::any_of(more.begin(), more.end(), [](const auto& j) { return j == nullptr; }));
  long_job->cancel();
  const GenerationResult& r = long_job->wait(std::chrono::seconds(60));
  EXPECT_EQ(r.finish, FinishReason::Cancelled);
  EXPECT_LT(r.tokens.size(), 200u);
  for (auto& j : more)
    if (j) j->wait(std::chrono::seconds(60));
}

TEST(Scheduler, PromptLongerThanTheContextIsRefused) {
  CSQ_REQUIRE_FIXTURES();
  Engine engine = load_engine(test::fixture("hf/qwen3-tiny-vocab"));
  ThreadPool pool(1);
  SchedulerConfig config;
  config.n_parallel = 1;
  config.n_ctx = 8;
  Scheduler scheduler(*engine.model, engine.tokenizer, pool, config);
  EXPECT_THROW(scheduler.submit(greedy_request(engine, "a prompt longer than eight tokens surely", 4), nullptr,
                                std::chrono::seconds(10)),
               Error);
}

}  // namespace
}  // namespace csq
