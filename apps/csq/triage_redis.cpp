#include "triage_redis.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "base/error.h"
#include "base/jsonl.h"
#include "base/progress_line.h"
#include "detect/event.h"
#include "io/mapped_file.h"
#include "workers/stream_worker.h"

namespace csq::app {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// SIGTERM and SIGINT are taken by a thread (sigwait) that only records them: the loop stops
// between batches, so the batch in hand is written and acknowledged first. Constructed before
// the backend starts its threads, so that they all inherit the blocked mask.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      int signo = 0;
      sigwait(&set_, &signo);
      if (!closing_) received_ = signo;
    });
  }
  ~StopSignals() {
    closing_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait; closing_ says why
    thread_.join();
  }
  // "SIGTERM" or "SIGINT" once one arrived, else nullptr.
  const char* received() const {
    const int s = received_;
    return s == SIGTERM ? "SIGTERM" : s == SIGINT ? "SIGINT" : nullptr;
  }

 private:
  sigset_t set_;
  std::atomic<bool> closing_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

std::string redis_url_of(const TriageRedisOptions& o) {
  if (!o.url.empty() && !o.url_file.empty()) fail_usage("give --redis or --redis-file, not both");
  if (o.url_file.empty()) return o.url;
  std::string url = io::read_text_file(o.url_file);
  while (!url.empty() && (url.back() == '\n' || url.back() == '\r' || url.back() == ' ')) url.pop_back();
  if (url.empty()) fail_input(o.url_file + ": the Redis URL file is empty");
  return url;
}

std::string default_consumer() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  return std::string(host) + "-" + std::to_string(getpid());
}

// Each entry's alert as a triage input; an entry that is not a JSON object, or is larger than a
// record read from a file may be (16 MiB), gets its error.
// Triaged together on the backend's slots; an answer that does not parse is still a result
// (the model answered, and a greedy retry would answer the same), a backend error is not.
std::vector<workers::Outcome> triage_entries(tasks::ChatBackend& backend, const std::vector<workers::StreamEntry>& batch,
                                             const std::string& field, const std::string& site_context,
                                             const tasks::RuleScreen* screen, const tasks::TriageOptions& options) {
  std::vector<workers::Outcome> outcomes(batch.size());
  std::vector<tasks::TriageInput> inputs;
  std::vector<size_t> slot_of_input;
  for (size_t i = 0; i < batch.size(); ++i) {
    const std::string where = "stream entry " + batch[i].id + ", field '" + field + "'";
    try {
      if (batch[i].alert.size() > detect::RecordReader::kDefaultMaxRecordBytes)
        fail_input(where + ": " + std::to_string(batch[i].alert.size()) + " bytes, more than a record may have (" +
                   std::to_string(detect::RecordReader::kDefaultMaxRecordBytes) + ")");
      tasks::TriageInput in;
      in.record = parse_jsonl_line<ojson>(batch[i].alert, where);
      if (!in.record.is_object()) fail_input(where + ": expected a JSON object (an alert or an event)");
      in.id = tasks::triage_record_id(in.record, batch[i].id);
      if (screen) screen->screen(in);
      inputs.push_back(std::move(in));
      slot_of_input.push_back(i);
    } catch (const Error& e) {
      outcomes[i] = {false, e.what()};
    }
  }
  size_t next = 0;
  tasks::triage_stream(
      backend, [&]() -> std::optional<tasks::TriageInput> { return next < inputs.size() ? std::optional(inputs[next++]) : std::nullopt; },
      site_context, options, [&](size_t index, const tasks::TriageResult& r) {
        workers::Outcome& out = outcomes[slot_of_input[index]];
        out.ok = r.answered;
        out.text = r.answered ? r.to_json().dump(-1, ' ', false, ojson::error_handler_t::replace) : r.error;
      });
  return outcomes;
}

