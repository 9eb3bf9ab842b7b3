// Where answers come from: the in-process engine (continuous batching on the Scheduler) or any
// OpenAI-compatible server (vLLM, llama-server, Ollama, csq serve). The task commands and
// `csq eval run` send the same chat requests to either, so a protocol means the same thing on
// both, and a greedy run gives the same answers in process and through `csq serve`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "kernels/dtype.h"
#include "model/device_choice.h"
#include "runtime/sampler.h"

namespace csq {
class Scheduler;
class TokenConstraint;
struct Engine;
}

namespace csq::tasks {

// The in-process scheduler refused a request for want of room (its queue is full): a condition of
// the moment, not of the input, so callers retry or answer 429 rather than fail the input.
class BackendBusy : public Error {
 public:
  explicit BackendBusy(const std::string& message) : Error(ErrorCode::Runtime, message) {}
};

struct ChatRequest {
  std::string label;                  // names the request in errors ("cti-rcm item 12 trial 0")
  nlohmann::ordered_json messages;    // [{"role", "content"}, ...]
  SamplingParams sampling;            // an endpoint receives temperature, top_p and seed
  int64_t max_tokens = 512;
  std::vector<std::string> stop;
  bool ignore_eos = false;            // in process only
  const TokenConstraint* constraint = nullptr;  // in process only; each answer gets a fresh() copy
  // A JSON Schema the answer must follow (null: none): in process a schema constraint compiled
  // once per schema (in prepare() or on first use), at an endpoint response_format
  // {"type": "json_schema"}. Not with `constraint`.
  nlohmann::ordered_json response_schema;
  // Template switches such as {"enable_thinking": false}; sent as chat_template_kwargs.
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
};

struct ChatResult {
  std::string content;
  std::string reasoning;
  std::string finish;  // "stop", "length", ...
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double ms = 0;  // wall time of this request, queueing included

  // The answer as the model wrote it: a non-empty reasoning in its <think> block, then the
  // content. The answer parsers drop the block again (strip_think).
  std::string text() const;
};

class ChatBackend {
 public:
  virtual ~ChatBackend() = default;
  // Called once with every request before the first complete(): checks that each can be served
  // (an in-process prompt that does not fit the context is a BadInput error naming its label)
  // and sizes what the backend needs.
  virtual void prepare(const std::vector<ChatRequest>& requests) = 0;
  // Thread-safe: call from up to concurrency() threads at once. Throws csq::Error.
  virtual ChatResult complete(const ChatRequest& request) = 0;
  // What answers the requests, for run manifests: {"kind": "local", "model"} or
  // {"kind": "endpoint", "url", "api_model"}.
  virtual nlohmann::ordered_json identity() const = 0;
  // The settings that do not change answers (threads, parallel, context), for reports.
  virtual nlohmann::ordered_json settings() const = 0;
  virtual int concurrency() const = 0;
};

struct LocalBackendConfig {
  std::string model;          // Hugging Face directory or .gguf
  std::string template_file;  // optional Jinja template replacing the model's own
  std::vector<std::string> loras;  // LoRA adapters applied at run time, "PATH[:STRENGTH]"
  int threads = 0;            // 0: one per core
  int parallel = 4;           // sequences decoded together
  int64_t ctx = 0;            // positions per sequence; 0: the longest prompt plus its max_tokens
  int64_t batch = 256;        // most tokens in one forward pass
  DType kv_type = DType::F16;  // KV cache storage: F16, F32 or Q8_0
  DeviceChoice device;         // where the model runs when the backend loads it (model/device_model.h)
  bool parse_special_in_content = false;  // message content may become special tokens (HF parity)
};
// `engine`: one already loaded (e.g. to build constraints from its tokenizer); null: the backend
// loads config.model in prepare().
std::unique_ptr<ChatBackend> make_local_backend(const LocalBackendConfig& config,
                                                std::shared_ptr<Engine> engine = nullptr);

// In process on a scheduler that is already running (csq serve's, shared with its other
// endpoints): each complete() is one job of at most `timeout`; prepare() checks the requests
// against the scheduler's context. `engine` and `scheduler` must outlive the backend. Once
// `*abandoned` is true (the client that wanted the answers went away), the jobs in flight are
// cancelled within a fifth of a second and complete() fails instead of queueing more.
std::unique_ptr<ChatBackend> make_scheduler_backend(const Engine& engine, Scheduler& scheduler,
                                                    bool parse_special_in_content, std::chrono::seconds timeout,
                                                    std::shared_ptr<const std::atomic<bool>> abandoned = nullptr);

struct EndpointConfig {
  std::string url;        // base URL, e.g. http://127.0.0.1:8080/v1 (or the full .../chat/completions)
  std::string api_model;  // empty: the first model the server lists at GET {base}/models
  std::string api_key;    // sent as a Bearer token when non-empty
  int concurrency = 4;    // requests in flight
  int retries = 5;        // on connection errors, 408, 429 and 5xx, with exponential backoff
  std::chrono::milliseconds first_backoff{1000};
  std::chrono::seconds timeout{600};  // per request
};
// Resolves the model name (GET /models) when none is given; throws csq::Error (Runtime) naming
// the URL when the server cannot be reached or answers with an error.
std::unique_ptr<ChatBackend> make_endpoint_backend(const EndpointConfig& config);

}  // namespace csq::tasks
