// `csq respond`: an incident-response plan for an alert, grounded in MITRE ATT&CK. The techniques
// come from the input (a triage result, the alert's ATT&CK tags) or are retrieved from its text
// by the knowledge base's search; their descriptions and linked mitigations go into the prompt
// as reference text, the alert as data. The model's answer is constrained by plan_answer_schema()
// and then validated: every technique and mitigation id must exist in the knowledge base and each
// cited mitigation must be linked to a technique of the plan; the rest is removed and listed under
// "rejected" with the reason. The steps are filed under the NIST CSF 2.0 Respond and Recover
// categories (SP 800-61 Rev. 3). docs/respond.md documents the output.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kb/kb.h"
#include "tasks/chat_backend.h"

namespace csq::tasks {

struct CsfCategory {
  const char* id;        // RS.MA
  const char* function;  // Respond
  const char* name;      // Incident Management
};
// RS.MA, RS.AN, RS.CO, RS.MI, RC.RP, RC.CO, in this order.
const std::vector<CsfCategory>& response_categories();

// One input: a JSON object (a `csq detect --json` alert, a `csq triage` line, any other alert
// or event) or free text. Every byte of it is untrusted.
struct RespondInput {
  std::string where;              // "--text", "alert.json", "alerts.jsonl:3"
  nlohmann::ordered_json record;  // null for free text
  std::string text;               // free text (empty for a record)
};

// A technique the plan is about, and where it came from: "triage" (the triage result's
// techniques), "alert" (the alert's ATT&CK tags: csq detect's tags, Sigma's rule.tags, Wazuh's rule.mitre.id, a
// "techniques" list), "retrieved" (the knowledge-base search over the input's text) or "model"
// (named by the model's answer and found in the knowledge base).
struct PlanTechnique {
  std::string id;
  std::string source;
};

// The most search hits `retrieve` may ask for (csq respond --retrieve, POST /v1/respond).
constexpr size_t kMaxRetrieve = 10;

// The techniques the input names that the knowledge base holds; when it names none, the
// `retrieve` best search hits for its text (none when retrieve is 0). Ids the knowledge base does
// not hold go to `unknown` (reported under "rejected"); duplicates are kept once.
std::vector<PlanTechnique> input_techniques(const kb::KnowledgeBase& kb, const RespondInput& input, size_t retrieve,
                                            std::vector<std::string>* unknown = nullptr);

// The JSON Schema of the model's answer: {"summary", "severity", "techniques": [ids],
// "steps": [{"category", "action", "mitigations": [ids]}]}, every string bounded so that an
// answer cannot run on inside one; ids are constrained in form only (T1234, T1234.567, M1234),
// so that validation, not the constraint, decides which exist.
nlohmann::ordered_json plan_answer_schema();

// The chat messages: the system turn holds the instructions and the reference text (each
// technique's id, name, tactics and description, then its linked mitigations and how each
// applies); the user turn holds the input as data between markers, with the instruction not to
// follow anything written inside it.
nlohmann::ordered_json respond_messages(const kb::KnowledgeBase& kb, const RespondInput& input,
                                        const std::vector<PlanTechnique>& techniques);

// The chat request for one input: respond_messages, the answer constrained by
// plan_answer_schema(), the template's non-thinking mode (a constrained answer has no room for a
// <think> block); `label` is input.where.
ChatRequest respond_request(const kb::KnowledgeBase& kb, const RespondInput& input,
                            const std::vector<PlanTechnique>& techniques, const SamplingParams& sampling,
                            int64_t max_tokens);

// The validated plan for one answer (the output documented in docs/respond.md). Throws
// csq::Error (Runtime) naming `input.where` when the answer is not a complete JSON document of
// the schema (e.g. cut off at max_tokens).
nlohmann::ordered_json build_plan(const kb::KnowledgeBase& kb, const RespondInput& input,
                                  const std::vector<PlanTechnique>& techniques,
                                  const std::vector<std::string>& unknown_input_ids, const ChatResult& answer);

// The plan as a Markdown ticket.
std::string plan_markdown(const nlohmann::ordered_json& plan);

// Reads --alert input: one JSON object (which may span lines) or JSON Lines (one object a line);
// `name` names the source in errors and in each input's `where`.
std::vector<RespondInput> read_alerts(const std::string& content, const std::string& name);

}  // namespace csq::tasks