// "read 12, claimed 0, ...": counts only, never alert content or the Redis password.
std::string counts_text(const workers::WorkerCounts& c, int reconnects, double seconds) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "read %llu, claimed %llu, results %llu, failed %llu, dead-lettered %llu, acknowledged %llu, "
                "connection losses %llu, reconnects %d, %.2f alerts/s",
                (unsigned long long)c.read, (unsigned long long)c.claimed, (unsigned long long)c.results,
                (unsigned long long)c.failed, (unsigned long long)c.dead_lettered, (unsigned long long)c.acknowledged,
                (unsigned long long)c.connection_losses, reconnects,
                seconds > 0 ? double(c.results + c.dead_lettered) / seconds : 0.0);
  return buf;
}

// --log-content: one JSON line per entry (JSON, so no alert text can forge a log line or reach
// the terminal as control characters).
void log_entries(const std::vector<workers::StreamEntry>& batch, const std::vector<workers::Outcome>& outcomes) {
  for (size_t i = 0; i < batch.size(); ++i) {
    ojson j = {{"entry", batch[i].id}, {"alert", batch[i].alert}};
    j[outcomes[i].ok ? "result" : "error"] = outcomes[i].text;
    std::fprintf(stderr, "csq triage: %s\n", j.dump(-1, ' ', true, ojson::error_handler_t::replace).c_str());
  }
}

}  // namespace

