#include "tokenizer/jinja/builtins.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>

#include "base/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/unicode.h"

namespace csq::jinja {
namespace {

using Args = std::vector<std::optional<Value>>;

// Binds positional and keyword arguments to `names` like a Python signature.
Args bind(Interpreter& in, const std::string& fn, const CallArgs& args, std::initializer_list<const char*> names) {
  const std::vector<const char*> params(names);
  if (args.positional.size() > params.size())
    in.fail(fn + "() takes at most " + std::to_string(params.size()) + " argument(s), " +
            std::to_string(args.positional.size()) + " given");
  Args out(params.size());
  for (size_t i = 0; i < args.positional.size(); ++i) out[i] = args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    size_t p = 0;
    while (p < params.size() && key != params[p]) ++p;
    if (p == params.size()) in.fail(fn + "() got an unexpected keyword argument '" + key + "'");
    if (out[p]) in.fail(fn + "() got multiple values for argument '" + key + "'");
    out[p] = value;
  }
  return out;
}

Value or_default(const std::optional<Value>& v, Value dflt) { return v ? *v : std::move(dflt); }

const std::string& need_string(Interpreter& in, const Value& v, const std::string& what) {
  if (v.is_undefined()) in.fail(v.hint());
  if (!v.is_string()) in.fail(what + " expects a string, got " + v.type_name());
  return v.as_string();
}

int64_t need_int(Interpreter& in, const Value& v, const std::string& what) {
  if (!v.is_int() && !v.is_bool()) in.fail(what + " expects an integer, got " + v.type_name());
  return v.as_int();
}

size_t py_len(Interpreter& in, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return 0;
    case Value::Kind::String: return utf8_length(v.as_string());
    case Value::Kind::List: return v.as_list().size();
    case Value::Kind::Dict:
      if (!v.as_dict().is_namespace) return v.as_dict().items.size();
      break;
    default: break;
  }
  in.fail("object of type '" + v.type_name() + "' has no len()");
}

// Python str.title()-style case change of one code point.
std::string cp_case(char32_t c, bool upper) {
  std::string s;
  utf8_append(s, c);
  return upper ? py_upper(s) : py_lower(s);
}

std::string py_capitalize(const std::string& s) {
  const std::u32string u = utf8_decode(s);
  if (u.empty()) return s;
  std::string out;
  utf8_append(out, char32_t(u_totitle(UChar32(u[0]))));
  return out + py_lower(utf8_encode(u.substr(1)));
}

std::string py_title_method(const std::string& s) {  // str.title()
  std::string out;
  bool prev_cased = false;
  for (char32_t c : utf8_decode(s)) {
    if (prev_cased) out += cp_case(c, false);
    else utf8_append(out, char32_t(u_totitle(UChar32(c))));
    prev_cased = u_hasBinaryProperty(UChar32(c), UCHAR_CASED);
  }
  return out;
}

// Jinja's title filter: capitalise each word, words split at runs of [-\s({[<].
std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  const std::u32string u = utf8_decode(s);
  for (size_t i = 0; i < u.size(); ++i) {
    const char32_t c = u[i];
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_is_space(c);
    if (sep) {
      utf8_append(out, c);
      word_start = true;
    } else {
      out += cp_case(c, word_start);
      word_start = false;
    }
  }
  return out;
}

