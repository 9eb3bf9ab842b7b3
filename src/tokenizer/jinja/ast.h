// The parsed form of a Jinja template: expression and statement nodes, each with its line.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace csq::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,   // value
    Name,      // name
    Attr,      // a.name
    Item,      // a[b]
    Slice,     // a[b:c:d]; absent parts are null
    Call,      // a(args)
    Filter,    // a | name(args)
    Test,      // a is [not] name(args)
    Neg, Pos, Not,
    Binary,    // name holds the operator: + - * / // % ** ~ and or
    Compare,   // operands[0] ops[i] operands[i+1] ...
    Cond,      // args[0] if args[1] else args[2] (args[2] may be null)
    List, Tuple, Dict,  // args (dict: key, value, key, value...)
  };
  Kind kind;
  int line = 0;
  std::string name;               // Name, Attr, Filter, Test, Binary operator
  Value value;                    // Literal
  bool negated = false;           // Test
  std::vector<ExprPtr> args;      // operands / positional arguments (args[0] is the subject)
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // keyword arguments
  std::vector<std::string> ops;   // Compare operators: == != < <= > >= in notin
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

// An assignment target: a name, `ns.attr`, or a tuple of names.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  std::string attr;                // set for `name.attr = ...`
  bool is_tuple = false;
};

struct Stmt {
  enum class Kind {
    Text,     // text
    Output,   // {{ expr }}
    If,       // conds[i] → bodies[i]; else_body
    For,      // target in expr [if cond] body else_body
    Set,      // target = expr
    SetBlock, // {% set target %}body{% endset %}, filters applied to the captured text
    Macro,    // name(params) body
    CallBlock,// {% call macro(args) %}body{% endcall %}: `caller()` renders body
    FilterBlock, // {% filter f %}body{% endfilter %}
    With,     // {% with a = x %}body{% endwith %}
    Break, Continue,
    Scope,    // body rendered as is (transformers' {% generation %})
  };
  Kind kind;
  int line = 0;
  std::string text;                // Text
  ExprPtr expr;                    // Output, Set, For iterable, CallBlock call
  ExprPtr cond;                    // For filter
  Target target;                   // Set, SetBlock, For
  std::vector<ExprPtr> conds;      // If
  std::vector<Body> bodies;        // If branches
  Body body;
  Body else_body;
  std::string name;                // Macro
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro params (default may be null), With
  std::vector<ExprPtr> filters;    // SetBlock / FilterBlock: Filter nodes with a null subject
};

struct Program {
  std::string name;
  Body body;
};

}  // namespace csq::jinja
