// The `csq eval` and `csq data` commands end to end.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval/benchmarks.h"
#include "eval_data.h"

namespace csq::test {
namespace {

// One model column of a CTI-Bench responses file as the scorer's JSONL input.
std::string column_jsonl(const std::string& file, const std::string& model) {
  const eval::TsvTable t = eval::read_tsv(data_dir() + "/cti-bench/responses/" + file);
  std::string out;
  for (size_t r = 0; r < t.rows.size(); ++r)
    out += nlohmann::json({{"index", r}, {"response", t.rows[r][t.column(model)]}}).dump() + "\n";
  return out;
}

TEST(EvalCli, ScoreJsonAndReportFiles) {
  CSQ_REQUIRE_EVAL_DATA();
  const std::string responses = write_temp("gpt4-mcq.jsonl", column_jsonl("cti-mcq-responses.tsv", "ChatGPT-4"));
  const std::string out = temp_dir() + "/score-gpt4";
  const RunResult r = run_csq({"eval", "score", "--benchmark", "cti-mcq", "--protocol", "ctibench", "--data", data_dir(),
                               "--responses", responses, "--out", out, "--label", "ChatGPT-4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["headline"]["metric"], "lenient_accuracy");
  EXPECT_NEAR(j["headline"]["mean"].get<double>(), 0.71, 1e-12);
  EXPECT_EQ(j["protocol"]["system_prompt"], "You are a cybersecurity expert specializing in cyberthreat intelligence.");
  EXPECT_EQ(j["trials"][0]["n"], 2500);

  std::ifstream items(out + "/items.jsonl");
  std::string first;
  ASSERT_TRUE(std::getline(items, first));
  const auto item = nlohmann::json::parse(first);
  EXPECT_EQ(item["gold"], "B");
  EXPECT_EQ(item["answer"], "B");
  EXPECT_EQ(item["correct"], true);
  EXPECT_NE(item["prompt"].get<std::string>().find("**Question:**"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(out + "/summary.json"));
  EXPECT_TRUE(std::filesystem::exists(out + "/chart-lenient_accuracy.svg"));

  // A second run, then a report comparing both.
  const std::string responses8b = write_temp("l8b-mcq.jsonl", column_jsonl("cti-mcq-responses.tsv", "LLAMA3-8B"));
  const std::string out8b = temp_dir() + "/score-l8b";
  ASSERT_EQ(run_csq({"eval", "score", "--benchmark", "cti-mcq", "--protocol", "ctibench", "--data", data_dir(),
                     "--responses", responses8b, "--out", out8b, "--label", "LLAMA3-8B"})
                .exit_code,
            0);
  const std::string report = temp_dir() + "/report";
  const RunResult rep = run_csq({"eval", "report", "--summary", out + "/summary.json", out8b + "/summary.json",
                                 "--out", report, "--title", "CTI-MCQ"});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  std::ifstream md_in(report + "/report.md");
  const std::string md((std::istreambuf_iterator<char>(md_in)), {});
  EXPECT_NE(md.find("| ChatGPT-4 | cti-mcq | ctibench | lenient_accuracy | 0.7100 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| LLAMA3-8B | cti-mcq | ctibench | lenient_accuracy | 0.6132 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| temperature | 0.0 |"), std::string::npos) << md;
  std::ifstream svg_in(report + "/chart-lenient_accuracy.svg");
  const std::string svg((std::istreambuf_iterator<char>(svg_in)), {});
  size_t rects = 0;
  for (size_t p = svg.find("<rect"); p != std::string::npos; p = svg.find("<rect", p + 1)) ++rects;
  EXPECT_EQ(rects, 2u);
}

TEST(EvalCli, Errors) {
  CSQ_REQUIRE_EVAL_DATA();
  const std::string bad = write_temp("bad-resp.jsonl", "{\"index\": 0, \"response\": \"A\"}\n{\"index\": 99999, \"response\": \"A\"}\n");
  RunResult r = run_csq({"eval", "score", "--benchmark", "cti-mcq", "--protocol", "ctibench", "--data", data_dir(),
                         "--responses", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad-resp.jsonl:2: index 99999 is outside the benchmark"), std::string::npos) << r.err;
  r = run_csq({"eval", "score", "--benchmark", "cti-mcq", "--protocol", "helm", "--data", data_dir(), "--responses", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown protocol 'helm'"), std::string::npos) << r.err;
  // A directory opened as an empty file: "no responses".
  r = run_csq({"eval", "score", "--benchmark", "cti-mcq", "--protocol", "ctibench", "--data", data_dir(),
               "--responses", temp_dir()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(temp_dir() + ": is a directory, not a file"), std::string::npos) << r.err;
  r = run_csq({"eval", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["protocols"].size(), 3u);
}

TEST(EvalCli, DataOverlap) {
  CSQ_REQUIRE_EVAL_DATA();
  const std::string train = data_dir() + "/cybersecqwen-train/rcm_2021_train.jsonl";
  if (!std::filesystem::exists(train)) GTEST_SKIP() << train << " not found";
  const RunResult r =
      run_csq({"data", "overlap", "--train", train, "--benchmark", "cti-rcm-2021", "--data", data_dir(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["exact"], 1000);  // see EvalOverlap.CybersecqwenTrainingSetContainsCtiRcm2021
  EXPECT_EQ(j["items"], 1000);
  EXPECT_EQ(j["train_records"], 6776);
}

}  // namespace
}  // namespace csq::test
