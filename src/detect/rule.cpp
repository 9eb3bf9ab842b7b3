#include "detect/rule.h"

#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace csq::detect {

namespace fs = std::filesystem;

std::string LogSource::key() const {
  auto part = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  return part(product) + "/" + part(category) + "/" + part(service);
}

const char* level_name(Level l) {
  static const char* kNames[] = {"informational", "low", "medium", "high", "critical"};
  return kNames[int(l)];
}

const char* status_name(Status s) {
  static const char* kNames[] = {"unsupported", "deprecated", "experimental", "test", "stable", "unknown"};
  return kNames[int(s)];
}

bool parse_level(const std::string& text, Level& out) {
  static const char* kNames[] = {"informational", "low", "medium", "high", "critical"};
  for (int i = 0; i < 5; ++i)
    if (fold(text) == kNames[i]) return out = Level(i), true;
  return false;
}

bool parse_status(const std::string& text, Status& out) {
  static const char* kNames[] = {"unsupported", "deprecated", "experimental", "test", "stable"};
  for (int i = 0; i < 5; ++i)
    if (fold(text) == kNames[i]) return out = Status(i), true;
  return false;
}

bool Correlation::count_matches(int64_t n) const {
  return (!has_gt || n > gt) && (!has_gte || n >= gte) && (!has_lt || n < lt) && (!has_lte || n <= lte) &&
         (!has_eq || n == eq) && (!has_neq || n != neq);
}

// ---------------------------------------------------------------------------------------------
// Condition parser: recursive descent with the specification's precedence
// (or < and < not < "x of" < parentheses).

namespace {

struct CondParser {
  const std::string& text;
  const std::vector<std::string>& names;
  std::vector<std::pair<std::string, size_t>> tokens;  // token, offset
  size_t pos = 0;
  int depth = 0;
  size_t nodes = 0;
  static constexpr int kMaxDepth = 128;

  [[noreturn]] void error(const std::string& what, size_t offset) const {
    fail_input("condition '" + text + "': " + what + " at character " + std::to_string(offset + 1));
  }

  void tokenize() {
    size_t i = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
      } else if (c == '(' || c == ')') {
        tokens.push_back({std::string(1, c), i});
        ++i;
      } else if (c == '|') {
        error("aggregation expressions ('|') were removed in Sigma v2; write a correlation rule", i);
      } else {
        const size_t start = i;
        // (not strchr: it would find a NUL byte in the text as the set's terminator)
        while (i < text.size() && std::string_view(" \t\n\r()|").find(text[i]) == std::string_view::npos) ++i;
        tokens.push_back({text.substr(start, i - start), start});
      }
    }
  }

  // `1 of them` repeated over many identifiers multiplies nodes: bound the tree.
  void add_nodes(size_t n, size_t at) {
    nodes += n;
    if (nodes > RuleLimits::kConditionNodes)
      error("the condition expands to more than " + std::to_string(RuleLimits::kConditionNodes) + " nodes", at);
  }

  bool at_end() const { return pos >= tokens.size(); }
  size_t offset() const { return at_end() ? text.size() : tokens[pos].second; }
  bool peek_keyword(const char* kw) const { return !at_end() && fold(tokens[pos].first) == kw; }

  static bool is_keyword(const std::string& t) {
    const std::string f = fold(t);
    return f == "and" || f == "or" || f == "not" || f == "of" || f == "them" || f == "near";
  }

  CondNode parse_or() {
    CondNode left = parse_and();
    if (!peek_keyword("or")) return left;
    CondNode node{CondNode::Op::Or, -1, 1, {}};
    node.children.push_back(std::move(left));
    while (peek_keyword("or")) {
      add_nodes(1, offset());
      ++pos;
      node.children.push_back(parse_and());
    }
    return node;
  }

  CondNode parse_and() {
    CondNode left = parse_not();
    if (!peek_keyword("and")) return left;
    CondNode node{CondNode::Op::And, -1, 1, {}};
    node.children.push_back(std::move(left));
    while (peek_keyword("and")) {
      add_nodes(1, offset());
      ++pos;
      node.children.push_back(parse_not());
    }
    return node;
  }

  CondNode parse_not() {
    if (peek_keyword("not")) {
      if (++depth > kMaxDepth) error("nested more than 128 levels deep", offset());
      add_nodes(1, offset());
      ++pos;
      CondNode node{CondNode::Op::Not, -1, 1, {}};
      node.children.push_back(parse_not());
      --depth;
      return node;
    }
    return parse_primary();
  }

  CondNode parse_primary() {
    if (at_end()) error("expression expected, found the end", text.size());
    const auto& [tok, off] = tokens[pos];
    if (tok == "(") {
      if (++depth > kMaxDepth) error("nested more than 128 levels deep", off);
      ++pos;
      CondNode inner = parse_or();
      if (at_end() || tokens[pos].first != ")") error("')' expected", offset());
      ++pos;
      --depth;
      return inner;
    }
    if (tok == ")") error("unexpected ')'", off);
    const std::string f = fold(tok);
    if (pos + 1 < tokens.size() && fold(tokens[pos + 1].first) == "of") {
      int count = 1;
      CondNode::Op op = CondNode::Op::AtLeast;
      if (f == "all") {
        op = CondNode::Op::AllOf;
      } else if (!tok.empty() && std::all_of(tok.begin(), tok.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                 tok.size() < 6) {
        count = std::stoi(tok);
        if (count < 1) error("'" + tok + " of' needs a count of at least 1", off);
        op = count == 1 ? CondNode::Op::OneOf : CondNode::Op::AtLeast;
      } else {
        error("'" + tok + " of': expected '1 of', 'N of' or 'all of'", off);
      }
      pos += 2;
      if (at_end()) error("a search identifier pattern or 'them' expected after 'of'", text.size());
      const auto& [target, target_off] = tokens[pos++];
      CondNode node{op, -1, count, {}};
      const bool them = fold(target) == "them";
      if (!them && (target == "(" || target == ")" || is_keyword(target)))
        error("a search identifier pattern or 'them' expected after 'of', found '" + target + "'", target_off);
      const Pattern pattern = Pattern::parse(target);
      for (size_t i = 0; i < names.size(); ++i) {
        const bool hit = them ? !names[i].starts_with("_") : wildcard_match(pattern, names[i]);
        if (!hit) continue;
        add_nodes(1, target_off);
        node.children.push_back(CondNode{CondNode::Op::Ref, int(i), 1, {}});
      }
      if (node.children.empty())
        error(them ? std::string("'them' but the rule has no search identifiers")
                   : "'" + target + "' matches no search identifier",
              target_off);
      return node;
    }
    if (is_keyword(tok) || f == "all") error("unexpected '" + tok + "'", off);
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == tok) {
        add_nodes(1, off);
        ++pos;
        return CondNode{CondNode::Op::Ref, int(i), 1, {}};
      }
    error("undefined search identifier '" + tok + "'", off);
  }
};

}  // namespace

