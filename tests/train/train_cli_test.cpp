// `csq train` end to end on a fixture model: the loss falls, the outputs are written, an
// interrupted run resumes to exactly the same losses, and the adapter runs and merges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/benchmarks.h"
#include "eval/overlap.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/transformer.h"
#include "eval/eval_data.h"
#include "test_paths.h"

namespace csq {
namespace {

using test::fixture;
using test::run_csq;
namespace fs = std::filesystem;

// Each test writes its own file: CTest runs them in parallel processes sharing the temp dir.
std::string write_data(const std::string& name = "train.jsonl") {
  const std::string path = test::temp_dir() + "/" + name;
  std::ofstream out(path);
  const char* cwes[] = {"CWE-79", "CWE-89", "CWE-787", "CWE-22"};
  for (int i = 0; i < 16; ++i)
    out << nlohmann::json{{"prompt", "Map CVE-2024-" + std::to_string(1000 + i) + " to its CWE."},
                          {"response", std::string("This maps to ") + cwes[i % 4] + ".\n\n" + cwes[i % 4]}}
               .dump()
        << "\n";
  return path;
}

std::vector<nlohmann::json> read_log(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::vector<std::string> train_args(const std::string& data, const std::string& out) {
  return {"train", "--model", fixture("hf/qwen3-tiny-vocab"), "--data", data, "--out", out, "--max-steps", "6",
          "--save-steps", "3", "--lr", "3e-3", "--seq-len", "96", "--batch", "2", "--grad-accum", "2",
          "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0.1", "--warmup-ratio", "0.2", "--val-split", "0.125",
          "--threads", "2", "--quiet"};
}

TEST(TrainCli, TrainsResumesExactlyAndTheAdapterRuns) {
  CSQ_REQUIRE_FIXTURES();
  const std::string data = write_data(), out = test::temp_dir() + "/run", resumed = test::temp_dir() + "/resumed";
  fs::remove_all(out);
  fs::remove_all(resumed);
  const auto first = run_csq(train_args(data, out));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("validation loss"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("peak memory"), std::string::npos) << first.out;
  for (const char* file : {"adapter_model.safetensors", "adapter_config.json", "adapter.gguf", "train_log.jsonl",
                           "loss.svg", "checkpoint-3/trainer_state.json", "checkpoint-6/optimizer_m/adapter_model.safetensors"})
    EXPECT_TRUE(fs::exists(out + "/" + file)) << file;
  const auto log = read_log(out + "/train_log.jsonl");
  ASSERT_EQ(log.size(), 6u);
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i]["step"], i + 1);
    for (const char* key : {"loss", "lr", "tokens_per_s", "grad_norm"}) EXPECT_TRUE(log[i].contains(key));
  }
  EXPECT_EQ(log[0]["lr"].get<double>(), 0.0);  // warm-up starts from zero
  EXPECT_LT(log[5]["loss"].get<double>(), log[0]["loss"].get<double>());
  const auto config = nlohmann::json::parse(std::ifstream(out + "/adapter_config.json"));
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 8.0);
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["target_modules"].size(), 7u);

  // A new run into the same directory would write over this one: refused before the model loads.
  const auto again = run_csq(train_args(data, out));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("holds an earlier training run"), std::string::npos) << again.err;
  EXPECT_EQ(read_log(out + "/train_log.jsonl").size(), 6u);

  // Resume from the step-3 checkpoint into a fresh directory: steps 4..6 exactly as before.
  auto args = train_args(data, resumed);
  args.push_back("--resume");
  args.push_back(out + "/checkpoint-3");
  const auto second = run_csq(args);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const auto resumed_log = read_log(resumed + "/train_log.jsonl");
  ASSERT_EQ(resumed_log.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(resumed_log[i]["step"], log[i + 3]["step"]);
    EXPECT_EQ(resumed_log[i]["loss"].get<double>(), log[i + 3]["loss"].get<double>()) << "step " << i + 4;
    EXPECT_EQ(resumed_log[i]["grad_norm"].get<double>(), log[i + 3]["grad_norm"].get<double>());
  }
  std::ifstream a(out + "/adapter_model.safetensors", std::ios::binary), b(resumed + "/adapter_model.safetensors", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));

  // Other settings refuse to resume from this checkpoint.
  auto other = train_args(data, resumed);
  *(std::find(other.begin(), other.end(), "--lr") + 1) = "1e-3";
  other.push_back("--resume");
  other.push_back(out);
  const auto refused = run_csq(other);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("other training settings"), std::string::npos) << refused.err;

  // The adapter runs in csq run (PEFT directory and GGUF), and strength 0 is the base model.
  const std::vector<std::string> run = {"run", "--model", fixture("hf/qwen3-tiny-vocab"), "--prompt", "Map CVE-2024-1003 to its CWE.",
                                        "-n", "8", "--ignore-eos", "--temperature", "0", "--threads", "2"};
  auto with = [&](const std::string& lora) {
    auto a2 = run;
    if (!lora.empty()) a2.insert(a2.end(), {"--lora", lora});
    const auto r = run_csq(a2);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  const std::string base = with(""), peft = with(out), gguf = with(out + "/adapter.gguf");
  EXPECT_EQ(peft, gguf);
  EXPECT_EQ(with(out + ":0"), base);
  const auto bad = run_csq({"run", "--model", fixture("hf/qwen3-tiny-vocab"), "--prompt", "x", "--lora", out + ":strong"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("strength"), std::string::npos) << bad.err;
}

std::vector<float> last_logits(const Model& model, const std::vector<int32_t>& tokens) {
  ThreadPool pool(2);
  // A float32 cache: this checks the merge arithmetic, not the cache's rounding.
  KvCache cache(model.config(), 1, int64_t(tokens.size()), DType::F32);
  Batch batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.add(tokens[i], int32_t(i), 0, i + 1 == tokens.size());
  std::vector<float> logits;
  forward(model, batch, cache, pool, logits);
  return logits;
}

// The contamination check before training: one CTI-RCM-2021 item copied into the data is found,
// reported and saved with the run.
// Negative settings torch.optim.AdamW and transformers refuse were trained with (weight decay
// below zero grows the weights) or silently read as "unset"; they are usage errors, refused
// before the model loads.
TEST(TrainCli, NegativeSettingsAreUsageErrors) {
  CSQ_REQUIRE_FIXTURES();
  const std::string data = write_data("train-negative.jsonl");
  for (const char* option : {"--weight-decay", "--max-grad-norm", "--max-steps", "--save-steps"}) {
    std::vector<std::string> args = train_args(data, test::temp_dir() + "/train-negative");
    const auto given = std::find(args.begin(), args.end(), option);
    if (given != args.end()) *std::next(given) = "-1";
    else args.insert(args.end(), {option, "-1"});
    const auto r = run_csq(args);
    EXPECT_EQ(r.exit_code, 1) << option << ": " << r.err;
    EXPECT_NE(r.err.find(std::string(option) + " must not be negative"), std::string::npos) << r.err;
  }
}

// A directory as --data opened as an empty file: "no training examples".
TEST(TrainCli, ADirectoryAsDataIsNamedAsOne) {
  CSQ_REQUIRE_FIXTURES();
  const auto r = run_csq(train_args(test::temp_dir(), test::temp_dir() + "/train-directory-data"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(test::temp_dir() + ": is a directory, not a file"), std::string::npos) << r.err;
}

TEST(TrainCli, ChecksTheDataForBenchmarkOverlapFirst) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  const std::string data = write_data("train-overlap.jsonl"), out = test::temp_dir() + "/overlap-run";
  fs::remove_all(out);
  const eval::Benchmark rcm = eval::load_benchmark("cti-rcm-2021", test::data_dir());
  {
    std::ofstream add(data, std::ios::app);
    add << nlohmann::json{{"prompt", eval::item_text(rcm.items[7])}, {"response", "CWE-79"}}.dump() << "\n";
  }
  const auto r = run_csq({"train", "--model", fixture("hf/qwen3-tiny-vocab"), "--data", data, "--out", out,
                          "--max-steps", "1", "--seq-len", "96", "--batch", "1", "--lora-r", "2",
                          "--eval-data", test::data_dir(), "--threads", "2", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("overlap cti-rcm-2021  1 of 1000 items verbatim"), std::string::npos) << r.out;
  std::ifstream in(out + "/overlap.json");
  const nlohmann::json report = nlohmann::json::parse(in);
  bool seen = false;
  for (const auto& b : report["benchmarks"]) {
    ASSERT_FALSE(b.contains("error")) << b.dump();
    if (b["benchmark"] == "cti-rcm-2021") {
      seen = true;
      EXPECT_EQ(b["exact"], 1);
    } else if (b["benchmark"] == "cti-mcq") {
      EXPECT_EQ(b["exact"], 0);
    }
  }
  EXPECT_TRUE(seen);
}

TEST(MergeCli, MergedModelsMatchTheAttachedAdapter) {
  CSQ_REQUIRE_FIXTURES();
  const std::string base = fixture("hf/qwen3-tiny-gqa"), adapter = fixture("lora/adapter_after8");
  const std::string hf_out = test::temp_dir() + "/merged-hf", gguf_out = test::temp_dir() + "/merged-f32.gguf";
  fs::remove_all(hf_out);
  auto r = run_csq({"merge", "--model", base, "--lora", adapter, "--out", hf_out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_csq({"merge", "--model", base, "--lora", adapter, "--out", gguf_out, "--type", "F32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(hf_out + "/config.json"));
  EXPECT_TRUE(fs::exists(hf_out + "/generation_config.json"));

  auto attached = Model::load(base);
  attached->set_adapters({load_lora_spec(adapter, attached->config())});
  const std::vector<int32_t> tokens = {11, 200, 3000, 45, 900, 17, 1024, 5};
  const std::vector<float> want = last_logits(*attached, tokens);
  auto relative = [&](const std::vector<float>& got) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < want.size(); ++i) diff += double(got[i] - want[i]) * (got[i] - want[i]), norm += double(want[i]) * want[i];
    return std::sqrt(diff / norm);
  };
  // float32 GGUF: the merge itself is the only difference (sums in another order).
  EXPECT_LT(relative(last_logits(*Model::load(gguf_out), tokens)), 1e-5);
  // The Hugging Face merge keeps the base's bfloat16, which rounds the merged weights.
  EXPECT_LT(relative(last_logits(*Model::load(hf_out), tokens)), 2e-2);

  r = run_csq({"merge", "--model", base, "--lora", adapter, "--out", base});
  EXPECT_NE(r.exit_code, 0);
}

// The base's csq.lock pins the base's bytes; copied into the merged directory it claimed the
// merged weights were the base repository's commit (and csq verify of the merge failed).
TEST(MergeCli, TheBasesLockFileIsNotCopiedIntoTheMergedModel) {
  CSQ_REQUIRE_FIXTURES();
  const std::string base = test::temp_dir() + "/merge-locked-base", out = test::temp_dir() + "/merge-locked-out";
  fs::remove_all(base);
  fs::remove_all(out);
  fs::create_directories(base);
  for (const char* file : {"config.json", "model.safetensors"})
    fs::copy_file(fixture(std::string("hf/qwen3-tiny-gqa/") + file), base + "/" + file);
  std::ofstream(base + "/csq.lock") << "{}";
  const auto r = run_csq({"merge", "--model", base, "--lora", fixture("lora/adapter_after8"), "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_FALSE(fs::exists(out + "/csq.lock"));
}

}  // namespace
}  // namespace csq