// str.split / str.rsplit.
Value py_split(Interpreter& in, const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  List parts;
  if (sep.is_none() || sep.is_undefined()) {
    std::u32string u = utf8_decode(s);
    if (from_right) std::reverse(u.begin(), u.end());
    size_t i = 0;
    const size_t n = u.size();
    while (true) {
      while (i < n && py_is_space(u[i])) ++i;
      if (i == n) break;
      if (maxsplit == 0) {
        parts.push_back(Value::string(""));
        std::u32string rest = u.substr(i);
        if (from_right) std::reverse(rest.begin(), rest.end());
        parts.back() = Value::string(utf8_encode(rest));
        break;
      }
      size_t j = i;
      while (j < n && !py_is_space(u[j])) ++j;
      std::u32string word = u.substr(i, j - i);
      if (from_right) std::reverse(word.begin(), word.end());
      parts.push_back(Value::string(utf8_encode(word)));
      if (maxsplit > 0) --maxsplit;
      i = j;
    }
    if (from_right) std::reverse(parts.begin(), parts.end());
    return Value::list(std::move(parts));
  }
  const std::string& d = need_string(in, sep, "split");
  if (d.empty()) in.fail("split(): empty separator");
  if (!from_right) {
    size_t pos = 0;
    while (maxsplit != 0) {
      const size_t hit = s.find(d, pos);
      if (hit == std::string::npos) break;
      parts.push_back(Value::string(s.substr(pos, hit - pos)));
      pos = hit + d.size();
      if (maxsplit > 0) --maxsplit;
    }
    parts.push_back(Value::string(s.substr(pos)));
    return Value::list(std::move(parts));
  }
  size_t end = s.size();
  while (maxsplit != 0 && end >= d.size()) {
    const size_t hit = s.rfind(d, end - d.size());
    if (hit == std::string::npos) break;
    parts.push_back(Value::string(s.substr(hit + d.size(), end - hit - d.size())));
    end = hit;
    if (maxsplit > 0) --maxsplit;
  }
  parts.push_back(Value::string(s.substr(0, end)));
  std::reverse(parts.begin(), parts.end());
  return Value::list(std::move(parts));
}

