// `csq triage eval` end to end: rescoring stored answers through the command line, the fixture
// model (random weights: the harness is the point) on the ait-aecid alerts killed and resumed to
// the same result as an uninterrupted run, the injection run, --dump-payloads and usage errors.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "eval/injection.h"
#include "child_process.h"
#include "eval_data.h"

extern char** environ;

namespace csq::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string alerts_dir() { return data_dir() + "/alerts"; }

#define REQUIRE_ALERTS()                                                                                    \
  do {                                                                                                      \
    if (!fs::exists(alerts_dir() + "/labels.jsonl")) GTEST_SKIP() << "ait-aecid alerts not found at " << alerts_dir(); \
  } while (0)

std::string fresh_dir(const std::string& name) {
  const std::string dir = temp_dir() + "/" + name;
  fs::remove_all(dir);
  return dir;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::map<std::pair<int, size_t>, std::string> responses_of(const std::string& path) {
  std::map<std::pair<int, size_t>, std::string> out;
  for (const auto& line : lines_of(path)) {
    const auto j = json::parse(line);
    EXPECT_TRUE(out.emplace(std::pair{j["trial"].get<int>(), j["index"].get<size_t>()}, j["response"]).second) << line;
  }
  return out;
}

TEST(TriageEvalCli, RescoresStoredAnswers) {
  REQUIRE_ALERTS();
  // Zero-shot ChatGPT, first run, AMiner: TP 57, FN 43, FP 25, TN 75; techniques 10/0/47.
  std::map<std::pair<std::string, size_t>, size_t> index_of;
  size_t i = 0;
  for (const auto& line : lines_of(alerts_dir() + "/labels.jsonl")) {
    const auto j = json::parse(line);
    index_of[{j["file"], j["line"].get<size_t>()}] = i++;
  }
  std::ofstream out(temp_dir() + "/zero-chatgpt-aminer.jsonl");
  for (const auto& [kind, file] : {std::pair{"attack", "aminer_attack_lines_03_09_2025_09_55_results.json"},
                                   std::pair{"no_attack", "aminer_no_attack_lines_03_09_2025_10_06_results.json"}}) {
    std::ifstream in(alerts_dir() + "/llm_outputs/zero_shot/first_run/chatgpt/" + file);
    ASSERT_TRUE(in) << file;
    for (const auto& a : json::parse(in))
      out << json{{"index", index_of.at({std::string("alerts/aminer_") + kind + "_lines.json",
                                         a["line_number"].get<size_t>()})},
                  {"response", a["output"].dump()}}
                 .dump()
          << "\n";
  }
  out.close();
  const std::string dir = fresh_dir("triage-rescore");
  const RunResult r = run_csq({"triage", "eval", "--data", alerts_dir(), "--responses",
                               temp_dir() + "/zero-chatgpt-aminer.jsonl", "--out", dir, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = json::parse(r.out);
  const auto& t = s["by_source"]["aminer"]["trials"][0];
  EXPECT_EQ(t["tp"], 57);
  EXPECT_EQ(t["fn"], 43);
  EXPECT_EQ(t["fp"], 25);
  EXPECT_EQ(t["tn"], 75);
  EXPECT_EQ(t["techniques"]["correct"], 10);
  EXPECT_EQ(t["techniques"]["incorrect"], 47);
  EXPECT_NEAR(s["f1"].get<double>(), 0.626374, 5e-7);
  EXPECT_FALSE(s["by_source"].contains("wazuh"));  // the file covers AMiner only
  for (const char* f : {"summary.json", "items.jsonl", "report.md", "chart-f1.svg", "chart-fpr.svg"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  EXPECT_EQ(lines_of(dir + "/items.jsonl").size(), 200u);
}

std::vector<std::string> model_args(const std::string& out) {
  return {"triage", "eval", "--model", fixture("hf/qwen3-tiny-vocab"), "--data", alerts_dir(), "--limit", "12",
          "--trials", "2", "--temperature", "0.8", "--max-tokens", "24", "--threads", "2", "--out", out, "--json"};
}

TEST(TriageEvalCli, FixtureModelKilledAndResumedEqualsAnUninterruptedRun) {
  CSQ_REQUIRE_FIXTURES();
  REQUIRE_ALERTS();
  const std::string whole = fresh_dir("triage-eval-whole");
  const RunResult a = run_csq(model_args(whole));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto sa = json::parse(a.out);
  EXPECT_EQ(sa["trials"].size(), 2u);
  EXPECT_EQ(sa["item_count"], 12);
  EXPECT_EQ(sa["run"]["computed"], 24);
  for (const char* key : {"precision", "recall", "f1", "fpr"}) EXPECT_TRUE(sa.contains(key)) << key;
  for (const char* f : {"manifest.json", "responses.jsonl", "items.jsonl", "summary.json", "report.md", "chart-f1.svg"})
    EXPECT_TRUE(fs::exists(whole + "/" + f)) << f;

  const std::string killed = fresh_dir("triage-eval-killed");
  const pid_t pid = spawn_csq(model_args(killed), temp_dir() + "/triage-eval-killed.log");
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (lines_of(killed + "/responses.jsonl").size() < 6 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  const size_t before = lines_of(killed + "/responses.jsonl").size();
  ASSERT_LT(before, 24u);
  const RunResult b = run_csq(model_args(killed));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto sb = json::parse(b.out);
  EXPECT_GT(sb["run"]["resumed"].get<size_t>(), 0u);
  EXPECT_EQ(sb["run"]["computed"].get<size_t>() + sb["run"]["resumed"].get<size_t>(), 24u);
  EXPECT_EQ(responses_of(whole + "/responses.jsonl"), responses_of(killed + "/responses.jsonl"));
  EXPECT_EQ(sa["metrics"], sb["metrics"]);
  EXPECT_EQ(sa["trials"], sb["trials"]);
  EXPECT_EQ(sa["by_source"], sb["by_source"]);
  EXPECT_EQ(sa["baseline"], sb["baseline"]);

  // Another setting may not reuse the directory.
  auto other = model_args(killed);
  *(std::find(other.begin(), other.end(), "--temperature") + 1) = "0.5";
  const RunResult c = run_csq(other);
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find("holds a run with a different protocol"), std::string::npos) << c.err;
}

TEST(TriageEvalCli, InjectionRunOnTheFixtureModel) {
  CSQ_REQUIRE_FIXTURES();
  REQUIRE_ALERTS();
  if (!fs::exists(data_dir() + "/injection/judge_rules.jsonl")) GTEST_SKIP() << "injection data not found";
  const std::string out = fresh_dir("triage-eval-injection");
  const RunResult r = run_csq({"triage", "eval", "--injection", "--model", fixture("hf/qwen3-tiny-vocab"), "--data",
                               data_dir(), "--injection-alerts", "1", "--limit", "4", "--max-tokens", "8", "--threads",
                               "2", "--out", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = json::parse(r.out);
  const size_t per_alert = 1 + eval::log_injection_payloads().size();
  EXPECT_EQ(s["log_injection"]["carrier_alerts"], 6);
  EXPECT_EQ(lines_of(out + "/injection-logs.jsonl").size(), 6 * per_alert * 3);
  EXPECT_EQ(lines_of(out + "/injection-cyberseceval.jsonl").size(), 4u);
  EXPECT_EQ(s["cyberseceval"]["cases"], 251);
  EXPECT_EQ(s["cyberseceval"]["judge_only_not_run"], 149);
  EXPECT_EQ(s["cyberseceval"]["overall"]["cases"], 4);
  for (const char* mode : {"none", "delimiters", "datamark"}) {
    EXPECT_TRUE(s["metrics"].contains(std::string("log_asr_") + mode)) << mode;
    for (const auto& family : eval::log_injection_families())
      EXPECT_TRUE(s["log_injection"]["by_family"][family].contains(mode)) << family << " " << mode;
  }
  EXPECT_TRUE(fs::exists(out + "/report.md"));
  // Resuming a finished run computes nothing.
  const RunResult again = run_csq({"triage", "eval", "--injection", "--model", fixture("hf/qwen3-tiny-vocab"), "--data",
                                   data_dir(), "--injection-alerts", "1", "--limit", "4", "--max-tokens", "8",
                                   "--threads", "2", "--out", out, "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out)["run"]["computed"], 0);
  EXPECT_EQ(json::parse(again.out)["log_injection"], s["log_injection"]);
}

TEST(TriageEvalCli, DumpPayloadsAndUsageErrors) {
  const RunResult d = run_csq({"triage", "eval", "--dump-payloads"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  size_t n = 0;
  for (size_t pos = 0; (pos = d.out.find('\n', pos)) != std::string::npos; ++pos) ++n;
  EXPECT_EQ(n, eval::log_injection_payloads().size());
  EXPECT_EQ(json::parse(d.out.substr(0, d.out.find('\n')))["family"], "override");

  RunResult r = run_csq({"triage", "eval", "--data", alerts_dir(), "--positive", "maybe", "--responses", "x.jsonl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--positive 'maybe'"), std::string::npos) << r.err;
  r = run_csq({"triage", "eval", "--data", alerts_dir()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("give exactly one of --model PATH or --endpoint URL"), std::string::npos) << r.err;
  const std::string bad = write_temp("bad-labelled.jsonl", "{\"alert\": {}, \"label\": \"benign\"}\n{\"alert\": {}}\n");
  r = run_csq({"triage", "eval", "--labelled", bad, "--responses", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad-labelled.jsonl:2: \"label\" must be"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace csq::test
