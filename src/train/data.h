// Supervised fine-tuning data: JSONL conversations rendered with the model's own chat template
// (so the training text is exactly what inference later feeds the model), the loss masked to
// the assistant turns, and examples packed into fixed-length sequences.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/lora_graph.h"

namespace csq {
struct Engine;
}

namespace csq::train {

struct Example {
  std::vector<int32_t> tokens;
  std::vector<int32_t> labels;  // the token where the loss is taken (assistant turns), -1 elsewhere
  size_t line = 0;              // 1-based line of the JSONL file
};

struct DataReport {
  size_t lines = 0;
  size_t examples = 0;
  int64_t tokens = 0;           // after truncation
  int64_t trained_tokens = 0;   // tokens with a label
  size_t truncated = 0;         // examples cut to the sequence length
  int64_t truncated_tokens = 0;
  std::vector<size_t> truncated_lines;  // the first few, for the report
  size_t dropped = 0;           // cut examples whose answer lay wholly beyond the cut
  std::vector<size_t> dropped_lines;
  size_t longest = 0;           // tokens of the longest example before truncation
};

// Renders one JSONL object: {"prompt", "response", "system"?} or {"messages": [{"role",
// "content"}, ...]} with at least one assistant turn; the loss covers every assistant turn's
// content and its end-of-turn token. `where` names the line in errors. Throws csq::Error
// (BadInput) for a malformed object or a template that does not render the conversation
// incrementally (each turn's prefix must be a prefix of the whole).
Example render_example(const Engine& engine, const std::string& json_line, const std::string& where);

// Reads every non-empty line of a JSONL file. Examples longer than max_tokens are cut to it and
// counted in the report (never silently); those left with no assistant token are dropped and
// counted too. Throws csq::Error when no example remains.
std::vector<Example> load_examples(const Engine& engine, const std::string& path, int64_t max_tokens,
                                   DataReport& report);

// A permutation of [0, n) from `seed` (Fisher-Yates over a 64-bit Mersenne Twister, with
// bit-exact integer draws: the same on every platform).
std::vector<size_t> shuffled_order(size_t n, uint64_t seed);

// Packs examples, in `order`, into sequences of at most seq_len tokens: each example is added to
// the current sequence while it fits, else starts the next. Returns the example indices of each
// sequence.
std::vector<std::vector<size_t>> pack_sequences(const std::vector<Example>& examples, const std::vector<size_t>& order,
                                                int64_t seq_len);

// The packed batch of several sequences (their examples isolated from one another).
PackedBatch make_batch(const std::vector<Example>& examples, const std::vector<std::vector<size_t>>& sequences,
                       size_t first, size_t count);

}  // namespace csq::train
