// Scoring triage answers: the answer formats, the technique grades, the labelled-set loaders'
// errors, the severity baseline, and the acceptance check: rescoring the ChatGPT and Gemini
// answers stored with the ait-aecid alert set reproduces the authors' figures for all 36 runs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "eval/alerts.h"
#include "eval/triage_scoring.h"
#include "eval_data.h"

namespace csq::eval {
namespace {

namespace fs = std::filesystem;

std::string alerts_dir() { return test::data_dir() + "/alerts"; }

#define REQUIRE_ALERTS()                                                                                   \
  do {                                                                                                     \
    if (!fs::exists(alerts_dir() + "/labels.jsonl")) GTEST_SKIP() << "ait-aecid alerts not found at " << alerts_dir(); \
  } while (0)

TEST(TriageScoring, ReadsBothAnswerFormats) {
  TriageAnswer a = read_triage_answer("<think>hmm</think>\n{\"verdict\": \"suspicious\", \"confidence\": 0.6, "
                                      "\"techniques\": [\"T1110.001\"], \"rationale\": \"x\"}");
  ASSERT_TRUE(a.parsed);
  EXPECT_EQ(a.format, "csq");
  EXPECT_EQ(a.verdict, Verdict::Suspicious);
  EXPECT_EQ(a.techniques, std::vector<std::string>{"T1110.001"});
  a = read_triage_answer("```json\n{\"classification\": \"TP\", \"mitre_technique\": [\"Active Scanning\"]}\n```");
  ASSERT_TRUE(a.parsed);
  EXPECT_EQ(a.format, "ait-aecid");
  EXPECT_EQ(a.verdict, Verdict::Malicious);
  EXPECT_EQ(read_triage_answer("{\"classification\": \"FP\"}").verdict, Verdict::Benign);
  EXPECT_EQ(read_triage_answer("Sure! {\"verdict\": \"malicious\"} hope this helps").verdict, Verdict::Malicious);
  EXPECT_FALSE(read_triage_answer("Processing was not possible.").parsed);
  EXPECT_FALSE(read_triage_answer("{\"verdict\": \"maybe\"}").parsed);
  EXPECT_FALSE(read_triage_answer("[1, 2]").parsed);
  EXPECT_FALSE(read_triage_answer("<think>{\"verdict\": \"benign\"}").parsed);  // only reasoning
  EXPECT_TRUE(is_positive(Verdict::Suspicious, PositiveClass::SuspiciousOrMalicious));
  EXPECT_FALSE(is_positive(Verdict::Suspicious, PositiveClass::Malicious));
}

TEST(TriageScoring, TechniqueGrades) {
  LabelledSet ids_only;
  const std::vector<std::string> allowed = {"T1110", "T1110.001"};
  EXPECT_EQ(grade_techniques(ids_only, {"T1110"}, allowed), TechniqueGrade::Correct);
  EXPECT_EQ(grade_techniques(ids_only, {"T1110", "T1046"}, allowed), TechniqueGrade::Partial);
  EXPECT_EQ(grade_techniques(ids_only, {"T1110.003"}, allowed), TechniqueGrade::Incorrect);  // exact ids
  EXPECT_EQ(grade_techniques(ids_only, {}, allowed), TechniqueGrade::Incorrect);
  EXPECT_EQ(grade_techniques(ids_only, {"Brute Force"}, allowed), TechniqueGrade::Incorrect);  // no name table
  EXPECT_EQ(grade_techniques(ids_only, {"T1110"}, {}), TechniqueGrade::NotScored);
  LabelledSet named;
  named.technique_ids = {"T1110", "T1046"};
  named.technique_id_by_name = {{"Brute Force", "T1110"}};
  EXPECT_EQ(grade_techniques(named, {"Brute Force"}, allowed), TechniqueGrade::Correct);
  EXPECT_EQ(grade_techniques(named, {"T1110.001"}, allowed), TechniqueGrade::Incorrect);  // not in the table
}

TEST(TriageScoring, ConfusionMetricsAndIntervals) {
  Confusion c;
  c.tp = 57, c.fn = 43, c.fp = 25, c.tn = 75;
  const auto m = c.metrics();
  EXPECT_NEAR(m.at("precision"), 57.0 / 82, 1e-12);
  EXPECT_NEAR(m.at("recall"), 0.57, 1e-12);
  EXPECT_NEAR(m.at("f1"), 2 * 57.0 / (2 * 57 + 25 + 43), 1e-12);
  EXPECT_NEAR(m.at("fpr"), 0.25, 1e-12);
  EXPECT_NEAR(m.at("accuracy"), 0.66, 1e-12);
  EXPECT_EQ(m.count("technique_accuracy"), 0u);
  EXPECT_EQ(Confusion{}.metrics().at("f1"), 0.0);
  const Interval one = interval_over_trials({0.5});
  EXPECT_FALSE(one.has_ci);
  const Interval three = interval_over_trials({0.6, 0.7, 0.8});
  ASSERT_TRUE(three.has_ci);
  EXPECT_NEAR(three.mean, 0.7, 1e-12);
  EXPECT_NEAR(three.hi - three.mean, 4.303 * 0.1 / std::sqrt(3.0), 1e-9);
}

std::string labelled_error(const std::string& text) {
  try {
    load_labelled_jsonl(test::write_temp("labelled.jsonl", text));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadInput);
    return e.what();
  }
  return "<no error>";
}

TEST(TriageScoring, LabelledFileAndItsErrors) {
  const std::string good =
      "{\"alert\": {\"rule\": {\"level\": 12}, \"agent\": {\"id\": \"1\"}}, \"label\": \"malicious\", \"techniques\": "
      "[\"T1110\"]}\n\n"
      "{\"alert\": {\"type\": \"sigma_alert\", \"rule\": {\"level\": \"low\"}}, \"label\": \"benign\"}\n"
      "{\"alert\": {\"msg\": \"x\"}, \"label\": \"benign\", \"source\": \"proxy\", \"attack_type\": \"\"}\n";
  const LabelledSet set = load_labelled_jsonl(test::write_temp("labelled.jsonl", good));
  ASSERT_EQ(set.alerts.size(), 3u);
  EXPECT_EQ(set.name, "labelled");
  EXPECT_EQ(set.alerts[0].source, "wazuh");
  EXPECT_TRUE(set.alerts[0].malicious);
  EXPECT_EQ(set.alerts[1].source, "sigma");
  EXPECT_EQ(set.alerts[1].origin.substr(set.alerts[1].origin.size() - 2), ":3");
  EXPECT_EQ(set.alerts[2].source, "proxy");
  EXPECT_EQ(alert_severity(set.alerts[0].alert), 12);
  EXPECT_EQ(alert_severity(set.alerts[1].alert), 2);
  EXPECT_EQ(alert_severity(set.alerts[2].alert), -1);

  EXPECT_NE(labelled_error("{\"alert\": {}, \"label\": \"benign\"}\n{oops\n").find("labelled.jsonl:2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(labelled_error("{\"alert\": 5, \"label\": \"benign\"}\n").find("labelled.jsonl:1: \"alert\" must be a JSON object"),
            std::string::npos);
  EXPECT_NE(labelled_error("{\"alert\": {}, \"label\": \"bad\"}\n").find("not \"bad\""), std::string::npos);
  EXPECT_NE(labelled_error("{\"alert\": {}}\n").find("\"label\" must be"), std::string::npos);
  EXPECT_NE(labelled_error("{\"alert\": {}, \"label\": \"benign\", \"techniques\": [\"Brute\"]}\n")
                .find("\"Brute\" is not an ATT&CK technique id"),
            std::string::npos);
  EXPECT_NE(labelled_error("{\"alert\": {}, \"label\": \"benign\", \"lable\": 1}\n").find("unknown field \"lable\""),
            std::string::npos);
  EXPECT_NE(labelled_error("\n\n").find("no labelled alerts"), std::string::npos);
  EXPECT_NE(labelled_error("[1]\n").find("labelled.jsonl:1: expected"), std::string::npos);
}

TEST(TriageScoring, SeverityBaselineAtEachThreshold) {
  const LabelledSet set = load_labelled_jsonl(test::write_temp(
      "baseline.jsonl",
      "{\"alert\": {\"rule\": {\"level\": 3}, \"agent\": {}}, \"label\": \"benign\"}\n"
      "{\"alert\": {\"rule\": {\"level\": 10}, \"agent\": {}}, \"label\": \"malicious\"}\n"
      "{\"alert\": {\"rule\": {\"level\": 5}, \"agent\": {}}, \"label\": \"malicious\"}\n"
      "{\"alert\": {\"rule\": {\"level\": 10}, \"agent\": {}}, \"label\": \"benign\"}\n"
      "{\"alert\": {\"AnalysisComponent\": {}}, \"label\": \"malicious\"}\n"));
  const auto b = severity_baseline(set);
  ASSERT_EQ(b.size(), 1u);  // AMiner alerts carry no severity
  const auto& rows = b.at("wazuh");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].threshold, 3);
  EXPECT_EQ(rows[0].counts.tp, 2u);
  EXPECT_EQ(rows[0].counts.fp, 2u);
  EXPECT_EQ(rows[1].threshold, 5);
  EXPECT_EQ(rows[1].counts.tp, 2u);
  EXPECT_EQ(rows[1].counts.fp, 1u);
  EXPECT_EQ(rows[1].counts.tn, 1u);
  EXPECT_EQ(rows[2].threshold, 10);
  EXPECT_EQ(rows[2].counts.tp, 1u);
  EXPECT_EQ(rows[2].counts.fn, 1u);
  EXPECT_EQ(severity_baseline(set, 2).at("wazuh").size(), 2u);  // the first two alerts only
}

