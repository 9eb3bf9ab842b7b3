#include "server/http_server.h"

#include <fcntl.h>
#include <httplib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>

#include "base/error.h"
#include "runtime/constraint.h"
#include "server/routes.h"

namespace csq::server {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%016llx", prefix, (unsigned long long)rng());
  return buf;
}

// The jobs of one request (n choices, or several completion prompts) and their bookkeeping.
struct Submitted {
  std::vector<std::shared_ptr<Job>> jobs;
  std::vector<std::string> echo;  // completions with echo
  void cancel_all() {
    for (auto& j : jobs) j->cancel();
  }
  // As OpenAI counts: each prompt once however many choices it has (with what its first choice
  // found cached), the tokens of every choice. Jobs are in prompt order, `n` choices each.
  ojson usage(int32_t n) const {
    int64_t prompt_tokens = 0, completion_tokens = 0, cached = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      completion_tokens += int64_t(jobs[i]->result().tokens.size());
      if (i % size_t(n) != 0) continue;
      prompt_tokens += jobs[i]->result().prompt_tokens;
      cached += jobs[i]->cached_prompt_tokens();
    }
    return usage_json(prompt_tokens, completion_tokens, cached);
  }
};

// The metrics label of a request refused before routing: its route when it names one, else
// "other". Never the path itself, which the client chose (any bytes, once decoded) and which
// would add a series per path.
std::string route_label(const std::string& path) {
  static const char* const kRoutes[] = {"/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions",
                                        "/v1/detect", "/v1/triage", "/v1/respond", "/v1/kb/search"};
  for (const char* route : kRoutes)
    if (path == route) return route;
  if (path.starts_with("/v1/models/")) return "/v1/models/{id}";
  if (path.starts_with("/v1/kb/techniques/")) return "/v1/kb/techniques/{id}";
  if (path.starts_with("/v1/kb/mitigations/")) return "/v1/kb/mitigations/{id}";
  return "other";
}

// The method a path of ours answers to ("" for a path that is not ours): a request with another
// method is 405, not 404.
const char* route_method(const std::string& path) {
  static const char* const kPostRoutes[] = {"/v1/chat/completions", "/v1/completions", "/v1/detect", "/v1/triage",
                                            "/v1/respond"};
  for (const char* route : kPostRoutes)
    if (path == route) return "POST";
  return route_label(path) != "other" || path == "/health" || is_console_path(path) ? "GET" : "";
}

// Client text for the log (a decoded path, a request body): control bytes written as \xNN, so
// that a newline or a terminal escape in it cannot forge a log line of its own.
std::string loggable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    char escaped[8];
    std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(c));
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? std::string(escaped) : std::string(1, c);
  }
  return out;
}

// A connection held in memory: reads the given request bytes, collects the response bytes.
class MemoryStream : public httplib::Stream {
 public:
  explicit MemoryStream(std::string_view input) : input_(input) {}
  bool is_readable() const override { return read_ < input_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, input_.size() - read_);
    std::memcpy(ptr, input_.data() + read_, n);
    read_ += n;
    return ssize_t(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    output_.append(ptr, size);
    return ssize_t(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  socket_t socket() const override { return INVALID_SOCKET; }
  std::string& output() { return output_; }

 private:
  std::string_view input_;
  size_t read_ = 0;
  std::string output_;
};

}  // namespace

// httplib's server with the protected parts we need: a deeper accept queue, answering a
// request from a stream without a socket, and closing the listener even before listening
// started (httplib's own stop() does nothing then, so a stop that came early would be lost).
class HttpServer::Listener : public httplib::Server {
 public:
  // httplib 0.11 listens with a backlog of 5: a burst of clients connecting at once (64 in the
  // load test) overflows it and the kernel resets some of their connections. Linux lets
  // listen() be called again on a listening socket to enlarge the queue.
  void deepen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

  void close_listener() {
    const socket_t sock = svr_sock_.exchange(INVALID_SOCKET);
    if (sock == INVALID_SOCKET) return;
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }

