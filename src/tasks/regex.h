// A compiled PCRE2 pattern with the few operations the answer parsers need. Patterns are
// compiled as UTF-8 with Unicode properties (\w, \d, \b as in Python 3's `re`, whose patterns
// the published harnesses use), and tolerate invalid UTF-8 in model output.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace csq::tasks {

class Regex {
 public:
  // `pattern` may carry inline flags such as (?i). A malformed pattern is a programming error
  // and throws csq::Error (Runtime).
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Every non-overlapping match, left to right; each as its capture groups (or the whole
  // match when the pattern has no group). An unset group is an empty string.
  std::vector<std::vector<std::string>> find_all(std::string_view text) const;
  bool matches(std::string_view text) const { return !find_all(text).empty(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace csq::tasks
