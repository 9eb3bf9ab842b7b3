// Jinja values with Python semantics: truthiness, equality, str()/repr() and json.dumps()
// as Jinja2 (running on Python) produces them. Dicts keep insertion order, like Python's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace csq::jinja {

class Value;
class Interpreter;

// Arguments of a call: positional, then keyword in call order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using Function = std::function<Value(Interpreter&, CallArgs&)>;

struct Dict;
using List = std::vector<Value>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(List items = {});
  static Value tuple(List items);
  static Value dict();
  static Value namespace_object();
  static Value function(std::string name, Function fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_tuple() const { return kind_ == Kind::List && tuple_; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::Bool ? int64_t(b_) : i_; }  // bool is an int in Python
  double as_double() const;                                                  // any number
  const std::string& as_string() const { return s_; }
  const List& as_list() const { return *list_; }
  List& as_list() { return *list_; }
  const Dict& as_dict() const { return *dict_; }
  Dict& as_dict() { return *dict_; }
  const Function& as_function() const { return *fn_; }
  // Undefined: why it is undefined (for errors); function: its name.
  const std::string& hint() const { return s_; }

  bool truthy() const;
  // Python's str(): what `{{ value }}` prints.
  std::string str() const;
  // Python's repr(): how a value prints inside a list or dict.
  std::string repr() const;
  // "dict object", "str object"... as Jinja2 names a type in errors.
  std::string type_name() const;

  static Value from_json(const nlohmann::ordered_json& j);

 private:
  Kind kind_ = Kind::Undefined;
  bool b_ = false;
  bool tuple_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> fn_;
};

// An ordered mapping. Keys are values (Python allows any hashable); lookups are linear,
// which is fast for the few keys of chat messages and tool schemas.
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  bool is_namespace = false;  // `namespace()`: the only object whose attributes can be set

  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value value);
};

// Python ==.
bool py_equal(const Value& a, const Value& b);

// Python json.dumps(value, ensure_ascii=False, indent=..., separators=..., sort_keys=...).
// `indent` nullopt means single-line; fails with csq::Error for values JSON cannot hold.
struct JsonFormat {
  std::optional<std::string> indent;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;  // escape non-ASCII as \uXXXX
};
std::string to_json(const Value& value, const JsonFormat& format);

// Python float repr ("0.1", "1e-05", "10.0", "inf").
std::string py_float_repr(double f);
// Python repr of a str: quotes chosen and characters escaped as Python does.
std::string py_string_repr(const std::string& s);

}  // namespace csq::jinja
