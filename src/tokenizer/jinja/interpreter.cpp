#include "tokenizer/jinja/interpreter.h"

#include <cmath>

#include "base/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/unicode.h"

namespace csq::jinja {

Value* Scope::find_local(const std::string& name) {
  for (auto& [k, v] : vars)
    if (k == name) return &v;
  return nullptr;
}

Interpreter::Interpreter(const Program& program, const Limits& limits, const Value& context)
    : program_(program), limits_(limits), context_(context) {}

std::string Interpreter::run() {
  auto root = std::make_shared<Scope>();
  exec_body(program_.body, root);
  return std::move(out_);
}

void Interpreter::fail(const std::string& what) const {
  fail_input("chat template " + program_.name + ", line " + std::to_string(line_) + ": " + what);
}

void Interpreter::count_iteration() {
  if (++iterations_ > limits_.max_iterations)
    fail("more than " + std::to_string(limits_.max_iterations) + " loop iterations (template limit)");
}

void Interpreter::check_size(size_t n) const {
  if (n > limits_.max_output)
    fail("output would exceed " + std::to_string(limits_.max_output) + " bytes (template limit)");
}

void Interpreter::emit(const std::string& text) {
  check_size(out_.size() + text.size());
  out_ += text;
}

// ---------------------------------------------------------------------------- statements

Interpreter::Flow Interpreter::exec_body(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const auto& s : body) {
    const Flow f = exec(*s, scope);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

std::string Interpreter::capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string saved;
  std::swap(saved, out_);
  try {
    exec_body(body, scope);
  } catch (...) {
    std::swap(saved, out_);
    throw;
  }
  std::swap(saved, out_);
  return saved;
}

void Interpreter::assign(const Target& t, Value v, const std::shared_ptr<Scope>& scope) {
  auto set_var = [&](const std::string& name, Value value) {
    if (Value* existing = scope->find_local(name)) *existing = std::move(value);
    else scope->vars.emplace_back(name, std::move(value));
  };
  if (!t.attr.empty()) {
    Value obj = lookup(t.names[0], scope);
    if (!obj.is_dict() || !obj.as_dict().is_namespace)
      fail("cannot assign attribute '" + t.attr + "' on '" + t.names[0] + "': not a namespace() object");
    obj.as_dict().set(Value::string(t.attr), std::move(v));
    return;
  }
  if (!t.is_tuple) {
    set_var(t.names[0], std::move(v));
    return;
  }
  if (!v.is_list() && !v.is_string() && !v.is_dict()) fail("cannot unpack non-iterable " + v.type_name());
  std::vector<Value> items = iterate(v);
  if (items.size() != t.names.size())
    fail("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(t.names.size()) +
         " names");
  for (size_t i = 0; i < items.size(); ++i) set_var(t.names[i], std::move(items[i]));
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  line_ = s.line;
  switch (s.kind) {
    case Stmt::Kind::Text:
      emit(s.text);
      break;
    case Stmt::Kind::Output:
      emit(eval(*s.expr, scope).str());
      break;
    case Stmt::Kind::If:
      for (size_t i = 0; i < s.conds.size(); ++i) {
        line_ = s.line;
        if (eval(*s.conds[i], scope).truthy()) return exec_body(s.bodies[i], scope);
      }
      return exec_body(s.else_body, scope);
    case Stmt::Kind::For:
      exec_for(s, scope);
      break;
    case Stmt::Kind::Set:
      assign(s.target, eval(*s.expr, scope), scope);
      break;
    case Stmt::Kind::SetBlock: {
      Value v = Value::string(capture(s.body, scope));
      for (const auto& f : s.filters) v = eval_filter(*f, std::move(v), scope);
      assign(s.target, std::move(v), scope);
      break;
    }
    case Stmt::Kind::FilterBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      Value v = Value::string(capture(s.body, inner));
      for (const auto& f : s.filters) v = eval_filter(*f, std::move(v), scope);
      emit(v.str());
      break;
    }
    case Stmt::Kind::Macro:
      assign(Target{{s.name}, "", false}, make_macro(s, scope), scope);
      break;
    case Stmt::Kind::CallBlock: {
      // `caller()` renders the block body in the scope of the call site.
      const Stmt* stmt = &s;
      std::shared_ptr<Scope> site = scope;
      Value caller = Value::function("caller", [stmt, site](Interpreter& in, CallArgs& args) {
        if (!args.positional.empty() || !args.keyword.empty()) in.fail("caller() takes no arguments here");
        auto inner = std::make_shared<Scope>();
        inner->parent = site;
        return Value::string(in.capture(stmt->body, inner));
      });
      const Expr& call = *s.expr;
      Value callee = eval(*call.args[0], scope);
      CallArgs args = eval_args(call, 1, scope);
      args.keyword.emplace_back("caller", std::move(caller));
      line_ = s.line;
      emit(this->call(callee, args).str());
      break;
    }
    case Stmt::Kind::With: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      for (const auto& [name, expr] : s.params) inner->vars.emplace_back(name, eval(*expr, scope));
      return exec_body(s.body, inner);
    }
    case Stmt::Kind::Scope:
      return exec_body(s.body, scope);
    case Stmt::Kind::Break:
      return Flow::Break;
    case Stmt::Kind::Continue:
      return Flow::Continue;
  }
  return Flow::Normal;
}

