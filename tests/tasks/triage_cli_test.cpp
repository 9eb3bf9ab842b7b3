// csq triage end to end on a real OTRF recording and the SigmaHQ rules, against a `csq serve` on
// the fixture model: the pipeline `csq detect --json | csq triage --endpoint` (one answered line
// per alert, rule id and record carried through) and hybrid mode `csq triage --rules` (one line
// per event; the events a rule fired on go to the model with every rule that fired, the rest are
// decided by the rules).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/mapped_file.h"
#include "server/serve_process.h"
#include "test_paths.h"

namespace csq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::run_csq;

// A small recording: 68 events, 4 alerts on the SigmaHQ Windows rules.
std::string recording() { return test::data_dir() + "/otrf/cmd_discover_iexplorer_version_registry.jsonl.gz"; }
std::string sigma_rules() { return test::data_dir() + "/sigma/rules/windows"; }

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos);
    out.push_back(json::parse(line));  // throws (and fails the test) on a line that is not JSON
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell pipeline; returns its stdout and sets *status.
std::string run_pipeline(const std::string& command, int* status) {
  FILE* p = popen(command.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

class TriageCli : public ::testing::Test {
 protected:
  void SetUp() override {
    CSQ_REQUIRE_FIXTURES();
    if (!fs::exists(recording()) || !fs::exists(sigma_rules()))
      GTEST_SKIP() << "no OTRF recording or SigmaHQ rules under " << test::data_dir();
  }
};

TEST_F(TriageCli, DetectPipedIntoTriageAndHybridModeThroughServe) {
  server::ServeProcess serve(test::csq_binary(), {"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "2",
                                                  "--parallel", "4", "--ctx", "4096"});
  const std::string url = serve.wait_listening(std::chrono::seconds(60)) + "/v1";

  const test::RunResult detect = run_csq({"detect", "--rules", sigma_rules(), "--events", recording(), "--json"});
  ASSERT_EQ(detect.exit_code, 0) << detect.err;
  const std::vector<json> alerts = json_lines(detect.out);
  ASSERT_EQ(alerts.size(), 4u) << detect.out;

  // The pipeline, through a real pipe.
  const std::string err_log = test::temp_dir() + "/triage-pipeline.err";
  const std::string csq = shell_quote(test::csq_binary());
  int status = -1;
  const std::string piped = run_pipeline(
      csq + " detect --rules " + shell_quote(sigma_rules()) + " --events " + shell_quote(recording()) +
          " --json 2>/dev/null | " + csq + " triage --endpoint " + shell_quote(url) + " --parallel 4 -q 2>" +
          shell_quote(err_log),
      &status);
  ASSERT_EQ(status, 0) << piped;
  const std::vector<json> lines = json_lines(piped);
  ASSERT_EQ(lines.size(), alerts.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const json& a = alerts[i];
    const json& l = lines[i];
    EXPECT_EQ(l["id"], a["source"].get<std::string>() + ":" + std::to_string(a["record"].get<uint64_t>()));
    EXPECT_EQ(l["rules"], json::array({a["rule_id"]}));
    EXPECT_EQ(l["decided_by"], "model");
    EXPECT_TRUE(l["verdict"].is_string()) << l.dump();  // the constrained answer parsed
    EXPECT_GT(l["prompt_tokens"].get<int>(), 0);
  }

  // Hybrid mode: the same rules in front of the model, in one process.
  const test::RunResult hybrid = run_csq({"triage", "--rules", sigma_rules(), "--endpoint", url, "--parallel", "4",
                                          "-q", recording()});
  ASSERT_EQ(hybrid.exit_code, 0) << hybrid.err;
  const std::vector<json> events = json_lines(hybrid.out);
  EXPECT_EQ(events.size(), 68u);  // one line per event, nothing lost
  std::map<std::string, std::set<std::string>> fired;  // FILE:RECORD -> rule ids, from csq detect
  for (const json& a : alerts)
    fired[a["source"].get<std::string>() + ":" + std::to_string(a["record"].get<uint64_t>())].insert(a["rule_id"]);
  size_t by_model = 0;
  for (const json& l : events) {
    const std::string id = l["id"];
    if (fired.count(id)) {
      ++by_model;
      EXPECT_EQ(l["decided_by"], "model") << id;
      const std::vector<std::string> rules = l["rules"];
      EXPECT_EQ(std::set<std::string>(rules.begin(), rules.end()), fired[id]) << id;  // all of them, one call
      EXPECT_TRUE(l["verdict"].is_string()) << l.dump();
      EXPECT_GT(l["prompt_tokens"].get<int>(), 0);
    } else {
      EXPECT_EQ(l["decided_by"], "rules") << id;
      EXPECT_EQ(l["verdict"], "benign") << id;
      EXPECT_EQ(l["prompt_tokens"], 0) << id;
      EXPECT_FALSE(l.contains("rules")) << id;
    }
  }
  EXPECT_EQ(by_model, fired.size());
}

// --out: a second run with the same settings resumes (nothing answered twice, a torn last line
// redone); one with other settings is refused and names the setting, leaving the answers intact.
TEST(TriageInputs, AnEvtxFileIsNamedAsSuchNotAsBadJson) {
  CSQ_REQUIRE_FIXTURES();
  const std::string evtx = test::temp_dir() + "/triage-input.evtx";
  {
    std::FILE* f = std::fopen(evtx.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite("ElfFile\0", 1, 8, f);  // the signature is what tells an EVTX file
    std::fclose(f);
  }
  const test::RunResult r =
      run_csq({"triage", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--dry-run", "--json", evtx});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(evtx + ": an EVTX file; csq triage reads JSON: csq evtx --jsonl FILE | csq triage ... -"),
            std::string::npos)
      << r.err;
}

TEST(TriageInputs, ARecordOverTheSizeLimitStopsTheRunAndSaysSo) {
  CSQ_REQUIRE_FIXTURES();
  // The reader's message said "skipped" while csq triage stops at the record (exit code 2).
  const test::RunResult r = run_csq({"triage", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--dry-run", "-"},
                                    "{\"a\": \"" + std::string(17u << 20, 'x') + "\"}\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("stdin:1: record of 17825801 bytes or more exceeds the limit of 16777216 bytes"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("skipped"), std::string::npos) << r.err;
}

TEST(TriageOut, ResumesUnderTheSameSettingsAndRefusesOthers) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = test::temp_dir() + "/triage-out";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string alerts = dir + "/alerts.jsonl", out = dir + "/answers.jsonl";
  {
    std::FILE* f = std::fopen(alerts.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    for (int i = 0; i < 3; ++i)
      std::fprintf(f, "{\"id\":\"a%d\",\"rule_title\":\"Whoami Execution\",\"CommandLine\":\"whoami /all\"}\n", i);
    std::fclose(f);
  }
  const auto triage = [&](const std::string& seed) {
    return run_csq({"triage", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--max-tokens", "8", "--seed", seed,
                    "-q", "--out", out, alerts});
  };
  const test::RunResult first = triage("1");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string answers = io::read_text_file(out);
  ASSERT_EQ(json_lines(answers).size(), 3u) << answers;

  // Killed mid-write: the torn line is cut and that input answered again, the others kept.
  const std::string kept = answers.substr(0, answers.find('\n') + 1);
  {
    std::FILE* f = std::fopen(out.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs((kept + "{\"id\":\"a1\",\"verd").c_str(), f);
    std::fclose(f);
  }
  const test::RunResult resumed = triage("1");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(io::read_text_file(out), answers);  // seeded: the redone answers are the same lines

  const test::RunResult other = triage("2");
  EXPECT_EQ(other.exit_code, 1) << other.err;
  EXPECT_NE(other.err.find("holds a run with a different seed"), std::string::npos) << other.err;
  EXPECT_EQ(io::read_text_file(out), answers);
}

}  // namespace
}  // namespace csq
