// Scoring triage answers against a labelled alert set: the confusion matrix per trial (overall,
// per source, per attack type), precision / recall / F1 / false-positive rate / accuracy,
// ATT&CK technique grades, mean ± sd and a 95% confidence interval over trials, and the rule
// baseline that needs no model (the alert's own severity at each threshold).
//
// Two answer formats are understood, told apart by their fields: csq's own triage answer
// {"verdict": "benign" | "suspicious" | "malicious", "techniques": [...], ...} and the ait-aecid
// answer {"classification": "TP" | "FP", "mitre_technique": [...], ...}, scored under that set's
// protocol (docs/triage.md): "TP" is positive, any other classification negative, an answer that
// is not such an object is left out of the counts (and counted as unparsed).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/alerts.h"
#include "eval/scoring.h"

namespace csq::eval {

enum class Verdict { Benign, Suspicious, Malicious };
const char* verdict_name(Verdict verdict);

struct TriageAnswer {
  bool parsed = false;
  Verdict verdict = Verdict::Benign;
  std::vector<std::string> techniques;  // as the answer wrote them: ids or names
  std::string format;                   // "csq" or "ait-aecid"
};

// Reasoning is dropped first (strip_think), then a Markdown code fence around the object, then
// text before the first '{' and after the last '}'.
TriageAnswer read_triage_answer(std::string_view response);

// Which verdicts count as a positive (an alert flagged as an attack).
enum class PositiveClass {
  SuspiciousOrMalicious,  // the default
  Malicious,              // --positive malicious
};
bool is_positive(Verdict verdict, PositiveClass positive);

// A technique answer for an attack alert the model flagged: every technique it gave is allowed
// (correct), some are (partial), none are or it gave none (incorrect). A technique is resolved
// as an id of the set's technique table, else by its exact name there; without a table, as an
// id written T1234 / T1234.001. Ids compare exactly: T1110.003 is not T1110.
enum class TechniqueGrade { NotScored, Correct, Partial, Incorrect };
TechniqueGrade grade_techniques(const LabelledSet& set, const std::vector<std::string>& predicted,
                                const std::vector<std::string>& allowed);

struct Confusion {
  size_t tp = 0, fn = 0, fp = 0, tn = 0;
  size_t unparsed = 0;  // answers left out of the four counts
  size_t techniques_correct = 0, techniques_partial = 0, techniques_incorrect = 0;

  void add(bool malicious, bool predicted_positive);
  // precision, recall, f1, fpr, accuracy (0 where a denominator is 0), parse_failure_rate,
  // technique_accuracy = correct / graded, correct_to_incorrect = (correct + partial) /
  // (graded + fn) as the ait-aecid authors report it (only where techniques were graded).
  std::map<std::string, double> metrics() const;
  nlohmann::ordered_json to_json() const;  // the counts and the metrics
};

struct TriageItem {
  size_t index = 0;
  int trial = 0;
  TriageAnswer answer;
  bool predicted_positive = false;
  TechniqueGrade techniques = TechniqueGrade::NotScored;
};

struct TriageScore {
  std::vector<TriageItem> items;
  std::map<int, Confusion> overall;                               // trial -> counts
  std::map<std::string, std::map<int, Confusion>> by_source;      // source -> trial -> counts
  std::map<std::string, std::map<int, Confusion>> by_attack_type; // attack alerts only
};

// `responses` may cover part of the set (e.g. one source); only what they cover is counted.
TriageScore score_triage(const LabelledSet& set, const std::vector<Response>& responses, PositiveClass positive);

// The alerts with a severity (alert_severity), flagged positive at severity >= threshold, for
// every threshold that occurs, per source; `count`: the first N alerts of the set (0: all).
struct BaselineRow {
  int threshold = 0;
  Confusion counts;
};
std::map<std::string, std::vector<BaselineRow>> severity_baseline(const LabelledSet& set, size_t count = 0);

struct Interval {
  double mean = 0, sd = 0;
  bool has_ci = false;  // needs two trials or more
  double lo = 0, hi = 0;  // mean ± t(0.975, n-1) · sd / √n
};
Interval interval_over_trials(const std::vector<double>& values);

// The summary `csq triage eval` writes: the shape of `csq eval`'s (benchmark, protocol, headline
// f1, metrics with mean/sd/ci95, trials) plus precision/recall/f1/fpr at the top, by_source,
// by_attack_type and baseline.
nlohmann::ordered_json triage_summary_json(const LabelledSet& set, const TriageScore& score,
                                           const nlohmann::ordered_json& protocol, size_t item_count);

// report.md (the `csq eval` tables, then per source with the baseline side by side, per attack
// type) and chart-{f1,precision,recall,fpr}.svg in `dir`.
void write_triage_report(const std::string& dir, const nlohmann::ordered_json& summary, const std::string& title);

}  // namespace csq::eval
