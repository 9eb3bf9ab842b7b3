// The OpenAI-compatible HTTP server: /v1/models, /v1/chat/completions, /v1/completions,
// /health and /metrics, in front of the batch scheduler, and the ATT&CK knowledge base under
// /v1/kb/ (techniques/{id}, mitigations/{id}, search?q=) when one is loaded; the analyst's
// endpoints POST /v1/detect, /v1/triage and /v1/respond (docs/server.md), and the console at /
// and /ui (web/, built into the binary). Safe by default: loopback only,
// optional API key compared in constant time, bounded bodies, prompts, outputs and queue,
// per-request timeout, cancellation when a client goes away, no content in logs.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "detect/engine.h"
#include "kb/kb.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/metrics.h"
#include "server/openai.h"

namespace httplib {
class Server;
}

namespace csq::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;            // 0: any free port (see HttpServer::port())
  std::string api_key;        // empty: no authentication
  std::string model_alias;    // the model id clients use
  size_t max_body_bytes = 4u << 20;
  ApiLimits limits;
  std::chrono::seconds request_timeout{600};
  bool log_content = false;   // prompts and answers appear in the log only when asked
  bool parse_special_in_content = false;  // message content may become special tokens (HF parity)
  bool log_requests = true;   // a line per request (method, path, status) on stderr
  int http_threads = 72;
  std::shared_ptr<const kb::KnowledgeBase> kb;  // null: /v1/kb/... answers 404 saying so
  std::shared_ptr<const detect::Detector> detector;  // null: POST /v1/detect answers 404 saying so
};

class HttpServer {
 public:
  HttpServer(const Engine& engine, Scheduler& scheduler, ServerOptions options);
  ~HttpServer();

  // Binds the listening socket; throws csq::Error when the address cannot be used.
  void bind();
  int port() const { return port_; }
  // Serves until stop(); returns afterwards, at once if stop() came first.
  void serve();
  // Graceful shutdown: new requests get 503, running ones may finish within `deadline`, then
  // the rest is cancelled and the listener closes. May be called before serve() starts.
  void stop(std::chrono::milliseconds deadline);
  // Answers raw HTTP request bytes (several requests if pipelined) with the raw response
  // bytes, as if a client had sent them over a connection: the same parsing, limits and
  // handlers, no socket. For the HTTP fuzzer.
  std::string respond(std::string_view raw_request);

 private:
  class Listener;
  void install_routes();
  void install_kb_routes();
  ApiError model_not_found(const std::string& asked) const;  // 404 for a model id this server does not serve
  void install_task_routes(httplib::Server& svr);     // task_routes.cpp
  void install_console_routes(httplib::Server& svr);  // console_routes.cpp

  const Engine& engine_;
  Scheduler& scheduler_;
  ServerOptions options_;
  ConstraintVocabularyPtr vocabulary_;  // built once: every json_object/json_schema request shares it
  Metrics metrics_;
  std::unique_ptr<Listener> http_;
  std::atomic<bool> draining_{false};
  int port_ = 0;
};

// Constant-time comparison of a presented API key with the configured one.
bool api_key_matches(const std::string& presented, const std::string& expected);

}  // namespace csq::server
