#include "runtime/json_schema.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"

namespace csq {

namespace {

using J = nlohmann::ordered_json;
using rx::NodePtr;

constexpr double kMaxBound = 1e18;

NodePtr lit(std::string_view s) { return rx::literal(s); }
NodePtr seq(std::vector<NodePtr> parts) { return rx::concat(std::move(parts)); }
NodePtr digit() { return rx::byte_range('0', '9'); }

NodePtr ws() {
  rx::ByteSet indent;
  indent.add(' ');
  indent.add('\t');
  return rx::optional(rx::alt({lit(" "), seq({lit("\n"), rx::repeat(rx::bytes(indent), 0, 20)})}));
}

NodePtr separator(char c) { return seq({ws(), lit(std::string(1, c)), ws()}); }

NodePtr hex() {
  rx::ByteSet s;
  s.add_range('0', '9');
  s.add_range('a', 'f');
  s.add_range('A', 'F');
  return rx::bytes(s);
}

// One character of a JSON string as written: unescaped, a short escape, or \uXXXX (surrogates
// only as a proper high-low pair, which strict parsers require).
NodePtr string_char() {
  rx::ByteSet shortesc;
  for (char c : std::string("\"\\/bfnrt")) shortesc.add(uint8_t(c));
  rx::ByteSet not_d, d_low, d_high;
  not_d.add_range('0', '9'), not_d.add_range('a', 'c'), not_d.add_range('A', 'C');
  not_d.add('e'), not_d.add('f'), not_d.add('E'), not_d.add('F');
  d_low.add_range('0', '7');
  d_high.add_range('8', '9'), d_high.add_range('a', 'b'), d_high.add_range('A', 'B');
  rx::ByteSet d_trail;
  d_trail.add_range('c', 'f'), d_trail.add_range('C', 'F');
  rx::ByteSet dd;
  dd.add('d'), dd.add('D');
  const NodePtr bmp = rx::alt({seq({rx::bytes(not_d), hex(), hex(), hex()}), seq({rx::bytes(dd), rx::bytes(d_low), hex(), hex()})});
  const NodePtr pair = seq({rx::bytes(dd), rx::bytes(d_high), hex(), hex(), lit("\\u"), rx::bytes(dd), rx::bytes(d_trail), hex(), hex()});
  return rx::alt({rx::code_points({{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}}),
                  seq({lit("\\"), rx::alt({rx::bytes(shortesc), seq({lit("u"), rx::alt({bmp, pair})})})})});
}

NodePtr json_string(int min, int max) { return seq({lit("\""), rx::repeat(string_char(), min, max), lit("\"")}); }

NodePtr any_integer() { return seq({rx::optional(lit("-")), rx::alt({lit("0"), seq({rx::byte_range('1', '9'), rx::repeat(digit(), 0, rx::kUnbounded)})})}); }

NodePtr fraction() { return rx::optional(seq({lit("."), rx::repeat(digit(), 1, rx::kUnbounded)})); }

NodePtr any_number() {
  rx::ByteSet e, sign;
  e.add('e'), e.add('E'), sign.add('+'), sign.add('-');
  return seq({any_integer(), fraction(),
              rx::optional(seq({rx::bytes(e), rx::optional(rx::bytes(sign)), rx::repeat(digit(), 1, rx::kUnbounded)}))});
}

// Decimal strings of equal length lo <= hi, digit by digit (inner positions may be zeros).
NodePtr same_length_range(const std::string& lo, const std::string& hi) {
  if (lo.size() == 1) return rx::byte_range(uint8_t(lo[0]), uint8_t(hi[0]));
  const std::string lo_tail = lo.substr(1), hi_tail = hi.substr(1);
  if (lo[0] == hi[0]) return seq({lit(lo.substr(0, 1)), same_length_range(lo_tail, hi_tail)});
  std::vector<NodePtr> options{seq({lit(lo.substr(0, 1)), same_length_range(lo_tail, std::string(lo_tail.size(), '9'))})};
  if (lo[0] + 1 <= hi[0] - 1) {
    options.push_back(seq({rx::byte_range(uint8_t(lo[0] + 1), uint8_t(hi[0] - 1)), rx::repeat(digit(), int(lo_tail.size()), int(lo_tail.size()))}));
  }
  options.push_back(seq({lit(hi.substr(0, 1)), same_length_range(std::string(hi_tail.size(), '0'), hi_tail)}));
  return rx::alt(std::move(options));
}

constexpr uint64_t kNoLimit = UINT64_MAX;

// Canonical decimals (no leading zeros) of the integers in [a, b] (b may be kNoLimit).
NodePtr natural_range(uint64_t a, uint64_t b) {
  const std::string sa = std::to_string(a);
  std::vector<NodePtr> options;
  if (b == kNoLimit) {
    options.push_back(same_length_range(sa, std::string(sa.size(), '9')));
    options.push_back(seq({rx::byte_range('1', '9'), rx::repeat(digit(), int(sa.size()), rx::kUnbounded)}));
    return rx::alt(std::move(options));
  }
  if (a > b) return rx::alt({});
  const std::string sb = std::to_string(b);
  for (size_t len = sa.size(); len <= sb.size(); ++len) {
    std::string lo = sa;
    if (len != sa.size()) lo.assign(len, '0'), lo[0] = '1';
    const std::string hi = len == sb.size() ? sb : std::string(len, '9');
    options.push_back(same_length_range(lo, hi));
  }
  return options.size() == 1 ? options[0] : rx::alt(std::move(options));
}

// Integers in [lo, hi] (either may be absent), written the JSON way.
NodePtr integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  std::vector<NodePtr> options;
  if (!hi || *hi >= 0) options.push_back(natural_range(uint64_t(std::max<int64_t>(lo.value_or(0), 0)), hi ? uint64_t(*hi) : kNoLimit));
  if (!lo || *lo < 0) {
    const uint64_t mag_lo = (hi && *hi < 0) ? uint64_t(-*hi) : 1;
    options.push_back(seq({lit("-"), natural_range(mag_lo, lo ? uint64_t(-*lo) : kNoLimit)}));
  }
  return options.size() == 1 ? options[0] : rx::alt(std::move(options));
}

// |x| in [m1, m2] (m2 may be kNoLimit) for x = I.F with integer bounds: I in [m1, m2 - 1] with
// any fraction, or I = m2 with an all-zero fraction.
NodePtr magnitude_range(uint64_t m1, uint64_t m2) {
  if (m2 == kNoLimit) return seq({natural_range(m1, kNoLimit), fraction()});
  std::vector<NodePtr> options;
  if (m2 >= 1 && m1 <= m2 - 1) options.push_back(seq({natural_range(m1, m2 - 1), fraction()}));
  options.push_back(seq({lit(std::to_string(m2)), rx::optional(seq({lit("."), rx::repeat(lit("0"), 1, rx::kUnbounded)}))}));
  return options.size() == 1 ? options[0] : rx::alt(std::move(options));
}

NodePtr number_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  std::vector<NodePtr> options;
  if (!hi || *hi >= 0) options.push_back(magnitude_range(uint64_t(std::max<int64_t>(lo.value_or(0), 0)), hi ? uint64_t(*hi) : kNoLimit));
  if (!lo || *lo < 0) {
    const uint64_t m1 = (hi && *hi < 0) ? uint64_t(-*hi) : 0;
    options.push_back(seq({lit("-"), magnitude_range(m1, lo ? uint64_t(-*lo) : kNoLimit)}));
  }
  return options.size() == 1 ? options[0] : rx::alt(std::move(options));
}

