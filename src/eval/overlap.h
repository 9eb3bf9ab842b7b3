// Contamination check: how much of a benchmark a training set already contains, as exact
// (whole item text) and n-gram overlap over normalized words.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/benchmarks.h"

namespace csq::eval {

// The text of every record of a JSONL training file: {"prompt", "response"}, {"messages":
// [{"role", "content"}, ...]} or {"text"}. Throws BadInput naming the file and line.
std::vector<std::string> read_training_texts(const std::string& path);

// Lower-cased runs of letters and digits (bytes >= 0x80 count as letters, so UTF-8 words stay
// whole); punctuation and spacing differences do not hide a copy.
std::vector<std::string> overlap_words(std::string_view text);

// The part of an item that identifies it: the question with its options, the CVE description,
// the report — never the instruction, which training prompts share by design.
std::string item_text(const Item& item);

struct OverlapItem {
  size_t index = 0;
  bool exact = false;     // the item's whole word sequence occurs inside one training record
  double fraction = 0;    // share of the item's n-grams found anywhere in the training set
};

struct OverlapReport {
  size_t train_records = 0;
  size_t items = 0;
  int n = 8;
  double threshold = 0.5;
  size_t exact = 0;            // items found verbatim
  size_t any_ngram = 0;        // items sharing at least one n-gram
  size_t above_threshold = 0;  // items with fraction >= threshold
  double mean_fraction = 0;
  std::vector<OverlapItem> per_item;

  nlohmann::ordered_json to_json(bool with_items) const;
};

OverlapReport compute_overlap(const std::vector<std::string>& train_texts, const Benchmark& benchmark, int n = 8,
                              double threshold = 0.5);

}  // namespace csq::eval
