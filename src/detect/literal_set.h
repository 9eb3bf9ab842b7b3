// Aho–Corasick automaton over many literals at once: one pass over a text reports every
// literal that occurs in it. The detector keeps one per event field, holding the literals the
// rules need in that field, so a field is scanned once per event whatever the number of rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace csq::detect {

class LiteralSet {
 public:
  // Adds a non-empty literal reported as `id`. Call build() after the last add().
  void add(std::string_view literal, int id);
  void build();
  size_t size() const { return count_; }
  size_t states() const { return dict_.size(); }

  // Calls on_id(id) for each literal occurring in text (an id may be reported more than once).
  template <class OnId>
  void scan(std::string_view text, OnId&& on_id) const {
    int32_t s = 0;
    for (const char c : text) {
      s = next_[size_t(s) * classes_ + class_of_[uint8_t(c)]];
      for (int32_t o = s; o > 0; o = dict_[size_t(o)])
        for (int32_t i = out_begin_[size_t(o)]; i < out_begin_[size_t(o) + 1]; ++i) on_id(out_ids_[size_t(i)]);
    }
  }

 private:
  std::vector<std::pair<std::string, int>> literals_;  // until build()
  size_t count_ = 0;
  uint8_t class_of_[256] = {};
  size_t classes_ = 1;
  std::vector<int32_t> next_;       // state × class → state (complete transition table)
  std::vector<int32_t> dict_;       // nearest proper suffix state with outputs (0: none)
  std::vector<int32_t> out_begin_;  // state → first output in out_ids_ (one past the end for the last)
  std::vector<int32_t> out_ids_;
};

}  // namespace csq::detect
