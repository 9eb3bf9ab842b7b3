// csq detect — Sigma rules over Windows event logs (docs/detection.md); `csq detect rules`
// lists every rule file as loaded or skipped with the reason.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/printable.h"
#include "command.h"
#include "detect/correlation.h"
#include "detect/engine.h"
#include "detect/runner.h"
#include "rule_options.h"
#include "whole_lines.h"
#include "workers/stream_worker.h"

namespace csq::app {
namespace {

using namespace csq::detect;

struct DetectOptions {
  RuleOptions rule;
  std::vector<std::string> events;
  bool json = false;
  int threads = 1;
  double max_record_mb = 16;
  std::string redis_url, out_stream;  // alerts to a Redis stream instead of stdout
};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

void run_detect(const DetectOptions& o) {
  if (o.events.empty()) fail_usage("--events PATH is required (JSON, JSON Lines, .gz, or - for standard input)");
  if (o.threads < 1 || o.threads > 256) fail_usage("--threads must be between 1 and 256");
  if (o.max_record_mb <= 0 || o.max_record_mb > 4096) fail_usage("--max-record-mb must be within (0, 4096]");
  if (o.redis_url.empty() != o.out_stream.empty()) fail_usage("--redis and --out-stream go together");
  std::unique_ptr<workers::RedisClient> redis;
  std::unique_ptr<workers::StreamPublisher> publisher;
  if (!o.redis_url.empty()) {
    redis = std::make_unique<workers::RedisClient>(workers::parse_redis_url(o.redis_url));
    publisher = std::make_unique<workers::StreamPublisher>(*redis, o.out_stream);
  }
  const auto l = load_rules(o.rule);
  const Detector detector(l->set, l->pipeline, detector_options(o.rule));
  print_rule_summary(*l, detector);

  RunOptions ro;
  ro.threads = o.threads;
  ro.max_record_bytes = size_t(o.max_record_mb * 1024 * 1024);
  const bool tty = isatty(2);
  auto last = std::chrono::steady_clock::now();
  if (tty)
    ro.progress = [&](const RunStats& s) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(500)) return;
      last = now;
      std::fprintf(stderr, "\r%llu events, %llu alerts", (unsigned long long)s.events, (unsigned long long)s.alerts);
    };
  if (!o.json && !publisher)
    std::printf("%-24s %-13s %-60s %-30s %s\n", "time", "level", "title", "author", "source:record  tags  matched");
  CorrelationEngine correlations(detector.correlation_rules(), l->set);
  for (const RuleProblem& p : correlations.problems())
    std::fprintf(stderr, "  skipped %s:%d: %s\n", p.file.c_str(), p.line, p.reason.c_str());
  RunStats stats;
  size_t problems_shown = 0, correlation_alerts = 0;
  std::function<void(Alert&&)> print = [&](Alert&& a) {
        const WholeLineGuard whole_line;
        if (a.rule->correlation) ++correlation_alerts;
        if (publisher) {
          // One alert per rule and event: a resent XADD carries the same key.
          publisher->publish(alert_json(a), (a.rule->id.empty() ? a.rule->title : a.rule->id) + "@" + a.source + ":" +
                                                std::to_string(a.record));
        } else if (o.json) {
          std::printf("%s\n", alert_json(a).c_str());
        } else {
          std::string matched;
          for (const auto& [k, v] : a.fields) matched += (matched.empty() ? "" : " ") + k + "=" + v;
          std::printf("%-24s %-13s %-60s %-30s %s:%llu  %s  %s\n", printable(a.time).c_str(), level_name(a.rule->level),
                      a.rule->title.c_str(), a.rule->author.c_str(), a.source.c_str(), (unsigned long long)a.record,
                      join(a.rule->tags, ",").c_str(), printable(matched).c_str());
        }
        std::fflush(stdout);
  };
  run_detection(
      detector, o.events, ro,
      [&](Alert&& a) {
        // Correlations see every alert; a rule's own alerts are hidden when the correlations
        // that use it say so (generate: false, the default).
        if (correlations.empty()) return print(std::move(a));
        if (correlations.shows(a.rule)) print(Alert(a));
        correlations.feed(a, print);
      },
      [&](const InputProblem& p) {
        if (problems_shown++ < 20)
          std::fprintf(stderr, "%s%s: record %llu: %s\n", tty ? "\r" : "", p.source.c_str(),
                       (unsigned long long)p.record, printable(p.reason).c_str());
      },
      stats);
  if (tty) std::fprintf(stderr, "\r");
  std::fprintf(stderr, "events: %llu read, %llu unparseable\n", (unsigned long long)stats.events,
               (unsigned long long)stats.unparseable);
  for (const auto& [reason, n] : stats.problems_by_reason)
    std::fprintf(stderr, "  %llu x %s\n", (unsigned long long)n, printable(reason).c_str());
  std::fprintf(stderr, "alerts: %llu (critical %llu, high %llu, medium %llu, low %llu, informational %llu)\n",
               (unsigned long long)stats.alerts, (unsigned long long)stats.alerts_by_level[4],
               (unsigned long long)stats.alerts_by_level[3], (unsigned long long)stats.alerts_by_level[2],
               (unsigned long long)stats.alerts_by_level[1], (unsigned long long)stats.alerts_by_level[0]);
  if (!correlations.empty())
    std::fprintf(stderr, "correlations: %llu alerts\n", (unsigned long long)correlation_alerts);
  if (publisher)
    std::fprintf(stderr, "written: %llu alerts to stream '%s' at %s\n", (unsigned long long)publisher->published(),
                 o.out_stream.c_str(), redis->url().redacted().c_str());
  std::fprintf(stderr, "speed: %.0f events/s (%.2f s, %d thread%s)\n",
               stats.seconds > 0 ? double(stats.events + stats.unparseable) / stats.seconds : 0.0, stats.seconds,
               o.threads, o.threads == 1 ? "" : "s");
  if (stats.failed_inputs)
    fail_input(std::to_string(stats.failed_inputs) + " of " + std::to_string(o.events.size()) +
               " inputs could not be read to the end (named above); their records before the failure were matched");
}

