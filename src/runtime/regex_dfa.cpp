#include "runtime/regex_dfa.h"

#include <algorithm>
#include <cctype>

#include "base/error.h"

namespace csq::rx {

namespace {

constexpr int kMaxCount = 1000;  // largest {m,n} bound: keeps the expanded NFA reasonable
constexpr int kMaxNesting = 200;
constexpr uint32_t kMaxCodePoint = 0x10FFFF;

NodePtr make(Node n) { return std::make_shared<const Node>(std::move(n)); }

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// Sorted, merged, within [0, kMaxCodePoint].
Ranges normalize(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (auto [lo, hi] : r) {
    if (lo > hi) continue;
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.push_back({lo, hi});
    }
  }
  return out;
}

Ranges complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (auto [lo, hi] : normalize(r)) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

int utf8_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

void encode(uint32_t cp, uint8_t* out) {
  const int n = utf8_length(cp);
  if (n == 1) {
    out[0] = uint8_t(cp);
    return;
  }
  static constexpr uint8_t lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
  for (int i = n - 1; i > 0; --i) {
    out[i] = uint8_t(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  out[0] = uint8_t(lead[n] | cp);
}

// One sequence of byte ranges per piece of [lo, hi] (same encoded length, hi >= lo) such that
// each position's bytes vary independently: split until every trailing continuation block is
// either equal in lo and hi or spans its full 0x80..0xBF range.
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<std::vector<std::pair<uint8_t, uint8_t>>>& out) {
  const int n = utf8_length(lo);
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (uint32_t(1) << (6 * i)) - 1;  // the low i continuation bytes
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, out);
        utf8_sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, out);
        utf8_sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  uint8_t a[4], b[4];
  encode(lo, a);
  encode(hi, b);
  std::vector<std::pair<uint8_t, uint8_t>> seq;
  for (int i = 0; i < n; ++i) seq.push_back({a[i], b[i]});
  out.push_back(std::move(seq));
}

struct Parser {
  std::string_view p;
  size_t i = 0;
  int depth = 0;

  [[noreturn]] void fail(const std::string& what, size_t at) const {
    fail_usage("regex: " + what + " at position " + std::to_string(at) + " in pattern \"" + std::string(p) + "\"");
  }
  bool done() const { return i >= p.size(); }
  char peek() const { return p[i]; }

  NodePtr parse_alt() {
    if (++depth > kMaxNesting) fail("groups nested too deeply", i);
    std::vector<NodePtr> options{parse_concat()};
    while (!done() && peek() == '|') {
      ++i;
      options.push_back(parse_concat());
    }
    --depth;
    return options.size() == 1 ? options[0] : alt(std::move(options));
  }

  NodePtr parse_concat() {
    std::vector<NodePtr> parts;
    while (!done() && peek() != '|' && peek() != ')') {
      const size_t at = i;
      if (peek() == '^') {
        if (at != 0) fail("'^' is only supported at the start of the pattern", at);
        ++i;
        continue;
      }
      if (peek() == '$') {
        if (at + 1 != p.size()) fail("'$' is only supported at the end of the pattern", at);
        ++i;
        continue;
      }
      NodePtr atom = parse_atom();
      int min = 0, max = 0;
      bool quantified = true;
      if (done()) {
        quantified = false;
      } else if (peek() == '?') {
        min = 0, max = 1, ++i;
      } else if (peek() == '*') {
        min = 0, max = kUnbounded, ++i;
      } else if (peek() == '+') {
        min = 1, max = kUnbounded, ++i;
      } else {
        quantified = peek() == '{' && parse_count(min, max);
      }
      if (quantified) {
        if (!done() && peek() == '+') fail("possessive quantifier not supported", i);
        if (!done() && peek() == '?') ++i;  // lazy: the same set of strings
        int m1 = 0, m2 = 0;
        const size_t at2 = i;
        if (!done() && (peek() == '*' || peek() == '+' || peek() == '?' || (peek() == '{' && parse_count(m1, m2)))) {
          fail("nothing to repeat before '" + std::string(1, p[at2]) + "'", at2);
        }
        atom = repeat(atom, min, max);
      }
      parts.push_back(std::move(atom));
    }
    return parts.size() == 1 ? parts[0] : concat(std::move(parts));
  }

