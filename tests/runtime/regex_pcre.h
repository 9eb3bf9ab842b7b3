// PCRE2 as the reference for the constraint tests: ^(?:pattern)$ in UTF mode (where \d \w \s
// keep their ASCII meanings, as in rx::parse), full matches and viable prefixes.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <gtest/gtest.h>

#include <string>

namespace csq::test {

class Pcre {
 public:
  explicit Pcre(const std::string& pattern) {
    const std::string anchored = "^(?:" + pattern + ")$";
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(anchored.data()), anchored.size(), PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &err, &off, nullptr);
    EXPECT_NE(code_, nullptr) << "PCRE2 rejects " << pattern;
    data_ = pcre2_match_data_create(4, nullptr);
  }
  ~Pcre() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  Pcre(const Pcre&) = delete;
  Pcre& operator=(const Pcre&) = delete;

  bool full(const std::string& s) const { return run(s, 0) >= 0; }
  // Some continuation of `s` could match (PCRE2's hard partial matching).
  bool viable(const std::string& s) const {
    const int rc = run(s, PCRE2_PARTIAL_HARD);
    return rc >= 0 || rc == PCRE2_ERROR_PARTIAL;
  }

 private:
  int run(const std::string& s, uint32_t options) const {
    if (!code_) return PCRE2_ERROR_NOMATCH;
    // Invalid UTF-8 is an error (a negative code), so such a text is neither full nor viable.
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, options, data_, nullptr);
  }

  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

}  // namespace csq::test
