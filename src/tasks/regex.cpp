#include "tasks/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/error.h"

namespace csq::tasks {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  uint32_t groups = 0;
  ~Impl() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern) : impl_(std::make_unique<Impl>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail_runtime("regex '" + std::string(pattern) + "' at offset " + std::to_string(offset) + ": " +
                 reinterpret_cast<const char*>(message));
  }
  pcre2_pattern_info(impl_->code, PCRE2_INFO_CAPTURECOUNT, &impl_->groups);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

std::vector<std::vector<std::string>> Regex::find_all(std::string_view text) const {
  std::vector<std::vector<std::string>> out;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  if (!data) fail_runtime("regex: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(impl_->code, subject, text.size(), start, 0, data, nullptr);
    if (rc < 0) break;  // no match (or a match-limit error, treated as no match)
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
    std::vector<std::string> groups;
    const uint32_t first = impl_->groups == 0 ? 0 : 1;
    for (uint32_t g = first; g <= impl_->groups; ++g) {
      if (int(g) >= rc || ov[2 * g] == PCRE2_UNSET) {
        groups.emplace_back();
      } else {
        groups.emplace_back(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
      }
    }
    out.push_back(std::move(groups));
    if (ov[1] > ov[0]) {
      start = ov[1];
    } else {  // empty match: step over one whole UTF-8 character
      start = ov[1] + 1;
      while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
    }
  }
  pcre2_match_data_free(data);
  return out;
}

}  // namespace csq::tasks
