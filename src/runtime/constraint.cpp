#include "runtime/constraint.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "base/error.h"
#include "runtime/json_schema.h"
#include "runtime/regex_dfa.h"
#include "tokenizer/tokenizer.h"

namespace csq {

// The vocabulary's byte strings as a trie flattened in depth-first order (children by byte
// value), so the mask walk is one forward pass over an array that jumps over dead subtrees.
struct ConstraintVocabulary {
  struct TrieNode {
    uint8_t byte = 0;
    uint16_t depth = 0;     // 1 for a child of the root
    int32_t skip = 0;       // the index just past this node's subtree
    int32_t first_id = 0;  // ids[first_id, next node's first_id) end exactly here
  };
  int32_t vocab_size = 0;
  std::vector<TrieNode> nodes;  // plus one sentinel holding ids.size()
  std::vector<int32_t> ids;
  std::vector<std::string> bytes;  // per id; empty: never allowed
  size_t max_depth = 0;
};

namespace {

using Vocab = ConstraintVocabulary;

std::shared_ptr<const Vocab> build_vocabulary(std::vector<std::string> bytes) {
  auto v = std::make_shared<Vocab>();
  v->vocab_size = int32_t(bytes.size());
  std::vector<int32_t> order;
  for (int32_t id = 0; id < v->vocab_size; ++id) {
    if (!bytes[size_t(id)].empty()) order.push_back(id);
  }
  // Unsigned byte order, so that a prefix sorts first and siblings are ordered by byte.
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const std::string& x = bytes[size_t(a)];
    const std::string& y = bytes[size_t(b)];
    const int c = std::memcmp(x.data(), y.data(), std::min(x.size(), y.size()));
    return c != 0 ? c < 0 : x.size() < y.size();
  });
  std::vector<int32_t> open;  // node indices on the current path, by depth - 1
  std::string_view prev;
  for (int32_t id : order) {
    const std::string_view s = bytes[size_t(id)];
    if (s.size() > 0xFFFF) fail_input("token " + std::to_string(id) + " is longer than 65535 bytes");
    size_t common = 0;
    while (common < std::min(s.size(), prev.size()) && s[common] == prev[common]) ++common;
    while (open.size() > common) {
      v->nodes[size_t(open.back())].skip = int32_t(v->nodes.size());
      open.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      open.push_back(int32_t(v->nodes.size()));
      v->nodes.push_back({uint8_t(s[d]), uint16_t(d + 1), 0, int32_t(v->ids.size())});
    }
    v->ids.push_back(id);
    v->max_depth = std::max(v->max_depth, s.size());
    prev = s;
  }
  for (int32_t n : open) v->nodes[size_t(n)].skip = int32_t(v->nodes.size());
  v->nodes.push_back({0, 0, int32_t(v->nodes.size()) + 1, int32_t(v->ids.size())});
  v->bytes = std::move(bytes);
  return v;
}

// One bit per vocabulary id.
struct Mask {
  std::vector<uint64_t> bits;
  int32_t count = 0;
};

constexpr size_t kMaxCachedMasks = 2048;  // about 19 KiB each for a 152k vocabulary: ~40 MiB

// The automaton and mask cache shared by an answer's constraint and its fresh() copies.
struct Compiled {
  Compiled(ConstraintVocabularyPtr v, rx::Nfa nfa) : vocab(std::move(v)), dfa(std::move(nfa)) {}

  const Mask& mask_of(int32_t state) {
    if (auto it = masks.find(state); it != masks.end()) return it->second;
    if (masks.size() >= kMaxCachedMasks) masks.clear();
    Mask m;
    m.bits.assign((size_t(vocab->vocab_size) + 63) / 64, 0);
    std::vector<int32_t> at(vocab->max_depth + 1);
    at[0] = state;
    const auto& nodes = vocab->nodes;
    const size_t n = nodes.size() - 1;
    for (size_t i = 0; i < n;) {
      const auto& node = nodes[i];
      const int32_t t = dfa.step(at[node.depth - 1u], node.byte);
      if (t == rx::LazyDfa::kDead) {
        i = size_t(node.skip);
        continue;
      }
      at[node.depth] = t;
      for (int32_t k = node.first_id, end = nodes[i + 1].first_id; k < end; ++k) {
        const int32_t id = vocab->ids[size_t(k)];
        m.bits[size_t(id) >> 6] |= uint64_t(1) << (id & 63);
        ++m.count;
      }
      ++i;
    }
    return masks.emplace(state, std::move(m)).first->second;
  }

  ConstraintVocabularyPtr vocab;
  std::mutex mutex;
  rx::LazyDfa dfa;
  std::unordered_map<int32_t, Mask> masks;
};

class AutomatonConstraint final : public TokenConstraint {
 public:
  explicit AutomatonConstraint(std::shared_ptr<Compiled> c) : c_(std::move(c)) { state_ = c_->dfa.start(); }

