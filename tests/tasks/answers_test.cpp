#include "tasks/answers.h"

#include <gtest/gtest.h>

namespace csq::tasks {
namespace {

constexpr auto Q = AnswerParser::Cybersecqwen;
constexpr auto C = AnswerParser::Ctibench;
constexpr auto F = AnswerParser::Faith;

// The parsed value, or "<none>" when the parser finds no valid answer.
std::string parse(AnswerParser p, AnswerKind k, const std::string& text) {
  const Answer a = parse_answer(p, k, text);
  return a.parsed ? a.value : "<none>";
}
std::string mcq(AnswerParser p, const std::string& t) { return parse(p, AnswerKind::Mcq, t); }
std::string cwe(AnswerParser p, const std::string& t) { return parse(p, AnswerKind::Cwe, t); }
std::string cvss(AnswerParser p, const std::string& t) { return parse(p, AnswerKind::Cvss, t); }

TEST(ParseThink, StripsReasoningBlocks) {
  EXPECT_EQ(strip_think("<think>maybe CWE-20</think>\nCWE-79"), "\nCWE-79");
  EXPECT_EQ(strip_think("the template opened it</think>B"), "B");  // <think> was in the prompt
  EXPECT_EQ(strip_think("A<think>unfinished reasoning, CWE-20"), "A");
  EXPECT_EQ(strip_think("<think>a</think>x<think>b</think>y"), "y");
  EXPECT_EQ(strip_think("no reasoning"), "no reasoning");
}

TEST(ParseCybersecqwen, McqCascade) {
  EXPECT_EQ(mcq(Q, "Reasoning...\nAnswer: C"), "C");
  EXPECT_EQ(mcq(Q, "answer:(b)"), "B");      // the letter matches in any case, upper-cased
  EXPECT_EQ(mcq(Q, "ANSWER : (B)"), "B");     // the keyword too
  // Each stage takes its first match, where the first and last differ.
  EXPECT_EQ(mcq(Q, "Answer: A at first, but on reflection\nAnswer: D"), "A");
  EXPECT_EQ(mcq(Q, "answer: c, not answer: B"), "C");
  EXPECT_EQ(mcq(Q, "The answer is b; some say the answer is D"), "B");
  EXPECT_EQ(mcq(Q, "Option d beats option A"), "D");
  EXPECT_EQ(mcq(Q, "Maybe option A.\nOr option B.\nc"), "C");  // the last-line stage comes before option
  EXPECT_EQ(mcq(Q, "So the answer is (B)."), "B");
  EXPECT_EQ(mcq(Q, "The answer is: D"), "D");
  EXPECT_EQ(mcq(Q, "Option A looks tempting.\nAnswer: B"), "B");  // stage 1 before stage 4
  EXPECT_EQ(mcq(Q, "Let me think.\n\n**C**\n"), "C");              // last line is only a letter
  EXPECT_EQ(mcq(Q, "Let me think.\nc"), "C");
  EXPECT_EQ(mcq(Q, "I would pick option (A) here."), "A");
  EXPECT_EQ(mcq(Q, "The best option is C."), "<none>");  // no stage matches "option is"
  EXPECT_EQ(mcq(Q, "The answer is a bit unclear"), "A");  // what the ignore-case pattern reads
  EXPECT_EQ(mcq(Q, "Answer: Data Encryption"), "<none>");
  EXPECT_EQ(mcq(Q, "<think>Answer: A</think>\nAnswer: B"), "B");
  EXPECT_EQ(mcq(Q, "<think>Answer: A</think>"), "<none>");
}

TEST(ParseCybersecqwen, LastCweCaseInsensitive) {
  EXPECT_EQ(cwe(Q, "Could be CWE-20, but CWE-79 fits better.\nCWE-79"), "CWE-79");
  EXPECT_EQ(cwe(Q, "CWE-79 (XSS) is a child of CWE-74"), "CWE-74");  // the last id wins, even in prose
  EXPECT_EQ(cwe(Q, "the weakness is cwe-352"), "CWE-352");
  EXPECT_EQ(cwe(Q, "<think>CWE-20?</think>\nCWE-22"), "CWE-22");
  EXPECT_EQ(cwe(Q, "<think>CWE-20?</think>\nno idea"), "<none>");
  EXPECT_EQ(cwe(Q, "CWE 79"), "<none>");
}

TEST(ParseCybersecqwen, CvssAndAttackAndActor) {
  EXPECT_EQ(cvss(Q, "Vector: cvss:3.1/av:n/ac:l/pr:n/ui:n/s:u/c:h/i:h/a:h"), "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_EQ(cvss(Q, "AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_EQ(cvss(Q, "AV:Q/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), "<none>");
  EXPECT_EQ(parse(Q, AnswerKind::Attack, "T1105 is used...\nAnswer: T1059.001, T1071, t1059"), "T1059,T1071");
  EXPECT_EQ(parse(Q, AnswerKind::Attack, "Techniques:\nT1566, T1204.002"), "T1204,T1566");
  EXPECT_EQ(parse(Q, AnswerKind::Attack, "Answer: none"), "<none>");
  EXPECT_EQ(parse(Q, AnswerKind::Actor, "Reasoning.\nThreat Actor: **APT28**."), "APT28");
  EXPECT_EQ(parse(Q, AnswerKind::Actor, "It points to\nMuddyWater"), "MuddyWater");
}

TEST(ParseCtibench, McqFollowsTheNotebook) {
  EXPECT_EQ(mcq(C, "B"), "B");
  EXPECT_EQ(mcq(C, "b"), "B");  // whole-response fallback, upper-cased by the evaluation
  EXPECT_EQ(mcq(C, "X"), "X");  // a recorded refusal: valid, never correct
  EXPECT_EQ(mcq(C, "Reasoning\nThe answer is C"), "C");
  EXPECT_EQ(mcq(C, "Reasoning\nC) Execution Prevention"), "C");
  EXPECT_EQ(mcq(C, "Reasoning\n**D**"), "D");
  EXPECT_EQ(mcq(C, "Reasoning\nA\n"), "A");         // an empty last line falls back to the one before
  EXPECT_EQ(mcq(C, "The best option is C."), "<none>");  // dropped from the denominator
  EXPECT_EQ(mcq(C, "Reasoning\nSENSITIVE DATA"), "A");   // the notebook's endswith rule, kept as is
  EXPECT_EQ(mcq(C, "\n"), "<none>");
  EXPECT_EQ(mcq(C, "<think>B</think>\nD"), "D");
}

TEST(ParseCtibench, RcmLastCaseSensitiveCweElseWholeText) {
  EXPECT_EQ(cwe(C, "CWE-20 or CWE-787?\nCWE-787"), "CWE-787");
  EXPECT_EQ(cwe(C, "cwe-79"), "CWE-79");                // no match: the whole text, upper-cased, starts with CWE-
  EXPECT_EQ(cwe(C, "the weakness is cwe-79"), "<none>");  // ... and otherwise is invalid
  EXPECT_EQ(cwe(C, "Error"), "<none>");
  EXPECT_EQ(cwe(C, ""), "<none>");
}

TEST(ParseCtibench, VspAddsTheCvss30Prefix) {
  EXPECT_EQ(cvss(C, "AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"), "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N");
  EXPECT_EQ(cvss(C, "Final: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_EQ(cvss(C, "av:n/ac:l/pr:n/ui:n/s:u/c:h/i:h/a:h"), "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_EQ(cvss(C, "AV:Network/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), "<none>");
}

TEST(ParseFaith, McqFormatsInOrder) {
  Answer a = parse_answer(F, AnswerKind::Mcq, "Reasoning.\nAnswer: c");
  EXPECT_TRUE(a.parsed && a.proper);
  EXPECT_EQ(a.value, "C");
  // match_if_unique: two different "Answer:" letters are no proper answer; the next formats decide.
  a = parse_answer(F, AnswerKind::Mcq, "Answer: A\nAnswer: B\nThe answer is B");
  EXPECT_TRUE(a.parsed);
  EXPECT_FALSE(a.proper);
  EXPECT_EQ(a.value, "B");
  EXPECT_EQ(mcq(F, "Answer: B. Answer: B"), "B");  // several matches that agree count
  EXPECT_EQ(mcq(F, "Answer: A\nAnswer: B"), "<none>");
  EXPECT_EQ(mcq(F, "the answer is **D**"), "D");
  EXPECT_EQ(mcq(F, "I pick (C)."), "C");
  EXPECT_EQ(mcq(F, "Either (A) or (C)."), "<none>");  // match_if_singular
  EXPECT_EQ(mcq(F, "Option D."), "D");
  EXPECT_EQ(mcq(F, "  b. "), "B");
  EXPECT_EQ(mcq(F, "The best option is C."), "<none>");
  EXPECT_EQ(mcq(F, "<think>Answer: A</think>Answer: B"), "B");
}

TEST(ParseFaith, RcmVspAttackActor) {
  EXPECT_EQ(cwe(F, "CWE-79 is right.\nCWE-79"), "CWE-79");
  EXPECT_EQ(cwe(F, "CWE-79 or cwe-80"), "<none>");  // disagreeing ids, and no "CWE: n" form
  const Answer id = parse_answer(F, AnswerKind::Cwe, "Weakness ID: 89");
  EXPECT_TRUE(id.parsed && !id.proper);
  EXPECT_EQ(id.value, "CWE-89");
  EXPECT_EQ(cvss(F, "cvss:3.1/av:n/ac:l/pr:n/ui:n/s:u/c:h/i:h/a:h"), "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  // The improper format needs a leading '/', so a bare vector loses AV and is no valid vector.
  EXPECT_EQ(cvss(F, "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), "<none>");
  EXPECT_EQ(cvss(F, "vector /AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_EQ(parse(F, AnswerKind::Attack, "Answer: T1071, t1573, T1083"), "T1071,T1083,T1573");
  EXPECT_EQ(parse(F, AnswerKind::Attack, "Answer: T1059.001, T1071"), "T1059");  // its pattern stops at the dot
  EXPECT_EQ(parse(F, AnswerKind::Actor, "Threat Actor: Mustang Panda"), "mustang panda");
  EXPECT_EQ(parse(F, AnswerKind::Actor, "Threat Actor: APT28\nThreat Actor: APT29"), "<none>");
}

TEST(ParseNames, RoundTrip) {
  for (AnswerParser p : {Q, C, F}) EXPECT_EQ(parser_from_name(parser_name(p)), p);
  EXPECT_FALSE(parser_from_name("helm").has_value());
  EXPECT_EQ(main_technique("T1059.001"), "T1059");
}

}  // namespace
}  // namespace csq::tasks
