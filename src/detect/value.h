// Sigma values: strings with `*`/`?` wildcards and `\` escapes, the transformations the
// modifier appendix defines (windash, base64, base64offset, utf16*, expand) and the compiled
// tests a field value is checked against (exact, contains, startswith, endswith, wildcard,
// RE2 regex, CIDR, numeric and time comparisons, field references).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace csq::detect {

// ASCII case folding: Sigma matches case-insensitively by default; non-ASCII bytes compare as they are.
inline char fold(char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }
std::string fold(std::string_view s);

// A Sigma string split into literal runs and wildcards, escapes resolved.
struct Pattern {
  enum class Piece : uint8_t { Literal, AnyRun, AnyOne };
  struct Part {
    Piece kind;
    std::string text;  // Literal only
  };
  std::vector<Part> parts;

  static Pattern parse(std::string_view sigma);
  bool has_wildcards() const;
  std::string plain() const;  // literal text (only meaningful without wildcards)
};
// Escapes `*`, `?` and `\` so a plain string reads back as itself.
std::string escape_sigma(std::string_view plain);

// Transformations of the modifier appendix, applied to plain strings; each returns the variants
// the value expands to (combined with OR).
std::vector<std::string> windash_variants(const std::string& value);
std::string base64_encode(std::string_view bytes);
std::vector<std::string> base64offset_variants(const std::string& bytes);
std::string utf16_encode(const std::string& utf8, bool big_endian, bool bom);

// Placeholder values for `expand` (%name% → values), from a YAML map name → list.
using Placeholders = std::map<std::string, std::vector<std::string>>;
Placeholders load_placeholders(const std::string& path);

// What one value test does with the field value.
enum class TestKind : uint8_t {
  Exact,       // whole value equal
  Contains,
  StartsWith,
  EndsWith,
  Wildcard,    // general `*`/`?` pattern
  Regex,       // RE2, unanchored search
  Cidr,
  Lt, Lte, Gt, Gte, NumEq,  // numeric (after a time part extraction when `time_part` is set)
  Exists,      // field present (value: expect_present)
  Null,        // field absent or empty
  FieldRef,    // compare with another field's value (ref_field)
};

enum class TimePart : uint8_t { None, Minute, Hour, Day, Week, Month, Year };

struct Cidr {
  bool v6 = false;
  uint8_t addr[16] = {};
  int prefix = 0;
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(std::string_view ip) const;
};

struct ValueTest {
  TestKind kind = TestKind::Exact;
  bool cased = false;          // `cased`: no folding
  bool expect_present = true;  // Exists
  std::string literal;         // folded unless cased; Exact/Contains/StartsWith/EndsWith
  Pattern pattern;             // Wildcard (literals folded unless cased)
  std::shared_ptr<const re2::RE2> regex;
  Cidr cidr;
  double number = 0;
  TimePart time_part = TimePart::None;
  TestKind ref_kind = TestKind::Exact;  // FieldRef: Exact/Contains/StartsWith/EndsWith
  int ref_field = -1;

  // `value` is the field's text; `folded` its lower-case form (the same object when cased
  // does not matter). Exists/Null/FieldRef are decided by the caller.
  bool matches(std::string_view value, std::string_view folded) const;
};

bool wildcard_match(const Pattern& p, std::string_view text);
bool literal_test(TestKind kind, std::string_view needle, std::string_view text);
std::optional<double> parse_number(std::string_view text);
std::optional<int> extract_time_part(std::string_view date, TimePart part);

}  // namespace csq::detect