  void mask(std::vector<uint8_t>& allowed) override {
    std::lock_guard lock(c_->mutex);
    const Mask& m = c_->mask_of(state_);
    const size_t n = std::min(allowed.size(), size_t(c_->vocab->vocab_size));
    uint8_t* out = allowed.data();
    for (size_t w = 0; w * 64 < n; ++w) {
      const uint64_t word = m.bits[w];
      const size_t begin = w * 64, end = std::min(n, begin + 64);
      if (word == ~uint64_t(0)) continue;
      if (word == 0) {
        std::memset(out + begin, 0, end - begin);
        continue;
      }
      for (size_t i = begin; i < end; ++i) out[i] &= uint8_t((word >> (i - begin)) & 1);
    }
    if (allowed.size() > n) std::memset(out + n, 0, allowed.size() - n);
  }

  void accept(int32_t token) override {
    std::lock_guard lock(c_->mutex);
    const auto& v = *c_->vocab;
    const bool known = token >= 0 && token < v.vocab_size && !v.bytes[size_t(token)].empty();
    const int32_t next = known ? c_->dfa.walk(state_, v.bytes[size_t(token)]) : rx::LazyDfa::kDead;
    if (next == rx::LazyDfa::kDead) {
      fail_input("token " + std::to_string(token) + " cannot continue the constrained answer");
    }
    state_ = next;
  }

  bool can_end() const override {
    std::lock_guard lock(c_->mutex);
    return c_->dfa.accepting(state_);
  }

  bool must_end() const override {
    std::lock_guard lock(c_->mutex);
    return c_->dfa.accepting(state_) && c_->mask_of(state_).count == 0;
  }

  std::unique_ptr<TokenConstraint> fresh() const override { return std::make_unique<AutomatonConstraint>(c_); }

 private:
  std::shared_ptr<Compiled> c_;
  int32_t state_ = 0;
};

}  // namespace

ConstraintVocabularyPtr constraint_vocabulary(const Tokenizer& tokenizer) {
  std::vector<std::string> bytes(size_t(tokenizer.vocab_size()));
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.kind(id) == TokenKind::Normal) bytes[size_t(id)] = std::string(tokenizer.token_bytes(id));
  }
  return build_vocabulary(std::move(bytes));
}

ConstraintVocabularyPtr constraint_vocabulary(const std::vector<std::optional<std::string>>& token_bytes) {
  std::vector<std::string> bytes;
  bytes.reserve(token_bytes.size());
  for (const auto& b : token_bytes) bytes.push_back(b.value_or(std::string()));
  return build_vocabulary(std::move(bytes));
}

std::unique_ptr<TokenConstraint> make_expression_constraint(ConstraintVocabularyPtr vocab,
                                                            const std::shared_ptr<const rx::Node>& expression) {
  auto compiled = std::make_shared<Compiled>(std::move(vocab), rx::compile(expression));
  return std::make_unique<AutomatonConstraint>(std::move(compiled));
}

std::unique_ptr<TokenConstraint> make_choice_constraint(ConstraintVocabularyPtr vocab,
                                                        const std::vector<std::string>& choices) {
  if (choices.empty()) fail_usage("choice constraint: no choices given");
  std::vector<rx::NodePtr> options;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choices[i].empty()) fail_usage("choice constraint: choice " + std::to_string(i + 1) + " is empty");
    options.push_back(rx::literal(choices[i]));
  }
  return make_expression_constraint(std::move(vocab), rx::alt(std::move(options)));
}

std::unique_ptr<TokenConstraint> make_regex_constraint(ConstraintVocabularyPtr vocab, const std::string& pattern) {
  return make_expression_constraint(std::move(vocab), rx::parse(pattern));
}

std::unique_ptr<TokenConstraint> make_json_schema_constraint(ConstraintVocabularyPtr vocab,
                                                             const nlohmann::ordered_json& schema) {
  return make_expression_constraint(std::move(vocab), json_schema_expression(schema));
}

std::unique_ptr<TokenConstraint> make_json_object_constraint(ConstraintVocabularyPtr vocab) {
  return make_expression_constraint(std::move(vocab), json_object_expression(json_object_max_depth));
}

std::unique_ptr<TokenConstraint> make_choice_constraint(const Tokenizer& t, const std::vector<std::string>& choices) {
  return make_choice_constraint(constraint_vocabulary(t), choices);
}

std::unique_ptr<TokenConstraint> make_regex_constraint(const Tokenizer& t, const std::string& pattern) {
  return make_regex_constraint(constraint_vocabulary(t), pattern);
}

std::unique_ptr<TokenConstraint> make_json_schema_constraint(const Tokenizer& t, const nlohmann::ordered_json& schema) {
  return make_json_schema_constraint(constraint_vocabulary(t), schema);
}

std::unique_ptr<TokenConstraint> make_json_object_constraint(const Tokenizer& t) {
  return make_json_object_constraint(constraint_vocabulary(t));
}

}  // namespace csq
