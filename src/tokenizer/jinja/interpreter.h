// Tree-walking evaluator of a parsed template. Internal to the jinja directory: users go
// through jinja::Template (template.h); builtins.cpp calls back into it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/template.h"
#include "tokenizer/jinja/value.h"

namespace csq::jinja {

// Variables of one scope. Macros keep their defining scope alive, so scopes are shared.
struct Scope {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Scope> parent;

  Value* find_local(const std::string& name);
};

class Interpreter {
 public:
  Interpreter(const Program& program, const Limits& limits, const Value& context);

  std::string run();

  // Errors name the template and the line being evaluated.
  [[noreturn]] void fail(const std::string& what) const;
  // Called once per loop iteration or generated element; fails past Limits::max_iterations.
  void count_iteration();
  // Fails if a string or list about to be built would exceed the output limit.
  void check_size(size_t n) const;

  Value call(const Value& callee, CallArgs& args);
  Value get_attr(const Value& obj, const std::string& name);  // obj.name
  Value get_item(const Value& obj, const Value& key);         // obj[key]

  // Iterates a value as a Python for loop would (list items, dict keys, str characters).
  std::vector<Value> iterate(const Value& v);

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, const std::shared_ptr<Scope>& scope);
  Flow exec(const Stmt& s, const std::shared_ptr<Scope>& scope);
  void exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope);
  std::string capture(const Body& body, const std::shared_ptr<Scope>& scope);
  Value make_macro(const Stmt& s, const std::shared_ptr<Scope>& scope);
  void assign(const Target& t, Value v, const std::shared_ptr<Scope>& scope);
  void emit(const std::string& text);

  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_binary(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_filter(const Expr& e, Value subject, const std::shared_ptr<Scope>& scope);
  CallArgs eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const std::shared_ptr<Scope>& scope);

  const Program& program_;
  Limits limits_;
  Value context_;
  std::string out_;
  int line_ = 0;
  int call_depth_ = 0;
  int64_t iterations_ = 0;
};

// Python binary operators and comparisons, shared with the filters (sum, sort, max...).
Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b);
// Python `<` (fails for unorderable types).
bool less_than(Interpreter& in, const Value& a, const Value& b);
bool contains(Interpreter& in, const Value& container, const Value& item);

}  // namespace csq::jinja
