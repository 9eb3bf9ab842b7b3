// `csq eval run`: generate an answer for every item × trial of a benchmark under a protocol,
// through a ChatBackend (in process or an OpenAI-compatible endpoint), then score and report.
//
// The output directory holds
//   manifest.json    benchmark, effective protocol settings and backend identity; a run refuses
//                    to resume into a directory whose manifest differs
//   responses.jsonl  one line per finished generation, appended as each finishes (the resume
//                    log; the format `csq eval score --responses` reads)
//   items.jsonl, summary.json, report.md, chart-*.svg   written when the run completes
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tasks/chat_backend.h"

namespace csq::eval {

struct RunConfig {
  std::string benchmark;
  std::string protocol;
  std::string data_dir;
  std::string out_dir;
  std::string label;       // the run's name in reports (default: the out directory's name)
  size_t limit = 0;        // the first N items; 0: all
  int trials = 0;          // the first K of the protocol's trials; 0: all
  int64_t max_tokens = 0;  // overrides the protocol's max new tokens (smoke runs); recorded in the report
  bool progress = true;    // a progress line on stderr
};

struct RunOutcome {
  nlohmann::ordered_json summary;  // summary.json's content
  size_t computed = 0;             // generations done by this invocation
  size_t resumed = 0;              // taken from an earlier, interrupted invocation
};

// Throws csq::Error: Usage for bad options or a directory from another run, BadInput for bad
// data or a corrupt responses.jsonl, Runtime when the backend fails (what finished is kept).
RunOutcome run_evaluation(const RunConfig& config, tasks::ChatBackend& backend);

}  // namespace csq::eval
