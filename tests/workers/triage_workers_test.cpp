// csq triage --redis as real processes: three workers on one consumer group, the tiny fixture
// model with a real tokenizer (answers cut at 4 tokens), a redis-server with a password and AOF
// (fsync always). One worker is SIGKILLed holding pending entries and another stopped with
// SIGTERM (it acknowledges its batch first); in the second test Redis is
// restarted mid-run. Either way every alert gets a result, copies only under one idempotency
// key, the poison entries reach the dead-letter stream, nothing stays pending, SIGTERM stops the
// survivors with exit 0, and no worker logs the password or alert content.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "child_process.h"
#include "server/serve_process.h"
#include "test_paths.h"
#include "workers/redis_server.h"
#include "workers/stream_audit.h"

namespace csq::workers {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kAlerts = 600;
const std::string kPassword = "triage-w0rker-pass";

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TriageWorkers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
    dir_ = test::fresh_test_dir(std::string("triage-workers-") +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    redis_ = std::make_unique<test::RedisServer>(dir_, test::free_port(), kPassword);
    redis_->start();
    std::ofstream(dir_ / "redis-url") << redis_->url(kPassword) << "\n";  // as a systemd credential holds it
    client_ = std::make_unique<RedisClient>(parse_redis_url(redis_->url(kPassword)));
    pipeline_ = test::fill_pipeline(*client_, kAlerts);
    for (int w = 0; w < 3; ++w) {
      const std::string name = "worker-" + std::to_string(w);
      workers_.push_back(std::make_unique<test::Child>(
          std::vector<std::string>{test::csq_binary(), "triage", "--model", test::fixture("hf/qwen3-tiny-vocab"),
                                   "--threads", "1", "--parallel", "4", "--max-tokens", "4", "--redis-file",
                                   (dir_ / "redis-url").string(), "--stream", "alerts", "--group", "triage",
                                   "--consumer", name, "--out-stream", "triaged", "--dead-letter", "alerts-dead",
                                   "--max-attempts", "2", "--claim-after", "1500", "--max-in-flight", "8", "--json"},
          dir_ / (name + ".out"), dir_ / (name + ".err")));
      ASSERT_TRUE(workers_.back()->started());
    }
  }

  void wait_for_results(int64_t n) {
    for (auto until = std::chrono::steady_clock::now() + 60s; test::xlen(*client_, "triaged") < n;) {
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "fewer than " << n << " results after 60 s";
      std::this_thread::sleep_for(10ms);
    }
  }

  // Waits until every input is settled, stops the live workers with SIGTERM (each must exit 0
  // after finishing its batch), audits the streams and prints the counts.
  void finish(const char* label, const std::vector<bool>& alive) {
    for (auto until = std::chrono::steady_clock::now() + 90s;; std::this_thread::sleep_for(50ms)) {
      try {
        if (test::pipeline_settled(*client_, pipeline_)) break;
      } catch (const Error&) {  // Redis restarting
      }
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "the pipeline did not settle within 90 s";
    }
    nlohmann::json sum = {{"claimed", 0}, {"failed", 0}, {"acknowledged", 0}, {"connection_losses", 0}, {"reconnects", 0}};
    for (size_t w = 0; w < workers_.size(); ++w) {
      const fs::path log = dir_ / ("worker-" + std::to_string(w) + ".err");
      const std::string err = read_file(log);
      EXPECT_EQ(err.find(kPassword), std::string::npos) << log << " holds the Redis password";
      EXPECT_EQ(err.find("\"n\":"), std::string::npos) << log << " holds alert content";
      EXPECT_EQ(err.find("poison"), std::string::npos) << log << " holds alert content";
      if (!alive[w]) continue;
      workers_[w]->signal(SIGTERM);
      const auto status = workers_[w]->wait(30s);
      ASSERT_TRUE(status.has_value()) << "worker " << w << " did not stop within 30 s of SIGTERM";
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << read_file(log);
      const auto stats = nlohmann::json::parse(read_file(dir_ / ("worker-" + std::to_string(w) + ".out")), nullptr, false);
      ASSERT_TRUE(stats.is_object()) << read_file(log);
      EXPECT_EQ(stats["stopped"], "SIGTERM");
      for (auto& [key, value] : sum.items()) value = value.get<int64_t>() + stats[key].get<int64_t>();
    }
    const test::Audit a = test::audit_pipeline(*client_, pipeline_);
    std::printf("%s: alerts in %zu (+%zu poison), results out %zu (%d duplicates, marked), missing %d, claimed %lld, "
                "dead-lettered %zu, failed attempts %lld, acknowledged by live workers %lld, connection losses %lld, "
                "reconnects %lld, pending %lld\n",
                label, pipeline_.good_ids.size(), pipeline_.bad_ids.size(), a.results, a.duplicates, a.missing,
                sum["claimed"].get<long long>(), a.dead, sum["failed"].get<long long>(),
                sum["acknowledged"].get<long long>(), sum["connection_losses"].get<long long>(),
                sum["reconnects"].get<long long>(), (long long)a.pending);
    sum_ = sum;
  }

