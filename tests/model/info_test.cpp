// csq info on Hugging Face and GGUF checkpoints.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace csq