CondNode parse_condition(const std::string& text, const std::vector<std::string>& names) {
  CondParser p{text, names, {}};
  p.tokenize();
  if (p.tokens.empty()) fail_input("condition is empty");
  CondNode root = p.parse_or();
  if (!p.at_end()) p.error("unexpected '" + p.tokens[p.pos].first + "'", p.offset());
  return root;
}

// ---------------------------------------------------------------------------------------------
// Rule reader.

namespace {

struct RuleError {
  int line;
  std::string reason;
};

[[noreturn]] void rule_error(const YAML::Node& node, const std::string& reason) {
  throw RuleError{node.Mark().line >= 0 ? node.Mark().line + 1 : 0, reason};
}

std::string scalar(const YAML::Node& node, const char* what) {
  if (!node.IsScalar()) rule_error(node, std::string("'") + what + "' must be a plain value");
  return node.Scalar();
}

std::vector<std::string> scalar_list(const YAML::Node& node, const char* what) {
  std::vector<std::string> out;
  if (!node || node.IsNull()) return out;
  if (node.IsScalar()) return {node.Scalar()};
  if (!node.IsSequence()) rule_error(node, std::string("'") + what + "' must be a list");
  for (const auto& v : node) out.push_back(scalar(v, what));
  return out;
}

enum class Transform : uint8_t { Windash, Base64, Base64Offset, Utf16Le, Utf16Be, Utf16Bom };

struct Modifiers {
  enum class Wrap : uint8_t { None, Contains, StartsWith, EndsWith } wrap = Wrap::None;
  bool all = false, cased = false, exists = false, neq = false, re = false, re_i = false, re_m = false,
       re_s = false, cidr = false, fieldref = false, expand = false;
  TestKind numeric = TestKind::Exact;  // Lt/Lte/Gt/Gte when set
  TimePart time_part = TimePart::None;
  std::vector<Transform> transforms;
};

Modifiers parse_modifiers(const std::vector<std::string>& names, const YAML::Node& at) {
  Modifiers m;
  for (const std::string& name : names) {
    const std::string n = name;
    auto set_wrap = [&](Modifiers::Wrap w) {
      if (m.wrap != Modifiers::Wrap::None && m.wrap != w)
        rule_error(at, "modifiers '" + name + "' and an earlier contains/startswith/endswith exclude each other");
      m.wrap = w;
    };
    if (n == "contains") set_wrap(Modifiers::Wrap::Contains);
    else if (n == "startswith") set_wrap(Modifiers::Wrap::StartsWith);
    else if (n == "endswith") set_wrap(Modifiers::Wrap::EndsWith);
    else if (n == "all") m.all = true;
    else if (n == "cased") m.cased = true;
    else if (n == "exists") m.exists = true;
    else if (n == "neq") m.neq = true;
    else if (n == "re") m.re = true;
    else if (n == "i") m.re_i = true;
    else if (n == "m") m.re_m = true;
    else if (n == "s") m.re_s = true;
    else if (n == "cidr") m.cidr = true;
    else if (n == "fieldref") m.fieldref = true;
    else if (n == "expand") m.expand = true;
    else if (n == "windash") m.transforms.push_back(Transform::Windash);
    else if (n == "base64") m.transforms.push_back(Transform::Base64);
    else if (n == "base64offset") m.transforms.push_back(Transform::Base64Offset);
    else if (n == "utf16le" || n == "wide") m.transforms.push_back(Transform::Utf16Le);
    else if (n == "utf16be") m.transforms.push_back(Transform::Utf16Be);
    else if (n == "utf16") m.transforms.push_back(Transform::Utf16Bom);
    else if (n == "lt") m.numeric = TestKind::Lt;
    else if (n == "lte") m.numeric = TestKind::Lte;
    else if (n == "gt") m.numeric = TestKind::Gt;
    else if (n == "gte") m.numeric = TestKind::Gte;
    else if (n == "minute") m.time_part = TimePart::Minute;
    else if (n == "hour") m.time_part = TimePart::Hour;
    else if (n == "day") m.time_part = TimePart::Day;
    else if (n == "week") m.time_part = TimePart::Week;
    else if (n == "month") m.time_part = TimePart::Month;
    else if (n == "year") m.time_part = TimePart::Year;
    else rule_error(at, "unknown modifier '" + name + "'");
  }
  if ((m.re_i || m.re_m || m.re_s) && !m.re) rule_error(at, "modifiers 'i', 'm' and 's' only qualify 're'");
  const int kinds = int(m.re) + int(m.cidr) + int(m.exists) + int(m.fieldref) +
                    int(m.numeric != TestKind::Exact || m.time_part != TimePart::None);
  if (kinds > 1) rule_error(at, "re, cidr, exists, fieldref and numeric modifiers exclude each other");
  if ((m.re || m.cidr || m.exists) && (m.wrap != Modifiers::Wrap::None || !m.transforms.empty()))
    rule_error(at, "re, cidr and exists cannot be combined with string transformations");
  return m;
}

// What one rule has compiled so far: YAML aliases repeat whole selections and modifiers multiply
// values, so the rule's bounds apply to the compiled result, not to its text.
struct RuleBudget {
  size_t values = 0, bytes = 0, regexes = 0;
  void charge(const YAML::Node& at, size_t value_bytes) {
    if (++values > RuleLimits::kRuleValues)
      rule_error(at, "the rule compiles to more than " + std::to_string(RuleLimits::kRuleValues) + " values");
    bytes += value_bytes;
    if (bytes > RuleLimits::kRuleValueBytes)
      rule_error(at, "the rule's values take more than " + std::to_string(RuleLimits::kRuleValueBytes) + " bytes");
  }
};

// The values a modifier chain produces, bounded: expand and windash multiply values, encodings
// lengthen them (each utf16 doubles), so count and size are checked as they grow.
class BoundedValues {
 public:
  explicit BoundedValues(const YAML::Node& at) : at_(at) {}
  void add(std::string&& v) {
    if (v.size() > RuleLimits::kValueBytes)
      rule_error(at_, "value modifiers make a value longer than " + std::to_string(RuleLimits::kValueBytes) + " bytes");
    if (values_.size() >= RuleLimits::kModifierValues)
      rule_error(at_, "value modifiers produce more than " + std::to_string(RuleLimits::kModifierValues) + " values");
    bytes_ += v.size();
    if (bytes_ > RuleLimits::kRuleValueBytes)
      rule_error(at_, "value modifiers produce more than " + std::to_string(RuleLimits::kRuleValueBytes) + " bytes");
    values_.push_back(std::move(v));
  }
  std::vector<std::string> take() { return std::move(values_); }