void Interpreter::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  std::vector<Value> items = iterate(eval(*s.expr, scope));
  if (s.cond) {  // `for x in y if cond`: the loop (and loop.length) sees only matching items
    std::vector<Value> kept;
    for (auto& item : items) {
      count_iteration();
      auto probe = std::make_shared<Scope>();
      probe->parent = scope;
      assign(s.target, item, probe);
      if (eval(*s.cond, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    exec_body(s.else_body, inner);
    return;
  }
  // loop.cycle(a, b, ...) picks by the current index.
  auto index_holder = std::make_shared<int64_t>(0);
  Value cycle = Value::function("cycle", [index_holder](Interpreter& in, CallArgs& args) {
    if (args.positional.empty()) in.fail("loop.cycle() needs at least one argument");
    return args.positional[size_t(*index_holder) % args.positional.size()];
  });
  const int64_t n = int64_t(items.size());
  for (int64_t i = 0; i < n; ++i) {
    count_iteration();
    *index_holder = i;
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    Value loop = Value::dict();
    Dict& d = loop.as_dict();
    auto put = [&](const char* k, Value v) { d.items.emplace_back(Value::string(k), std::move(v)); };
    put("index", Value::integer(i + 1));
    put("index0", Value::integer(i));
    put("revindex", Value::integer(n - i));
    put("revindex0", Value::integer(n - i - 1));
    put("first", Value::boolean(i == 0));
    put("last", Value::boolean(i == n - 1));
    put("length", Value::integer(n));
    put("depth", Value::integer(1));
    put("depth0", Value::integer(0));
    if (i > 0) put("previtem", items[size_t(i - 1)]);
    if (i + 1 < n) put("nextitem", items[size_t(i + 1)]);
    put("cycle", cycle);
    inner->vars.emplace_back("loop", std::move(loop));
    assign(s.target, items[size_t(i)], inner);
    if (exec_body(s.body, inner) == Flow::Break) break;
  }
}

Value Interpreter::make_macro(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  const Stmt* stmt = &s;
  std::shared_ptr<Scope> defined_in = scope;
  return Value::function(s.name, [stmt, defined_in](Interpreter& in, CallArgs& args) {
    if (++in.call_depth_ > in.limits_.max_depth)
      in.fail("macro calls nested deeper than " + std::to_string(in.limits_.max_depth) + " (template limit)");
    if (args.positional.size() > stmt->params.size())
      in.fail("macro '" + stmt->name + "' takes not more than " + std::to_string(stmt->params.size()) +
              " argument(s)");
    auto frame = std::make_shared<Scope>();
    frame->parent = defined_in;
    std::vector<bool> bound(stmt->params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      frame->vars.emplace_back(stmt->params[i].first, std::move(args.positional[i]));
      bound[i] = true;
    }
    for (auto& [key, value] : args.keyword) {
      size_t p = 0;
      while (p < stmt->params.size() && stmt->params[p].first != key) ++p;
      if (p == stmt->params.size()) {
        if (key != "caller") in.fail("macro '" + stmt->name + "' has no argument '" + key + "'");
      } else if (bound[p]) {
        in.fail("macro '" + stmt->name + "' got multiple values for argument '" + key + "'");
      } else {
        bound[p] = true;
      }
      frame->vars.emplace_back(key, std::move(value));
    }
    for (size_t p = 0; p < stmt->params.size(); ++p) {
      if (bound[p]) continue;
      const auto& [param, def] = stmt->params[p];
      frame->vars.emplace_back(param, def ? in.eval(*def, frame)
                                          : Value::undefined("parameter '" + param + "' was not provided"));
    }
    std::string text = in.capture(stmt->body, frame);
    --in.call_depth_;
    return Value::string(std::move(text));
  });
}

// ---------------------------------------------------------------------------- expressions

Value Interpreter::lookup(const std::string& name, const std::shared_ptr<Scope>& scope) {
  for (Scope* s = scope.get(); s; s = s->parent.get())
    if (Value* v = s->find_local(name)) return *v;
  if (context_.is_dict())
    if (const Value* v = context_.as_dict().find(name)) return *v;
  Value g = global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined("'" + name + "' is undefined");
}

std::vector<Value> Interpreter::iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return v.as_list();
    case Value::Kind::Dict: {
      if (v.as_dict().is_namespace) break;
      std::vector<Value> keys;
      for (const auto& item : v.as_dict().items) keys.push_back(item.first);
      return keys;
    }
    case Value::Kind::String: {
      std::vector<Value> chars;
      for (char32_t c : utf8_decode(v.as_string())) {
        std::string s;
        utf8_append(s, c);
        chars.push_back(Value::string(std::move(s)));
      }
      return chars;
    }
    default: break;
  }
  fail("'" + v.type_name() + "' is not iterable");
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) fail(callee.hint().empty() ? "call of an undefined value" : callee.hint());
  if (!callee.is_function()) fail("'" + callee.type_name() + "' is not callable");
  if (call_depth_ > limits_.max_depth) fail("calls nested too deeply (template limit)");
  return callee.as_function()(*this, args);
}