  fs::path dir_;
  std::unique_ptr<test::RedisServer> redis_;
  std::unique_ptr<RedisClient> client_;
  test::Pipeline pipeline_;
  std::vector<std::unique_ptr<test::Child>> workers_;
  nlohmann::json sum_;
};

TEST_F(TriageWorkers, OneOfThreeSigkilledNothingIsLost) {
  wait_for_results(kAlerts / 5);
  // Killed while it holds entries read but not acknowledged, as a crash mid-batch leaves them.
  for (auto until = std::chrono::steady_clock::now() + 30s;; std::this_thread::sleep_for(1ms)) {
    if (!client_->checked({"XPENDING", "alerts", "triage", "-", "+", "1", "worker-0"}).elements.empty()) break;
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "worker-0 never held a pending entry";
  }
  workers_[0]->signal(SIGKILL);
  ASSERT_TRUE(workers_[0]->wait(10s).has_value());
  const size_t orphaned = client_->checked({"XPENDING", "alerts", "triage", "-", "+", "100", "worker-0"}).elements.size();
  std::printf("worker-0 SIGKILLed with %zu entries pending after %lld results\n", orphaned,
              (long long)test::xlen(*client_, "triaged"));
  EXPECT_GT(orphaned, 0u);
  // SIGTERM finishes the batch in hand: worker-1 leaves nothing pending but failed poison entries.
  wait_for_results(kAlerts / 2);
  workers_[1]->signal(SIGTERM);
  ASSERT_TRUE(workers_[1]->wait(30s).has_value()) << "worker-1 did not stop within 30 s of SIGTERM";
  const std::set<std::string> bad(pipeline_.bad_ids.begin(), pipeline_.bad_ids.end());
  for (const RedisReply& e : client_->checked({"XPENDING", "alerts", "triage", "-", "+", "100", "worker-1"}).elements)
    EXPECT_TRUE(bad.count(e.elements.at(0).text)) << "worker-1 stopped holding good entry " << e.elements.at(0).text;
  finish("one of three triage workers SIGKILLed, one stopped with SIGTERM", {false, true, true});
  EXPECT_GE(sum_["claimed"].get<int64_t>(), int64_t(orphaned)) << "the dead worker's entries were not claimed";
}

TEST_F(TriageWorkers, RedisRestartedMidRunNothingIsLost) {
  wait_for_results(kAlerts / 4);
  // Every worker must hold a connection to lose: on a loaded machine the first two can write a
  // quarter of the results before the third has started and read from the group.
  for (auto until = std::chrono::steady_clock::now() + 60s;; std::this_thread::sleep_for(10ms)) {
    if (client_->checked({"XINFO", "CONSUMERS", "alerts", "triage"}).elements.size() == workers_.size()) break;
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "not every worker joined the group within 60 s";
  }
  redis_->stop();
  std::this_thread::sleep_for(300ms);
  redis_->start();
  finish("redis restarted under three triage workers", {true, true, true});
  EXPECT_GE(sum_["reconnects"].get<int64_t>(), 3) << "every worker should have reconnected";
}

