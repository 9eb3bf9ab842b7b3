#include "tokenizer/jinja/parser.h"

#include <cerrno>
#include <cstdlib>

#include "base/error.h"
#include "tokenizer/jinja/builtins.h"

namespace csq::jinja {
namespace {

using TT = Token::Type;

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name, int max_depth)
      : toks_(tokens), name_(name), max_depth_(max_depth) {}

  Program run() {
    Program program;
    program.name = name_;
    program.body = parse_body({}, 0, "");
    return program;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TT::Operator && cur().value == op; }
  bool is_name(const char* n) const { return cur().type == TT::Name && cur().value == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }

  [[noreturn]] void fail(const std::string& what, int line) const {
    fail_input("chat template " + name_ + ", line " + std::to_string(line) + ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { fail(what, cur().line); }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TT::End: return "end of template";
      case TT::BlockEnd: return "end of statement block";
      case TT::VarEnd: return "end of print statement";
      case TT::BlockBegin: return "begin of statement block";
      case TT::VarBegin: return "begin of print statement";
      case TT::String: return "string literal";
      case TT::Text: return "template data";
      default: return "'" + t.value + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != TT::Name) fail("expected a name, got " + describe(cur()));
    std::string n = cur().value;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TT::BlockEnd) fail("expected end of statement block, got " + describe(cur()));
    advance();
  }

  struct DepthGuard {
    DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > p_.max_depth_) p_.fail("template nested deeper than " + std::to_string(p_.max_depth_) + " levels");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  ExprPtr node(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----

  // Parses until a `{% tag %}` whose tag is in `ends`, leaving the cursor on that tag name.
  // `opener`/`open_line` describe the enclosing block for the "never closed" error.
  Body parse_body(const std::vector<std::string>& ends, int open_line, const std::string& opener) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TT::End) {
        if (ends.empty()) return body;
        fail("unexpected end of template: '" + opener + "' block opened on line " + std::to_string(open_line) +
                 " was never closed (expected '" + ends.back() + "')",
             t.line);
      }
      if (t.type == TT::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->line = t.line;
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TT::VarBegin) {
        advance();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->line = t.line;
        s->expr = parse_tuple(true, {});
        if (cur().type != TT::VarEnd) fail("expected end of print statement, got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TT::BlockBegin) {
        advance();
        if (cur().type != TT::Name) fail("expected a tag name after '{%', got " + describe(cur()));
        for (const auto& e : ends)
          if (cur().value == e) return body;
        const std::string& tag = cur().value;
        if (!ends.empty() && (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else"))
          fail("unexpected '" + tag + "': the '" + opener + "' block opened on line " + std::to_string(open_line) +
               " expects '" + ends.back() + "'");
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  // After a body: consume `{% end %}` (the cursor is on the end tag's name).
  void close_block() {
    advance();
    expect_block_end();
  }

  std::unique_ptr<Stmt> parse_statement() {
    DepthGuard guard(*this);
    const Token& t = cur();
    const std::string tag = t.value;
    auto s = std::make_unique<Stmt>();
    s->line = t.line;
    advance();
    if (tag == "if") {
      s->kind = Stmt::Kind::If;
      s->conds.push_back(parse_tuple(false, {}));
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, s->line, "if"));
        const std::string end = cur().value;
        advance();
        if (end == "elif") {
          s->conds.push_back(parse_tuple(false, {}));
          expect_block_end();
        } else if (end == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, s->line, "if");
          close_block();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (tag == "for") {
      s->kind = Stmt::Kind::For;
      s->target = parse_target(false);
      if (!skip_name("in")) fail("expected 'in' in for loop, got " + describe(cur()));
      s->expr = parse_tuple(false, {"recursive"});
      if (skip_name("if")) s->cond = parse_expression(true);
      if (is_name("recursive")) fail("recursive for loops are not supported");
      expect_block_end();
      ++loop_depth_;
      s->body = parse_body({"else", "endfor"}, s->line, "for");
      --loop_depth_;
      if (cur().value == "else") {
        advance();
        expect_block_end();
        s->else_body = parse_body({"endfor"}, s->line, "for");
      }
      close_block();
    } else if (tag == "set") {
      s->target = parse_target(true);
      if (skip_op("=")) {
        s->kind = Stmt::Kind::Set;
        s->expr = parse_tuple(true, {});
        expect_block_end();
      } else {
        s->kind = Stmt::Kind::SetBlock;
        if (!s->target.attr.empty() || s->target.is_tuple) fail("a block set assigns a single name");
        while (skip_op("|")) s->filters.push_back(parse_filter_call(nullptr));
        expect_block_end();
        s->body = parse_body({"endset"}, s->line, "set");
        close_block();
      }
    } else if (tag == "macro") {
      s->kind = Stmt::Kind::Macro;
      s->name = expect_name();
      expect_op("(");
      while (!skip_op(")")) {
        if (!s->params.empty()) expect_op(",");
        if (skip_op(")")) break;
        std::string param = expect_name();
        ExprPtr def;
        if (skip_op("=")) def = parse_expression(true);
        s->params.emplace_back(std::move(param), std::move(def));
      }
      expect_block_end();
      const int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = parse_body({"endmacro"}, s->line, "macro");
      loop_depth_ = saved;
      close_block();
    } else if (tag == "call") {
      s->kind = Stmt::Kind::CallBlock;
      if (is_op("(")) fail("'call' blocks with caller arguments are not supported");
      s->expr = parse_expression(true);
      if (s->expr->kind != Expr::Kind::Call) fail("'call' expects a macro call");
      expect_block_end();
      s->body = parse_body({"endcall"}, s->line, "call");
      close_block();
    } else if (tag == "filter") {
      s->kind = Stmt::Kind::FilterBlock;
      s->filters.push_back(parse_filter_call(nullptr));
      while (skip_op("|")) s->filters.push_back(parse_filter_call(nullptr));
      expect_block_end();
      s->body = parse_body({"endfilter"}, s->line, "filter");
      close_block();
    } else if (tag == "with") {
      s->kind = Stmt::Kind::With;
      while (cur().type != TT::BlockEnd) {
        if (!s->params.empty()) expect_op(",");
        std::string n = expect_name();
        expect_op("=");
        s->params.emplace_back(std::move(n), parse_expression(true));
      }
      expect_block_end();
      s->body = parse_body({"endwith"}, s->line, "with");
      close_block();
    } else if (tag == "generation") {
      // transformers' AssistantTracker: marks assistant text, renders its body unchanged.
      s->kind = Stmt::Kind::Scope;
      expect_block_end();
      s->body = parse_body({"endgeneration"}, s->line, "generation");
      close_block();
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop", s->line);
      s->kind = tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
      expect_block_end();
    } else if (tag == "include" || tag == "extends" || tag == "block" || tag == "import" || tag == "from" ||
               tag == "autoescape" || tag == "do" || tag == "trans") {
      fail("the '" + tag + "' tag is not supported", s->line);
    } else if (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else") {
      fail("unexpected '" + tag + "' (no block is open that it could close)", s->line);
    } else {
      fail("unknown tag '" + tag + "'", s->line);
    }
    return s;
  }

  // `name`, `a, b`, `(a, b)`, or with `allow_attr` `ns.attr`.
  Target parse_target(bool allow_attr) {
    Target target;
    const bool paren = skip_op("(");
    target.names.push_back(expect_name());
    if (allow_attr && !paren && skip_op(".")) {
      target.attr = expect_name();
      return target;
    }
    while (skip_op(",")) {
      target.is_tuple = true;
      if (cur().type != TT::Name) break;
      target.names.push_back(expect_name());
    }
    if (paren) {
      target.is_tuple = true;
      expect_op(")");
    }
    return target;
  }

  // ---- expressions ----

  bool at_tuple_end(const std::vector<std::string>& extra_end) const {
    const Token& t = cur();
    if (t.type == TT::VarEnd || t.type == TT::BlockEnd || t.type == TT::End) return true;
    if (t.type == TT::Operator && t.value == ")") return true;
    if (t.type == TT::Name)
      for (const auto& e : extra_end)
        if (t.value == e) return true;
    return false;
  }

  // A comma-separated expression list: a tuple if a comma appears.
  ExprPtr parse_tuple(bool with_condexpr, const std::vector<std::string>& extra_end, bool explicit_parens = false) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (at_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
    }
    if (!comma && items.size() == 1) return std::move(items[0]);
    if (items.empty() && !explicit_parens) fail("expected an expression, got " + describe(cur()));
    auto e = node(Expr::Kind::Tuple, line);
    e->args = std::move(items);
    return e;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    if (!with_condexpr) return parse_or();
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const int line = cur().line;
      advance();
      auto c = node(Expr::Kind::Cond, line);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      c->args.push_back(skip_name("else") ? parse_expression(true) : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto e = node(Expr::Kind::Binary, line);
    e->name = op;
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      const int line = cur().line;
      advance();
      l = binary("or", std::move(l), parse_and(), line);
    }
    return l;
  }
  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      const int line = cur().line;
      advance();
      l = binary("and", std::move(l), parse_not(), line);
    }
    return l;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = node(Expr::Kind::Not, cur().line);
      advance();
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == TT::Operator &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == "<=" ||
           cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TT::Name && peek().value == "in") {
        op = "notin";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Kind::Compare, line);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = cur().value;
      const int line = cur().line;
      advance();
      l = binary(op, std::move(l), parse_concat(), line);
    }
    return l;
  }
  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) {
      const int line = cur().line;
      advance();
      l = binary("~", std::move(l), parse_math2(), line);
    }
    return l;
  }
  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = cur().value;
      const int line = cur().line;
      advance();
      l = binary(op, std::move(l), parse_pow(), line);
    }
    return l;
  }
  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) {
      const int line = cur().line;
      advance();
      l = binary("**", std::move(l), parse_unary(true), line);
    }
    return l;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(is_op("-") ? Expr::Kind::Neg : Expr::Kind::Pos, cur().line);
      advance();
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr literal(Value v, int line) {
    auto e = node(Expr::Kind::Literal, line);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const int line = t.line;
    switch (t.type) {
      case TT::Name: {
        const std::string n = t.value;
        advance();
        if (n == "true" || n == "True") return literal(Value::boolean(true), line);
        if (n == "false" || n == "False") return literal(Value::boolean(false), line);
        if (n == "none" || n == "None") return literal(Value::none(), line);
        auto e = node(Expr::Kind::Name, line);
        e->name = n;
        return e;
      }
      case TT::String: {
        std::string s;
        while (cur().type == TT::String) {  // adjacent literals concatenate
          s += cur().value;
          advance();
        }
        return literal(Value::string(std::move(s)), line);
      }
      case TT::Integer: {
        const std::string text = t.value;
        advance();
        int base = 10;
        std::string digits = text;
        if (text.size() > 2 && text[0] == '0') {
          const char b = char(std::tolower(static_cast<unsigned char>(text[1])));
          base = b == 'x' ? 16 : b == 'o' ? 8 : b == 'b' ? 2 : 10;
          if (base != 10) digits = text.substr(2);
        }
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(digits.c_str(), &end, base);
        if (errno == ERANGE) fail("integer literal " + text + " is too large", line);
        return literal(Value::integer(v), line);
      }
      case TT::Float: {
        const double v = std::strtod(t.value.c_str(), nullptr);
        advance();
        return literal(Value::number(v), line);
      }
      case TT::Operator:
        if (t.value == "(") {
          advance();
          ExprPtr e = parse_tuple(true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.value == "[") {
          advance();
          auto e = node(Expr::Kind::List, line);
          while (!skip_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (skip_op("]")) break;
            e->args.push_back(parse_expression(true));
          }
          return e;
        }
        if (t.value == "{") {
          advance();
          auto e = node(Expr::Kind::Dict, line);
          while (!skip_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (skip_op("}")) break;
            e->args.push_back(parse_expression(true));
            expect_op(":");
            e->args.push_back(parse_expression(true));
          }
          return e;
        }
        break;
      default: break;
    }
    fail("unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const int line = cur().line;
        advance();
        if (cur().type == TT::Name) {
          auto a = node(Expr::Kind::Attr, line);
          a->name = cur().value;
          advance();
          a->args.push_back(std::move(e));
          e = std::move(a);
        } else if (cur().type == TT::Integer) {
          auto a = node(Expr::Kind::Item, line);
          a->args.push_back(std::move(e));
          a->args.push_back(literal(Value::integer(std::strtoll(cur().value.c_str(), nullptr, 10)), line));
          advance();
          e = std::move(a);
        } else {
          fail("expected an attribute name after '.', got " + describe(cur()));
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr subject) {
    const int line = cur().line;
    advance();  // [
    auto part = [&]() -> ExprPtr {
      if (is_op(":") || is_op("]") || is_op(",")) return nullptr;
      return parse_expression(true);
    };
    ExprPtr first = part();
    if (is_op(":")) {
      advance();
      auto s = node(Expr::Kind::Slice, line);
      s->args.push_back(std::move(subject));
      s->args.push_back(std::move(first));
      s->args.push_back(part());
      ExprPtr step;
      if (skip_op(":")) step = part();
      s->args.push_back(std::move(step));
      expect_op("]");
      return s;
    }
    if (!first) fail("expected an index or slice inside '[]'");
    if (is_op(",")) {
      auto tuple = node(Expr::Kind::Tuple, line);
      tuple->args.push_back(std::move(first));
      while (skip_op(",")) {
        if (is_op("]")) break;
        tuple->args.push_back(parse_expression(true));
      }
      first = std::move(tuple);
    }
    expect_op("]");
    auto i = node(Expr::Kind::Item, line);
    i->args.push_back(std::move(subject));
    i->args.push_back(std::move(first));
    return i;
  }

  // Parses `(args)` into e (positional after e's existing args, keywords into kwargs).
  void parse_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!skip_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (skip_op(")")) break;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == TT::Name && peek().type == TT::Operator && peek().value == "=") {
        std::string key = cur().value;
        advance();
        advance();
        e.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail("positional argument after keyword argument");
        e.args.push_back(parse_expression(true));
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(Expr::Kind::Call, cur().line);
    c->args.push_back(std::move(callee));
    parse_args(*c);
    return c;
  }

  // `name(args)` after a `|`; `subject` becomes args[0] (null inside filter blocks).
  ExprPtr parse_filter_call(ExprPtr subject) {
    const int line = cur().line;
    std::string name = expect_name();
    while (skip_op(".")) {
      name += '.';
      name += expect_name();
    }
    if (!has_filter(name)) fail("unknown filter '" + name + "'", line);
    auto f = node(Expr::Kind::Filter, line);
    f->name = name;
    f->args.push_back(std::move(subject));
    if (is_op("(")) parse_args(*f);
    return f;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (skip_op("|")) {
        e = parse_filter_call(std::move(e));
      } else if (is_name("is")) {
        const int line = cur().line;
        advance();
        auto t = node(Expr::Kind::Test, line);
        t->negated = skip_name("not");
        t->name = expect_name();
        while (skip_op(".")) {
          t->name += '.';
          t->name += expect_name();
        }
        if (!has_test(t->name)) fail("unknown test '" + t->name + "'", line);
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_args(*t);
        } else if ((cur().type == TT::Name || cur().type == TT::String || cur().type == TT::Integer ||
                    cur().type == TT::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) fail("tests cannot be chained with 'is'");
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  const std::vector<Token>& toks_;
  std::string name_;
  size_t pos_ = 0;
  int depth_ = 0;
  int max_depth_;
  int loop_depth_ = 0;
};

}  // namespace

Program parse(const std::vector<Token>& tokens, const std::string& name, int max_depth) {
  return Parser(tokens, name, max_depth).run();
}

}  // namespace csq::jinja
