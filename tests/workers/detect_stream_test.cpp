// csq detect --redis URL --out-stream NAME: the alerts go to the stream, each entry's `alert`
// being the record --json prints, with one idempotency key per rule and event; the password
// stays out of the output.
#include <gtest/gtest.h>

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
  const fs::path dir = fs::path(test::temp_dir()) / ("detect-stream-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
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

}  // namespace
}  // namespace csq::workers
