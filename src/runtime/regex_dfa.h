// A byte-level regular-expression engine for constrained generation: patterns (or expressions
// built in code, as the JSON Schema compiler does) become a Thompson NFA over bytes, which a
// LazyDfa determinizes on demand. Matching is always anchored at both ends: the whole text must
// match, as if the pattern were written ^(?:pattern)$.
//
// Pattern syntax (a practical subset of PCRE/ECMAScript):
//   literals (any UTF-8 text), escapes \n \r \t \f \v \xHH \x{H..} \uHHHH and \ before any ASCII
//   punctuation, `.` (any code point but \n), classes [a-z0-9_] and [^...] with \d \w \s \D \W \S
//   inside or outside them (ASCII meanings, as PCRE2 without UCP), groups (...) (?:...)
//   (?<name>...) (?P<name>...), alternation |, quantifiers ? * + {m} {m,} {m,n} (lazy forms are
//   accepted and mean the same: only the set of matching strings matters here), ^ at the very
//   start and $ at the very end (redundant, since matching is anchored).
// Not supported, reported as a usage error naming the construct and its byte position:
//   backreferences, lookaround, \b \B \A \z \Z, \p{..} classes, POSIX [:classes:], inline flags
//   such as (?i), possessive quantifiers, counts above 1000.
// Classes and `.` match whole UTF-8 encoded code points (surrogates excluded).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace csq::rx {

// A set of byte values.
struct ByteSet {
  std::array<uint64_t, 4> bits{};
  void add(uint8_t b) { bits[b >> 6] |= uint64_t(1) << (b & 63); }
  void add_range(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) add(uint8_t(b));
  }
  bool has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
  bool empty() const { return (bits[0] | bits[1] | bits[2] | bits[3]) == 0; }
  bool operator==(const ByteSet&) const = default;
};

struct Node;
using NodePtr = std::shared_ptr<const Node>;

// The expression tree. Subtrees may be shared; the NFA compiler copies them where used.
struct Node {
  enum class Kind { Bytes, Concat, Alt, Repeat, List };
  Kind kind = Kind::Concat;
  ByteSet bytes;                  // Bytes: one byte from this set
  std::vector<NodePtr> children;  // Concat / Alt; Repeat: {item}; List: {item, separator}
  int min = 0, max = 0;           // Repeat / List counts; max < 0 means unbounded
};

inline constexpr int kUnbounded = -1;

// Builders. concat({}) matches the empty string; alt({}) matches nothing.
NodePtr bytes(const ByteSet& set);
NodePtr byte_range(uint8_t lo, uint8_t hi);
NodePtr literal(std::string_view text);
NodePtr concat(std::vector<NodePtr> parts);
NodePtr alt(std::vector<NodePtr> options);
NodePtr repeat(NodePtr item, int min, int max);
NodePtr optional(NodePtr item);
// item (separator item)*, between min and max items (max < 0: unbounded). With an unbounded
// maximum the item is compiled once however often it repeats, which keeps nested JSON small.
NodePtr list(NodePtr item, NodePtr separator, int min, int max);
// Any one code point in the inclusive ranges, UTF-8 encoded (surrogates never match).
NodePtr code_points(const std::vector<std::pair<uint32_t, uint32_t>>& ranges);

// Parses `pattern` (syntax above). Throws csq::Error (Usage) naming the construct and position.
NodePtr parse(std::string_view pattern);

// Thompson NFA over bytes. State 0 is the start; `accept` the single accepting state.
struct Nfa {
  struct State {
    ByteSet on;                  // consumes one byte in `on` and goes to `next`...
    int32_t next = -1;           // ...when next >= 0
    std::vector<int32_t> eps;    // epsilon moves
  };
  std::vector<State> states;
  int32_t accept = -1;
};

// Fails (Usage) when the automaton would exceed `max_states` (pattern too large).
Nfa compile(const NodePtr& root, size_t max_states = 1'000'000);

// Determinizes an Nfa on demand, caching states and transitions. States are numbered from 0;
// kDead is the state with no way to reach acceptance, so a prefix is viable exactly when its
// state is not kDead. Not thread-safe.
class LazyDfa {
 public:
  static constexpr int32_t kDead = 0;

  explicit LazyDfa(Nfa nfa, size_t max_states = 50'000);

  int32_t start() const { return start_; }
  bool accepting(int32_t state) const { return accepting_[size_t(state)] != 0; }
  // The state after one byte. Throws csq::Error (Usage) if the pattern needs more than
  // max_states DFA states.
  int32_t step(int32_t state, uint8_t byte) {
    const int32_t t = trans_[size_t(state) * n_classes_ + byte_class_[byte]];
    return t >= 0 ? t : compute(state, byte);
  }
  // Walks `text` from `state`; stops early at kDead.
  int32_t walk(int32_t state, std::string_view text);
  bool matches(std::string_view text) { return accepting(walk(start_, text)); }
  size_t state_count() const { return accepting_.size(); }

 private:
  int32_t compute(int32_t state, uint8_t byte);
  int32_t intern(std::vector<int32_t>& set);
  void close(std::vector<int32_t>& set);

  Nfa nfa_;
  size_t max_states_;
  std::vector<uint8_t> useful_;       // per NFA state: acceptance is reachable from it
  std::array<uint8_t, 256> byte_class_{};  // bytes no NFA edge tells apart share a class
  size_t n_classes_ = 0;
  std::vector<int32_t> trans_;        // [dfa state][class], -1 = not computed yet
  std::vector<uint8_t> accepting_;
  std::vector<std::vector<int32_t>> sets_;  // the NFA states (byte-consuming or accept) of each
  std::unordered_map<std::string, int32_t> index_;  // set bytes -> DFA state
  std::vector<uint32_t> mark_;        // closure scratch: visit stamps
  uint32_t stamp_ = 0;
  int32_t start_ = 0;
};

}  // namespace csq::rx
