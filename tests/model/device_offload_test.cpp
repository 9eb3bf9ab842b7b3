// Partial offload (--gpu-layers): the first N layers on the Vulkan device, the rest and the
// output head on the CPU, the KV cache split the same way. Logits equal the CPU's within the
// fixture tolerance for 0, 1, some and all layers, through a prompt, decoding steps and a prefix
// copy; the layer count is chosen from the device's memory when not given.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "model/device_model.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "vulkan_device.h"

namespace csq {
namespace {

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Largest |a - b| relative to the largest |b|.
float relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d / max_abs(b);
}

// A prompt with logits at every position, then three greedy steps, on one session.
std::vector<std::vector<float>> run(const Model& model, ThreadPool& pool) {
  const std::vector<int32_t> prompt = {9, 400, 17, 3021, 88, 5, 1200, 64, 77, 301, 2, 999};
  Session session(model, 64, pool);
  std::vector<std::vector<float>> out = {session.feed(prompt, /*all_positions=*/true)};
  const int64_t vocab = model.config().vocab_size;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float>& last = out.back();
    const auto best = std::max_element(last.end() - vocab, last.end()) - (last.end() - vocab);
    out.push_back(session.feed({int32_t(best)}));
  }
  return out;
}

TEST(VulkanOffload, FirstLayersOnTheDeviceGiveTheCpuLogits) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = test::fixture("hf/qwen3-tiny-gqa");
  ThreadPool pool(2);
  auto cpu = Model::load(dir);
  const auto reference = run(*cpu, pool);
  const int n_layers = int(cpu->config().n_layers);
  for (int layers : {0, 1, n_layers - 1, n_layers, n_layers + 5}) {
    SCOPED_TRACE("gpu layers " + std::to_string(layers));
    auto model = Model::load(dir);
    const vulkan::DeviceList list = vulkan::list_devices();
    if (list.devices.empty()) GTEST_SKIP() << "no Vulkan device: " << list.problem;
    const bool placed = place_model(*model, DeviceChoice{true, 0, layers});
    EXPECT_EQ(placed, layers > 0);
    if (placed) {
      EXPECT_EQ(int64_t(model->device()->layers.size()), std::min(layers, n_layers));
      EXPECT_EQ(model->device()->lm_head != nullptr, layers >= n_layers);
    }
    const auto ours = run(*model, pool);
    ASSERT_EQ(ours.size(), reference.size());
    for (size_t i = 0; i < ours.size(); ++i) EXPECT_LE(relative_difference(ours[i], reference[i]), 1e-3f) << "pass " << i;
  }
}

// The server's prefix reuse copies the device's layers on the device and the rest on the host.
TEST(VulkanOffload, PrefixCopySpansDeviceAndHostLayers) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = test::fixture("hf/qwen3-tiny-gqa");
  auto cpu = Model::load(dir);
  auto model = Model::load(dir);
  const vulkan::DeviceList list = vulkan::list_devices();
  if (list.devices.empty()) GTEST_SKIP() << "no Vulkan device: " << list.problem;
  ASSERT_TRUE(place_model(*model, DeviceChoice{true, 0, 2}));
  ThreadPool pool(2);
  std::vector<std::vector<float>> logits;
  for (const Model* m : {cpu.get(), model.get()}) {
    KvCache cache(m->config(), 2, 32);
    Batch prompt;
    for (int32_t p = 0; p < 6; ++p) prompt.add(100 + p, p, 0, false);
    std::vector<float> out;
    forward(*m, prompt, cache, pool, out);
    cache.copy_prefix(0, 1, 6);
    Batch next;
    next.add(42, 6, 1, true);  // continues sequence 1 from the copied prefix
    forward(*m, next, cache, pool, out);
    logits.push_back(out);
  }
  EXPECT_LE(relative_difference(logits[1], logits[0]), 1e-3f);
}

TEST(VulkanOffload, LayerCountFollowsTheDeviceMemory) {
  OffloadSizes s;
  s.embedding = 100;
  s.head = 50;
  s.layers = {200, 200, 200, 200};
  EXPECT_EQ(s.weights(4), 950u);
  EXPECT_EQ(s.weights(2), 500u);  // no head without every layer
  EXPECT_EQ(choose_gpu_layers(s, -1, 2000, "dev"), 4);   // 950 fits 90% of 2000
  EXPECT_EQ(choose_gpu_layers(s, -1, 1000, "dev"), 3);   // 950 > 900; 700 fits
  EXPECT_EQ(choose_gpu_layers(s, -1, 400, "dev"), 1);    // 300 fits 360
  EXPECT_EQ(choose_gpu_layers(s, 2, 100, "dev"), 2);     // asked for: taken as given
  EXPECT_EQ(choose_gpu_layers(s, 99, 100000, "dev"), 4);  // more than the model has: all
  try {
    choose_gpu_layers(s, -1, 300, "vulkan:0 (tiny)");
    FAIL() << "placed a layer on a device it does not fit";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("vulkan:0 (tiny)"), std::string::npos) << what;
    EXPECT_NE(what.find("not even one layer fits"), std::string::npos) << what;
    EXPECT_NE(what.find("GiB"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace csq