// SIGTERM while Redis is down ends the reconnect loop at once (exit 0; what the worker held stays
// pending) rather than after the 60 s a worker waits for Redis to come back.
TEST(TriageWorkerStop, SigtermWhileRedisIsDownStopsPromptly) {
  if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
  const fs::path dir = test::fresh_test_dir("triage-stop");
  test::RedisServer redis(dir, test::free_port(), kPassword);
  redis.start();
  RedisClient client(parse_redis_url(redis.url(kPassword)));
  test::Child worker({test::csq_binary(), "triage", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1",
                      "--redis", redis.url(kPassword), "--stream", "alerts", "--group", "triage", "--out-stream",
                      "triaged", "--json"},
                     dir / "worker.out", dir / "worker.err");
  ASSERT_TRUE(worker.started());
  for (auto until = std::chrono::steady_clock::now() + 60s;; std::this_thread::sleep_for(20ms)) {
    if (client.checked({"EXISTS", "alerts"}).integer == 1) break;  // the worker created its group
    ASSERT_LT(std::chrono::steady_clock::now(), until) << read_file(dir / "worker.err");
  }
  redis.stop();
  std::this_thread::sleep_for(500ms);
  const auto sent = std::chrono::steady_clock::now();
  worker.signal(SIGTERM);
  const auto status = worker.wait(10s);
  ASSERT_TRUE(status.has_value()) << "no exit within 10 s of SIGTERM\n" << read_file(dir / "worker.err");
  std::printf("stopped %.2f s after SIGTERM with Redis down\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << read_file(dir / "worker.err");
  const auto stats = nlohmann::json::parse(read_file(dir / "worker.out"), nullptr, false);
  ASSERT_TRUE(stats.is_object()) << read_file(dir / "worker.err");
  EXPECT_EQ(stats["stopped"], "SIGTERM while Redis was unreachable");
  EXPECT_EQ(read_file(dir / "worker.err").find(kPassword), std::string::npos);
}

// With --endpoint the worker sends the same requests to csq serve: greedy, every result line is
// the one the in-process worker writes for the same entry.
TEST(TriageWorkerEndpoint, ResultsThroughCsqServeEqualInProcess) {
  if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
  const fs::path dir = test::fresh_test_dir("triage-endpoint");
  test::RedisServer redis(dir, test::free_port(), kPassword);
  redis.start();
  RedisClient client(parse_redis_url(redis.url(kPassword)));
  for (int i = 0; i < 24; ++i)
    client.checked({"XADD", "alerts", "*", "alert", "{\"EventID\":4625,\"TargetUserName\":\"svc" + std::to_string(i) + "\"}"});
  server::ServeProcess serve(test::csq_binary(), {"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1",
                                                  "--parallel", "4", "--ctx", "1024"});
  const std::string url = serve.wait_listening(120s);

  auto results = [&](const std::string& group, const std::vector<std::string>& backend) {
    std::vector<std::string> args = {"triage", "--max-tokens", "12", "--redis", redis.url(kPassword), "--stream", "alerts",
                                     "--group", group, "--out-stream", "out-" + group, "--exit-when-idle", "0.5"};
    args.insert(args.end(), backend.begin(), backend.end());
    const test::RunResult run = test::run_csq(args);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::map<std::string, std::string> by_input;
    for (const RedisReply& entry : client.checked({"XRANGE", "out-" + group, "-", "+"}).elements)
      by_input[entry.elements[1].elements[1].text] = entry.elements[1].elements[7].text;  // input_id, result
    return by_input;
  };
  const auto local = results("local", {"--model", test::fixture("hf/qwen3-tiny-vocab"), "--threads", "1"});
  const auto remote = results("remote", {"--endpoint", url + "/v1"});
  ASSERT_EQ(local.size(), 24u);
  EXPECT_EQ(remote, local);
}

}  // namespace
}  // namespace csq::workers
