// The byte-level regex engine against PCRE2: whole matches and viable prefixes (PCRE2's hard
// partial matching) on random strings, parser errors, UTF-8 classes and the list builder.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/regex_dfa.h"
#include "runtime/regex_pcre.h"

namespace csq {
namespace {

rx::LazyDfa dfa_of(const std::string& pattern) { return rx::LazyDfa(rx::compile(rx::parse(pattern))); }

TEST(RegexDfa, MatchesLikePcre2OnRandomStrings) {
  const std::vector<std::string> patterns = {
      "CWE-[0-9]{1,4}",
      "(CVE|CWE)-\\d{4,7}",
      "[^a-c]+x?",
      ".{2,3}",
      "(ab|a)(c|bcd)(d*)",
      "[\\w.-]+@[a-z]+\\.(com|org)",
      "é+|[α-ω]{2}",
      "[^\\s]*",
      "a{0}b",
      "(a|)+b",
      "x*?y+?",
      "[]a]|[^]a]",
      "\\x41\\x{e9}\\x{4e2d}\\.\\*",
      "(?:a|b)(?<n>c)(?P<m>d)?",
      "[a-\\x{10FFFF}]",
      "T[0-9]{4}(\\.[0-9]{3})?",
      "AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]",
      "a{2,}b{3}c{1,2}d{",
      "^x|y$",
      "[-a]|[a-]|\\s\\S\\d\\D\\w\\W",
  };
  std::mt19937 rng(42);
  const std::vector<std::string> extras = {"a", "b", "x", "-", "0", "9", " ", "\n", "é", "α", "ω", "中", "\xF0\x9F\x98\x80", "{", ",", "3", "}"};
  for (const std::string& pattern : patterns) {
    SCOPED_TRACE(pattern);
    test::Pcre pcre(pattern);
    rx::LazyDfa dfa = dfa_of(pattern);
    std::vector<std::string> alphabet = extras;
    for (char c : pattern) {
      if (uint8_t(c) < 0x80) alphabet.push_back(std::string(1, c));
    }
    for (int trial = 0; trial < 3000; ++trial) {
      std::string s;
      const int len = int(rng() % 9);
      for (int k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
      ASSERT_EQ(dfa.matches(s), pcre.full(s)) << "text \"" << s << "\"";
      if (s.empty()) continue;  // PCRE2 reports no partial match for an empty subject
      ASSERT_EQ(dfa.walk(dfa.start(), s) != rx::LazyDfa::kDead, pcre.viable(s)) << "prefix \"" << s << "\"";
    }
  }
}

TEST(RegexDfa, ExamplesAndAnchoring) {
  rx::LazyDfa cwe = dfa_of("CWE-[0-9]{1,4}");
  EXPECT_TRUE(cwe.matches("CWE-79"));
  EXPECT_TRUE(cwe.matches("CWE-1234"));
  EXPECT_FALSE(cwe.matches("CWE-12345"));
  EXPECT_FALSE(cwe.matches("xCWE-1"));
  EXPECT_FALSE(cwe.matches("CWE-"));
  EXPECT_TRUE(dfa_of("\\u00e9\\x{1F600}").matches("é😀"));
  EXPECT_NE(cwe.walk(cwe.start(), "CW"), rx::LazyDfa::kDead);
  EXPECT_EQ(cwe.walk(cwe.start(), "CWX"), rx::LazyDfa::kDead);
  // A prefix that no continuation can complete is dead even if bytes could still be consumed.
  rx::LazyDfa never = dfa_of("a[^\\x00-\\x{10FFFF}]|b");
  EXPECT_EQ(never.walk(never.start(), "a"), rx::LazyDfa::kDead);
  EXPECT_TRUE(never.matches("b"));
}

TEST(RegexDfa, ClassesMatchWholeCodePoints) {
  rx::LazyDfa any = rx::LazyDfa(rx::compile(rx::code_points({{0x80, 0x10FFFF}})));
  for (uint32_t cp = 0x80; cp <= 0x10FFFF; cp += cp < 0x20000 ? 7 : 4099) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    if (cp < 0x800) {
      s = {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    } else if (cp < 0x10000) {
      s = {char(0xE0 | (cp >> 12)), char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
    } else {
      s = {char(0xF0 | (cp >> 18)), char(0x80 | ((cp >> 12) & 0x3F)), char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
    }
    ASSERT_TRUE(any.matches(s)) << std::hex << cp;
  }
  EXPECT_FALSE(any.matches("a"));
  EXPECT_FALSE(any.matches("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(any.matches("\xC0\x80"));      // overlong
  EXPECT_FALSE(any.matches("\xF4\x90\x80\x80"));  // above U+10FFFF
  rx::LazyDfa dot = dfa_of(".");
  EXPECT_TRUE(dot.matches("中"));
  EXPECT_FALSE(dot.matches("\n"));
  EXPECT_FALSE(dot.matches("\xE4\xB8"));  // half a character
  EXPECT_TRUE(dfa_of("[^a]").matches("\n"));
}

TEST(RegexDfa, ListBuilder) {
  auto dfa_list = [](int min, int max) {
    return rx::LazyDfa(rx::compile(rx::list(rx::literal("ab"), rx::literal(","), min, max)));
  };
  rx::LazyDfa some = dfa_list(2, rx::kUnbounded);
  EXPECT_FALSE(some.matches("ab"));
  EXPECT_TRUE(some.matches("ab,ab"));
  EXPECT_TRUE(some.matches("ab,ab,ab,ab"));
  EXPECT_FALSE(some.matches("ab,ab,"));
  rx::LazyDfa any = dfa_list(0, rx::kUnbounded);
  EXPECT_TRUE(any.matches(""));
  EXPECT_TRUE(any.matches("ab"));
  rx::LazyDfa bounded = dfa_list(0, 2);
  EXPECT_TRUE(bounded.matches(""));
  EXPECT_TRUE(bounded.matches("ab,ab"));
  EXPECT_FALSE(bounded.matches("ab,ab,ab"));
  EXPECT_FALSE(rx::LazyDfa(rx::compile(rx::alt({}))).matches(""));
}

TEST(RegexDfa, ParseErrorsNameConstructAndPosition) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"a(b", "unbalanced '(' at position 1"},
      {"ab)", "unbalanced ')' at position 2"},
      {"*a", "nothing to repeat"},
      {"a**", "nothing to repeat before '*' at position 2"},
      {"a{3,2}", "n < m"},
      {"a{1001}", "above 1000"},
      {"(?=a)", "lookahead"},
      {"(?<=a)b", "lookbehind"},
      {"(?i)a", "inline flags"},
      {"(a)\\1", "backreference"},
      {"[abc", "unterminated character class"},
      {"[z-a]", "out of order"},
      {"\\p{L}", "escape \\p not supported at position 0"},
      {"a\\bc", "word boundary"},
      {"[[:alpha:]]", "POSIX"},
      {"a++", "possessive"},
      {"a^b", "'^' is only supported at the start"},
      {"a$b", "'$' is only supported at the end"},
      {"ab\\", "ends with a backslash"},
      {"\\xZZ", "hexadecimal"},
      {"\\uD800", "Unicode scalar"},
      {"a\xFF", "invalid UTF-8 at position 1"},
  };
  for (const auto& [pattern, message] : bad) {
    try {
      rx::parse(pattern);
      ADD_FAILURE() << "accepted " << pattern;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Usage);
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << pattern << ": " << e.what();
    }
  }
}

TEST(RegexDfa, StateLimitIsAnError) {
  rx::LazyDfa dfa(rx::compile(rx::parse("(a|b)*a(a|b){12}")), 100);
  std::mt19937 rng(1);
  EXPECT_THROW(
      {
        int32_t s = dfa.start();
        for (int i = 0; i < 10000; ++i) s = dfa.step(s, rng() % 2 ? 'a' : 'b');
      },
      Error);
  EXPECT_THROW(rx::compile(rx::parse("(((a{1000}){1000}){1000})")), Error);
}

}  // namespace
}  // namespace csq