  std::string respond(std::string_view raw_request) {
    // httplib runs content providers (all our generation answers) only while the listening
    // descriptor is valid, reading its absence as a shutdown; with no socket bound, a stand-in
    // descriptor takes its place for the call.
    const socket_t stand_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    socket_t none = INVALID_SOCKET;
    const bool placed = stand_in != INVALID_SOCKET && svr_sock_.compare_exchange_strong(none, stand_in);
    MemoryStream stream(raw_request);
    bool closed = false;
    while (!closed && stream.is_readable())
      if (!process_request(stream, false, closed, nullptr)) break;
    socket_t mine = stand_in;
    if (placed) svr_sock_.compare_exchange_strong(mine, INVALID_SOCKET);
    if (stand_in != INVALID_SOCKET) ::close(stand_in);
    return std::move(stream.output());
  }
};

bool api_key_matches(const std::string& presented, const std::string& expected) {
  // Touch every byte of both, whatever the lengths, so timing reveals nothing about the key.
  const size_t n = std::max(presented.size(), expected.size());
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < presented.size() ? presented[i] : 0;
    const unsigned char b = i < expected.size() ? expected[i] : 0;
    diff |= a ^ b;
  }
  return diff == 0;
}

void post_bounded(httplib::Server& svr, const std::string& pattern, size_t max_bytes, httplib::Server::Handler handler) {
  svr.Post(pattern, [max_bytes, handler](const httplib::Request& req, httplib::Response& res,
                                         const httplib::ContentReader& read) {
    if (req.is_multipart_form_data()) {
      send_error(res, error(415, "the request body must be JSON, not multipart/form-data"));
      return;
    }
    // The body goes where httplib would have put it, so the request log (--log-content) sees it:
    // the request is the server's own, non-const object, handed to handlers as const.
    std::string& body = const_cast<httplib::Request&>(req).body;
    bool too_large = false;
    const bool complete = read([&](const char* data, size_t size) {
      too_large = body.size() + size > max_bytes;
      if (!too_large) body.append(data, size);
      return !too_large;
    });
    if (too_large || res.status == 413) {  // 413: httplib refused a Content-Length over the limit
      res.set_header("Connection", "close");  // the rest of the body is left unread
      send_error(res, error(413, "request body too large (the limit is " + std::to_string(max_bytes >> 20) +
                                     " MiB, --max-body-mb)"));
      return;
    }
    if (!complete) {
      send_error(res, error(400, "the request body could not be read (a malformed chunked or compressed body, or one without Content-Length)"));
      return;
    }
    handler(req, res);
  });
}

HttpServer::HttpServer(const Engine& engine, Scheduler& scheduler, ServerOptions options)
    : engine_(engine),
      scheduler_(scheduler),
      options_(std::move(options)),
      vocabulary_(constraint_vocabulary(engine.tokenizer)),
      http_(std::make_unique<Listener>()) {
  const int threads = options_.http_threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  install_routes();
}

HttpServer::~HttpServer() = default;

void HttpServer::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ < 0) fail_runtime("cannot listen on " + options_.host + " (any port)");
  } else {
    if (!http_->bind_to_port(options_.host, options_.port))
      fail_runtime("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + " (in use, or not an address of this machine)");
    port_ = options_.port;
  }
  http_->deepen_backlog();
}

void HttpServer::serve() { http_->listen_after_bind(); }

void HttpServer::stop(std::chrono::milliseconds deadline) {
  draining_ = true;
  scheduler_.drain(deadline);
  http_->close_listener();  // the accept loop ends, or never starts
}

std::string HttpServer::respond(std::string_view raw_request) { return http_->respond(raw_request); }

ApiError HttpServer::model_not_found(const std::string& asked) const {
  return error(404, "model '" + asked + "' does not exist; this server serves '" + options_.model_alias + "'",
               "invalid_request_error", "model_not_found");
}

