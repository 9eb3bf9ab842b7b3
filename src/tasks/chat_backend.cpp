#include "tasks/chat_backend.h"

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/device_model.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"

namespace csq::tasks {

std::string ChatResult::text() const {
  if (reasoning.empty()) return content;
  return "<think>" + reasoning + "</think>" + content;
}

namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// ---------------------------------------------------------------------------------------------
// In process: one Engine, one Scheduler; each complete() is one job, so as many requests as
// there are calling threads are decoded together.

class LocalBackend final : public ChatBackend {
 public:
  LocalBackend(LocalBackendConfig config, std::shared_ptr<Engine> engine)
      : config_(std::move(config)), engine_(std::move(engine)) {
    if (config_.parallel < 1 || config_.parallel > 256) fail_usage("--parallel must be between 1 and 256");
    if (config_.ctx != 0 && config_.ctx < 16) fail_usage("--ctx must be at least 16 (or 0 for automatic)");
  }
  // On a scheduler that already runs (csq serve's): prepare() only checks the requests against
  // its context, and each answer may take `timeout` unless `abandoned` is set first.
  LocalBackend(const Engine& engine, Scheduler& scheduler, bool parse_special_in_content, std::chrono::seconds timeout,
               std::shared_ptr<const std::atomic<bool>> abandoned)
      : engine_(std::shared_ptr<Engine>(), const_cast<Engine*>(&engine)),
        scheduler_(&scheduler),
        timeout_(timeout),
        abandoned_(std::move(abandoned)) {
    config_.parallel = scheduler.config().n_parallel;
    config_.ctx = scheduler.config().n_ctx;
    config_.parse_special_in_content = parse_special_in_content;
    ctx_ = config_.ctx;
  }

  void prepare(const std::vector<ChatRequest>& requests) override {
    // Loaded here, not in the constructor, so that a run refused for its manifest costs nothing.
    if (!engine_) {
      engine_ = std::make_shared<Engine>(load_engine(config_.model, config_.template_file, config_.loras));
      place_model(*engine_->model, config_.device);
    }
    const int64_t model_max = engine_->model->config().max_context;
    int64_t need = 16;
    for (const auto& r : requests) {
      if (!r.response_schema.is_null()) {
        if (r.constraint) fail_usage(r.label + ": give a constraint or a response schema, not both");
        auto& compiled = schemas_[r.response_schema.dump()];
        if (!compiled) compiled = make_json_schema_constraint(engine_->tokenizer, r.response_schema);
      }
      const int64_t total = int64_t(encode(r).ids.size()) + r.max_tokens;
      if (config_.ctx > 0 && total > config_.ctx)
        fail_input(r.label + ": the prompt (" + std::to_string(total - r.max_tokens) + " tokens) plus max_tokens (" +
                   std::to_string(r.max_tokens) + ") exceeds the context of " + std::to_string(config_.ctx) +
                   " (raise --ctx or lower --max-tokens)");
      if (model_max > 0 && total > model_max)
        fail_input(r.label + ": the prompt (" + std::to_string(total - r.max_tokens) + " tokens) plus max_tokens (" +
                   std::to_string(r.max_tokens) + ") exceeds the model's context of " + std::to_string(model_max));
      need = std::max(need, total);
    }
    if (scheduler_) return;
    ctx_ = config_.ctx;
    if (ctx_ == 0) {
      ctx_ = (need + 255) / 256 * 256;
      if (model_max > 0) ctx_ = std::min(ctx_, model_max);
    }
    pool_ = std::make_unique<ThreadPool>(config_.threads);
    SchedulerConfig sc;
    sc.n_parallel = config_.parallel;
    sc.n_ctx = ctx_;
    sc.n_batch = config_.batch;
    sc.max_queue = size_t(config_.parallel) * 4;
    sc.kv_type = config_.kv_type;
    owned_scheduler_ = std::make_unique<Scheduler>(*engine_->model, engine_->tokenizer, *pool_, sc);
    scheduler_ = owned_scheduler_.get();
  }

