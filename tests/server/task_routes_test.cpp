// POST /v1/detect, /v1/triage, /v1/respond and the console's files, on an in-process server
// (the tiny fixture model, the ATT&CK data, a Sigma rule): each endpoint answers what the
// command answers for the same input (csq detect --json, csq triage, csq respond), and refuses
// bad requests with the OpenAI error shape.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "detect/pipeline.h"
#include "detect/rule.h"
#include "kb/kb.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/http_server.h"
#include "server/web_assets.h"
#include "test_paths.h"

namespace csq::server {
namespace {

using json = nlohmann::json;

std::string attack_dir() { return test::data_dir() + "/attack"; }

const char* kRule = R"(title: Encoded PowerShell
id: t-encoded-ps
author: Jane Doe
status: test
level: high
tags: [attack.execution, attack.t1059.001]
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\powershell.exe'
        CommandLine|contains: ' -enc '
    condition: sel
)";

const char* kEvents =
    R"({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "UtcTime": "2024-05-01 10:00:00.000", "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "CommandLine": "powershell.exe -nop -enc SQBFAFgA", "User": "CORP\\bob"})"
    "\n"
    R"({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "UtcTime": "2024-05-01 10:00:05.000", "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all"})"
    "\n"
    "not json\n";

std::string write(const std::string& name, const std::string& text) {
  const std::string path = test::temp_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

struct Answer {
  int status = 0;
  std::string head, body;
  std::string header(const std::string& name) const {
    const std::string key = "\r\n" + name + ": ";
    const size_t at = head.find(key);
    if (at == std::string::npos) return "";
    const size_t begin = at + key.size();
    return head.substr(begin, head.find("\r\n", begin) - begin);
  }
  json json_body() const { return json::parse(body); }
};

// The body of a chunked response (a task answer that took longer than a second): its chunks joined.
std::string dechunk(const std::string& chunked) {
  std::string body;
  size_t at = 0;
  while (at < chunked.size()) {
    const size_t line_end = chunked.find("\r\n", at);
    const size_t size = std::stoul(chunked.substr(at, line_end - at), nullptr, 16);
    if (size == 0) break;
    body += chunked.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  return body;
}

Answer split(const std::string& raw) {
  Answer a;
  const size_t end = raw.find("\r\n\r\n");
  a.head = raw.substr(0, end);
  a.body = end == std::string::npos ? "" : raw.substr(end + 4);
  a.status = std::stoi(raw.substr(9, 3));
  if (a.header("Transfer-Encoding") == "chunked") a.body = dechunk(a.body);
  return a;
}

class TaskRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    CSQ_REQUIRE_FIXTURES();
    if (!std::filesystem::exists(attack_dir() + "/techniques.jsonl")) GTEST_SKIP() << "no ATT&CK data at " << attack_dir();
    engine_ = std::make_unique<Engine>(load_engine(test::fixture("hf/qwen3-tiny-vocab")));
    pool_ = std::make_unique<ThreadPool>(2);
    SchedulerConfig config;
    config.n_ctx = 8192;
    config.n_parallel = 2;
    scheduler_ = std::make_unique<Scheduler>(*engine_->model, engine_->tokenizer, *pool_, config);
    rules_ = write("task_routes_rule.yml", kRule);
    detect::RuleSet set;
    detect::load_rules_path(rules_, {}, set);
    options_.model_alias = "tiny";
    options_.log_requests = false;
    options_.kb = kb::KnowledgeBase::load(attack_dir());
    options_.detector =
        std::make_shared<const detect::Detector>(set, detect::Pipeline::windows_default(), detect::DetectorOptions{});
    http_ = std::make_unique<HttpServer>(*engine_, *scheduler_, options_);
  }

  Answer request(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& extra_headers = "") {
    return split(http_->respond(method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + extra_headers +
                                "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\n\r\n" + body));
  }
  Answer post(const std::string& path, const json& body) { return request("POST", path, body.dump()); }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Scheduler> scheduler_;
  std::string rules_;
  ServerOptions options_;
  std::unique_ptr<HttpServer> http_;
};

