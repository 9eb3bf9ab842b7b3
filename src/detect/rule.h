// Sigma rules (specification v2.x) read from YAML: metadata, log source, detection (search
// identifiers with their field tests, still naming fields as the rule writes them), the
// parsed condition, and correlation rules. A rule that cannot load becomes a RuleProblem
// with file, line and reason; the other rules of the same run still load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "detect/value.h"

namespace csq::detect {

// One `Field|modifiers: values` entry, or a keyword list (field empty).
struct FieldTestSpec {
  std::string field;  // empty: keyword search over every field of the event
  bool all = false;   // `all`: every value must match (AND), else any (OR)
  bool negate = false;  // `neq`: the field must match none of the values
  std::vector<ValueTest> tests;
  std::vector<std::string> ref_fields;  // FieldRef: the other field's name, per test
};

// A search identifier: OR over alternatives, each an AND of field tests.
struct Selection {
  std::string name;
  std::vector<std::vector<FieldTestSpec>> alternatives;
};

// The condition as a tree over selection indices.
struct CondNode {
  enum class Op : uint8_t { And, Or, Not, Ref, OneOf, AllOf, AtLeast };
  Op op = Op::Ref;
  int selection = -1;              // Ref
  int count = 1;                   // AtLeast
  std::vector<CondNode> children;  // And/Or/Not; OneOf/AllOf/AtLeast list Refs
};

// Parses a condition; throws csq::Error (BadInput) naming the position and the problem.
// `names` are the rule's search identifiers; patterns and `them` resolve against them.
CondNode parse_condition(const std::string& text, const std::vector<std::string>& names);

struct LogSource {
  std::string product, category, service;
  std::string key() const;  // "product/category/service" with '-' for an absent part
};

enum class Level : uint8_t { Informational, Low, Medium, High, Critical };
enum class Status : uint8_t { Unsupported, Deprecated, Experimental, Test, Stable, Unknown };
const char* level_name(Level l);
const char* status_name(Status s);
bool parse_level(const std::string& text, Level& out);
bool parse_status(const std::string& text, Status& out);

enum class CorrelationType : uint8_t { EventCount, ValueCount, Temporal, TemporalOrdered };

struct Correlation {
  CorrelationType type = CorrelationType::EventCount;
  std::vector<std::string> rules;  // referenced rules (id or name), in order for temporal_ordered
  std::vector<std::string> group_by;
  int64_t timespan_ms = 0;
  // condition: count compared with each bound given (gt/gte/lt/lte/eq/neq); value_count's field.
  std::string field;
  bool has_gt = false, has_gte = false, has_lt = false, has_lte = false, has_eq = false, has_neq = false;
  int64_t gt = 0, gte = 0, lt = 0, lte = 0, eq = 0, neq = 0;
  bool generate = false;  // also emit the referenced rules' own alerts (`generate: true`)
  bool count_matches(int64_t n) const;
};

struct Rule {
  // metadata
  std::string id, name, title, author, description, date, modified, file;
  int line = 1;
  Status status = Status::Unknown;
  Level level = Level::Medium;
  std::vector<std::string> tags, references, falsepositives;
  LogSource logsource;
  // detection
  std::vector<Selection> selections;
  CondNode condition;
  // correlation rules only
  std::unique_ptr<Correlation> correlation;
};

struct RuleProblem {
  std::string file;
  int line = 0;
  std::string title;  // when it could be read
  std::string reason;
};

// Bounds on the work one rule file can cause (docs/detection.md, "Limits"): a hostile or broken
// rule is skipped with the bound it exceeded, it never stalls or exhausts `csq detect`.
struct RuleLimits {
  static constexpr size_t kFileBytes = 1u << 20;         // one rule file (SigmaHQ's largest: 295 KB)
  static constexpr int kYamlDepth = 64;                  // YAML collections nested in one another
  static constexpr size_t kValueBytes = 64u << 10;       // one value after its modifiers
  static constexpr size_t kModifierValues = 4096;        // values one value becomes (expand, windash…)
  static constexpr size_t kRuleValues = 100'000;         // value tests of one rule
  static constexpr size_t kRuleValueBytes = 8u << 20;    // bytes of those values
  static constexpr size_t kRuleRegexes = 64;             // `re` values of one rule (RE2, 8 MiB each at most)
  static constexpr size_t kConditionNodes = 100'000;     // nodes of the parsed condition
  static constexpr size_t kConditionTests = 1'000'000;   // value tests the condition may evaluate per event
};

struct LoadOptions {
  const Placeholders* placeholders = nullptr;  // for `expand`
};

struct RuleSet {
  std::vector<std::shared_ptr<const Rule>> rules;
  std::vector<RuleProblem> problems;
  size_t files = 0;
};

// Reads every rule document of the YAML text (multi-document files allowed).
void load_rules_text(const std::string& text, const std::string& file, const LoadOptions& options, RuleSet& out);
// Reads a rule file, or every .yml/.yaml file under a directory (sorted by path).
void load_rules_path(const std::string& path, const LoadOptions& options, RuleSet& out);

}  // namespace csq::detect
