// csq triage eval — measure triage on labelled alerts (the ait-aecid set or any labelled JSON
// Lines file) against the rule baseline, rescore another system's answers, and measure prompt
// injection (log-borne payloads under each spotlight mode, CyberSecEval's string-checkable cases).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "eval/injection.h"
#include "eval/triage_runner.h"
#include "generation_options.h"
#include "tasks/chat_backend.h"
#include "tasks/triage.h"

namespace csq::app {
namespace {

using ojson = nlohmann::ordered_json;

struct TriageEvalOptions {
  eval::TriageEvalConfig run;
  BackendOptions backend;
  std::string responses, positive = "suspicious";
  std::string spotlight = "delimiters", context_file;
  bool json = false, quiet = false, dump_payloads = false;
};

void dump_payloads() {
  for (const auto& p : eval::log_injection_payloads())
    std::printf("%s\n", ojson{{"id", p.id}, {"family", p.family}, {"text", p.text}}.dump().c_str());
}

void print_metrics(const ojson& s) {
  std::printf("set          %s (%zu alerts)\n", s["benchmark"].get<std::string>().c_str(), s["item_count"].get<size_t>());
  for (const auto& t : s["trials"])
    std::printf("trial %-6d tp %zu  fn %zu  fp %zu  tn %zu  unparsed %zu\n", t["trial"].get<int>(), t["tp"].get<size_t>(),
                t["fn"].get<size_t>(), t["fp"].get<size_t>(), t["tn"].get<size_t>(), t["unparsed"].get<size_t>());
  for (const auto& [name, m] : s["metrics"].items()) {
    std::printf("%-20s %.4f", name.c_str(), m["mean"].get<double>());
    if (m["sd"].get<double>() > 0) std::printf(" ± %.4f", m["sd"].get<double>());
    if (m["ci95"].is_array()) std::printf("  [%.4f, %.4f]", m["ci95"][0].get<double>(), m["ci95"][1].get<double>());
    std::printf("\n");
  }
  for (const auto& [source, by] : s["by_source"].items())
    std::printf("%-12s precision %.4f  recall %.4f  f1 %.4f  fpr %.4f\n", source.c_str(),
                by["metrics"]["precision"]["mean"].get<double>(), by["metrics"]["recall"]["mean"].get<double>(),
                by["metrics"]["f1"]["mean"].get<double>(), by["metrics"]["fpr"]["mean"].get<double>());
}

void print_injection(const ojson& s) {
  const auto& log = s["log_injection"];
  std::printf("log-borne    %zu carrier alerts x %zu payloads\n", log["carrier_alerts"].get<size_t>(),
              log["payloads"].get<size_t>());
  for (const auto& [family, modes] : log["by_family"].items())
    for (const auto& [mode, r] : modes.items())
      std::printf("  %-12s %-10s attack success %.3f (%zu/%zu)\n", family.c_str(), mode.c_str(), r["asr"].get<double>(),
                  r["successes"].get<size_t>(), r["cases"].get<size_t>());
  const auto& cse = s["cyberseceval"];
  std::printf("cyberseceval %zu of %zu cases scored by string rule: attack success %.3f (%zu/%zu); %zu need a judge\n",
              cse["scored"].get<size_t>(), cse["cases"].get<size_t>(), cse["overall"]["asr"].get<double>(),
              cse["overall"]["successes"].get<size_t>(), cse["overall"]["cases"].get<size_t>(),
              cse["judge_only_not_run"].get<size_t>());
}

void run(TriageEvalOptions o) {
  if (o.dump_payloads) return dump_payloads();
  if (o.positive == "malicious") o.run.positive = eval::PositiveClass::Malicious;
  else if (o.positive != "suspicious") fail_usage("--positive '" + o.positive + "': expected suspicious or malicious");
  if (o.run.data_dir.empty() && (o.run.labelled.empty() || o.run.injection)) {
    const char* env = std::getenv("CSQ_DATA");
    if (!env || !*env) fail_usage("no alert data: pass --data DIR (the ait-aecid alerts), --labelled FILE, or set CSQ_DATA");
    o.run.data_dir = env;
  }
  if (!o.responses.empty()) {
    if (!o.backend.model.empty() || !o.backend.endpoint.empty()) fail_usage("--responses rescores stored answers: no --model or --endpoint");
    if (o.run.injection) fail_usage("--responses and --injection do not go together");
    const ojson s = eval::rescore_triage(o.run, o.responses);
    if (o.json) std::printf("%s\n", s.dump(2).c_str());
    else print_metrics(s);
    return;
  }
  if (o.backend.model.empty() == o.backend.endpoint.empty())
    fail_usage("give exactly one of --model PATH or --endpoint URL (or --responses FILE to rescore answers)");
  const auto spotlight = tasks::spotlight_from_name(o.spotlight);
  if (!spotlight) fail_usage("--spotlight '" + o.spotlight + "': expected none, delimiters or datamark");
  o.run.options.spotlight = *spotlight;
  if (!o.context_file.empty()) o.run.site_context = io::read_text_file(o.context_file);
  if (o.run.out_dir.empty()) o.run.out_dir = o.run.injection ? "csq-triage-eval/injection" : "csq-triage-eval/labelled";
  o.run.progress = !o.quiet;
  const std::unique_ptr<tasks::ChatBackend> backend = make_backend(o.backend);
  const eval::TriageEvalOutcome outcome = eval::run_triage_evaluation(o.run, *backend);
  if (o.json) {
    std::printf("%s\n", outcome.summary.dump(2).c_str());
    return;
  }
  if (o.run.injection) print_injection(outcome.summary);
  else print_metrics(outcome.summary);
  std::printf("answered     %zu (resumed %zu)\nreport       %s/report.md\n", outcome.computed, outcome.resumed,
              o.run.out_dir.c_str());
}

}  // namespace

void add_triage_eval_command(CLI::App& triage) {
  auto o = std::make_shared<TriageEvalOptions>();
  CLI::App* cmd = triage.add_subcommand(
      "eval", "Measure triage on labelled alerts (precision, recall, F1, false-positive rate, techniques; the "
              "severity baseline beside it), rescore stored answers, or measure prompt injection (resumable)");
  add_backend_options(cmd, o->backend);
  cmd->add_option("--data", o->run.data_dir,
                  "The ait-aecid alert folder (../shared/data/alerts) or the data root (default: $CSQ_DATA)");
  cmd->add_option("--labelled", o->run.labelled,
                  "Labelled alerts instead: JSON Lines {\"alert\": {...}, \"label\": \"malicious\"|\"benign\", "
                  "\"techniques\"?: [...], \"source\"?, \"attack_type\"?}");
  cmd->add_option("--limit", o->run.limit, "Only the first N alerts (--injection: N CyberSecEval cases)");
  cmd->add_option("--trials", o->run.trials, "Trials; trial t samples with seed + t (greedy trials repeat)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", o->run.max_tokens, "Most answer tokens (default: the triage default)");
  cmd->add_option("--positive", o->positive,
                  "Which verdicts count as flagged: suspicious (suspicious or malicious) or malicious")
      ->capture_default_str();
  cmd->add_option("--responses", o->responses,
                  "Rescore stored answers instead of running a model: JSON Lines {\"index\", \"response\", "
                  "\"trial\"?}, csq's answer JSON or the ait-aecid format");
  cmd->add_flag("--injection", o->run.injection,
                "Measure prompt injection: log-borne payloads in malicious alerts under each spotlight mode, and "
                "CyberSecEval's string-checkable cases (from injection/ beside the alerts)");
  cmd->add_option("--injection-alerts", o->run.injection_alerts, "--injection: malicious alerts per carrier field")
      ->capture_default_str();
  cmd->add_flag("--dump-payloads", o->dump_payloads,
                "Print the log-borne payload set (JSON Lines {\"id\", \"family\", \"text\"}) and exit");
  cmd->add_option("--spotlight", o->spotlight, "How record text is marked: delimiters, datamark or none")
      ->capture_default_str();
  cmd->add_option("--context", o->context_file, "Site context for the system turn (a text file)");
  cmd->add_option("--temperature", o->run.options.sampling.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--seed", o->run.seed, "Sampling seed of trial 0")->capture_default_str();
  cmd->add_option("--out", o->run.out_dir,
                  "Output directory; an interrupted run resumes here (default: csq-triage-eval/labelled or /injection; "
                  "with --responses: reports only when given)");
  cmd->add_option("--label", o->run.label, "Name of this run in reports (default: the output directory's name)");
  cmd->add_flag("--json", o->json, "Print the summary as JSON");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress line");
  cmd->callback([o] { run(*o); });
}

}  // namespace csq::app
