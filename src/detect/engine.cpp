#include "detect/engine.h"

#include <algorithm>
#include <unordered_set>

namespace csq::detect {

bool parse_package(const std::string& text, Package& out) {
  const std::string f = fold(text);
  if (f == "all") out = Package::All;
  else if (f == "core") out = Package::Core;
  else if (f == "core+" || f == "coreplus" || f == "core-plus") out = Package::CorePlus;
  else return false;
  return true;
}

void apply_package(Package p, DetectorOptions& o) {
  if (p == Package::All) return;
  o.statuses = {Status::Test, Status::Stable};
  o.min_level = std::max(o.min_level, p == Package::Core ? Level::High : Level::Medium);
}

namespace {

struct BoundTest {
  int field = -1;  // -1: keyword search over every field
  const FieldTestSpec* spec = nullptr;
  std::vector<int> refs;  // FieldRef: the other field per test (-1 elsewhere)
};

}  // namespace

struct Detector::Instance {
  const Rule* rule = nullptr;
  std::vector<std::vector<std::vector<BoundTest>>> selections;  // [selection][alternative][test]
  std::vector<std::pair<int, std::vector<std::string>>> conditions;  // field id, folded values (any)
  std::vector<int> shown_fields;
  // Prefilter: the rule can only match when one of these literals occurs in its field
  // (empty with `prefiltered` false: no such necessary condition, always evaluated).
  bool prefiltered = false;
  std::vector<int> atom_fields;  // the fields those literals are looked for in
};

class Detector::Scratch {
 public:
  explicit Scratch(size_t fields) : first(fields, -1) {}

  Normalizer normalizer;
  NormalizedEvent event;
  std::vector<int32_t> first;  // field id → index of its first value in event.fields, or -1
  std::vector<int32_t> next;   // field index → next value of the same name, or -1
  std::vector<int> touched;    // field ids set for this event
  std::vector<std::string> folded;
  std::vector<uint32_t> folded_stamp;
  uint32_t stamp = 0;
  std::vector<int> candidates;
  std::vector<uint32_t> atom_stamp;      // atom → stamp of the event in which it occurred
  std::vector<uint32_t> instance_stamp;  // instance → stamp of the event in which one of its literals occurred
  std::vector<uint32_t> field_stamp;  // field id → stamp of the event its literals were scanned in

  std::string_view fold_at(size_t index) {
    if (folded_stamp[index] != stamp) {
      folded_stamp[index] = stamp;
      const std::string_view v = event.fields[index].value;
      std::string& f = folded[index];
      f.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) f[i] = fold(v[i]);
    }
    return folded[index];
  }
};

Detector::~Detector() = default;

int Detector::field_id(const std::string& name) {
  const auto it = field_ids_.find(name);
  if (it != field_ids_.end()) return it->second;
  const int id = int(field_names_.size());
  field_ids_.emplace(name, id);
  field_names_.push_back(name);
  return id;
}

Detector::Detector(const RuleSet& rules, const Pipeline& pipeline, const DetectorOptions& options) {
  channel_field_ = field_id("Channel");
  event_id_field_ = field_id("EventID");
  for (const auto& rule : rules.rules) {
    const bool status_ok = options.statuses.empty() ||
                           std::find(options.statuses.begin(), options.statuses.end(), rule->status) !=
                               options.statuses.end();
    if (rule->level < options.min_level || !status_ok) {
      ++filtered_;
      continue;
    }
    if (rule->correlation) {
      correlations_.push_back(rule);
      continue;
    }
    if (options.ignore_logsource) {
      add_instance(rule, nullptr, pipeline.fieldmappings);
    } else {
      const auto entries = pipeline.entries_for(rule->logsource);
      if (entries.empty()) {
        ++unmapped_[rule->logsource.key()];
        continue;
      }
      for (const PipelineEntry* e : entries) add_instance(rule, e, pipeline.fieldmappings);
    }
    keep_.push_back(rule);
    ++active_rules_;
  }
  build_prefilter();
}

