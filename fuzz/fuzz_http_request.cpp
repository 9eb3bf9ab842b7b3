// Arbitrary bytes as what a client sends on a connection to `csq serve`: httplib's request
// parsing, the server's limits and every handler (generation included, on the tiny fixture
// model with a few tokens per answer), without a socket. Whatever arrives, the server answers
// with a well-formed HTTP response and never crashes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <utility>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/http_server.h"

namespace {

struct Served {
  explicit Served(csq::Engine e) : engine(std::move(e)) {}
  csq::Engine engine;
  csq::ThreadPool pool{1};
  std::unique_ptr<csq::Scheduler> scheduler;
  std::unique_ptr<csq::server::HttpServer> http;
};

Served* served = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string model = std::string(CSQ_FIXTURES_DIR) + "/hf/qwen3-tiny-vocab";
  if (!std::filesystem::exists(model)) {
    std::fprintf(stderr, "fuzz_http_request: skipped, the fixture model %s is absent\n", model.c_str());
    std::exit(0);
  }
  served = new Served(csq::load_engine(model));
  csq::SchedulerConfig config;
  config.n_ctx = 512;
  served->scheduler = std::make_unique<csq::Scheduler>(*served->engine.model, served->engine.tokenizer, served->pool, config);
  csq::server::ServerOptions options;
  options.model_alias = "tiny";
  // Answers stay short: the fuzzer explores requests, not generation (under the sanitizers one
  // token of this model costs about half a second, mostly the 151,936-row output matrix).
  options.limits.max_tokens_cap = 2;
  options.max_body_bytes = 1 << 20;
  options.log_requests = false;
  served->http = std::make_unique<csq::server::HttpServer>(served->engine, *served->scheduler, options);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string response = served->http->respond(std::string_view(reinterpret_cast<const char*>(data), size));
  // Every answer that was written starts with a status line.
  if (!response.empty() && response.rfind("HTTP/1.1 ", 0) != 0) std::abort();
  return 0;
}
