// Extracting the answer from a model's free-text response, one parser per published
// evaluation protocol. The protocols disagree on purpose-built details (which match wins,
// case, what counts as unparseable); each parser reproduces its source, see
// docs/evaluation.md for the exact rules and their provenance.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace csq::tasks {

enum class AnswerParser {
  Cybersecqwen,  // CyberSecQwen-4B's harness: last CWE id, an MCQ regex cascade
  Ctibench,      // CTI-Bench's own extraction (model-prediction.ipynb + evaluation.ipynb)
  Faith,         // Cisco FAITH: ordered answer formats with match_if_unique / match_if_singular
};

enum class AnswerKind {
  Mcq,     // a letter A-D
  Cwe,     // "CWE-79"
  Cvss,    // a CVSS v3 vector
  Attack,  // ATT&CK technique ids
  Actor,   // a threat actor's name
};

struct Answer {
  bool parsed = false;  // a valid answer was found (counts in the "parseable" denominator)
  // Normalized value: "B", "CWE-79", a canonical CVSS vector, "T1059,T1071" (main techniques,
  // sorted, unique), an actor name as written. Under the ctibench MCQ parser "X" (a refusal)
  // is a parsed value that is never correct, as in CTI-Bench's scoring.
  std::string value;
  bool proper = false;  // FAITH: found by the first ("proper") answer format
};

// Drops reasoning: everything up to the last "</think>", and anything from an unclosed
// "<think>" onward.
std::string strip_think(std::string_view text);

// strip_think, then the protocol's extraction for `kind`.
Answer parse_answer(AnswerParser parser, AnswerKind kind, std::string_view response);

const char* parser_name(AnswerParser parser);
std::optional<AnswerParser> parser_from_name(std::string_view name);

// "T1059.001" -> "T1059": ATT&CK scoring compares main techniques only.
std::string main_technique(std::string_view id);

}  // namespace csq::tasks
