// LoRA training against PEFT/PyTorch (../shared/fixtures/lora, float32): the loss at
// initialisation, every A and B gradient, 8 AdamW steps, and the trained adapter merged or
// attached at run time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/transformer.h"
#include "reference.h"
#include "test_paths.h"
#include "train/lora_graph.h"
#include "train/optimizer.h"

namespace csq {
namespace {

using test::fixture;

struct LoraFixture {
  std::unique_ptr<Model> model = Model::load(fixture("hf/qwen3-tiny-gqa"));
  test::Reference ref{fixture("lora/train_reference.safetensors")};
  LoraAdapter init = read_peft_adapter(fixture("lora/adapter_init"), model->config());

  train::PackedBatch batch() const {
    const auto tokens = ref.ints("tokens"), labels = ref.ints("labels");
    const size_t rows = 2, cols = tokens.size() / rows;
    train::PackedBatch b;
    for (size_t r = 0; r < rows; ++r)
      b.add_example({tokens.begin() + r * cols, tokens.begin() + (r + 1) * cols},
                    {labels.begin() + r * cols, labels.begin() + (r + 1) * cols});
    return b;
  }
};

double relative_difference(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += double(got[i] - want[i]) * (got[i] - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / norm);
}

std::string peft_name(int64_t layer, LoraTarget target, char which) {
  const bool attention = int(target) <= int(LoraTarget::O);
  return "base_model.model.model.layers." + std::to_string(layer) + (attention ? ".self_attn." : ".mlp.") +
         lora_target_name(target) + ".lora_" + which + ".weight";
}

// Every A and B gradient against PEFT's within `tolerance`; returns the worst relative difference.
double check_gradients(const LoraAdapter& grads, const test::Reference& ref, double tolerance) {
  double worst = 0;
  for (int64_t layer = 0; layer < int64_t(grads.layers.size()); ++layer)
    for (LoraTarget target : grads.targets)
      for (char which : {'A', 'B'}) {
        const LoraPair& g = grads.layers[size_t(layer)][size_t(target)];
        const std::string name = peft_name(layer, target, which);
        const double rel = relative_difference(which == 'A' ? g.a : g.b, ref.floats("grad." + name));
        EXPECT_LT(rel, tolerance) << name;
        worst = std::max(worst, rel);
      }
  return worst;
}

LoraAdapter zero_like(const LoraAdapter& a, const ModelConfig& config) {
  return LoraAdapter::zeros(config, a.rank, a.alpha, a.rslora, a.targets);
}

// One forward-backward pass of the fixture's batch through `model` with the fixture's initial
// adapter: the loss per loss token within loss_tolerance (relative) of PEFT's, every gradient
// within gradient_tolerance.
void expect_pass_matches_peft(const LoraFixture& f, const Model& model, train::GraphOptions options,
                              double loss_tolerance, double gradient_tolerance, const char* label) {
  ThreadPool pool(2);
  LoraAdapter grads = zero_like(f.init, model.config());
  train::LoraGraph graph(model, f.init, grads, options);
  const train::PackedBatch batch = f.batch();
  const double count = double(batch.loss_tokens());
  const double loss = graph.forward_backward(batch, float(1.0 / count), 0, pool) / count;
  const float loss0 = f.ref.floats("loss0")[0];
  EXPECT_NEAR(loss, loss0, loss_tolerance * std::fabs(loss0)) << label;
  const double worst = check_gradients(grads, f.ref, gradient_tolerance);
  std::printf("%s: loss %.7f (PEFT float32 %.7f); worst gradient relative difference %.2e\n", label, loss, loss0, worst);
}

TEST(LoraFixture, LossAndEveryGradientMatchPeft) {
  CSQ_REQUIRE_FIXTURES();
  LoraFixture f;
  expect_pass_matches_peft(f, *f.model, {}, 1e-4, 1e-3, "float32");
  // The loss-only pass (evaluation) gives the same loss.
  ThreadPool pool(2);
  LoraAdapter grads = zero_like(f.init, f.model->config());
  const train::PackedBatch batch = f.batch();
  const float loss0 = f.ref.floats("loss0")[0];
  EXPECT_NEAR(train::LoraGraph(*f.model, f.init, grads, {}).loss(batch, pool) / double(batch.loss_tokens()), loss0,
              1e-4 * std::fabs(loss0));
}

// Mixed precision (bf16 products, float32 accumulation and master weights) stays close to the
// float32 reference: loss within 1%, gradients within 5% (relative norm), AdamW losses within 1%.
TEST(LoraFixture, Bf16MixedPrecisionStaysCloseToTheReference) {
  CSQ_REQUIRE_FIXTURES();
  LoraFixture f;
  expect_pass_matches_peft(f, *f.model, {0.0f, 0, train::Precision::BF16}, 1e-2, 5e-2, "bf16");

  ThreadPool pool(2);
  const LoraAdapter& params = f.init;
  const train::PackedBatch batch = f.batch();
  const double count = double(batch.loss_tokens());
  const float loss0 = f.ref.floats("loss0")[0];
  // Stochastic rounding stays as close, and is reproducible for the same key.
  LoraAdapter g1 = zero_like(params, f.model->config()), g2 = g1;
  train::LoraGraph sr1(*f.model, params, g1, {0.0f, 5, train::Precision::BF16, true});
  train::LoraGraph sr2(*f.model, params, g2, {0.0f, 5, train::Precision::BF16, true});
  const double loss_sr = sr1.forward_backward(batch, float(1.0 / count), 3, pool) / count;
  EXPECT_EQ(sr2.forward_backward(batch, float(1.0 / count), 3, pool) / count, loss_sr);
  EXPECT_NEAR(loss_sr, loss0, 1e-2 * std::fabs(loss0));
  check_gradients(g1, f.ref, 5e-2);
}

TEST(LoraFixture, AdamWLossesMatchTorch) {
  CSQ_REQUIRE_FIXTURES();
  LoraFixture f;
  ThreadPool pool(2);
  LoraAdapter params = f.init;
  LoraAdapter grads = zero_like(params, f.model->config());
  LoraAdapter m = zero_like(params, f.model->config()), v = zero_like(params, f.model->config());
  std::vector<train::AdamWSlot> slots;
  for (size_t l = 0; l < params.layers.size(); ++l)
    for (LoraTarget t : params.targets) {
      const size_t i = size_t(t);
      slots.push_back({&params.layers[l][i].a, &grads.layers[l][i].a, &m.layers[l][i].a, &v.layers[l][i].a});
      slots.push_back({&params.layers[l][i].b, &grads.layers[l][i].b, &m.layers[l][i].b, &v.layers[l][i].b});
    }
  const train::PackedBatch batch = f.batch();
  const double count = double(batch.loss_tokens());
  const std::vector<float> want = f.ref.floats("losses_adamw");
  train::LoraGraph graph(*f.model, params, grads, {});
  double worst = 0;
  for (size_t step = 0; step < want.size(); ++step) {
    for (const auto& s : slots) std::fill(s.grad->begin(), s.grad->end(), 0.0f);
    const double loss = graph.forward_backward(batch, float(1.0 / count), step, pool) / count;
    EXPECT_NEAR(loss, want[step], 1e-3 * std::fabs(want[step])) << "step " << step;
    worst = std::max(worst, std::fabs(loss - want[step]) / std::fabs(want[step]));
    train::adamw_step(slots, {1e-3, 0.9, 0.999, 1e-8, 0.01}, int64_t(step + 1), 1e-3);
  }
  std::printf("AdamW: 8 losses %.4f .. %.4f, worst relative difference %.2e\n", want.front(), want.back(), worst);
  // The trained adapter gives the reference's trained adapter.
  const LoraAdapter after = read_peft_adapter(fixture("lora/adapter_after8"), f.model->config());
  for (size_t l = 0; l < params.layers.size(); ++l)
    for (LoraTarget t : params.targets) {
      EXPECT_LT(relative_difference(params.layers[l][size_t(t)].a, after.layers[l][size_t(t)].a), 1e-3);
      EXPECT_LT(relative_difference(params.layers[l][size_t(t)].b, after.layers[l][size_t(t)].b), 1e-3);
    }
}

// A llama GGUF stores q/k rows permuted for adjacent-pair RoPE: training on it must give the
// same adapter gradients, in Hugging Face order, as training on the Hugging Face checkpoint.
TEST(LoraGraph, LlamaGgufTrainsInHuggingFaceOrder) {
  CSQ_REQUIRE_FIXTURES();
  const std::string gguf = test::temp_dir() + "/llama31-tiny-F32.gguf";
  const auto made = test::run_csq({"quantize", "--model", fixture("hf/llama31-tiny"), "--type", "F32", "--out", gguf});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto hf = Model::load(fixture("hf/llama31-tiny")), gg = Model::load(gguf);
  ASSERT_TRUE(gg->config().rope.adjacent_pairs);
  const ModelConfig& c = hf->config();
  LoraAdapter params = LoraAdapter::zeros(c, 4, 8, false, {LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::Down});
  uint32_t seed = 1;
  for (auto& layer : params.layers)
    for (auto& pair : layer) {
      for (float& x : pair.a) x = float(int32_t((seed = seed * 1664525u + 1013904223u) >> 8) % 2001 - 1000) * 1e-4f;
      for (float& x : pair.b) x = float(int32_t((seed = seed * 1664525u + 1013904223u) >> 8) % 2001 - 1000) * 1e-4f;
    }
  LoraAdapter params_gg = params;
  convert_rotary_order(params_gg, gg->config(), true);
  train::PackedBatch batch;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back(int32_t((i * 37 + 11) % c.vocab_size));
  batch.add_example({tokens.begin(), tokens.begin() + 24}, {tokens.begin(), tokens.begin() + 24});
  batch.add_example({tokens.begin() + 24, tokens.end()}, {tokens.begin() + 24, tokens.end()});
  ThreadPool pool(2);
  LoraAdapter g_hf = zero_like(params, c), g_gg = zero_like(params, c);
  const double loss_hf = train::LoraGraph(*hf, params, g_hf, {}).forward_backward(batch, 1.0f, 0, pool);
  const double loss_gg = train::LoraGraph(*gg, params_gg, g_gg, {}).forward_backward(batch, 1.0f, 0, pool);
  EXPECT_NEAR(loss_gg, loss_hf, 1e-4 * std::fabs(loss_hf));
  convert_rotary_order(g_gg, gg->config(), false);
  for (size_t l = 0; l < params.layers.size(); ++l)
    for (LoraTarget t : params.targets) {
      EXPECT_LT(relative_difference(g_gg.layers[l][size_t(t)].a, g_hf.layers[l][size_t(t)].a), 1e-3) << l << lora_target_name(t);
      EXPECT_LT(relative_difference(g_gg.layers[l][size_t(t)].b, g_hf.layers[l][size_t(t)].b), 1e-3) << l << lora_target_name(t);
    }
}

// QLoRA-style: a Q8_0 base trains with gradients close to the float32 reference's (loss within
// 1%, gradients within 10%: the 8-bit weights move this random model's logits noticeably).
TEST(LoraGraph, QuantizedBaseGivesNearlyTheReferenceGradients) {
  CSQ_REQUIRE_FIXTURES();
  LoraFixture f;
  auto q8 = Model::load(fixture("gguf/qwen3-tiny-gqa-Q8_0.gguf"));
  expect_pass_matches_peft(f, *q8, {}, 1e-2, 1e-1, "Q8_0 base");
}

std::vector<float> logits_of_tokens(const Model& model, const std::vector<int32_t>& tokens) {
  ThreadPool pool(2);
  KvCache cache(model.config(), 1, int64_t(tokens.size()), DType::F32);  // adapter arithmetic, not cache rounding
  Batch batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.add(tokens[i], int32_t(i), 0, true);
  std::vector<float> logits;
  forward(model, batch, cache, pool, logits);
  return logits;
}

void expect_merged_reference(const Model& model, const test::Reference& ref) {
  const auto tokens = ref.ints("tokens");
  const std::vector<int32_t> first(tokens.begin(), tokens.begin() + 64);
  const std::vector<float> logits = logits_of_tokens(model, first);
  const int64_t vocab = model.config().vocab_size;
  const std::vector<float> last(logits.end() - vocab, logits.end());
  const double rel = relative_difference(last, ref.floats("merged_logits_last"));
  EXPECT_LT(rel, 1e-3);
  std::printf("merged logits relative difference %.2e\n", rel);
  const auto topk = ref.ints("merged_topk_ids");
  for (int64_t pos = 0; pos < 64; ++pos) {
    const float* row = logits.data() + pos * vocab;
    const int64_t best = std::max_element(row, row + vocab) - row;
    EXPECT_EQ(best, topk[size_t(pos * 20)]) << "position " << pos;
  }
}

TEST(LoraFixture, ReferenceAdapterAttachedGivesMergedLogits) {
  CSQ_REQUIRE_FIXTURES();
  LoraFixture f;
  f.model->set_adapters({attach_lora(read_adapter(fixture("lora/adapter_after8"), f.model->config()),
                                     f.model->config(), 1.0f)});
  expect_merged_reference(*f.model, f.ref);
}

TEST(LoraFixture, AdapterWrittenAndReadBackGivesIdenticalLogits) {
  CSQ_REQUIRE_FIXTURES();
  LoraFixture f;
  const ModelConfig& config = f.model->config();
  const LoraAdapter after = read_peft_adapter(fixture("lora/adapter_after8"), config);
  const std::string dir = test::temp_dir() + "/peft_roundtrip", gguf = test::temp_dir() + "/roundtrip-lora.gguf";
  write_peft_adapter(dir, after, config, "qwen3-tiny-gqa");
  write_gguf_adapter(gguf, after, config);
  const std::vector<int32_t> tokens = {1, 2, 3, 400, 500, 600, 7, 8};
  f.model->set_adapters({attach_lora(after, config, 1.0f)});
  const std::vector<float> want = logits_of_tokens(*f.model, tokens);
  for (const std::string& path : {dir, gguf}) {
    f.model->set_adapters({attach_lora(read_adapter(path, config), config, 1.0f)});
    EXPECT_EQ(logits_of_tokens(*f.model, tokens), want) << path;
  }
  // Strength 0 is the base model; two halves are one whole.
  f.model->set_adapters({attach_lora(after, config, 0.0f)});
  const std::vector<float> base_with_zero = logits_of_tokens(*f.model, tokens);
  f.model->set_adapters({});
  EXPECT_EQ(logits_of_tokens(*f.model, tokens), base_with_zero);
  f.model->set_adapters({attach_lora(after, config, 0.5f), attach_lora(after, config, 0.5f)});
  EXPECT_LT(relative_difference(logits_of_tokens(*f.model, tokens), want), 1e-5);
}

TEST(LoraFixture, AdapterErrorsNameTheProblem) {
  CSQ_REQUIRE_FIXTURES();
  LoraFixture f;
  const std::string dir = test::temp_dir() + "/bad_adapter";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(fixture("lora/adapter_init/adapter_model.safetensors"), dir + "/adapter_model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  auto expect_error = [&](const std::string& config_json, const std::string& needle) {
    std::ofstream(dir + "/adapter_config.json") << config_json;
    try {
      read_peft_adapter(dir, f.model->config());
      ADD_FAILURE() << "accepted: " << config_json;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string targets = R"("target_modules": ["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"])";
  expect_error("{", "not valid JSON");
  expect_error(R"({"lora_alpha": 16, )" + targets + "}", "'r'");
  expect_error(R"({"r": 8, "lora_alpha": 16, "use_dora": true, )" + targets + "}", "DoRA");
  expect_error(R"({"r": 4, "lora_alpha": 16, )" + targets + "}", "expects A [4, 256]");
  expect_error(R"({"r": 4, "lora_alpha": 16, )" + targets + "}", "(an adapter for another model?)");
  // A field of the wrong type is named (it was "wrong field type: type must be number, but is string").
  expect_error(R"({"r": "8", "lora_alpha": 16, )" + targets + "}", "'r' must be an integer");
  expect_error(R"({"r": 8, "lora_alpha": "16", )" + targets + "}", "'lora_alpha' must be a number");
  expect_error(R"({"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", 7]})", "'target_modules' must be");
  expect_error(R"({"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "lm_head"]})", "lm_head");
  expect_error(R"({"r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]})", "only 8 are LoRA");
  EXPECT_THROW(read_adapter(dir + "/missing", f.model->config()), Error);
}

}  // namespace
}  // namespace csq
