// Jinja parser: tokens → Program, following Jinja2's grammar and operator precedence.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace csq::jinja {

// Throws csq::Error naming the template, the line and the construct on any syntax error,
// unknown tag, filter or test, or nesting deeper than `max_depth`.
Program parse(const std::vector<Token>& tokens, const std::string& name, int max_depth);

}  // namespace csq::jinja
