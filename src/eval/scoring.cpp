#include "eval/scoring.h"

#include <cmath>
#include <fstream>
#include <set>

#include "base/error.h"
#include "base/jsonl.h"
#include "io/mapped_file.h"
#include "tasks/cvss.h"

namespace csq::eval {
namespace {

std::set<std::string> split_ids(const std::string& list) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    if (comma > pos) out.insert(list.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

bool metric_is_lower_better(const std::string& name) { return name.starts_with("mad") || name == "parse_failure_rate"; }

}  // namespace

std::string normalize_actor(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') out += char(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out += c;
  }
  return out;
}

std::vector<Response> read_responses(const std::string& path, size_t item_count) {
  std::ifstream in = io::open_input_file(path, "cannot open responses file");
  std::vector<Response> out;
  std::set<std::pair<int, size_t>> seen;
  for_each_jsonl_line(in, path, [&](const std::string& line, const std::string& at, size_t) {
    const nlohmann::json j = parse_jsonl_line(line, at);
    if (!j.is_object()) fail_input(at + ": expected an object {\"index\", \"response\", \"trial\"?}");
    if (!j.contains("index") || !j["index"].is_number_integer() || j["index"].get<long long>() < 0)
      fail_input(at + ": \"index\" must be a non-negative integer");
    if (!j.contains("response") || !j["response"].is_string()) fail_input(at + ": \"response\" must be a string");
    Response r;
    r.index = j["index"].get<size_t>();
    if (r.index >= item_count)
      fail_input(at + ": index " + std::to_string(r.index) + " is outside the benchmark (" +
                 std::to_string(item_count) + " items)");
    if (j.contains("trial")) {
      if (!j["trial"].is_number_integer() || j["trial"].get<long long>() < 0)
        fail_input(at + ": \"trial\" must be a non-negative integer");
      r.trial = j["trial"].get<int>();
    }
    if (!seen.insert({r.trial, r.index}).second)
      fail_input(at + ": index " + std::to_string(r.index) + " of trial " + std::to_string(r.trial) +
                 " appears twice");
    r.text = j["response"].get<std::string>();
    out.push_back(std::move(r));
  });
  return out;
}

ItemResult score_item(const Benchmark& benchmark, const Protocol& protocol, size_t index, int trial,
                      const std::string& response) {
  const Item& item = benchmark.items.at(index);
  ItemResult r;
  r.index = index;
  r.trial = trial;
  r.response = response;
  r.answer = tasks::parse_answer(protocol.parser, benchmark.kind, response);
  if (!r.answer.parsed) return r;
  switch (benchmark.kind) {
    case tasks::AnswerKind::Mcq:
    case tasks::AnswerKind::Cwe: r.correct = r.answer.value == item.gold; break;
    case tasks::AnswerKind::Cvss: {
      const tasks::CvssVector pred = tasks::parse_cvss(r.answer.value);
      const tasks::CvssVector gold = tasks::parse_cvss(item.gold);
      r.correct = pred.same_base(gold);
      r.abs_error = std::fabs(tasks::cvss_base_score(pred) - tasks::cvss_base_score(gold));
      break;
    }
    case tasks::AnswerKind::Attack: {
      const auto pred = split_ids(r.answer.value), gold = split_ids(item.gold);
      size_t hit = 0;
      for (const auto& id : pred) hit += gold.count(id);
      const size_t uni = pred.size() + gold.size() - hit;
      r.jaccard = uni ? double(hit) / double(uni) : 1.0;
      r.f1 = pred.size() + gold.size() ? 2.0 * double(hit) / double(pred.size() + gold.size()) : 1.0;
      r.correct = pred == gold;
      break;
    }
    case tasks::AnswerKind::Actor: r.correct = normalize_actor(r.answer.value) == normalize_actor(item.gold); break;
  }
  return r;
}

MeanSd mean_sd(const std::vector<double>& values) {
  MeanSd m;
  if (values.empty()) return m;
  for (double v : values) m.mean += v;
  m.mean /= double(values.size());
  if (values.size() > 1) {
    double ss = 0;
    for (double v : values) ss += (v - m.mean) * (v - m.mean);
    m.sd = std::sqrt(ss / double(values.size() - 1));
  }
  return m;
}

ScoreResult score_responses(const Benchmark& benchmark, const Protocol& protocol,
                            const std::vector<Response>& responses) {
  ScoreResult out;
  out.benchmark = benchmark.name;
  out.protocol = protocol;
  out.item_count = benchmark.items.size();
  std::map<int, std::vector<size_t>> by_trial;  // trial -> positions in out.items
  for (const auto& resp : responses) {
    by_trial[resp.trial].push_back(out.items.size());
    out.items.push_back(score_item(benchmark, protocol, resp.index, resp.trial, resp.text));
  }
  const tasks::AnswerKind kind = benchmark.kind;
  for (const auto& [trial, positions] : by_trial) {
    TrialMetrics t;
    t.trial = trial;
    double abs_sum = 0, f1_sum = 0, jaccard_sum = 0;
    for (size_t p : positions) {
      const ItemResult& r = out.items[p];
      ++t.n;
      t.parseable += r.answer.parsed;
      t.correct += r.correct;
      t.proper += r.answer.parsed && r.answer.proper;
      if (r.answer.parsed) abs_sum += r.abs_error;
      f1_sum += r.f1;
      jaccard_sum += r.jaccard;
    }
    const double n = double(t.n), parseable = double(t.parseable);
    t.values["strict_accuracy"] = double(t.correct) / n;
    t.values["lenient_accuracy"] = t.parseable ? double(t.correct) / parseable : 0.0;
    t.values["parse_failure_rate"] = 1.0 - parseable / n;
    if (protocol.parser == tasks::AnswerParser::Faith) t.values["proper_format_rate"] = double(t.proper) / n;
    if (kind == tasks::AnswerKind::Cvss) {
      // CTI-Bench's MAD averages over valid answers; mad_strict charges an unparseable answer
      // the full range (10), as FAITH's CVSS score does.
      t.values["mad"] = t.parseable ? abs_sum / parseable : 10.0;
      t.values["mad_strict"] = (abs_sum + 10.0 * (n - parseable)) / n;
    }
    if (kind == tasks::AnswerKind::Attack) {
      t.values["f1"] = f1_sum / n;
      t.values["jaccard"] = jaccard_sum / n;
    }
    out.trials.push_back(std::move(t));
  }
  if (!out.trials.empty()) {
    for (const auto& [name, unused] : out.trials.front().values) {
      std::vector<double> v;
      for (const auto& t : out.trials) v.push_back(t.values.at(name));
      out.summary[name] = mean_sd(v);
    }
  }
  if (kind == tasks::AnswerKind::Cvss) out.headline = "mad";
  else if (kind == tasks::AnswerKind::Attack) out.headline = "f1";
  else out.headline = protocol.headline == Headline::Strict ? "strict_accuracy" : "lenient_accuracy";
  return out;
}

nlohmann::ordered_json summary_json(const ScoreResult& result) {
  nlohmann::ordered_json j;
  j["benchmark"] = result.benchmark;
  j["protocol"] = result.protocol.to_json();
  j["item_count"] = result.item_count;
  j["headline"] = {{"metric", result.headline},
                   {"lower_is_better", metric_is_lower_better(result.headline)},
                   {"mean", result.summary.count(result.headline) ? result.summary.at(result.headline).mean : 0.0},
                   {"sd", result.summary.count(result.headline) ? result.summary.at(result.headline).sd : 0.0}};
  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
  for (const auto& [name, m] : result.summary) metrics[name] = {{"mean", m.mean}, {"sd", m.sd}};
  j["metrics"] = metrics;
  nlohmann::ordered_json trials = nlohmann::ordered_json::array();
  for (const auto& t : result.trials) {
    nlohmann::ordered_json tj = {{"trial", t.trial}, {"n", t.n}, {"parseable", t.parseable}, {"correct", t.correct}};
    for (const auto& [name, v] : t.values) tj[name] = v;
    trials.push_back(tj);
  }
  j["trials"] = trials;
  return j;
}

}  // namespace csq::eval
