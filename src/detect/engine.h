// The detector: every loaded rule compiled against a pipeline into one matcher. Rules are
// indexed by the event channel and EventID their log source stands for, so an event is only
// tested against the rules written for it; each event field a rule names is looked up once
// and folded to lower case once per event, however many rules test it. A literal prefilter
// skips most rules without evaluating them: for each rule, a set of (field, literal) pairs of
// which one must occur for the rule to match is derived from its condition; all literals of a
// field sit in one Aho–Corasick automaton, run at most once per event and field.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "detect/event.h"
#include "detect/literal_set.h"
#include "detect/pipeline.h"
#include "detect/rule.h"

namespace csq::detect {

struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct DetectorOptions {
  bool ignore_logsource = false;  // every rule sees every event, fields matched by name
  Level min_level = Level::Informational;
  std::vector<Status> statuses;  // empty: any status
};

// Which rules a release package of SigmaHQ holds: Core = status test or stable and level high
// or critical; Core+ = level medium or above (same statuses).
enum class Package { All, Core, CorePlus };
bool parse_package(const std::string& text, Package& out);
void apply_package(Package p, DetectorOptions& options);

struct Match {
  const Rule* rule = nullptr;
  std::vector<std::pair<std::string, std::string>> fields;  // the fields the rule tests, as in the event
};

class Detector {
 public:
  // Keeps the rules alive (shared ownership) and copies what it needs of the pipeline.
  Detector(const RuleSet& rules, const Pipeline& pipeline, const DetectorOptions& options);
  ~Detector();

  // Per-thread working memory (parser, field views, folded values).
  class Scratch;
  struct ScratchDeleter {
    void operator()(Scratch* s) const;
  };
  using ScratchPtr = std::unique_ptr<Scratch, ScratchDeleter>;
  ScratchPtr make_scratch() const;

  // Matches one record. Returns why the record is not an event (nothing matched then).
  std::optional<std::string> match(const std::string& record, Scratch& scratch, std::vector<Match>& out,
                                   std::string* time = nullptr) const;

  // What the compilation did with the rules.
  size_t active_rules() const { return active_rules_; }
  size_t filtered_rules() const { return filtered_; }
  const std::map<std::string, size_t>& unmapped_logsources() const { return unmapped_; }  // key → rules
  const std::vector<std::shared_ptr<const Rule>>& correlation_rules() const { return correlations_; }

  struct Instance;

 private:
  int field_id(const std::string& name);
  void add_instance(const std::shared_ptr<const Rule>& rule, const PipelineEntry* entry,
                    const std::map<std::string, std::string>& global_map);
  bool eval_instance(const Instance& inst, Scratch& s) const;
  bool any_atom(const Instance& inst, Scratch& s) const;
  int atom_id(int field, const std::string& literal);
  std::optional<std::vector<int>> test_atoms(int field, const FieldTestSpec& spec);
  std::optional<std::vector<int>> node_atoms(const Instance& inst, const CondNode& n);
  void build_prefilter();

  std::vector<std::shared_ptr<const Rule>> keep_;
  std::vector<std::shared_ptr<const Rule>> correlations_;
  std::vector<Instance> instances_;
  std::unordered_map<std::string, int, NameHash, std::equal_to<>> field_ids_;
  std::vector<std::string> field_names_;
  int channel_field_ = -1, event_id_field_ = -1;
  // channel (folded) → EventID → instances; "" EventID key: instances for any EventID.
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<int>, NameHash, std::equal_to<>>, NameHash,
                     std::equal_to<>>
      by_channel_;
  std::vector<int> everywhere_;  // instances without a channel condition
  // Literal prefilter: (field, folded literal) atoms and one automaton per field.
  std::vector<std::pair<int, std::string>> atoms_;
  std::map<std::pair<int, std::string>, int> atom_ids_;
  std::vector<LiteralSet> literal_sets_;
  std::vector<std::vector<int>> atom_instances_;  // atom → instances it lets through
  size_t active_rules_ = 0, filtered_ = 0;
  std::map<std::string, size_t> unmapped_;
};

}  // namespace csq::detect
