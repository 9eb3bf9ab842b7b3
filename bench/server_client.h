// What the server benchmarks share: a `csq serve` to talk to (spawned on a model, or given by
// URL) and one OpenAI request sent, checked and timed the way a client sees it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/serve_process.h"

namespace CLI {
class App;
}

namespace csq::bench {

// How to reach the server: spawn `csq serve` on `model` (with `serve_args`), or use `url`.
struct ServerTarget {
  std::string url;
  std::string model;
  std::string tokenizer;
  std::string csq = CSQ_BINARY;
  int threads = 2;
  std::vector<std::string> serve_args;
};

// --model, --tokenizer, --csq and --threads for a spawned server, and --url when `url` is true.
void add_target_options(CLI::App& app, ServerTarget& target, bool url);

// A running server; owns the process when it was spawned.
class Server {
 public:
  explicit Server(const ServerTarget& target);
  const std::string& url() const { return url_; }
  // The spawned server's peak resident memory in MiB; -1 when it was given by URL.
  double peak_rss_mib() const;
  // Stops a spawned server with SIGTERM; throws csq::Error when it does not exit cleanly.
  void stop();

 private:
  std::unique_ptr<server::ServeProcess> process_;
  std::string url_;
};

// One answered request as the client saw it. `error` is empty when the answer was complete
// and well formed (status 200, every choice finished, a streamed answer ended by [DONE]).
struct Reply {
  int status = 0;
  std::string error;
  // Streaming: when the first chunk carrying text or a finish_reason arrived (a first token
  // may decode to no text yet; with max_tokens 1 this is exactly the first token).
  double first_token_ms = -1;
  double total_ms = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t completion_tokens = 0;
  std::string text;  // choice 0
};

// POSTs `body` to `path` ("/v1/chat/completions" or "/v1/completions"), streaming when the
// body says so; a streamed request should ask for stream_options.include_usage to get token counts.
Reply send(httplib::Client& client, const std::string& path, const nlohmann::json& body);

std::unique_ptr<httplib::Client> connect(const std::string& url);

// The value below which `fraction` of the sorted `values` lie (nearest rank).
double percentile(std::vector<double> values, double fraction);

}  // namespace csq::bench
