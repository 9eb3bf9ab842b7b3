// The endpoint backend against a stub OpenAI server on a loopback port: what it sends, how it
// retries, how it reports errors.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "tasks/chat_backend.h"

namespace csq::tasks {
namespace {

class StubServer {
 public:
  // `reply(attempt, body)` answers the n-th POST (0-based): status and body.
  using Reply = std::function<std::pair<int, std::string>(int attempt, const nlohmann::json& body)>;

  explicit StubServer(Reply reply) : reply_(std::move(reply)) {
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object": "list", "data": [{"id": "stub-model"}]})", "application/json");
    });
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const auto body = nlohmann::json::parse(req.body);
      std::lock_guard<std::mutex> lock(mutex_);
      bodies.push_back(body);
      auth.push_back(req.get_header_value("Authorization"));
      auto [status, text] = reply_(posts_++, body);
      res.status = status;
      if (status == 429) res.set_header("Retry-After", "0");
      res.set_content(text, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound and listening already: requests made before the accept loop starts wait in the backlog.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~StubServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int posts() const { return posts_; }

  std::vector<nlohmann::json> bodies;
  std::vector<std::string> auth;

 private:
  Reply reply_;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mutex_;
  std::atomic<int> posts_{0};
  int port_ = 0;
};

const char* kCompletion = R"({"choices": [{"index": 0, "finish_reason": "stop",
  "message": {"role": "assistant", "content": "CWE-79", "reasoning_content": "xss"}}],
  "usage": {"prompt_tokens": 12, "completion_tokens": 5}})";

ChatRequest request() {
  ChatRequest r;
  r.label = "cti-rcm item 3 trial 0";
  r.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "map it"}}});
  r.sampling.temperature = 0.3f;
  r.sampling.top_p = 1.0f;
  r.sampling.seed = 44;
  r.max_tokens = 512;
  return r;
}

EndpointConfig config(const std::string& url) {
  EndpointConfig c;
  c.url = url;
  c.first_backoff = std::chrono::milliseconds(5);
  c.retries = 3;
  return c;
}

TEST(EndpointBackend, SendsTheProtocolSettingsAndReadsTheAnswer) {
  StubServer stub([](int, const nlohmann::json&) { return std::pair{200, std::string(kCompletion)}; });
  EndpointConfig c = config(stub.url());
  c.api_key = "sk-test-0123456789";
  auto backend = make_endpoint_backend(c);
  EXPECT_EQ(backend->identity()["api_model"], "stub-model");  // from GET /v1/models
  const ChatResult r = backend->complete(request());
  EXPECT_EQ(r.content, "CWE-79");
  EXPECT_EQ(r.reasoning, "xss");
  EXPECT_EQ(r.text(), "<think>xss</think>CWE-79");
  EXPECT_EQ(r.finish, "stop");
  EXPECT_EQ(r.prompt_tokens, 12);
  EXPECT_EQ(r.completion_tokens, 5);
  ASSERT_EQ(stub.bodies.size(), 1u);
  const auto& body = stub.bodies[0];
  EXPECT_EQ(body["model"], "stub-model");
  EXPECT_EQ(body["temperature"].dump(), "0.3");
  EXPECT_EQ(body["top_p"].dump(), "1.0");
  EXPECT_EQ(body["max_tokens"], 512);
  EXPECT_EQ(body["seed"], 44);
  EXPECT_EQ(body["stream"], false);
  EXPECT_EQ(body["messages"][0]["content"], "map it");
  EXPECT_EQ(stub.auth[0], "Bearer sk-test-0123456789");
}

TEST(EndpointBackend, RetriesRateLimitsAndServerErrors) {
  StubServer stub([](int attempt, const nlohmann::json&) {
    if (attempt == 0) return std::pair{429, std::string(R"({"error": {"message": "busy"}})")};
    if (attempt == 1) return std::pair{503, std::string(R"({"error": {"message": "loading"}})")};
    return std::pair{200, std::string(kCompletion)};
  });
  EndpointConfig c = config(stub.url() + "/chat/completions");  // the full path works too
  c.api_model = "stub-model";
  auto backend = make_endpoint_backend(c);
  EXPECT_EQ(backend->complete(request()).content, "CWE-79");
  EXPECT_EQ(stub.posts(), 3);
}

TEST(EndpointBackend, ErrorsNameTheServerTheRequestAndTheReason) {
  StubServer stub([](int, const nlohmann::json&) {
    return std::pair{400, std::string(R"({"error": {"message": "the prompt is 9000 tokens but the context holds 4096"}})")};
  });
  EndpointConfig c = config(stub.url());
  c.api_model = "stub-model";
  auto backend = make_endpoint_backend(c);
  try {
    backend->complete(request());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Runtime);
    EXPECT_EQ(std::string(e.what()), stub.url() + ": cti-rcm item 3 trial 0: HTTP 400: the prompt is 9000 tokens but the "
                                                  "context holds 4096");
  }
  EXPECT_EQ(stub.posts(), 1);  // a 400 is not retried

  StubServer down([](int, const nlohmann::json&) { return std::pair{500, std::string("oops")}; });
  c = config(down.url());
  c.api_model = std::string("m");  // not = "m": GCC 12 gives a false -Wrestrict (its bug 105329)
  c.retries = 2;
  try {
    make_endpoint_backend(c)->complete(request());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 500: oops (gave up after 3 attempts)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(down.posts(), 3);

  try {
    make_endpoint_backend(config("ftp://example.com"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Usage);
  }
}

}  // namespace
}  // namespace csq::tasks
