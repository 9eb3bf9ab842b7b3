// The defender tasks' prompts, inputs and answers, without a model.
#include <gtest/gtest.h>

#include "base/error.h"
#include "tasks/cvss.h"
#include "tasks/regex.h"
#include "tasks/task.h"

namespace csq::tasks {
namespace {

ChatResult answer(const std::string& content, const std::string& reasoning = "") {
  ChatResult r;
  r.content = content;
  r.reasoning = reasoning;
  r.finish = "stop";
  return r;
}

TEST(Task, PromptsAreCtiBenchInstructions) {
  const std::string rcm = task_prompt(Task::Cwe, {"  A use-after-free in foo.\n", {}});
  EXPECT_EQ(rcm,
            "Analyze the following CVE description and map it to the appropriate CWE. Provide a brief justification for "
            "your choice. Ensure the last line of your response contains only the CWE ID.  CVE Description: A "
            "use-after-free in foo.");
  const std::string mcq = task_prompt(Task::Mcq, {"Which port does SSH use?", {"21", "22", "23", "80"}});
  EXPECT_NE(mcq.find("**Question:** Which port does SSH use?  **Options:** A) 21 B) 22 C) 23 D) 80  **Important:**"),
            std::string::npos)
      << mcq;
  EXPECT_NE(task_prompt(Task::Cvss, {"x", {}}).find("Example format: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H  CVE "
                                                    "Description: x"),
            std::string::npos);
  EXPECT_NE(task_prompt(Task::Attack, {"report", {}}).find("excluding any subtechnique IDs.  **Text:** report"),
            std::string::npos);
  EXPECT_EQ(task_prompt(Task::Ask, {"What is Kerberoasting?", {}}), "What is Kerberoasting?");
  EXPECT_EQ(task_prompt(Task::Cwe, {"d", {}}, "Name the CWE."), "Name the CWE.  CVE Description: d");
}

TEST(Task, JsonInputs) {
  EXPECT_EQ(task_input_from_json(Task::Cwe, nlohmann::json::parse(R"({"description": "d"})"), "f:1").text, "d");
  EXPECT_EQ(task_input_from_json(Task::Attack, nlohmann::json::parse(R"({"report": "r"})"), "f:1").text, "r");
  const auto mcq = task_input_from_json(Task::Mcq, nlohmann::json::parse(R"({"text": "q", "options": ["a", "b"]})"), "f:1");
  EXPECT_EQ(mcq.options, (std::vector<std::string>{"a", "b"}));
  auto error_of = [](Task t, const char* line) {
    try {
      task_input_from_json(t, nlohmann::json::parse(line), "in.jsonl:7");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(error_of(Task::Cwe, R"({"question": "q"})"),
            "in.jsonl:7: no input text (expected a non-empty \"text\" or \"description\")");
  EXPECT_EQ(error_of(Task::Cwe, R"({"text": 3})"), "in.jsonl:7: \"text\" must be a string");
  EXPECT_EQ(error_of(Task::Cwe, R"([1])"), "in.jsonl:7: expected a JSON object");
  EXPECT_EQ(error_of(Task::Mcq, R"({"text": "q", "options": ["a", "b", "c", "d", "e"]})"),
            "in.jsonl:7: \"options\" must hold 2 to 4 choices (A-D), not 5");
  EXPECT_EQ(error_of(Task::Cvss, R"({"text": "q", "options": ["a", "b"]})"), "in.jsonl:7: \"options\" is only for mcq");
}

TEST(Task, StrictPatternsOnlyAdmitParseableAnswers) {
  // Every parser reads what the strict patterns allow (checked on examples matching them).
  const std::vector<std::pair<Task, std::string>> cases = {
      {Task::Cwe, "CWE-79"}, {Task::Mcq, "C"}, {Task::Cvss, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"},
      {Task::Attack, "T1059, T1071"}};
  for (const auto& [task, example] : cases) {
    const Regex whole("^(?:" + *strict_pattern(task, 0) + ")$");
    ASSERT_TRUE(whole.matches(example)) << task_name(task);
    for (AnswerParser p : {AnswerParser::Cybersecqwen, AnswerParser::Ctibench})
      EXPECT_TRUE(task_result(task, p, answer(example))["parsed"].get<bool>()) << task_name(task) << " " << parser_name(p);
  }
  EXPECT_EQ(*strict_pattern(Task::Mcq, 3), "[A-C]");
  EXPECT_FALSE(strict_pattern(Task::Ask, 0));
}

TEST(Task, ResultsCarryRawAnswerAndParsedValue) {
  auto r = task_result(Task::Cwe, AnswerParser::Cybersecqwen,
                       answer("The input is reflected unescaped, so this is XSS.\nCWE-79", "let me think"));
  EXPECT_EQ(r["cwe"], "CWE-79");
  EXPECT_EQ(r["justification"], "The input is reflected unescaped, so this is XSS.");
  EXPECT_EQ(r["reasoning"], "let me think");
  EXPECT_EQ(r["answer"], "The input is reflected unescaped, so this is XSS.\nCWE-79");

  r = task_result(Task::Cvss, AnswerParser::Cybersecqwen, answer("Vector:\nCVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"));
  EXPECT_EQ(r["vector"], "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_DOUBLE_EQ(r["base_score"].get<double>(), 9.8);
  EXPECT_EQ(r["severity"], "Critical");

  r = task_result(Task::Attack, AnswerParser::Cybersecqwen, answer("Reasoning...\nT1059.001, T1071, T1059"));
  EXPECT_EQ(r["techniques"], nlohmann::json::array({"T1059", "T1071"}));

  r = task_result(Task::Mcq, AnswerParser::Cybersecqwen, answer("The best option is C."));
  EXPECT_FALSE(r["parsed"].get<bool>());
  EXPECT_TRUE(r["letter"].is_null());

  // A CWE id that only appears in the reasoning is not an answer.
  r = task_result(Task::Cwe, AnswerParser::Cybersecqwen, answer("", "maybe CWE-79"));
  EXPECT_FALSE(r["parsed"].get<bool>());
  EXPECT_TRUE(task_result(Task::Ask, AnswerParser::Cybersecqwen, answer("Kerberoasting is..."))["parsed"].get<bool>());
}

}  // namespace
}  // namespace csq::tasks
