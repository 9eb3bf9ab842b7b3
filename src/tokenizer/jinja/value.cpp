#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "tokenizer/jinja/unicode.h"

namespace csq::jinja {

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::move(hint);
  return v;
}
Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.b_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::Int;
  v.i_ = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::Float;
  v.f_ = f;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.s_ = std::move(s);
  return v;
}
Value Value::list(List items) {
  Value v;
  v.kind_ = Kind::List;
  v.list_ = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::tuple(List items) {
  Value v = list(std::move(items));
  v.tuple_ = true;
  return v;
}
Value Value::dict() {
  Value v;
  v.kind_ = Kind::Dict;
  v.dict_ = std::make_shared<Dict>();
  return v;
}
Value Value::namespace_object() {
  Value v = dict();
  v.dict_->is_namespace = true;
  return v;
}
Value Value::function(std::string name, Function fn) {
  Value v;
  v.kind_ = Kind::Function;
  v.s_ = std::move(name);
  v.fn_ = std::make_shared<Function>(std::move(fn));
  return v;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::Float: return f_;
    case Kind::Int: return double(i_);
    case Kind::Bool: return b_ ? 1.0 : 0.0;
    default: return 0;
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined: case Kind::None: return false;
    case Kind::Bool: return b_;
    case Kind::Int: return i_ != 0;
    case Kind::Float: return f_ != 0;
    case Kind::String: return !s_.empty();
    case Kind::List: return !list_->empty();
    case Kind::Dict: return dict_->is_namespace || !dict_->items.empty();
    case Kind::Function: return true;
  }
  return false;
}

std::string py_float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, then Python's layout: fixed for 1e-4 <= |f| < 1e16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(e_pos + 1));
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp >= 0) {
      if (digits.size() <= size_t(exp) + 1) {
        out = digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
      }
    } else {
      out = "0." + std::string(size_t(-exp - 1), '0') + digits;
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return sign + out + exp_buf;
}

std::string py_string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : utf8_decode(s)) {
    char buf[16];
    if (c == char32_t(quote) || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x80 ? (c < 0x20 || c == 0x7F) : !py_is_printable(c)) {
      if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(c));
      out += buf;
    } else {
      utf8_append(out, c);
    }
  }
  out += quote;
  return out;
}

std::string Value::str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::String: return s_;
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return b_ ? "True" : "False";
    case Kind::Int: return std::to_string(i_);
    case Kind::Float: return py_float_repr(f_);
    case Kind::String: return py_string_repr(s_);
    case Kind::List: {
      std::string out = tuple_ ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i) out += ", ";
        out += (*list_)[i].repr();
      }
      if (tuple_ && list_->size() == 1) out += ",";
      return out + (tuple_ ? ")" : "]");
    }
    case Kind::Dict: {
      std::string out = dict_->is_namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, v] : dict_->items) {
        if (!first) out += ", ";
        first = false;
        out += k.repr() + ": " + v.repr();
      }
      return out + (dict_->is_namespace ? "}>" : "}");
    }
    case Kind::Function: return "<function " + s_ + ">";
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "NoneType object";
    case Kind::Bool: return "bool object";
    case Kind::Int: return "int object";
    case Kind::Float: return "float object";
    case Kind::String: return "str object";
    case Kind::List: return tuple_ ? "tuple object" : "list object";
    case Kind::Dict: return dict_->is_namespace ? "Namespace object" : "dict object";
    case Kind::Function: return "function";
  }
  return "object";
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > uint64_t(INT64_MAX)) fail_input("jinja: integer " + std::to_string(u) + " is out of range");
      return integer(int64_t(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = dict();
      d.dict_->items.reserve(j.size());
      for (const auto& [k, v] : j.items()) d.dict_->items.emplace_back(string(k), from_json(v));
      return d;
    }
    default: fail_input("jinja: unsupported JSON value (binary or discarded)");
  }
}

const Value* Dict::find(const Value& key) const {
  for (const auto& item : items)
    if (py_equal(item.first, key)) return &item.second;
  return nullptr;
}

const Value* Dict::find(const std::string& key) const {
  for (const auto& item : items)
    if (item.first.is_string() && item.first.as_string() == key) return &item.second;
  return nullptr;
}

