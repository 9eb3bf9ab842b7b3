// The Sigma rule options shared by the commands that run the detection engine (detect, detect
// rules, triage --rules): which rules, which pipeline, which levels and statuses.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "detect/engine.h"

namespace csq::app {

struct RuleOptions {
  std::vector<std::string> rules, statuses;
  std::string pipeline, placeholders, min_level = "informational", package = "all";
  bool ignore_logsource = false;
};

struct LoadedRules {
  detect::RuleSet set;
  detect::Placeholders placeholders;
  detect::Pipeline pipeline;
};

// --rules, --pipeline, --placeholders, --ignore-logsource, --min-level, --status, --package.
void add_rule_options(CLI::App* cmd, RuleOptions& o);

// Usage errors name the missing --rules or the bad level, status or package.
std::unique_ptr<LoadedRules> load_rules(const RuleOptions& o);
detect::DetectorOptions detector_options(const RuleOptions& o);

// "rules: N files, ... active" and every skipped rule, on stderr.
void print_rule_summary(const LoadedRules& l, const detect::Detector& d);

}  // namespace csq::app
