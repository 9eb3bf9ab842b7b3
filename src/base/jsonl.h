// JSON Lines input (training data, benchmark responses, batch task inputs): one JSON value per
// line, blank lines skipped, every error naming PATH:LINE.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <string_view>

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

// Deeper JSON is refused before it is parsed: copying, printing and walking a value recurse
// once per level, and a line of brackets would overflow the stack. csq detect reads events to
// the same depth.
inline constexpr size_t kMaxJsonlDepth = 512;

// Whether arrays and objects in `text` nest deeper than `limit` (brackets in strings do not count).
inline bool json_nests_deeper_than(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// BadInput naming `where` when `text` nests deeper than kMaxJsonlDepth.
inline void require_json_depth(std::string_view text, const std::string& where) {
  if (json_nests_deeper_than(text, kMaxJsonlDepth))
    fail_input(where + ": nested deeper than " + std::to_string(kMaxJsonlDepth) + " levels");
}

// One line's JSON value; BadInput naming `where` and the parser's complaint when it is not JSON
// (or nests deeper than kMaxJsonlDepth).
template <class Json = nlohmann::json>
Json parse_jsonl_line(const std::string& line, const std::string& where) {
  require_json_depth(line, where);
  try {
    return Json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    fail_input(where + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace csq
