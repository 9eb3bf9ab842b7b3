#include "detect/literal_set.h"

#include <deque>

namespace csq::detect {

void LiteralSet::add(std::string_view literal, int id) {
  if (!literal.empty()) literals_.emplace_back(std::string(literal), id);
}

void LiteralSet::build() {
  // Bytes that occur in some literal get their own class; every other byte shares class 0,
  // which keeps the complete transition table small (rows of ~60 entries, not 256).
  bool used[256] = {};
  for (const auto& [lit, id] : literals_)
    for (char c : lit) used[uint8_t(c)] = true;
  classes_ = 1;
  for (int b = 0; b < 256; ++b) class_of_[b] = used[b] ? uint8_t(classes_++) : 0;

  // Trie (-1: no edge), outputs per state.
  std::vector<int32_t> trie(classes_, -1);
  std::vector<std::vector<int32_t>> outputs(1);
  for (const auto& [lit, id] : literals_) {
    int32_t s = 0;
    for (char c : lit) {
      int32_t& edge = trie[size_t(s) * classes_ + class_of_[uint8_t(c)]];
      if (edge < 0) {
        edge = int32_t(outputs.size());
        outputs.emplace_back();
        trie.resize(trie.size() + classes_, -1);
      }
      s = trie[size_t(s) * classes_ + class_of_[uint8_t(c)]];
    }
    outputs[size_t(s)].push_back(id);
  }
  const size_t n = outputs.size();
  // Breadth-first: failure links, completed transitions, dictionary links.
  next_.assign(n * classes_, 0);
  std::vector<int32_t> fail(n, 0);
  dict_.assign(n, 0);
  std::deque<int32_t> queue;
  for (size_t c = 0; c < classes_; ++c) {
    const int32_t t = trie[c];
    if (t > 0) {
      next_[c] = t;
      queue.push_back(t);
    }
  }
  while (!queue.empty()) {
    const int32_t s = queue.front();
    queue.pop_front();
    const int32_t f = fail[size_t(s)];
    dict_[size_t(s)] = outputs[size_t(f)].empty() ? dict_[size_t(f)] : f;
    for (size_t c = 0; c < classes_; ++c) {
      const int32_t t = trie[size_t(s) * classes_ + c];
      if (t > 0) {
        fail[size_t(t)] = next_[size_t(f) * classes_ + c];
        next_[size_t(s) * classes_ + c] = t;
        queue.push_back(t);
      } else {
        next_[size_t(s) * classes_ + c] = next_[size_t(f) * classes_ + c];
      }
    }
  }
  // A state's own outputs; the dictionary chain adds those of its suffixes during scan.
  out_begin_.assign(n + 1, 0);
  out_ids_.clear();
  for (size_t s = 0; s < n; ++s) {
    out_begin_[s] = int32_t(out_ids_.size());
    out_ids_.insert(out_ids_.end(), outputs[s].begin(), outputs[s].end());
  }
  out_begin_[n] = int32_t(out_ids_.size());
  count_ = literals_.size();
  literals_.clear();
  literals_.shrink_to_fit();
}

}  // namespace csq::detect