  // {m} {m,} {m,n}; leaves i unchanged and returns false when '{' does not start one (it is
  // then a literal, as in PCRE and ECMAScript).
  bool parse_count(int& min, int& max) {
    const size_t start = i;
    size_t j = i + 1;
    auto number = [&](int& v) {
      const size_t s = j;
      long long x = 0;
      while (j < p.size() && p[j] >= '0' && p[j] <= '9') {
        x = std::min<long long>(x * 10 + (p[j] - '0'), 1'000'000'000);
        ++j;
      }
      v = int(x);
      return j > s;
    };
    if (!number(min)) return false;
    max = min;
    if (j < p.size() && p[j] == ',') {
      ++j;
      if (!number(max)) max = kUnbounded;
    }
    if (j >= p.size() || p[j] != '}') return false;
    if (min > kMaxCount || max > kMaxCount) fail("repetition count above " + std::to_string(kMaxCount), start);
    if (max != kUnbounded && max < min) fail("repetition {m,n} with n < m", start);
    i = j + 1;
    return true;
  }

  uint32_t hex(size_t digits_min, size_t digits_max, char close) {
    const size_t at = i;
    uint32_t v = 0;
    size_t n = 0;
    while (!done() && n < digits_max && std::isxdigit(uint8_t(peek()))) {
      const char c = peek();
      v = v * 16 + uint32_t(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
      ++i, ++n;
    }
    if (n < digits_min || (close && (done() || peek() != close))) fail("malformed hexadecimal escape", at);
    if (close) ++i;
    if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) fail("escape is not a Unicode scalar value", at);
    return v;
  }

  // After a backslash: either a class (\d ...) into `ranges`, or one code point returned.
  // Returns true when it was a class.
  bool parse_escape(Ranges& ranges, uint32_t& cp, bool in_class) {
    const size_t at = i - 1;
    if (done()) fail("pattern ends with a backslash", at);
    const char c = p[i++];
    static const Ranges digit{{'0', '9'}};
    static const Ranges word{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    static const Ranges space{{'\t', '\r'}, {' ', ' '}};
    switch (c) {
      case 'd': ranges = digit; return true;
      case 'D': ranges = complement(digit); return true;
      case 'w': ranges = word; return true;
      case 'W': ranges = complement(word); return true;
      case 's': ranges = space; return true;
      case 'S': ranges = complement(space); return true;
      case 'n': cp = '\n'; return false;
      case 'r': cp = '\r'; return false;
      case 't': cp = '\t'; return false;
      case 'f': cp = '\f'; return false;
      case 'v': cp = '\v'; return false;
      case 'x':
        if (!done() && peek() == '{') {
          ++i;
          cp = hex(1, 6, '}');
        } else {
          cp = hex(2, 2, 0);
        }
        return false;
      case 'u': cp = hex(4, 4, 0); return false;
      case 'b':
        if (in_class) {
          cp = '\b';
          return false;
        }
        fail("word boundary \\b not supported", at);
      default: break;
    }
    if (c >= '0' && c <= '9') fail("backreference or octal escape \\" + std::string(1, c) + " not supported", at);
    if (uint8_t(c) < 0x80 && !std::isalnum(uint8_t(c))) {
      cp = uint8_t(c);
      return false;
    }
    fail("escape \\" + std::string(1, c) + " not supported", at);
  }

  // One UTF-8 encoded code point of the pattern itself.
  uint32_t parse_char() {
    const size_t at = i;
    const uint8_t b = uint8_t(p[i]);
    const int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + size_t(n) > p.size()) fail("invalid UTF-8", at);
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      const uint8_t c = uint8_t(p[i + size_t(k)]);
      if ((c & 0xC0) != 0x80) fail("invalid UTF-8", at);
      cp = (cp << 6) | (c & 0x3F);
    }
    if (utf8_length(cp) != n || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) fail("invalid UTF-8", at);
    i += size_t(n);
    return cp;
  }

