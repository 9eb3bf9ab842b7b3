#include "detect/value.h"

#include <arpa/inet.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace csq::detect {

std::string fold(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = fold(c);
  return out;
}

Pattern Pattern::parse(std::string_view s) {
  // Spec: `\` escapes `*`, `?` and `\`; a backslash before any other character is literal.
  Pattern p;
  std::string lit;
  auto flush = [&] {
    if (!lit.empty()) p.parts.push_back({Piece::Literal, std::move(lit)});
    lit.clear();
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\')) {
      lit += s[++i];
    } else if (c == '*') {
      flush();
      if (p.parts.empty() || p.parts.back().kind != Piece::AnyRun) p.parts.push_back({Piece::AnyRun, {}});
    } else if (c == '?') {
      flush();
      p.parts.push_back({Piece::AnyOne, {}});
    } else {
      lit += c;
    }
  }
  flush();
  return p;
}

bool Pattern::has_wildcards() const {
  for (const Part& part : parts)
    if (part.kind != Piece::Literal) return true;
  return false;
}

std::string Pattern::plain() const {
  std::string out;
  for (const Part& part : parts) out += part.text;
  return out;
}

std::string escape_sigma(std::string_view plain) {
  std::string out;
  out.reserve(plain.size());
  for (char c : plain) {
    if (c == '*' || c == '?' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

namespace {

bool is_word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

}  // namespace

std::vector<std::string> windash_variants(const std::string& value) {
  // A dash or slash that starts a word (`\B[-/]\b`, as pySigma finds command-line flags) takes
  // each of the five characters Windows accepts; every combination over those positions.
  static const char* const kDashes[] = {"-", "/", "\xE2\x80\x93", "\xE2\x80\x94", "\xE2\x80\x95"};
  std::vector<size_t> positions;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '-' && value[i] != '/') continue;
    const bool word_before = i > 0 && is_word_char((unsigned char)value[i - 1]);
    const bool word_after = i + 1 < value.size() && is_word_char((unsigned char)value[i + 1]);
    if (!word_before && word_after) positions.push_back(i);
  }
  // 5^4 = 625 variants at most; beyond four flags one dash character is used everywhere.
  const bool combine = positions.size() <= 4;
  size_t total = 1;
  for (size_t i = 0; i < (combine ? positions.size() : 1); ++i) total *= 5;
  std::vector<std::string> out;
  out.reserve(total);
  for (size_t v = 0; v < total; ++v) {
    std::string s;
    size_t next = 0, code = v;
    for (size_t k = 0; k < positions.size(); ++k) {
      s.append(value, next, positions[k] - next);
      s += kDashes[combine ? code % 5 : v];
      if (combine) code /= 5;
      next = positions[k] + 1;
    }
    s.append(value, next, std::string::npos);
    out.push_back(std::move(s));
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<std::string> base64offset_variants(const std::string& bytes) {
  // The value shifted by 0, 1 and 2 bytes inside a longer encoded text: drop the leading and
  // trailing characters that depend on the unknown neighbouring bytes (pySigma's offsets).
  static const size_t kStart[3] = {0, 2, 3};
  static const size_t kEndCut[3] = {0, 3, 2};
  std::vector<std::string> out;
  for (size_t shift = 0; shift < 3; ++shift) {
    const std::string enc = base64_encode(std::string(shift, ' ') + bytes);
    const size_t cut = kEndCut[(bytes.size() + shift) % 3];
    if (enc.size() < kStart[shift] + cut) continue;
    out.push_back(enc.substr(kStart[shift], enc.size() - kStart[shift] - cut));
  }
  return out;
}

std::string utf16_encode(const std::string& s, bool big_endian, bool bom) {
  std::string out;
  auto put = [&](uint16_t unit) {
    const char lo = char(unit & 0xFF), hi = char(unit >> 8);
    if (big_endian) {
      out += hi;
      out += lo;
    } else {
      out += lo;
      out += hi;
    }
  };
  if (bom) put(0xFEFF);
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xF0 && i + 3 < s.size()) {
      cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
      len = 4;
    } else if (c >= 0xE0 && i + 2 < s.size()) {
      cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
      len = 3;
    } else if (c >= 0xC0 && i + 1 < s.size()) {
      cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
      len = 2;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      put(uint16_t(0xD800 + (cp >> 10)));
      put(uint16_t(0xDC00 + (cp & 0x3FF)));
    } else {
      put(uint16_t(cp));
    }
    i += len;
  }
  return out;
}

Placeholders load_placeholders(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    fail_input(path + ": not a readable YAML placeholder file (" + e.what() + ")");
  }
  if (!root.IsMap()) fail_input(path + ": expected a map of placeholder name to a list of values");
  Placeholders out;
  for (const auto& kv : root) {
    const std::string name = kv.first.as<std::string>();
    std::vector<std::string> values;
    if (kv.second.IsScalar()) {
      values.push_back(kv.second.as<std::string>());
    } else if (kv.second.IsSequence()) {
      for (const auto& v : kv.second) {
        if (!v.IsScalar())
          fail_input(path + ":" + std::to_string(v.Mark().line + 1) + ": placeholder '" + name +
                     "' must list plain values");
        values.push_back(v.as<std::string>());
      }
    } else {
      fail_input(path + ":" + std::to_string(kv.second.Mark().line + 1) + ": placeholder '" + name +
                 "' must be a value or a list of values");
    }
    out[name] = std::move(values);
  }
  return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string addr(text.substr(0, slash));
  Cidr c;
  if (inet_pton(AF_INET, addr.c_str(), c.addr) == 1) {
    c.v6 = false;
    c.prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.addr) == 1) {
    c.v6 = true;
    c.prefix = 128;
  } else {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    const std::string bits(text.substr(slash + 1));
    char* end = nullptr;
    const long n = std::strtol(bits.c_str(), &end, 10);
    if (bits.empty() || *end || n < 0 || n > c.prefix) return std::nullopt;
    c.prefix = int(n);
  }
  return c;
}

