// Three `csq serve` replicas behind a real nginx running deploy/nginx/csq.conf: requests with one
// prefix key all reach one replica, and csq_server_load runs through the balancer with no failed
// request while one replica is stopped with SIGTERM mid-run (draining, then retry on another
// replica before the first byte).
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "child_process.h"
#include "server/serve_process.h"
#include "test_paths.h"

namespace csq::server {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Answered generation requests (status 200, both endpoints) from a replica's /metrics.
int64_t answered(const std::string& url) {
  httplib::Client client(url);
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) return -1;
  static const std::regex line(R"re(csq_requests_total\{endpoint="/v1/(chat/)?completions",status="200"\} (\d+))re");
  int64_t n = 0;
  for (std::sregex_iterator it(res->body.begin(), res->body.end(), line), end; it != end; ++it)
    n += std::stoll((*it)[2].str());
  return n;
}

// Lines "csq serve: POST /v1/... STATUS" of a replica's log: what it answered, even after it exited.
int count_log(const std::string& log, const std::string& status) {
  const std::regex line("csq serve: POST /v1/(chat/)?completions " + status + "\n");
  return int(std::distance(std::sregex_iterator(log.begin(), log.end(), line), std::sregex_iterator()));
}

void replace_exactly_once(std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "deploy/nginx/csq.conf no longer has '" << from << "'";
  text.replace(at, from.size(), to);
  ASSERT_EQ(text.find(from), std::string::npos) << "'" << from << "' appears twice in deploy/nginx/csq.conf";
}

