#include "tasks/task.h"

#include <cctype>

#include "base/error.h"
#include "tasks/cvss.h"

namespace csq::tasks {
namespace {

using ojson = nlohmann::ordered_json;

// CTI-Bench's instructions, as in the Prompt column of its TSVs (double spaces included).
constexpr const char* kRcm =
    "Analyze the following CVE description and map it to the appropriate CWE. Provide a brief justification for "
    "your choice. Ensure the last line of your response contains only the CWE ID.";
constexpr const char* kMcq =
    "You are given a multiple-choice question (MCQ) from a Cyber Threat Intelligence (CTI) knowledge benchmark "
    "dataset. Your task is to choose the best option among the four provided. Return your answer as a single "
    "uppercase letter: A, B, C, or D.";
constexpr const char* kMcqEnd =
    "  **Important:** The last line of your answer should contain only the single letter corresponding to the best "
    "option, with no additional text.";
constexpr const char* kVsp =
    "Analyze the following CVE description and calculate the CVSS v3.1 Base Score. Determine the values for each base "
    "metric: AV, AC, PR, UI, S, C, I, and A. Summarize each metric's value and provide the final CVSS v3.1 vector "
    "string.   Valid options for each metric are as follows: - **Attack Vector (AV)**: Network (N), Adjacent (A), "
    "Local (L), Physical (P) - **Attack Complexity (AC)**: Low (L), High (H) - **Privileges Required (PR)**: None "
    "(N), Low (L), High (H) - **User Interaction (UI)**: None (N), Required (R) - **Scope (S)**: Unchanged (U), "
    "Changed (C) - **Confidentiality (C)**: None (N), Low (L), High (H) - **Integrity (I)**: None (N), Low (L), High "
    "(H) - **Availability (A)**: None (N), Low (L), High (H)  Summarize each metric's value and provide the final "
    "CVSS v3.1 vector string. Ensure the final line of your response contains only the CVSS v3 Vector String in the "
    "following format:  Example format: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
// CTI-ATE's instruction; its reference list of every technique id and name (~9,000 characters)
// is benchmark scaffolding and is left out.
constexpr const char* kAte =
    "Extract all MITRE Enterprise attack patterns from the following text and map them to their corresponding MITRE "
    "technique IDs. Provide reasoning for each identification. Ensure the final line contains only the IDs for the "
    "main techniques, separated by commas, excluding any subtechnique IDs.";

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

AnswerKind kind_of(Task task) {
  switch (task) {
    case Task::Cwe: return AnswerKind::Cwe;
    case Task::Mcq: return AnswerKind::Mcq;
    case Task::Cvss: return AnswerKind::Cvss;
    case Task::Attack: return AnswerKind::Attack;
    case Task::Ask: break;
  }
  return AnswerKind::Mcq;  // unused: ask has no parser
}

}  // namespace

const char* task_name(Task task) {
  switch (task) {
    case Task::Cwe: return "cwe";
    case Task::Mcq: return "mcq";
    case Task::Cvss: return "cvss";
    case Task::Attack: return "attack";
    case Task::Ask: return "ask";
  }
  return "?";
}

std::string task_prompt(Task task, const TaskInput& input, const std::string& instruction) {
  const std::string text = trim(input.text);
  auto instr = [&](const char* standard) { return instruction.empty() ? std::string(standard) : instruction; };
  switch (task) {
    case Task::Cwe: return instr(kRcm) + "  CVE Description: " + text;
    case Task::Cvss: return instr(kVsp) + "  CVE Description: " + text;
    case Task::Attack: return instr(kAte) + "  **Text:** " + text;
    case Task::Mcq: {
      std::string p = instr(kMcq) + "  **Question:** " + text;
      if (!input.options.empty()) {
        p += "  **Options:**";
        for (size_t k = 0; k < input.options.size(); ++k) p += std::string(" ") + char('A' + k) + ") " + trim(input.options[k]);
      }
      return p + kMcqEnd;
    }
    case Task::Ask: return instruction.empty() ? text : instruction + "\n\n" + text;
  }
  return text;
}

TaskInput task_input_from_json(Task task, const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail_input(where + ": expected a JSON object");
  const char* own = task == Task::Cwe || task == Task::Cvss ? "description"
                    : task == Task::Attack                  ? "report"
                                                            : "question";
  TaskInput in;
  for (const char* key : {"text", own}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_string()) fail_input(where + ": \"" + key + "\" must be a string");
    in.text = j[key].get<std::string>();
    break;
  }
  if (trim(in.text).empty()) fail_input(where + ": no input text (expected a non-empty \"text\" or \"" + own + "\")");
  if (j.contains("options")) {
    if (task != Task::Mcq) fail_input(where + ": \"options\" is only for mcq");
    if (!j["options"].is_array()) fail_input(where + ": \"options\" must be an array of strings");
    for (const auto& o : j["options"]) {
      if (!o.is_string()) fail_input(where + ": \"options\" must be an array of strings");
      in.options.push_back(o.get<std::string>());
    }
    if (in.options.size() < 2 || in.options.size() > 4)
      fail_input(where + ": \"options\" must hold 2 to 4 choices (A-D), not " + std::to_string(in.options.size()));
  }
  return in;
}

