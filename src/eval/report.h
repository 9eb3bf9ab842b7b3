// Reports of scored runs: the per-item JSONL, the run summary, and a Markdown page comparing
// runs with an SVG bar chart of each headline metric.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/benchmarks.h"
#include "eval/scoring.h"

namespace csq::eval {

// One line per scored response: index, trial, prompt, response, parsed, answer, gold, correct
// (+ abs_error for CVSS, f1/jaccard for ATT&CK).
void write_items_jsonl(const std::string& path, const Benchmark& benchmark, const ScoreResult& result);

// An SVG bar chart of `metric` over the runs that report it (mean with ± sd whiskers).
// Returns an empty string when no run reports the metric.
std::string svg_bar_chart(const std::vector<nlohmann::ordered_json>& summaries, const std::string& metric);

// Writes DIR/report.md and DIR/chart-<metric>.svg for each headline metric among `summaries`
// (each as produced by summary_json, plus a "label"). The page records every protocol setting.
void write_report(const std::string& dir, const std::vector<nlohmann::ordered_json>& summaries,
                  const std::string& title);

}  // namespace csq::eval
