// `csq synth` writes a loadable random-weight model for every file type, k-quant mixes included,
// and `csq bench` runs on it (the figures themselves come from the benchmark, never from tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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
  // CSQ_KERNELS=float keeps quantized weights on the reference path, which no probe describes.
  const char* kernels_env = std::getenv("CSQ_KERNELS");
  const bool float_products = kernels_env && std::string(kernels_env) == "float";
  if (j["int8_peak_macs_per_s"].get<double>() > 0 && !float_products) {
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

// --format hf: a Hugging Face directory (sharded as save_pretrained shards, Qwen3's tensor names,
// bf16 throughout) holding the same model as the GGUF of the same seed: the logits agree bit for bit,
// on the row kernels (4 tokens) and on a prompt long enough for the BF16 prompt tiles (24); the
// weights stay bf16 in memory, so csq bench's peak memory is the GGUF's.
TEST(SynthHf, SameModelAsTheGguf) {
  const std::string dir = test::temp_dir() + "/synth-hf";
  std::filesystem::remove_all(dir);
  const std::string gguf = dir + "-BF16.gguf", hf = dir + "/tiny";
  ASSERT_EQ(test::run_csq({"synth", "--preset", "tiny", "--type", "BF16", "--out", gguf, "--seed", "7"}).exit_code, 0);
  std::vector<std::string> args = {"synth", "--preset", "tiny", "--type", "BF16", "--format", "hf", "--out", hf,
                                   "--seed", "7", "--max-shard-mb", "30"};
  const bool tokenizer = test::have_fixtures();
  if (tokenizer) args.insert(args.end(), {"--tokenizer", test::fixture("hf/qwen3-tiny-vocab")});
  const auto r = test::run_csq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // The embedding (78 MB) fills the first shard; the layers and the norm the second.
  const auto index = nlohmann::json::parse(std::ifstream(hf + "/model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"]["model.embed_tokens.weight"], "model-00001-of-00002.safetensors");
  EXPECT_EQ(index["weight_map"]["model.layers.1.mlp.down_proj.weight"], "model-00002-of-00002.safetensors");
  EXPECT_EQ(index["weight_map"]["model.norm.weight"], "model-00002-of-00002.safetensors");
  EXPECT_EQ(index["weight_map"].size(), 24u);
  int64_t shard_bytes = 0;
  for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
    shard_bytes += int64_t(std::filesystem::file_size(hf + "/" + shard));
  EXPECT_LT(index["metadata"]["total_size"].get<int64_t>(), shard_bytes);
  EXPECT_FALSE(std::filesystem::exists(hf + "/model.safetensors"));
  const auto config = nlohmann::json::parse(std::ifstream(hf + "/config.json"));
  EXPECT_EQ(config["architectures"][0], "Qwen3ForCausalLM");
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  EXPECT_TRUE(std::filesystem::exists(hf + "/generation_config.json"));
  EXPECT_EQ(std::filesystem::exists(hf + "/tokenizer.json"), tokenizer);
  EXPECT_EQ(std::filesystem::exists(hf + "/tokenizer_config.json"), tokenizer);

  auto from_gguf = Model::load(gguf), from_hf = Model::load(hf);
  EXPECT_EQ(from_hf->checkpoint().format, CheckpointFormat::HuggingFace);
  EXPECT_EQ(from_hf->checkpoint().tensor_types.at("BF16"), 24);
  EXPECT_EQ(from_hf->weights().layers[1].w_down.type, DType::BF16);
  EXPECT_EQ(from_hf->weights().token_embedding.type, DType::BF16);
  EXPECT_EQ(from_hf->weights().layers[0].q_norm, from_gguf->weights().layers[0].q_norm);
  ThreadPool pool(2);
  for (int n : {4, 24}) {
    std::vector<int32_t> ids;
    for (int i = 0; i < n; ++i) ids.push_back(int32_t((1 + 7919 * i) % 151936));
    Session a(*from_gguf, n, pool), b(*from_hf, n, pool);
    EXPECT_EQ(a.feed(ids, true), b.feed(ids, true)) << n << " tokens";
  }

  const auto peak = [](const std::string& model) {
    const auto b = test::run_csq({"bench", "--model", model, "-p", "8", "-n", "2", "-r", "1", "--json"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    return nlohmann::json::parse(b.out)["peak_rss_bytes"].get<double>();
  };
  // An f32 copy of the weights would add twice the file (160 MB).
  EXPECT_LT(peak(hf), peak(gguf) + 16e6);
}

TEST(SynthHf, OneFileUnlessSharded) {
  const std::string hf = test::temp_dir() + "/synth-hf-one";
  std::filesystem::remove_all(hf);
  ASSERT_EQ(test::run_csq({"synth", "--preset", "tiny", "--type", "F16", "--format", "hf", "--out", hf}).exit_code, 0);
  EXPECT_TRUE(std::filesystem::exists(hf + "/model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(hf + "/model.safetensors.index.json"));
  EXPECT_EQ(Model::load(hf)->weights().layers[0].wq.type, DType::F16);
  // Quantized types, a non-empty directory and a GGUF tokenizer are usage errors.
  const auto quantized = test::run_csq({"synth", "--preset", "tiny", "--type", "Q8_0", "--format", "hf", "--out", hf + "-q"});
  EXPECT_EQ(quantized.exit_code, 1);
  EXPECT_NE(quantized.err.find("Q8_0"), std::string::npos) << quantized.err;
  const auto again = test::run_csq({"synth", "--preset", "tiny", "--type", "BF16", "--format", "hf", "--out", hf});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("not an empty directory"), std::string::npos) << again.err;
  const auto format = test::run_csq({"synth", "--preset", "tiny", "--type", "BF16", "--format", "onnx", "--out", hf + "-x"});
  EXPECT_EQ(format.exit_code, 1);
}

INSTANTIATE_TEST_SUITE_P(Types, SynthCli, ::testing::Values("Q4_K_M", "Q5_K_M", "Q8_0"));

}  // namespace
}  // namespace csq