Value Interpreter::get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::Undefined:
      fail(obj.hint().empty() ? "attribute '" + name + "' of an undefined value" : obj.hint());
    case Value::Kind::Dict: {
      if (!obj.as_dict().is_namespace) {
        Value m = method(obj, name);  // like Python getattr: dict methods win over keys
        if (!m.is_undefined()) return m;
      }
      if (const Value* v = obj.as_dict().find(name)) return *v;
      break;
    }
    case Value::Kind::String:
    case Value::Kind::List: {
      Value m = method(obj, name);
      if (!m.is_undefined()) return m;
      break;
    }
    default: break;
  }
  return Value::undefined("'" + obj.type_name() + "' has no attribute '" + name + "'");
}

namespace {

// Python index normalisation; -1 when out of range.
int64_t normalize_index(int64_t i, size_t n) {
  if (i < 0) i += int64_t(n);
  return i < 0 || i >= int64_t(n) ? -1 : i;
}

bool is_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace

Value Interpreter::get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::Undefined:
      fail(obj.hint().empty() ? "item of an undefined value" : obj.hint());
    case Value::Kind::Dict:
      if (const Value* v = obj.as_dict().find(key)) return *v;
      if (key.is_string()) return get_attr(obj, key.as_string());
      break;
    case Value::Kind::List:
    case Value::Kind::String:
      if (key.is_int() || key.is_bool()) {
        if (obj.is_list()) {
          const int64_t i = normalize_index(key.as_int(), obj.as_list().size());
          if (i >= 0) return obj.as_list()[size_t(i)];
        } else if (is_ascii(obj.as_string())) {
          const int64_t i = normalize_index(key.as_int(), obj.as_string().size());
          if (i >= 0) return Value::string(std::string(1, obj.as_string()[size_t(i)]));
        } else {
          const std::u32string u = utf8_decode(obj.as_string());
          const int64_t i = normalize_index(key.as_int(), u.size());
          if (i >= 0) return Value::string(utf8_encode(u.substr(size_t(i), 1)));
        }
        return Value::undefined("'" + obj.type_name() + "' has no element " + std::to_string(key.as_int()));
      }
      if (key.is_string()) return get_attr(obj, key.as_string());
      break;
    default: break;
  }
  return Value::undefined("'" + obj.type_name() + "' has no attribute " + key.repr());
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope) {
  CallArgs args;
  for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], scope));
  for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v, scope));
  return args;
}

