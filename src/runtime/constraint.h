// Structured output by masking the vocabulary: a TokenConstraint follows the text generated so
// far through a byte-level automaton (runtime/regex_dfa.h) and, at each step, tells the sampler
// which tokens may come next.
//
// Every token whose bytes keep the text a viable prefix of some valid answer is allowed, so any
// tokenization of a valid answer can be generated, not only the canonical one. Only Normal
// vocabulary tokens take part: special, user-defined added tokens (<think>, <tool_call>, ...),
// unused and absent ids are never allowed inside an answer; the caller decides about
// end-of-generation ids with can_end() / must_end().
//
// The mask comes from a walk of a byte trie of the whole vocabulary against the automaton,
// pruning every subtree whose prefix is already dead, and is cached per automaton state, so a
// state seen before (the same position in a schema, a repeated choice) costs only the copy into
// the caller's vector. bench/constraint_bench.cpp reports the cost per step.
//
// Usage, one constraint per generated answer:
//   auto c = make_regex_constraint(tokenizer, "CWE-[0-9]{1,4}");
//   loop: std::vector<uint8_t> allowed(n_vocab, 1); c->mask(allowed);
//         allow end-of-generation ids only if c->can_end(); stop when c->must_end();
//         sample among allowed ids; c->accept(id);
// To constrain many answers the same way, compile once and call fresh() per answer: the
// automaton and the mask cache are shared (and guarded by a mutex, so the fresh constraints may
// be used on different threads; each one object is not thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace csq {

class Tokenizer;
namespace rx {
struct Node;
}

class TokenConstraint {  // one per generated answer; not thread-safe
 public:
  virtual ~TokenConstraint() = default;
  // Sets allowed[id] = 0 for every token that cannot continue a valid answer, and for ids the
  // vocabulary does not have (allowed may be longer than the tokenizer's vocabulary, as a
  // model's logits often are). Entries already 0 stay 0.
  virtual void mask(std::vector<uint8_t>& allowed) = 0;
  // Advances past `token`. Throws csq::Error (BadInput) if the token was not allowed.
  virtual void accept(int32_t token) = 0;
  // The text so far is a complete valid answer.
  virtual bool can_end() const = 0;
  // Complete, and no token can extend it: generation must stop here.
  virtual bool must_end() const = 0;
  // A new constraint at the start of an answer, sharing this one's automaton and mask cache.
  virtual std::unique_ptr<TokenConstraint> fresh() const = 0;
};

// The vocabulary's byte trie; build it once per tokenizer and share it between constraints
// (the factories taking a Tokenizer build their own).
struct ConstraintVocabulary;
std::shared_ptr<const ConstraintVocabulary> constraint_vocabulary(const Tokenizer& tokenizer);
// From raw byte strings: token_bytes[id], nullopt (or empty) for ids never allowed in an answer.
std::shared_ptr<const ConstraintVocabulary> constraint_vocabulary(
    const std::vector<std::optional<std::string>>& token_bytes);

using ConstraintVocabularyPtr = std::shared_ptr<const ConstraintVocabulary>;

// The answer is exactly one of `choices` (non-empty strings, at least one).
std::unique_ptr<TokenConstraint> make_choice_constraint(const Tokenizer&, const std::vector<std::string>& choices);
std::unique_ptr<TokenConstraint> make_choice_constraint(ConstraintVocabularyPtr, const std::vector<std::string>& choices);

// The whole answer matches `pattern` (syntax: runtime/regex_dfa.h). Bad patterns throw
// csq::Error (Usage) naming the construct and its position.
std::unique_ptr<TokenConstraint> make_regex_constraint(const Tokenizer&, const std::string& pattern);
std::unique_ptr<TokenConstraint> make_regex_constraint(ConstraintVocabularyPtr, const std::string& pattern);

// The answer is one JSON document valid against `schema` (the subset in runtime/json_schema.h).
// An ordered_json keeps the properties in the schema's order; unsupported keywords throw
// csq::Error (Usage) naming the keyword and its JSON path.
std::unique_ptr<TokenConstraint> make_json_schema_constraint(const Tokenizer&, const nlohmann::ordered_json& schema);
std::unique_ptr<TokenConstraint> make_json_schema_constraint(ConstraintVocabularyPtr, const nlohmann::ordered_json& schema);

// Any JSON object (OpenAI's json_object mode), nested at most json_object_max_depth deep.
inline constexpr int json_object_max_depth = 5;
std::unique_ptr<TokenConstraint> make_json_object_constraint(const Tokenizer&);
std::unique_ptr<TokenConstraint> make_json_object_constraint(ConstraintVocabularyPtr);

// The general form: the answer matches the expression (see rx::parse and the rx builders).
std::unique_ptr<TokenConstraint> make_expression_constraint(ConstraintVocabularyPtr,
                                                            const std::shared_ptr<const rx::Node>& expression);

}  // namespace csq
