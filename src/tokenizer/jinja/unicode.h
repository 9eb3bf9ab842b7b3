// UTF-8 helpers for the Jinja interpreter: Python strings index by code point, and its
// whitespace, printability and case rules are Unicode's.
#pragma once

#include <string>

namespace csq::jinja {

bool is_valid_utf8(const std::string& s);
std::u32string utf8_decode(const std::string& s);  // input must be valid UTF-8
std::string utf8_encode(const std::u32string& s);
void utf8_append(std::string& out, char32_t cp);
size_t utf8_length(const std::string& s);  // code points

bool py_is_space(char32_t c);      // str.isspace()
bool py_is_printable(char32_t c);  // str.isprintable()
std::string py_upper(const std::string& s);  // str.upper() (full case mapping)
std::string py_lower(const std::string& s);

// str.strip(chars) family; `chars` null means whitespace.
std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right);

}  // namespace csq::jinja