void add_triage_redis_options(CLI::App* cmd, TriageRedisOptions& o) {
  const char* group = "Redis Streams worker";
  cmd->add_option("--redis", o.url,
                  "Run as a worker of a Redis Streams consumer group: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]")
      ->group(group);
  cmd->add_option("--redis-file", o.url_file,
                  "As --redis, the URL read from this file (a systemd credential), keeping the password off the command line")
      ->group(group);
  cmd->add_option("--stream", o.stream, "The stream the alerts arrive on")->group(group);
  cmd->add_option("--group", o.group, "The consumer group (created at the stream's start if missing)")->group(group);
  cmd->add_option("--consumer", o.consumer, "This worker's name in the group (default HOSTNAME-PID)")->group(group);
  cmd->add_option("--out-stream", o.out_stream,
                  "Where results go: fields input_id, idempotency_key, consumer, result (the triage line)")
      ->group(group);
  cmd->add_option("--field", o.field, "The entry field holding the alert as JSON (csq detect --redis writes 'alert')")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--claim-after", o.claim_after_ms,
                  "Claim entries another consumer left pending this long (ms): a dead worker's, or ones that failed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->group(group);
  cmd->add_option("--max-in-flight", o.max_in_flight, "Entries read and triaged together (bounds memory and redelivery)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->group(group);
  cmd->add_option("--dead-letter", o.dead_letter,
                  "Stream for entries that failed --max-attempts deliveries, with the error (default: they stay pending)")
      ->group(group);
  cmd->add_option("--max-attempts", o.max_attempts, "Deliveries before an entry goes to --dead-letter")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->group(group);
  cmd->add_option("--max-entries", o.max_entries, "Stop after handling this many entries (the last batch may pass it)")
      ->group(group);
  cmd->add_option("--exit-when-idle", o.exit_when_idle_s,
                  "Stop when no entry arrived or was claimed for this many seconds (more than --claim-after plus 1 s, "
                  "so that entries a dead worker left, or that failed, are claimed first)")
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  cmd->add_flag("--log-content", o.log_content, "Log each alert and its result on stderr (off: counts only)")->group(group);
}

bool runs_as_worker(const TriageRedisOptions& o) {
  if (!o.url.empty() || !o.url_file.empty()) return true;
  const TriageRedisOptions d;
  if (!o.stream.empty() || !o.group.empty() || !o.consumer.empty() || !o.out_stream.empty() || !o.dead_letter.empty() ||
      o.field != d.field || o.claim_after_ms != d.claim_after_ms || o.max_in_flight != d.max_in_flight ||
      o.max_attempts != d.max_attempts || o.max_entries != d.max_entries || o.exit_when_idle_s != d.exit_when_idle_s ||
      o.log_content)
    fail_usage("the Redis Streams worker options (--stream, --group, --out-stream, ...) need --redis URL or --redis-file PATH");
  return false;
}

void run_triage_worker(const TriageRedisOptions& o, const BackendOptions& backend_options, const std::string& site_context,
                       const tasks::RuleScreen* screen,
                       const tasks::TriageOptions& triage, bool json, bool quiet) {
  workers::RedisClient redis(workers::parse_redis_url(redis_url_of(o)));
  workers::StreamWorkerConfig config;
  config.stream = o.stream;
  config.group = o.group;
  config.consumer = o.consumer.empty() ? default_consumer() : o.consumer;
  config.out_stream = o.out_stream;
  config.field = o.field;
  config.claim_after = std::chrono::milliseconds(o.claim_after_ms);
  config.max_in_flight = o.max_in_flight;
  config.dead_letter = o.dead_letter;
  config.max_attempts = o.max_attempts;
  if (config.stream.empty() || config.group.empty() || config.out_stream.empty())
    fail_usage("--redis needs --stream, --group and --out-stream");

  StopSignals signals;
  std::unique_ptr<tasks::ChatBackend> backend = make_backend(backend_options);
  backend->prepare({});
  workers::StreamWorker worker(redis, config, [&](const std::vector<workers::StreamEntry>& batch) {
    std::vector<workers::Outcome> outcomes = triage_entries(*backend, batch, o.field, site_context, screen, triage);
    if (o.log_content) log_entries(batch, outcomes);
    return outcomes;
  });
  // A stop requested while Redis is unreachable ends the reconnect loop (the entries in hand stay
  // pending, for this consumer or another to answer) instead of waiting out give_up_after.
  struct StopWhileDisconnected {};
  redis.on_retry = [&](int attempt, std::chrono::milliseconds wait, const std::string& why) {
    if (signals.received()) throw StopWhileDisconnected{};
    std::fprintf(stderr, "csq triage: Redis at %s: %s; attempt %d, next in %lld ms\n", redis.url().redacted().c_str(),
                 why.c_str(), attempt, (long long)wait.count());
  };
  std::fprintf(stderr, "csq triage: consumer '%s' of group '%s' on stream '%s' at %s; results to '%s'%s\n",
               config.consumer.c_str(), config.group.c_str(), config.stream.c_str(), redis.url().redacted().c_str(),
               config.out_stream.c_str(),
               config.dead_letter.empty() ? ""
                                          : (", dead letters to '" + config.dead_letter + "' after " +
                                             std::to_string(config.max_attempts) + " deliveries")
                                                .c_str());

  ProgressLine progress;
  auto idle_since = Clock::now();
  uint64_t handled = 0;
  std::string stopped_by;
  try {
    worker.ensure_group();
    for (;;) {
      if (const char* signal = signals.received()) {
        stopped_by = signal;
        break;
      }
      const size_t n = worker.poll_once();
      handled += n;
      const auto now = Clock::now();
      if (n > 0) idle_since = now;
      if (!quiet && progress.due())
        progress.draw("csq triage: " + counts_text(worker.counts(), redis.reconnects(), progress.seconds()));
      if (o.max_entries > 0 && handled >= o.max_entries) {
        stopped_by = "--max-entries";
        break;
      }
      if (o.exit_when_idle_s > 0 && std::chrono::duration<double>(now - idle_since).count() >= o.exit_when_idle_s) {
        stopped_by = "--exit-when-idle";
        break;
      }
    }
  } catch (const StopWhileDisconnected&) {
    stopped_by = std::string(signals.received()) + " while Redis was unreachable";
  }
  const double elapsed = progress.seconds();
  std::fprintf(stderr, "%scsq triage: stopped (%s): %s\n", progress.tty() && !quiet ? "\r\033[K" : "", stopped_by.c_str(),
               counts_text(worker.counts(), redis.reconnects(), elapsed).c_str());
  if (json) {
    const workers::WorkerCounts& c = worker.counts();
    const ojson j = {{"consumer", config.consumer}, {"stopped", stopped_by}, {"seconds", elapsed},
                     {"read", c.read}, {"claimed", c.claimed}, {"results", c.results}, {"failed", c.failed},
                     {"dead_lettered", c.dead_lettered}, {"acknowledged", c.acknowledged},
                     {"connection_losses", c.connection_losses}, {"reconnects", redis.reconnects()}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
}

}  // namespace csq::app
