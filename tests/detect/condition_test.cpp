// The condition grammar of the Sigma specification: and/or/not, precedence, parentheses,
// `1 of` / `all of` / `N of` with patterns and `them`, list conditions; and the errors.
#include <gtest/gtest.h>

#include "base/error.h"
#include "detect_helpers.h"

namespace csq::detect::test {
namespace {

// Three selections A, B, C each testing a field of the same name, plus _hidden.
std::string three(const std::string& condition) {
  return "    sel_a:\n        A: 1\n    sel_b:\n        B: 1\n    filter_c:\n        C: 1\n    _hidden:\n        H: 1\n"
         "    condition: " +
         condition + "\n";
}

// The event with the named fields set to 1.
std::string ev(const std::string& names) {
  std::string j = "{\"X\": 0";
  for (char c : names) j += std::string(", \"") + c + "\": 1";
  return j + "}";
}

TEST(DetectCondition, AndOrNot) {
  EXPECT_TRUE(fires(three("sel_a and sel_b"), ev("AB")));
  EXPECT_FALSE(fires(three("sel_a and sel_b"), ev("A")));
  EXPECT_TRUE(fires(three("sel_a or sel_b"), ev("B")));
  EXPECT_FALSE(fires(three("sel_a or sel_b"), ev("C")));
  EXPECT_TRUE(fires(three("sel_a and not filter_c"), ev("A")));
  EXPECT_FALSE(fires(three("sel_a and not filter_c"), ev("AC")));
  EXPECT_TRUE(fires(three("not not sel_a"), ev("A")));
}

TEST(DetectCondition, PrecedenceOrBelowAndBelowNot) {
  // a or b and c == a or (b and c)
  EXPECT_TRUE(fires(three("sel_a or sel_b and filter_c"), ev("A")));
  EXPECT_FALSE(fires(three("sel_a or sel_b and filter_c"), ev("B")));
  // not a and b == (not a) and b
  EXPECT_TRUE(fires(three("not sel_a and sel_b"), ev("B")));
  EXPECT_FALSE(fires(three("not sel_a and sel_b"), ev("AB")));
  EXPECT_FALSE(fires(three("not sel_a and sel_b"), ev("")));
}

TEST(DetectCondition, Parentheses) {
  EXPECT_TRUE(fires(three("(sel_a or sel_b) and filter_c"), ev("BC")));
  EXPECT_FALSE(fires(three("(sel_a or sel_b) and filter_c"), ev("A")));
  EXPECT_TRUE(fires(three("not (sel_a or sel_b)"), ev("C")));
  EXPECT_FALSE(fires(three("not (sel_a or sel_b)"), ev("B")));
  EXPECT_TRUE(fires(three("((sel_a))"), ev("A")));
}

TEST(DetectCondition, OneOfAndAllOfPatterns) {
  EXPECT_TRUE(fires(three("1 of sel_*"), ev("B")));
  EXPECT_FALSE(fires(three("1 of sel_*"), ev("C")));
  EXPECT_TRUE(fires(three("all of sel_*"), ev("AB")));
  EXPECT_FALSE(fires(three("all of sel_*"), ev("A")));
  // Spec: `1 of selection* and not 1 of filter*`
  EXPECT_TRUE(fires(three("1 of sel* and not 1 of filter*"), ev("A")));
  EXPECT_FALSE(fires(three("1 of sel* and not 1 of filter*"), ev("AC")));
  // A pattern with the wildcard in the middle.
  EXPECT_TRUE(fires(three("all of s*_b"), ev("B")));
  EXPECT_FALSE(fires(three("all of s*_b"), ev("A")));
}

TEST(DetectCondition, ThemSkipsUnderscoreIdentifiers) {
  EXPECT_TRUE(fires(three("1 of them"), ev("C")));
  EXPECT_FALSE(fires(three("1 of them"), ev("H")));
  EXPECT_TRUE(fires(three("all of them"), ev("ABC")));  // _hidden is not required
  EXPECT_FALSE(fires(three("all of them"), ev("AB")));
}

TEST(DetectCondition, NOfCountsSelections) {
  EXPECT_TRUE(fires(three("2 of them"), ev("AC")));
  EXPECT_FALSE(fires(three("2 of them"), ev("A")));
}

TEST(DetectCondition, ListOfConditionsIsOr) {
  const std::string d = "    sel_a:\n        A: 1\n    sel_b:\n        B: 1\n    condition:\n        - sel_a\n        - sel_b\n";
  EXPECT_TRUE(fires(d, ev("B")));
  EXPECT_FALSE(fires(d, ev("C")));
}

TEST(DetectCondition, MultiLineCondition) {
  // Two SigmaHQ rules spread the condition over several lines of a plain scalar.
  const std::string d = "    sel_a:\n        A: 1\n    sel_b:\n        B: 1\n    condition: sel_a\n        and sel_b\n";
  EXPECT_TRUE(fires(d, ev("AB")));
  EXPECT_FALSE(fires(d, ev("A")));
}

TEST(DetectCondition, ErrorsNameTheProblem) {
  const std::vector<std::string> names{"sel", "filter"};
  auto error_of = [&](const std::string& cond) -> std::string {
    try {
      parse_condition(cond, names);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("sel and nope").find("undefined search identifier 'nope'"), std::string::npos);
  EXPECT_NE(error_of("1 of x*").find("'x*' matches no search identifier"), std::string::npos);
  EXPECT_NE(error_of("(sel").find("')' expected"), std::string::npos);
  EXPECT_NE(error_of("sel)").find("unexpected ')'"), std::string::npos);
  EXPECT_NE(error_of("sel and").find("expression expected"), std::string::npos);
  EXPECT_NE(error_of("sel | count() > 5").find("correlation rule"), std::string::npos);
  EXPECT_NE(error_of("sel filter").find("unexpected 'filter'"), std::string::npos);
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("some of sel").find("'some of'"), std::string::npos);
  EXPECT_NE(error_of(std::string(500, '(') + "sel" + std::string(500, ')')).find("nested"), std::string::npos);
  EXPECT_EQ(error_of("sel and not filter"), "");
  // NUL bytes are ordinary characters (found by fuzz_sigma_condition: they once stalled the tokenizer).
  EXPECT_NE(error_of(std::string("\0\0\0\4", 4)), "");
}

TEST(DetectCondition, UndefinedIdentifierSkipsTheRuleWithItsLine) {
  RuleSet set;
  load_rules_text(rule_with("    sel:\n        A: 1\n    condition: sel and filter\n"), "r.yml", {}, set);
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_EQ(set.problems[0].line, 12);
  EXPECT_NE(set.problems[0].reason.find("undefined search identifier 'filter'"), std::string::npos);
  EXPECT_EQ(set.problems[0].title, "t");
}

}  // namespace
}  // namespace csq::detect::test