 private:
  const YAML::Node& at_;
  std::vector<std::string> values_;
  size_t bytes_ = 0;
};

std::vector<std::string> transform_value(const std::string& raw, const Modifiers& m, const YAML::Node& at,
                                         const LoadOptions& options) {
  BoundedValues start(at);
  start.add(std::string(raw));
  std::vector<std::string> values = start.take();
  if (m.expand) {
    BoundedValues expanded(at);
    for (const std::string& v : values) {
      // Replace each unescaped %name% by each of its values (cartesian product).
      std::vector<std::string> partial{""};
      for (size_t i = 0; i < v.size();) {
        if (v[i] == '\\' && i + 1 < v.size() && v[i + 1] == '%') {
          for (auto& p : partial) p += '%';
          i += 2;
          continue;
        }
        if (v[i] == '%') {
          const size_t end = v.find('%', i + 1);
          if (end == std::string::npos) rule_error(at, "unterminated placeholder in '" + v + "'");
          const std::string name = v.substr(i + 1, end - i - 1);
          if (!options.placeholders)
            rule_error(at, "placeholder '%" + name + "%' needs a placeholder file (--placeholders)");
          const auto it = options.placeholders->find(name);
          if (it == options.placeholders->end() || it->second.empty())
            rule_error(at, "placeholder '%" + name + "%' is not defined in the placeholder file");
          BoundedValues next(at);
          for (const auto& p : partial)
            for (const auto& value : it->second) next.add(p + value);
          partial = next.take();
          i = end + 1;
          continue;
        }
        for (auto& p : partial) p += v[i];
        ++i;
      }
      for (auto& p : partial) expanded.add(std::move(p));
    }
    values = expanded.take();
  }
  for (const Transform t : m.transforms) {
    BoundedValues next(at);
    for (const std::string& v : values) {
      if (t == Transform::Windash) {
        for (auto& w : windash_variants(v)) next.add(std::move(w));
        continue;
      }
      const Pattern p = Pattern::parse(v);
      if (p.has_wildcards()) rule_error(at, "wildcards cannot be encoded (value '" + v + "')");
      const std::string plain = p.plain();
      switch (t) {
        case Transform::Base64:
          next.add(escape_sigma(base64_encode(plain)));
          break;
        case Transform::Base64Offset:
          for (auto& e : base64offset_variants(plain)) next.add(escape_sigma(e));
          break;
        case Transform::Utf16Le:
          next.add(escape_sigma(utf16_encode(plain, false, false)));
          break;
        case Transform::Utf16Be:
          next.add(escape_sigma(utf16_encode(plain, true, false)));
          break;
        case Transform::Utf16Bom:
          next.add(escape_sigma(utf16_encode(plain, false, true)));
          break;
        case Transform::Windash:
          break;
      }
    }
    values = next.take();
  }
  return values;
}

ValueTest string_test(const std::string& sigma, const Modifiers& m) {
  Pattern p = Pattern::parse(sigma);
  using Piece = Pattern::Piece;
  auto star = [] { return Pattern::Part{Piece::AnyRun, {}}; };
  if (m.wrap == Modifiers::Wrap::Contains || m.wrap == Modifiers::Wrap::EndsWith)
    if (p.parts.empty() || p.parts.front().kind != Piece::AnyRun) p.parts.insert(p.parts.begin(), star());
  if (m.wrap == Modifiers::Wrap::Contains || m.wrap == Modifiers::Wrap::StartsWith)
    if (p.parts.empty() || p.parts.back().kind != Piece::AnyRun) p.parts.push_back(star());
  ValueTest t;
  t.cased = m.cased;
  if (!m.cased)
    for (auto& part : p.parts) part.text = fold(part.text);
  const auto& ps = p.parts;
  auto lit = [&](size_t i) { return ps[i].kind == Piece::Literal; };
  auto any = [&](size_t i) { return ps[i].kind == Piece::AnyRun; };
  if (ps.empty()) {
    t.kind = TestKind::Exact;
  } else if (ps.size() == 1 && lit(0)) {
    t.kind = TestKind::Exact;
    t.literal = ps[0].text;
  } else if (ps.size() == 3 && any(0) && lit(1) && any(2)) {
    t.kind = TestKind::Contains;
    t.literal = ps[1].text;
  } else if (ps.size() == 2 && lit(0) && any(1)) {
    t.kind = TestKind::StartsWith;
    t.literal = ps[0].text;
  } else if (ps.size() == 2 && any(0) && lit(1)) {
    t.kind = TestKind::EndsWith;
    t.literal = ps[1].text;
  } else {
    t.kind = TestKind::Wildcard;
    t.pattern = std::move(p);
  }
  return t;
}

FieldTestSpec compile_field(const std::string& key, const YAML::Node& value, const LoadOptions& options,
                            RuleBudget& budget) {
  FieldTestSpec spec;
  auto add = [&](const YAML::Node& at, ValueTest&& t, size_t bytes, std::string ref_field = {}) {
    budget.charge(at, bytes);
    spec.tests.push_back(std::move(t));
    spec.ref_fields.push_back(std::move(ref_field));
  };
  std::vector<std::string> parts;
  {
    size_t start = 0;
    while (true) {
      const size_t bar = key.find('|', start);
      parts.push_back(key.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
  }
  spec.field = parts[0];
  const Modifiers m = parse_modifiers(std::vector<std::string>(parts.begin() + 1, parts.end()), value);
  spec.all = m.all;
  spec.negate = m.neq;
  const bool keyword = spec.field.empty();

  std::vector<YAML::Node> values;
  if (value.IsSequence()) {
    for (const auto& v : value) values.push_back(v);
    if (values.empty()) rule_error(value, "'" + key + "' has an empty list of values");
  } else {
    values.push_back(value);
  }
  for (const YAML::Node& v : values) {
    if (v.IsMap() || v.IsSequence()) rule_error(v, "'" + key + "': values must be plain values, not maps or lists");
    if (v.IsNull()) {
      if (keyword) rule_error(v, "a keyword cannot be null");
      ValueTest t;
      t.kind = TestKind::Null;
      add(v, std::move(t), 0);
      continue;
    }
    const std::string raw = v.Scalar();
    if (m.exists) {
      ValueTest t;
      t.kind = TestKind::Exists;
      const std::string f = fold(raw);
      if (f != "true" && f != "false") rule_error(v, "'" + key + "': exists takes true or false");
      t.expect_present = f == "true";
      add(v, std::move(t), raw.size());
      continue;
    }
    if (m.re) {
      std::string flags;
      if (m.re_i) flags += 'i';
      if (m.re_m) flags += 'm';
      if (m.re_s) flags += 's';
      RE2::Options o;
      o.set_log_errors(false);
      o.set_max_mem(8 << 20);
      if (++budget.regexes > RuleLimits::kRuleRegexes)
        rule_error(v, "the rule has more than " + std::to_string(RuleLimits::kRuleRegexes) + " regular expressions");
      auto re = std::make_shared<RE2>(flags.empty() ? raw : "(?" + flags + ")" + raw, o);
      if (!re->ok()) rule_error(v, "'" + key + "': regular expression not accepted by RE2 (" + re->error() + ")");
      ValueTest t;
      t.kind = TestKind::Regex;
      t.regex = std::move(re);
      add(v, std::move(t), raw.size());
      continue;
    }
    if (m.cidr) {
      const auto c = Cidr::parse(raw);
      if (!c) rule_error(v, "'" + key + "': '" + raw + "' is not an IPv4 or IPv6 network");
      ValueTest t;
      t.kind = TestKind::Cidr;
      t.cidr = *c;
      add(v, std::move(t), raw.size());
      continue;
    }
    if (m.numeric != TestKind::Exact || m.time_part != TimePart::None) {
      const auto n = parse_number(raw);
      if (!n) rule_error(v, "'" + key + "': '" + raw + "' is not a number");
      ValueTest t;
      t.kind = m.numeric != TestKind::Exact ? m.numeric : TestKind::NumEq;
      t.number = *n;
      t.time_part = m.time_part;
      add(v, std::move(t), raw.size());
      continue;
    }
    if (m.fieldref) {
      ValueTest t;
      t.kind = TestKind::FieldRef;
      t.cased = m.cased;
      t.ref_kind = m.wrap == Modifiers::Wrap::Contains     ? TestKind::Contains
                   : m.wrap == Modifiers::Wrap::StartsWith ? TestKind::StartsWith
                   : m.wrap == Modifiers::Wrap::EndsWith   ? TestKind::EndsWith
                                                           : TestKind::Exact;
      add(v, std::move(t), raw.size(), raw);
      continue;
    }
    Modifiers wrapped = m;
    if (keyword && wrapped.wrap == Modifiers::Wrap::None) wrapped.wrap = Modifiers::Wrap::Contains;
    for (const std::string& s : transform_value(raw, m, v, options)) {
      add(v, string_test(s, wrapped), s.size());
    }
  }
  return spec;
}

Selection compile_selection(const std::string& name, const YAML::Node& node, const LoadOptions& options,
                            RuleBudget& budget) {
  Selection sel;
  sel.name = name;
  auto from_map = [&](const YAML::Node& map) {
    std::vector<FieldTestSpec> tests;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) rule_error(kv.first, "search identifier '" + name + "': field names must be text");
      tests.push_back(compile_field(kv.first.Scalar(), kv.second, options, budget));
    }
    if (tests.empty()) rule_error(map, "search identifier '" + name + "' is an empty map");
    return tests;
  };
  if (node.IsMap()) {
    sel.alternatives.push_back(from_map(node));
  } else if (node.IsSequence()) {
    YAML::Node keywords(YAML::NodeType::Sequence);
    for (const auto& item : node) {
      if (item.IsMap()) sel.alternatives.push_back(from_map(item));
      else if (item.IsScalar()) keywords.push_back(item);
      else rule_error(item, "search identifier '" + name + "': list items must be maps or keywords");
    }
    if (keywords.size() > 0) sel.alternatives.push_back({compile_field("", keywords, options, budget)});
    if (sel.alternatives.empty()) rule_error(node, "search identifier '" + name + "' is an empty list");
  } else if (node.IsScalar()) {
    sel.alternatives.push_back({compile_field("", node, options, budget)});
  } else {
    rule_error(node, "search identifier '" + name + "' is empty");
  }
  return sel;
}

int64_t parse_timespan(const YAML::Node& node) {
  const std::string s = scalar(node, "timespan");
  if (s.size() < 2 || s.size() > 12) rule_error(node, "timespan '" + s + "': expected a number and s, m, h, d, w, M or y");
  const char unit = s.back();
  int64_t n = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') rule_error(node, "timespan '" + s + "': expected a number and a unit");
    n = n * 10 + (s[i] - '0');
  }
  int64_t unit_ms = 0;
  switch (unit) {
    case 's': unit_ms = 1000; break;
    case 'm': unit_ms = 60 * 1000; break;
    case 'h': unit_ms = 3600 * 1000; break;
    case 'd': unit_ms = 86400 * 1000LL; break;
    case 'w': unit_ms = 7 * 86400 * 1000LL; break;
    case 'M': unit_ms = 30 * 86400 * 1000LL; break;
    case 'y': unit_ms = 365 * 86400 * 1000LL; break;
    default: rule_error(node, "timespan '" + s + "': unknown unit '" + std::string(1, unit) + "'");
  }
  if (n <= 0) rule_error(node, "timespan '" + s + "' must be positive");
  return n * unit_ms;
}

