// What the Redis Streams layer costs: 1, 2, 3... StreamWorkers of one group drain N alerts
// from a stream (XREADGROUP, XADD of each result, XACK) with a processor that does no work, so
// the figure is the ceiling the stream layer puts on triage throughput, not triage itself.
//   redis-server --port 6390 --save '' --appendonly no &
//   csq_stream_workers --redis redis://127.0.0.1:6390 --alerts 5000 --workers 1,2,3
// It deletes and recreates the streams bench-alerts and bench-results on that server.
#include <atomic>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "base/error.h"
#include "workers/stream_worker.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace csq::workers;

double drain(const RedisUrl& url, int alerts, int workers, int batch) {
  RedisClient admin(url);
  admin.checked({"DEL", "bench-alerts", "bench-results"});
  for (int i = 0; i < alerts; ++i)
    admin.checked({"XADD", "bench-alerts", "*", "alert", "{\"n\":" + std::to_string(i) + ",\"title\":\"bench alert\"}"});
  admin.checked({"XGROUP", "CREATE", "bench-alerts", "bench", "0"});
  std::atomic<bool> stop{false};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&, w] {
      RedisClient redis(url);
      StreamWorkerConfig c;
      c.stream = "bench-alerts";
      c.group = "bench";
      c.consumer = "w" + std::to_string(w);
      c.out_stream = "bench-results";
      c.max_in_flight = batch;
      c.block = std::chrono::milliseconds(20);
      StreamWorker worker(redis, c, [](const std::vector<StreamEntry>& b) {
        std::vector<Outcome> out;
        for (const auto& e : b) out.push_back({true, "{\"of\":" + e.alert + "}"});
        return out;
      });
      while (!stop) worker.poll_once();
    });
  // Done when every alert has its result and none is left unacknowledged.
  while (admin.checked({"XLEN", "bench-results"}).integer < alerts ||
         admin.checked({"XPENDING", "bench-alerts", "bench"}).elements[0].integer > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  return alerts / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  int alerts = 5000, batch = 16;
  std::vector<int> worker_counts = {1, 2, 3};
  CLI::App app("Throughput of the Redis Streams layer: N StreamWorkers draining alerts with no-op triage");
  app.add_option("--redis", url, "A Redis server to use (its bench-* streams are replaced)")->required();
  app.add_option("--alerts", alerts, "Alerts per run")->capture_default_str();
  app.add_option("--workers", worker_counts, "Worker counts to run, e.g. 1,2,3")->delimiter(',');
  app.add_option("--batch", batch, "max_in_flight of each worker")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const RedisUrl parsed = parse_redis_url(url);
    for (int w : worker_counts) {
      if (w < 1 || w > 64) csq::fail_usage("--workers: each count must be 1..64");
      std::printf("%d worker%s: %.0f alerts/s (%d alerts, batch %d)\n", w, w == 1 ? "" : "s",
                  drain(parsed, alerts, w, batch), alerts, batch);
      std::fflush(stdout);
    }
  } catch (const csq::Error& e) {
    std::fprintf(stderr, "csq_stream_workers: %s\n", e.what());
    return int(e.code());
  }
  return 0;
}