void Detector::add_instance(const std::shared_ptr<const Rule>& rule, const PipelineEntry* entry,
                            const std::map<std::string, std::string>& global_map) {
  auto event_field = [&](const std::string& name) {
    if (entry) {
      const auto it = entry->fieldmappings.find(name);
      if (it != entry->fieldmappings.end()) return field_id(it->second);
    }
    const auto it = global_map.find(name);
    return field_id(it != global_map.end() ? it->second : name);
  };
  Instance inst;
  inst.rule = rule.get();
  std::unordered_set<int> shown;
  for (const Selection& sel : rule->selections) {
    auto& alternatives = inst.selections.emplace_back();
    for (const auto& alt : sel.alternatives) {
      auto& tests = alternatives.emplace_back();
      for (const FieldTestSpec& spec : alt) {
        BoundTest t;
        t.spec = &spec;
        t.field = spec.field.empty() ? -1 : event_field(spec.field);
        for (const std::string& ref : spec.ref_fields) t.refs.push_back(ref.empty() ? -1 : event_field(ref));
        if (t.field >= 0 && shown.insert(t.field).second) inst.shown_fields.push_back(t.field);
        tests.push_back(std::move(t));
      }
    }
  }
  std::vector<std::string> channels, event_ids;
  if (entry) {
    for (const PipelineCondition& c : entry->conditions) {
      const int id = field_id(c.field);
      inst.conditions.push_back({id, c.values});
      if (id == channel_field_) channels = c.values;
      if (id == event_id_field_) event_ids = c.values;
    }
  }
  const int index = int(instances_.size());
  instances_.push_back(std::move(inst));
  if (channels.empty()) {
    everywhere_.push_back(index);
    return;
  }
  if (event_ids.empty()) event_ids.push_back("");
  for (const auto& ch : channels)
    for (const auto& id : event_ids) by_channel_[ch][id].push_back(index);
}

Detector::ScratchPtr Detector::make_scratch() const {
  ScratchPtr s(new Scratch(field_names_.size()));
  s->instance_stamp.assign(instances_.size(), 0);
  s->atom_stamp.assign(atoms_.size(), 0);
  s->field_stamp.assign(field_names_.size(), 0);
  return s;
}

namespace {

// The literal a value test needs in the folded field text, if any: the whole literal of
// exact/contains/startswith/endswith, the longest literal run of a wildcard pattern.
std::string needed_literal(const ValueTest& t) {
  switch (t.kind) {
    case TestKind::Exact:
    case TestKind::Contains:
    case TestKind::StartsWith:
    case TestKind::EndsWith:
      return fold(t.literal);
    case TestKind::Wildcard: {
      std::string best;
      for (const auto& part : t.pattern.parts)
        if (part.kind == Pattern::Piece::Literal && part.text.size() > best.size()) best = part.text;
      return fold(best);
    }
    default:
      return {};
  }
}

}  // namespace

std::optional<std::vector<int>> Detector::test_atoms(int field, const FieldTestSpec& spec) {
  // Literals of which one must occur for the test to hold; nullopt when there is no such set.
  if (field < 0 || spec.negate || spec.tests.empty()) return std::nullopt;
  std::vector<int> atoms;
  if (spec.all) {
    // Every value must match: the longest literal alone is necessary.
    std::string best;
    for (const ValueTest& t : spec.tests) {
      const std::string lit = needed_literal(t);
      if (lit.size() > best.size()) best = lit;
    }
    if (best.empty()) return std::nullopt;
    atoms.push_back(atom_id(field, best));
    return atoms;
  }
  for (const ValueTest& t : spec.tests) {
    const std::string lit = needed_literal(t);
    if (lit.empty()) return std::nullopt;
    atoms.push_back(atom_id(field, lit));
  }
  return atoms;
}

int Detector::atom_id(int field, const std::string& literal) {
  const auto key = std::make_pair(field, literal);
  const auto it = atom_ids_.find(key);
  if (it != atom_ids_.end()) return it->second;
  const int id = int(atoms_.size());
  atoms_.push_back({field, literal});
  atom_ids_.emplace(key, id);
  return id;
}

std::optional<std::vector<int>> Detector::node_atoms(const Instance& inst, const CondNode& n) {
  switch (n.op) {
    case CondNode::Op::Ref: {
      // A selection holds when one alternative does; an alternative needs all its tests, so
      // the test with the fewest literals stands for it.
      std::vector<int> out;
      for (const auto& alt : inst.selections[size_t(n.selection)]) {
        std::optional<std::vector<int>> best;
        for (const auto& bt : alt) {
          auto a = test_atoms(bt.field, *bt.spec);
          if (a && (!best || a->size() < best->size())) best = std::move(a);
        }
        if (!best) return std::nullopt;
        out.insert(out.end(), best->begin(), best->end());
      }
      return out;
    }
    case CondNode::Op::And:
    case CondNode::Op::AllOf: {
      std::optional<std::vector<int>> best;
      for (const auto& c : n.children) {
        auto a = node_atoms(inst, c);
        if (a && (!best || a->size() < best->size())) best = std::move(a);
      }
      return best;
    }
    case CondNode::Op::Or:
    case CondNode::Op::OneOf:
    case CondNode::Op::AtLeast: {
      std::vector<int> out;
      for (const auto& c : n.children) {
        auto a = node_atoms(inst, c);
        if (!a) return std::nullopt;
        out.insert(out.end(), a->begin(), a->end());
      }
      return out;
    }
    case CondNode::Op::Not:
      return std::nullopt;
  }
  return std::nullopt;
}

