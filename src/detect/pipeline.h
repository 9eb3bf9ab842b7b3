// Processing pipelines: which events a rule's `logsource` stands for, and how its field names
// read in those events. The YAML format (docs/detection.md):
//
//   name: my-pipeline
//   fieldmappings: {RuleField: EventField}        # optional, for every rule
//   logsources:
//     process_creation_sysmon:                    # entry name (for reports)
//       logsource: {product: windows, category: process_creation}
//       conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 1}
//       fieldmappings: {Image: NewProcessName}   # optional, for rules mapped by this entry
//
// A rule maps to every entry whose `logsource` has exactly the rule's product, category and
// service (absent keys must be absent in both); each such entry is one way the rule applies
// (OR). Condition values compare case-insensitively; a list means any of them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "detect/rule.h"

namespace csq::detect {

struct PipelineCondition {
  std::string field;
  std::vector<std::string> values;  // folded
};

struct PipelineEntry {
  std::string name;
  LogSource logsource;  // folded
  std::vector<PipelineCondition> conditions;
  std::map<std::string, std::string> fieldmappings;
};

struct Pipeline {
  std::string name;
  std::string origin;  // file path, or "built-in"
  std::map<std::string, std::string> fieldmappings;
  std::vector<PipelineEntry> entries;

  static Pipeline parse(const std::string& yaml_text, const std::string& origin);
  static Pipeline load(const std::string& path);
  static const std::string& windows_default_yaml();
  static Pipeline windows_default();

  std::vector<const PipelineEntry*> entries_for(const LogSource& ls) const;
};

}  // namespace csq::detect