Value Interpreter::eval_filter(const Expr& e, Value subject, const std::shared_ptr<Scope>& scope) {
  CallArgs args = eval_args(e, 1, scope);
  line_ = e.line;
  return apply_filter(*this, e.name, subject, args);
}

Value Interpreter::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  line_ = e.line;
  switch (e.kind) {
    case Expr::Kind::Literal: return e.value;
    case Expr::Kind::Name: return lookup(e.name, scope);
    case Expr::Kind::Attr: {
      Value obj = eval(*e.args[0], scope);
      line_ = e.line;
      return get_attr(obj, e.name);
    }
    case Expr::Kind::Item: {
      Value obj = eval(*e.args[0], scope);
      Value key = eval(*e.args[1], scope);
      line_ = e.line;
      return get_item(obj, key);
    }
    case Expr::Kind::Slice: {
      Value obj = eval(*e.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        parts[i] = e.args[size_t(i) + 1] ? eval(*e.args[size_t(i) + 1], scope) : Value::none();
        if (!parts[i].is_none() && !parts[i].is_int() && !parts[i].is_bool())
          fail("slice indices must be integers or None");
      }
      line_ = e.line;
      if (obj.is_undefined()) fail(obj.hint());
      const bool is_str = obj.is_string();
      if (!is_str && !obj.is_list()) fail("'" + obj.type_name() + "' cannot be sliced");
      const std::u32string chars = is_str ? utf8_decode(obj.as_string()) : std::u32string();
      const int64_t n = int64_t(is_str ? chars.size() : obj.as_list().size());
      const int64_t step = parts[2].is_none() ? 1 : parts[2].as_int();
      if (step == 0) fail("slice step cannot be zero");
      auto bound = [&](const Value& v, int64_t dflt) {
        if (v.is_none()) return dflt;
        int64_t x = v.as_int();
        if (x < 0) {
          x += n;
          if (x < 0) x = step < 0 ? -1 : 0;
        } else if (x >= n) {
          x = step < 0 ? n - 1 : n;
        }
        return x;
      };
      const int64_t start = bound(parts[0], step < 0 ? n - 1 : 0);
      const int64_t stop = bound(parts[1], step < 0 ? -1 : n);
      std::u32string s;
      List items;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (is_str) s.push_back(chars[size_t(i)]);
        else items.push_back(obj.as_list()[size_t(i)]);
      }
      if (is_str) return Value::string(utf8_encode(s));
      return obj.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    case Expr::Kind::Call: {
      Value callee = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      line_ = e.line;
      return call(callee, args);
    }
    case Expr::Kind::Filter: return eval_filter(e, eval(*e.args[0], scope), scope);
    case Expr::Kind::Test: {
      Value subject = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      line_ = e.line;
      return Value::boolean(apply_test(*this, e.name, subject, args) != e.negated);
    }
    case Expr::Kind::Not: return Value::boolean(!eval(*e.args[0], scope).truthy());
    case Expr::Kind::Neg:
    case Expr::Kind::Pos: {
      Value v = eval(*e.args[0], scope);
      line_ = e.line;
      if (v.is_undefined()) fail(v.hint());
      if (!v.is_number()) fail(std::string("bad operand type for unary ") + (e.kind == Expr::Kind::Neg ? "-" : "+") +
                               ": '" + v.type_name() + "'");
      if (e.kind == Expr::Kind::Pos) return v.is_float() ? v : Value::integer(v.as_int());
      if (v.is_float()) return Value::number(-v.as_double());
      if (v.as_int() == INT64_MIN) fail("integer overflow");
      return Value::integer(-v.as_int());
    }
    case Expr::Kind::Binary: return eval_binary(e, scope);
    case Expr::Kind::Compare: return eval_compare(e, scope);
    case Expr::Kind::Cond:
      if (eval(*e.args[1], scope).truthy()) return eval(*e.args[0], scope);
      return e.args[2] ? eval(*e.args[2], scope) : Value::undefined("the condition was false and there is no else");
    case Expr::Kind::List:
    case Expr::Kind::Tuple: {
      List items;
      for (const auto& a : e.args) items.push_back(eval(*a, scope));
      return e.kind == Expr::Kind::Tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    case Expr::Kind::Dict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (k.is_list() && !k.is_tuple()) fail("unhashable type: 'list'");
        if (k.is_dict()) fail("unhashable type: 'dict'");
        d.as_dict().set(k, eval(*e.args[i + 1], scope));
      }
      return d;
    }
  }
  fail("unsupported expression");
}