  NodePtr parse_class() {
    const size_t at = i - 1;
    bool negate = false;
    if (!done() && peek() == '^') negate = true, ++i;
    Ranges ranges;
    bool first = true;
    for (;;) {
      if (done()) fail("unterminated character class", at);
      if (peek() == ']' && !first) {
        ++i;
        break;
      }
      first = false;
      if (peek() == '[' && i + 1 < p.size() && (p[i + 1] == ':' || p[i + 1] == '=' || p[i + 1] == '.')) {
        fail("POSIX class syntax not supported", i);
      }
      uint32_t lo = 0;
      Ranges cls;
      const size_t item = i;
      if (peek() == '\\') {
        ++i;
        if (parse_escape(cls, lo, true)) {
          if (!done() && peek() == '-' && i + 1 < p.size() && p[i + 1] != ']') fail("range from a class escape", item);
          ranges.insert(ranges.end(), cls.begin(), cls.end());
          continue;
        }
      } else {
        lo = parse_char();
      }
      uint32_t hi = lo;
      if (!done() && peek() == '-' && i + 1 < p.size() && p[i + 1] != ']') {
        ++i;
        if (peek() == '\\') {
          ++i;
          if (parse_escape(cls, hi, true)) fail("range to a class escape", item);
        } else {
          hi = parse_char();
        }
        if (hi < lo) fail("character class range out of order", item);
      }
      ranges.push_back({lo, hi});
    }
    return code_points(negate ? complement(ranges) : ranges);
  }

  NodePtr parse_atom() {
    const size_t at = i;
    const char c = peek();
    switch (c) {
      case '(': {
        ++i;
        if (!done() && peek() == '?') {
          ++i;
          if (!done() && peek() == ':') {
            ++i;
          } else if (!done() && (peek() == '<' || peek() == 'P')) {
            if (peek() == 'P') ++i;
            if (done() || peek() != '<') fail("unsupported group syntax", at);
            if (i + 1 < p.size() && (p[i + 1] == '=' || p[i + 1] == '!')) fail("lookbehind not supported", at);
            const size_t close = p.find('>', i);
            if (close == std::string_view::npos) fail("unterminated group name", at);
            i = close + 1;
          } else if (!done() && (peek() == '=' || peek() == '!')) {
            fail("lookahead not supported", at);
          } else {
            fail("inline flags and other (? groups not supported", at);
          }
        }
        NodePtr inner = parse_alt();
        if (done() || peek() != ')') fail("unbalanced '('", at);
        ++i;
        return inner;
      }
      case ')': fail("unbalanced ')'", at);
      case '*':
      case '+':
      case '?': fail("nothing to repeat before '" + std::string(1, c) + "'", at);
      case '.':
        ++i;
        return code_points(complement({{'\n', '\n'}}));
      case '[':
        ++i;
        return parse_class();
      case '\\': {
        ++i;
        Ranges cls;
        uint32_t cp = 0;
        if (parse_escape(cls, cp, false)) return code_points(cls);
        return code_points({{cp, cp}});
      }
      default: {
        const size_t start = i;
        parse_char();
        return literal(p.substr(start, i - start));
      }
    }
  }
};

struct Builder {
  Nfa& nfa;
  size_t max_states;

  int32_t add(Nfa::State s) {
    if (nfa.states.size() >= max_states) {
      fail_usage("regex: the pattern needs more than " + std::to_string(max_states) + " automaton states");
    }
    nfa.states.push_back(std::move(s));
    return int32_t(nfa.states.size() - 1);
  }
  int32_t add_eps(std::vector<int32_t> eps) {
    Nfa::State s;
    s.eps = std::move(eps);
    return add(std::move(s));
  }

  // Compiles backwards: returns the entry of a fragment for `n` that continues at `next`.
  int32_t emit(const Node& n, int32_t next) {
    switch (n.kind) {
      case Node::Kind::Bytes: {
        Nfa::State s;
        s.on = n.bytes;
        s.next = next;
        return add(std::move(s));
      }
      case Node::Kind::Concat:
        for (auto it = n.children.rbegin(); it != n.children.rend(); ++it) next = emit(**it, next);
        return next;
      case Node::Kind::Alt: {
        std::vector<int32_t> entries;
        for (const auto& c : n.children) entries.push_back(emit(*c, next));
        return add_eps(std::move(entries));
      }
      case Node::Kind::Repeat: {
        const Node& item = *n.children[0];
        int32_t cur = next;
        if (n.max == kUnbounded) {
          const int32_t loop = add_eps({});
          const int32_t body = emit(item, loop);
          nfa.states[size_t(loop)].eps = {body, next};
          cur = loop;
        } else {
          for (int k = n.min; k < n.max; ++k) {
            const int32_t body = emit(item, cur);
            cur = add_eps({body, next});
          }
        }
        for (int k = 0; k < n.min; ++k) cur = emit(item, cur);
        return cur;
      }
      case Node::Kind::List: {
        const NodePtr& item = n.children[0];
        const NodePtr& sep = n.children[1];
        if (n.max != kUnbounded) {
          if (n.max == 0) return next;
          NodePtr body = concat({item, repeat(concat({sep, item}), std::max(n.min - 1, 0), n.max - 1)});
          return emit(*(n.min == 0 ? optional(body) : body), next);
        }
        const int32_t after = add_eps({});
        const int32_t first = emit(*item, after);
        const int32_t again = emit(*sep, first);
        nfa.states[size_t(after)].eps = {next, again};
        int32_t cur = first;
        for (int k = 1; k < n.min; ++k) cur = emit(*item, emit(*sep, cur));
        return n.min == 0 ? add_eps({cur, next}) : cur;
      }
    }
    return next;
  }
};

}  // namespace

