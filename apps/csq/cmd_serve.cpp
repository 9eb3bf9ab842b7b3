// csq serve — the OpenAI-compatible HTTP server.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "command.h"
#include "model_option.h"
#include "generation_options.h"
#include "kb_options.h"
#include "rule_options.h"
#include "io/mapped_file.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/http_server.h"

namespace csq::app {
namespace {

struct ServeOptions {
  std::string model;
  std::string model_as_given;  // the --model text before it was resolved
  std::string template_file;
  std::vector<std::string> loras;
  std::string tokenizer;
  bool mmap = false;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key_file;
  int parallel = 4;
  int64_t ctx = 4096;
  std::string cache_type = "f16";
  DeviceOption device;
  int64_t batch = 256;
  size_t queue = 64;
  int64_t max_tokens = 4096;
  size_t max_body_mb = 4;
  int timeout_s = 600;
  int shutdown_s = 30;
  int threads = 0;
  std::string alias;
  bool log_content = false;
  std::string kb;
  RuleOptions rules;  // for POST /v1/detect; none: off
  bool parse_special_in_content = false;
};

// The detector behind POST /v1/detect, loaded as `csq detect` loads it; null without --rules.
std::shared_ptr<const detect::Detector> load_detector(const RuleOptions& o) {
  if (o.rules.empty()) {
    if (!o.pipeline.empty()) fail_usage("--pipeline needs --rules PATH");
    return nullptr;
  }
  const auto loaded = load_rules(o);
  auto detector = std::make_shared<const detect::Detector>(loaded->set, loaded->pipeline, detector_options(o));
  print_rule_summary(*loaded, *detector);
  return detector;
}

std::string read_api_key(const std::string& path) {
  std::string key = io::read_text_file(path);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.size() < 16) fail_input(path + ": the API key must be at least 16 characters");
  return key;
}

// SIGTERM and SIGINT are taken by a dedicated thread (sigwait), never by an async handler. It
// watches from before the model loads: a signal during start-up ends the process at once (the
// load cannot be interrupted, and nothing has been served or written yet); once the server is
// up, a signal starts the graceful shutdown.
class ShutdownSignals {
 public:
  explicit ShutdownSignals(std::chrono::seconds deadline) : deadline_(deadline) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // before any other thread exists, so all inherit it
    thread_ = std::thread([this] { watch(); });
  }
  ~ShutdownSignals() { close(); }

  // From now on a signal stops `http` gracefully.
  void serving(server::HttpServer* http) {
    std::lock_guard<std::mutex> lock(mutex_);
    http_ = http;
  }
  // Ends the watch (waiting for a shutdown in progress); call before the server goes away.
  void close() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait; closing_ says why
    thread_.join();
  }

 private:
  void watch() {
    int received = 0;
    sigwait(&set_, &received);
    const char* name = received == SIGTERM ? "SIGTERM" : "SIGINT";
    std::unique_lock<std::mutex> lock(mutex_);
    if (closing_) return;
    if (!http_) {
      std::fprintf(stderr, "csq serve: %s received while starting (loading the model); exiting without serving\n", name);
      std::_Exit(0);
    }
    std::fprintf(stderr, "csq serve: %s received; finishing in-flight requests (up to %lld s)\n", name,
                 (long long)deadline_.count());
    http_->stop(deadline_);
  }

  std::chrono::seconds deadline_;
  sigset_t set_;
  std::mutex mutex_;
  server::HttpServer* http_ = nullptr;
  bool closing_ = false;
  std::thread thread_;
};

