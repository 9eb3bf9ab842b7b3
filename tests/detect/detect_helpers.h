// Small helpers for the detection tests: one rule from YAML text, matched against events.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "detect/engine.h"

namespace csq::detect::test {

// Loads the rule text; fails the test when it does not load.
inline RuleSet rules_from(const std::string& yaml, const LoadOptions& options = {}) {
  RuleSet set;
  load_rules_text(yaml, "test.yml", options, set);
  for (const auto& p : set.problems) ADD_FAILURE() << "rule did not load: line " << p.line << ": " << p.reason;
  return set;
}

// The reason a rule text is refused ("" when it loads).
inline std::string load_problem(const std::string& yaml) {
  RuleSet set;
  load_rules_text(yaml, "bad.yml", {}, set);
  return set.problems.empty() ? std::string() : set.problems[0].reason;
}

// Rule text from a detection block (indented by four spaces under `detection:`).
inline std::string rule_with(const std::string& detection) {
  return "title: t\nid: 00000000-0000-0000-0000-000000000001\nauthor: tester\nlevel: high\nstatus: test\n"
         "logsource:\n    product: windows\n    category: process_creation\ndetection:\n" +
         detection;
}

// Whether the rules fire on the JSON event (every rule sees every event).
inline bool fires(const RuleSet& set, const std::string& event_json) {
  DetectorOptions o;
  o.ignore_logsource = true;
  Detector d(set, Pipeline{}, o);
  auto scratch = d.make_scratch();
  std::vector<Match> out;
  std::string text = event_json;
  text.reserve(text.size() + 64);
  const auto problem = d.match(text, *scratch, out);
  EXPECT_FALSE(problem) << *problem;
  return !out.empty();
}

inline bool fires(const std::string& detection, const std::string& event_json) {
  return fires(rules_from(rule_with(detection)), event_json);
}

}  // namespace csq::detect::test
