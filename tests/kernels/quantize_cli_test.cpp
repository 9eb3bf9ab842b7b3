// `csq quantize` against llama.cpp: quantizing the Hugging Face fixture reproduces, tensor by
// tensor, the bytes of the GGUF files llama.cpp's converter and llama-quantize wrote from the
// same weights (../shared/fixtures/gguf), and so the same logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "io/gguf.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace csq {
namespace {

class QuantizeCli : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantizeCli, ReproducesLlamaCppTensors) {
  CSQ_REQUIRE_FIXTURES();
  const std::string type = GetParam();
  const std::string out = test::temp_dir() + "/quantized-" + type + ".gguf";
  const auto r = test::run_csq({"quantize", "--model", test::fixture("hf/qwen3-tiny-gqa"), "--type", type, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const io::GgufFile ours(out);
  const io::GgufFile theirs(test::fixture("gguf/qwen3-tiny-gqa-" + type + ".gguf"));
  ASSERT_EQ(ours.tensors().size(), theirs.tensors().size());
  for (const io::GgufTensorInfo& t : theirs.tensors()) {
    SCOPED_TRACE(t.name);
    const io::GgufTensorInfo* o = ours.find_tensor(t.name);
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(dtype_info(o->type).name, std::string(dtype_info(t.type).name));
    EXPECT_EQ(o->dims, t.dims);
    ASSERT_EQ(o->n_bytes, t.n_bytes);
    EXPECT_EQ(0, std::memcmp(o->data, t.data, size_t(t.n_bytes))) << "tensor bytes differ";
  }
  for (const char* key : {"general.architecture", "general.file_type", "qwen3.block_count", "qwen3.attention.key_length"}) {
    ASSERT_NE(ours.find(key), nullptr) << key;
  }
  EXPECT_EQ(ours.get_int_opt("general.file_type"), theirs.get_int_opt("general.file_type"));

  // Same weights, so the same logits to the bit.
  auto a = Model::load(out);
  auto b = Model::load(test::fixture("gguf/qwen3-tiny-gqa-" + type + ".gguf"));
  ThreadPool pool(2);
  const std::vector<int32_t> tokens = {1, 200, 3000, 45, 7};
  Session sa(*a, 8, pool), sb(*b, 8, pool);
  const std::vector<float> la = sa.feed(tokens, true);
  const std::vector<float> lb = sb.feed(tokens, true);
  ASSERT_EQ(la.size(), lb.size());
  EXPECT_EQ(0, std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantizeCli, ::testing::Values("F16", "Q8_0", "Q4_0", "Q6_K", "Q4_K_M"));

// A GGUF input is requantized with the same names and rule; the tokenizer metadata is copied.
TEST(QuantizeCli, FromGgufKeepsTokenizerMetadata) {
  CSQ_REQUIRE_FIXTURES();
  const std::string out = test::temp_dir() + "/requantized-Q8_0.gguf";
  const std::string src = test::fixture("gguf/qwen3-tiny-gqa-F16.gguf");
  const auto r = test::run_csq({"quantize", "--model", src, "--type", "Q8_0", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Into a log (not a terminal) progress comes as whole lines, a few of them: it was one line
  // redrawn with '\r' for every tensor, hundreds of them run together in a log file.
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << r.err;
  const io::GgufFile ours(out);
  const io::GgufFile theirs(test::fixture("gguf/qwen3-tiny-gqa-Q8_0.gguf"));
  EXPECT_EQ(ours.get_string_array("tokenizer.ggml.tokens"), theirs.get_string_array("tokenizer.ggml.tokens"));
  for (const io::GgufTensorInfo& t : theirs.tensors()) {
    const io::GgufTensorInfo* o = ours.find_tensor(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    EXPECT_EQ(0, std::memcmp(o->data, t.data, size_t(t.n_bytes))) << t.name;
  }
}

TEST(QuantizeCli, RejectsUnknownType) {
  const auto r = test::run_csq({"quantize", "--model", "x", "--type", "Q3_K_XL", "--out", "y.gguf"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("Q4_K_M"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace csq