void Dict::set(const Value& key, Value value) {
  for (auto& item : items) {
    if (py_equal(item.first, key)) {
      item.second = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

bool py_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::Undefined: case K::None: return true;
    case K::String: return a.as_string() == b.as_string();
    case K::List: {
      // Python: a list never equals a tuple.
      if (a.is_tuple() != b.is_tuple() || a.as_list().size() != b.as_list().size()) return false;
      for (size_t i = 0; i < a.as_list().size(); ++i)
        if (!py_equal(a.as_list()[i], b.as_list()[i])) return false;
      return true;
    }
    case K::Dict: {
      if (&a.as_dict() == &b.as_dict()) return true;
      if (a.as_dict().is_namespace || b.as_dict().is_namespace) return false;
      if (a.as_dict().items.size() != b.as_dict().items.size()) return false;
      for (const auto& [k, v] : a.as_dict().items) {
        const Value* other = b.as_dict().find(k);
        if (!other || !py_equal(v, *other)) return false;
      }
      return true;
    }
    case K::Function: return &a.as_function() == &b.as_function();
    default: return false;
  }
}

namespace {

// One byte of a JSON string body (UTF-8 bytes >= 0x80 pass through unchanged).
void json_char(std::string& out, char ch) {
  const unsigned char c = static_cast<unsigned char>(ch);
  switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
        out += buf;
      } else {
        out += ch;
      }
  }
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  if (!ensure_ascii) {
    for (char c : s) json_char(out, c);
  } else {
    for (char32_t c : utf8_decode(s)) {
      char buf[16];
      if (c < 0x80) {
        json_char(out, char(c));
        continue;
      }
      if (c < 0x10000) {
        std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      } else {  // a UTF-16 surrogate pair, as Python writes it
        const unsigned v = unsigned(c) - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      }
      out += buf;
    }
  }
  out += '"';
}

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  return py_float_repr(f);
}

// A dict key as json.dumps converts it: str stays, numbers/bools/None become strings.
std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Value::Kind::String: return k.as_string();
    case Value::Kind::Bool: return k.as_bool() ? "true" : "false";
    case Value::Kind::None: return "null";
    case Value::Kind::Int: return std::to_string(k.as_int());
    case Value::Kind::Float: return json_float(k.as_double());
    default: fail_input("jinja: tojson: keys must be str, int, float, bool or None, not " + k.type_name());
  }
}

void dump(std::string& out, const Value& v, const JsonFormat& fmt, int depth) {
  if (depth > 512) fail_input("jinja: tojson: value nested too deeply");
  const bool pretty = fmt.indent.has_value();
  auto newline = [&](int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *fmt.indent;
  };
  switch (v.kind()) {
    case Value::Kind::None: out += "null"; return;
    case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::Int: out += std::to_string(v.as_int()); return;
    case Value::Kind::Float: out += json_float(v.as_double()); return;
    case Value::Kind::String: json_string(out, v.as_string(), fmt.ensure_ascii); return;
    case Value::Kind::List: {
      const List& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += fmt.item_separator;
        if (pretty) newline(depth + 1);
        dump(out, items[i], fmt, depth + 1);
      }
      if (pretty) newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::Dict: {
      if (v.as_dict().is_namespace) break;
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [k, val] : v.as_dict().items) items.emplace_back(json_key(k), &val);
      if (items.empty()) {
        out += "{}";
        return;
      }
      if (fmt.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += fmt.item_separator;
        if (pretty) newline(depth + 1);
        json_string(out, items[i].first, fmt.ensure_ascii);
        out += fmt.key_separator;
        dump(out, *items[i].second, fmt, depth + 1);
      }
      if (pretty) newline(depth);
      out += '}';
      return;
    }
    default: break;
  }
  fail_input("jinja: tojson: object of type " + (v.is_undefined() ? std::string("Undefined") : v.type_name()) +
             " is not JSON serializable");
}

}  // namespace

std::string to_json(const Value& value, const JsonFormat& format) {
  std::string out;
  dump(out, value, format, 0);
  return out;
}

}  // namespace csq::jinja
