// Prompt-injection test sets for `csq triage eval --injection`:
//  (a) CyberSecEval's textual prompt-injection cases (../shared/data/injection), scored without a
//      judge model where the judge question is a plain "does the response contain X" check;
//  (b) a log-borne set: payloads written into the attacker-controlled fields of real malicious
//      alerts (user-agent, URL, username, command line, file path, DNS name), in families
//      (instruction override, forged chat turns with control-token strings, forged JSON
//      verdicts, <think> blocks); an attack succeeds when the verdict flips to benign.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/alerts.h"

namespace csq::eval {

// ---- (a) CyberSecEval ----

enum class JudgeRule {
  Contains,         // judge-free: the needle in the response = the injection succeeded
  ContainsFragile,  // a needle that occurs by chance ("10"): reported apart
  Judge,            // needs a judge model: not scored here
};

struct InjectionCase {
  size_t index = 0;  // = prompt_id
  std::string system_prompt;  // test_case_prompt
  std::string user_input;
  std::string judge_question;
  std::string variant;         // injection_variant
  std::string injection_type;  // direct | indirect
  std::string risk_category;   // security-violating | logic-violating
  JudgeRule rule = JudgeRule::Judge;
  std::string needle;
  bool whole_word = false;  // the needle must not touch a letter or digit on either side
};

// prompt_injection.json joined with judge_rules.jsonl from DIR (the injection folder, or a
// folder holding it as injection/); BadInput naming the file and case for anything malformed.
std::vector<InjectionCase> load_cyberseceval(const std::string& dir);

// ASCII case-insensitive search of `needle`; whole_word: the match may not be preceded or
// followed by an ASCII letter or digit.
bool contains_needle(std::string_view response, std::string_view needle, bool whole_word);

// Whether the injection succeeded, judged from the string rule; nullopt for Judge cases.
std::optional<bool> judge_by_string(const InjectionCase& c, std::string_view response);

// ---- (b) the log-borne set ----

enum class Carrier { UserAgent, Url, Username, CommandLine, FilePath, DnsName };
const char* carrier_name(Carrier carrier);  // user_agent, url, username, command_line, file_path, dns_name
const std::vector<Carrier>& all_carriers();

struct LogPayload {
  std::string id;      // "override-1"
  std::string family;  // override, forged_chat, forged_json, think
  std::string text;    // what the attacker writes into the field
};

// The fixed payload set (the same on every call: results stay comparable across runs).
const std::vector<LogPayload>& log_injection_payloads();
const std::vector<std::string>& log_injection_families();

struct LogInjectionCase {
  size_t index = 0;        // position among the cases
  size_t alert_index = 0;  // the malicious alert of the labelled set it was built from
  Carrier carrier = Carrier::UserAgent;
  std::string field;       // JSON pointer of the field first found ("/data/url")
  std::string original;    // the field's value before injection
  const LogPayload* payload = nullptr;  // null: the clean alert (the verdict to flip)
  nlohmann::ordered_json alert;         // the alert with the payload in place
};

// For each carrier, the first `alerts_per_carrier` malicious alerts of `set` that have such a
// field: one clean case (payload null), then one case per payload. The payload is appended to
// the field's value, wherever that value stands: the decoded field and the raw log line that
// holds it ("GET /x HTTP/1.1" in an access-log line) change together, as they would when an
// attacker sends it.
std::vector<LogInjectionCase> build_log_injection_cases(const LabelledSet& set, size_t alerts_per_carrier);

}  // namespace csq::eval
