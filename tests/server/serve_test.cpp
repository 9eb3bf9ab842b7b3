// `csq serve` as a running program: shutdown on signals (during start-up and while answering)
// and the socket-free request path the HTTP fuzzer drives.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <zlib.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/http_server.h"
#include "server/serve_process.h"
#include "test_paths.h"

namespace csq::server {
namespace {

using namespace std::chrono_literals;

// True once the process blocks SIGTERM (csq serve does so before it loads the model), read
// from the SigBlk mask in /proc/PID/status.
bool blocks_sigterm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("SigBlk:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (SIGTERM - 1)) & 1;
  return false;
}

void expect_clean_exit(ServeProcess& server) {
  const std::optional<int> status = server.wait_exit(60s);  // a hang, not a slow exit, fails this
  ASSERT_TRUE(status) << "csq serve did not exit after SIGTERM; log:\n" << server.log();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status) << "; log:\n" << server.log();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << server.log();
}

TEST(ServeShutdown, SigtermWhileLoadingExits) {
  CSQ_REQUIRE_FIXTURES();
  ServeProcess server(test::csq_binary(), {"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1"});
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (!blocks_sigterm(server.pid()) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(blocks_sigterm(server.pid())) << server.log();
  server.signal(SIGTERM);
  expect_clean_exit(server);
  EXPECT_NE(server.log().find("SIGTERM received while starting"), std::string::npos) << server.log();
  EXPECT_EQ(server.log().find("/v1 ("), std::string::npos) << "it should not have started serving:\n" << server.log();
}

TEST(ServeShutdown, SigtermWhileStreamingEndsTheStreamAndExits) {
  CSQ_REQUIRE_FIXTURES();
  ServeProcess server(test::csq_binary(), {"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1", "--ctx",
                                           "4096", "--shutdown-timeout", "1"});
  httplib::Client client(server.wait_listening(60s));
  client.set_read_timeout(120, 0);

  // An answer long enough to be running when the signal comes; whether it is cut at the
  // deadline or finishes first, the stream must end properly.
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/completions";
  request.set_header("Content-Type", "application/json");
  request.body = R"({"prompt": "Incident timeline:", "max_tokens": 4000, "ignore_eos": true, "temperature": 0, "stream": true})";
  std::string body;
  std::atomic<bool> streaming{false};
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    body.append(data, size);
    streaming = true;
    return true;
  };
  int status = 0;
  std::thread reader([&] {
    auto res = client.send(request);
    status = res ? res->status : -1;
  });
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (!streaming && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  server.signal(SIGTERM);
  reader.join();
  ASSERT_TRUE(streaming) << server.log();
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find(R"("finish_reason":")"), std::string::npos) << body.substr(body.size() > 400 ? body.size() - 400 : 0);
  EXPECT_TRUE(body.ends_with("data: [DONE]\n\n")) << body.substr(body.size() > 400 ? body.size() - 400 : 0);
  expect_clean_exit(server);
  EXPECT_NE(server.log().find("SIGTERM received; finishing in-flight requests"), std::string::npos) << server.log();
  EXPECT_NE(server.log().find("csq serve: stopped"), std::string::npos) << server.log();
}

TEST(ServeLog, PromptsAndAnswersAreLoggedOnlyWithLogContent) {
  CSQ_REQUIRE_FIXTURES();
  for (const bool log_content : {false, true}) {
    std::vector<std::string> args = {"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1", "--ctx", "256"};
    if (log_content) args.push_back("--log-content");
    ServeProcess server(test::csq_binary(), args);
    httplib::Client client(server.wait_listening(60s));
    const auto res = client.Post("/v1/completions", R"({"prompt": "secret-evidence-4471", "max_tokens": 1})", "application/json");
    ASSERT_TRUE(res && res->status == 200) << server.log();
    // A path is logged as data: a decoded newline in it cannot start a line of its own.
    ASSERT_TRUE(client.Get("/x%0Acsq%20serve:%20forged%1B[2J"));
    const auto forged_body = client.Post("/v1/completions", "{\ncsq serve: forged\n}", "application/json");
    ASSERT_TRUE(forged_body && forged_body->status == 400);
    server.signal(SIGTERM);
    expect_clean_exit(server);
    EXPECT_NE(server.log().find("POST /v1/completions 200"), std::string::npos) << server.log();
    EXPECT_EQ(server.log().find("\ncsq serve: forged"), std::string::npos) << server.log();
    EXPECT_NE(server.log().find("GET /x\\x0acsq serve: forged\\x1b[2J 404"), std::string::npos) << server.log();
    EXPECT_EQ(server.log().find("secret-evidence-4471") != std::string::npos, log_content) << server.log();
  }
}

TEST(ServeTokenizer, ABorrowedTokenizerMustFitTheModel) {
  CSQ_REQUIRE_FIXTURES();
  const test::RunResult r = test::run_csq({"serve", "--model", test::fixture("gguf/qwen3-tiny-gqa-Q4_0.gguf"), "--tokenizer",
                                           test::fixture("hf/qwen3-tiny-vocab"), "--port", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("the tokenizer has 151669 tokens but the model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("has only 4096"), std::string::npos) << r.err;
}

// The socket-free path: raw request bytes in, raw response bytes out, through httplib's
// parsing and the real handlers.
class RawRequests : public ::testing::Test {
 protected:
  void SetUp() override {
    CSQ_REQUIRE_FIXTURES();
    engine_ = std::make_unique<Engine>(load_engine(test::fixture("hf/qwen3-tiny-vocab")));
    pool_ = std::make_unique<ThreadPool>(1);
    SchedulerConfig config;
    config.n_ctx = 256;
    scheduler_ = std::make_unique<Scheduler>(*engine_->model, engine_->tokenizer, *pool_, config);
    ServerOptions options;
    options.model_alias = "tiny";
    options.log_requests = false;
    options.max_body_bytes = kMaxBody;
    http_ = std::make_unique<HttpServer>(*engine_, *scheduler_, options);
  }
  std::string post(const std::string& path, const std::string& json) {
    return http_->respond("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(json.size()) + "\r\n\r\n" + json);
  }

  static constexpr size_t kMaxBody = 1 << 20;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<HttpServer> http_;
};

TEST_F(RawRequests, AnswersLikeAConnection) {
  EXPECT_TRUE(http_->respond("GET /health HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
  const std::string answer = post("/v1/completions", R"({"prompt": "Alert:", "max_tokens": 3, "temperature": 0})");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 OK\r\n")) << answer;
  EXPECT_NE(answer.find(R"("object":"text_completion")"), std::string::npos) << answer;
  const std::string bad = post("/v1/chat/completions", R"({"messages": [)");
  EXPECT_TRUE(bad.starts_with("HTTP/1.1 400 ")) << bad;
  EXPECT_NE(bad.find(R"("error":{"message")"), std::string::npos) << bad;
  EXPECT_TRUE(http_->respond("GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400 ")) << http_->respond("GARBAGE\r\n\r\n");
  // Two pipelined requests get two answers.
  const std::string two = http_->respond("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(two.find(R"("id":"tiny")"), std::string::npos) << two;
}

TEST_F(RawRequests, EchoIsStreamedToo) {
  // The prompt comes first, as in the answer that is not streamed.
  const std::string whole = post("/v1/completions", R"({"prompt": "Alert:", "max_tokens": 2, "temperature": 0, "echo": true})");
  EXPECT_NE(whole.find(R"("text":"Alert:)"), std::string::npos) << whole;
  const std::string stream =
      post("/v1/completions", R"({"prompt": "Alert:", "max_tokens": 2, "temperature": 0, "echo": true, "stream": true})");
  EXPECT_NE(stream.find(R"("choices":[{"index":0,"text":"Alert:","logprobs":null,"finish_reason":null}])"), std::string::npos)
      << stream;
  EXPECT_LT(stream.find(R"("text":"Alert:")"), stream.find(R"("finish_reason":"length")")) << stream;
}

TEST_F(RawRequests, UsageCountsEachPromptOnceStreamedOrNot) {
  // usage.prompt_tokens counts each prompt once however many choices it has (OpenAI's count),
  // cached_tokens is a part of it, and a stream's usage chunk says the same as the answer.
  const auto usage_of = [&](const std::string& body, bool stream) {
    std::string answer = post("/v1/completions", body.substr(0, body.size() - 1) + (stream ? R"(, "stream": true, "stream_options": {"include_usage": true}})" : "}"));
    const size_t at = answer.find(R"("usage":)");
    EXPECT_NE(at, std::string::npos) << answer;
    if (at == std::string::npos) return nlohmann::json();
    nlohmann::json usage;
    std::istringstream(answer.substr(at + 8)) >> usage;
    return usage;
  };
  const int64_t alert = int64_t(engine_->encode_raw("Alert:").size());
  const int64_t both = alert + int64_t(engine_->encode_raw("Another alert:").size());
  for (const bool stream : {false, true}) {
    nlohmann::json usage = usage_of(R"({"prompt": "Alert:", "max_tokens": 2, "n": 3})", stream);
    EXPECT_EQ(usage["prompt_tokens"], alert) << usage;
    EXPECT_EQ(usage["completion_tokens"], 6) << usage;
    EXPECT_LE(usage["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), alert) << usage;
    usage = usage_of(R"({"prompt": ["Alert:", "Another alert:"], "max_tokens": 2, "n": 2})", stream);
    EXPECT_EQ(usage["prompt_tokens"], both) << usage;
    EXPECT_EQ(usage["completion_tokens"], 8) << usage;
    EXPECT_EQ(usage["total_tokens"], both + 8) << usage;
    EXPECT_LE(usage["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), both) << usage;
  }
}

TEST_F(RawRequests, AWrongMethodIs405NamingTheRightOne) {
  const std::string get_chat = http_->respond("GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(get_chat.starts_with("HTTP/1.1 405 ")) << get_chat;
  EXPECT_NE(get_chat.find("\r\nAllow: POST\r\n"), std::string::npos) << get_chat;
  EXPECT_NE(get_chat.find("GET is not allowed on /v1/chat/completions (use POST)"), std::string::npos) << get_chat;
  const std::string post_models = post("/v1/models", "{}");
  EXPECT_TRUE(post_models.starts_with("HTTP/1.1 405 ")) << post_models;
  EXPECT_NE(post_models.find("\r\nAllow: GET\r\n"), std::string::npos) << post_models;
  EXPECT_TRUE(post("/v1/kb/techniques/T1059", "{}").starts_with("HTTP/1.1 405 "));
  EXPECT_TRUE(http_->respond("GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404 "));
  EXPECT_TRUE(http_->respond("GET /v1/kb/techniques/T1059!x HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404 "));
  EXPECT_TRUE(post("/v1/nothing", "{}").starts_with("HTTP/1.1 404 "));
}

TEST_F(RawRequests, AnAnswerCutOffByTheTimeoutIsNotReportedAsFinished) {
  // finish_reason "stop" tells a client the model ended its answer; one the server cut off
  // (--timeout, or the shutdown deadline) is incomplete, as one cut by max_tokens is.
  SchedulerConfig config;
  config.n_ctx = 4096;
  Scheduler scheduler(*engine_->model, engine_->tokenizer, *pool_, config);
  ServerOptions options;
  options.log_requests = false;
  options.request_timeout = std::chrono::seconds(1);
  HttpServer http(*engine_, scheduler, options);
  const std::string body = R"({"prompt": "Incident timeline:", "max_tokens": 4000, "ignore_eos": true})";
  const std::string answer = http.respond("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                                          std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(answer.find(R"("completion_tokens":4000)"), std::string::npos) << "not cut off: " << answer.substr(answer.size() - 300);
  EXPECT_NE(answer.find(R"("finish_reason":"length")"), std::string::npos) << answer.substr(answer.size() - 300);
}

TEST_F(RawRequests, HttpErrorsSayWhatWasWrong) {
  const auto message_of = [](const std::string& answer) {
    const size_t at = answer.find(R"({"error")");
    if (at == std::string::npos) return answer;
    nlohmann::json error;  // the first answer's; a connection may have answered again after it
    std::istringstream(answer.substr(at)) >> error;
    return error["error"]["message"].get<std::string>();
  };
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  const std::string unreadable = "the request body could not be read (a malformed chunked or compressed body, or one without Content-Length)";
  std::string answer = http_->respond(head + "Content-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
  EXPECT_EQ(message_of(answer), unreadable);
  answer = http_->respond(head + "Transfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
  EXPECT_EQ(message_of(answer), unreadable);
  answer = http_->respond("GET /v1/models?" + std::string(10000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 414 ")) << answer;
  EXPECT_EQ(message_of(answer), "the request line is too long");
  answer = http_->respond("GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
  EXPECT_EQ(message_of(answer), "malformed HTTP request (its request line or a header is invalid or too long)");
}

TEST_F(RawRequests, ABrowserPageFromAnotherOriginCannotUseTheServer) {
  // A page on any site may make the analyst's browser send a "simple" POST (text/plain) to
  // 127.0.0.1 without asking; it cannot read the answer, but the server would run it (with no
  // API key, the default) for the page's owner. Browsers name the page's origin in Origin.
  const std::string body = R"({"prompt": "Alert:", "max_tokens": 1})";
  const auto from = [&](const std::string& origin) {
    return http_->respond("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: " + origin +
                          "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body);
  };
  const uint64_t generated = scheduler_->stats().generated_tokens;
  for (const std::string origin : {"http://evil.example", "http://127.0.0.1:8081", "null", "http://127.0.0.1:8080.evil.example"}) {
    const std::string answer = from(origin);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 403 ")) << origin << ": " << answer;
    EXPECT_NE(answer.find("cross-origin request"), std::string::npos) << answer;
  }
  EXPECT_EQ(scheduler_->stats().generated_tokens, generated);
  // The console's own requests come from the server's origin; clients outside a browser send none.
  EXPECT_TRUE(from("http://127.0.0.1:8080").starts_with("HTTP/1.1 200 "));
  EXPECT_TRUE(post("/v1/completions", body).starts_with("HTTP/1.1 200 "));
}

TEST_F(RawRequests, TheServedModelCanBeRetrieved) {
  // GET /v1/models/{id}: what the OpenAI SDKs' models.retrieve() asks.
  const std::string model = http_->respond("GET /v1/models/tiny HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(model.starts_with("HTTP/1.1 200 ")) << model;
  EXPECT_NE(model.find(R"({"id":"tiny","object":"model")"), std::string::npos) << model;
  const std::string other = http_->respond("GET /v1/models/gpt-4 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(other.starts_with("HTTP/1.1 404 ")) << other;
  EXPECT_NE(other.find(R"("code":"model_not_found")"), std::string::npos) << other;
}

TEST_F(RawRequests, ErrorsNameTheFieldInParam) {
  // OpenAI's error object names the offending field in `param`; clients show it.
  const auto param_of = [&](const std::string& path, const std::string& body) {
    const std::string answer = post(path, body);
    const size_t at = answer.find(R"({"error")");
    return at == std::string::npos ? answer : nlohmann::json::parse(answer.substr(at))["error"]["param"].dump();
  };
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "word ";
  EXPECT_EQ(param_of("/v1/chat/completions", R"({"messages": [{"role": "user", "content": ")" + long_text + R"("}]})"), R"("messages")");
  EXPECT_EQ(param_of("/v1/completions", R"({"prompt": ")" + long_text + R"("})"), R"("prompt")");
  EXPECT_EQ(param_of("/v1/completions", R"({"prompt": "Alert:", "max_tokens": 255})"), R"("max_tokens")");
  EXPECT_EQ(param_of("/v1/completions", R"({"prompt": ""})"), R"("prompt")");
  EXPECT_EQ(param_of("/v1/triage", R"({"records": [{}], "recrods": 1})"), R"("recrods")");
  const std::string role = post("/v1/chat/completions", R"({"messages": [{"role": "function", "content": "x"}]})");
  EXPECT_NE(role.find("is not one of system, developer, user, assistant, tool"), std::string::npos) << role;
}

TEST_F(RawRequests, DeeplyNestedJsonIsRefused) {
  // Copying and rendering a request recurses over its JSON; nesting this deep would overflow
  // the stack of the handler thread.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const std::string answer = post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "tools": )" + deep + "}");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer.substr(0, 300);
  EXPECT_NE(answer.find("nests deeper than 64 levels"), std::string::npos) << answer.substr(0, 300);
}

TEST_F(RawRequests, TheBodyLimitHoldsForChunkedAndCompressedBodies) {
  // httplib checks only a Content-Length against the limit; a chunked body, or a small one
  // that inflates (Content-Encoding), was read whole: 194 KB of gzip took 5.4 GB of memory.
  const std::string body = R"({"prompt": ")" + std::string(kMaxBody, 'a') + R"(", "max_tokens": 1})";
  char size[32];
  std::snprintf(size, sizeof size, "%zx", body.size());
  const std::string chunked = http_->respond("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                             "Transfer-Encoding: chunked\r\n\r\n" + std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n");
  EXPECT_TRUE(chunked.starts_with("HTTP/1.1 413 ")) << chunked.substr(0, 400);
  EXPECT_NE(chunked.find("request body too large"), std::string::npos) << chunked.substr(0, 400);

  std::string deflated(compressBound(uLong(body.size())), '\0');
  uLongf deflated_size = uLongf(deflated.size());
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(deflated.data()), &deflated_size,
                      reinterpret_cast<const Bytef*>(body.data()), uLong(body.size()), 9), Z_OK);
  deflated.resize(deflated_size);
  ASSERT_LT(deflated.size(), kMaxBody / 100);
  const std::string inflated = http_->respond("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                              "Content-Encoding: deflate\r\nContent-Length: " + std::to_string(deflated.size()) +
                                              "\r\n\r\n" + deflated);
  EXPECT_TRUE(inflated.starts_with("HTTP/1.1 413 ")) << inflated.substr(0, 400);

  // A chunked body within the limit is still read.
  const std::string small = R"({"prompt": "Alert:", "max_tokens": 1})";
  std::snprintf(size, sizeof size, "%zx", small.size());
  const std::string ok = http_->respond("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                        "Transfer-Encoding: chunked\r\n\r\n" + std::string(size) + "\r\n" + small + "\r\n0\r\n\r\n");
  EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 ")) << ok.substr(0, 400);
  EXPECT_NE(post("/v1/completions", body).find("HTTP/1.1 413 "), std::string::npos);
}

TEST_F(RawRequests, RefusedPathsCannotWriteIntoTheMetrics) {
  // A request without the key is counted under its route, never under the path it sent: a
  // decoded path could otherwise add lines to the exposition, and random paths grow it forever.
  ServerOptions options;
  options.api_key = "0123456789abcdef0123";
  options.log_requests = false;
  HttpServer http(*engine_, *scheduler_, options);
  const std::string forged = "/x%22%7D%201%0Acsq_requests_total%7Bendpoint%3D%22%2Fv1%2Fcompletions%22%7D%2099999%0A%23";
  for (const std::string& path : {forged, std::string("/random-1"), std::string("/random-2"), std::string("/v1/models")})
    EXPECT_TRUE(http.respond("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 401 ")) << path;
  const std::string metrics = http.respond("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer 0123456789abcdef0123\r\n\r\n");
  // The scheme's name is case-insensitive (RFC 9110 11.1); the key is not.
  EXPECT_TRUE(http.respond("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: bearer 0123456789abcdef0123\r\n\r\n")
                  .starts_with("HTTP/1.1 200 "));
  EXPECT_TRUE(http.respond("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer 0123456789ABCDEF0123\r\n\r\n")
                  .starts_with("HTTP/1.1 401 "));
  EXPECT_EQ(metrics.find("99999"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("random"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("csq_requests_total{endpoint=\"other\",status=\"401\"} 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("csq_requests_total{endpoint=\"/v1/models\",status=\"401\"} 1\n"), std::string::npos) << metrics;
}

TEST_F(RawRequests, AClientThatHangsUpStopsItsGenerationAndIsCounted) {
  SchedulerConfig config;
  config.n_ctx = 4096;  // room for an answer that runs far longer than the test
  Scheduler scheduler(*engine_->model, engine_->tokenizer, *pool_, config);
  ServerOptions options;
  options.port = 0;
  options.log_requests = false;
  HttpServer http(*engine_, scheduler, options);
  http.bind();
  std::thread serving([&] { http.serve(); });
  httplib::Client client("127.0.0.1", http.port());
  for (const bool stream : {true, false}) {
    const uint64_t generated_before = scheduler.stats().generated_tokens;
    httplib::Request request;
    request.method = "POST";
    request.path = "/v1/completions";
    request.set_header("Content-Type", "application/json");
    request.body = std::string(R"({"prompt": "Incident timeline:", "max_tokens": 4000, "ignore_eos": true, "stream": )") +
                   (stream ? "true}" : "false}");
    // The first bytes (a stream's first chunk; a waiting answer's keep-alive space after a
    // second) end the request: the client hangs up.
    request.content_receiver = [](const char*, size_t, uint64_t, uint64_t) { return false; };
    client.send(request);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while ((scheduler.stats().active > 0 || scheduler.stats().queue_depth > 0) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    EXPECT_EQ(scheduler.stats().active, 0) << (stream ? "stream" : "waiting answer");
    EXPECT_LT(scheduler.stats().generated_tokens - generated_before, 2000u) << (stream ? "stream" : "waiting answer");
  }
  const std::string metrics = http.respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(metrics.find("csq_requests_total{endpoint=\"/v1/completions\",status=\"499\"} 2\n"), std::string::npos) << metrics;
  http.stop(0ms);
  serving.join();
}

}  // namespace
}  // namespace csq::server