TEST(ServeReplicas, BehindNginxPrefixRoutingAndDrainingWithoutFailures) {
  CSQ_REQUIRE_FIXTURES();
  if (!fs::exists("/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed (scripts/setup.sh installs nginx-light)";
  const fs::path dir = fs::path(test::temp_dir()) / ("replicas-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);

  std::vector<std::unique_ptr<ServeProcess>> replicas;
  for (int i = 0; i < 3; ++i)
    replicas.push_back(std::make_unique<ServeProcess>(
        test::csq_binary(), std::vector<std::string>{"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1",
                                                     "--parallel", "4", "--queue", "64", "--ctx", "1024",
                                                     "--shutdown-timeout", "60"}));
  std::vector<std::string> urls;
  for (auto& r : replicas) urls.push_back(r->wait_listening(120s));

  // The shipped configuration, with only its addresses changed.
  const int lb_port = test::free_port();
  std::string site = read_text(fs::path(CSQ_SOURCE_DIR) / "deploy/nginx/csq.conf");
  replace_exactly_once(site, "listen 127.0.0.1:8080;", "listen 127.0.0.1:" + std::to_string(lb_port) + ";");
  for (int i = 0; i < 3; ++i)
    replace_exactly_once(site, "server 127.0.0.1:808" + std::to_string(i + 1) + " ",
                         "server " + urls[size_t(i)].substr(std::string("http://").size()) + " ");
  std::ofstream(dir / "csq.conf") << site;
  const std::string d = dir.string();
  std::ofstream(dir / "nginx.conf") << "daemon off;\nworker_processes 1;\npid " << d << "/nginx.pid;\nerror_log " << d
                                    << "/error.log warn;\nevents { worker_connections 512; }\nhttp {\n  access_log off;\n"
                                    << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n"
                                    << "  fastcgi_temp_path " << d << "/fastcgi;\n  uwsgi_temp_path " << d << "/uwsgi;\n"
                                    << "  scgi_temp_path " << d << "/scgi;\n  include " << d << "/csq.conf;\n}\n";
  test::Child nginx({"/usr/sbin/nginx", "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf"}, dir / "nginx.out",
              dir / "nginx.err");
  ASSERT_TRUE(nginx.started());
  const std::string lb = "http://127.0.0.1:" + std::to_string(lb_port);
  httplib::Client probe(lb);
  bool up = false;
  for (auto until = std::chrono::steady_clock::now() + 30s; !up && std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(50ms)) {
    auto res = probe.Get("/health");
    up = res && res->status == 200;
    ASSERT_TRUE(nginx.running()) << read_text(dir / "nginx.err") << read_text(dir / "error.log");
  }
  ASSERT_TRUE(up) << "nginx did not answer on " << lb << "\n" << read_text(dir / "error.log");

  // A replica's own /health reports readiness and load.
  {
    httplib::Client client(urls[0]);
    auto res = client.Get("/health");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    const auto health = nlohmann::json::parse(res->body);
    EXPECT_EQ(health["status"], "ok");
    EXPECT_EQ(health["slots"], 4);
    EXPECT_EQ(health["queue_capacity"], 64);
    EXPECT_TRUE(health["busy_slots"].is_number_integer() && health["queue_depth"].is_number_integer()) << res->body;
  }

  // One prefix key: every request reaches the same replica.
  constexpr int kKeyed = 12;
  std::vector<int64_t> before;
  for (const auto& u : urls) before.push_back(answered(u));
  httplib::Client client(lb);
  client.set_read_timeout(120, 0);
  for (int i = 0; i < kKeyed; ++i) {
    const std::string body = R"({"messages":[{"role":"system","content":"You are a SOC analyst."},)"
                             R"({"role":"user","content":"Triage alert )" + std::to_string(i) + R"("}],"max_tokens":2})";
    auto res = client.Post("/v1/chat/completions", {{"X-CSQ-Prefix-Key", "soc-playbook-7"}}, body, "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 200) << res->body;
  }
  std::vector<int64_t> keyed;
  int replicas_hit = 0;
  for (size_t i = 0; i < urls.size(); ++i) {
    keyed.push_back(answered(urls[i]) - before[i]);
    replicas_hit += keyed.back() > 0;
  }
  std::printf("prefix key 'soc-playbook-7': %d requests -> replicas %lld / %lld / %lld\n", kKeyed, (long long)keyed[0],
              (long long)keyed[1], (long long)keyed[2]);
  EXPECT_EQ(replicas_hit, 1);
  EXPECT_EQ(keyed[0] + keyed[1] + keyed[2], kKeyed);

  // The load through nginx; replica 0 gets SIGTERM once the run is under way.
  constexpr int kRequests = 120;
  test::Child load({CSQ_SERVER_LOAD, "--url", lb, "--clients", "12", "--requests", std::to_string(kRequests)},
             dir / "load.out", dir / "load.err");
  ASSERT_TRUE(load.started());
  std::vector<int64_t> start;
  for (const auto& u : urls) start.push_back(answered(u));
  int64_t served = 0;
  for (auto until = std::chrono::steady_clock::now() + 300s; served < kRequests / 4 && load.running() &&
                                                             std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(50ms)) {
    served = 0;
    for (size_t i = 0; i < urls.size(); ++i) served += answered(urls[i]) - start[i];
  }
  ASSERT_TRUE(load.running()) << "the load ended before the replica could be stopped:\n" << read_text(dir / "load.out");
  replicas[0]->signal(SIGTERM);
  const std::optional<int> load_status = load.wait(300s);
  const std::optional<int> stopped = replicas[0]->wait_exit(120s);
  const std::string report = read_text(dir / "load.out");
  std::printf("csq_server_load through nginx, replica 0 stopped after %lld answers:\n%s", (long long)served,
              report.c_str());
  ASSERT_TRUE(load_status) << "csq_server_load did not finish";
  EXPECT_TRUE(WIFEXITED(*load_status) && WEXITSTATUS(*load_status) == 0) << report << read_text(dir / "load.err");
  EXPECT_NE(report.find("failed: 0\n"), std::string::npos) << report;
  ASSERT_TRUE(stopped) << "replica 0 did not exit after SIGTERM:\n" << replicas[0]->log();
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << replicas[0]->log();

  int total = 0;
  for (size_t i = 0; i < replicas.size(); ++i) {
    const std::string log = replicas[i]->log();
    const int ok = count_log(log, "200"), refused = count_log(log, "503");
    total += ok;
    const int64_t rss_kib = i == 0 ? -1 : replicas[i]->peak_rss_kib();
    std::printf("replica %zu%s: %d answered, %d refused with 503 while draining, peak RSS %s\n", i,
                i == 0 ? " (SIGTERM)" : "", ok, refused,
                rss_kib < 0 ? "-" : (std::to_string(rss_kib / 1024) + " MiB").c_str());
  }
  EXPECT_EQ(total, kKeyed + kRequests);
  nginx.signal(SIGQUIT);
  EXPECT_TRUE(nginx.wait(30s));
}

}  // namespace
}  // namespace csq::server
