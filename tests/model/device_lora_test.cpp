// LoRA adapters applied at run time on the Vulkan device: the same logits as the CPU's forward
// pass with the same adapters (every projection adapted, two adapters at once), and different
// from the logits without them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "vulkan_device.h"

namespace csq {
namespace {

// An adapter of every projection with random A and B, so each target visibly moves the logits.
AttachedLora random_adapter(const ModelConfig& config, int64_t rank, uint32_t seed, float strength) {
  const std::vector<LoraTarget> all = {LoraTarget::Q,    LoraTarget::K,  LoraTarget::V,   LoraTarget::O,
                                       LoraTarget::Gate, LoraTarget::Up, LoraTarget::Down};
  LoraAdapter adapter = LoraAdapter::zeros(config, rank, double(2 * rank), false, all);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.05f);
  for (auto& layer : adapter.layers)
    for (LoraPair& pair : layer) {
      for (float& v : pair.a) v = normal(rng);
      for (float& v : pair.b) v = normal(rng);
    }
  return attach_lora(std::move(adapter), config, strength);
}

TEST(VulkanLora, AdaptersAtRunTimeMatchTheCpu) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = test::fixture("hf/qwen3-tiny-gqa");
  auto cpu = Model::load(dir);
  auto gpu = Model::load(dir);
  const std::vector<AttachedLora> adapters = {random_adapter(cpu->config(), 4, 1, 1.0f),
                                              random_adapter(cpu->config(), 2, 2, 0.5f)};
  cpu->set_adapters(adapters);
  gpu->set_adapters(adapters);
  std::string why;
  if (!test::place_on_vulkan(*gpu, why)) GTEST_SKIP() << "no Vulkan device: " << why;
  auto plain = Model::load(dir);

  ThreadPool pool(0);
  const std::vector<int32_t> tokens = {11, 400, 7, 3001, 95, 12, 2048, 5, 77};
  const int64_t vocab = cpu->config().vocab_size;
  Session on_cpu(*cpu, 16, pool), on_gpu(*gpu, 16, pool), without(*plain, 16, pool);
  const std::vector<float> want = on_cpu.feed(tokens, true);
  const std::vector<float> got = on_gpu.feed(tokens, true);
  const std::vector<float> base = without.feed(tokens, true);
  ASSERT_EQ(got.size(), want.size());
  float max_ref = 0, max_diff = 0, moved = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(want[i]));
    max_diff = std::max(max_diff, std::fabs(got[i] - want[i]));
    moved = std::max(moved, std::fabs(want[i] - base[i]));
  }
  EXPECT_LE(max_diff, 1e-3f * max_ref) << "Vulkan and CPU logits with the adapters";
  EXPECT_GT(moved, 100 * max_diff) << "the adapters must move the logits far more than the backends differ";
  for (int64_t t = 0; t < int64_t(tokens.size()); ++t)
    EXPECT_EQ(argmax(got.data() + t * vocab, vocab), argmax(want.data() + t * vocab, vocab)) << "position " << t;
  // Decoding one more token through the device cache.
  const std::vector<float> next_cpu = on_cpu.feed({42}), next_gpu = on_gpu.feed({42});
  for (size_t i = 0; i < next_cpu.size(); ++i) ASSERT_NEAR(next_gpu[i], next_cpu[i], 1e-3f * max_ref) << i;
}

}  // namespace
}  // namespace csq