TEST(TriageScoring, CsqDetectsOwnAlertsAreSigmaWithTheirLevel) {
  // The record csq detect --json writes (a rule's alert; a correlation's has the same fields).
  const std::string line =
      R"({"alert": {"time": "t", "rule_id": "r1", "title": "Whoami", "level": "high", "status": "test", "author": "a",)"
      R"( "tags": [], "rule_file": "r.yml", "source": "w.jsonl", "record": 1, "matched": {}, "event": {"EventID": 1}},)"
      R"( "label": "malicious"})"
      "\n";
  const LabelledSet set = load_labelled_jsonl(test::write_temp("detect_alerts.jsonl", line));
  ASSERT_EQ(set.alerts.size(), 1u);
  EXPECT_EQ(set.alerts[0].source, "sigma");
  EXPECT_EQ(alert_source(set.alerts[0].alert), "sigma");
  EXPECT_EQ(alert_severity(set.alerts[0].alert), 4);
}

TEST(TriageScoring, LoadsTheAitAecidSet) {
  REQUIRE_ALERTS();
  const LabelledSet set = load_ait_aecid(test::data_dir());  // the data root works too
  ASSERT_EQ(set.alerts.size(), 400u);
  size_t malicious = 0;
  std::map<std::string, size_t> sources;
  for (const auto& a : set.alerts) {
    malicious += a.malicious;
    ++sources[a.source];
  }
  EXPECT_EQ(malicious, 200u);
  EXPECT_EQ(sources["aminer"], 200u);
  EXPECT_EQ(sources["wazuh"], 200u);
  EXPECT_EQ(set.alerts[0].attack_type, "dnsteal");
  EXPECT_EQ(set.alerts[0].origin, "alerts/aminer_attack_lines.json:1");
  EXPECT_TRUE(set.alerts[0].alert.contains("AnalysisComponent"));
  EXPECT_EQ(set.technique_ids.size(), 679u);
  for (const auto& a : set.alerts) EXPECT_EQ(alert_source(a.alert), a.source) << a.origin;
}