  ChatResult complete(const ChatRequest& r) override {
    if (!scheduler_) fail_runtime("local backend: complete() before prepare()");
    const auto t0 = Clock::now();
    const ChatPrompt e = encode(r);
    GenerationRequest g;
    g.prompt = e.ids;
    g.sampling = r.sampling;
    g.max_tokens = r.max_tokens;
    g.stop = r.stop;
    g.eos_ids = engine_->eos_ids;
    g.ignore_eos = r.ignore_eos;
    g.reasoning_open = e.reasoning_open;
    const TokenConstraint* base = r.constraint ? r.constraint : schema_constraint(r);
    std::unique_ptr<TokenConstraint> constraint = base ? base->fresh() : nullptr;
    if (is_abandoned()) fail_runtime(r.label + ": not started: the client went away");
    auto job = scheduler_->submit(std::move(g), std::move(constraint), timeout_);
    if (!job) throw BackendBusy(r.label + ": the scheduler's queue is full");
    // The scheduler ends the job at its deadline; this only watches for the client leaving.
    while (abandoned_ && !job->wait_for(std::chrono::milliseconds(200)))
      if (is_abandoned()) job->cancel();
    const GenerationResult& res = job->wait(timeout_);
    if (res.finish == FinishReason::Cancelled) fail_runtime(r.label + ": generation was cancelled");
    ChatResult out;
    out.content = res.content;
    out.reasoning = res.reasoning;
    out.finish = finish_reason_name(res.finish);
    out.prompt_tokens = res.prompt_tokens;
    out.completion_tokens = int64_t(res.tokens.size());
    out.ms = ms_since(t0);
    return out;
  }

  ojson identity() const override {
    std::error_code ec;
    const auto canonical = std::filesystem::weakly_canonical(config_.model, ec);
    ojson j = {{"kind", "local"}, {"model", ec ? config_.model : canonical.string()}};
    if (!config_.template_file.empty()) j["template"] = config_.template_file;
    if (!config_.loras.empty()) j["loras"] = config_.loras;
    if (config_.parse_special_in_content) j["parse_special_in_content"] = true;
    return j;
  }

  ojson settings() const override {
    return {{"parallel", config_.parallel}, {"threads", pool_ ? pool_->size() : config_.threads}, {"ctx", ctx_},
            {"batch", config_.batch}, {"cache_type", dtype_info(config_.kv_type).name}};
  }

  int concurrency() const override { return config_.parallel; }

 private:
  // The compiled constraint of r.response_schema (null when it has none), built once per schema.
  const TokenConstraint* schema_constraint(const ChatRequest& r) {
    if (r.response_schema.is_null()) return nullptr;
    if (r.constraint) fail_usage(r.label + ": give a constraint or a response schema, not both");
    const std::string key = r.response_schema.dump();
    std::lock_guard<std::mutex> lock(schema_mutex_);
    auto& compiled = schemas_[key];
    if (!compiled) {
      if (!vocabulary_) vocabulary_ = constraint_vocabulary(engine_->tokenizer);
      compiled = make_json_schema_constraint(vocabulary_, r.response_schema);
    }
    return compiled.get();
  }

  bool is_abandoned() const { return abandoned_ && abandoned_->load(); }

  ChatPrompt encode(const ChatRequest& r) {
    ChatRenderOptions options;
    options.extra = r.template_kwargs;
    options.parse_special_in_content = config_.parse_special_in_content;
    // Rendering and tokenizing are cheap next to generation; one at a time keeps them simple.
    std::lock_guard<std::mutex> lock(encode_mutex_);
    return engine_->encode_messages(r.messages, options);
  }

