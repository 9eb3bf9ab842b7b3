#include "rule_options.h"

#include <cstdio>

#include "base/error.h"

namespace csq::app {

using namespace csq::detect;

void add_rule_options(CLI::App* cmd, RuleOptions& o) {
  cmd->add_option("--rules", o.rules, "Sigma rule files or directories (searched for .yml/.yaml)");
  cmd->add_option("--pipeline", o.pipeline, "Log-source pipeline YAML (default: the built-in Windows mapping)");
  cmd->add_option("--placeholders", o.placeholders, "YAML map of placeholder name to values, for |expand");
  cmd->add_flag("--ignore-logsource", o.ignore_logsource, "Apply every rule to every event (fields by name)");
  cmd->add_option("--min-level", o.min_level, "Only rules of this level or above (informational..critical)");
  cmd->add_option("--status", o.statuses, "Only rules of these statuses (repeat or comma-separate)")->delimiter(',');
  cmd->add_option("--package", o.package, "SigmaHQ release package: all, core (test/stable, high+), core+ (medium+)");
}

std::unique_ptr<LoadedRules> load_rules(const RuleOptions& o) {
  if (o.rules.empty()) fail_usage("--rules PATH is required (a rule file or a directory of rules)");
  auto l = std::make_unique<LoadedRules>();
  LoadOptions lo;
  if (!o.placeholders.empty()) {
    l->placeholders = load_placeholders(o.placeholders);
    lo.placeholders = &l->placeholders;
  }
  for (const std::string& path : o.rules) load_rules_path(path, lo, l->set);
  l->pipeline = o.pipeline.empty() ? Pipeline::windows_default() : Pipeline::load(o.pipeline);
  return l;
}

DetectorOptions detector_options(const RuleOptions& o) {
  DetectorOptions d;
  d.ignore_logsource = o.ignore_logsource;
  if (!parse_level(o.min_level, d.min_level))
    fail_usage("--min-level '" + o.min_level + "': expected informational, low, medium, high or critical");
  for (const std::string& s : o.statuses) {
    Status st;
    if (!parse_status(s, st))
      fail_usage("--status '" + s + "': expected stable, test, experimental, deprecated or unsupported");
    d.statuses.push_back(st);
  }
  Package p;
  if (!parse_package(o.package, p)) fail_usage("--package '" + o.package + "': expected all, core or core+");
  apply_package(p, d);
  return d;
}

void print_rule_summary(const LoadedRules& l, const Detector& d) {
  std::fprintf(stderr, "rules: %zu files, %zu rules loaded, %zu skipped, %zu filtered out, %zu active",
               l.set.files, l.set.rules.size(), l.set.problems.size(), d.filtered_rules(), d.active_rules());
  if (!d.correlation_rules().empty()) std::fprintf(stderr, ", %zu correlation", d.correlation_rules().size());
  std::fprintf(stderr, " (pipeline %s)\n", l.pipeline.origin.c_str());
  for (const RuleProblem& p : l.set.problems)
    std::fprintf(stderr, "  skipped %s:%d: %s\n", p.file.c_str(), p.line, p.reason.c_str());
  size_t unmapped = 0;
  for (const auto& [key, n] : d.unmapped_logsources()) unmapped += n;
  if (unmapped) {
    std::fprintf(stderr, "  %zu rules for log sources the pipeline does not map (never applied):", unmapped);
    for (const auto& [key, n] : d.unmapped_logsources()) std::fprintf(stderr, " %s %zu;", key.c_str(), n);
    std::fprintf(stderr, "\n");
  }
}

}  // namespace csq::app
