// JSON Lines input (training data, benchmark responses, batch task inputs): one JSON value per
// line, blank lines skipped, every error naming PATH:LINE.
#pragma once

#include <cstddef>
#include <istream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace csq {

// Calls on_line(line, where, line_no) for each non-blank line of `in`, with where = "NAME:LINE"
// for the caller's own errors. Returns the number of lines read, blank ones included.
template <class OnLine>
size_t for_each_jsonl_line(std::istream& in, const std::string& name, OnLine&& on_line) {
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    on_line(line, name + ":" + std::to_string(line_no), line_no);
  }
  return line_no;
}

// One line's JSON value; BadInput naming `where` and the parser's complaint when it is not JSON.
template <class Json = nlohmann::json>
Json parse_jsonl_line(const std::string& line, const std::string& where) {
  try {
    return Json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    fail_input(where + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace csq