TEST_F(TaskRoutes, DetectAnswersAsCsqDetectDoes) {
  const Answer a = request("POST", "/v1/detect", kEvents);
  ASSERT_EQ(a.status, 200) << a.body;
  const json out = a.json_body();
  EXPECT_EQ(out["events"], 2);
  ASSERT_EQ(out["problems"].size(), 1u);
  EXPECT_EQ(out["problems"][0]["record"], 3);

  const test::RunResult cli =
      test::run_csq({"detect", "--rules", rules_, "--events", write("task_routes_events.jsonl", kEvents), "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  json expected = json::parse(cli.out.substr(0, cli.out.find('\n')));
  expected["source"] = "request";
  ASSERT_EQ(out["alerts"].size(), 1u);
  EXPECT_EQ(out["alerts"][0], expected);
  EXPECT_EQ(out["alerts"][0]["author"], "Jane Doe");  // the console shows every rule's author
}

TEST_F(TaskRoutes, TriageAnswersAsCsqTriageDoes) {
  const json records = {{{"id", "a-1"}, {"title", "Encoded PowerShell"}, {"CommandLine", "powershell -enc SQBFAFgA"}},
                        {{"id", "a-2"}, {"title", "Whoami"}, {"CommandLine", "whoami /all"}}};
  const Answer a = post("/v1/triage", {{"records", records}, {"max_tokens", 40}});
  ASSERT_EQ(a.status, 200) << a.body;
  const json lines = a.json_body()["data"];
  ASSERT_EQ(lines.size(), 2u);

  std::string input;
  for (const auto& r : records) input += r.dump() + "\n";
  const test::RunResult cli = test::run_csq({"triage", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--max-tokens", "40",
                                             "--threads", "2", "-q", write("task_routes_alerts.jsonl", input)});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  std::istringstream expected(cli.out);
  std::string line;
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(std::getline(expected, line));
    EXPECT_EQ(lines[i], json::parse(line)) << i;
  }
  EXPECT_EQ(lines[0]["id"], "a-1");
  EXPECT_EQ(lines[1]["id"], "a-2");
}

TEST_F(TaskRoutes, RespondAnswersAsCsqRespondDoes) {
  const json alert = {{"title", "Encoded PowerShell"}, {"level", "high"}, {"tags", {"attack.t1059.001", "attack.t9999"}},
                      {"CommandLine", "powershell -enc SQBFAFgA"}};
  const Answer a = post("/v1/respond", {{"alert", alert}, {"seed", 7}, {"max_tokens", 4096}});
  ASSERT_EQ(a.status, 200) << a.body;
  json plan = a.json_body();
  const test::RunResult cli = test::run_csq({"respond", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--kb", attack_dir(),
                                             "--alert", write("task_routes_alert.json", alert.dump()), "--seed", "7",
                                             "--max-tokens", "4096", "--threads", "2"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  json expected = json::parse(cli.out);
  // Only where the input came from differs.
  EXPECT_EQ(plan["input"]["where"], "alert");
  plan["input"].erase("where");
  expected["input"].erase("where");
  EXPECT_EQ(plan, expected);
  EXPECT_EQ(plan["techniques"][0]["id"], "T1059.001");
  bool unknown_reported = false;
  for (const auto& r : plan["rejected"]) unknown_reported |= r["id"] == "T9999";
  EXPECT_TRUE(unknown_reported) << plan.dump(2);
}

TEST_F(TaskRoutes, AFullQueueIsBusyNotAServerError) {
  // A scheduler with no room at all: every task request finds its queue full.
  http_.reset();
  SchedulerConfig config;
  config.n_ctx = 8192;
  config.n_parallel = 1;
  config.max_queue = 0;
  scheduler_ = std::make_unique<Scheduler>(*engine_->model, engine_->tokenizer, *pool_, config);
  http_ = std::make_unique<HttpServer>(*engine_, *scheduler_, options_);
  const json record = {{"id", "a-1"}, {"CommandLine", "whoami /all"}};
  for (const Answer& a : {post("/v1/triage", {{"records", json::array({record})}}),
                          post("/v1/respond", {{"alert", record}, {"max_tokens", 8}}),
                          post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}})}) {
    EXPECT_EQ(a.status, 429) << a.body;
    EXPECT_EQ(a.header("Retry-After"), "1");
    EXPECT_EQ(a.json_body()["error"]["type"], "rate_limit_error") << a.body;
  }
}

