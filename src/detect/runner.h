// Running a detector over event inputs: records read in batches, matched on a thread pool,
// alerts delivered in input order (file by file, record by record, rule by rule). Standard
// input ("-") is read as a stream: each record is matched as soon as it arrives.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "detect/engine.h"

namespace csq::detect {

struct Alert {
  const Rule* rule = nullptr;
  std::string source;   // input file ("-" for standard input)
  uint64_t record = 0;  // line number, object index or EVTX record id
  std::string time;     // the event's time stamp as written
  std::vector<std::pair<std::string, std::string>> fields;
  std::string event;    // the whole event, minified JSON
};

struct InputProblem {
  std::string source;
  uint64_t record = 0;
  std::string reason;
};

struct RunOptions {
  int threads = 1;
  size_t batch = 2048;
  size_t max_record_bytes = RecordReader::kDefaultMaxRecordBytes;
  std::function<void(const struct RunStats&)> progress;  // after each batch
};

struct RunStats {
  uint64_t events = 0;       // records that parsed as events
  uint64_t unparseable = 0;  // records skipped with a problem
  uint64_t failed_inputs = 0;  // inputs that could not be opened or read to the end (also counted as problems)
  uint64_t alerts = 0;
  std::array<uint64_t, 5> alerts_by_level{};
  std::map<std::string, uint64_t> problems_by_reason;
  double seconds = 0;
};

void run_detection(const Detector& detector, const std::vector<std::string>& inputs, const RunOptions& options,
                   const std::function<void(Alert&&)>& on_alert,
                   const std::function<void(const InputProblem&)>& on_problem, RunStats& stats);

// The same over records already in memory (JSON Lines or concatenated objects, gzip too), e.g.
// the body of the server's POST /v1/detect; `name` is the alerts' and problems' source.
void run_detection_on_text(const Detector& detector, std::string records, const std::string& name,
                           const RunOptions& options, const std::function<void(Alert&&)>& on_alert,
                           const std::function<void(const InputProblem&)>& on_problem, RunStats& stats);

// Alert as one JSON object (the JSON Lines record of `csq detect --json`).
std::string alert_json(const Alert& a);

// Whether a JSON value is such a record, as read back by a later stage (triage eval, respond):
// "rule_id", "title" and "rule_file" strings beside an "event" object (a correlation's event is
// its summary, holding "correlation").
bool is_alert_json(const nlohmann::ordered_json& record);

}  // namespace csq::detect
