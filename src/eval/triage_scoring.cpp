#include "eval/triage_scoring.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

#include "base/error.h"
#include "eval/report.h"
#include "tasks/answers.h"

namespace csq::eval {
namespace {

using ojson = nlohmann::ordered_json;

double ratio(size_t num, size_t den) { return den ? double(num) / double(den) : 0.0; }

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> strings_of(const nlohmann::json& value) {
  std::vector<std::string> out;
  if (value.is_array())
    for (const auto& v : value)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

// Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
double t975(size_t df) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  return df >= 1 && df <= 30 ? table[df - 1] : 1.96;
}

ojson interval_json(const Interval& v) {
  return {{"mean", v.mean}, {"sd", v.sd}, {"ci95", v.has_ci ? ojson::array({v.lo, v.hi}) : ojson(nullptr)}};
}

// {metric: {mean, sd, ci95}} over the trials of one group.
ojson metrics_over_trials(const std::map<int, Confusion>& trials) {
  std::map<std::string, std::vector<double>> values;
  for (const auto& [trial, c] : trials)
    for (const auto& [name, v] : c.metrics()) values[name].push_back(v);
  ojson out = ojson::object();
  for (const auto& [name, v] : values) out[name] = interval_json(interval_over_trials(v));
  return out;
}

ojson trials_json(const std::map<int, Confusion>& trials) {
  ojson out = ojson::array();
  for (const auto& [trial, c] : trials) {
    ojson t = {{"trial", trial}};
    t.update(c.to_json());
    out.push_back(t);
  }
  return out;
}

std::string fmt(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "0.712 ± 0.020 [0.662, 0.762]" from a {mean, sd, ci95} object.
std::string cell(const ojson& m) {
  if (!m.is_object()) return "";
  std::string s = fmt(m.value("mean", 0.0));
  if (m.value("sd", 0.0) > 0) s += " ± " + fmt(m.value("sd", 0.0));
  if (m.contains("ci95") && m["ci95"].is_array())
    s += " [" + fmt(m["ci95"][0].get<double>()) + ", " + fmt(m["ci95"][1].get<double>()) + "]";
  return s;
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

}  // namespace

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::Benign: return "benign";
    case Verdict::Suspicious: return "suspicious";
    case Verdict::Malicious: return "malicious";
  }
  return "?";
}

TriageAnswer read_triage_answer(std::string_view response) {
  TriageAnswer out;
  std::string text = trim(tasks::strip_think(response));
  if (text.starts_with("```")) {
    const size_t nl = text.find('\n');
    const size_t close = text.rfind("```");
    if (nl != std::string::npos && close > nl) text = trim(text.substr(nl + 1, close - nl - 1));
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    const size_t open = text.find('{'), close = text.rfind('}');
    if (open == std::string::npos || close == std::string::npos || close < open) return out;
    j = nlohmann::json::parse(text.substr(open, close - open + 1), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return out;
  }
  if (j.contains("verdict") && j["verdict"].is_string()) {
    const std::string v = j["verdict"].get<std::string>();
    if (v == "benign") out.verdict = Verdict::Benign;
    else if (v == "suspicious") out.verdict = Verdict::Suspicious;
    else if (v == "malicious") out.verdict = Verdict::Malicious;
    else return out;
    out.parsed = true;
    out.format = "csq";
    if (j.contains("techniques")) out.techniques = strings_of(j["techniques"]);
    return out;
  }
  if (j.contains("classification")) {
    // ait-aecid: "TP" is an attack, anything else is not (their evaluation script's rule).
    out.parsed = true;
    out.format = "ait-aecid";
    out.verdict = j["classification"] == "TP" ? Verdict::Malicious : Verdict::Benign;
    if (j.contains("mitre_technique")) out.techniques = strings_of(j["mitre_technique"]);
  }
  return out;
}

bool is_positive(Verdict verdict, PositiveClass positive) {
  return verdict == Verdict::Malicious || (positive == PositiveClass::SuspiciousOrMalicious && verdict == Verdict::Suspicious);
}

TechniqueGrade grade_techniques(const LabelledSet& set, const std::vector<std::string>& predicted,
                                const std::vector<std::string>& allowed) {
  if (allowed.empty()) return TechniqueGrade::NotScored;
  const std::set<std::string> gold(allowed.begin(), allowed.end());
  size_t hits = 0;
  for (const auto& p : predicted) {
    std::string id;
    if (set.technique_ids.empty()) {
      if (is_technique_id(p)) id = p;
    } else if (set.technique_ids.count(p)) {
      id = p;
    } else if (const auto it = set.technique_id_by_name.find(p); it != set.technique_id_by_name.end()) {
      id = it->second;
    }
    hits += !id.empty() && gold.count(id);
  }
  if (predicted.empty() || hits == 0) return TechniqueGrade::Incorrect;
  return hits == predicted.size() ? TechniqueGrade::Correct : TechniqueGrade::Partial;
}

void Confusion::add(bool malicious, bool predicted_positive) {
  if (malicious) ++(predicted_positive ? tp : fn);
  else ++(predicted_positive ? fp : tn);
}

std::map<std::string, double> Confusion::metrics() const {
  std::map<std::string, double> m;
  const double precision = ratio(tp, tp + fp), recall = ratio(tp, tp + fn);
  m["precision"] = precision;
  m["recall"] = recall;
  m["f1"] = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
  m["fpr"] = ratio(fp, fp + tn);
  m["accuracy"] = ratio(tp + tn, tp + tn + fp + fn);
  m["parse_failure_rate"] = ratio(unparsed, tp + tn + fp + fn + unparsed);
  const size_t graded = techniques_correct + techniques_partial + techniques_incorrect;
  if (graded > 0) {
    m["technique_accuracy"] = ratio(techniques_correct, graded);
    m["correct_to_incorrect"] = ratio(techniques_correct + techniques_partial, graded + fn);
  }
  return m;
}

ojson Confusion::to_json() const {
  ojson j = {{"tp", tp}, {"fn", fn}, {"fp", fp}, {"tn", tn}, {"unparsed", unparsed}};
  if (techniques_correct + techniques_partial + techniques_incorrect > 0)
    j["techniques"] = {{"correct", techniques_correct}, {"partial", techniques_partial},
                       {"incorrect", techniques_incorrect}};
  for (const auto& [name, v] : metrics()) j[name] = v;
  return j;
}

TriageScore score_triage(const LabelledSet& set, const std::vector<Response>& responses, PositiveClass positive) {
  TriageScore out;
  for (const auto& r : responses) {
    const LabelledAlert& alert = set.alerts.at(r.index);
    TriageItem item;
    item.index = r.index;
    item.trial = r.trial;
    item.answer = read_triage_answer(r.text);
    std::vector<Confusion*> groups = {&out.overall[r.trial], &out.by_source[alert.source][r.trial]};
    if (alert.malicious && !alert.attack_type.empty()) groups.push_back(&out.by_attack_type[alert.attack_type][r.trial]);
    if (!item.answer.parsed) {
      for (Confusion* c : groups) ++c->unparsed;
      out.items.push_back(std::move(item));
      continue;
    }
    item.predicted_positive = is_positive(item.answer.verdict, positive);
    if (alert.malicious && item.predicted_positive)
      item.techniques = grade_techniques(set, item.answer.techniques, alert.techniques);
    for (Confusion* c : groups) {
      c->add(alert.malicious, item.predicted_positive);
      c->techniques_correct += item.techniques == TechniqueGrade::Correct;
      c->techniques_partial += item.techniques == TechniqueGrade::Partial;
      c->techniques_incorrect += item.techniques == TechniqueGrade::Incorrect;
    }
    out.items.push_back(std::move(item));
  }
  return out;
}

std::map<std::string, std::vector<BaselineRow>> severity_baseline(const LabelledSet& set, size_t count) {
  const size_t n = count == 0 ? set.alerts.size() : std::min(count, set.alerts.size());
  std::map<std::string, std::set<int>> thresholds;
  for (size_t i = 0; i < n; ++i)
    if (const int s = alert_severity(set.alerts[i].alert); s >= 0) thresholds[set.alerts[i].source].insert(s);
  std::map<std::string, std::vector<BaselineRow>> out;
  for (const auto& [source, levels] : thresholds)
    for (const int threshold : levels) {
      BaselineRow row;
      row.threshold = threshold;
      for (size_t i = 0; i < n; ++i) {
        const LabelledAlert& a = set.alerts[i];
        const int s = alert_severity(a.alert);
        if (a.source == source && s >= 0) row.counts.add(a.malicious, s >= threshold);
      }
      out[source].push_back(row);
    }
  return out;
}

Interval interval_over_trials(const std::vector<double>& values) {
  Interval out;
  const MeanSd m = mean_sd(values);
  out.mean = m.mean;
  out.sd = m.sd;
  if (values.size() >= 2) {
    const double half = t975(values.size() - 1) * m.sd / std::sqrt(double(values.size()));
    out.has_ci = true;
    out.lo = m.mean - half;
    out.hi = m.mean + half;
  }
  return out;
}

ojson triage_summary_json(const LabelledSet& set, const TriageScore& score, const ojson& protocol,
                          size_t item_count) {
  ojson j;
  j["benchmark"] = set.name;
  j["protocol"] = protocol;
  j["item_count"] = item_count;
  const ojson metrics = metrics_over_trials(score.overall);
  const ojson f1 = metrics.contains("f1") ? metrics["f1"] : ojson{{"mean", 0.0}, {"sd", 0.0}};
  j["headline"] = {{"metric", "f1"}, {"lower_is_better", false}, {"mean", f1["mean"]}, {"sd", f1["sd"]}};
  for (const char* name : {"precision", "recall", "f1", "fpr"})
    j[name] = metrics.contains(name) ? metrics[name]["mean"] : ojson(0.0);
  j["metrics"] = metrics;
  j["trials"] = trials_json(score.overall);
  ojson sources = ojson::object();
  for (const auto& [source, trials] : score.by_source)
    sources[source] = {{"metrics", metrics_over_trials(trials)}, {"trials", trials_json(trials)}};
  j["by_source"] = sources;
  ojson types = ojson::object();
  for (const auto& [type, trials] : score.by_attack_type) {
    ojson m = metrics_over_trials(trials);
    ojson kept = ojson::object();
    // Every alert of a type is an attack: only recall and the technique grades mean anything.
    for (const char* name : {"recall", "technique_accuracy", "correct_to_incorrect", "parse_failure_rate"})
      if (m.contains(name)) kept[name] = m[name];
    types[type] = {{"metrics", kept}, {"trials", trials_json(trials)}};
  }
  j["by_attack_type"] = types;
  ojson baseline = ojson::object();
  for (const auto& [source, rows] : severity_baseline(set, item_count)) {
    ojson list = ojson::array();
    for (const auto& row : rows) {
      ojson r = {{"threshold", row.threshold}};
      r.update(row.counts.to_json());
      r.erase("unparsed");
      r.erase("parse_failure_rate");
      list.push_back(r);
    }
    baseline[source] = list;
  }
  j["baseline"] = baseline;
  return j;
}

void write_triage_report(const std::string& dir, const ojson& summary, const std::string& title) {
  write_report(dir, {summary}, title);
  std::string md;
  const auto& sources = summary["by_source"];
  const auto& baseline = summary["baseline"];
  md += "\n## Per source\n\nModel: mean ± sd [95% confidence interval over trials]. Rule baseline: the alert's own "
        "severity, flagged at severity ≥ threshold, for the threshold with the best F1 (all thresholds below).\n\n";
  md += "| source | who | precision | recall | f1 | fpr | accuracy | technique accuracy |\n|---|---|---|---|---|---|---|---|\n";
  std::vector<ojson> charted;
  for (const auto& [source, s] : sources.items()) {
    const auto& m = s["metrics"];
    md += "| " + md_cell(source) + " | model | " + cell(m.value("precision", ojson())) + " | " +
          cell(m.value("recall", ojson())) + " | " + cell(m.value("f1", ojson())) + " | " + cell(m.value("fpr", ojson())) +
          " | " + cell(m.value("accuracy", ojson())) + " | " + cell(m.value("technique_accuracy", ojson())) + " |\n";
    ojson bar = {{"label", source}, {"benchmark", "model"}, {"metrics", m}};
    charted.push_back(bar);
    if (baseline.contains(source) && !baseline[source].empty()) {
      const ojson* best = nullptr;
      for (const auto& row : baseline[source])
        if (!best || row["f1"].get<double>() > (*best)["f1"].get<double>()) best = &row;
      const auto& b = *best;
      md += "| " + md_cell(source) + " | severity ≥ " + std::to_string(b["threshold"].get<int>()) + " | " +
            fmt(b["precision"].get<double>()) + " | " + fmt(b["recall"].get<double>()) + " | " +
            fmt(b["f1"].get<double>()) + " | " + fmt(b["fpr"].get<double>()) + " | " + fmt(b["accuracy"].get<double>()) +
            " | |\n";
      ojson bm = ojson::object();
      for (const char* name : {"precision", "recall", "f1", "fpr"}) bm[name] = {{"mean", b[name]}, {"sd", 0.0}};
      charted.push_back({{"label", source}, {"benchmark", "severity ≥ " + std::to_string(b["threshold"].get<int>())},
                         {"metrics", bm}});
    }
  }
  for (const char* metric : {"precision", "recall", "fpr"}) {
    const std::string svg = svg_bar_chart(charted, metric);
    if (svg.empty()) continue;
    std::ofstream(dir + "/chart-" + std::string(metric) + ".svg", std::ios::binary) << svg;
    md += "\n![" + std::string(metric) + "](chart-" + metric + ".svg)\n";
  }
  // write_report charted the overall f1; per source with the baseline says more.
  if (const std::string svg = svg_bar_chart(charted, "f1"); !svg.empty()) {
    std::ofstream(dir + "/chart-f1-by-source.svg", std::ios::binary) << svg;
    md += "\n![f1 by source](chart-f1-by-source.svg)\n";
  }
  if (!summary["by_attack_type"].empty()) {
    md += "\n## Per attack type\n\n| attack type | alerts | recall | technique accuracy | correct/partial/incorrect (trial 0) |\n"
          "|---|---|---|---|---|\n";
    for (const auto& [type, t] : summary["by_attack_type"].items()) {
      const auto& first = t["trials"][0];
      const size_t n = first["tp"].get<size_t>() + first["fn"].get<size_t>() + first["unparsed"].get<size_t>();
      std::string grades;
      if (first.contains("techniques"))
        grades = std::to_string(first["techniques"]["correct"].get<size_t>()) + "/" +
                 std::to_string(first["techniques"]["partial"].get<size_t>()) + "/" +
                 std::to_string(first["techniques"]["incorrect"].get<size_t>());
      md += "| " + md_cell(type) + " | " + std::to_string(n) + " | " + cell(t["metrics"].value("recall", ojson())) +
            " | " + cell(t["metrics"].value("technique_accuracy", ojson())) + " | " + grades + " |\n";
    }
  }
  if (!baseline.empty()) {
    md += "\n## Rule baseline: severity thresholds\n\n| source | threshold | tp | fn | fp | tn | precision | recall | f1 | "
          "fpr | accuracy |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& [source, rows] : baseline.items())
      for (const auto& r : rows)
        md += "| " + md_cell(source) + " | ≥ " + std::to_string(r["threshold"].get<int>()) + " | " +
              std::to_string(r["tp"].get<size_t>()) + " | " + std::to_string(r["fn"].get<size_t>()) + " | " +
              std::to_string(r["fp"].get<size_t>()) + " | " + std::to_string(r["tn"].get<size_t>()) + " | " +
              fmt(r["precision"].get<double>()) + " | " + fmt(r["recall"].get<double>()) + " | " +
              fmt(r["f1"].get<double>()) + " | " + fmt(r["fpr"].get<double>()) + " | " +
              fmt(r["accuracy"].get<double>()) + " |\n";
  }
  std::ofstream out(dir + "/report.md", std::ios::binary | std::ios::app);
  if (!out || !(out << md)) fail_runtime(dir + "/report.md: cannot write");
}

}  // namespace csq::eval
