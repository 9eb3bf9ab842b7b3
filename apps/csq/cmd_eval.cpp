// csq eval — run models on the security benchmarks under a named protocol (in process or
// through an OpenAI-compatible endpoint), score existing outputs, and compare scored runs in a
// Markdown report.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "eval/benchmarks.h"
#include "eval/protocol.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/scoring.h"
#include "generation_options.h"
#include "tasks/chat_backend.h"

namespace csq::app {
namespace {

std::string data_dir_or_env(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("CSQ_DATA"); env && *env) return env;
  fail_usage("no benchmark data directory: pass --data DIR (or set CSQ_DATA)");
}

struct ScoreOptions {
  std::string benchmark, protocol, data, responses, out, label;
  bool json = false;
};

void run_score(const ScoreOptions& o) {
  const eval::Protocol& protocol = eval::protocol_by_name(o.protocol);
  const eval::Benchmark bench = eval::load_benchmark(o.benchmark, data_dir_or_env(o.data));
  const auto responses = eval::read_responses(o.responses, bench.items.size());
  if (responses.empty()) fail_input(o.responses + ": no responses");
  const eval::ScoreResult result = eval::score_responses(bench, protocol, responses);
  nlohmann::ordered_json summary = eval::summary_json(result);
  summary["label"] = o.label.empty() ? std::filesystem::path(o.responses).stem().string() : o.label;
  summary["responses"] = o.responses;
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    eval::write_items_jsonl(o.out + "/items.jsonl", bench, result);
    std::ofstream(o.out + "/summary.json") << summary.dump(2) << "\n";
    eval::write_report(o.out, {summary}, "csq eval: " + bench.name + " under " + protocol.name);
  }
  if (o.json) {
    std::printf("%s\n", summary.dump(2).c_str());
    return;
  }
  std::printf("benchmark   %s (%zu items)\n", bench.name.c_str(), bench.items.size());
  std::printf("protocol    %s (parser %s, %s accuracy)\n", protocol.name.c_str(), tasks::parser_name(protocol.parser),
              protocol.headline == eval::Headline::Strict ? "strict" : "lenient");
  for (const auto& t : result.trials)
    std::printf("trial %-5d n %zu  parseable %zu  correct %zu\n", t.trial, t.n, t.parseable, t.correct);
  for (const auto& [name, m] : result.summary)
    std::printf("%-20s %.4f ± %.4f%s\n", name.c_str(), m.mean, m.sd, name == result.headline ? "  (headline)" : "");
}

struct RunOptions {
  eval::RunConfig run;
  BackendOptions backend;
  bool json = false;
  bool quiet = false;
};

void run_run(RunOptions o) {
  o.run.data_dir = data_dir_or_env(o.run.data_dir);
  if (o.run.out_dir.empty()) o.run.out_dir = "csq-eval/" + o.run.benchmark + "-" + o.run.protocol;
  o.run.progress = !o.quiet;
  std::unique_ptr<tasks::ChatBackend> backend = make_backend(o.backend);
  const eval::RunOutcome outcome = eval::run_evaluation(o.run, *backend);
  const auto& s = outcome.summary;
  if (o.json) {
    std::printf("%s\n", s.dump(2).c_str());
    return;
  }
  std::printf("benchmark   %s (%zu items)\n", s["benchmark"].get<std::string>().c_str(), s["item_count"].get<size_t>());
  std::printf("protocol    %s\n", s["protocol"]["name"].get<std::string>().c_str());
  for (const auto& t : s["trials"])
    std::printf("trial %-5d n %zu  parseable %zu  correct %zu\n", t["trial"].get<int>(), t["n"].get<size_t>(),
                t["parseable"].get<size_t>(), t["correct"].get<size_t>());
  const std::string headline = s["headline"]["metric"];
  for (const auto& [name, m] : s["metrics"].items())
    std::printf("%-20s %.4f ± %.4f%s\n", name.c_str(), m["mean"].get<double>(), m["sd"].get<double>(),
                name == headline ? "  (headline)" : "");
  const auto& run = s["run"];
  std::printf("generated   %zu (resumed %zu) in %.1f s, %.1f tokens/s\n", outcome.computed, outcome.resumed,
              run["wall_s"].get<double>(), run["tokens_per_s"].get<double>());
  std::printf("report      %s/report.md\n", o.run.out_dir.c_str());
}

struct ReportOptions {
  std::vector<std::string> summaries;
  std::string out, title = "csq evaluation report";
};