void HttpServer::install_kb_routes() {
  // Each answer carries the ATT&CK notice the data's licence asks for. Metrics count the route,
  // not the path, so ids do not multiply the series.
  auto lookup = [this](const char* route, auto&& answer) {
    return [this, route, answer](const httplib::Request& req, httplib::Response& res) {
      try {
        if (!options_.kb) throw error(404, "no ATT&CK knowledge base is loaded (start csq serve with --kb DIR)");
        ojson body = answer(*options_.kb, req);
        body["notice"] = options_.kb->notice();
        res.status = 200;
        res.set_content(dump(body), "application/json");
      } catch (const ApiError& e) {
        send_error(res, e);
      }
      metrics_.count_request(route, res.status);
    };
  };
  http_->Get(R"(/v1/kb/techniques/([A-Za-z0-9.]{1,16}))",
             lookup("/v1/kb/techniques/{id}", [](const kb::KnowledgeBase& kb, const httplib::Request& req) {
               const kb::Technique* t = kb.technique(req.matches[1].str());
               if (!t) throw error(404, "technique '" + req.matches[1].str() + "' is not in the knowledge base", "invalid_request_error", "not_found");
               return kb::technique_json(kb, *t);
             }));
  http_->Get(R"(/v1/kb/mitigations/([A-Za-z0-9]{1,16}))",
             lookup("/v1/kb/mitigations/{id}", [](const kb::KnowledgeBase& kb, const httplib::Request& req) {
               const kb::Mitigation* m = kb.mitigation(req.matches[1].str());
               if (!m) throw error(404, "mitigation '" + req.matches[1].str() + "' is not in the knowledge base", "invalid_request_error", "not_found");
               return kb::mitigation_json(kb, *m);
             }));
  http_->Get("/v1/kb/search", lookup("/v1/kb/search", [](const kb::KnowledgeBase& kb, const httplib::Request& req) {
               const std::string query = req.get_param_value("q");
               if (query.find_first_not_of(" \t\r\n") == std::string::npos) throw error(400, "search needs a query: ?q=TEXT");
               if (query.size() > 4096) throw error(400, "the query is longer than 4096 bytes");
               size_t limit = 10;
               if (req.has_param("limit")) {
                 const std::string text = req.get_param_value("limit");
                 char* end = nullptr;
                 const long n = std::strtol(text.c_str(), &end, 10);
                 if (text.empty() || *end || n < 1 || n > 100) throw error(400, "limit must be an integer from 1 to 100, not '" + text + "'");
                 limit = size_t(n);
               }
               return kb::search_json(kb, query, kb.search(query, limit));
             }));
}

