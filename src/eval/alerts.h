// Labelled alert sets for `csq triage eval`: the ait-aecid set (400 Wazuh and AMiner alerts,
// ../shared/data/alerts) and any JSON Lines file of
//   {"alert": {...}, "label": "malicious" | "benign", "techniques": [...]?,
//    "source": "..."?, "attack_type": "..."?}
// Every field of an alert is untrusted text: it is only ever carried, never interpreted here.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace csq::eval {

struct LabelledAlert {
  size_t index = 0;          // position in the set (the "index" of a responses file)
  nlohmann::ordered_json alert;  // the record, key order as read
  std::string raw;           // the alert's line as read, without its line end
  bool malicious = false;
  std::string source;        // "aminer", "wazuh", "sigma", "other", or the line's own "source"
  std::string attack_type;   // empty when unknown (and for benign alerts)
  // ATT&CK ids that count as a correct technique answer; empty: techniques are not scored.
  std::vector<std::string> techniques;
  std::string origin;        // "alerts/aminer_attack_lines.json:12" or "my.jsonl:7"
};

struct LabelledSet {
  std::string name;  // "ait-aecid" or the file's stem
  std::string path;  // the directory or file it was read from
  std::vector<LabelledAlert> alerts;
  // ATT&CK technique names and ids an answer may give (ait-aecid: mitre_attack_techniques.json);
  // empty: an answer's technique counts when it is written as an id ("T1110.001").
  std::map<std::string, std::string> technique_id_by_name;
  std::set<std::string> technique_ids;
};

// DIR is the ait-aecid folder (holding labels.jsonl) or a folder with it as alerts/. Throws
// BadInput naming the file and line for anything that does not match the README's layout.
LabelledSet load_ait_aecid(const std::string& dir);

// A labelled JSON Lines file; BadInput naming PATH:LINE and the field for a malformed line.
LabelledSet load_labelled_jsonl(const std::string& path);

// "T1110" or "T1110.001".
bool is_technique_id(std::string_view s);

// Where an alert came from, judged by its shape: "aminer" (AnalysisComponent), "sigma" (a csq
// detect --json alert, or type sigma_alert / sigma_correlation), "wazuh" (rule.level number plus
// agent or decoder), "other".
std::string alert_source(const nlohmann::ordered_json& alert);

// The alert's own severity as a number, when it has one: Wazuh rule.level (0-15), or a Sigma
// rule.level or a csq detect alert's level (informational 1, low 2, medium 3, high 4, critical 5).
// -1: none.
int alert_severity(const nlohmann::ordered_json& alert);

}  // namespace csq::eval
