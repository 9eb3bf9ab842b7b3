// Alert triage: the model adjudicates one record (a csq detect alert, a Wazuh alert, a raw
// event: any JSON object) as benign, suspicious or malicious, with ATT&CK techniques, a
// rationale and next steps.
//
// The prompt is a fixed scaffold plus untrusted spans. Every key and value of the record is
// untrusted (attackers write user-agents, URLs, user names, command lines), so is the site
// context; each is capped in length with an explicit, counted truncation marker and marked
// (spotlighting, see Spotlight). The scaffold never holds record text, and the whole content is
// tokenized as untrusted text (Engine::encode_messages), so no field can become a control token.
// The answer is constrained by triage_answer_schema() in process, so it always parses; answers
// from an endpoint are validated the same way and a bad one is reported, not guessed at.
// docs/triage.md describes the scaffold, the spotlighting, the schema and the output line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "detect/engine.h"
#include "runtime/engine.h"
#include "tasks/chat_backend.h"

namespace csq::tasks {

// How untrusted spans are marked in the prompt.
enum class Spotlight {
  None,        // "path: value" lines, values as they are (the baseline for measurement)
  Delimiters,  // the record inside <record>...</record>, each value a JSON string with <, > and
               // every control character escaped, so no value can close its quote, its line or the block
  Datamark,    // as Delimiters, and every whitespace run inside a value replaced by U+02C6 ("ˆ")
};
const char* spotlight_name(Spotlight s);
std::optional<Spotlight> spotlight_from_name(std::string_view name);

struct TriageOptions {
  Spotlight spotlight = Spotlight::Delimiters;
  size_t max_field_bytes = 1024;     // a longer value is cut (at a UTF-8 boundary) and marked
  size_t max_key_bytes = 64;         // each key of a field's path
  size_t max_fields = 200;           // leaves of the record; the rest are omitted, and counted
  size_t max_depth = 8;              // deeper objects/arrays are shown as one JSON value
  size_t max_context_bytes = 8192;   // the site context
  int64_t max_tokens = 768;          // enough for the schema's longest answer
  SamplingParams sampling = greedy();

