// Stream workers on a real redis-server: three workers of one group consume 500 alerts plus
// poison entries; one worker dies between reading a batch and writing it (as a SIGKILL would
// leave it), and in the second test Redis restarts mid-run. Either way every input has a result
// or a dead letter, duplicates carry one idempotency key, and the pending list ends empty.
#include "workers/stream_worker.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "test_paths.h"
#include "workers/redis_server.h"

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
  StreamWorkerConfig c;
  c.stream = "alerts";
  c.group = "triage";
  c.consumer = consumer;
  c.out_stream = "triaged";
  c.claim_after = 300ms;
  c.max_in_flight = 8;
  c.dead_letter = "alerts-dead";
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

struct Pipeline {
  std::vector<std::string> good_ids, bad_ids;  // inputs that must get a result / a dead letter
};

Pipeline fill(RedisClient& redis) {
  Pipeline p;
  for (int i = 0; i < kAlerts; ++i) {
    p.good_ids.push_back(redis.checked({"XADD", "alerts", "*", "alert", "{\"n\":" + std::to_string(i) + "}"}).text);
    if (i % 200 == 100) p.bad_ids.push_back(redis.checked({"XADD", "alerts", "*", "alert", "poison"}).text);
  }
  p.bad_ids.push_back(redis.checked({"XADD", "alerts", "*", "message", "no alert field"}).text);
  return p;
}

int64_t xlen(RedisClient& redis, const std::string& stream) { return redis.checked({"XLEN", stream}).integer; }

// Entries of the input stream not yet delivered to the group (XINFO GROUPS "lag"); -1 unknown.
int64_t group_lag(RedisClient& redis) {
  const auto& group = redis.checked({"XINFO", "GROUPS", "alerts"}).elements.at(0).elements;
  for (size_t i = 0; i + 1 < group.size(); i += 2)
    if (group[i].text == "lag") return group[i + 1].type == RedisReply::Type::Integer ? group[i + 1].integer : -1;
  return -1;
}

// Reads both output streams and checks the guarantees; prints the counts.
void check(RedisClient& redis, const Pipeline& p, const std::vector<WorkerCounts>& counts, const char* label) {
  std::map<std::string, std::set<std::string>> keys;  // input id -> idempotency keys seen
  std::map<std::string, int> copies;
  for (const RedisReply& entry : redis.checked({"XRANGE", "triaged", "-", "+"}).elements) {
    std::map<std::string, std::string> f;
    const auto& fields = entry.elements[1].elements;
    for (size_t i = 0; i + 1 < fields.size(); i += 2) f[fields[i].text] = fields[i + 1].text;
    ++copies[f["input_id"]];
    keys[f["input_id"]].insert(f["idempotency_key"]);
  }
  int missing = 0, duplicates = 0;
  for (const auto& id : p.good_ids) missing += copies.count(id) == 0;
  for (const auto& [id, n] : copies) {
    duplicates += n - 1;
    EXPECT_EQ(keys[id].size(), 1u) << id << " has copies with different idempotency keys";
    EXPECT_EQ(*keys[id].begin(), StreamWorker::idempotency_key(config_for(""), id));
  }
  EXPECT_EQ(copies.size(), p.good_ids.size()) << "results for ids that are not good inputs";
  std::set<std::string> dead;
  for (const RedisReply& entry : redis.checked({"XRANGE", "alerts-dead", "-", "+"}).elements)
    dead.insert(entry.elements[1].elements[1].text);  // input_id comes first
  EXPECT_EQ(dead, std::set<std::string>(p.bad_ids.begin(), p.bad_ids.end()));
  const int64_t pending = redis.checked({"XPENDING", "alerts", "triage"}).elements[0].integer;
  WorkerCounts sum;
  for (const auto& c : counts) {
    sum.read += c.read, sum.claimed += c.claimed, sum.results += c.results, sum.failed += c.failed;
    sum.dead_lettered += c.dead_lettered, sum.acknowledged += c.acknowledged, sum.connection_losses += c.connection_losses;
  }
  std::printf("%s: alerts in %zu (+%zu poison), results out %zu (%d duplicates, marked), missing %d, claimed %llu, "
              "dead-lettered %zu, failed attempts %llu, acknowledged %llu, connection losses %llu, pending %lld\n",
              label, p.good_ids.size(), p.bad_ids.size(), copies.size() + size_t(duplicates), duplicates, missing,
              (unsigned long long)sum.claimed, dead.size(), (unsigned long long)sum.failed,
              (unsigned long long)sum.acknowledged, (unsigned long long)sum.connection_losses, (long long)pending);
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(pending, 0);
  // An XACK removes an entry once; a repeated one (after its reply was lost) counts nothing.
  // With no lost reply, every input was acknowledged by exactly one worker.
  EXPECT_LE(sum.acknowledged, p.good_ids.size() + p.bad_ids.size());
  if (sum.connection_losses == 0) EXPECT_EQ(sum.acknowledged, p.good_ids.size() + p.bad_ids.size());
}

class StreamWorkers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
    dir_ = fs::path(test::temp_dir()) / ("streams-" + std::to_string(getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    redis_ = std::make_unique<test::RedisServer>(dir_, test::free_port(), kPassword);
    redis_->start();
  }

  // Runs three workers until every input is settled or `timeout`; `during` runs meanwhile.
  std::vector<WorkerCounts> run_workers(const Pipeline& p, RedisClient& watch, const std::function<void(int)>& crash_plan,
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
        if (size_t(xlen(watch, "alerts-dead")) == p.bad_ids.size() &&
            watch.checked({"XPENDING", "alerts", "triage"}).elements[0].integer == 0 &&
            group_lag(watch) == 0)
          break;
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
  const Pipeline p = fill(redis);
  const auto counts = run_workers(p, redis, [](int batch) { if (batch == 5) throw Crash(); }, [] {});
  check(redis, p, counts, "one worker died");
  EXPECT_GT(counts[0].read, 0u);
  EXPECT_GT(counts[1].claimed + counts[2].claimed, 0u) << "nobody took over the dead worker's entries";
}

TEST_F(StreamWorkers, RedisRestartsMidRunNothingIsLost) {
  RedisClient redis(parse_redis_url(redis_->url(kPassword)));
  const Pipeline p = fill(redis);
  const auto counts = run_workers(p, redis, [](int) {}, [&] {
    while (xlen(redis, "triaged") < kAlerts / 4) std::this_thread::sleep_for(5ms);
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
