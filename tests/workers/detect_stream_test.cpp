// csq detect --redis URL --out-stream NAME: the alerts go to the stream, each entry's `alert`
// being the record --json prints, with one idempotency key per rule and event; the password
// stays out of the output. csq triage --redis reads them as they are.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "test_paths.h"
#include "workers/redis.h"
#include "workers/redis_server.h"

namespace csq::workers {
namespace {

namespace fs = std::filesystem;

const char* kRule = R"(title: Account discovery with net user
id: r-net-user
level: low
logsource: {product: windows, category: process_creation}
detection:
    net:
        Image|endswith: '\net.exe'
        CommandLine|contains: ' user'
    condition: net
)";

std::string event(int sec, const char* command_line) {
  return "{\"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"EventID\": 1, \"UtcTime\": \"2024-01-01 10:00:0" +
         std::to_string(sec) + ".000\", \"Image\": \"C:\\\\Windows\\\\System32\\\\net.exe\", \"CommandLine\": \"" + command_line +
         "\"}\n";
}

TEST(DetectStream, AlertsGoToTheStreamAsJsonRecords) {
  if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
  const fs::path dir = test::fresh_test_dir("detect-stream");
  test::RedisServer redis(dir, test::free_port(), "det3ct-pass");
  redis.start();
  std::ofstream(dir / "rule.yml") << kRule;
  std::ofstream(dir / "events.jsonl") << event(1, "net user") << event(2, "net share") << event(3, "net user admin")
                                      << event(4, "net user /domain");
  const std::vector<std::string> base = {"detect", "--rules", (dir / "rule.yml").string(), "--events",
                                         (dir / "events.jsonl").string()};

  auto args = base;
  args.push_back("--json");
  const test::RunResult printed = test::run_csq(args);
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  std::vector<std::string> lines;
  std::istringstream in(printed.out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << printed.out;

  RedisClient client(parse_redis_url(redis.url("det3ct-pass")));
  ASSERT_EQ(client.checked({"PING"}).text, "PONG");  // up before csq detect connects
  args = base;
  for (const char* a : {"--redis", "", "--out-stream", "alerts"}) args.push_back(a);
  args[args.size() - 3] = redis.url("det3ct-pass");
  const test::RunResult streamed = test::run_csq(args);
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, "");
  EXPECT_NE(streamed.err.find("written: 3 alerts to stream 'alerts' at redis://:***@127.0.0.1:"), std::string::npos)
      << streamed.err;
  EXPECT_EQ(streamed.err.find("det3ct-pass"), std::string::npos);

  const RedisReply entries = client.checked({"XRANGE", "alerts", "-", "+"});
  ASSERT_EQ(entries.elements.size(), 3u);
  std::set<std::string> keys;
  for (size_t i = 0; i < 3; ++i) {
    const auto& fields = entries.elements[i].elements[1].elements;
    ASSERT_EQ(fields.size(), 4u);
    EXPECT_EQ(fields[0].text, "alert");
    EXPECT_EQ(fields[1].text, lines[i]);
    EXPECT_EQ(fields[2].text, "idempotency_key");
    keys.insert(fields[3].text);
  }
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_EQ(*keys.begin(), "r-net-user@" + (dir / "events.jsonl").string() + ":1");

  args = base;
  for (const char* a : {"--redis", "redis://127.0.0.1:1"}) args.push_back(a);
  EXPECT_EQ(test::run_csq(args).exit_code, 1) << "--redis without --out-stream";
  args = base;
  for (const char* a : {"--redis", "rediss://:det3ct-pass@127.0.0.1:1", "--out-stream", "x"}) args.push_back(a);
  const test::RunResult tls = test::run_csq(args);
  EXPECT_EQ(tls.exit_code, 1);
  EXPECT_NE(tls.err.find("no TLS"), std::string::npos) << tls.err;
  EXPECT_EQ(tls.err.find("det3ct-pass"), std::string::npos) << tls.err;
}

// The two stages of one pipeline: csq triage --redis reads what csq detect --redis wrote with its
// defaults (field `alert`), and each result names the detect alert it answers. Also: an entry
// that is not an object, one over 16 MiB, and one the backend fails (its prompt exceeds the
// context) reach the dead-letter stream with their errors, the log holds counts only unless
// --log-content, and --max-entries / --exit-when-idle end a batch job.
TEST(DetectStream, TriageWorkerReadsWhatDetectWrites) {
  if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
  const fs::path dir = test::fresh_test_dir("detect-triage");
  test::RedisServer redis(dir, test::free_port(), "pipe-pass-42");
  redis.start();
  RedisClient client(parse_redis_url(redis.url("pipe-pass-42")));
  ASSERT_EQ(client.checked({"PING"}).text, "PONG");
  std::ofstream(dir / "rule.yml") << kRule;
  std::ofstream(dir / "events.jsonl") << event(1, "net user") << event(2, "net user admin");
  const test::RunResult detected = test::run_csq({"detect", "--rules", (dir / "rule.yml").string(), "--events",
                                                  (dir / "events.jsonl").string(), "--redis", redis.url("pipe-pass-42"),
                                                  "--out-stream", "alerts"});
  ASSERT_EQ(detected.exit_code, 0) << detected.err;
  client.checked({"XADD", "alerts", "*", "alert", "[\"not an object\"]"});
  // Valid, but its prompt exceeds the context (digits are one token each): the backend fails
  // it, which is no result.
  std::string digits;
  for (int i = 0; i < 1000; ++i) digits += char('0' + i % 10);
  nlohmann::json huge;
  for (int i = 0; i < 20; ++i) huge["field" + std::to_string(i)] = digits;
  client.checked({"XADD", "alerts", "*", "alert", huge.dump()});
  // Over the 16 MiB bound on a record: refused before it is parsed.
  const std::string oversized = "{\"a\":\"" + std::string(16u << 20, 'a') + "\"}";
  client.checked({"XADD", "alerts", "*", "alert", oversized});

  auto triage = [&](const std::string& group, std::vector<std::string> extra) {
    std::vector<std::string> args = {"triage", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1",
                                     "--max-tokens", "4", "--redis", redis.url("pipe-pass-42"), "--stream", "alerts",
                                     "--group", group, "--out-stream", "triaged-" + group, "--dead-letter",
                                     "dead-" + group, "--max-attempts", "1", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_csq(args);
  };
  const test::RunResult quiet = triage("quiet", {"--max-entries", "5"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  const auto stats = nlohmann::json::parse(quiet.out);
  EXPECT_EQ(stats["stopped"], "--max-entries");
  EXPECT_EQ(stats["results"], 2);
  EXPECT_EQ(stats["dead_lettered"], 3);
  EXPECT_EQ(stats["acknowledged"], 5);
  EXPECT_NE(quiet.err.find("at redis://:***@127.0.0.1:"), std::string::npos) << quiet.err;
  for (const char* secret : {"pipe-pass-42", "net user", "not an object", "0123456789"})
    EXPECT_EQ(quiet.err.find(secret), std::string::npos) << "the log holds '" << secret << "':\n" << quiet.err;

  const std::string source = (dir / "events.jsonl").string();
  std::vector<std::string> ids;
  for (const RedisReply& entry : client.checked({"XRANGE", "triaged-quiet", "-", "+"}).elements) {
    const auto& fields = entry.elements[1].elements;
    ASSERT_EQ(fields.size(), 8u);
    EXPECT_EQ(fields[4].text, "consumer");
    EXPECT_EQ(fields[6].text, "result");
    const auto line = nlohmann::json::parse(fields[7].text);
    ids.push_back(line["id"]);
    EXPECT_GT(line["prompt_tokens"].get<int>(), 0);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{source + ":1", source + ":2"}));
  const RedisReply dead = client.checked({"XRANGE", "dead-quiet", "-", "+"});
  ASSERT_EQ(dead.elements.size(), 3u);
  const std::pair<const char*, std::string> expected[] = {{"expected a JSON object", "[\"not an object\"]"},
                                                          {"but the context holds 4096", huge.dump()},
                                                          {"bytes, more than a record may have", oversized}};
  for (size_t i = 0; i < 3; ++i) {
    const auto& fields = dead.elements[i].elements[1].elements;
    ASSERT_EQ(fields.size(), 10u);
    EXPECT_EQ(fields[6].text, "error");
    EXPECT_NE(fields[7].text.find(expected[i].first), std::string::npos) << fields[7].text;
    EXPECT_TRUE(fields[9].text == expected[i].second) << "dead letter " << i << " does not hold the alert as it came";
  }

  const test::RunResult no_url = test::run_csq({"triage", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--stream",
                                               "alerts", (dir / "events.jsonl").string()});
  EXPECT_EQ(no_url.exit_code, 1);
  EXPECT_NE(no_url.err.find("need --redis URL or --redis-file PATH"), std::string::npos) << no_url.err;

  const test::RunResult logged = triage("logged", {"--exit-when-idle", "0.5", "--log-content"});
  ASSERT_EQ(logged.exit_code, 0) << logged.err;
  EXPECT_EQ(nlohmann::json::parse(logged.out)["stopped"], "--exit-when-idle");
  EXPECT_NE(logged.err.find("net user admin"), std::string::npos) << logged.err;
  EXPECT_EQ(logged.err.find("pipe-pass-42"), std::string::npos) << logged.err;
}

}  // namespace
}  // namespace csq::workers