std::unique_ptr<Correlation> read_correlation(const YAML::Node& c) {
  if (!c.IsMap()) rule_error(c, "'correlation' must be a map");
  auto out = std::make_unique<Correlation>();
  const YAML::Node type = c["type"];
  if (!type) rule_error(c, "correlation without a 'type'");
  const std::string t = scalar(type, "type");
  if (c["aliases"]) rule_error(c["aliases"], "correlation field aliases are not supported");
  if (t == "event_count") out->type = CorrelationType::EventCount;
  else if (t == "value_count") out->type = CorrelationType::ValueCount;
  else if (t == "temporal") out->type = CorrelationType::Temporal;
  else if (t == "temporal_ordered") out->type = CorrelationType::TemporalOrdered;
  else rule_error(type, "correlation type '" + t + "' is not supported (event_count, value_count, temporal, temporal_ordered)");
  out->rules = scalar_list(c["rules"], "rules");
  if (out->rules.empty()) rule_error(c, "correlation without 'rules'");
  out->group_by = scalar_list(c["group-by"], "group-by");
  if (!c["timespan"]) rule_error(c, "correlation without a 'timespan'");
  out->timespan_ms = parse_timespan(c["timespan"]);
  if (const YAML::Node g = c["generate"]) out->generate = fold(scalar(g, "generate")) == "true";
  const YAML::Node cond = c["condition"];
  if (cond) {
    if (!cond.IsMap()) rule_error(cond, "correlation 'condition' must be a map (gt, gte, lt, lte, eq, field)");
    for (const auto& kv : cond) {
      const std::string k = scalar(kv.first, "condition");
      if (k == "field") {
        out->field = scalar(kv.second, "field");
        continue;
      }
      const auto n = parse_number(scalar(kv.second, k.c_str()));
      if (!n) rule_error(kv.second, "correlation condition '" + k + "' needs a number");
      const int64_t v = int64_t(*n);
      if (k == "gt") out->has_gt = true, out->gt = v;
      else if (k == "gte") out->has_gte = true, out->gte = v;
      else if (k == "lt") out->has_lt = true, out->lt = v;
      else if (k == "lte") out->has_lte = true, out->lte = v;
      else if (k == "eq") out->has_eq = true, out->eq = v;
      else if (k == "neq") out->has_neq = true, out->neq = v;
      else rule_error(kv.first, "correlation condition '" + k + "' is not one of gt, gte, lt, lte, eq, neq, field");
    }
  }
  const bool temporal = out->type == CorrelationType::Temporal || out->type == CorrelationType::TemporalOrdered;
  if (!cond && !temporal) rule_error(c, "correlation of this type needs a 'condition'");
  if (out->type == CorrelationType::ValueCount && out->field.empty())
    rule_error(cond ? cond : c, "value_count needs 'field' in its condition");
  if (temporal && !cond) {
    out->has_gte = true;
    out->gte = int64_t(out->rules.size());
  }
  return out;
}

