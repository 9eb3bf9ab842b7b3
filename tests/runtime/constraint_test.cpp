// Token constraints: masks against an independent oracle (PCRE2 viability on a synthetic
// vocabulary, byte-by-byte automaton walks on the real Qwen3 vocabulary), the API's contract,
// and the acceptance runs: random-weight Qwen3 sampling under choice, regex and JSON Schema
// constraints always yields a valid answer (200 seeds each).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "runtime/constraint.h"
#include "runtime/json_schema.h"
#include "runtime/regex_dfa.h"
#include "runtime/regex_pcre.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace csq {
namespace {

using J = nlohmann::ordered_json;

// Number of bytes a UTF-8 lead byte announces (0 for a continuation or invalid byte).
int utf8_width(uint8_t b) { return b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0; }

// Whether some continuation of `text` matches, by PCRE2; a character cut at the end is
// completed in every possible way (the synthetic vocabulary has no 4-byte characters).
bool viable(const test::Pcre& pcre, const std::string& text) {
  size_t lead = text.size();
  for (size_t k = 1; k <= 3 && k <= text.size(); ++k) {
    if ((uint8_t(text[text.size() - k]) & 0xC0) != 0x80) {
      lead = text.size() - k;
      break;
    }
  }
  const int width = lead < text.size() ? utf8_width(uint8_t(text[lead])) : 0;
  const int missing = width - int(text.size() - lead);
  if (width == 0 || missing <= 0) return pcre.viable(text);
  if (missing > 2) ADD_FAILURE() << "test vocabulary has a 4-byte character";
  for (int a = 0x80; a < 0xC0; ++a) {
    if (missing == 1 && pcre.viable(text + char(a))) return true;
    for (int b = 0x80; missing == 2 && b < 0xC0; ++b) {
      if (pcre.viable(text + char(a) + char(b))) return true;
    }
  }
  return false;
}

// Every string of 1..3 symbols over a small alphabet (with parts of multi-byte characters),
// a few longer words, and some ids that never take part (as special tokens).
std::vector<std::optional<std::string>> synthetic_vocabulary() {
  const std::vector<std::string> symbols = {"a", "b", "C", "-", "1", "7", " ", "\"", "é", "\xC3", "\xA9", "中", "\xE4\xB8", "\xAD"};
  std::vector<std::optional<std::string>> v = {std::nullopt};
  for (const auto& x : symbols) {
    v.push_back(x);
    for (const auto& y : symbols) {
      v.push_back(x + y);
      for (const auto& z : {"a", "1", "\"", "\xC3"}) v.push_back(x + y + z);
    }
  }
  for (const char* w : {"CWE-", "CWE", "WE-7", "abba", "baba", "777", "aaaa", "\"a\"", "中文"}) v.push_back(std::string(w));
  v.push_back(std::nullopt);
  v.push_back(std::string("ab"));  // a duplicate spelling: both ids must be allowed alike
  return v;
}

void expect_masks_match_pcre(const std::string& pattern, uint32_t seed) {
  SCOPED_TRACE(pattern);
  const auto vocab = synthetic_vocabulary();
  test::Pcre pcre(pattern);
  auto c = make_regex_constraint(constraint_vocabulary(vocab), pattern);
  std::mt19937 rng(seed);
  for (int walk = 0; walk < 6; ++walk) {
    auto w = c->fresh();
    std::string text;
    for (int step = 0; step < 12; ++step) {
      std::vector<uint8_t> allowed(vocab.size() + 5, 1);  // longer than the vocabulary, like logits
      w->mask(allowed);
      std::vector<int32_t> ids;
      for (size_t id = 0; id < allowed.size(); ++id) {
        const bool expect = id < vocab.size() && vocab[id] && viable(pcre, text + *vocab[id]);
        ASSERT_EQ(allowed[id] != 0, expect) << "after \"" << text << "\", token " << id;
        if (expect) ids.push_back(int32_t(id));
      }
      ASSERT_EQ(w->can_end(), pcre.full(text)) << text;
      ASSERT_EQ(w->must_end(), pcre.full(text) && ids.empty()) << text;
      if (ids.empty()) break;
      const int32_t pick = ids[rng() % ids.size()];
      w->accept(pick);
      text += *vocab[size_t(pick)];
    }
  }
}

TEST(Constraint, SyntheticMasksEqualPcreViability) {
  expect_masks_match_pcre("CWE-[0-9]{1,4}", 1);
  expect_masks_match_pcre("(ab|ba)+7?", 2);
  expect_masks_match_pcre("[^\"]{0,6}", 3);
  expect_masks_match_pcre("\"(a|é|中)*\"", 4);
  expect_masks_match_pcre("[a-c]+ [^ab\"]{2}", 5);
  expect_masks_match_pcre(".*C", 6);
}

TEST(Constraint, ApiContract) {
  const auto vocab = constraint_vocabulary(std::vector<std::optional<std::string>>{"A", "B", "AB", "C", std::nullopt, "ABC", ""});
  auto c = make_choice_constraint(vocab, {"A", "ABC"});
  std::vector<uint8_t> allowed(9, 1);
  allowed[2] = 0;  // already banned by the caller: stays banned
  c->mask(allowed);
  EXPECT_EQ(allowed, (std::vector<uint8_t>{1, 0, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_FALSE(c->can_end());
  EXPECT_THROW(c->accept(1), Error);
  EXPECT_THROW(c->accept(4), Error);   // no bytes
  EXPECT_THROW(c->accept(99), Error);  // out of range
  c->accept(0);
  EXPECT_TRUE(c->can_end());
  EXPECT_FALSE(c->must_end());
  auto again = c->fresh();
  EXPECT_FALSE(again->can_end());
  c->accept(1);
  c->accept(3);
  EXPECT_TRUE(c->must_end());
  allowed.assign(9, 1);
  c->mask(allowed);
  EXPECT_EQ(allowed, std::vector<uint8_t>(9, 0));
  again->accept(5);
  EXPECT_TRUE(again->must_end());
  EXPECT_THROW(make_choice_constraint(vocab, {}), Error);
  EXPECT_THROW(make_choice_constraint(vocab, {"A", ""}), Error);
  EXPECT_THROW(make_regex_constraint(vocab, "(a"), Error);
  EXPECT_THROW(make_json_schema_constraint(vocab, J::parse(R"({"type":"string","format":"uri"})")), Error);
}

// The real vocabulary: the trie walk against walking every token's bytes through the automaton.
TEST(Constraint, RealVocabularyMasksAreExact) {
  CSQ_REQUIRE_FIXTURES();
  const Tokenizer tok = load_tokenizer(test::fixture("hf/qwen3-tiny-vocab"));
  const auto vocab = constraint_vocabulary(tok);
  const std::vector<std::pair<std::string, rx::NodePtr>> cases = {
      {"regex", rx::parse("(CWE-[1-9][0-9]{0,3}|CVE-20[0-9]{2}-[0-9]{4,5})( \\(([a-z]{1,8} ?){1,3}\\))?")},
      {"unicode", rx::parse("[^\\x00-\\x7F]{1,4}|Ä+")},
      {"json object", json_object_expression(json_object_max_depth)},
  };
  std::mt19937 rng(11);
  for (const auto& [name, expr] : cases) {
    SCOPED_TRACE(name);
    auto c = make_expression_constraint(vocab, expr);
    rx::LazyDfa oracle(rx::compile(expr));
    int32_t state = oracle.start();
    for (int step = 0; step < 8; ++step) {
      std::vector<uint8_t> allowed(size_t(tok.vocab_size()) + 267, 1);  // model rows beyond the tokenizer
      c->mask(allowed);
      std::vector<int32_t> ids;
      for (int32_t id = 0; id < int32_t(allowed.size()); ++id) {
        const bool normal = tok.kind(id) == TokenKind::Normal;
        const bool expect = normal && oracle.walk(state, tok.token_bytes(id)) != rx::LazyDfa::kDead;
        ASSERT_EQ(allowed[size_t(id)] != 0, expect) << "token " << id << " at step " << step;
        if (expect) ids.push_back(id);
      }
      if (ids.empty()) break;
      const int32_t pick = ids[rng() % ids.size()];
      c->accept(pick);
      state = oracle.walk(state, tok.token_bytes(pick));
      ASSERT_EQ(c->can_end(), oracle.accepting(state));
    }
  }
}

// A small validator for the schema subset the acceptance test uses.
bool valid(const nlohmann::json& v, const J& s, std::string& why) {
  auto fail = [&](const std::string& w) {
    why = w + " in " + v.dump();
    return false;
  };
  if (s.contains("enum")) {
    for (const auto& e : s.at("enum")) {
      if (nlohmann::json::parse(e.dump()) == v) return true;
    }
    return fail("not in enum");
  }
  std::vector<std::string> types;
  if (s.at("type").is_array()) {
    for (const auto& t : s.at("type")) types.push_back(t.get<std::string>());
  } else {
    types.push_back(s.at("type").get<std::string>());
  }
  for (const std::string& t : types) {
    if (t == "null" && v.is_null()) return true;
    if (t == "boolean" && v.is_boolean()) return true;
    if (t == "integer" && v.is_number_integer()) {
      if (s.contains("minimum") && v.get<int64_t>() < s.at("minimum").get<int64_t>()) return fail("below minimum");
      if (s.contains("maximum") && v.get<int64_t>() > s.at("maximum").get<int64_t>()) return fail("above maximum");
      return true;
    }
    if (t == "string" && v.is_string()) {
      const std::string str = v.get<std::string>();
      size_t cps = 0;
      for (char ch : str) cps += (uint8_t(ch) & 0xC0) != 0x80;
      if (s.contains("maxLength") && cps > s.at("maxLength").get<size_t>()) return fail("too long");
      if (s.contains("pattern") && !test::Pcre(s.at("pattern").get<std::string>()).full(str)) return fail("pattern");
      return true;
    }
    if (t == "array" && v.is_array()) {
      if (s.contains("maxItems") && v.size() > s.at("maxItems").get<size_t>()) return fail("too many items");
      if (s.contains("minItems") && v.size() < s.at("minItems").get<size_t>()) return fail("too few items");
      for (const auto& item : v) {
        if (!valid(item, s.at("items"), why)) return false;
      }
      return true;
    }
    if (t == "object" && v.is_object()) {
      const J& props = s.at("properties");
      for (const auto& [key, value] : v.items()) {
        if (!props.contains(key)) return fail("unexpected property " + key);
        if (!valid(value, props.at(key), why)) return false;
      }
      for (const auto& r : s.value("required", J::array())) {
        if (!v.contains(r.get<std::string>())) return fail("missing " + r.get<std::string>());
      }
      return true;
    }
  }
  return fail("wrong type");
}

// Softmax sampling at temperature 1 restricted to the allowed ids.
int32_t sample(const std::vector<uint8_t>& allowed, const std::vector<float>& logits, std::mt19937& rng) {
  std::vector<int32_t> ids;
  float top = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (allowed[i]) ids.push_back(int32_t(i)), top = std::max(top, logits[i]);
  }
  EXPECT_FALSE(ids.empty());
  std::vector<double> weight;
  double total = 0;
  for (int32_t id : ids) weight.push_back(total += std::exp(double(logits[size_t(id)] - top)));
  const double u = std::uniform_real_distribution<double>(0, total)(rng);
  return ids[size_t(std::upper_bound(weight.begin(), weight.end(), u) - weight.begin()) % ids.size()];
}

class ConstrainedSampling : public ::testing::Test {
 protected:
  void SetUp() override {
    CSQ_REQUIRE_FIXTURES();
    const std::string dir = test::fixture("hf/qwen3-tiny-vocab");
    tok_ = std::make_unique<Tokenizer>(load_tokenizer(dir));
    model_ = Model::load(dir);
    vocab_ = constraint_vocabulary(*tok_);
    prompt_ = tok_->encode("<|im_start|>assistant\n");
    eos_ = *tok_->eos_id();
  }

  // Samples at temperature 1 among the allowed tokens (and end-of-generation once the
  // constraint can end) until the model ends or the constraint must. Returns the text and
  // whether the constraint was complete.
  std::pair<std::string, bool> generate(TokenConstraint& c, uint32_t seed, int max_tokens) {
    std::mt19937 rng(seed);
    Session session(*model_, int64_t(prompt_.size()) + max_tokens + 1, pool_);
    const std::vector<float>* logits = &session.feed(prompt_);
    std::vector<int32_t> out;
    std::vector<uint8_t> allowed;
    for (int step = 0; step < max_tokens; ++step) {
      allowed.assign(logits->size(), 1);
      c.mask(allowed);
      allowed[size_t(eos_)] = c.can_end();
      const int32_t id = sample(allowed, *logits, rng);
      if (id == eos_) break;
      c.accept(id);
      out.push_back(id);
      if (c.must_end()) break;
      logits = &session.feed({id});
    }
    std::string raw;
    for (int32_t id : out) raw += tok_->token_bytes(id);
    EXPECT_EQ(tok_->decode(out), raw);  // complete answers are well-formed UTF-8
    return {raw, c.can_end()};
  }

  ThreadPool pool_{1};
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Model> model_;
  ConstraintVocabularyPtr vocab_;
  std::vector<int32_t> prompt_;
  int32_t eos_ = 0;
};

constexpr int kSeeds = 200;

TEST_F(ConstrainedSampling, ChoiceAlwaysYieldsAChoice) {
  const std::vector<std::string> choices = {"A", "B", "C", "D", "T", "Tampering", "CWE-79", "CWE-787", "None of the above"};
  auto compiled = make_choice_constraint(vocab_, choices);
  for (uint32_t seed = 0; seed < kSeeds; ++seed) {
    auto c = compiled->fresh();
    const auto [text, complete] = generate(*c, seed, 32);
    ASSERT_TRUE(complete) << "seed " << seed << ": " << text;
    ASSERT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << "seed " << seed << ": " << text;
  }
}

TEST_F(ConstrainedSampling, RegexAlwaysMatches) {
  const std::string pattern = "(CWE-[1-9][0-9]{0,3}|CVE-20[0-9]{2}-[0-9]{4,5})( \\(([a-z]{1,8} ?){1,3}\\))?";
  test::Pcre pcre(pattern);
  rx::LazyDfa dfa(rx::compile(rx::parse(pattern)));
  auto compiled = make_regex_constraint(vocab_, pattern);
  for (uint32_t seed = 0; seed < kSeeds; ++seed) {
    auto c = compiled->fresh();
    const auto [text, complete] = generate(*c, seed, 64);
    ASSERT_TRUE(complete) << "seed " << seed << ": " << text;
    ASSERT_TRUE(pcre.full(text)) << "seed " << seed << ": " << text;
    ASSERT_TRUE(dfa.matches(text)) << "seed " << seed << ": " << text;
  }
}

TEST_F(ConstrainedSampling, JsonSchemaAlwaysValidates) {
  const J schema = J::parse(R"({
    "type": "object",
    "properties": {
      "cwe": {"type": "string", "pattern": "CWE-[1-9][0-9]{0,3}"},
      "severity": {"enum": ["low", "medium", "high", "critical"]},
      "score": {"type": "integer", "minimum": 0, "maximum": 10},
      "exploited": {"type": "boolean"},
      "asset": {
        "type": "object",
        "properties": {
          "kind": {"enum": ["host", "user", "app"]},
          "name": {"type": "string", "maxLength": 6},
          "ports": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}, "maxItems": 2}
        },
        "required": ["kind"]
      },
      "note": {"type": ["string", "null"], "maxLength": 4}
    },
    "required": ["cwe", "severity", "asset"]
  })");
  rx::LazyDfa dfa(rx::compile(json_schema_expression(schema)));
  auto compiled = make_json_schema_constraint(vocab_, schema);
  for (uint32_t seed = 0; seed < kSeeds; ++seed) {
    auto c = compiled->fresh();
    const auto [text, complete] = generate(*c, seed, 1000);
    ASSERT_TRUE(complete) << "seed " << seed << ": " << text;
    ASSERT_TRUE(dfa.matches(text)) << text;
    nlohmann::json doc;
    ASSERT_NO_THROW(doc = nlohmann::json::parse(text)) << "seed " << seed << ": " << text;
    std::string why;
    ASSERT_TRUE(valid(doc, schema, why)) << "seed " << seed << ": " << why;
  }
}

}  // namespace
}  // namespace csq