// The stored answer files of one (experiment, run, model) as responses of trial `trial`: index =
// the alert's position in labels.jsonl, response = the stored "output" as JSON text.
void add_stored_answers(const LabelledSet& set, const std::string& answer_file, int trial, std::ofstream& out) {
  std::map<std::pair<std::string, size_t>, size_t> index_of;
  for (const auto& a : set.alerts) {
    const size_t colon = a.origin.rfind(':');
    index_of[{a.origin.substr(0, colon), std::stoul(a.origin.substr(colon + 1))}] = a.index;
  }
  // ".../aminer_no_attack_lines_03_09_2025_10_06_results.json" answers alerts/aminer_no_attack_lines.json.
  const std::string name = fs::path(answer_file).filename().string();
  const std::string alerts_file = "alerts/" + name.substr(0, name.find("_lines_") + 6) + ".json";
  std::ifstream in(alerts_dir() + "/" + answer_file);
  ASSERT_TRUE(in) << answer_file;
  const auto answers = nlohmann::json::parse(in);
  ASSERT_EQ(answers.size(), 100u) << answer_file;
  for (const auto& a : answers) {
    const auto it = index_of.find({alerts_file, a["line_number"].get<size_t>()});
    ASSERT_NE(it, index_of.end()) << answer_file;
    // The raw alert line the model saw is the one labels.jsonl points at.
    std::string input = a["input"].get<std::string>();
    if (!input.empty() && input.back() == '\n') input.pop_back();
    EXPECT_EQ(input, set.alerts[it->second].raw) << answer_file;
    const std::string response = a["output"].is_string() ? a["output"].get<std::string>() : a["output"].dump();
    out << nlohmann::json{{"index", it->second}, {"trial", trial}, {"response", response}}.dump() << "\n";
  }
}

