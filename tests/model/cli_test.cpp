// The engine's command-line forms used by acceptance checks: logits, generate, info.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "io/safetensors.h"
#include "reference.h"
#include "test_paths.h"

namespace csq {
namespace {

std::string join_ids(const std::vector<int32_t>& ids, const char* sep) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? sep : "") + std::to_string(ids[i]);
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reductions have a fixed order, so the thread count cannot change a single bit.
TEST(CliLogits, IdenticalWithOneAndTwoThreads) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/qwen3-tiny-gqa");
  test::Reference ref(model + "/reference.safetensors");
  const std::string tokens = join_ids(ref.ints("tokens.3"), ",");  // 300 tokens
  const std::string one = test::temp_dir() + "/logits-t1.safetensors";
  const std::string two = test::temp_dir() + "/logits-t2.safetensors";
  for (const auto& [threads, out] : {std::pair{"1", one}, std::pair{"2", two}}) {
    const auto r = test::run_csq({"logits", "--model", model, "--tokens", tokens, "--all-positions", "--threads",
                                  threads, "--out", out});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  io::SafetensorsFile file(one);
  const io::SafetensorsTensor* logits = file.find("logits");
  ASSERT_NE(logits, nullptr);
  EXPECT_EQ(logits->dtype, DType::F32);
  EXPECT_EQ(logits->shape, (std::vector<int64_t>{300, 4096}));
  EXPECT_EQ(slurp(one), slurp(two));
}

TEST(CliLogits, LastPositionShapeAndValues) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/qwen2-tiny");
  test::Reference ref(model + "/reference.safetensors");
  const std::string out = test::temp_dir() + "/logits-last.safetensors";
  const auto r = test::run_csq({"logits", "--model", model, "--tokens", join_ids(ref.ints("tokens.1"), ","), "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  test::Reference ours(out);
  const auto got = ours.floats("logits");
  const auto want = ref.floats("logits_last.1");
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(ours.tensor("logits").shape, (std::vector<int64_t>{1, 2048}));
  float max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(got[i] - want[i]));
    max_ref = std::max(max_ref, std::fabs(want[i]));
  }
  EXPECT_LE(max_diff, 1e-3f * max_ref);
}

TEST(CliGenerate, PrintsTheGreedyIdsOnOneLine) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/llama31-tiny");
  test::Reference ref(model + "/reference.safetensors");
  const auto greedy = ref.ints("greedy.2");
  const auto r = test::run_csq({"generate", "--model", model, "--tokens", join_ids(ref.ints("tokens.2"), ","),
                                "--max-tokens", std::to_string(greedy.size()), "--temperature", "0", "--ignore-eos",
                                "--print-ids"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, join_ids(greedy, " ") + "\n");
}

TEST(CliGenerate, BadArgumentsAreUsageErrors) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/qwen2-tiny");
  auto r = test::run_csq({"generate", "--model", model, "--tokens", "1,x,3", "--print-ids"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'x'"), std::string::npos) << r.err;
  r = test::run_csq({"generate", "--model", model, "--tokens", "1,99999", "--print-ids", "--temperature", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("99999"), std::string::npos) << r.err;
  r = test::run_csq({"generate", "--model", test::temp_dir() + "/no-such-model", "--tokens", "1", "--print-ids"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no-such-model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace csq