NodePtr bytes(const ByteSet& set) {
  Node n;
  n.kind = Node::Kind::Bytes;
  n.bytes = set;
  return make(std::move(n));
}

NodePtr byte_range(uint8_t lo, uint8_t hi) {
  ByteSet s;
  s.add_range(lo, hi);
  return bytes(s);
}

NodePtr literal(std::string_view text) {
  std::vector<NodePtr> parts;
  for (char c : text) parts.push_back(byte_range(uint8_t(c), uint8_t(c)));
  return parts.size() == 1 ? parts[0] : concat(std::move(parts));
}

NodePtr concat(std::vector<NodePtr> parts) {
  Node n;
  n.kind = Node::Kind::Concat;
  n.children = std::move(parts);
  return make(std::move(n));
}

NodePtr alt(std::vector<NodePtr> options) {
  Node n;
  n.kind = Node::Kind::Alt;
  n.children = std::move(options);
  return make(std::move(n));
}

NodePtr repeat(NodePtr item, int min, int max) {
  Node n;
  n.kind = Node::Kind::Repeat;
  n.children = {std::move(item)};
  n.min = min;
  n.max = max;
  return make(std::move(n));
}

NodePtr optional(NodePtr item) { return repeat(std::move(item), 0, 1); }

NodePtr list(NodePtr item, NodePtr separator, int min, int max) {
  Node n;
  n.kind = Node::Kind::List;
  n.children = {std::move(item), std::move(separator)};
  n.min = min;
  n.max = max;
  return make(std::move(n));
}

NodePtr code_points(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
  // Surrogates are not scalar values: cut them out, then split at encoded-length boundaries.
  Ranges pieces;
  for (auto [lo, hi] : normalize(ranges)) {
    for (auto [a, b] : {std::pair<uint32_t, uint32_t>{0, 0xD7FF}, {0xE000, kMaxCodePoint}}) {
      uint32_t l = std::max(lo, a), h = std::min(hi, b);
      while (l <= h) {
        const uint32_t end = std::min(h, l < 0x80 ? 0x7Fu : l < 0x800 ? 0x7FFu : l < 0x10000 ? 0xFFFFu : kMaxCodePoint);
        pieces.push_back({l, end});
        l = end + 1;
      }
    }
  }
  ByteSet ascii;
  std::vector<NodePtr> options;
  std::vector<std::vector<std::pair<uint8_t, uint8_t>>> seqs;
  for (auto [lo, hi] : pieces) utf8_sequences(lo, hi, seqs);
  for (const auto& seq : seqs) {
    if (seq.size() == 1) {
      ascii.add_range(seq[0].first, seq[0].second);
      continue;
    }
    std::vector<NodePtr> parts;
    for (auto [a, b] : seq) parts.push_back(byte_range(a, b));
    options.push_back(concat(std::move(parts)));
  }
  if (!ascii.empty()) options.insert(options.begin(), bytes(ascii));
  return options.size() == 1 ? options[0] : alt(std::move(options));
}

NodePtr parse(std::string_view pattern) {
  Parser ps{pattern};
  NodePtr root = ps.parse_alt();
  if (!ps.done()) ps.fail("unbalanced ')'", ps.i);
  return root;
}

Nfa compile(const NodePtr& root, size_t max_states) {
  Nfa nfa;
  Builder b{nfa, max_states};
  b.add_eps({});  // the start, filled below
  nfa.accept = b.add_eps({});
  const int32_t entry = b.emit(*root, nfa.accept);
  nfa.states[0].eps = {entry};
  return nfa;
}

