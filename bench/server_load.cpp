// Load test of `csq serve`: C concurrent clients send R requests in total (chat and
// completions, streaming and not, short answers) and every answer is checked. Reports failed
// requests, latency percentiles, requests per second and the server's peak resident memory.
// Exits 1 when a request failed or the memory passed --max-rss-mb (the CTest server_load).
//   csq_server_load --model DIR_OR_GGUF [--clients 64] [--requests 1000] [--json]
//   csq_server_load --url http://127.0.0.1:8080 ...
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include <CLI/CLI.hpp>

#include "base/error.h"
#include "server_client.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  csq::bench::ServerTarget target;
  int clients = 64;
  int requests = 1000;
  int max_tokens = 8;
  int parallel = 8;
  double max_rss_mib = 0;
  bool json_out = false;
};

const char* const kAlerts[] = {
    "500 failed SSH logins for root from 203.0.113.7 within ten minutes",
    "powershell.exe spawned by winword.exe with an encoded command line",
    "outbound DNS queries to a domain registered yesterday, 40 per minute",
    "new local administrator account created outside the change window",
    "EDR quarantined an unsigned binary in C:\\Users\\Public",
    "impossible travel: the same user signed in from Oslo and Lima 20 minutes apart",
};

// Request i of the mix: chat or completions, streaming or not, greedy or seeded sampling.
std::pair<std::string, json> make_request(int i, int max_tokens) {
  const std::string alert = std::string(kAlerts[size_t(i) % std::size(kAlerts)]) + " (alert " + std::to_string(i) + ")";
  const bool chat = i % 2 == 0, stream = (i / 2) % 2 == 0;
  json body = {{"max_tokens", max_tokens}, {"stream", stream}};
  if (i % 3 == 0) body["temperature"] = 0;
  else body["seed"] = i, body["temperature"] = 0.8;
  if (stream) body["stream_options"] = {{"include_usage", true}};
  if (chat) {
    body["messages"] = json::array({{{"role", "system"}, {"content", "You are a SOC analyst. Answer in one line."}},
                                    {{"role", "user"}, {"content", "Triage this alert: " + alert}}});
    return {"/v1/chat/completions", body};
  }
  body["prompt"] = "Alert: " + alert + "\nSeverity:";
  return {"/v1/completions", body};
}

int run(const Options& o) {
  if (o.clients < 1 || o.requests < 1) csq::fail_usage("--clients and --requests must be at least 1");
  csq::bench::ServerTarget target = o.target;
  // Room for every client: a full queue would answer 429, which this test counts as a failure.
  target.serve_args = {"--parallel", std::to_string(o.parallel), "--queue", std::to_string(std::max(64, o.clients)),
                       "--ctx", "1024"};
  csq::bench::Server server(target);

  std::atomic<int> next{0};
  std::mutex mutex;
  std::vector<double> latencies;
  std::map<std::string, int> failures;  // reason -> count
  int64_t completion_tokens = 0;
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < o.clients; ++c)
    clients.emplace_back([&] {
      auto client = csq::bench::connect(server.url());
      for (int i; (i = next++) < o.requests;) {
        const auto [path, body] = make_request(i, o.max_tokens);
        const csq::bench::Reply reply = csq::bench::send(*client, path, body);
        std::lock_guard<std::mutex> lock(mutex);
        latencies.push_back(reply.total_ms);
        completion_tokens += reply.completion_tokens;
        if (!reply.error.empty()) ++failures[reply.error.substr(0, 120)];
      }
    });
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double rss = server.peak_rss_mib();
  server.stop();

  int failed = 0;
  for (const auto& [reason, count] : failures) failed += count;
  const double p50 = csq::bench::percentile(latencies, 0.50), p95 = csq::bench::percentile(latencies, 0.95),
               p99 = csq::bench::percentile(latencies, 0.99);
  if (o.json_out) {
    json out = {{"url", server.url()},
                {"model", o.target.model},
                {"clients", o.clients},
                {"requests", o.requests},
                {"max_tokens", o.max_tokens},
                {"failed", failed},
                {"failures", failures},
                {"latency_ms", {{"p50", p50}, {"p95", p95}, {"p99", p99}}},
                {"seconds", seconds},
                {"requests_per_s", o.requests / seconds},
                {"completion_tokens", completion_tokens}};
    out["peak_rss_mib"] = rss >= 0 ? json(rss) : json(nullptr);
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%d clients, %d requests (max_tokens %d) in %.1f s: %.1f requests/s, %lld tokens generated\n", o.clients,
                o.requests, o.max_tokens, seconds, o.requests / seconds, (long long)completion_tokens);
    std::printf("failed: %d\n", failed);
    for (const auto& [reason, count] : failures) std::printf("  %d x %s\n", count, reason.c_str());
    std::printf("latency ms: p50 %.1f  p95 %.1f  p99 %.1f\n", p50, p95, p99);
    if (rss >= 0) std::printf("server peak RSS: %.1f MiB\n", rss);
  }
  int status = failed == 0 ? 0 : 1;
  if (o.max_rss_mib > 0 && rss > o.max_rss_mib) {
    std::fprintf(stderr, "csq_server_load: peak RSS %.1f MiB is over the bound of %.1f MiB\n", rss, o.max_rss_mib);
    status = 1;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("Load test of csq serve: concurrent clients, checked answers, latency and memory");
  csq::bench::add_target_options(app, o.target, true);
  app.add_option("--parallel", o.parallel, "Sequences the spawned server decodes together")->capture_default_str();
  app.add_option("--clients,-c", o.clients, "Concurrent clients")->capture_default_str();
  app.add_option("--requests,-n", o.requests, "Requests in total")->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "max_tokens of each request")->capture_default_str();
  app.add_option("--max-rss-mb", o.max_rss_mib, "Fail when the spawned server's peak RSS passes this many MiB");
  app.add_flag("--json", o.json_out, "JSON output");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const csq::Error& e) {
    std::fprintf(stderr, "csq_server_load: %s\n", e.what());
    return int(e.code());
  }
}