TEST(TriageScoring, RescoringTheStoredAnswersReproducesAll36Runs) {
  REQUIRE_ALERTS();
  const LabelledSet set = load_ait_aecid(alerts_dir());
  // (experiment, llm) -> run -> dataset -> the recomputed row.
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::map<std::string, nlohmann::json>>> runs;
  std::ifstream metrics(alerts_dir() + "/metrics_recomputed.jsonl");
  size_t rows = 0;
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    const std::string exp = j["experiment"];
    if (exp != "zero_shot" && exp != "one_shot" && exp != "two_shot") continue;
    runs[{exp, j["llm"]}][j["run"]][j["dataset"]] = j;
    ++rows;
  }
  ASSERT_EQ(rows, 36u);
  size_t checked = 0;
  for (const auto& [key, by_run] : runs) {
    // The three runs of one setting as trials 0-2 of one responses file, as `--responses` reads it.
    const std::string path = test::temp_dir() + "/ait-" + key.first + "-" + key.second + ".jsonl";
    std::vector<std::string> run_names;
    {
      std::ofstream out(path);
      for (const auto& [run, by_dataset] : by_run) {
        const int trial = int(run_names.size());
        run_names.push_back(run);
        for (const auto& [dataset, row] : by_dataset) {
          add_stored_answers(set, row["attack_file"], trial, out);
          add_stored_answers(set, row["no_attack_file"], trial, out);
        }
      }
    }
    const auto responses = read_responses(path, set.alerts.size());
    ASSERT_EQ(responses.size(), 1200u);
    const TriageScore score = score_triage(set, responses, PositiveClass::SuspiciousOrMalicious);
    for (size_t trial = 0; trial < run_names.size(); ++trial)
      for (const auto& [dataset, row] : by_run.at(run_names[trial])) {
        const std::string what = key.first + " " + key.second + " " + run_names[trial] + " " + dataset;
        const Confusion& c = score.by_source.at(dataset).at(int(trial));
        EXPECT_EQ(c.tp, row["tp"].get<size_t>()) << what;
        EXPECT_EQ(c.fn, row["fn"].get<size_t>()) << what;
        EXPECT_EQ(c.fp, row["fp"].get<size_t>()) << what;
        EXPECT_EQ(c.tn, row["tn"].get<size_t>()) << what;
        EXPECT_EQ(c.unparsed, row["unparsed"].get<size_t>()) << what;
        EXPECT_EQ(c.techniques_correct, row["techniques_correct"].get<size_t>()) << what;
        EXPECT_EQ(c.techniques_partial, row["techniques_partial"].get<size_t>()) << what;
        EXPECT_EQ(c.techniques_incorrect, row["techniques_incorrect"].get<size_t>()) << what;
        const auto m = c.metrics();
        for (const char* name : {"precision", "recall", "f1", "accuracy"})
          EXPECT_NEAR(m.at(name), row[name].get<double>(), 5e-7) << what << " " << name;
        ++checked;
      }
  }
  EXPECT_EQ(checked, 36u);
}

