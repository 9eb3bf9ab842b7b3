// `csq synth` writes a loadable random-weight model for every file type, k-quant mixes included,
// and `csq bench` runs on it (the figures themselves come from the benchmark, never from tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "kernels/ops.h"
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
  EXPECT_EQ(j["kernels"], kernels::matmul_kernel_set());
}

// --roofline: the prompt's multiply-adds are those of the layer matrices, and both tests get a
// roofline (bandwidth for tg; the probes' multiply-add peak for pp where the AVX2 kernels run).
TEST(BenchCli, ReportsBothRooflines) {
  const std::string out = test::temp_dir() + "/bench-roofline-tiny.gguf";
  ASSERT_EQ(test::run_csq({"synth", "--preset", "tiny", "--type", "Q4_K_M", "--out", out}).exit_code, 0);
  const ModelConfig c = Model::load(out)->config();
  const auto b = test::run_csq({"bench", "--model", out, "-p", "16", "-n", "2", "-r", "1", "--json", "--roofline"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto j = nlohmann::json::parse(b.out);
  const double q = double(c.n_heads * c.head_dim), kv = double(c.n_kv_heads * c.head_dim), h = double(c.hidden_size);
  const double layer = h * (q + 2 * kv) + q * h + 3 * h * double(c.ffn_size);
  EXPECT_DOUBLE_EQ(j["prompt_macs_per_token"].get<double>(), double(c.n_layers) * layer);
  // The best of every probe, and the bandwidth the tg figure implies.
  const auto probes = j["bandwidth_probes"].get<std::vector<double>>();
  ASSERT_GE(probes.size(), 2u);
  EXPECT_DOUBLE_EQ(j["read_bandwidth_bytes_per_s"].get<double>(), *std::max_element(probes.begin(), probes.end()));
  EXPECT_GT(j["results"][1]["roofline_fraction"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(j["results"][1]["implied_bandwidth_bytes_per_s"].get<double>(),
                   j["results"][1]["avg_ts"].get<double>() * j["weight_bytes_per_token"].get<double>());
  EXPECT_EQ(j["int8_peak_macs_per_s"].get<double>() > 0, j["kernels"] != "reference");
  if (j["int8_peak_macs_per_s"].get<double>() > 0) {
    // A roofline is an upper bound: the tiny model's prompt runs well below it.
    EXPECT_GT(j["float_peak_macs_per_s"].get<double>(), 0);
    EXPECT_GT(j["pp_roofline_tokens_per_s"].get<double>(), j["results"][0]["avg_ts"].get<double>());
    EXPECT_LT(j["results"][0]["roofline_fraction"].get<double>(), 1.0);
  } else {
    EXPECT_FALSE(j.contains("pp_roofline_tokens_per_s"));
  }
}

// --streams: llama-batched-bench's test per stream count, aggregate rates (the figures themselves
// come from the benchmark); bad counts are usage errors.
TEST(BenchCli, StreamsReportsEveryStreamCount) {
  const std::string out = test::temp_dir() + "/bench-streams-tiny.gguf";
  ASSERT_EQ(test::run_csq({"synth", "--preset", "tiny", "--type", "Q4_K_M", "--out", out}).exit_code, 0);
  const auto b = test::run_csq({"bench", "--model", out, "-p", "4", "-n", "3", "-r", "1", "--streams", "1,3", "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto j = nlohmann::json::parse(b.out);
  ASSERT_EQ(j["streams"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto& row = j["streams"][i];
    const int n = i == 0 ? 1 : 3;
    EXPECT_EQ(row["streams"], n);
    EXPECT_EQ(row["n_kv"], n * 7);
    EXPECT_GT(row["tg_tokens_per_s"].get<double>(), 0);
    EXPECT_NEAR(row["tg_tokens_per_s"].get<double>(), n * 3 / row["t_tg_s"].get<double>(),
                1e-9 * row["tg_tokens_per_s"].get<double>());  // one repetition: the mean is the run
    EXPECT_GT(row["pp_tokens_per_s"].get<double>(), 0);
  }
  const auto text = test::run_csq({"bench", "--model", out, "-p", "4", "-n", "2", "-r", "1", "--streams", "2"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("|    PP |     TG |    B |   N_KV |"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("|     4 |      2 |    2 |     12 |"), std::string::npos) << text.out;
  const auto bad = test::run_csq({"bench", "--model", out, "-p", "4", "-n", "2", "--streams", "0"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--streams"), std::string::npos) << bad.err;
}

INSTANTIATE_TEST_SUITE_P(Types, SynthCli, ::testing::Values("Q4_K_M", "Q5_K_M", "Q8_0"));

}  // namespace
}  // namespace csq