// Nodes of a condition tree and the value tests it references (with `selection_tests` given).
struct ConditionCost {
  size_t nodes = 0, tests = 0;
  void add(const CondNode& n, const std::vector<size_t>& selection_tests) {
    ++nodes;
    if (n.op == CondNode::Op::Ref && size_t(n.selection) < selection_tests.size())
      tests += selection_tests[size_t(n.selection)];
    for (const CondNode& c : n.children) add(c, selection_tests);
  }
};

std::shared_ptr<Rule> read_rule(const YAML::Node& doc, const std::string& file, const LoadOptions& options) {
  auto rule = std::make_shared<Rule>();
  rule->file = file;
  rule->line = doc.Mark().line + 1;
  const YAML::Node title = doc["title"];
  if (!title) rule_error(doc, "no 'title'");
  rule->title = scalar(title, "title");
  if (const YAML::Node n = doc["id"]) rule->id = scalar(n, "id");
  if (const YAML::Node n = doc["name"]) rule->name = scalar(n, "name");
  if (const YAML::Node n = doc["author"]) rule->author = scalar(n, "author");
  if (const YAML::Node n = doc["description"]) rule->description = scalar(n, "description");
  if (const YAML::Node n = doc["date"]) rule->date = scalar(n, "date");
  if (const YAML::Node n = doc["modified"]) rule->modified = scalar(n, "modified");
  rule->tags = scalar_list(doc["tags"], "tags");
  rule->references = scalar_list(doc["references"], "references");
  rule->falsepositives = scalar_list(doc["falsepositives"], "falsepositives");
  if (const YAML::Node n = doc["status"])
    if (!parse_status(scalar(n, "status"), rule->status)) rule_error(n, "unknown status '" + n.Scalar() + "'");
  if (const YAML::Node n = doc["level"])
    if (!parse_level(scalar(n, "level"), rule->level)) rule_error(n, "unknown level '" + n.Scalar() + "'");

  if (const YAML::Node corr = doc["correlation"]) {
    rule->correlation = read_correlation(corr);
    return rule;
  }
  if (doc["filter"]) rule_error(doc, "Sigma filter documents are not supported");
  if (doc["action"]) rule_error(doc, "rule collections ('action: global', Sigma v1) are not supported");

  const YAML::Node ls = doc["logsource"];
  if (!ls || !ls.IsMap()) rule_error(ls ? ls : doc, "no 'logsource' map");
  if (const YAML::Node n = ls["product"]) rule->logsource.product = fold(scalar(n, "product"));
  if (const YAML::Node n = ls["category"]) rule->logsource.category = fold(scalar(n, "category"));
  if (const YAML::Node n = ls["service"]) rule->logsource.service = fold(scalar(n, "service"));

  const YAML::Node det = doc["detection"];
  if (!det || !det.IsMap()) rule_error(det ? det : doc, "no 'detection' map");
  YAML::Node condition;
  std::vector<std::string> names;
  RuleBudget budget;
  for (const auto& kv : det) {
    if (!kv.first.IsScalar()) rule_error(kv.first, "detection keys must be text");
    const std::string key = kv.first.Scalar();
    if (key == "condition") {
      condition = kv.second;
      continue;
    }
    if (key == "timeframe") continue;  // only meaningful with v1 aggregations, which are refused below
    rule->selections.push_back(compile_selection(key, kv.second, options, budget));
    names.push_back(key);
  }
  if (!condition) rule_error(det, "detection without a 'condition'");
  std::vector<std::string> conditions;
  if (condition.IsSequence()) {
    for (const auto& c : condition) conditions.push_back(scalar(c, "condition"));
  } else {
    conditions.push_back(scalar(condition, "condition"));
  }
  if (conditions.empty()) rule_error(condition, "condition list is empty");
  try {
    if (conditions.size() == 1) {
      rule->condition = parse_condition(conditions[0], names);
    } else {
      rule->condition = CondNode{CondNode::Op::Or, -1, 1, {}};
      ConditionCost total;
      for (const auto& c : conditions) {
        rule->condition.children.push_back(parse_condition(c, names));
        total.add(rule->condition.children.back(), {});
        if (total.nodes > RuleLimits::kConditionNodes)
          rule_error(condition, "the conditions expand to more than " + std::to_string(RuleLimits::kConditionNodes) +
                                    " nodes");
      }
    }
  } catch (const Error& e) {
    rule_error(condition, e.what());
  }
  // Each reference evaluates its selection's tests: a selection of 100,000 values referenced
  // 100,000 times would cost 10^10 tests on every event.
  std::vector<size_t> selection_tests;
  for (const Selection& sel : rule->selections) {
    size_t n = 0;
    for (const auto& alt : sel.alternatives)
      for (const FieldTestSpec& spec : alt) n += spec.tests.size();
    selection_tests.push_back(n);
  }
  ConditionCost cost;
  cost.add(rule->condition, selection_tests);
  if (cost.tests > RuleLimits::kConditionTests)
    rule_error(condition, "the condition evaluates more than " + std::to_string(RuleLimits::kConditionTests) +
                              " value tests per event (" + std::to_string(cost.tests) + ")");
  return rule;
}

}  // namespace