std::optional<std::string> strict_pattern(Task task, size_t option_count) {
  switch (task) {
    case Task::Cwe: return "CWE-[1-9][0-9]{0,3}";
    case Task::Mcq: return std::string("[A-") + char('A' + (option_count ? option_count : 4) - 1) + "]";
    case Task::Cvss: return "CVSS:3\\.1/AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[NLH]/I:[NLH]/A:[NLH]";
    case Task::Attack: return "T[0-9]{4}(, T[0-9]{4}){0,9}";
    case Task::Ask: break;
  }
  return std::nullopt;
}

ojson task_result(Task task, AnswerParser parser, const ChatResult& r) {
  ojson j;
  j["answer"] = r.content;
  if (!r.reasoning.empty()) j["reasoning"] = r.reasoning;
  j["finish"] = r.finish;
  if (task == Task::Ask) {
    j["parsed"] = !trim(r.content).empty();
    return j;
  }
  const Answer a = parse_answer(parser, kind_of(task), r.text());
  j["parsed"] = a.parsed;
  const ojson value = a.parsed ? ojson(a.value) : ojson(nullptr);
  switch (task) {
    case Task::Cwe: {
      j["cwe"] = value;
      // The justification: what the model wrote before naming the id for the last time.
      std::string upper = r.content;
      for (char& ch : upper) ch = char(std::toupper(static_cast<unsigned char>(ch)));
      const size_t at = a.parsed ? upper.rfind(a.value) : std::string::npos;
      const std::string why = at == std::string::npos ? std::string() : trim(r.content.substr(0, at));
      j["justification"] = why.empty() ? ojson(nullptr) : ojson(why);
      break;
    }
    case Task::Mcq: j["letter"] = value; break;
    case Task::Cvss: {
      j["vector"] = value;
      if (a.parsed) {
        const double score = cvss_base_score(parse_cvss(a.value));
        j["base_score"] = score;
        j["severity"] = cvss_severity(score);
      } else {
        j["base_score"] = nullptr;
        j["severity"] = nullptr;
      }
      break;
    }
    case Task::Attack: {
      ojson ids = ojson::array();
      for (size_t pos = 0; a.parsed && pos < a.value.size();) {
        size_t comma = a.value.find(',', pos);
        if (comma == std::string::npos) comma = a.value.size();
        if (comma > pos) ids.push_back(a.value.substr(pos, comma - pos));
        pos = comma + 1;
      }
      j["techniques"] = a.parsed ? ids : ojson(nullptr);
      break;
    }
    case Task::Ask: break;
  }
  return j;
}

}  // namespace csq::tasks
