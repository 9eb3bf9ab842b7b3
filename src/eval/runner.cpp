#include "eval/runner.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/error.h"
#include "eval/benchmarks.h"
#include "eval/protocol.h"
#include "eval/report.h"
#include "eval/resumable.h"
#include "eval/scoring.h"

namespace csq::eval {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!out || !(out << text)) fail_runtime(path + ": cannot write");
}

// The protocol as run: the first K trials, and max new tokens overridden for smoke runs (said in
// the description, so report.md's protocol table shows it).
Protocol effective_protocol(const RunConfig& c) {
  Protocol p = protocol_by_name(c.protocol);
  if (c.trials < 0 || c.trials > p.trials)
    fail_usage("--trials " + std::to_string(c.trials) + ": protocol " + p.name + " has " + std::to_string(p.trials) +
               " trials (seeds fixed by the protocol)");
  if (c.trials > 0) {
    p.trials = c.trials;
    p.seeds.resize(size_t(c.trials));
  }
  if (c.max_tokens < 0) fail_usage("--max-tokens must be positive");
  if (c.max_tokens > 0 && c.max_tokens != p.max_new_tokens) {
    p.description += " [max_new_tokens overridden to " + std::to_string(c.max_tokens) + " from " +
                     std::to_string(p.max_new_tokens) + ": not the published setting]";
    p.max_new_tokens = int(c.max_tokens);
  }
  return p;
}

// What must match for answers to be reusable: the benchmark, every protocol setting but the
// number of trials (trial t always uses seed t of the protocol), and who answers.
ojson manifest_of(const std::string& benchmark, const Protocol& p, const tasks::ChatBackend& backend) {
  ojson settings = p.to_json();
  settings.erase("trials");
  settings.erase("seeds");
  return {{"benchmark", benchmark}, {"protocol", settings}, {"backend", backend.identity()}};
}

std::string fmt(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

RunOutcome run_evaluation(const RunConfig& c, tasks::ChatBackend& backend) {
  const Protocol protocol = effective_protocol(c);
  Benchmark bench = load_benchmark(c.benchmark, c.data_dir);
  const size_t full_size = bench.items.size();
  if (c.limit > 0 && c.limit < bench.items.size()) bench.items.resize(c.limit);
  const RunDirectory directory(c.out_dir, manifest_of(bench.name, protocol, backend), "csq eval run");
  const std::string log_path = c.out_dir + "/responses.jsonl";
  std::map<GenerationKey, Generation> records = read_generation_log(log_path, full_size, "csq eval run");

  // Every item × trial of this run; those already in the log are not generated again.
  std::vector<GenerationKey> pending;
  size_t resumed = 0;
  for (int t = 0; t < protocol.trials; ++t)
    for (size_t i = 0; i < bench.items.size(); ++i) {
      if (records.count({t, i})) ++resumed;
      else pending.push_back({t, i});
    }
  std::vector<tasks::ChatRequest> requests;
  requests.reserve(pending.size());
  for (const auto& [trial, index] : pending) {
    tasks::ChatRequest r;
    r.label = bench.name + " item " + std::to_string(index) + " trial " + std::to_string(trial);
    r.messages = ojson::array();
    if (!protocol.system_prompt.empty()) r.messages.push_back({{"role", "system"}, {"content", protocol.system_prompt}});
    r.messages.push_back({{"role", "user"}, {"content", build_prompt(protocol, bench, bench.items[index])}});
    r.sampling.temperature = float(protocol.temperature);
    r.sampling.top_p = float(protocol.top_p);
    r.sampling.seed = protocol.seeds.at(size_t(trial));
    r.max_tokens = protocol.max_new_tokens;
    requests.push_back(std::move(r));
  }

  const auto started = Clock::now();
  Progress progress(c.progress, "csq eval run " + bench.name + "/" + protocol.name,
                    bench.items.size() * size_t(protocol.trials), resumed);
  if (!requests.empty()) backend.prepare(requests);
  std::map<GenerationKey, size_t> request_of;
  for (size_t k = 0; k < pending.size(); ++k) request_of[pending[k]] = k;
  const GenerationTotals totals = run_generations(
      log_path, pending,
      [&](const GenerationKey& key) {
        return complete_generation(backend, requests[request_of.at(key)]);
      },
      backend.concurrency(), records, progress);
  const size_t computed = totals.computed;
  const int64_t prompt_tokens = totals.prompt_tokens, completion_tokens = totals.completion_tokens;
  const std::map<std::string, size_t>& finishes = totals.finishes;
  const double wall_s = std::chrono::duration<double>(Clock::now() - started).count();

  std::vector<Response> responses;
  for (const auto& [key, g] : records)
    if (key.first < protocol.trials && key.second < bench.items.size())
      responses.push_back({g.index, g.trial, g.response});
  const ScoreResult result = score_responses(bench, protocol, responses);

  RunOutcome outcome;
  outcome.computed = computed;
  outcome.resumed = resumed;
  ojson summary = summary_json(result);
  fs::path dir = fs::path(c.out_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  summary["label"] = c.label.empty() ? dir.filename().string() : c.label;
  ojson run;
  run["backend"] = backend.identity();
  run["settings"] = backend.settings();
  ojson overrides = ojson::object();
  if (c.trials > 0) overrides["trials"] = c.trials;
  if (c.max_tokens > 0) overrides["max_new_tokens"] = c.max_tokens;
  if (c.limit > 0) overrides["limit"] = c.limit;
  run["overrides"] = overrides;
  run["items"] = bench.items.size();
  run["computed"] = computed;
  run["resumed"] = resumed;
  run["wall_s"] = wall_s;
  run["prompt_tokens"] = prompt_tokens;
  run["completion_tokens"] = completion_tokens;
  run["tokens_per_s"] = wall_s > 0 ? double(completion_tokens) / wall_s : 0.0;
  run["items_per_s"] = wall_s > 0 ? double(computed) / wall_s : 0.0;
  run["finish_reasons"] = finishes;
  summary["run"] = run;
  outcome.summary = summary;

  write_items_jsonl(c.out_dir + "/items.jsonl", bench, result);
  write_file(c.out_dir + "/summary.json", summary.dump(2) + "\n");
  write_report(c.out_dir, {summary}, "csq eval run: " + bench.name + " under " + protocol.name);
  // Throughput belongs to this run, not to the comparison tables of write_report.
  std::string md = "## Run\n\n| setting | value |\n|---|---|\n";
  md += "| backend | " + run["backend"].dump() + " |\n";
  md += "| settings | " + run["settings"].dump() + " |\n";
  md += "| overrides | " + (overrides.empty() ? std::string("none") : overrides.dump()) + " |\n";
  md += "| generations | " + std::to_string(computed) + " computed, " + std::to_string(resumed) + " resumed |\n";
  md += "| wall time | " + fmt(wall_s, 1) + " s |\n";
  md += "| tokens | " + std::to_string(prompt_tokens) + " prompt, " + std::to_string(completion_tokens) +
        " generated |\n";
  md += "| throughput | " + fmt(run["tokens_per_s"].get<double>(), 1) + " generated tokens/s, " +
        fmt(run["items_per_s"].get<double>(), 2) + " items/s |\n";
  std::ofstream(c.out_dir + "/report.md", std::ios::app) << "\n" << md;
  return outcome;
}

}  // namespace csq::eval