  LocalBackendConfig config_;
  std::shared_ptr<Engine> engine_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Scheduler> owned_scheduler_;
  Scheduler* scheduler_ = nullptr;
  std::chrono::seconds timeout_ = std::chrono::hours(24);
  std::shared_ptr<const std::atomic<bool>> abandoned_;
  std::mutex encode_mutex_;
  std::mutex schema_mutex_;
  ConstraintVocabularyPtr vocabulary_;
  std::map<std::string, std::unique_ptr<TokenConstraint>> schemas_;
  int64_t ctx_ = 0;
};

// ---------------------------------------------------------------------------------------------
// An OpenAI-compatible server: POST {base}/chat/completions, non-streaming.

struct Url {
  std::string origin;      // scheme://host[:port]
  std::string base_path;   // e.g. /v1
  std::string chat_path;   // e.g. /v1/chat/completions
};

Url parse_url(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    fail_usage("--endpoint '" + url + "': expected http://HOST[:PORT]/PATH or https://..., e.g. http://127.0.0.1:8080/v1");
  const size_t path_begin = url.find('/', scheme_end + 3);
  Url u;
  u.origin = url.substr(0, path_begin);
  if (u.origin.size() == scheme_end + 3) fail_usage("--endpoint '" + url + "': no host");
  std::string path = path_begin == std::string::npos ? "" : url.substr(path_begin);
  while (!path.empty() && path.back() == '/') path.pop_back();
  constexpr std::string_view kChat = "/chat/completions";
  if (path.ends_with(kChat)) {
    u.chat_path = path;
    u.base_path = path.substr(0, path.size() - kChat.size());
  } else {
    u.base_path = path;
    u.chat_path = path + std::string(kChat);
  }
  return u;
}

// The server's own words for a failed request: OpenAI's error.message, Ollama's "error", or the
// start of the body.
std::string error_text(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
  }
  std::string s = body.substr(0, 300);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.empty() ? "(empty body)" : s;
}

class EndpointBackend final : public ChatBackend {
 public:
  explicit EndpointBackend(EndpointConfig config) : config_(std::move(config)), url_(parse_url(config_.url)) {
    if (config_.concurrency < 1 || config_.concurrency > 256) fail_usage("--parallel must be between 1 and 256");
    if (config_.retries < 0) fail_usage("--retries must be at least 0");
    if (config_.api_model.empty()) config_.api_model = first_model();
  }

  void prepare(const std::vector<ChatRequest>& requests) override {
    for (const auto& r : requests)
      if (r.constraint) fail_usage(r.label + ": constrained answers need the in-process engine (--model)");
  }

