// `csq synth` writes a loadable random-weight model for every file type, k-quant mixes included,
// and `csq bench` runs on it (the figures themselves come from the benchmark, never from tests).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace csq {
namespace {

class SynthCli : public ::testing::TestWithParam<std::string> {};

TEST_P(SynthCli, WritesAModelThatRuns) {
  const std::string type = GetParam();
  const std::string out = test::temp_dir() + "/synth-tiny-" + type + ".gguf";
  const auto r = test::run_csq({"synth", "--preset", "tiny", "--type", type, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto model = Model::load(out);
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.n_layers, 2);
  ThreadPool pool(2);
  Session session(*model, 8, pool);
  const std::vector<float> logits = session.feed({1, 151935, 42, 7}, true);
  ASSERT_EQ(int64_t(logits.size()), 4 * c.vocab_size);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  const std::vector<float> next = session.feed({argmax(logits.data() + 3 * c.vocab_size, c.vocab_size)});
  for (float v : next) ASSERT_TRUE(std::isfinite(v));

  const auto b = test::run_csq({"bench", "--model", out, "-p", "8", "-n", "2", "-r", "1", "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto j = nlohmann::json::parse(b.out);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["test"], "pp8");
  EXPECT_EQ(j["results"][1]["test"], "tg2");
}

INSTANTIATE_TEST_SUITE_P(Types, SynthCli, ::testing::Values("Q4_K_M", "Q5_K_M", "Q8_0"));

}  // namespace
}  // namespace csq