void run_rules(const DetectOptions& o) {
  const auto l = load_rules(o.rule);
  const Detector detector(l->set, l->pipeline, detector_options(o.rule));
  // One line per rule document: loaded (with its log source and whether the pipeline maps it)
  // or skipped (line and reason).
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : l->set.rules) {
    nlohmann::ordered_json j;
    j["file"] = r->file;
    j["line"] = r->line;
    j["state"] = "loaded";
    j["id"] = r->id;
    j["title"] = r->title;
    j["level"] = level_name(r->level);
    j["status"] = status_name(r->status);
    if (r->correlation) {
      j["kind"] = "correlation";
    } else {
      j["logsource"] = r->logsource.key();
      j["mapped"] = o.rule.ignore_logsource || !l->pipeline.entries_for(r->logsource).empty();
    }
    out.push_back(std::move(j));
  }
  for (const RuleProblem& p : l->set.problems) {
    nlohmann::ordered_json j;
    j["file"] = p.file;
    j["line"] = p.line;
    j["state"] = "skipped";
    j["title"] = p.title;
    j["reason"] = p.reason;
    out.push_back(std::move(j));
  }
  if (o.json) {
    for (const auto& j : out) std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (const auto& j : out) {
      if (j["state"] == "skipped") {
        std::printf("skipped  %s:%d  %s\n", j["file"].get<std::string>().c_str(), j["line"].get<int>(),
                    j["reason"].get<std::string>().c_str());
      } else {
        const bool mapped = !j.contains("mapped") || j["mapped"].get<bool>();
        std::printf("loaded   %s  %s%s\n", j["file"].get<std::string>().c_str(), j["title"].get<std::string>().c_str(),
                    mapped ? "" : ("  (log source " + j["logsource"].get<std::string>() + " not mapped)").c_str());
      }
    }
  }
  print_rule_summary(*l, detector);
}

void add_detect_options(CLI::App* cmd, DetectOptions& o) {
  add_rule_options(cmd, o.rule);
  cmd->add_flag("--json", o.json, "JSON Lines output");
}

const RegisterCommand reg([](CLI::App& root) {
  auto o = std::make_shared<DetectOptions>();
  auto ro = std::make_shared<DetectOptions>();
  CLI::App* detect = root.add_subcommand("detect", "Run Sigma rules over event logs (JSON, JSON Lines, .gz, stdin)");
  add_detect_options(detect, *o);
  detect->add_option("--events", o->events, "Event files (JSON Lines, evtx_dump JSON, ECS; .gz; - for stdin)");
  detect->add_option("--threads", o->threads, "Matching threads (default 1)");
  detect->add_option("--max-record-mb", o->max_record_mb, "Largest event record accepted, in MiB (default 16)");
  detect->add_option("--redis", o->redis_url, "Add the alerts to a Redis stream instead of printing them: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
  detect->add_option("--out-stream", o->out_stream, "The stream for --redis (field 'alert': the --json record; field 'idempotency_key')");
  CLI::App* rules = detect->add_subcommand("rules", "List every rule as loaded or skipped (with line and reason)");
  add_detect_options(rules, *ro);
  detect->require_subcommand(0, 1);
  rules->callback([ro] { run_rules(*ro); });
  detect->callback([o, rules] {
    if (rules->parsed()) return;
    run_detect(*o);
  });
});

}  // namespace
}  // namespace csq::app
