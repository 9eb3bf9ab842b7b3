// Scoring model responses to a benchmark under a protocol: per-item results, per-trial
// metrics, and mean ± sample standard deviation over trials.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/benchmarks.h"
#include "eval/protocol.h"
#include "tasks/answers.h"

namespace csq::eval {

struct Response {
  size_t index = 0;  // the benchmark item
  int trial = 0;
  std::string text;
};

// Lines {"index": i, "response": "...", "trial": t?}. Throws BadInput naming the file and line
// for malformed lines, an index outside the benchmark, or a repeated (index, trial).
std::vector<Response> read_responses(const std::string& path, size_t item_count);

struct ItemResult {
  size_t index = 0;
  int trial = 0;
  std::string response;
  tasks::Answer answer;
  bool correct = false;
  double abs_error = -1;  // CVSS: |base(pred) - base(gold)| when parsed, else -1
  double f1 = 0;          // ATT&CK: over main technique ids
  double jaccard = 0;
};

struct TrialMetrics {
  int trial = 0;
  size_t n = 0, parseable = 0, correct = 0, proper = 0;
  std::map<std::string, double> values;  // strict_accuracy, lenient_accuracy, parse_failure_rate, ...
};

struct MeanSd {
  double mean = 0;
  double sd = 0;  // sample standard deviation (n - 1); 0 with one trial
};

struct ScoreResult {
  std::string benchmark;
  Protocol protocol;
  size_t item_count = 0;
  std::vector<ItemResult> items;
  std::vector<TrialMetrics> trials;
  std::map<std::string, MeanSd> summary;  // each metric over trials
  std::string headline;                   // the metric this protocol reports for this benchmark
};

ScoreResult score_responses(const Benchmark& benchmark, const Protocol& protocol,
                            const std::vector<Response>& responses);

// One item, outside any run: parse `response` and compare with the item's gold.
ItemResult score_item(const Benchmark& benchmark, const Protocol& protocol, size_t index, int trial,
                      const std::string& response);

// Lower-case letters and digits only: "Mustang Panda" and "MUSTANG-PANDA" match.
std::string normalize_actor(std::string_view name);

MeanSd mean_sd(const std::vector<double>& values);

// {"benchmark", "protocol": {...}, "item_count", "headline", "metrics": {name: {mean, sd}},
//  "trials": [...]} — what `csq eval score --json` prints and reports are built from.
nlohmann::ordered_json summary_json(const ScoreResult& result);

}  // namespace csq::eval