TEST_F(TaskRoutes, AClientThatHangsUpStopsItsGeneration) {
  // 64 records of up to 3000 tokens: a minute or more of generation for a client that stays.
  options_.port = 0;
  http_ = std::make_unique<HttpServer>(*engine_, *scheduler_, options_);
  http_->bind();
  std::thread serving([&] { http_->serve(); });
  json records = json::array();
  for (int i = 0; i < 64; ++i) records.push_back({{"id", "a-" + std::to_string(i)}, {"CommandLine", "whoami /all"}});
  const std::string body = json{{"records", records}, {"max_tokens", 3000}}.dump();
  const std::string raw = "POST /v1/triage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;

  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(uint16_t(http_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::send(client, raw.data(), raw.size(), 0), ssize_t(raw.size()));
  // The answer is committed after a second and kept alive with spaces while the records run.
  std::string received;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  timeval slice{0, 200000};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
  while (std::chrono::steady_clock::now() < until) {
    char buffer[4096];
    const ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
    if (n > 0) received.append(buffer, size_t(n));
  }
  EXPECT_EQ(received.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << received;
  EXPECT_NE(received.find("Transfer-Encoding: chunked"), std::string::npos) << received;
  EXPECT_GT(scheduler_->stats().active, 0);
  ::close(client);  // the client hangs up

  // Its generation stops: the slots and the queue empty long before 64 answers could be written.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  SchedulerStats stats = scheduler_->stats();
  while ((stats.active > 0 || stats.queue_depth > 0) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stats = scheduler_->stats();
  }
  EXPECT_EQ(stats.active, 0);
  EXPECT_EQ(stats.queue_depth, 0);
  EXPECT_LT(stats.completed, 64u);
  // The request is counted as abandoned by its client (the failed keep-alive write cancelled it).
  const std::string metrics = request("GET", "/metrics").body;
  EXPECT_NE(metrics.find("csq_requests_total{endpoint=\"/v1/triage\",status=\"499\"} 1"), std::string::npos) << metrics;
  http_->stop(std::chrono::milliseconds(0));
  serving.join();
}

TEST_F(TaskRoutes, BadRequestsAreRefusedNamingWhatIsWrong) {
  auto message = [](const Answer& a) { return a.json_body()["error"]["message"].get<std::string>(); };
  Answer a = post("/v1/triage", {{"record", json::array({json::object()})}});
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(message(a).find("unknown field 'record' (expected records, context,"), std::string::npos) << a.body;
  a = post("/v1/triage", {{"records", json::array()}});
  EXPECT_EQ(message(a), "'records' must be an array of 1 to 64 alerts or events (JSON objects)");
  a = post("/v1/triage", {{"records", json::array({1})}});
  EXPECT_EQ(message(a), "records[0] must be a JSON object (an alert or an event)");
  a = post("/v1/triage", {{"records", json::array({json::object()})}, {"temperature", 9}});
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.json_body()["error"]["param"], "temperature");
  a = post("/v1/triage", {{"records", json::array({json::object()})}, {"model", "other"}});
  EXPECT_EQ(a.status, 404);
  a = post("/v1/respond", {{"alert", json::object()}, {"text", "x"}});
  EXPECT_EQ(message(a), "give exactly one of 'alert' (a JSON object: an alert, an event or a triage line) or 'text'");
  a = post("/v1/respond", {{"text", "x"}, {"retrieve", 11}});
  EXPECT_EQ(message(a), "'retrieve' must be an integer from 0 to 10");
  // A prompt that cannot fit with its max_tokens is the client's to fix, and says so.
  a = post("/v1/respond", {{"text", "lsass memory dumped"}, {"max_tokens", 4096}, {"retrieve", 10}});
  if (a.status != 200) {
    EXPECT_EQ(a.status, 400) << a.body;
  }

  // Without rules or a knowledge base the endpoints say what the server lacks.
  options_.detector = nullptr;
  options_.kb = nullptr;
  http_ = std::make_unique<HttpServer>(*engine_, *scheduler_, options_);
  a = request("POST", "/v1/detect", kEvents);
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(message(a), "this server has no detection rules (start csq serve with --rules DIR [--pipeline FILE])");
  EXPECT_EQ(a.json_body()["error"]["code"], "no_rules");
  a = post("/v1/respond", {{"text", "x"}});
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(message(a), "no ATT&CK knowledge base is loaded (start csq serve with --kb DIR)");
}

TEST_F(TaskRoutes, TheConsoleIsServedFromTheBinaryUnderAStrictPolicy) {
  options_.api_key = "0123456789abcdef-console";
  http_ = std::make_unique<HttpServer>(*engine_, *scheduler_, options_);
  // The page itself needs no key (it holds no data); the API does.
  const Answer page = request("GET", "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  const std::string csp = page.header("Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(page.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(page.header("Cache-Control"), "no-cache");
  EXPECT_EQ(request("GET", "/ui").body, page.body);
  EXPECT_NE(page.body.find("<script src=\"/ui/console.js\" defer></script>"), std::string::npos);

  for (const WebAsset& asset : web_assets()) {
    const Answer a = request("GET", "/ui/" + std::string(asset.name));
    ASSERT_EQ(a.status, 200) << asset.name;
    EXPECT_EQ(a.body, std::string(asset.data, asset.size)) << asset.name;
    const std::string etag = a.header("ETag");
    ASSERT_EQ(etag.size(), 34u) << asset.name;
    const Answer again = request("GET", "/ui/" + std::string(asset.name), "", "If-None-Match: " + etag + "\r\n");
    EXPECT_EQ(again.status, 304) << asset.name;
    EXPECT_TRUE(again.body.empty());
  }
  // The built-in files are web/'s files as they are now.
  const std::string source = std::string(CSQ_SOURCE_DIR) + "/web/console.js";
  std::ifstream in(source, std::ios::binary);
  const std::string on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(request("GET", "/ui/console.js").body == on_disk) << "the served console.js differs from " << source;
  EXPECT_EQ(request("GET", "/ui/console.js").header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(request("GET", "/ui/console.css").header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(request("GET", "/ui/missing.js").status, 404);

  EXPECT_EQ(post("/v1/triage", {{"records", json::array({json::object()})}}).status, 401);
  EXPECT_EQ(request("POST", "/v1/detect", kEvents).status, 401);
}

}  // namespace
}  // namespace csq::server
