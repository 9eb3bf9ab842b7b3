#include "eval/protocol.h"

#include "base/error.h"

namespace csq::eval {
namespace {

// FAITH's chat instruction for four-choice questions (mcqa-template.yaml).
constexpr const char* kFaithMcq =
    "Given the following question and four candidate answers (A, B, C and D), choose the best answer. "
    "Your response should be of the following format: 'Answer: $LETTER' (without quotes) where $LETTER is "
    "one of A, B, C, or D.";
constexpr const char* kFaithRcm =
    "Analyze the following CVE description and map it to the appropriate CWE. Provide a brief justification "
    "for your choice. Ensure the last line of your response contains only the CWE ID.";
constexpr const char* kFaithVsp =
    "From the following CVE description, determine the CVSS v3.1 vector string for each CVSS base metric: "
    "AV, AC, PR, UI, S, C, I, and A.\n"
    "Valid options for each metric are as follows:\n"
    "- **Attack Vector (AV)**: Network (N), Adjacent (A), Local (L), Physical (P)\n"
    "- **Attack Complexity (AC)**: Low (L), High (H)\n"
    "- **Privileges Required (PR)**: None (N), Low (L), High (H)\n"
    "- **User Interaction (UI)**: None (N), Required (R)\n"
    "- **Scope (S)**: Unchanged (U), Changed (C)\n"
    "- **Confidentiality (C)**: None (N), Low (L), High (H)\n"
    "- **Integrity (I)**: None (N), Low (L), High (H)\n"
    "- **Availability (A)**: None (N), Low (L), High (H)\n"
    "Provide your answer as a CVSS v3.1 vector string. Ensure your final answer contains only the CVSS v3 "
    "Vector String in the following example format:\n"
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
constexpr const char* kFaithTaa =
    "You are given a threat report that describes a cyber incident.\n"
    "Any direct mentions of the threat actor group, specific campaign names, or malware names responsible "
    "have been replaced with [PLACEHOLDER].\n"
    "Your task is to analyze the report and attribute the incident to a known threat actor based on the "
    "techniques, tactics, procedures (TTPs), and any other relevant information described.\n"
    "Please provide the name of the threat actor you believe is responsible.\n\n"
    "The final line of your answer should be written as \"Threat Actor: [Your Answer]\" where [Your Answer] "
    "is the name of the threat actor you attribute the incident to.";

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::vector<Protocol> make_protocols() {
  std::vector<Protocol> ps;
  Protocol q;
  q.name = "cybersecqwen";
  q.description = "CyberSecQwen-4B's published setting: dataset prompt only, 5 sampled trials, strict accuracy";
  q.temperature = 0.3;
  q.top_p = 1.0;
  q.max_new_tokens = 512;
  q.trials = 5;
  q.seeds = {42, 43, 44, 45, 46};
  q.parser = tasks::AnswerParser::Cybersecqwen;
  q.prompt_style = PromptStyle::Dataset;
  q.headline = Headline::Strict;
  ps.push_back(q);

  Protocol c;
  c.name = "ctibench";
  c.description = "CTI-Bench's official setting (model-prediction.ipynb, evaluation.ipynb): greedy, one trial, "
                  "invalid answers dropped from the denominator";
  c.system_prompt = "You are a cybersecurity expert specializing in cyberthreat intelligence.";
  c.temperature = 0.0;
  c.top_p = 1.0;
  c.max_new_tokens = 2048;
  c.trials = 1;
  c.seeds = {42};
  c.parser = tasks::AnswerParser::Ctibench;
  c.prompt_style = PromptStyle::Dataset;
  c.headline = Headline::Lenient;
  ps.push_back(c);

  Protocol f;
  f.name = "faith";
  f.description = "Cisco FAITH: its instruction templates, answer formats with match_if_unique, 10 sampled trials";
  f.temperature = 0.3;
  f.top_p = 1.0;
  f.max_new_tokens = 5000;
  f.trials = 10;
  for (uint64_t s = 42; s < 52; ++s) f.seeds.push_back(s);
  f.parser = tasks::AnswerParser::Faith;
  f.prompt_style = PromptStyle::Faith;
  f.headline = Headline::Strict;
  ps.push_back(f);
  return ps;
}

}  // namespace

nlohmann::ordered_json Protocol::to_json() const {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["description"] = description;
  j["system_prompt"] = system_prompt.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(system_prompt);
  j["temperature"] = temperature;
  j["top_p"] = top_p;
  j["max_new_tokens"] = max_new_tokens;
  j["trials"] = trials;
  j["seeds"] = seeds;
  j["parser"] = tasks::parser_name(parser);
  j["prompt_style"] = prompt_style == PromptStyle::Dataset ? "dataset" : "faith";
  j["headline"] = headline == Headline::Strict ? "strict" : "lenient";
  return j;
}

const std::vector<Protocol>& protocols() {
  static const std::vector<Protocol> all = make_protocols();
  return all;
}

const Protocol& protocol_by_name(std::string_view name) {
  std::string list;
  for (const auto& p : protocols()) {
    if (p.name == name) return p;
    list += (list.empty() ? "" : ", ") + p.name;
  }
  fail_usage("unknown protocol '" + std::string(name) + "' (expected one of " + list + ")");
}

std::string build_prompt(const Protocol& protocol, const Benchmark& benchmark, const Item& item) {
  if (protocol.prompt_style == PromptStyle::Dataset) return item.prompt;
  switch (benchmark.kind) {
    case tasks::AnswerKind::Mcq: {
      std::string p = std::string(kFaithMcq) + "\n\n" + trim(item.question) + "\n\n";
      for (size_t k = 0; k < item.options.size(); ++k)
        p += std::string(1, char('A' + k)) + ". " + item.options[k] + (k + 1 < item.options.size() ? "\n" : "");
      return p;
    }
    case tasks::AnswerKind::Cwe: return std::string(kFaithRcm) + "\n\nCVE Description: " + trim(item.question);
    case tasks::AnswerKind::Cvss: return std::string(kFaithVsp) + "\n\nCVE Description: " + item.question;
    case tasks::AnswerKind::Actor:
      return std::string(kFaithTaa) + "\n\nThreat Report: " + trim(item.question) +
             "\n\nWho is the threat actor indicated by [PLACEHOLDER] in this report?";
    case tasks::AnswerKind::Attack:
      // FAITH's ATE instruction embeds the full technique list; CTI-ATE's own prompt carries the
      // same list and the same "Answer: " final-line instruction, so it is used as is.
      return item.prompt;
  }
  return item.prompt;
}

}  // namespace csq::eval
