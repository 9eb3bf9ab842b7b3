#include "tokenizer/jinja/unicode.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include <cctype>
#include <vector>

#include "base/error.h"

namespace csq::jinja {

bool is_valid_utf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    int len = 0;
    char32_t cp = 0;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) utf8_append(out, cp);
  return out;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool py_is_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  const auto dir = u_charDirection(UChar32(c));
  return u_charType(UChar32(c)) == U_SPACE_SEPARATOR || dir == U_WHITE_SPACE_NEUTRAL ||
         dir == U_BLOCK_SEPARATOR || dir == U_SEGMENT_SEPARATOR;
}

bool py_is_printable(char32_t c) {
  if (c == ' ') return true;
  switch (u_charType(UChar32(c))) {
    case U_CONTROL_CHAR: case U_FORMAT_CHAR: case U_SURROGATE: case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED: case U_LINE_SEPARATOR: case U_PARAGRAPH_SEPARATOR: case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

namespace {

std::string change_case(const std::string& s, bool upper) {
  bool ascii = true;
  for (unsigned char c : s) ascii &= c < 0x80;
  if (ascii) {
    std::string out = s;
    for (char& c : out) c = upper ? char(std::toupper(static_cast<unsigned char>(c))) : char(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }
  std::vector<UChar> in(s.size() + 1), out;
  int32_t in_len = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strFromUTF8(in.data(), int32_t(in.size()), &in_len, s.data(), int32_t(s.size()), &status);
  if (U_FAILURE(status)) fail_input("jinja: cannot change the case of a non-UTF-8 string");
  // Full case mapping can grow a string (ß → SS); three times covers every mapping.
  out.resize(size_t(in_len) * 3 + 1);
  status = U_ZERO_ERROR;
  const int32_t out_len = upper ? u_strToUpper(out.data(), int32_t(out.size()), in.data(), in_len, "", &status)
                                : u_strToLower(out.data(), int32_t(out.size()), in.data(), in_len, "", &status);
  if (U_FAILURE(status)) fail_input("jinja: case mapping failed");
  std::string result(size_t(out_len) * 3 + 1, '\0');
  int32_t result_len = 0;
  status = U_ZERO_ERROR;
  u_strToUTF8(result.data(), int32_t(result.size()), &result_len, out.data(), out_len, &status);
  if (U_FAILURE(status)) fail_input("jinja: case mapping failed");
  result.resize(size_t(result_len));
  return result;
}

}  // namespace

std::string py_upper(const std::string& s) { return change_case(s, true); }
std::string py_lower(const std::string& s) { return change_case(s, false); }

std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right) {
  const std::u32string u = utf8_decode(s);
  const std::u32string set = chars ? utf8_decode(*chars) : std::u32string();
  auto strip_it = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : py_is_space(c); };
  size_t b = 0, e = u.size();
  if (left) while (b < e && strip_it(u[b])) ++b;
  if (right) while (e > b && strip_it(u[e - 1])) --e;
  return utf8_encode(u.substr(b, e - b));
}

}  // namespace csq::jinja
