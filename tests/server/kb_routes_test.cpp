// /v1/kb/... in `csq serve`: the running program with --kb (and an API key), the answers equal to
// `csq kb --json`, errors in the OpenAI shape, and a server without a knowledge base.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/http_server.h"
#include "server/serve_process.h"
#include "test_paths.h"

namespace csq::server {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

std::string attack_dir() { return test::data_dir() + "/attack"; }

TEST(ServeKb, TechniquesMitigationsAndSearchAnswerAsCsqKbDoes) {
  CSQ_REQUIRE_FIXTURES();
  if (!std::filesystem::exists(attack_dir() + "/techniques.jsonl")) GTEST_SKIP() << "no ATT&CK data at " << attack_dir();
  const std::string key_file = test::temp_dir() + "/kb-routes-key.txt";
  std::ofstream(key_file) << "0123456789abcdef-kb\n";
  ServeProcess server(test::csq_binary(), {"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1", "--ctx", "256",
                                           "--kb", attack_dir(), "--api-key-file", key_file});
  httplib::Client client(server.wait_listening(60s));
  EXPECT_EQ(client.Get("/v1/kb/techniques/T1059.001")->status, 401);  // the key guards /v1/kb too
  client.set_bearer_token_auth("0123456789abcdef-kb");

  auto get = [&](const std::string& path, int expected_status) {
    auto res = client.Get(path);
    EXPECT_TRUE(res) << path;
    if (!res) return json();
    EXPECT_EQ(res->status, expected_status) << path << ": " << res->body;
    return json::parse(res->body);
  };
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--json", "--kb", attack_dir()});
    const test::RunResult r = test::run_csq(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  };
  EXPECT_EQ(get("/v1/kb/techniques/t1059.001", 200), cli({"kb", "technique", "T1059.001"}));
  EXPECT_EQ(get("/v1/kb/mitigations/M1038", 200), cli({"kb", "mitigation", "M1038"}));
  const json search = get("/v1/kb/search?q=powershell%20encoded%20command&limit=3", 200);
  EXPECT_EQ(search, cli({"kb", "search", "powershell encoded command", "--limit", "3"}));
  ASSERT_EQ(search["results"].size(), 3u);
  EXPECT_EQ(search["results"][0]["id"], "T1059.001");
  EXPECT_NE(search["notice"].get<std::string>().find("The MITRE Corporation"), std::string::npos);

  EXPECT_EQ(get("/v1/kb/techniques/T9999", 404)["error"]["message"], "technique 'T9999' is not in the knowledge base");
  EXPECT_EQ(get("/v1/kb/mitigations/M0001", 404)["error"]["code"], "not_found");
  EXPECT_EQ(get("/v1/kb/search?q=%20", 400)["error"]["message"], "search needs a query: ?q=TEXT");
  EXPECT_EQ(get("/v1/kb/search?q=x&limit=0", 400)["error"]["message"], "limit must be an integer from 1 to 100, not '0'");
  EXPECT_EQ(get("/v1/kb/search?q=x&limit=5x", 400)["error"]["message"], "limit must be an integer from 1 to 100, not '5x'");
  // Counted by route, not by id.
  const std::string metrics = client.Get("/metrics")->body;
  EXPECT_NE(metrics.find(R"(endpoint="/v1/kb/techniques/{id}",status="200")"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("T9999"), std::string::npos);
}

TEST(ServeKb, WithoutAKnowledgeBaseTheRoutesSaySo) {
  CSQ_REQUIRE_FIXTURES();
  Engine engine = load_engine(test::fixture("hf/qwen3-tiny-vocab"));
  ThreadPool pool(1);
  SchedulerConfig config;
  config.n_ctx = 64;
  Scheduler scheduler(*engine.model, engine.tokenizer, pool, config);
  ServerOptions options;
  options.log_requests = false;
  HttpServer http(engine, scheduler, options);
  const std::string answer = http.respond("GET /v1/kb/techniques/T1059 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 404", 0), 0u) << answer;
  EXPECT_NE(answer.find("no ATT&CK knowledge base is loaded (start csq serve with --kb DIR)"), std::string::npos) << answer;

  const std::string empty_dir = test::temp_dir() + "/kb-empty";
  std::filesystem::create_directories(empty_dir);
  // An explicit --kb that holds no data is an error naming the file.
  const test::RunResult bad = test::run_csq({"serve", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--port", "0", "--kb", empty_dir});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(empty_dir + "/tactics.jsonl: cannot read the ATT&CK file"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace csq::server