std::string py_replace(Interpreter& in, const std::string& s, const std::string& from, const std::string& to,
                       int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` around every character
    const std::u32string u = utf8_decode(s);
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || int64_t(i) < count) out += to;
      if (i < u.size()) utf8_append(out, u[i]);
      in.check_size(out.size());
    }
    return out;
  }
  size_t pos = 0;
  while (count != 0) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    in.check_size(out.size());
    pos = hit + from.size();
    if (count > 0) --count;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

bool starts_or_ends(Interpreter& in, const std::string& s, const Value& arg, bool start) {
  auto one = [&](const Value& v) {
    const std::string& p = need_string(in, v, start ? "startswith" : "endswith");
    return p.size() <= s.size() && (start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0);
  };
  if (arg.is_list()) {
    for (const auto& v : arg.as_list())
      if (one(v)) return true;
    return false;
  }
  return one(arg);
}

Value items_of(Interpreter& in, const Value& v) {
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict() || v.as_dict().is_namespace) in.fail("items: can only get item pairs from a mapping, got " + v.type_name());
  List out;
  for (const auto& [k, val] : v.as_dict().items) out.push_back(Value::tuple({k, val}));
  return Value::list(std::move(out));
}

// `a.b.0` attribute paths as map/selectattr/sort take them.
Value attribute_path(Interpreter& in, Value v, const std::string& path) {
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (v.is_undefined()) return v;
    v = numeric ? in.get_item(v, Value::integer(std::stoll(part))) : in.get_item(v, Value::string(part));
    if (dot == std::string::npos) return v;
    pos = dot + 1;
  }
}

// Python float(str): surrounding whitespace, underscores between digits, inf/nan.
std::optional<double> parse_float(const std::string& text) {
  const std::string t = py_strip(text, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_' && i > 0 && i + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(t[i + 1])))
      continue;
    clean += t[i];
  }
  if (clean.empty() || std::isspace(static_cast<unsigned char>(clean[0]))) return std::nullopt;
  const std::string lower = py_lower(clean);
  const std::string body = (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    const double v = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -v : v;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::string t = py_strip(text, nullptr, true, true);
  std::erase(t, '_');
  if (t.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(t.c_str(), &end, base);
  if (errno == ERANGE || end != t.c_str() + t.size() || std::isspace(static_cast<unsigned char>(t[0])))
    return std::nullopt;
  return v;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Sort key for sort/dictsort/unique/min/max: strings fold case unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.as_string()));
  return v;
}

// select/reject/selectattr/rejectattr: args[0] (after the attribute for *attr) names a test.
Value select_items(Interpreter& in, const Value& seq, CallArgs& args, bool with_attr, bool keep_matching) {
  size_t next = 0;
  std::string attr;
  if (with_attr) {
    if (args.positional.empty()) in.fail("selectattr/rejectattr need an attribute name");
    attr = need_string(in, args.positional[next++], "selectattr");
  }
  std::optional<std::string> test;
  if (next < args.positional.size()) test = need_string(in, args.positional[next++], "select");
  if (test && !has_test(*test)) in.fail("unknown test '" + *test + "'");
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + long(next), args.positional.end());
  test_args.keyword = args.keyword;
  List out;
  for (const auto& item : in.iterate(seq)) {
    in.count_iteration();
    const Value subject = with_attr ? attribute_path(in, item, attr) : item;
    CallArgs a = test_args;
    const bool match = test ? apply_test(in, *test, subject, a) : subject.truthy();
    if (match == keep_matching) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filter_map(Interpreter& in, const Value& seq, CallArgs& args) {
  List out;
  for (const auto& [k, v] : args.keyword) {
    if (k != "attribute" && k != "default") in.fail("map() got an unexpected keyword argument '" + k + "'");
  }
  const Value* attribute = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, v] : args.keyword) (k == "attribute" ? attribute : dflt) = &v;
  if (attribute) {
    const std::string& path = need_string(in, *attribute, "map");
    for (const auto& item : in.iterate(seq)) {
      in.count_iteration();
      Value v = attribute_path(in, item, path);
      if (v.is_undefined() && dflt) v = *dflt;
      out.push_back(std::move(v));
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty()) in.fail("map() needs a filter name or attribute=");
  const std::string name = need_string(in, args.positional[0], "map");
  if (!has_filter(name)) in.fail("unknown filter '" + name + "'");
  for (const auto& item : in.iterate(seq)) {
    in.count_iteration();
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    out.push_back(apply_filter(in, name, item, rest));
  }
  return Value::list(std::move(out));
}

Value filter_tojson(Interpreter& in, const Value& v, CallArgs& args) {
  // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
  const Args a = bind(in, "tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonFormat fmt;
  fmt.ensure_ascii = a[0] && a[0]->truthy();
  if (a[1] && !a[1]->is_none()) {
    if (a[1]->is_string()) fmt.indent = a[1]->as_string();
    else fmt.indent = std::string(size_t(std::max<int64_t>(0, need_int(in, *a[1], "tojson indent"))), ' ');
    fmt.item_separator = ",";
  }
  if (a[2] && !a[2]->is_none()) {
    if (!a[2]->is_list() || a[2]->as_list().size() != 2) in.fail("tojson separators must be a pair of strings");
    fmt.item_separator = need_string(in, a[2]->as_list()[0], "tojson separators");
    fmt.key_separator = need_string(in, a[2]->as_list()[1], "tojson separators");
  }
  fmt.sort_keys = a[3] && a[3]->truthy();
  try {
    std::string s = to_json(v, fmt);
    in.check_size(s.size());
    return Value::string(std::move(s));
  } catch (const Error& e) {
    in.fail(e.what());
  }
}

Value filter_indent(Interpreter& in, const Value& v, CallArgs& args) {
  const Args a = bind(in, "indent", args, {"width", "first", "blank"});
  std::string pad = "    ";
  if (a[0]) pad = a[0]->is_string() ? a[0]->as_string() : std::string(size_t(std::max<int64_t>(0, need_int(in, *a[0], "indent"))), ' ');
  const bool first = a[1] && a[1]->truthy();
  const bool blank = a[2] && a[2]->truthy();
  const std::string s = v.str();
  std::vector<std::string> lines;
  size_t pos = 0;
  while (true) {
    const size_t nl = s.find('\n', pos);
    lines.push_back(s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    const bool indent_it = (i > 0 || first) && (blank || !py_strip(lines[i], nullptr, true, true).empty());
    if (indent_it) out += pad;
    out += lines[i];
  }
  in.check_size(out.size());
  return Value::string(std::move(out));
}

Value filter_sort(Interpreter& in, const Value& v, CallArgs& args) {
  const Args a = bind(in, "sort", args, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = a[0] && a[0]->truthy();
  const bool cs = a[1] && a[1]->truthy();
  std::string attr = a[2] && !a[2]->is_none() ? need_string(in, *a[2], "sort") : "";
  std::vector<Value> items = in.iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& item : items) keyed.emplace_back(sort_key(attr.empty() ? item : attribute_path(in, item, attr), cs), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less_than(in, y.first, x.first) : less_than(in, x.first, y.first);
  });
  List out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Value filter_dictsort(Interpreter& in, const Value& v, CallArgs& args) {
  const Args a = bind(in, "dictsort", args, {"case_sensitive", "by", "reverse"});
  const bool cs = a[0] && a[0]->truthy();
  const std::string by = a[1] ? need_string(in, *a[1], "dictsort") : "key";
  if (by != "key" && by != "value") in.fail("dictsort: 'by' must be 'key' or 'value'");
  const bool reverse = a[2] && a[2]->truthy();
  List pairs = items_of(in, v).as_list();
  const size_t idx = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const Value kx = sort_key(x.as_list()[idx], cs), ky = sort_key(y.as_list()[idx], cs);
    return reverse ? less_than(in, ky, kx) : less_than(in, kx, ky);
  });
  return Value::list(std::move(pairs));
}

Value filter_minmax(Interpreter& in, const Value& v, CallArgs& args, bool max) {
  const Args a = bind(in, max ? "max" : "min", args, {"case_sensitive", "attribute"});
  const bool cs = a[0] && a[0]->truthy();
  const std::string attr = a[1] && !a[1]->is_none() ? need_string(in, *a[1], "max") : "";
  std::optional<Value> best, best_key;
  for (const auto& item : in.iterate(v)) {
    Value key = sort_key(attr.empty() ? item : attribute_path(in, item, attr), cs);
    if (!best || (max ? less_than(in, *best_key, key) : less_than(in, key, *best_key))) {
      best = item;
      best_key = std::move(key);
    }
  }
  return best ? *best : Value::undefined("no " + std::string(max ? "largest" : "smallest") + " item, sequence was empty");
}

using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> table = [] {
    std::map<std::string, FilterFn> t;
    t["abs"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "abs", args, {});
      if (v.is_float()) return Value::number(std::fabs(v.as_double()));
      if (!v.is_number()) in.fail("bad operand type for abs(): '" + v.type_name() + "'");
      if (v.as_int() == INT64_MIN) in.fail("integer overflow");
      return Value::integer(std::llabs(v.as_int()));
    };
    t["attr"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "attr", args, {"name"});
      if (!a[0]) in.fail("attr() needs a name");
      return in.get_attr(v, need_string(in, *a[0], "attr"));
    };
    t["capitalize"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "capitalize", args, {});
      return Value::string(py_capitalize(v.str()));
    };
    t["length"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "length", args, {});
      return Value::integer(int64_t(py_len(in, v)));
    };
    t["count"] = t["length"];
    t["default"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "default", args, {"default_value", "boolean"});
      const bool boolean = a[1] && a[1]->truthy();
      if (v.is_undefined() || (boolean && !v.truthy())) return or_default(a[0], Value::string(""));
      return v;
    };
    t["d"] = t["default"];
    t["dictsort"] = filter_dictsort;
    t["escape"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "escape", args, {});
      return Value::string(html_escape(v.str()));
    };
    t["e"] = t["escape"];
    t["first"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "first", args, {});
      std::vector<Value> items = in.iterate(v);
      return items.empty() ? Value::undefined("no first item, sequence was empty") : items.front();
    };
    t["last"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "last", args, {});
      std::vector<Value> items = in.iterate(v);
      return items.empty() ? Value::undefined("no last item, sequence was empty") : items.back();
    };
    t["float"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "float", args, {"default"});
      if (v.is_number()) return Value::number(v.as_double());
      if (v.is_string())
        if (auto f = parse_float(v.as_string())) return Value::number(*f);
      return or_default(a[0], Value::number(0.0));
    };
    t["int"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "int", args, {"default", "base"});
      const int base = a[1] ? int(need_int(in, *a[1], "int base")) : 10;
      if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
      if (v.is_float() && std::isfinite(v.as_double()) && std::fabs(v.as_double()) < 9.2e18)
        return Value::integer(int64_t(v.as_double()));
      if (v.is_string()) {
        if (auto i = parse_int(v.as_string(), base)) return Value::integer(*i);
        if (auto f = parse_float(v.as_string()); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18)
          return Value::integer(int64_t(*f));
      }
      return or_default(a[0], Value::integer(0));
    };
    t["indent"] = filter_indent;
    t["items"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "items", args, {});
      return items_of(in, v);
    };
    t["join"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "join", args, {"d", "attribute"});
      const std::string sep = a[0] ? a[0]->str() : "";
      std::string out;
      bool first = true;
      for (const auto& item : in.iterate(v)) {
        if (!first) out += sep;
        first = false;
        out += (a[1] && !a[1]->is_none() ? attribute_path(in, item, a[1]->str()) : item).str();
        in.check_size(out.size());
      }
      return Value::string(std::move(out));
    };
    t["list"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "list", args, {});
      return Value::list(in.iterate(v));
    };
    t["lower"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "lower", args, {});
      return Value::string(py_lower(v.str()));
    };
    t["upper"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "upper", args, {});
      return Value::string(py_upper(v.str()));
    };
    t["map"] = filter_map;
    t["max"] = [](Interpreter& in, const Value& v, CallArgs& args) { return filter_minmax(in, v, args, true); };
    t["min"] = [](Interpreter& in, const Value& v, CallArgs& args) { return filter_minmax(in, v, args, false); };
    t["select"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_items(in, v, args, false, true); };
    t["reject"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_items(in, v, args, false, false); };
    t["selectattr"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_items(in, v, args, true, true); };
    t["rejectattr"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_items(in, v, args, true, false); };
    t["replace"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "replace", args, {"old", "new", "count"});
      if (!a[0] || !a[1]) in.fail("replace() needs old and new strings");
      const int64_t count = a[2] && !a[2]->is_none() ? need_int(in, *a[2], "replace count") : -1;
      return Value::string(py_replace(in, v.str(), a[0]->str(), a[1]->str(), count));
    };
    t["reverse"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "reverse", args, {});
      if (v.is_string()) {
        std::u32string u = utf8_decode(v.as_string());
        std::reverse(u.begin(), u.end());
        return Value::string(utf8_encode(u));
      }
      std::vector<Value> items = in.iterate(v);
      std::reverse(items.begin(), items.end());
      return Value::list(std::move(items));
    };
    t["round"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "round", args, {"precision", "method"});
      if (!v.is_number()) in.fail("round expects a number, got " + v.type_name());
      const int64_t precision = a[0] ? need_int(in, *a[0], "round precision") : 0;
      const std::string method = a[1] ? a[1]->str() : "common";
      const double scale = std::pow(10.0, double(precision));
      const double x = v.as_double() * scale;
      double r;
      if (method == "common") r = std::nearbyint(x);  // Python round(): half to even
      else if (method == "ceil") r = std::ceil(x);
      else if (method == "floor") r = std::floor(x);
      else in.fail("round: method must be 'common', 'ceil' or 'floor'");
      return Value::number(r / scale);
    };
    t["safe"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "safe", args, {});
      return v;
    };
    t["sort"] = filter_sort;
    t["string"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "string", args, {});
      return Value::string(v.str());
    };
    t["sum"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "sum", args, {"attribute", "start"});
      Value total = or_default(a[1], Value::integer(0));
      for (const auto& item : in.iterate(v))
        total = binary_op(in, "+", total, a[0] && !a[0]->is_none() ? attribute_path(in, item, a[0]->str()) : item);
      return total;
    };
    t["title"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      bind(in, "title", args, {});
      return Value::string(jinja_title(v.str()));
    };
    t["tojson"] = filter_tojson;
    t["trim"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "trim", args, {"chars"});
      const std::string chars = a[0] && !a[0]->is_none() ? a[0]->str() : "";
      return Value::string(py_strip(v.str(), a[0] && !a[0]->is_none() ? &chars : nullptr, true, true));
    };
    t["unique"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Args a = bind(in, "unique", args, {"case_sensitive", "attribute"});
      const bool cs = a[0] && a[0]->truthy();
      List out, seen;
      for (const auto& item : in.iterate(v)) {
        Value key = sort_key(a[1] && !a[1]->is_none() ? attribute_path(in, item, a[1]->str()) : item, cs);
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, key); })) continue;
        seen.push_back(std::move(key));
        out.push_back(item);
      }
      return Value::list(std::move(out));
    };
    return t;
  }();
  return table;
}

using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);

const Value& one_arg(Interpreter& in, const std::string& test, CallArgs& args) {
  if (args.positional.size() != 1 || !args.keyword.empty()) in.fail("test '" + test + "' takes one argument");
  return args.positional[0];
}

const std::map<std::string, TestFn>& tests() {
  static const std::map<std::string, TestFn> table = [] {
    std::map<std::string, TestFn> t;
    t["defined"] = [](Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); };
    t["undefined"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); };
    t["none"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_none(); };
    t["boolean"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); };
    t["true"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); };
    t["false"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); };
    t["integer"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_int(); };
    t["float"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_float(); };
    t["number"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_number(); };
    t["string"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_string(); };
    t["mapping"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_dict() && !v.as_dict().is_namespace; };
    t["iterable"] = [](Interpreter&, const Value& v, CallArgs&) {
      return v.is_undefined() || v.is_list() || v.is_string() || (v.is_dict() && !v.as_dict().is_namespace);
    };
    t["sequence"] = [](Interpreter&, const Value& v, CallArgs&) {
      return v.is_list() || v.is_string() || (v.is_dict() && !v.as_dict().is_namespace);
    };
    t["callable"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_function(); };
    t["odd"] = [](Interpreter& in, const Value& v, CallArgs&) { return need_int(in, v, "odd") % 2 != 0; };
    t["even"] = [](Interpreter& in, const Value& v, CallArgs&) { return need_int(in, v, "even") % 2 == 0; };
    t["divisibleby"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const int64_t d = need_int(in, one_arg(in, "divisibleby", args), "divisibleby");
      if (d == 0) in.fail("integer division or modulo by zero");
      return need_int(in, v, "divisibleby") % d == 0;
    };
    t["eq"] = [](Interpreter& in, const Value& v, CallArgs& args) { return py_equal(v, one_arg(in, "eq", args)); };
    t["ne"] = [](Interpreter& in, const Value& v, CallArgs& args) { return !py_equal(v, one_arg(in, "ne", args)); };
    t["lt"] = [](Interpreter& in, const Value& v, CallArgs& args) { return less_than(in, v, one_arg(in, "lt", args)); };
    t["gt"] = [](Interpreter& in, const Value& v, CallArgs& args) { return less_than(in, one_arg(in, "gt", args), v); };
    t["le"] = [](Interpreter& in, const Value& v, CallArgs& args) { return !less_than(in, one_arg(in, "le", args), v); };
    t["ge"] = [](Interpreter& in, const Value& v, CallArgs& args) { return !less_than(in, v, one_arg(in, "ge", args)); };
    t["equalto"] = t["=="] = t["eq"];
    t["!="] = t["ne"];
    t["lessthan"] = t["<"] = t["lt"];
    t["greaterthan"] = t[">"] = t["gt"];
    t["<="] = t["le"];
    t[">="] = t["ge"];
    t["in"] = [](Interpreter& in, const Value& v, CallArgs& args) { return contains(in, one_arg(in, "in", args), v); };
    t["lower"] = [](Interpreter&, const Value& v, CallArgs&) {
      return v.is_string() && py_lower(v.as_string()) == v.as_string() && py_upper(v.as_string()) != v.as_string();
    };
    t["upper"] = [](Interpreter&, const Value& v, CallArgs&) {
      return v.is_string() && py_upper(v.as_string()) == v.as_string() && py_lower(v.as_string()) != v.as_string();
    };
    t["sameas"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      const Value& o = one_arg(in, "sameas", args);
      if (v.kind() != o.kind()) return false;
      switch (v.kind()) {
        case Value::Kind::None: case Value::Kind::Undefined: return true;
        case Value::Kind::Bool: return v.as_bool() == o.as_bool();
        case Value::Kind::List: return &v.as_list() == &o.as_list();
        case Value::Kind::Dict: return &v.as_dict() == &o.as_dict();
        default: return py_equal(v, o);
      }
    };
    t["escaped"] = [](Interpreter&, const Value&, CallArgs&) { return false; };
    return t;
  }();
  return table;
}

// ---- methods of str, dict and list ----

Value str_method(const Value& self, const std::string& name) {
  const std::string s = self.as_string();
  auto bound = [&](Function fn) { return Value::function("str." + name, std::move(fn)); };
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return bound([s, start, name](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, name, args, {"prefix"});
      if (!a[0]) in.fail(name + "() takes exactly one argument");
      return Value::boolean(starts_or_ends(in, s, *a[0], start));
    });
  }
  if (name == "split" || name == "rsplit") {
    const bool right = name == "rsplit";
    return bound([s, right, name](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, name, args, {"sep", "maxsplit"});
      const int64_t maxsplit = a[1] ? need_int(in, *a[1], name + " maxsplit") : -1;
      return py_split(in, s, or_default(a[0], Value::none()), maxsplit, right);
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool left = name != "rstrip", right = name != "lstrip";
    return bound([s, left, right, name](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, name, args, {"chars"});
      if (a[0] && !a[0]->is_none()) {
        const std::string chars = need_string(in, *a[0], name);
        return Value::string(py_strip(s, &chars, left, right));
      }
      return Value::string(py_strip(s, nullptr, left, right));
    });
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "splitlines" ||
      name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper") {
    return bound([s, name](Interpreter& in, CallArgs& args) {
      bind(in, name, args, {});
      if (name == "upper") return Value::string(py_upper(s));
      if (name == "lower") return Value::string(py_lower(s));
      if (name == "title") return Value::string(py_title_method(s));
      if (name == "capitalize") return Value::string(py_capitalize(s));
      if (name == "islower" || name == "isupper") {
        const bool lower = name == "islower";
        return Value::boolean((lower ? py_lower(s) == s : py_upper(s) == s) &&
                              (lower ? py_upper(s) != s : py_lower(s) != s));
      }
      if (name == "splitlines") {
        List lines;
        size_t pos = 0;
        while (pos < s.size()) {
          size_t nl = s.find_first_of("\r\n", pos);
          if (nl == std::string::npos) {
            lines.push_back(Value::string(s.substr(pos)));
            break;
          }
          lines.push_back(Value::string(s.substr(pos, nl - pos)));
          pos = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
        }
        return Value::list(std::move(lines));
      }
      const std::u32string u = utf8_decode(s);
      if (u.empty()) return Value::boolean(false);
      return Value::boolean(std::all_of(u.begin(), u.end(), [&](char32_t c) {
        if (name == "isdigit") return bool(u_isdigit(UChar32(c)));
        if (name == "isalpha") return bool(u_isalpha(UChar32(c)));
        if (name == "isalnum") return bool(u_isalnum(UChar32(c)));
        return py_is_space(c);
      }));
    });
  }
  if (name == "replace") {
    return bound([s](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, "replace", args, {"old", "new", "count"});
      if (!a[0] || !a[1]) in.fail("replace() needs old and new strings");
      const int64_t count = a[2] ? need_int(in, *a[2], "replace count") : -1;
      return Value::string(py_replace(in, s, need_string(in, *a[0], "replace"), need_string(in, *a[1], "replace"), count));
    });
  }
  if (name == "find" || name == "rfind" || name == "count") {
    return bound([s, name](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, name, args, {"sub"});
      if (!a[0]) in.fail(name + "() takes exactly one argument");
      const std::string& sub = need_string(in, *a[0], name);
      if (name == "count") {
        if (sub.empty()) return Value::integer(int64_t(utf8_length(s)) + 1);
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value::integer(n);
      }
      const size_t p = name == "find" ? s.find(sub) : s.rfind(sub);
      return Value::integer(p == std::string::npos ? -1 : int64_t(utf8_length(s.substr(0, p))));
    });
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const bool prefix = name == "removeprefix";
    return bound([s, prefix, name](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, name, args, {"affix"});
      if (!a[0]) in.fail(name + "() takes exactly one argument");
      const std::string& x = need_string(in, *a[0], name);
      if (x.size() <= s.size() && (prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0))
        return Value::string(prefix ? s.substr(x.size()) : s.substr(0, s.size() - x.size()));
      return Value::string(s);
    });
  }
  if (name == "join") {
    return bound([s](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, "join", args, {"iterable"});
      if (!a[0]) in.fail("join() takes exactly one argument");
      std::string out;
      size_t i = 0;
      for (const auto& item : in.iterate(*a[0])) {
        if (!item.is_string())
          in.fail("sequence item " + std::to_string(i) + ": expected str instance, " + item.type_name() + " found");
        if (i++) out += s;
        out += item.as_string();
        in.check_size(out.size());
      }
      return Value::string(std::move(out));
    });
  }
  return Value::undefined();
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return Value::function("dict." + name, [self, name](Interpreter& in, CallArgs& args) {
      bind(in, name, args, {});
      if (name == "items") return items_of(in, self);
      List out;
      for (const auto& [k, v] : self.as_dict().items) out.push_back(name == "keys" ? k : v);
      return Value::list(std::move(out));
    });
  }
  if (name == "get") {
    return Value::function("dict.get", [self](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, "get", args, {"key", "default"});
      if (!a[0]) in.fail("get() needs a key");
      const Value* v = self.as_dict().find(*a[0]);
      return v ? *v : or_default(a[1], Value::none());
    });
  }
  return Value::undefined();
}

Value list_method(const Value& self, const std::string& name) {
  if (name == "index" || name == "count") {
    return Value::function("list." + name, [self, name](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, name, args, {"value"});
      if (!a[0]) in.fail(name + "() takes exactly one argument");
      int64_t n = 0;
      for (size_t i = 0; i < self.as_list().size(); ++i) {
        if (!py_equal(self.as_list()[i], *a[0])) continue;
        if (name == "index") return Value::integer(int64_t(i));
        ++n;
      }
      if (name == "index") in.fail(a[0]->repr() + " is not in list");
      return Value::integer(n);
    });
  }
  return Value::undefined();
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) != 0; }
bool has_test(const std::string& name) { return tests().count(name) != 0; }

Value apply_filter(Interpreter& in, const std::string& name, const Value& value, CallArgs& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) in.fail("unknown filter '" + name + "'");
  return it->second(in, value, args);
}

bool apply_test(Interpreter& in, const std::string& name, const Value& value, CallArgs& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) in.fail("unknown test '" + name + "'");
  return it->second(in, value, args);
}

Value method(const Value& self, const std::string& name) {
  if (self.is_string()) return str_method(self, name);
  if (self.is_dict()) return dict_method(self, name);
  if (self.is_list()) return list_method(self, name);
  return Value::undefined();
}

Value global(const std::string& name) {
  if (name == "range") {
    return Value::function("range", [](Interpreter& in, CallArgs& args) {
      if (!args.keyword.empty() || args.positional.empty() || args.positional.size() > 3)
        in.fail("range() takes 1 to 3 integer arguments");
      int64_t start = 0, stop, step = 1;
      if (args.positional.size() == 1) {
        stop = need_int(in, args.positional[0], "range");
      } else {
        start = need_int(in, args.positional[0], "range");
        stop = need_int(in, args.positional[1], "range");
        if (args.positional.size() == 3) step = need_int(in, args.positional[2], "range");
      }
      if (step == 0) in.fail("range() arg 3 must not be zero");
      List out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (out.size() >= 100000) in.fail("range() too big (more than 100000 items, as Jinja2's sandbox)");
        in.count_iteration();
        out.push_back(Value::integer(i));
      }
      return Value::list(std::move(out));
    });
  }
  if (name == "namespace" || name == "dict") {
    const bool ns = name == "namespace";
    return Value::function(name, [ns, name](Interpreter& in, CallArgs& args) {
      Value out = ns ? Value::namespace_object() : Value::dict();
      if (args.positional.size() > 1) in.fail(name + "() takes at most one positional argument");
      if (!args.positional.empty()) {
        const Value& init = args.positional[0];
        if (!init.is_dict()) in.fail(name + "() positional argument must be a mapping");
        for (const auto& [k, v] : init.as_dict().items) out.as_dict().set(k, v);
      }
      for (const auto& [k, v] : args.keyword) out.as_dict().set(Value::string(k), v);
      return out;
    });
  }
  if (name == "raise_exception") {
    return Value::function(name, [](Interpreter& in, CallArgs& args) -> Value {
      const Args a = bind(in, "raise_exception", args, {"message"});
      in.fail("raise_exception: " + (a[0] ? a[0]->str() : std::string()));
    });
  }
  if (name == "strftime_now") {
    return Value::function(name, [](Interpreter& in, CallArgs& args) {
      const Args a = bind(in, "strftime_now", args, {"format"});
      if (!a[0]) in.fail("strftime_now() needs a format");
      const std::string& fmt = need_string(in, *a[0], "strftime_now");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[512];
      const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
      if (n == 0 && !fmt.empty()) in.fail("strftime_now(): format produces no output or is too long");
      return Value::string(std::string(buf, n));
    });
  }
  return Value::undefined();
}

}  // namespace csq::jinja
