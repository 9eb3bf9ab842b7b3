// The regex split rules of Qwen2/Qwen3 and Llama-3 byte-level BPE, as a hand-written scanner:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// Llama-3 differs only in \p{N}{1,3}. The scanner reproduces the regex's leftmost-first
// alternation and backtracking exactly; \s is the Unicode White_Space property (Oniguruma's).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace csq::tok {

enum class SplitRule { Qwen2, Llama3 };

// The rule whose regex is exactly `pattern` (as written in tokenizer.json), if any.
std::optional<SplitRule> split_rule_from_pattern(std::string_view pattern);
std::string_view split_rule_pattern(SplitRule rule);

// End of the piece that starts at `pos` of well-formed UTF-8 `text` (pos < text.size()).
size_t split_next(std::string_view text, size_t pos, SplitRule rule);

}  // namespace csq::tok