Value Interpreter::eval_binary(const Expr& e, const std::shared_ptr<Scope>& scope) {
  if (e.name == "and" || e.name == "or") {  // Python: returns an operand, short-circuits
    Value l = eval(*e.args[0], scope);
    if (l.truthy() == (e.name == "or")) return l;
    return eval(*e.args[1], scope);
  }
  Value l = eval(*e.args[0], scope);
  Value r = eval(*e.args[1], scope);
  line_ = e.line;
  return binary_op(*this, e.name, l, r);
}

Value Interpreter::eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value left = eval(*e.args[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1], scope);
    line_ = e.line;
    const std::string& op = e.ops[i];
    bool r;
    if (op == "==") r = py_equal(left, right);
    else if (op == "!=") r = !py_equal(left, right);
    else if (op == "<") r = less_than(*this, left, right);
    else if (op == ">") r = less_than(*this, right, left);
    else if (op == "<=") r = !less_than(*this, right, left);
    else if (op == ">=") r = !less_than(*this, left, right);
    else if (op == "in") r = contains(*this, right, left);
    else r = !contains(*this, right, left);
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

// ---------------------------------------------------------------------------- operators

namespace {

std::string py_type(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::None: return "NoneType";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::List: return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::Dict: return "dict";
    default: return "function";
  }
}