  ChatResult complete(const ChatRequest& r) override {
    ojson body;
    body["model"] = config_.api_model;
    body["messages"] = r.messages;
    // The float settings sent as the decimals they were written as (0.3, not 0.30000001192…).
    body["temperature"] = std::round(double(r.sampling.temperature) * 1e6) / 1e6;
    body["top_p"] = std::round(double(r.sampling.top_p) * 1e6) / 1e6;
    body["max_tokens"] = r.max_tokens;
    body["seed"] = r.sampling.seed;
    if (!r.stop.empty()) body["stop"] = r.stop;
    if (!r.template_kwargs.empty()) body["chat_template_kwargs"] = r.template_kwargs;
    if (!r.response_schema.is_null())
      body["response_format"] = {{"type", "json_schema"},
                                 {"json_schema", {{"name", "answer"}, {"strict", true}, {"schema", r.response_schema}}}};
    body["stream"] = false;
    const auto t0 = Clock::now();
    const nlohmann::json j = request("POST", url_.chat_path, body.dump(-1, ' ', false, ojson::error_handler_t::replace),
                                     r.label);
    const std::string where = config_.url + ": " + r.label + ": ";
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
        !j["choices"][0].is_object() || !j["choices"][0].contains("message") || !j["choices"][0]["message"].is_object())
      fail_runtime(where + "the response has no choices[0].message (not an OpenAI chat completion)");
    const auto& choice = j["choices"][0];
    const auto& message = choice["message"];
    ChatResult out;
    if (message.contains("content") && message["content"].is_string()) out.content = message["content"];
    // vLLM, SGLang and csq serve say reasoning_content; Ollama says reasoning.
    for (const char* key : {"reasoning_content", "reasoning"})
      if (message.contains(key) && message[key].is_string() && out.reasoning.empty()) out.reasoning = message[key];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) out.finish = choice["finish_reason"];
    if (j.contains("usage") && j["usage"].is_object()) {
      const auto& u = j["usage"];
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) out.prompt_tokens = u["prompt_tokens"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
        out.completion_tokens = u["completion_tokens"];
    }
    out.ms = ms_since(t0);
    return out;
  }

  ojson identity() const override {
    return {{"kind", "endpoint"}, {"url", config_.url}, {"api_model", config_.api_model}};
  }
  ojson settings() const override { return {{"parallel", config_.concurrency}, {"retries", config_.retries}}; }
  int concurrency() const override { return config_.concurrency; }

 private:
  std::string first_model() {
    const nlohmann::json j = request("GET", url_.base_path + "/models", "", "listing the models");
    if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() && j["data"][0].is_object() &&
        j["data"][0].contains("id") && j["data"][0]["id"].is_string())
      return j["data"][0]["id"];
    fail_runtime(config_.url + ": GET " + url_.base_path + "/models lists no model; pass --api-model NAME");
  }

  // One request with retries: connection failures, 408, 429 and 5xx are retried with exponential
  // backoff (or the server's Retry-After); any other status fails at once with the server's message.
  nlohmann::json request(const std::string& method, const std::string& path, const std::string& body,
                         const std::string& label) {
    std::string last;
    for (int attempt = 0;; ++attempt) {
      httplib::Client client(url_.origin);
      client.set_connection_timeout(std::chrono::seconds(10));
      client.set_read_timeout(config_.timeout);
      client.set_write_timeout(std::chrono::seconds(60));
      if (!config_.api_key.empty()) client.set_bearer_token_auth(config_.api_key.c_str());
      const httplib::Result res = method == "GET" ? client.Get(path.c_str()) : client.Post(path.c_str(), body, "application/json");
      std::chrono::milliseconds wait = config_.first_backoff * (int64_t(1) << std::min(attempt, 10));
      if (!res) {
        last = "cannot reach the server (" + httplib::to_string(res.error()) + ")";
      } else if (res->status >= 200 && res->status < 300) {
        const auto j = nlohmann::json::parse(res->body, nullptr, false);
        if (j.is_discarded()) fail_runtime(config_.url + ": " + label + ": the response is not JSON: " + error_text(res->body));
        return j;
      } else {
        last = "HTTP " + std::to_string(res->status) + ": " + error_text(res->body);
        const bool retryable = res->status == 408 || res->status == 429 || res->status >= 500;
        if (!retryable)
          fail_runtime(config_.url + ": " + label + ": " + last +
                       (res->status == 401 || res->status == 403 ? " (check --api-key-file)" : ""));
        if (res->has_header("Retry-After")) {
          const std::string after = res->get_header_value("Retry-After");
          char* end = nullptr;
          const long seconds = std::strtol(after.c_str(), &end, 10);
          if (end && *end == '\0' && seconds >= 0) wait = std::chrono::seconds(std::min(seconds, 60L));
        }
      }
      if (attempt >= config_.retries)
        fail_runtime(config_.url + ": " + label + ": " + last + " (gave up after " + std::to_string(attempt + 1) +
                     " attempts)");
      std::this_thread::sleep_for(wait);
    }
  }

  EndpointConfig config_;
  Url url_;
};

}  // namespace

std::unique_ptr<ChatBackend> make_local_backend(const LocalBackendConfig& config, std::shared_ptr<Engine> engine) {
  return std::make_unique<LocalBackend>(config, std::move(engine));
}

std::unique_ptr<ChatBackend> make_scheduler_backend(const Engine& engine, Scheduler& scheduler,
                                                    bool parse_special_in_content, std::chrono::seconds timeout,
                                                    std::shared_ptr<const std::atomic<bool>> abandoned) {
  return std::make_unique<LocalBackend>(engine, scheduler, parse_special_in_content, timeout, std::move(abandoned));
}

std::unique_ptr<ChatBackend> make_endpoint_backend(const EndpointConfig& config) {
  return std::make_unique<EndpointBackend>(config);
}

}  // namespace csq::tasks
