// The server's scheduler on the Vulkan device (what `csq serve --device vulkan` runs): continuous
// batching and the prefix cache give the CPU's greedy answers. Device 0 (lavapipe in CI); skips,
// saying why, where there is none.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "greedy_request.h"
#include "test_paths.h"
#include "vulkan_device.h"

namespace csq {
namespace {

GenerationRequest greedy(const Engine& engine, const std::string& system, const std::string& user, int64_t max_tokens) {
  return test::greedy_request(
      engine, nlohmann::ordered_json::array({{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}}),
      max_tokens);
}

TEST(VulkanScheduler, BatchesAndPrefixCacheGiveTheCpuAnswers) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model_dir = test::fixture("hf/qwen3-tiny-vocab");
  Engine cpu = load_engine(model_dir);
  Engine gpu = load_engine(model_dir);
  std::string why;
  if (!test::place_on_vulkan(*gpu.model, why)) GTEST_SKIP() << "no Vulkan device: " << why;
  ThreadPool pool(2);
  const std::string playbook = "SOC playbook: " + std::string(400, 'x');
  const std::vector<std::string> alerts = {"alert one: failed logins x500", "alert two: new service installed",
                                           "alert three: LSASS read"};
  constexpr int64_t kTokens = 6;

  // Each request alone on the CPU.
  std::vector<std::vector<int32_t>> reference;
  for (const std::string& a : alerts) {
    Session session(*cpu.model, 512, pool);
    reference.push_back(generate(session, cpu.tokenizer, greedy(cpu, playbook, a, kTokens)).tokens);
  }

  // All three at once on the device: two slots, so one waits and joins a running batch, and
  // prompts arrive in chunks of 16 interleaved with decoding. The shared system prompt then
  // comes from the device's prefix cache for the later ones.
  SchedulerConfig config;
  config.n_parallel = 2;
  config.n_ctx = 512;
  config.n_batch = 16;
  Scheduler scheduler(*gpu.model, gpu.tokenizer, pool, config);
  std::vector<std::shared_ptr<Job>> jobs;
  for (const std::string& a : alerts)
    jobs.push_back(scheduler.submit(greedy(gpu, playbook, a, kTokens), nullptr, std::chrono::seconds(300)));
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_NE(jobs[i], nullptr);
    EXPECT_EQ(jobs[i]->wait(std::chrono::seconds(300)).tokens, reference[i]) << alerts[i];
  }
  // The first alert again, after its slot was reused: the prefix comes from the cache, the
  // answer is unchanged.
  auto again = scheduler.submit(greedy(gpu, playbook, alerts[0], kTokens), nullptr, std::chrono::seconds(300));
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->wait(std::chrono::seconds(300)).tokens, reference[0]);
  EXPECT_GT(again->cached_prompt_tokens(), 50) << "the shared system prompt should come from the device cache";
  EXPECT_GT(scheduler.stats().cached_prompt_tokens, 0u);
  EXPECT_EQ(scheduler.stats().completed, 4u);
}

}  // namespace
}  // namespace csq
