// csq info on Hugging Face and GGUF checkpoints.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf_writer.h"
#include "test_paths.h"

namespace csq {
namespace {

TEST(CliInfo, JsonDescribesTheCheckpoint) {
  CSQ_REQUIRE_FIXTURES();
  auto r = test::run_csq({"info", "--model", test::fixture("gguf/qwen3-tiny-gqa-Q4_K_M.gguf"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "qwen3");
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["layers"], 4);
  EXPECT_EQ(j["head_dim"], 128);
  EXPECT_EQ(j["kv_heads"], 2);
  EXPECT_GT(j["tensor_types"]["Q4_K"].get<int>(), 0);
  EXPECT_GT(j["tensor_types"]["Q6_K"].get<int>(), 0);  // Q4_K_M mixes in Q6_K
  EXPECT_FALSE(j["tokenizer"]["usable"].get<bool>());   // placeholder vocabulary
  EXPECT_FALSE(j["tied_embeddings"].get<bool>());

  r = test::run_csq({"info", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["tokenizer"]["usable"].get<bool>());
  EXPECT_TRUE(j["chat_template"]["present"].get<bool>());
  EXPECT_TRUE(j["tied_embeddings"].get<bool>());
  EXPECT_EQ(j["vocab_size"], 151936);
  EXPECT_EQ(j["tensor_types"]["BF16"], 24);
}

// A LoRA adapter given as --model is named as such, with where it goes, instead of "required
// metadata 'qwen3.embedding_length' is missing" or "no config.json".
TEST(CliInfo, AnAdapterGivenAsTheModelIsNamedAsOne) {
  const std::string gguf = test::temp_dir() + "/adapter-as-model.gguf";
  io::GgufWriter w;
  w.set_string("general.architecture", "qwen3");
  w.set_string("general.type", "adapter");
  w.set_f32("adapter.lora.alpha", 16);
  w.write(gguf);
  const std::string peft = test::temp_dir() + "/adapter-as-model";
  std::filesystem::create_directories(peft);
  std::ofstream(peft + "/adapter_config.json") << R"({"r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]})";
  for (const std::string& path : {gguf, peft}) {
    const auto r = test::run_csq({"info", "--model", path});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(path + ": a LoRA adapter, not a model (pass it with --lora)"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace csq