NodePtr object_of(const NodePtr& member, int min_members) {
  return seq({lit("{"), ws(), rx::list(member, separator(','), min_members, rx::kUnbounded), ws(), lit("}")});
}

NodePtr any_value(int depth) {
  std::vector<NodePtr> options{json_string(0, rx::kUnbounded), any_number(), lit("true"), lit("false"), lit("null")};
  if (depth > 0) {
    const NodePtr inner = any_value(depth - 1);
    options.push_back(object_of(seq({json_string(0, rx::kUnbounded), ws(), lit(":"), ws(), inner}), 0));
    options.push_back(seq({lit("["), ws(), rx::list(inner, separator(','), 0, rx::kUnbounded), ws(), lit("]")}));
  }
  return rx::alt(std::move(options));
}

// A pattern over decoded string content → the same over JSON string text: the bytes JSON must
// escape are replaced by their escapes.
std::string escape_of(int b) {
  switch (b) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: {
      static const char* digits = "0123456789abcdef";
      return std::string("\\u00") + digits[b >> 4] + digits[b & 15];
    }
  }
}

NodePtr json_escaped(const NodePtr& n) {
  if (n->kind == rx::Node::Kind::Bytes) {
    rx::ByteSet plain = n->bytes;
    std::vector<NodePtr> escapes;
    for (int b = 0; b < 0x80; ++b) {
      if ((b < 0x20 || b == '"' || b == '\\') && plain.has(uint8_t(b))) {
        plain.bits[size_t(b) >> 6] &= ~(uint64_t(1) << (b & 63));
        escapes.push_back(lit(escape_of(b)));
      }
    }
    if (escapes.empty()) return n;
    if (!plain.empty()) escapes.insert(escapes.begin(), rx::bytes(plain));
    return rx::alt(std::move(escapes));
  }
  rx::Node copy = *n;
  for (auto& c : copy.children) c = json_escaped(c);
  return std::make_shared<const rx::Node>(std::move(copy));
}

