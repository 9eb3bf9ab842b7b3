// RuleLimits: a hostile rule file is skipped with the bound it exceeded (file, line, reason),
// in bounded time and memory, and the other rules still load. The inputs are the shapes
// fuzz_sigma_rule reached the 2 GB limit with, and yaml-cpp 0.7's endless-document stall.
#include <gtest/gtest.h>

#include <string>

#include "detect_helpers.h"

namespace csq::detect::test {
namespace {

// One problem for the text, with its line; the rule after it (another document) still loads.
RuleProblem only_problem(const std::string& yaml) {
  RuleSet set;
  load_rules_text(yaml + "---\n" + rule_with("    sel:\n        F: ok\n    condition: sel\n"), "hostile.yml", {}, set);
  EXPECT_EQ(set.problems.size(), 1u);
  EXPECT_EQ(set.rules.size(), 1u) << "the well-formed rule after the hostile one must load";
  return set.problems.empty() ? RuleProblem{} : set.problems[0];
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(DetectLimits, ChainedEncodingsCannotGrowAValuePast64KiB) {
  // Each utf16 doubles the value: 22 of them would make 8 bytes into 32 MiB (fuzz_sigma_rule).
  const RuleProblem p = only_problem(rule_with("    sel:\n        F" + repeat("|wide", 22) +
                                               ": abcdefgh\n    condition: sel\n"));
  EXPECT_EQ(p.reason, "value modifiers make a value longer than 65536 bytes");
  EXPECT_EQ(p.line, 11);
}

TEST(DetectLimits, AliasesRepeatingASelectionCountAgainstTheRule) {
  // An anchored selection of 3,750 windash values, repeated by 40 aliases: 150,000 values.
  std::string d = "    s0: &big\n        F|windash:\n";
  for (int i = 0; i < 6; ++i) d += "            - '-a" + std::to_string(i) + " -b -c -d'\n";
  for (int i = 1; i <= 40; ++i) d += "    s" + std::to_string(i) + ": *big\n";
  const RuleProblem p = only_problem(rule_with(d + "    condition: 1 of them\n"));
  EXPECT_EQ(p.reason, "the rule compiles to more than 100000 values");
}

TEST(DetectLimits, ConditionReferencingABigSelectionManyTimesIsRefused) {
  // 3,000 values referenced 400 times: 1.2 million value tests on every event.
  std::string d = "    sel:\n        F:\n";
  for (int i = 0; i < 3000; ++i) d += "            - v" + std::to_string(i) + "\n";
  d += "    condition: sel" + repeat(" or sel", 399) + "\n";
  const RuleProblem p = only_problem(rule_with(d));
  EXPECT_EQ(p.reason, "the condition evaluates more than 1000000 value tests per event (1200000)");
  EXPECT_EQ(p.line, 3012);
}

TEST(DetectLimits, ConditionNodesAreBounded) {
  // `1 of them` over 400 identifiers, 300 times: 120,000 references.
  std::string d;
  for (int i = 0; i < 400; ++i) d += "    s" + std::to_string(i) + ": {F: x}\n";
  d += "    condition: 1 of them" + repeat(" and 1 of them", 299) + "\n";
  const RuleProblem p = only_problem(rule_with(d));
  EXPECT_NE(p.reason.find("the condition expands to more than 100000 nodes"), std::string::npos) << p.reason;
}

TEST(DetectLimits, RegexesPerRuleAreBounded) {
  std::string d = "    sel:\n        F|re:\n";
  for (int i = 0; i < 65; ++i) d += "            - 'a" + std::to_string(i) + "[0-9]+'\n";
  const RuleProblem p = only_problem(rule_with(d + "    condition: sel\n"));
  EXPECT_EQ(p.reason, "the rule has more than 64 regular expressions");
  EXPECT_EQ(p.line, 12 + 64);
  // 64 load.
  std::string ok = "    sel:\n        F|re:\n";
  for (int i = 0; i < 64; ++i) ok += "            - 'a" + std::to_string(i) + "[0-9]+'\n";
  EXPECT_EQ(load_problem(rule_with(ok + "    condition: sel\n")), "");
}

TEST(DetectLimits, YamlCppEndlessDocumentsAreAStallNotALoop) {
  // yaml-cpp 0.7 accepts the scalar after the closing parenthesis and then reports the same empty
  // document forever: YAML::LoadAll never returned (and allocated until killed).
  RuleSet set;
  load_rules_text("- c:\n    (x\n\"y\",\n    )  )  \n", "stall.yml", {}, set);
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_EQ(set.problems[0].reason,
            "not accepted as YAML: the YAML parser stopped advancing at line 3 "
            "(malformed YAML that yaml-cpp 0.7 does not reject)");
  EXPECT_EQ(set.problems[0].line, 3);
  EXPECT_TRUE(set.rules.empty());
}

TEST(DetectLimits, EmptyAndMarkedDocumentsAreNotStalls) {
  const std::string rule = rule_with("    sel:\n        F: x\n    condition: sel\n");
  RuleSet set;
  load_rules_text("---\n---\n...\n---\n" + rule + "...\n---\n" + rule + "---\n", "docs.yml", {}, set);
  EXPECT_TRUE(set.problems.empty()) << set.problems[0].reason;
  EXPECT_EQ(set.rules.size(), 2u);
}

TEST(DetectLimits, DeepYamlNestingIsRefused) {
  RuleSet set;
  load_rules_text("a: " + repeat("[", 65) + repeat("]", 65) + "\n", "deep.yml", {}, set);
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_EQ(set.problems[0].reason, "not accepted as YAML: YAML collections nested more than 64 deep");
  RuleSet shallow;
  load_rules_text("a: " + repeat("[", 63) + repeat("]", 63) + "\n", "ok.yml", {}, shallow);
  ASSERT_EQ(shallow.problems.size(), 1u);
  EXPECT_EQ(shallow.problems[0].reason, "no 'title'") << "nesting within the bound parses";
}

TEST(DetectLimits, OversizedRuleFileIsRefusedBeforeParsing) {
  RuleSet set;
  load_rules_text(rule_with("    sel:\n        F: x\n    condition: sel\n") + "# " + std::string(1u << 20, 'x') + "\n",
                  "huge.yml", {}, set);
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_NE(set.problems[0].reason.find("more than the 1048576 bytes a rule file may have"), std::string::npos)
      << set.problems[0].reason;
  EXPECT_TRUE(set.rules.empty());
}

}  // namespace
}  // namespace csq::detect::test