void run_serve(const ServeOptions& o) {
  if (o.parallel < 1 || o.parallel > 256) fail_usage("--parallel must be between 1 and 256");
  if (o.ctx < 16) fail_usage("--ctx must be at least 16");
  server::ServerOptions options;
  options.host = o.host;
  options.port = o.port;
  if (!o.api_key_file.empty()) options.api_key = read_api_key(o.api_key_file);
  options.max_body_bytes = o.max_body_mb << 20;
  options.limits.max_tokens_cap = std::min(o.max_tokens, o.ctx);
  options.request_timeout = std::chrono::seconds(o.timeout_s);
  options.log_content = o.log_content;
  options.parse_special_in_content = o.parse_special_in_content;
  options.http_threads = int(o.queue) + o.parallel + 8;
  const std::string& model_name = o.model_as_given;  // ORG/NAME names the model better than its snapshot hash
  options.model_alias = o.alias.empty() ? std::filesystem::path(model_name).filename().string() : o.alias;
  if (options.model_alias.empty()) options.model_alias = std::filesystem::path(model_name).parent_path().filename().string();
  if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1" && options.api_key.empty())
    std::fprintf(stderr, "csq serve: warning: listening on %s without --api-key-file; anyone who can reach it can use the model\n",
                 o.host.c_str());

  options.kb = load_kb_if_present(o.kb);
  options.detector = load_detector(o.rules);
  if (!options.kb) std::fprintf(stderr, "csq serve: no ATT&CK knowledge base at %s; /v1/kb is off (--kb DIR)\n", default_kb_dir());

  ShutdownSignals signals(std::chrono::seconds(o.shutdown_s));
  Engine engine = load_engine(o.model, o.template_file, o.loras, o.tokenizer, weight_memory(o.mmap));
  use_device(*engine.model, o.device);
  ThreadPool pool(o.threads);
  SchedulerConfig config;
  config.n_parallel = o.parallel;
  config.n_ctx = o.ctx;
  config.n_batch = o.batch;
  config.max_queue = o.queue;
  config.kv_type = cache_dtype(o.cache_type);
  Scheduler scheduler(*engine.model, engine.tokenizer, pool, config);
  server::HttpServer http(engine, scheduler, options);
  http.bind();
  signals.serving(&http);
  std::fprintf(stderr, "csq serve: %s on http://%s:%d/v1 (%d parallel, context %lld)\n", options.model_alias.c_str(),
               o.host.c_str(), http.port(), o.parallel, (long long)o.ctx);
  http.serve();
  signals.close();
  std::fprintf(stderr, "csq serve: stopped\n");
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<ServeOptions>();
  CLI::App* cmd = root.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  add_model_option(cmd, "--model,-m", opts->model, kModelHelp, &opts->model_as_given)->required();
  cmd->add_option("--template", opts->template_file, "Jinja chat template to use instead of the model's own");
  add_lora_option(cmd, opts->loras);
  add_mmap_option(cmd, opts->mmap);
  cmd->add_option("--tokenizer", opts->tokenizer,
                  "Model directory or .gguf whose tokenizer and chat template to use (e.g. for a `csq synth` GGUF)");
  cmd->add_option("--host", opts->host, "Address to listen on (loopback by default)")->capture_default_str();
  cmd->add_option("--port", opts->port, "Port (0: any free port)")->capture_default_str();
  cmd->add_option("--api-key-file", opts->api_key_file, "File holding the API key clients must send as a Bearer token");
  cmd->add_option("--parallel", opts->parallel, "Sequences decoded together")->capture_default_str();
  cmd->add_option("--ctx,-c", opts->ctx, "Context length per sequence")->capture_default_str();
  add_cache_type_option(cmd, opts->cache_type);
  cmd->add_option("--batch", opts->batch, "Most tokens per forward pass")->capture_default_str();
  cmd->add_option("--queue", opts->queue, "Requests that may wait for a slot before 429")->capture_default_str();
  cmd->add_option("--max-tokens-cap", opts->max_tokens, "Largest max_tokens a request may ask for")->capture_default_str();
  cmd->add_option("--max-body-mb", opts->max_body_mb, "Largest request body in MiB")->capture_default_str();
  cmd->add_option("--timeout", opts->timeout_s, "Seconds a request may take before it is cut off")->capture_default_str();
  cmd->add_option("--shutdown-timeout", opts->shutdown_s, "Seconds in-flight requests get on SIGTERM")->capture_default_str();
  cmd->add_option("--threads,-t", opts->threads, "Compute threads (default: all cores)");
  add_device_option(cmd, opts->device);
  cmd->add_option("--model-alias", opts->alias, "Model id reported to and required from clients");
  cmd->add_flag("--log-content", opts->log_content, "Log prompts and answers (off: evidence stays private)");
  add_kb_option(cmd, opts->kb);
  add_rule_options(cmd, opts->rules);  // POST /v1/detect and the console's "Run Sigma rules"
  add_content_option(cmd, opts->parse_special_in_content);
  cmd->callback([opts] { run_serve(*opts); });
});

}  // namespace
}  // namespace csq::app