int64_t floor_div(Interpreter& in, int64_t a, int64_t b) {
  if (b == 0) in.fail("integer division or modulo by zero");
  if (a == INT64_MIN && b == -1) in.fail("integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = a.str() + b.str();
    in.check_size(s.size());
    return Value::string(std::move(s));
  }
  if (a.is_undefined()) in.fail(a.hint());
  if (b.is_undefined()) in.fail(b.hint());
  auto unsupported = [&]() -> Value {
    in.fail("unsupported operand type(s) for " + op + ": '" + py_type(a) + "' and '" + py_type(b) + "'");
  };
  if (a.is_number() && b.is_number()) {
    if (op == "/") {
      if (b.as_double() == 0) in.fail("division by zero");
      return Value::number(a.as_double() / b.as_double());
    }
    if (a.is_float() || b.is_float() || (op == "**" && b.as_int() < 0)) {
      const double x = a.as_double(), y = b.as_double();
      if (op == "+") return Value::number(x + y);
      if (op == "-") return Value::number(x - y);
      if (op == "*") return Value::number(x * y);
      if (op == "**") return Value::number(std::pow(x, y));
      if (y == 0) in.fail("float division by zero");
      if (op == "//") return Value::number(std::floor(x / y));
      if (op == "%") {
        double r = std::fmod(x, y);
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return Value::number(r);
      }
      return unsupported();
    }
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r = 0;
    bool overflow = false;
    if (op == "+") overflow = __builtin_add_overflow(x, y, &r);
    else if (op == "-") overflow = __builtin_sub_overflow(x, y, &r);
    else if (op == "*") overflow = __builtin_mul_overflow(x, y, &r);
    else if (op == "//") r = floor_div(in, x, y);
    else if (op == "%") r = x - floor_div(in, x, y) * y;
    else if (op == "**") {
      r = 1;
      for (int64_t i = 0; i < y && !overflow; ++i) overflow = __builtin_mul_overflow(r, x, &r);
    } else {
      return unsupported();
    }
    if (overflow) in.fail("integer overflow in '" + op + "' (Python integers are unbounded; these are 64-bit)");
    return Value::integer(r);
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      in.check_size(a.as_string().size() + b.as_string().size());
      return Value::string(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      List items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    return unsupported();
  }
  if (op == "*") {
    const Value* seq = (a.is_string() || a.is_list()) ? &a : (b.is_string() || b.is_list()) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (!seq || !(count->is_int() || count->is_bool())) return unsupported();
    const int64_t n = std::max<int64_t>(0, count->as_int());
    if (seq->is_string()) {
      in.check_size(seq->as_string().size() * size_t(n));
      std::string s;
      for (int64_t i = 0; i < n; ++i) s += seq->as_string();
      return Value::string(std::move(s));
    }
    in.check_size(seq->as_list().size() * size_t(n));
    List items;
    for (int64_t i = 0; i < n; ++i) {
      in.count_iteration();
      items.insert(items.end(), seq->as_list().begin(), seq->as_list().end());
    }
    return seq->is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (op == "%" && a.is_string()) in.fail("printf-style string formatting ('%') is not supported");
  return unsupported();
}

bool less_than(Interpreter& in, const Value& a, const Value& b) {
  if (a.is_undefined()) in.fail(a.hint());
  if (b.is_undefined()) in.fail(b.hint());
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 order = code point order
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!py_equal(x[i], y[i])) return less_than(in, x[i], y[i]);
    return x.size() < y.size();
  }
  in.fail("'<' not supported between instances of '" + py_type(a) + "' and '" + py_type(b) + "'");
}

bool contains(Interpreter& in, const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined: return false;  // iterates as empty
    case Value::Kind::String:
      if (!item.is_string())
        in.fail("'in <string>' requires string as left operand, not " + py_type(item));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const auto& v : container.as_list())
        if (py_equal(v, item)) return true;
      return false;
    case Value::Kind::Dict:
      if (container.as_dict().is_namespace) break;
      return container.as_dict().find(item) != nullptr;
    default: break;
  }
  in.fail("argument of type '" + py_type(container) + "' is not iterable");
}

// ---------------------------------------------------------------------------- Template

Template::Template(const std::string& source, std::string name, Limits limits)
    : name_(std::move(name)), limits_(limits) {
  program_ = std::make_shared<const Program>(parse(tokenize(source, name_, LexOptions{}), name_, limits_.max_depth));
}

std::string Template::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) fail_input("chat template " + name_ + ": the render context must be a JSON object");
  Interpreter interpreter(*program_, limits_, Value::from_json(context));
  return interpreter.run();
}

}  // namespace csq::jinja
