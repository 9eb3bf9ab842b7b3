#include "tokenizer/pretokenizer.h"

#include <unicode/uchar.h>

#include <array>
#include <cstdint>

namespace csq::tok {
namespace {

constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum Cls : uint8_t { kOther, kLetter, kNumber, kSpace };

Cls classify(uint32_t cp) {
  switch (u_charType(UChar32(cp))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    default:
      return u_isUWhiteSpace(UChar32(cp)) ? kSpace : kOther;
  }
}

const std::array<Cls, 128>& ascii_classes() {
  static const std::array<Cls, 128> table = [] {
    std::array<Cls, 128> t{};
    for (uint32_t c = 0; c < 128; ++c) t[c] = classify(c);
    return t;
  }();
  return table;
}

struct Ch {
  uint32_t cp;
  uint32_t len;
  Cls cls;
};

// The text is well-formed UTF-8 (the tokenizer sanitizes it first).
inline Ch char_at(const uint8_t* p, size_t pos, const std::array<Cls, 128>& ascii) {
  const uint8_t b = p[pos];
  if (b < 0x80) return {b, 1, ascii[b]};
  uint32_t cp;
  uint32_t len;
  if (b < 0xE0) {
    cp = (uint32_t(b & 0x1F) << 6) | (p[pos + 1] & 0x3F);
    len = 2;
  } else if (b < 0xF0) {
    cp = (uint32_t(b & 0x0F) << 12) | (uint32_t(p[pos + 1] & 0x3F) << 6) | (p[pos + 2] & 0x3F);
    len = 3;
  } else {
    cp = (uint32_t(b & 0x07) << 18) | (uint32_t(p[pos + 1] & 0x3F) << 12) |
         (uint32_t(p[pos + 2] & 0x3F) << 6) | (p[pos + 3] & 0x3F);
    len = 4;
  }
  return {cp, len, classify(cp)};
}

inline size_t skip_class(const uint8_t* p, size_t n, size_t pos, Cls cls, const std::array<Cls, 128>& ascii) {
  while (pos < n) {
    const Ch c = char_at(p, pos, ascii);
    if (c.cls != cls) break;
    pos += c.len;
  }
  return pos;
}

inline uint8_t ascii_lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? uint8_t(c | 0x20) : c; }

// (?i:'s|'t|'re|'ve|'m|'ll|'d): length of the match at p[pos] == '\'', or 0.
size_t contraction(const uint8_t* p, size_t n, size_t pos) {
  if (pos + 1 >= n) return 0;
  const uint8_t c1 = ascii_lower(p[pos + 1]);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= n) return 0;
  // U+017F LATIN SMALL LETTER LONG S case-folds to 's'.
  if (p[pos + 1] == 0xC5 && p[pos + 2] == 0xBF) return 3;
  const uint8_t c2 = ascii_lower(p[pos + 2]);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

}  // namespace

std::optional<SplitRule> split_rule_from_pattern(std::string_view pattern) {
  if (pattern == kQwen2Pattern) return SplitRule::Qwen2;
  if (pattern == kLlama3Pattern) return SplitRule::Llama3;
  return std::nullopt;
}

std::string_view split_rule_pattern(SplitRule rule) {
  return rule == SplitRule::Qwen2 ? kQwen2Pattern : kLlama3Pattern;
}

size_t split_next(std::string_view text, size_t pos, SplitRule rule) {
  const auto& ascii = ascii_classes();
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();

  if (p[pos] == '\'') {
    if (const size_t len = contraction(p, n, pos)) return pos + len;
  }
  const Ch c0 = char_at(p, pos, ascii);
  const size_t after0 = pos + c0.len;

  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c0.cls == kLetter) return skip_class(p, n, after0, kLetter, ascii);
  if (c0.cls != kNumber && c0.cp != '\r' && c0.cp != '\n' && after0 < n &&
      char_at(p, after0, ascii).cls == kLetter)
    return skip_class(p, n, after0, kLetter, ascii);

  // \p{N} or \p{N}{1,3}
  if (c0.cls == kNumber) {
    if (rule == SplitRule::Qwen2) return after0;
    size_t end = after0;
    for (int k = 1; k < 3 && end < n; ++k) {
      const Ch c = char_at(p, end, ascii);
      if (c.cls != kNumber) break;
      end += c.len;
    }
    return end;
  }

  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t start = std::string_view::npos;
  if (c0.cls == kOther) {
    start = pos;
  } else if (c0.cp == ' ' && after0 < n && char_at(p, after0, ascii).cls == kOther) {
    start = after0;
  }
  if (start != std::string_view::npos) {
    size_t end = skip_class(p, n, start, kOther, ascii);
    while (end < n && (p[end] == '\r' || p[end] == '\n')) ++end;
    return end;
  }

  // c0 is whitespace. \s*[\r\n]+ ends after the run's last line break; otherwise
  // \s+(?!\S) leaves the run's last character to start the next piece, unless the run
  // ends the text or is a single character (then \s+).
  size_t end = pos;
  size_t last_break_end = 0;
  size_t last_char = pos;
  while (end < n) {
    const Ch c = char_at(p, end, ascii);
    if (c.cls != kSpace) break;
    if (c.cp == '\r' || c.cp == '\n') last_break_end = end + 1;
    last_char = end;
    end += c.len;
  }
  if (last_break_end != 0) return last_break_end;
  if (end == n || last_char == pos) return end;
  return last_char;
}

}  // namespace csq::tok