namespace {

// A first pass over the YAML through yaml-cpp's event parser, before it builds nodes.
// yaml-cpp 0.7 (Debian 12) does not reject some malformed documents (a plain scalar left over
// after a flow collection closed, like yaml-cpp#1318/#1319); it then returns the same empty
// document forever without consuming input, and LoadAll loops, allocating, until memory runs
// out. Here a document that does not get past the previous one's last position is a stall.
// The pass also bounds nesting, which Sigma rules keep shallow.
class YamlPrescan : public YAML::EventHandler {
 public:
  struct Refused {
    int line;
    std::string reason;
  };

  static void check(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    YamlPrescan scan;
    for (int previous_end = -1; parser.HandleNextDocument(scan); previous_end = scan.end_) {
      if (scan.end_ <= previous_end)
        throw Refused{scan.line_ + 1, "the YAML parser stopped advancing at line " + std::to_string(scan.line_ + 1) +
                                          " (malformed YAML that yaml-cpp 0.7 does not reject)"};
    }
  }

 private:
  void at(const YAML::Mark& m) {
    if (m.pos > end_) end_ = m.pos, line_ = m.line;
  }
  void open(const YAML::Mark& m) {
    at(m);
    if (++depth_ > RuleLimits::kYamlDepth)
      throw Refused{m.line + 1, "YAML collections nested more than " + std::to_string(RuleLimits::kYamlDepth) + " deep"};
  }
  void OnDocumentStart(const YAML::Mark& m) override { at(m); }
  void OnDocumentEnd() override { depth_ = 0; }
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { at(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { at(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { at(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    open(m);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    open(m);
  }
  void OnMapEnd() override { --depth_; }

  int end_ = -1;  // the furthest position an event was at, and its line
  int line_ = 0;
  int depth_ = 0;
};

RuleProblem oversized_file(const std::string& file, uintmax_t size) {
  return {file, 0, "", "rule file of " + std::to_string(size) + " bytes, more than the " +
                           std::to_string(RuleLimits::kFileBytes) + " bytes a rule file may have"};
}

}  // namespace

void load_rules_text(const std::string& text, const std::string& file, const LoadOptions& options, RuleSet& out) {
  ++out.files;
  if (text.size() > RuleLimits::kFileBytes) {
    out.problems.push_back(oversized_file(file, text.size()));
    return;
  }
  std::vector<YAML::Node> docs;
  try {
    YamlPrescan::check(text);
    docs = YAML::LoadAll(text);
  } catch (const YamlPrescan::Refused& e) {
    out.problems.push_back({file, e.line, "", "not accepted as YAML: " + e.reason});
    return;
  } catch (const YAML::Exception& e) {
    out.problems.push_back({file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "not valid YAML: " + e.msg});
    return;
  }
  for (const YAML::Node& doc : docs) {
    if (!doc || doc.IsNull()) continue;
    std::string title;
    try {
      if (!doc.IsMap()) rule_error(doc, "a rule document must be a map");
      if (const YAML::Node t = doc["title"]; t && t.IsScalar()) title = t.Scalar();
      out.rules.push_back(read_rule(doc, file, options));
    } catch (const RuleError& e) {
      out.problems.push_back({file, e.line, title, e.reason});
    } catch (const YAML::Exception& e) {
      out.problems.push_back({file, e.mark.line >= 0 ? e.mark.line + 1 : 0, title, std::string("YAML: ") + e.msg});
    }
  }
}

void load_rules_path(const std::string& path, const LoadOptions& options, RuleSet& out) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const auto ext = it->path().extension();
      if (it->is_regular_file(ec) && (ext == ".yml" || ext == ".yaml")) files.push_back(it->path());
    }
    if (ec) fail_input(path + ": cannot list the rule directory (" + ec.message() + ")");
    std::sort(files.begin(), files.end());
    for (const auto& f : files) load_rules_path(f.string(), options, out);
    return;
  }
  // (a huge file is refused before it is read: load_rules_text would refuse its text)
  if (const auto size = fs::file_size(path, ec); !ec && size > RuleLimits::kFileBytes) {
    ++out.files;
    out.problems.push_back(oversized_file(path, size));
    return;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open the rule file");
  std::ostringstream ss;
  ss << in.rdbuf();
  load_rules_text(ss.str(), path, options, out);
}

}  // namespace csq::detect
