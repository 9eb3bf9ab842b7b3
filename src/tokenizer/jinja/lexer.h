// Jinja lexer: splits a template into text and tag tokens, applying whitespace control
// (`{%-`, `-%}`, `+`) and Jinja2's trim_blocks / lstrip_blocks exactly as Jinja2's lexer does.
#pragma once

#include <string>
#include <vector>

namespace csq::jinja {

struct Token {
  enum class Type {
    Text, VarBegin, VarEnd, BlockBegin, BlockEnd,  // template structure
    Name, String, Integer, Float, Operator,         // inside tags
    End,
  };
  Type type;
  std::string value;  // text, name, decoded string literal, number spelling, operator
  int line;
};

struct LexOptions {
  bool trim_blocks = true;   // drop the first newline after a block or comment tag
  bool lstrip_blocks = true; // drop spaces/tabs before a block or comment tag on its line
};

// Throws csq::Error naming `name` and the line on malformed input.
std::vector<Token> tokenize(const std::string& source, const std::string& name, const LexOptions& options);

}  // namespace csq::jinja