LazyDfa::LazyDfa(Nfa nfa, size_t max_states) : nfa_(std::move(nfa)), max_states_(max_states) {
  const size_t n = nfa_.states.size();
  // States from which acceptance is reachable; all others are dropped from DFA sets, so the
  // empty set is exactly the dead state.
  std::vector<std::vector<int32_t>> rev(n);
  for (size_t s = 0; s < n; ++s) {
    const auto& st = nfa_.states[s];
    for (int32_t e : st.eps) rev[size_t(e)].push_back(int32_t(s));
    if (st.next >= 0 && !st.on.empty()) rev[size_t(st.next)].push_back(int32_t(s));
  }
  useful_.assign(n, 0);
  std::vector<int32_t> todo{nfa_.accept};
  useful_[size_t(nfa_.accept)] = 1;
  while (!todo.empty()) {
    const int32_t s = todo.back();
    todo.pop_back();
    for (int32_t r : rev[size_t(s)]) {
      if (!useful_[size_t(r)]) useful_[size_t(r)] = 1, todo.push_back(r);
    }
  }
  // Byte classes: refine the partition of 0..255 by every distinct edge set.
  std::vector<ByteSet> edge_sets;
  for (size_t s = 0; s < n; ++s) {
    if (useful_[s] && nfa_.states[s].next >= 0) edge_sets.push_back(nfa_.states[s].on);
  }
  std::sort(edge_sets.begin(), edge_sets.end(), [](const ByteSet& a, const ByteSet& b) { return a.bits < b.bits; });
  edge_sets.erase(std::unique(edge_sets.begin(), edge_sets.end()), edge_sets.end());
  n_classes_ = 1;
  for (const ByteSet& set : edge_sets) {
    std::vector<int> renumber(n_classes_ * 2, -1);
    size_t count = 0;
    for (int b = 0; b < 256; ++b) {
      int& slot = renumber[byte_class_[size_t(b)] * 2 + (set.has(uint8_t(b)) ? 1 : 0)];
      if (slot < 0) slot = int(count++);
      byte_class_[size_t(b)] = uint8_t(slot);
    }
    n_classes_ = count;
  }
  mark_.assign(n, 0);
  std::vector<int32_t> dead;
  intern(dead);
  std::vector<int32_t> start{0};
  close(start);
  start_ = intern(start);
}

void LazyDfa::close(std::vector<int32_t>& set) {
  if (++stamp_ == 0) std::fill(mark_.begin(), mark_.end(), 0), stamp_ = 1;
  std::vector<int32_t> stack;
  for (int32_t s : set) {
    if (useful_[size_t(s)] && mark_[size_t(s)] != stamp_) mark_[size_t(s)] = stamp_, stack.push_back(s);
  }
  set.clear();
  while (!stack.empty()) {
    const int32_t s = stack.back();
    stack.pop_back();
    const auto& st = nfa_.states[size_t(s)];
    if (st.next >= 0 || s == nfa_.accept) set.push_back(s);
    for (int32_t e : st.eps) {
      if (useful_[size_t(e)] && mark_[size_t(e)] != stamp_) mark_[size_t(e)] = stamp_, stack.push_back(e);
    }
  }
  std::sort(set.begin(), set.end());
}

int32_t LazyDfa::intern(std::vector<int32_t>& set) {
  std::string key(reinterpret_cast<const char*>(set.data()), set.size() * sizeof(int32_t));
  if (auto it = index_.find(key); it != index_.end()) return it->second;
  if (sets_.size() >= max_states_) {
    fail_usage("regex: the pattern needs more than " + std::to_string(max_states_) + " automaton states");
  }
  const int32_t id = int32_t(sets_.size());
  index_.emplace(std::move(key), id);
  accepting_.push_back(std::binary_search(set.begin(), set.end(), nfa_.accept) ? 1 : 0);
  sets_.push_back(set);
  trans_.resize(trans_.size() + n_classes_, id == kDead ? kDead : -1);
  return id;
}

int32_t LazyDfa::compute(int32_t state, uint8_t byte) {
  std::vector<int32_t> targets;
  for (int32_t s : sets_[size_t(state)]) {
    const auto& st = nfa_.states[size_t(s)];
    if (st.next >= 0 && st.on.has(byte)) targets.push_back(st.next);
  }
  close(targets);
  const int32_t t = intern(targets);
  trans_[size_t(state) * n_classes_ + byte_class_[byte]] = t;
  return t;
}

int32_t LazyDfa::walk(int32_t state, std::string_view text) {
  for (char c : text) {
    if (state == kDead) break;
    state = step(state, uint8_t(c));
  }
  return state;
}

}  // namespace csq::rx