// The README's table is the mean over the three runs, three decimals: the summary gives it.
TEST(TriageScoring, SummaryMeansMatchTheReadmeTable) {
  REQUIRE_ALERTS();
  const LabelledSet set = load_ait_aecid(alerts_dir());
  std::map<std::string, nlohmann::json> first_run;
  std::ifstream metrics(alerts_dir() + "/metrics_recomputed.jsonl");
  std::string path = test::temp_dir() + "/ait-two-shot-gemini.jsonl";
  {
    std::ofstream out(path);
    for (std::string line; std::getline(metrics, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j["experiment"] != "two_shot" || j["llm"] != "chatgpt") continue;
      const int trial = j["run"] == "first_run" ? 0 : j["run"] == "second_run" ? 1 : 2;
      add_stored_answers(set, j["attack_file"], trial, out);
      add_stored_answers(set, j["no_attack_file"], trial, out);
    }
  }
  const TriageScore score = score_triage(set, read_responses(path, 400), PositiveClass::SuspiciousOrMalicious);
  const auto summary = triage_summary_json(set, score, {{"name", "rescore"}}, 400);
  // two-shot ChatGPT: AMiner P 0.793 R 0.780 F1 0.787 Acc 0.788; Wazuh 0.943 / 0.657 / 0.774 / 0.808.
  const auto& aminer = summary["by_source"]["aminer"]["metrics"];
  EXPECT_NEAR(aminer["precision"]["mean"].get<double>(), 0.793, 5e-4);
  EXPECT_NEAR(aminer["recall"]["mean"].get<double>(), 0.780, 5e-4);
  EXPECT_NEAR(aminer["f1"]["mean"].get<double>(), 0.787, 5e-4);
  EXPECT_NEAR(aminer["accuracy"]["mean"].get<double>(), 0.788, 5e-4);
  const auto& wazuh = summary["by_source"]["wazuh"]["metrics"];
  EXPECT_NEAR(wazuh["precision"]["mean"].get<double>(), 0.943, 5e-4);
  EXPECT_NEAR(wazuh["recall"]["mean"].get<double>(), 0.657, 5e-4);
  EXPECT_NEAR(wazuh["f1"]["mean"].get<double>(), 0.774, 5e-4);
  EXPECT_NEAR(wazuh["accuracy"]["mean"].get<double>(), 0.808, 5e-4);
  EXPECT_TRUE(wazuh["f1"]["ci95"].is_array());
  EXPECT_EQ(summary["trials"].size(), 3u);
  EXPECT_TRUE(summary.contains("fpr"));
  // Wazuh's baseline covers the 200 Wazuh alerts at each rule level that occurs.
  const auto& baseline = summary["baseline"]["wazuh"];
  ASSERT_FALSE(baseline.empty());
  const auto& lowest = baseline[0];
  EXPECT_EQ(lowest["tp"].get<size_t>() + lowest["fn"].get<size_t>() + lowest["fp"].get<size_t>() +
                lowest["tn"].get<size_t>(),
            200u);
  EXPECT_EQ(lowest["recall"].get<double>(), 1.0);
  EXPECT_FALSE(summary["baseline"].contains("aminer"));
  EXPECT_EQ(summary["by_attack_type"]["dirb"]["trials"][0]["tp"].get<size_t>() +
                summary["by_attack_type"]["dirb"]["trials"][0]["fn"].get<size_t>(),
            64u);  // 43 AMiner + 21 Wazuh
  write_triage_report(test::temp_dir() + "/ait-report", summary, "rescore");
  for (const char* f : {"report.md", "chart-f1.svg", "chart-precision.svg", "chart-recall.svg", "chart-fpr.svg"})
    EXPECT_TRUE(fs::exists(test::temp_dir() + "/ait-report/" + f)) << f;
}

}  // namespace
}  // namespace csq::eval
