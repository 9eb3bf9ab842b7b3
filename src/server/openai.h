// The OpenAI wire format: requests parsed and checked into generation requests, results
// written back as chat.completion / text_completion objects and server-sent-event chunks.
// Everything here is pure (no I/O), so it is unit-tested and fuzzed on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/generator.h"

namespace csq {
class Tokenizer;
}

namespace csq::server {

// An error to send back: HTTP status plus the OpenAI error object.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
  nlohmann::ordered_json body() const;
};

enum class ResponseFormat { Text, JsonObject, JsonSchema };

// A parsed /v1/chat/completions or /v1/completions request.
struct ApiRequest {
  bool chat = true;
  std::string model;
  nlohmann::ordered_json messages;  // chat: the conversation, content flattened to strings
  nlohmann::ordered_json tools;     // chat: passed to the template
  std::vector<std::string> prompts; // completions: one or more texts
  std::vector<std::vector<int32_t>> prompt_ids;  // completions: prompts given as token ids
  SamplingParams sampling;
  bool seeded = false;
  std::optional<int64_t> max_tokens;
  std::vector<std::string> stop;
  int32_t n = 1;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  int32_t top_logprobs = 0;
  bool echo = false;
  bool ignore_eos = false;  // extension (vLLM, llama-server): run to max_tokens past end-of-text
  ResponseFormat format = ResponseFormat::Text;
  nlohmann::ordered_json json_schema;  // for ResponseFormat::JsonSchema (property order kept)
  nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();
};

// Limits that bound what one request may ask for.
struct ApiLimits {
  int32_t max_n = 8;
  int32_t max_stop = 16;
  int32_t max_top_logprobs = 20;
  int64_t max_tokens_cap = 4096;
};

// The deepest JSON nesting a request may have: copying, rendering and compiling a request
// recurse over its JSON, and a few megabytes of brackets would exhaust a thread's stack.
constexpr int kMaxJsonDepth = 64;

// Parses a request body keeping key order; ApiError (400) when it is not JSON or nests deeper
// than kMaxJsonDepth.
nlohmann::ordered_json parse_body(std::string_view text);

// Throws ApiError (400) naming the offending field. The body is parsed keeping key order:
// schema properties and message fields are rendered in the order the client sent them.
ApiRequest parse_chat_request(const nlohmann::ordered_json& body, const ApiLimits& limits);
ApiRequest parse_completion_request(const nlohmann::ordered_json& body, const ApiLimits& limits);

// The sampling fields of a request (temperature, top_p, top_k, min_p, penalties, seed,
// max_tokens...) read into `into`, whose values stand where a field is absent: for the
// server's task endpoints, which check the body's keys first. Throws ApiError (400).
void parse_sampling_fields(const nlohmann::ordered_json& body, const ApiLimits& limits, ApiRequest& into);

// One finished choice.
struct Choice {
  GenerationResult result;
  std::string text_prefix;  // completions with echo: the prompt text
};

// `usage`: usage_json of the whole request.
nlohmann::ordered_json chat_response(const std::string& id, int64_t created, const std::string& model,
                                     const std::vector<Choice>& choices, const Tokenizer& tokenizer, bool logprobs,
                                     const nlohmann::ordered_json& usage);
nlohmann::ordered_json completion_response(const std::string& id, int64_t created, const std::string& model,
                                           const std::vector<Choice>& choices, const Tokenizer& tokenizer, bool logprobs,
                                           const nlohmann::ordered_json& usage);
nlohmann::ordered_json usage_json(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens);

// One streamed chunk for choice `index`: text deltas, or the final chunk when finish_reason is set.
nlohmann::ordered_json chat_chunk(const std::string& id, int64_t created, const std::string& model, int32_t index,
                                  const std::string* content, const std::string* reasoning, const char* finish_reason,
                                  bool first);
nlohmann::ordered_json completion_chunk(const std::string& id, int64_t created, const std::string& model, int32_t index,
                                        const std::string& text, const char* finish_reason);

// "data: <json>\n\n" with invalid UTF-8 replaced, never an exception.
std::string sse(const nlohmann::ordered_json& event);
std::string dump(const nlohmann::ordered_json& value);

// OpenAI's finish_reason for a result: "stop" when the model ended it, else "length" (cut by
// max_tokens, the context, or the server: --timeout or the shutdown deadline), never complete.
const char* api_finish_reason(const GenerationResult& result);

}  // namespace csq::server
