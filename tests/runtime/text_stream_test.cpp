// Stop strings across token boundaries and the <think> split, fed one piece at a time.
#include <gtest/gtest.h>

#include "runtime/text_stream.h"

namespace csq {
namespace {

std::string feed_all(StopStringFilter& f, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += f.push(p);
  return out + f.flush();
}

TEST(StopStrings, MatchedAcrossPiecesAndNeverEmitted) {
  StopStringFilter f({"</answer>"});
  EXPECT_EQ(feed_all(f, {"CWE-79", "</ans", "wer>", " more"}), "CWE-79");
  EXPECT_TRUE(f.stopped());
}

TEST(StopStrings, HeldBackTextIsReleasedWhenItCannotBeAStop) {
  StopStringFilter f({"STOP"});
  EXPECT_EQ(f.push("abc ST"), "abc ");
  EXPECT_EQ(f.push("AR"), "STAR");
  EXPECT_FALSE(f.stopped());
  EXPECT_EQ(f.push("S"), "");
  EXPECT_EQ(f.flush(), "S");
}

TEST(StopStrings, EarliestOfSeveral) {
  StopStringFilter f({"\n\n", "User:"});
  EXPECT_EQ(feed_all(f, {"line one\nUser", ": hi\n\n"}), "line one\n");
}

TEST(Reasoning, SplitsThinkBlocksAcrossPieces) {
  ReasoningSplitter s;
  std::string reasoning, content;
  for (const char* piece : {"<thi", "nk>weigh ", "options</th", "ink>\n\nAnswer: ", "B"}) {
    auto parts = s.push(piece);
    reasoning += parts.reasoning;
    content += parts.content;
  }
  auto rest = s.flush();
  EXPECT_EQ(reasoning + rest.reasoning, "weigh options");
  EXPECT_EQ(content + rest.content, "Answer: B");
}

TEST(Reasoning, TemplatePreOpenedBlock) {
  ReasoningSplitter s(/*in_reasoning=*/true);
  auto a = s.push("\nstep 1</think>\n\nCWE-89");
  auto b = s.flush();
  EXPECT_EQ(a.reasoning + b.reasoning, "\nstep 1");
  EXPECT_EQ(a.content + b.content, "CWE-89");
}

TEST(Reasoning, NoBlockMeansAllContent) {
  ReasoningSplitter s;
  auto a = s.push("\nplain <b>answer</b>");
  auto b = s.flush();
  EXPECT_EQ(a.content + b.content, "\nplain <b>answer</b>");
  EXPECT_EQ(a.reasoning + b.reasoning, "");
}

}  // namespace
}  // namespace csq