void Detector::build_prefilter() {
  for (Instance& inst : instances_) {
    auto atoms = node_atoms(inst, inst.rule->condition);
    if (!atoms || atoms->empty()) continue;
    std::sort(atoms->begin(), atoms->end());
    atoms->erase(std::unique(atoms->begin(), atoms->end()), atoms->end());
    inst.prefiltered = true;
    for (int atom : *atoms) {
      const int field = atoms_[size_t(atom)].first;
      if (std::find(inst.atom_fields.begin(), inst.atom_fields.end(), field) == inst.atom_fields.end())
        inst.atom_fields.push_back(field);
      if (atom_instances_.size() <= size_t(atom)) atom_instances_.resize(size_t(atom) + 1);
      atom_instances_[size_t(atom)].push_back(int(&inst - instances_.data()));
    }
  }
  atom_instances_.resize(atoms_.size());
  literal_sets_.assign(field_names_.size(), LiteralSet());
  // Only the last kAtomWindow bytes of a literal go into the automaton: still a necessary
  // condition, and long literals (hashes, paths) no longer multiply the automaton's states.
  constexpr size_t kAtomWindow = 12;
  for (size_t id = 0; id < atoms_.size(); ++id) {
    const std::string& lit = atoms_[id].second;
    const std::string_view window = std::string_view(lit).substr(lit.size() > kAtomWindow ? lit.size() - kAtomWindow : 0);
    literal_sets_[size_t(atoms_[id].first)].add(window, int(id));
  }
  for (LiteralSet& set : literal_sets_) set.build();
}

void Detector::ScratchDeleter::operator()(Scratch* s) const { delete s; }

bool Detector::any_atom(const Instance& inst, Scratch& s) const {
  for (int field : inst.atom_fields) {
    if (s.field_stamp[size_t(field)] == s.stamp) continue;
    // First need of this field in this event: one pass finds all of its literals and marks the
    // rules that need one of them.
    s.field_stamp[size_t(field)] = s.stamp;
    for (int32_t f = s.first[size_t(field)]; f >= 0; f = s.next[size_t(f)])
      literal_sets_[size_t(field)].scan(s.fold_at(size_t(f)), [&](int atom) {
        if (s.atom_stamp[size_t(atom)] == s.stamp) return;  // short literals recur in one value
        s.atom_stamp[size_t(atom)] = s.stamp;
        for (int i : atom_instances_[size_t(atom)]) s.instance_stamp[size_t(i)] = s.stamp;
      });
  }
  return s.instance_stamp[size_t(&inst - instances_.data())] == s.stamp;
}

bool Detector::eval_instance(const Instance& inst, Scratch& s) const {
  // Every value of a field counts (multi-valued fields match when any value does).
  auto eval_test = [&](const BoundTest& bt) -> bool {
    const FieldTestSpec& spec = *bt.spec;
    auto one = [&](size_t i) -> bool {
      const ValueTest& t = spec.tests[i];
      if (bt.field < 0) {
        for (size_t f = 0; f < s.event.fields.size(); ++f) {
          const Field& field = s.event.fields[f];
          if (field.is_null) continue;
          if (t.matches(field.value, t.cased ? field.value : s.fold_at(f))) return true;
        }
        return false;
      }
      const int32_t first = s.first[size_t(bt.field)];
      switch (t.kind) {
        case TestKind::Exists:
          return (first >= 0) == t.expect_present;
        case TestKind::Null:
          return first < 0 || s.event.fields[size_t(first)].is_null || s.event.fields[size_t(first)].value.empty();
        case TestKind::FieldRef: {
          const int32_t other = bt.refs[i] >= 0 ? s.first[size_t(bt.refs[i])] : -1;
          if (first < 0 || other < 0) return false;
          const std::string_view a = t.cased ? s.event.fields[size_t(first)].value : s.fold_at(size_t(first));
          const std::string_view b = t.cased ? s.event.fields[size_t(other)].value : s.fold_at(size_t(other));
          return literal_test(t.ref_kind, b, a);
        }
        default:
          for (int32_t f = first; f >= 0; f = s.next[size_t(f)]) {
            const Field& field = s.event.fields[size_t(f)];
            if (field.is_null) continue;
            if (t.matches(field.value, t.cased ? field.value : s.fold_at(size_t(f)))) return true;
          }
          return false;
      }
    };
    bool result;
    if (spec.all) {
      result = true;
      for (size_t i = 0; i < spec.tests.size() && result; ++i) result = one(i);
    } else {
      result = false;
      for (size_t i = 0; i < spec.tests.size() && !result; ++i) result = one(i);
    }
    return spec.negate ? !result : result;
  };
  auto eval_selection = [&](int index) -> bool {
    for (const auto& alt : inst.selections[size_t(index)]) {
      bool ok = true;
      for (const BoundTest& bt : alt)
        if (!eval_test(bt)) {
          ok = false;
          break;
        }
      if (ok) return true;
    }
    return false;
  };
  auto eval_node = [&](auto&& self, const CondNode& n) -> bool {
    switch (n.op) {
      case CondNode::Op::Ref:
        return eval_selection(n.selection);
      case CondNode::Op::Not:
        return !self(self, n.children[0]);
      case CondNode::Op::And:
      case CondNode::Op::AllOf:
        for (const auto& c : n.children)
          if (!self(self, c)) return false;
        return true;
      case CondNode::Op::Or:
      case CondNode::Op::OneOf:
        for (const auto& c : n.children)
          if (self(self, c)) return true;
        return false;
      case CondNode::Op::AtLeast: {
        int hits = 0;
        for (const auto& c : n.children)
          if (self(self, c) && ++hits >= n.count) return true;
        return false;
      }
    }
    return false;
  };
  return eval_node(eval_node, inst.rule->condition);
}