  static SamplingParams greedy() {
    SamplingParams s;
    s.temperature = 0;
    return s;
  }
};

// A rule that fired on the record, in hybrid mode (csq triage --rules): taken from the rule
// files the user gave, it is shown as reference text (why the record was flagged), not as record
// data. Rule fields inside an input alert (csq detect --json) stay part of the untrusted record.
struct RuleContext {
  std::string id, title, level, description;
  std::vector<std::string> tags;  // Sigma form: "attack.t1059.001", "attack.execution"
  std::string author;
  std::vector<std::string> falsepositives;
};

struct TriageInput {
  std::string id;                  // names the input in the output line and in errors
  nlohmann::ordered_json record;   // a JSON object
  // Hybrid mode: the rules saw the record (screened), and these fired on it. A screened input on
  // which no rule fired is decided by the rules (benign, no model call); one the detection
  // engine could not read as an event (screen_problem) gets an error line.
  bool screened = false;
  std::vector<RuleContext> rules;
  std::string screen_problem;
};

// Where one untrusted string landed in a message's content.
struct TriageSpan {
  std::string field;      // the record path ("event.CommandLine"), "rules[0].title" (hybrid), "site_context"
  bool key = false;       // the span is the field's path (keys are untrusted too), not its value
  size_t message = 0;     // index in TriagePrompt::messages
  size_t offset = 0;      // byte offset in that message's content
  size_t length = 0;      // bytes of the (possibly cut) untrusted text
  bool truncated = false;
};

struct TriagePrompt {
  nlohmann::ordered_json messages;  // [{"role": "system", ...}, {"role": "user", ...}]
  std::vector<TriageSpan> spans;    // every untrusted string, in content order
  size_t truncated_fields = 0;      // values or keys cut to their cap
  size_t omitted_fields = 0;        // leaves beyond max_fields
};

// The id of a record: "id" or "_id" or "alert_id" when it is a string or number, else the
// source reference of a csq detect alert ("FILE:RECORD", from "source": {"file", "record"} or
// "source": FILE, "record": N), else `fallback` (e.g. "stdin:12").
std::string triage_record_id(const nlohmann::ordered_json& record, const std::string& fallback);

// Throws csq::Error (BadInput) naming input.id when the record is not a JSON object.
TriagePrompt build_triage_prompt(const TriageInput& input, const std::string& site_context, const TriageOptions& options);

// Where each untrusted span of `prompt` lies in its encoding (Engine::encode_messages of
// prompt.messages): its bytes of encoded.text and the tokens [first_token, last_token) covering
// them. Throws csq::Error (Runtime) when a span is not inside untrusted message content (the
// template moved or rewrote it) or the content was parsed as trusted (parse_special_in_content).
struct TriageTokenSpan {
  TriageSpan span;
  TextRange text;
  size_t first_token = 0;
  size_t last_token = 0;
};
std::vector<TriageTokenSpan> locate_triage_spans(const ChatPrompt& encoded, const TriagePrompt& prompt);

// The JSON Schema of an answer: verdict, confidence, techniques, rationale, next_steps.
const nlohmann::ordered_json& triage_answer_schema();

struct TriageVerdict {
  std::string verdict;  // benign | suspicious | malicious
  double confidence = 0;
  std::vector<std::string> techniques;  // T1059 or T1059.001
  std::string rationale;
  std::vector<std::string> next_steps;
};

// Parses and validates an answer against the schema (a <think> block before it is dropped, and
// so is a ```json fence around it). Returns nullopt and sets *error naming what is wrong.
std::optional<TriageVerdict> parse_triage_answer(std::string_view answer, std::string* error);

// One output line.
struct TriageResult {
  std::string id;
  std::optional<TriageVerdict> verdict;  // absent when the answer failed
  std::string error;                     // why it failed (unparseable answer, backend error)
  std::string answer;                    // the raw answer, kept when it failed to parse
  bool answered = false;                 // the backend answered (the answer may still not parse), or the rules decided
  int64_t prompt_tokens = 0;
  int64_t answer_tokens = 0;
  size_t truncated_fields = 0;
  size_t omitted_fields = 0;
  std::vector<std::string> rules;  // ids of the rules that fired (hybrid), or the input alert's rule_id
  std::vector<std::string> rule_authors;  // their authors, in that order ("" when a rule names none)
  std::string decided_by = "model";  // "rules": hybrid mode, no rule fired, no model call
  // The input record as it came: a line carries what it judged, so `csq respond` downstream
  // (which reads a triage line's "alert") plans from the alert itself, not from the verdict alone.
  nlohmann::ordered_json alert;
  // {"id", "verdict", "confidence", "techniques", "rationale", "next_steps", "prompt_tokens",
  //  "answer_tokens", "truncated_fields", "omitted_fields", "decided_by", "rules"?, "rule_authors"?, "error"?,
  //  "answer"?, "alert"}; confidence is null when the rules decided.
  nlohmann::ordered_json to_json() const;
};

// The chat request for one input: the prompt, the answer schema, the sampling and max_tokens of
// `options` (the seed plus a hash of the input's id, so each input is sampled on its own), and
// the template's non-thinking mode (a JSON answer has no room for a <think> block).
ChatRequest triage_request(const TriageInput& input, const TriagePrompt& prompt, const TriageOptions& options);

// One input's line: the rules' decision for a screened input no rule fired on, else the
// backend's answer (with every fired rule in one prompt). A failed answer or a backend error
// (csq::Error) is a result with an error, except BackendBusy (no room yet) and a usage error
// (options out of range, which every input would meet), which are thrown.
// Safe to call from several threads.
TriageResult triage_input(ChatBackend& backend, const TriageInput& input, const std::string& site_context,
                          const TriageOptions& options);

// Hybrid mode: the detection engine in front of the model. screen() runs every active rule of
// the detector over input.record and fills input.screened, input.rules and input.screen_problem.
// Correlation rules need the event stream in order and are not applied here.
class RuleScreen {
 public:
  explicit RuleScreen(const detect::Detector& detector);
  ~RuleScreen();
  void screen(TriageInput& input) const;  // safe to call from several threads

 private:
  const detect::Detector& detector_;
  mutable std::mutex mutex_;
  detect::Detector::ScratchPtr scratch_;
};

RuleContext rule_context(const detect::Rule& rule);

// Produces the next input, or nullopt at the end; called from one thread at a time.
using TriageSource = std::function<std::optional<TriageInput>()>;
// Called once per input, in input order, from the calling thread.
using TriageSink = std::function<void(size_t index, const TriageResult& result)>;

// Triages every input of `source` through `backend` (already prepared), up to
// backend.concurrency() at once, reading inputs only as workers free up, so a stream is
// answered line by line. A failed answer or a backend error (csq::Error) on one input is a
// result with an error; BackendBusy or an exception from `source` or `sink` stops the run and is
// rethrown (the inputs not yet handed to `sink` are not answered).
void triage_stream(ChatBackend& backend, const TriageSource& source, const std::string& site_context,
                   const TriageOptions& options, const TriageSink& sink);

// The same over a vector; prepares the backend with every request first.
std::vector<TriageResult> triage_batch(ChatBackend& backend, const std::vector<TriageInput>& inputs,
                                       const std::string& site_context, const TriageOptions& options);

}  // namespace csq::tasks