const std::set<std::string> kAnnotations = {"title", "description", "$schema", "$id", "$comment",
                                            "examples", "default", "deprecated", "readOnly", "writeOnly",
                                            "$defs", "definitions"};
const std::vector<std::pair<std::string, std::vector<std::string>>> kTypeKeywords = {
    {"object", {"properties", "required", "additionalProperties"}},
    {"array", {"items", "minItems", "maxItems"}},
    {"string", {"minLength", "maxLength", "pattern"}},
    {"integer", {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
    {"number", {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
    {"boolean", {}},
    {"null", {}},
};

struct SchemaCompiler {
  const J& root;
  std::vector<std::string> refs;  // being expanded, to reject recursion

  [[noreturn]] static void fail(const std::string& path, const std::string& what) {
    fail_usage("JSON schema: " + what + " at " + path);
  }

  static std::string child(const std::string& path, const std::string& key) { return path + "/" + key; }

  static bool applies(const std::string& type, const std::string& keyword) {
    for (const auto& [t, kws] : kTypeKeywords) {
      if (t == type) return std::find(kws.begin(), kws.end(), keyword) != kws.end();
    }
    return false;
  }

  static int count(const J& s, const char* key, const std::string& path) {
    const J& v = s.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100000) {
      fail(child(path, key), "expected a non-negative integer");
    }
    return int(v.get<int64_t>());
  }

  static std::optional<double> bound(const J& s, const char* key, const std::string& path) {
    if (!s.contains(key)) return std::nullopt;
    const J& v = s.at(key);
    if (!v.is_number()) fail(child(path, key), "expected a number");
    const double x = v.get<double>();
    if (!(std::fabs(x) <= kMaxBound)) fail(child(path, key), "bounds beyond ±1e18 not supported");
    return x;
  }

  NodePtr compile(const J& s, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(path, "schema false admits no value");
      return any_value(kAnyValueDepth);
    }
    if (!s.is_object()) fail(path, "expected a schema object");
    for (const auto& [key, value] : s.items()) {
      if (kAnnotations.count(key) || key == "type" || key == "enum" || key == "const" || key == "anyOf" || key == "$ref") continue;
      bool known = false;
      for (const auto& [t, kws] : kTypeKeywords) known = known || applies(t, key);
      if (!known) fail(path, "unsupported keyword \"" + key + "\"");
    }
    auto only = [&](const char* what, std::initializer_list<const char*> also) {
      for (const auto& item : s.items()) {
        const std::string& key = item.key();  // not a structured binding: the lambda below captures it
        if (kAnnotations.count(key) || key == what) continue;
        if (std::find_if(also.begin(), also.end(), [&](const char* a) { return key == a; }) != also.end()) continue;
        fail(path, "keyword \"" + key + "\" together with \"" + what + "\" not supported");
      }
    };
    if (s.contains("$ref")) {
      only("$ref", {});
      return compile_ref(s.at("$ref"), child(path, "$ref"));
    }
    if (s.contains("anyOf")) {
      only("anyOf", {});
      const J& options = s.at("anyOf");
      if (!options.is_array() || options.empty()) fail(child(path, "anyOf"), "expected a non-empty array");
      std::vector<NodePtr> nodes;
      for (size_t i = 0; i < options.size(); ++i) nodes.push_back(compile(options[i], child(child(path, "anyOf"), std::to_string(i))));
      return rx::alt(std::move(nodes));
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      const J& t = s.at("type");
      for (const J& name : t.is_array() ? t : J::array({t})) {
        if (!name.is_string() || std::none_of(kTypeKeywords.begin(), kTypeKeywords.end(), [&](const auto& k) { return k.first == name.get<std::string>(); })) {
          fail(child(path, "type"), "unknown type " + name.dump());
        }
        types.push_back(name.get<std::string>());
      }
      if (types.empty()) fail(child(path, "type"), "empty type list");
    }
    if (s.contains("enum") || s.contains("const")) {
      const char* key = s.contains("enum") ? "enum" : "const";
      only(key, {"type"});
      const J values = s.contains("enum") ? s.at("enum") : J::array({s.at("const")});
      if (!values.is_array()) fail(child(path, key), "expected an array");
      std::vector<NodePtr> options;
      for (const J& v : values) {
        if (types.empty() || std::any_of(types.begin(), types.end(), [&](const std::string& t) { return has_type(v, t); })) {
          options.push_back(lit(v.dump()));
        }
      }
      if (options.empty()) fail(child(path, key), "no value allowed");
      return rx::alt(std::move(options));
    }
    for (const auto& item : s.items()) {
      const std::string& key = item.key();  // not a structured binding: lambdas below capture it
      if (kAnnotations.count(key) || key == "type") continue;
      if (types.empty()) fail(path, "keyword \"" + key + "\" needs a \"type\"");
      if (std::none_of(types.begin(), types.end(), [&](const std::string& t) { return applies(t, key); })) {
        fail(path, "keyword \"" + key + "\" does not apply to type " + s.at("type").dump());
      }
    }
    if (types.empty()) return any_value(kAnyValueDepth);
    std::vector<NodePtr> options;
    for (const std::string& t : types) options.push_back(compile_type(s, t, path));
    return options.size() == 1 ? options[0] : rx::alt(std::move(options));
  }

  static bool has_type(const J& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (t == "number") return v.is_number();
    if (t == "boolean") return v.is_boolean();
    return v.is_null();
  }

  NodePtr compile_ref(const J& ref, const std::string& path) {
    if (!ref.is_string() || ref.get<std::string>().rfind("#", 0) != 0) fail(path, "only local references (\"#/...\") are supported");
    const std::string target = ref.get<std::string>();
    if (std::find(refs.begin(), refs.end(), target) != refs.end()) fail(path, "recursive $ref \"" + target + "\" not supported");
    const J* resolved = nullptr;
    try {
      resolved = &root.at(J::json_pointer(target.substr(1)));
    } catch (const nlohmann::json::exception&) {
      fail(path, "cannot resolve $ref \"" + target + "\"");
    }
    refs.push_back(target);
    NodePtr n = compile(*resolved, target);
    refs.pop_back();
    return n;
  }

  NodePtr compile_type(const J& s, const std::string& t, const std::string& path) {
    if (t == "null") return lit("null");
    if (t == "boolean") return rx::alt({lit("true"), lit("false")});
    if (t == "string") {
      if (s.contains("pattern")) {
        if (s.contains("minLength") || s.contains("maxLength")) fail(path, "pattern together with minLength/maxLength not supported");
        const J& p = s.at("pattern");
        if (!p.is_string()) fail(child(path, "pattern"), "expected a string");
        NodePtr content;
        try {
          content = rx::parse(p.get<std::string>());
        } catch (const Error& e) {
          fail(child(path, "pattern"), e.what());
        }
        return seq({lit("\""), json_escaped(content), lit("\"")});
      }
      const int min = s.contains("minLength") ? count(s, "minLength", path) : 0;
      const int max = s.contains("maxLength") ? count(s, "maxLength", path) : rx::kUnbounded;
      if (max != rx::kUnbounded && max < min) fail(path, "maxLength < minLength");
      if (std::max(min, max) > 10000) fail(path, "string lengths above 10000 not supported");
      return json_string(min, max);
    }
    if (t == "integer" || t == "number") {
      std::optional<double> lo = bound(s, "minimum", path), hi = bound(s, "maximum", path);
      const std::optional<double> xlo = bound(s, "exclusiveMinimum", path), xhi = bound(s, "exclusiveMaximum", path);
      if (t == "number") {
        if (xlo || xhi) fail(path, "exclusiveMinimum/exclusiveMaximum on numbers not supported (use integer bounds)");
        for (const auto& [b, key] : {std::pair{lo, "minimum"}, std::pair{hi, "maximum"}}) {
          if (b && std::floor(*b) != *b) fail(child(path, key), "fractional bounds on numbers not supported");
        }
        if (!lo && !hi) return any_number();
        if (lo && hi && *lo > *hi) fail(path, "minimum > maximum");
        return number_range(lo ? std::optional<int64_t>(int64_t(*lo)) : std::nullopt, hi ? std::optional<int64_t>(int64_t(*hi)) : std::nullopt);
      }
      std::optional<int64_t> ilo, ihi;
      if (lo) ilo = int64_t(std::ceil(*lo));
      if (xlo) ilo = std::max(ilo.value_or(INT64_MIN), int64_t(std::floor(*xlo)) + 1);
      if (hi) ihi = int64_t(std::floor(*hi));
      if (xhi) ihi = std::min(ihi.value_or(INT64_MAX), int64_t(std::ceil(*xhi)) - 1);
      if (!ilo && !ihi) return any_integer();
      if (ilo && ihi && *ilo > *ihi) fail(path, "no integer within the bounds");
      return integer_range(ilo, ihi);
    }
    if (t == "array") {
      const NodePtr item = s.contains("items") ? compile(s.at("items"), child(path, "items")) : any_value(kAnyValueDepth);
      const int min = s.contains("minItems") ? count(s, "minItems", path) : 0;
      const int max = s.contains("maxItems") ? count(s, "maxItems", path) : rx::kUnbounded;
      if (max != rx::kUnbounded && max < min) fail(path, "maxItems < minItems");
      return seq({lit("["), ws(), rx::list(item, separator(','), min, max), ws(), lit("]")});
    }
    return compile_object(s, path);
  }

  NodePtr compile_object(const J& s, const std::string& path) {
    const J* additional = s.contains("additionalProperties") ? &s.at("additionalProperties") : nullptr;
    if (additional && !additional->is_boolean() && !additional->is_object()) fail(child(path, "additionalProperties"), "expected a boolean or a schema");
    std::vector<std::string> required;
    if (s.contains("required")) {
      const J& r = s.at("required");
      if (!r.is_array()) fail(child(path, "required"), "expected an array of names");
      for (const J& name : r) {
        if (!name.is_string()) fail(child(path, "required"), "expected an array of names");
        required.push_back(name.get<std::string>());
      }
    }
    if (!s.contains("properties")) {
      if (!required.empty()) fail(child(path, "required"), "required properties need \"properties\"");
      if (additional && additional->is_object()) {
        const NodePtr value = compile(*additional, child(path, "additionalProperties"));
        return object_of(seq({json_string(0, rx::kUnbounded), ws(), lit(":"), ws(), value}), 0);
      }
      if (additional && !additional->get<bool>()) return seq({lit("{"), ws(), lit("}")});
      return object_of(seq({json_string(0, rx::kUnbounded), ws(), lit(":"), ws(), any_value(kAnyValueDepth - 1)}), 0);
    }
    const J& props = s.at("properties");
    if (!props.is_object()) fail(child(path, "properties"), "expected an object");
    for (const std::string& name : required) {
      if (!props.contains(name)) fail(child(path, "required"), "required property \"" + name + "\" is not in \"properties\"");
    }
    std::vector<NodePtr> members;
    std::vector<bool> is_required;
    for (const auto& [name, sub] : props.items()) {
      members.push_back(seq({lit(J(name).dump()), ws(), lit(":"), ws(), compile(sub, child(child(path, "properties"), name))}));
      is_required.push_back(std::find(required.begin(), required.end(), name) != required.end());
    }
    // The present members in order, comma-separated: the first present one, then each later
    // one preceded by a comma (optional ones may be skipped).
    const size_t n = members.size();
    std::vector<NodePtr> tails(n + 1);
    tails[n] = seq({});
    std::vector<NodePtr> rest;
    for (size_t i = n; i-- > 0;) {
      rest.insert(rest.begin(), is_required[i] ? seq({separator(','), members[i]}) : rx::optional(seq({separator(','), members[i]})));
      tails[i] = seq(rest);
    }
    NodePtr body = seq({});
    for (size_t i = n; i-- > 0;) {
      const NodePtr first_here = seq({members[i], tails[i + 1]});
      body = is_required[i] ? first_here : rx::alt({first_here, body});
    }
    return seq({lit("{"), ws(), body, ws(), lit("}")});
  }
};

}  // namespace

rx::NodePtr json_schema_expression(const nlohmann::ordered_json& schema) {
  SchemaCompiler c{schema, {}};
  return c.compile(schema, "#");
}

rx::NodePtr json_object_expression(int max_depth) {
  const NodePtr inner = any_value(std::max(max_depth - 1, 0));
  return object_of(seq({json_string(0, rx::kUnbounded), ws(), lit(":"), ws(), inner}), 0);
}

}  // namespace csq
