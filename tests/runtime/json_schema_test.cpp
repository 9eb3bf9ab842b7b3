// JSON Schema → automaton: what it accepts and rejects, exact integer and number bounds,
// string escapes, property order and optionality, whitespace, and errors for what is not
// supported.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/constraint.h"
#include "runtime/json_schema.h"
#include "runtime/regex_dfa.h"

namespace csq {
namespace {

using J = nlohmann::ordered_json;

rx::LazyDfa dfa_of(const J& schema) { return rx::LazyDfa(rx::compile(json_schema_expression(schema))); }

TEST(JsonSchema, IntegerBoundsAreExact) {
  std::mt19937 rng(7);
  std::vector<std::pair<int64_t, int64_t>> ranges = {{0, 10}, {1, 65535}, {-40, 7}, {-999, -100}, {95, 1234}, {0, 0}, {-1, 0}, {7, 7}};
  for (int i = 0; i < 12; ++i) {
    const int64_t a = int64_t(rng() % 4000) - 2000, b = a + int64_t(rng() % 3000);
    ranges.push_back({a, b});
  }
  for (auto [lo, hi] : ranges) {
    SCOPED_TRACE(std::to_string(lo) + ".." + std::to_string(hi));
    rx::LazyDfa dfa = dfa_of({{"type", "integer"}, {"minimum", lo}, {"maximum", hi}});
    for (int64_t x = lo - 150; x <= hi + 150; ++x) ASSERT_EQ(dfa.matches(std::to_string(x)), x >= lo && x <= hi) << x;
    EXPECT_FALSE(dfa.matches("0" + std::to_string(std::abs(lo))));  // no leading zeros
  }
  rx::LazyDfa from = dfa_of({{"type", "integer"}, {"exclusiveMinimum", -3}});
  EXPECT_FALSE(from.matches("-3"));
  EXPECT_TRUE(from.matches("-2"));
  EXPECT_TRUE(from.matches("123456789012"));
  rx::LazyDfa upto = dfa_of({{"type", "integer"}, {"exclusiveMaximum", 100}, {"minimum", 0.5}});
  EXPECT_FALSE(upto.matches("0"));
  EXPECT_TRUE(upto.matches("1"));
  EXPECT_TRUE(upto.matches("99"));
  EXPECT_FALSE(upto.matches("100"));
  rx::LazyDfa any = dfa_of({{"type", "integer"}});
  EXPECT_TRUE(any.matches("-17"));
  EXPECT_FALSE(any.matches("1.0"));
  EXPECT_FALSE(any.matches("01"));
}

TEST(JsonSchema, NumberBoundsAreExact) {
  rx::LazyDfa dfa = dfa_of({{"type", "number"}, {"minimum", -2}, {"maximum", 10}});
  for (const char* ok : {"0", "10", "10.000", "9.999", "-2", "-2.0", "-1.5", "-0.25", "3.14159"}) EXPECT_TRUE(dfa.matches(ok)) << ok;
  for (const char* bad : {"10.001", "11", "-2.5", "-3", "1e2", "01.5", "1.", ".5"}) EXPECT_FALSE(dfa.matches(bad)) << bad;
  rx::LazyDfa neg = dfa_of({{"type", "number"}, {"maximum", -1}});
  EXPECT_TRUE(neg.matches("-1"));
  EXPECT_TRUE(neg.matches("-1.5"));
  EXPECT_TRUE(neg.matches("-123456.7"));
  EXPECT_FALSE(neg.matches("-0.5"));
  EXPECT_FALSE(neg.matches("0"));
  rx::LazyDfa any = dfa_of({{"type", "number"}});
  for (const char* ok : {"0", "-0.5", "1e10", "2.5E-3", "123"}) EXPECT_TRUE(any.matches(ok)) << ok;
  for (const char* bad : {"+1", "1e", "0x1", "NaN"}) EXPECT_FALSE(any.matches(bad)) << bad;
}

TEST(JsonSchema, StringsAndEscapes) {
  rx::LazyDfa s = dfa_of({{"type", "string"}, {"maxLength", 3}});
  for (const char* ok : {R"("")", R"("abc")", R"("a\"b")", R"("\u00e9\n")", R"("\ud83d\ude00")", "\"中文\"", R"("\/")"}) EXPECT_TRUE(s.matches(ok)) << ok;
  for (const char* bad : {R"("abcd")", R"("\ud83d")", R"("\x")", "\"a\nb\"", R"("a"b")", "abc"}) EXPECT_FALSE(s.matches(bad)) << bad;
  rx::LazyDfa min = dfa_of({{"type", "string"}, {"minLength", 2}});
  EXPECT_FALSE(min.matches(R"("a")"));
  EXPECT_TRUE(min.matches(R"("ab")"));
  // The pattern applies to the decoded string: what JSON must escape comes out escaped.
  rx::LazyDfa p = dfa_of({{"type", "string"}, {"pattern", "^a\"\\\\[\\n\\x01]$"}});
  EXPECT_TRUE(p.matches(R"("a\"\\\n")"));
  EXPECT_TRUE(p.matches(R"("a\"\\\u0001")"));
  EXPECT_FALSE(p.matches("\"a\"\\\n\""));
}

TEST(JsonSchema, ObjectsKeepOrderAndOptionality) {
  const J schema = J::parse(R"({
    "type": "object",
    "properties": {
      "id": {"type": "string", "pattern": "CVE-[0-9]{4}-[0-9]{4,7}"},
      "cvss": {"type": "number", "minimum": 0, "maximum": 10},
      "tags": {"type": "array", "items": {"enum": ["rce", "xss", "sqli"]}, "minItems": 1, "maxItems": 2},
      "vendor": {"type": ["string", "null"]},
      "fixed": {"type": "boolean"}
    },
    "required": ["cvss", "tags"],
    "title": "finding", "description": "annotations are accepted"
  })");
  rx::LazyDfa dfa = dfa_of(schema);
  for (const char* ok : {
           R"({"cvss":9.8,"tags":["rce"]})",
           R"({"id":"CVE-2024-12345","cvss":5,"tags":["xss","sqli"],"vendor":null,"fixed":true})",
           R"({"cvss": 0, "tags": ["rce"], "fixed": false})",
           "{\n  \"cvss\": 10,\n  \"tags\": [\n    \"rce\"\n  ]\n}",
       }) {
    EXPECT_TRUE(dfa.matches(ok)) << ok;
  }
  for (const char* bad : {
           R"({"tags":["rce"],"cvss":9.8})",            // order
           R"({"cvss":9.8})",                          // required
           R"({"cvss":9.8,"tags":[]})",                // minItems
           R"({"cvss":9.8,"tags":["rce","xss","rce"]})",  // maxItems
           R"({"cvss":9.8,"tags":["rce"],})",          // trailing comma
           R"({"cvss":9.8,"tags":["rce"],"other":1})",  // undeclared property
           R"( {"cvss":9.8,"tags":["rce"]})",          // leading whitespace
           R"({"cvss":9.8,"tags":["rce"]} )",          // trailing whitespace
           R"({"cvss":11,"tags":["rce"]})",
       }) {
    EXPECT_FALSE(dfa.matches(bad)) << bad;
  }
}

// Random documents of a nested schema, printed compactly and pretty (indent 2), all accepted.
TEST(JsonSchema, AcceptsPrettyAndCompactDocuments) {
  const J schema = J::parse(R"({
    "$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
    "type": "object",
    "properties": {
      "host": {"type": "object", "properties": {
        "name": {"type": "string"},
        "ports": {"type": "array", "items": {"$ref": "#/$defs/port"}},
        "os": {"anyOf": [{"const": "linux"}, {"enum": ["windows", "macos", null]}]}
      }, "required": ["name", "ports", "os"]},
      "score": {"type": "integer", "minimum": -5, "maximum": 5}
    },
    "required": ["host", "score"]
  })");
  rx::LazyDfa dfa = dfa_of(schema);
  std::mt19937 rng(3);
  const std::vector<J> os = {"linux", "windows", "macos", nullptr};
  const std::vector<std::string> pieces = {"a", "\"", "\\", "\n", "\t", "é", "中", "/", "\x01", "😀"};
  for (int i = 0; i < 200; ++i) {
    J ports = J::array();
    for (int k = int(rng() % 4); k > 0; --k) ports.push_back(1 + int(rng() % 65535));
    std::string name;
    for (int k = int(rng() % 6); k > 0; --k) name += pieces[rng() % pieces.size()];
    J doc = {{"host", {{"name", name}, {"ports", ports}, {"os", os[rng() % 4]}}}, {"score", int(rng() % 11) - 5}};
    ASSERT_TRUE(dfa.matches(doc.dump())) << doc.dump();
    ASSERT_TRUE(dfa.matches(doc.dump(2))) << doc.dump(2);
  }
}

TEST(JsonSchema, MapsAnyValuesAndJsonObjects) {
  rx::LazyDfa map = dfa_of({{"type", "object"}, {"additionalProperties", {{"type", "integer"}}}});
  EXPECT_TRUE(map.matches(R"({})"));
  EXPECT_TRUE(map.matches(R"({"a": 1, "b": -2})"));
  EXPECT_FALSE(map.matches(R"({"a": "x"})"));
  rx::LazyDfa empty = dfa_of({{"type", "object"}, {"additionalProperties", false}});
  EXPECT_TRUE(empty.matches("{}"));
  EXPECT_FALSE(empty.matches(R"({"a":1})"));
  rx::LazyDfa any = dfa_of(J::object());
  for (const char* ok : {"1", "\"x\"", "null", "[1, {\"a\": [true]}]", "{}"}) EXPECT_TRUE(any.matches(ok)) << ok;
  rx::LazyDfa obj(rx::compile(json_object_expression(3)));
  EXPECT_TRUE(obj.matches(R"({"a": {"b": [1, 2.5, "x", null]}, "c": false})"));
  EXPECT_TRUE(obj.matches("{}"));
  EXPECT_FALSE(obj.matches("[]"));
  EXPECT_FALSE(obj.matches(R"({"a": {"b": [[1]]}})"));  // four levels
  EXPECT_FALSE(obj.matches(R"({"a" 1})"));
  rx::LazyDfa deep(rx::compile(json_object_expression(json_object_max_depth)));
  EXPECT_TRUE(deep.matches(R"({"a": {"b": [[{"c": 1}]]}})"));
}

TEST(JsonSchema, UnsupportedKeywordsAreErrorsNamingThePath) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"type":"object","properties":{"when":{"type":"string","format":"date"}}})", "\"format\" at #/properties/when"},
      {R"({"oneOf":[{"type":"string"}]})", "\"oneOf\" at #"},
      {R"({"type":"integer","multipleOf":5})", "\"multipleOf\" at #"},
      {R"({"type":"array","prefixItems":[]})", "\"prefixItems\""},
      {R"({"type":"integer","minLength":1})", "\"minLength\" does not apply"},
      {R"({"minimum":1})", "needs a \"type\""},
      {R"({"type":"number","exclusiveMaximum":1})", "exclusiveMinimum/exclusiveMaximum on numbers"},
      {R"({"type":"number","maximum":1.5})", "fractional bounds"},
      {R"({"type":"integer","minimum":5,"maximum":4})", "no integer"},
      {R"({"type":"object","properties":{"a":{"type":"string"}},"required":["b"]})", "\"b\" is not in"},
      {R"({"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"})", "recursive $ref"},
      {R"({"$ref":"#/$defs/missing"})", "cannot resolve"},
      {R"j({"type":"string","pattern":"(?=x)"})j", "#/pattern"},
      {R"({"type":"date"})", "unknown type"},
      {R"({"enum":[1,2],"maxLength":3})", "together with \"enum\""},
      {"false", "admits no value"},
  };
  for (const auto& [schema, message] : bad) {
    try {
      json_schema_expression(J::parse(schema));
      ADD_FAILURE() << "accepted " << schema;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Usage);
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << schema << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace csq