void run_report(const ReportOptions& o) {
  std::vector<nlohmann::ordered_json> runs;
  for (const auto& path : o.summaries) {
    std::ifstream in(path);
    if (!in) fail_input(path + ": cannot open summary");
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      fail_input(path + ": not valid JSON (" + e.what() + ")");
    }
    for (const char* key : {"benchmark", "protocol", "headline", "metrics", "trials"})
      if (!j.contains(key)) fail_input(path + ": missing \"" + key + "\" (expected a summary.json of csq eval score)");
    runs.push_back(std::move(j));
  }
  eval::write_report(o.out, runs, o.title);
  std::printf("%s/report.md\n", o.out.c_str());
}

void run_list(bool json) {
  nlohmann::ordered_json j;
  j["benchmarks"] = eval::benchmark_names();
  nlohmann::ordered_json ps = nlohmann::ordered_json::array();
  for (const auto& p : eval::protocols()) ps.push_back(p.to_json());
  j["protocols"] = ps;
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("benchmarks:");
  for (const auto& b : eval::benchmark_names()) std::printf(" %s", b.c_str());
  std::printf("\nprotocols:\n");
  for (const auto& p : eval::protocols())
    std::printf("  %-13s %s\n                temperature %g, top_p %g, max_new_tokens %d, trials %d, parser %s\n",
                p.name.c_str(), p.description.c_str(), p.temperature, p.top_p, p.max_new_tokens, p.trials,
                tasks::parser_name(p.parser));
}

const RegisterCommand reg([](CLI::App& root) {
  CLI::App* eval = root.add_subcommand("eval", "Evaluate models on security benchmarks");
  eval->require_subcommand(1);

  auto so = std::make_shared<ScoreOptions>();
  CLI::App* score = eval->add_subcommand("score", "Score existing model responses under a protocol");
  score->add_option("--benchmark", so->benchmark, "cti-mcq, cti-rcm, cti-rcm-2021, cti-vsp, cti-ate, cti-taa, "
                                                   "cybermetric-80/500/2000")->required();
  score->add_option("--protocol", so->protocol, "cybersecqwen, ctibench or faith")->required();
  score->add_option("--data", so->data, "Benchmark data directory (default: $CSQ_DATA)");
  score->add_option("--responses", so->responses, "JSONL lines {\"index\", \"response\", \"trial\"?}")->required();
  score->add_option("--out", so->out, "Write items.jsonl, summary.json, report.md and charts here");
  score->add_option("--label", so->label, "Name of this run in reports (default: the responses file name)");
  score->add_flag("--json", so->json, "Print the summary as JSON");
  score->callback([so] { run_score(*so); });

  auto rn = std::make_shared<RunOptions>();
  CLI::App* run = eval->add_subcommand("run", "Generate, score and report a benchmark under a protocol (resumable)");
  run->add_option("--benchmark", rn->run.benchmark, "cti-mcq, cti-rcm, cti-rcm-2021, cti-vsp, cti-ate, cti-taa, "
                                                     "cybermetric-80/500/2000")->required();
  run->add_option("--protocol", rn->run.protocol, "cybersecqwen, ctibench or faith")->required();
  add_backend_options(run, rn->backend);
  run->add_option("--data", rn->run.data_dir, "Benchmark data directory (default: $CSQ_DATA)");
  run->add_option("--limit", rn->run.limit, "Only the first N items (0: all)")
      ->check([](const std::string& n) { return n.starts_with('-') ? "must not be negative (0: all items)" : ""; });
  run->add_option("--trials", rn->run.trials, "Only the first K of the protocol's trials (seeds)");
  run->add_option("--max-tokens", rn->run.max_tokens,
                  "Override the protocol's max new tokens (smoke runs; recorded in the report as not published)");
  run->add_option("--out", rn->run.out_dir, "Output directory; an interrupted run resumes here "
                                            "(default: csq-eval/BENCHMARK-PROTOCOL)");
  run->add_option("--label", rn->run.label, "Name of this run in reports (default: the output directory's name)");
  run->add_flag("--json", rn->json, "Print the summary as JSON");
  run->add_flag("--quiet,-q", rn->quiet, "No progress line");
  run->callback([rn] { run_run(*rn); });

  auto ro = std::make_shared<ReportOptions>();
  CLI::App* report = eval->add_subcommand("report", "Compare scored runs in a Markdown report with SVG charts");
  report->add_option("--summary", ro->summaries, "summary.json files written by 'csq eval score --out'")
      ->required()
      ->expected(1, -1);
  report->add_option("--out", ro->out, "Directory for report.md and the charts")->required();
  report->add_option("--title", ro->title, "Report title");
  report->callback([ro] { run_report(*ro); });

  auto list_json = std::make_shared<bool>(false);
  CLI::App* list = eval->add_subcommand("list", "List the benchmarks and the protocols with all their settings");
  list->add_flag("--json", *list_json, "Print JSON");
  list->callback([list_json] { run_list(*list_json); });
});

}  // namespace
}  // namespace csq::app
