// The defender tasks behind `csq cwe`, `csq mcq`, `csq cvss`, `csq attack` and `csq ask`: the
// CTI-Bench instruction for each as the default prompt, the input read from text or a JSONL
// object, an optional answer pattern that always parses (--strict), and the answer turned into
// JSON holding the raw text and the parsed value.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tasks/answers.h"
#include "tasks/chat_backend.h"

namespace csq::tasks {

enum class Task { Cwe, Mcq, Cvss, Attack, Ask };

const char* task_name(Task task);

// CTI-Bench's system prompt (evaluation/model-prediction.ipynb).
inline constexpr const char* kCtiSystemPrompt = "You are a cybersecurity expert specializing in cyberthreat intelligence.";

struct TaskInput {
  std::string text;                  // CVE description, question, report
  std::vector<std::string> options;  // MCQ choices A, B, ... (empty: written in the text)
};

// The user turn: CTI-Bench's instruction for the task (CTI-RCM, CTI-MCQ, CTI-VSP, CTI-ATE
// without its reference list of technique names) with the input in place; `instruction`, when
// non-empty, replaces the instruction. Ask sends the question as it is.
std::string task_prompt(Task task, const TaskInput& input, const std::string& instruction = "");

// One JSONL object: "text", or the task's own field ("description" for cwe and cvss, "question"
// for mcq and ask, "report" for attack); MCQ may add "options": [..]. Throws BadInput naming
// `where` and the field.
TaskInput task_input_from_json(Task task, const nlohmann::json& object, const std::string& where);

// A pattern every answer of the task's parser reads (CWE-n, a letter among the options, a full
// CVSS:3.1 vector, technique ids), for a regex constraint; nullopt for ask.
std::optional<std::string> strict_pattern(Task task, size_t option_count);

// {"answer", "reasoning"?, "finish", "parsed", + "cwe"/"justification", "letter",
//  "vector"/"base_score"/"severity", "techniques"}: the value is null when nothing parsed.
nlohmann::ordered_json task_result(Task task, AnswerParser parser, const ChatResult& result);

}  // namespace csq::tasks