void HttpServer::install_routes() {
  auto& svr = *http_;

  // Every response: no caching of evidence; errors from httplib itself (413, 404...) in OpenAI shape.
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (const std::string method = route_method(req.path); res.status == 404 && !method.empty() && method != req.method) {
      res.set_header("Allow", method);
      send_error(res, error(405, req.method + " is not allowed on " + req.path + " (use " + method + ")"));
      return;
    }
    const char* message = res.status == 413   ? "request body too large"
                          : res.status == 404 ? "not found"
                          : res.status == 414 ? "the request line is too long"
                          : res.status == 400 ? "malformed HTTP request (its request line or a header is invalid or too long)"
                                              : "request failed";
    send_error(res, error(res.status, message, res.status >= 500 ? "server_error" : "invalid_request_error"));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, error(500, "internal error", "server_error"));
  });
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    // A browser names the page that makes a request in Origin. A page of another site can make
    // the analyst's browser send a simple POST here unasked: it could not read the answer, but
    // the server would run it. Only the console's own origin (the address it was reached by)
    // passes; clients outside a browser send no Origin.
    if (req.has_header("Origin")) {
      const std::string origin = req.get_header_value("Origin"), host = req.get_header_value("Host");
      if (host.empty() || (origin != "http://" + host && origin != "https://" + host)) {
        send_error(res, error(403, "cross-origin request refused (Origin " + origin + " is not this server)",
                              "invalid_request_error", "cross_origin"));
        metrics_.count_request(route_label(req.path), 403);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (req.path == "/health" || (req.method == "GET" && is_console_path(req.path)))
      return httplib::Server::HandlerResponse::Unhandled;
    if (!options_.api_key.empty()) {
      const std::string auth = req.get_header_value("Authorization");
      // "Bearer KEY", the scheme's name in any case (RFC 9110 11.1).
      const bool bearer = auth.size() > 7 && strncasecmp(auth.c_str(), "Bearer ", 7) == 0;
      const std::string presented = bearer ? auth.substr(7) : "";
      if (!api_key_matches(presented, options_.api_key)) {
        send_error(res, error(401, "invalid or missing API key (Authorization: Bearer KEY)", "authentication_error",
                              "invalid_api_key"));
        metrics_.count_request(route_label(req.path), 401);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (!options_.log_requests) return;
    std::fprintf(stderr, "csq serve: %s %s %d\n", req.method.c_str(), loggable(req.path).c_str(), res.status);
    if (options_.log_content && !req.body.empty()) std::fprintf(stderr, "  request: %s\n", loggable(req.body).c_str());
  });

  // Readiness and load for a load balancer or an orchestrator: 503 while draining, so a
  // health-checking balancer takes the replica out before its listener closes.
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const SchedulerStats stats = scheduler_.stats();
    const SchedulerConfig& config = scheduler_.config();
    const ojson body = {{"status", draining_ ? "draining" : "ok"},
                        {"queue_depth", stats.queue_depth},
                        {"queue_capacity", config.max_queue},
                        {"busy_slots", stats.active},
                        {"slots", config.n_parallel}};
    res.status = draining_ ? 503 : 200;
    res.set_content(dump(body), "application/json");
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(scheduler_.stats()), "text/plain; version=0.0.4");
  });
  install_kb_routes();
  auto model_object = [this] {
    return ojson{{"id", options_.model_alias}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "csq"},
                 {"max_model_len", scheduler_.config().n_ctx}};
  };
  svr.Get("/v1/models", [this, model_object](const httplib::Request& req, httplib::Response& res) {
    res.set_content(dump({{"object", "list"}, {"data", ojson::array({model_object()})}}), "application/json");
    metrics_.count_request(req.path, 200);
  });
  svr.Get(R"(/v1/models/(.+))", [this, model_object](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1].str() == options_.model_alias) {
      res.status = 200;
      res.set_content(dump(model_object()), "application/json");
    } else {
      send_error(res, model_not_found(req.matches[1].str()));
    }
    metrics_.count_request("/v1/models/{id}", res.status);
  });

  auto generation = [this](bool chat) {
    return [this, chat](const httplib::Request& req, httplib::Response& res) {
      const std::string endpoint = req.path;
      const auto received = Clock::now();
      try {
        if (draining_) throw error(503, "the server is shutting down", "server_error");
        const ojson body = parse_body(req.body);
        ApiRequest api = chat ? parse_chat_request(body, options_.limits) : parse_completion_request(body, options_.limits);
        if (!api.model.empty() && api.model != options_.model_alias)
          throw model_not_found(api.model);

        // Prompts as token ids.
        std::vector<std::vector<int32_t>> prompts;
        std::vector<std::string> echo_texts;
        bool reasoning_open = false;
        if (chat) {
          ChatRenderOptions render;
          if (!api.tools.is_null()) render.tools = api.tools;
          render.extra = api.chat_template_kwargs;
          render.parse_special_in_content = options_.parse_special_in_content;
          ChatPrompt prompt;
          try {
            prompt = engine_.encode_messages(api.messages, render);
          } catch (const Error& e) {
            throw error(400, std::string("chat template: ") + e.what());
          }
          reasoning_open = prompt.reasoning_open;
          prompts.push_back(std::move(prompt.ids));
        } else {
          for (const std::string& text : api.prompts) {
            prompts.push_back(engine_.encode_raw(text));
            echo_texts.push_back(api.echo ? text : "");
          }
          for (const auto& ids : api.prompt_ids) {
            prompts.push_back(ids);
            echo_texts.push_back(api.echo ? engine_.tokenizer.decode(ids) : "");
          }
        }
        const int64_t n_ctx = scheduler_.config().n_ctx;
        const std::string prompt_field = chat ? "messages" : "prompt";
        for (const auto& p : prompts) {
          if (p.empty()) throw with_param(error(400, "the prompt is empty"), prompt_field);
          if (int64_t(p.size()) >= n_ctx)
            throw with_param(error(400, "the prompt is " + std::to_string(p.size()) + " tokens but the context holds " +
                                            std::to_string(n_ctx) + " (prompts are never truncated)",
                                   "invalid_request_error", "context_length_exceeded"),
                             prompt_field);
          if (api.max_tokens && int64_t(p.size()) + *api.max_tokens > n_ctx)
            throw with_param(error(400, "the prompt (" + std::to_string(p.size()) + " tokens) plus max_tokens (" +
                                            std::to_string(*api.max_tokens) + ") exceeds the context of " +
                                            std::to_string(n_ctx),
                                   "invalid_request_error", "context_length_exceeded"),
                             "max_tokens");
        }

        // The constraint is compiled once per request; each choice gets a fresh copy of it.
        std::unique_ptr<TokenConstraint> compiled;
        try {
          if (api.format == ResponseFormat::JsonObject) compiled = make_json_object_constraint(vocabulary_);
          if (api.format == ResponseFormat::JsonSchema) compiled = make_json_schema_constraint(vocabulary_, api.json_schema);
        } catch (const Error& e) {
          throw error(400, std::string("response_format: ") + e.what());
        }

        // One job per choice (chat: n choices of one prompt; completions: n choices of each prompt).
        Submitted submitted;
        std::random_device entropy;
        int32_t choice_index = 0;
        for (size_t p = 0; p < prompts.size(); ++p)
          for (int32_t k = 0; k < api.n; ++k, ++choice_index) {
            GenerationRequest g;
            g.prompt = prompts[p];
            g.sampling = api.sampling;
            g.sampling.seed = api.seeded ? api.sampling.seed + uint64_t(choice_index) : (uint64_t(entropy()) << 32 | entropy());
            g.max_tokens = api.max_tokens.value_or(std::min(options_.limits.max_tokens_cap, n_ctx - int64_t(g.prompt.size())));
            g.stop = api.stop;
            g.eos_ids = engine_.eos_ids;
            g.ignore_eos = api.ignore_eos;
            g.reasoning_open = reasoning_open;
            g.split_reasoning = chat;
            g.top_logprobs = api.logprobs ? api.top_logprobs : -1;
            std::unique_ptr<TokenConstraint> constraint = compiled ? compiled->fresh() : nullptr;
            std::shared_ptr<Job> job;
            try {
              job = scheduler_.submit(std::move(g), std::move(constraint), options_.request_timeout);
            } catch (const Error& e) {
              submitted.cancel_all();
              throw error(400, e.what());
            }
            if (!job) {
              submitted.cancel_all();
              throw queue_full(res);
            }
            submitted.jobs.push_back(job);
            submitted.echo.push_back(chat ? "" : echo_texts[p]);
          }

        const std::string id = random_id(chat ? "chatcmpl-" : "cmpl-");
        const int64_t created = unix_now();
        const std::string model = options_.model_alias;
        const bool log_content = options_.log_content;
        auto record = [this, endpoint, received](const Submitted& s) {
          double first = 0;
          for (const auto& j : s.jobs) first = std::max(first, j->result().prompt_ms / 1000.0);
          metrics_.count_request(endpoint, 200);
          metrics_.observe_latency(std::chrono::duration<double>(Clock::now() - received).count(), first);
        };
        auto hung_up = [this, endpoint] { metrics_.count_request(endpoint, kClientClosed); };

        if (!api.stream) {
          // The answer is awaited inside the response so that a client that hangs up is noticed
          // (a failed write of the leading whitespace, which JSON ignores) and its work cancelled.
          res.set_chunked_content_provider(
              "application/json",
              [this, submitted, api, id, created, model, chat, record, hung_up, log_content](size_t, httplib::DataSink& sink) mutable {
                // A space each second the answer is not ready, whether tokens are coming or not.
                for (auto& job : submitted.jobs)
                  while (!job->wait_for(std::chrono::milliseconds(1000)))
                    if (!sink.write(" ", 1)) {
                      submitted.cancel_all();
                      hung_up();
                      return false;
                    }
                std::vector<Choice> choices;
                for (size_t i = 0; i < submitted.jobs.size(); ++i) choices.push_back({submitted.jobs[i]->result(), submitted.echo[i]});
                const ojson usage = submitted.usage(api.n);
                const ojson out = chat ? chat_response(id, created, model, choices, engine_.tokenizer, api.logprobs, usage)
                                       : completion_response(id, created, model, choices, engine_.tokenizer, api.logprobs, usage);
                if (log_content) std::fprintf(stderr, "  response: %s\n", dump(out).c_str());
                const std::string text = dump(out);
                sink.write(text.data(), text.size());
                sink.done();
                record(submitted);
                return true;
              });
          return;
        }

        res.set_header("X-Accel-Buffering", "no");
        res.set_chunked_content_provider(
            "text/event-stream",
            [submitted, api, id, created, model, chat, record, hung_up](size_t, httplib::DataSink& sink) mutable {
              auto send = [&](const ojson& event) {
                const std::string text = sse(event);
                return sink.write(text.data(), text.size());
              };
              std::vector<bool> done(submitted.jobs.size(), false), started(submitted.jobs.size(), false);
              size_t remaining = submitted.jobs.size();
              while (remaining > 0) {
                bool progressed = false;
                for (size_t i = 0; i < submitted.jobs.size(); ++i) {
                  if (done[i]) continue;
                  auto event = submitted.jobs[i]->next_event(std::chrono::milliseconds(submitted.jobs.size() > 1 ? 5 : 1000));
                  if (!event) continue;
                  progressed = true;
                  bool ok = true;
                  const int32_t index = int32_t(i);
                  if (chat && !started[i]) {
                    const std::string empty;
                    ok = send(chat_chunk(id, created, model, index, &empty, nullptr, nullptr, true));
                    started[i] = true;
                  }
                  if (!chat && !started[i]) {  // echo: the prompt first
                    if (!submitted.echo[i].empty()) ok = send(completion_chunk(id, created, model, index, submitted.echo[i], nullptr));
                    started[i] = true;
                  }
                  if (ok && (!event->content.empty() || !event->reasoning.empty())) {
                    if (chat)
                      ok = send(chat_chunk(id, created, model, index, event->content.empty() ? nullptr : &event->content,
                                           event->reasoning.empty() ? nullptr : &event->reasoning, nullptr, false));
                    else
                      ok = send(completion_chunk(id, created, model, index, event->content, nullptr));
                  }
                  if (ok && event->final) {
                    const char* reason = api_finish_reason(submitted.jobs[i]->result());
                    ok = chat ? send(chat_chunk(id, created, model, index, nullptr, nullptr, reason, false))
                              : send(completion_chunk(id, created, model, index, "", reason));
                    done[i] = true;
                    --remaining;
                  }
                  if (!ok) {  // the client went away: stop generating for it
                    submitted.cancel_all();
                    hung_up();
                    return false;
                  }
                }
                if (!progressed && !sink.is_writable()) {
                  submitted.cancel_all();
                  hung_up();
                  return false;
                }
              }
              if (api.include_usage)
                send({{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                      {"model", model}, {"choices", ojson::array()}, {"usage", submitted.usage(api.n)}});
              const std::string done_line = "data: [DONE]\n\n";
              sink.write(done_line.data(), done_line.size());
              sink.done();
              record(submitted);
              return true;
            });
      } catch (const ApiError& e) {
        send_error(res, e);
        metrics_.count_request(endpoint, e.status);
      } catch (const Error& e) {
        send_error(res, error(400, e.what()));
        metrics_.count_request(endpoint, 400);
      }
    };
  };
  post_bounded(svr, "/v1/chat/completions", options_.max_body_bytes, generation(true));
  post_bounded(svr, "/v1/completions", options_.max_body_bytes, generation(false));
  install_task_routes(svr);
  install_console_routes(svr);
}

}  // namespace csq::server