std::optional<std::string> Detector::match(const std::string& record, Scratch& s, std::vector<Match>& out,
                                           std::string* time) const {
  out.clear();
  if (auto problem = s.normalizer.parse(record, s.event)) return problem;
  if (time) time->assign(s.event.time);
  // Bind this event's fields to the rules' field ids.
  for (int id : s.touched) s.first[size_t(id)] = -1;
  s.touched.clear();
  const size_t n = s.event.fields.size();
  if (s.next.size() < n) {
    s.next.resize(n);
    s.folded.resize(n);
    s.folded_stamp.resize(n, 0);
  }
  if (++s.stamp == 0) {
    std::fill(s.folded_stamp.begin(), s.folded_stamp.end(), 0);
    std::fill(s.instance_stamp.begin(), s.instance_stamp.end(), 0);
    std::fill(s.atom_stamp.begin(), s.atom_stamp.end(), 0);
    std::fill(s.field_stamp.begin(), s.field_stamp.end(), 0);
    s.stamp = 1;
  }
  for (size_t i = n; i-- > 0;) {
    s.next[i] = -1;
    const auto it = field_ids_.find(s.event.fields[i].name);
    if (it == field_ids_.end()) continue;
    const int id = it->second;
    // Walking backwards, the current first value becomes this one's successor.
    if (s.first[size_t(id)] < 0) s.touched.push_back(id);
    s.next[i] = s.first[size_t(id)];
    s.first[size_t(id)] = int32_t(i);
  }

  // Candidates: rules for this channel and EventID, for this channel and any EventID, and rules
  // with no channel condition.
  s.candidates.clear();
  const int32_t ch = s.first[size_t(channel_field_)];
  if (ch >= 0 && !by_channel_.empty()) {
    const auto it = by_channel_.find(s.fold_at(size_t(ch)));
    if (it != by_channel_.end()) {
      auto add = [&](std::string_view event_id) {
        const auto hit = it->second.find(event_id);
        if (hit != it->second.end()) s.candidates.insert(s.candidates.end(), hit->second.begin(), hit->second.end());
      };
      const int32_t eid = s.first[size_t(event_id_field_)];
      if (eid >= 0 && !s.event.fields[size_t(eid)].value.empty()) add(s.event.fields[size_t(eid)].value);
      add("");
    }
  }
  s.candidates.insert(s.candidates.end(), everywhere_.begin(), everywhere_.end());
  std::sort(s.candidates.begin(), s.candidates.end());
  s.candidates.erase(std::unique(s.candidates.begin(), s.candidates.end()), s.candidates.end());

  for (int index : s.candidates) {
    const Instance& inst = instances_[size_t(index)];
    if (inst.prefiltered && !any_atom(inst, s)) continue;
    bool applies = true;
    for (const auto& [field, values] : inst.conditions) {
      bool any = false;
      for (int32_t f = s.first[size_t(field)]; f >= 0 && !any; f = s.next[size_t(f)]) {
        const std::string_view v = s.fold_at(size_t(f));
        for (const std::string& want : values)
          if (v == want) {
            any = true;
            break;
          }
      }
      if (!any) {
        applies = false;
        break;
      }
    }
    if (!applies || !eval_instance(inst, s)) continue;
    Match m;
    m.rule = inst.rule;
    for (int field : inst.shown_fields)
      for (int32_t f = s.first[size_t(field)]; f >= 0; f = s.next[size_t(f)]) {
        const Field& fv = s.event.fields[size_t(f)];
        if (!fv.is_null) m.fields.emplace_back(std::string(fv.name), std::string(fv.value));
      }
    out.push_back(std::move(m));
  }
  return std::nullopt;
}

}  // namespace csq::detect
