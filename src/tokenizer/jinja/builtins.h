// Jinja's filters, tests, global functions and the methods of Python str/dict/list that
// templates call, as transformers' sandboxed Jinja2 environment provides them.
#pragma once

#include <string>

#include "tokenizer/jinja/value.h"

namespace csq::jinja {

bool has_filter(const std::string& name);
bool has_test(const std::string& name);

// `value | name(args)`; the interpreter resolves map/select-style filters that call tests.
Value apply_filter(Interpreter& in, const std::string& name, const Value& value, CallArgs& args);
bool apply_test(Interpreter& in, const std::string& name, const Value& value, CallArgs& args);

// `value.name` for a method of str, dict or list: a bound function, or undefined.
Value method(const Value& self, const std::string& name);

// Globals every template sees: range, namespace, dict, raise_exception, strftime_now...
Value global(const std::string& name);

}  // namespace csq::jinja
