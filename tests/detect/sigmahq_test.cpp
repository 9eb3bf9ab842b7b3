// Acceptance on SigmaHQ's own data (../shared/data/sigma): every rule loads or is skipped with a
// reason, and every regression sample fires the rule it names (SigmaHQ's CI gate) from its JSON
// and from its EVTX file with the same alerts, with the built-in pipeline so log sources count.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>

#include "detect/runner.h"
#include "test_paths.h"

namespace csq::detect {
namespace {

namespace fs = std::filesystem;

std::string sigma_dir() { return csq::test::data_dir() + "/sigma"; }

#define REQUIRE_SIGMA_DATA()                                                                          \
  do {                                                                                                \
    if (!fs::exists(sigma_dir() + "/rules")) GTEST_SKIP() << "no SigmaHQ data at " << sigma_dir(); \
  } while (0)

const RuleSet& all_rules() {
  static const RuleSet set = [] {
    RuleSet s;
    for (const char* dir : {"rules", "rules-emerging-threats", "rules-threat-hunting"})
      load_rules_path(sigma_dir() + "/" + dir, {}, s);
    return s;
  }();
  return set;
}

TEST(DetectSigmaHQ, EveryRuleCompilesOrIsSkippedWithAReason) {
  REQUIRE_SIGMA_DATA();
  const RuleSet& set = all_rules();
  EXPECT_EQ(set.files, 3754u);
  EXPECT_EQ(set.rules.size() + set.problems.size(), 3754u);
  EXPECT_GE(double(set.rules.size()) / 3754.0, 0.995) << set.problems.size() << " rules skipped";
  for (const RuleProblem& p : set.problems) {
    EXPECT_FALSE(p.file.empty());
    EXPECT_GT(p.line, 0) << p.file;
    EXPECT_FALSE(p.reason.empty()) << p.file;
  }
  // Every skipped rule is skipped for a placeholder without a placeholder file (a correct refusal).
  for (const RuleProblem& p : set.problems)
    EXPECT_NE(p.reason.find("placeholder"), std::string::npos) << p.file << ":" << p.line << ": " << p.reason;

  const Detector d(set, Pipeline::windows_default(), {});
  size_t unmapped = 0;
  for (const auto& [key, n] : d.unmapped_logsources()) unmapped += n;
  EXPECT_EQ(d.active_rules() + unmapped, set.rules.size());
  EXPECT_GT(d.unmapped_logsources().count("linux/process_creation/-"), 0u);
}

TEST(DetectSigmaHQ, EveryRegressionSampleFiresItsRuleFromJsonAndEvtx) {
  REQUIRE_SIGMA_DATA();
  const Detector detector(all_rules(), Pipeline::windows_default(), {});
  size_t samples = 0, evtx_samples = 0;
  for (const auto& entry : fs::recursive_directory_iterator(sigma_dir() + "/regression_data")) {
    if (entry.path().filename() != "info.yml") continue;
    const YAML::Node info = YAML::LoadFile(entry.path().string());
    const YAML::Node tests = info["regression_tests_info"];
    if (!tests || !tests.IsSequence()) continue;  // the one non-Windows sample has its test commented out
    const std::string rule_id = info["rule_metadata"][0]["id"].as<std::string>();
    for (const auto& t : tests) {
      if (t["type"].as<std::string>() != "evtx") continue;
      const std::string evtx = sigma_dir() + "/" + t["path"].as<std::string>();
      const std::string json = evtx.substr(0, evtx.size() - 5) + ".json";
      const size_t want = t["match_count"] ? t["match_count"].as<size_t>() : 1;
      // Alerts per rule id, from the JSON rendering and from the EVTX file itself.
      auto alerts_of = [&](const std::string& path) {
        std::map<std::string, size_t> by_rule;
        RunStats stats;
        run_detection(
            detector, {path}, {},
            [&](Alert&& a) {
              ++by_rule[a.rule->id];
              EXPECT_FALSE(a.rule->author.empty());
            },
            [&](const InputProblem& p) { ADD_FAILURE() << p.source << ": " << p.reason; }, stats);
        EXPECT_GT(stats.events, 0u) << path;
        return by_rule;
      };
      const auto from_json = alerts_of(json);
      EXPECT_GE(from_json.count(rule_id) ? from_json.at(rule_id) : 0, want) << json << " should fire " << rule_id;
      if (fs::exists(evtx)) {
        const auto from_evtx = alerts_of(evtx);
        EXPECT_EQ(from_evtx, from_json) << evtx << ": the EVTX file gives other alerts than its JSON rendering";
        ++evtx_samples;
      }
      ++samples;
    }
  }
  EXPECT_EQ(samples, 202u);
  EXPECT_EQ(evtx_samples, 202u);
}

TEST(DetectSigmaHQ, RulesFireOnlyOnTheirLogSource) {
  // A Defender rule (service windefend) must not fire on another channel's event with the
  // same EventID; a Linux rule never fires on Windows events.
  RuleSet set;
  load_rules_text(R"(title: Defender detection
id: 11111111-1111-1111-1111-111111111111
author: tester
level: high
logsource: {product: windows, service: windefend}
detection:
    sel:
        EventID: 1116
    condition: sel
---
title: Linux shell
id: 22222222-2222-2222-2222-222222222222
author: tester
level: high
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: 'sh.exe'
    condition: sel
)",
                  "x.yml", {}, set);
  ASSERT_TRUE(set.problems.empty());
  const Detector d(set, Pipeline::windows_default(), {});
  EXPECT_EQ(d.active_rules(), 1u);
  EXPECT_EQ(d.unmapped_logsources().at("linux/process_creation/-"), 1u);
  auto scratch = d.make_scratch();
  std::vector<Match> out;
  auto run = [&](std::string text) {
    text.reserve(text.size() + 64);
    EXPECT_FALSE(d.match(text, *scratch, out));
    return out.size();
  };
  EXPECT_EQ(run(R"({"Channel": "Microsoft-Windows-Windows Defender/Operational", "EventID": 1116})"), 1u);
  EXPECT_EQ(run(R"({"Channel": "Application", "EventID": 1116})"), 0u);
  EXPECT_EQ(run(R"({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "bash.exe"})"), 0u);
  // --ignore-logsource: every rule sees every event.
  DetectorOptions o;
  o.ignore_logsource = true;
  const Detector all(set, Pipeline::windows_default(), o);
  auto s2 = all.make_scratch();
  std::string text = R"({"Channel": "Application", "EventID": 1116, "Image": "bash.exe"})";
  text.reserve(text.size() + 64);
  EXPECT_FALSE(all.match(text, *s2, out));
  EXPECT_EQ(out.size(), 2u);
}

TEST(DetectSigmaHQ, Security4688UsesItsOwnFieldNames) {
  // process_creation from Security 4688: Image is NewProcessName there (pipeline fieldmappings).
  RuleSet set;
  load_rules_text(R"(title: cmd
author: tester
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\cmd.exe'
    condition: sel
)",
                  "x.yml", {}, set);
  const Detector d(set, Pipeline::windows_default(), {});
  auto scratch = d.make_scratch();
  std::vector<Match> out;
  std::string sec = R"({"Channel": "security", "EventID": 4688, "NewProcessName": "C:\\Windows\\cmd.exe"})";
  sec.reserve(sec.size() + 64);
  EXPECT_FALSE(d.match(sec, *scratch, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].fields[0].first, "NewProcessName");
  std::string sysmon = R"({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\cmd.exe"})";
  sysmon.reserve(sysmon.size() + 64);
  EXPECT_FALSE(d.match(sysmon, *scratch, out));
  EXPECT_EQ(out.size(), 1u);
  std::string wrong_id = R"({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 11, "Image": "C:\\cmd.exe"})";
  wrong_id.reserve(wrong_id.size() + 64);
  EXPECT_FALSE(d.match(wrong_id, *scratch, out));
  EXPECT_EQ(out.size(), 0u);
}

}  // namespace
}  // namespace csq::detect