bool Cidr::contains(std::string_view ip) const {
  if (ip.size() > 64) return false;
  const std::string text(ip);
  uint8_t a[16] = {};
  if (inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), a) != 1) return false;
  const int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a, addr, size_t(full)) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = uint8_t(0xFF << (8 - rest));
  return (a[full] & mask) == (addr[full] & mask);
}

bool wildcard_match(const Pattern& p, std::string_view text) {
  // Iterative matching with one backtrack point per `*`: the last star retries one byte later.
  const auto& parts = p.parts;
  size_t pi = 0, ti = 0;
  size_t star_part = SIZE_MAX, star_text = 0;
  while (true) {
    if (pi == parts.size()) {
      if (ti == text.size()) return true;
    } else {
      const Pattern::Part& part = parts[pi];
      if (part.kind == Pattern::Piece::AnyRun) {
        star_part = pi++;
        star_text = ti;
        continue;
      }
      if (part.kind == Pattern::Piece::AnyOne) {
        if (ti < text.size()) {
          // one UTF-8 character, not one byte
          ++ti;
          while (ti < text.size() && (uint8_t(text[ti]) & 0xC0) == 0x80) ++ti;
          ++pi;
          continue;
        }
      } else if (text.compare(ti, part.text.size(), part.text) == 0 && ti + part.text.size() <= text.size()) {
        ti += part.text.size();
        ++pi;
        continue;
      }
    }
    if (star_part == SIZE_MAX || star_text >= text.size()) return false;
    pi = star_part + 1;
    ti = ++star_text;
  }
}

bool literal_test(TestKind kind, std::string_view needle, std::string_view text) {
  switch (kind) {
    case TestKind::Exact:
      return text == needle;
    case TestKind::Contains:
      return text.find(needle) != std::string_view::npos;
    case TestKind::StartsWith:
      return text.starts_with(needle);
    case TestKind::EndsWith:
      return text.ends_with(needle);
    default:
      return false;
  }
}

std::optional<double> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  char* end = nullptr;
  double v;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    v = double(std::strtoull(s.c_str() + 2, &end, 16));
  } else {
    v = std::strtod(s.c_str(), &end);
  }
  if (end == s.c_str() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int> extract_time_part(std::string_view d, TimePart part) {
  // "YYYY-MM-DD[T ]HH:MM..." as Windows, Sysmon and ISO 8601 write it.
  auto digits = [&](size_t at, size_t n) -> std::optional<int> {
    if (at + n > d.size()) return std::nullopt;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (d[i] < '0' || d[i] > '9') return std::nullopt;
      v = v * 10 + (d[i] - '0');
    }
    return v;
  };
  const auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  if (!year || !month || !day || d[4] != '-' || d[7] != '-') return std::nullopt;
  switch (part) {
    case TimePart::Year:
      return year;
    case TimePart::Month:
      return month;
    case TimePart::Day:
      return day;
    case TimePart::Hour:
      return digits(11, 2);
    case TimePart::Minute:
      return digits(14, 2);
    case TimePart::Week: {
      // ISO 8601 week number.
      auto days_from_civil = [](int y, int m, int dd) {
        y -= m <= 2;
        const int era = (y >= 0 ? y : y - 399) / 400;
        const int yoe = y - era * 400;
        const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
        return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
      };
      const int days = days_from_civil(*year, *month, *day);
      const int weekday = ((days % 7) + 7 + 3) % 7;  // Monday = 0 (1970-01-01 was a Thursday)
      const int thursday = days - weekday + 3;
      int ty = *year;
      if (thursday < days_from_civil(ty, 1, 1)) --ty;
      else if (thursday >= days_from_civil(ty + 1, 1, 1)) ++ty;
      return (thursday - days_from_civil(ty, 1, 1)) / 7 + 1;
    }
    case TimePart::None:
      break;
  }
  return std::nullopt;
}

bool ValueTest::matches(std::string_view value, std::string_view folded) const {
  const std::string_view text = cased ? value : folded;
  switch (kind) {
    case TestKind::Exact:
    case TestKind::Contains:
    case TestKind::StartsWith:
    case TestKind::EndsWith:
      return literal_test(kind, literal, text);
    case TestKind::Wildcard:
      return wildcard_match(pattern, text);
    case TestKind::Regex:
      return RE2::PartialMatch(re2::StringPiece(value.data(), value.size()), *regex);
    case TestKind::Cidr:
      return cidr.contains(value);
    case TestKind::Lt:
    case TestKind::Lte:
    case TestKind::Gt:
    case TestKind::Gte:
    case TestKind::NumEq: {
      std::optional<double> v;
      if (time_part != TimePart::None) {
        if (auto t = extract_time_part(value, time_part)) v = double(*t);
      } else {
        v = parse_number(value);
      }
      if (!v) return false;
      switch (kind) {
        case TestKind::Lt:
          return *v < number;
        case TestKind::Lte:
          return *v <= number;
        case TestKind::Gt:
          return *v > number;
        case TestKind::Gte:
          return *v >= number;
        default:
          return *v == number;
      }
    }
    case TestKind::Exists:
    case TestKind::Null:
    case TestKind::FieldRef:
      break;
  }
  return false;
}

}  // namespace csq::detect
