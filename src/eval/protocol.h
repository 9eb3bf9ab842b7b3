// An evaluation protocol: everything that decides a published number besides the model — the
// prompt, the sampling settings, the number of trials and their seeds, and the answer parser.
// Every report records the protocol it was produced under (to_json()).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "eval/benchmarks.h"
#include "tasks/answers.h"

namespace csq::eval {

enum class PromptStyle {
  Dataset,  // the benchmark's own Prompt column as the only user turn
  Faith,    // FAITH's instruction templates ("Answer: $LETTER" for MCQ), question appended
};

enum class Headline {
  Strict,   // correct / all items: an unparseable answer is wrong
  Lenient,  // correct / parseable items: unparseable answers leave the denominator
};

struct Protocol {
  std::string name;
  std::string description;
  std::string system_prompt;  // empty: no system turn
  double temperature = 0;
  double top_p = 1;
  int max_new_tokens = 512;
  int trials = 1;
  std::vector<uint64_t> seeds;  // one per trial
  tasks::AnswerParser parser = tasks::AnswerParser::Cybersecqwen;
  PromptStyle prompt_style = PromptStyle::Dataset;
  Headline headline = Headline::Strict;

  nlohmann::ordered_json to_json() const;
};

// cybersecqwen, ctibench, faith.
const std::vector<Protocol>& protocols();
const Protocol& protocol_by_name(std::string_view name);  // throws a usage error listing the names

// The user turn for `item` under `protocol`.
std::string build_prompt(const Protocol& protocol, const Benchmark& benchmark, const Item& item);

}  // namespace csq::eval
