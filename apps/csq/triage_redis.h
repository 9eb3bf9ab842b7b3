// csq triage --redis: a triage worker in a Redis Streams consumer group (workers/stream_worker.h
// around tasks/triage.h). docs/deploy.md describes the worker, its stream fields and its unit.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "generation_options.h"
#include "tasks/triage.h"

namespace csq::app {

struct TriageRedisOptions {
  std::string url, url_file;  // --redis URL or --redis-file PATH (the URL off the command line)
  std::string stream, group, consumer, out_stream, dead_letter;
  std::string field = "alert";
  int64_t claim_after_ms = 60000;
  int max_in_flight = 16;
  int max_attempts = 3;
  uint64_t max_entries = 0;     // 0: no limit
  double exit_when_idle_s = 0;  // 0: never
  bool log_content = false;
};

// Whether `csq triage` runs as a stream worker (--redis or --redis-file given); a usage error
// when worker options were given without either.
bool runs_as_worker(const TriageRedisOptions& o);

// Adds --redis, --redis-file, --stream, --group, --consumer, --out-stream, --field,
// --claim-after, --max-in-flight, --dead-letter, --max-attempts, --max-entries,
// --exit-when-idle and --log-content to `csq triage`.
void add_triage_redis_options(CLI::App* cmd, TriageRedisOptions& o);

// Runs the worker until SIGTERM or SIGINT (the batch in hand is finished and acknowledged), or
// until --max-entries or --exit-when-idle; then prints the counts (one JSON line on stdout with
// `json`) and returns.
// `screen` (hybrid mode, csq triage --rules; may be null) looks at each alert before the model.
void run_triage_worker(const TriageRedisOptions& o, const BackendOptions& backend, const std::string& site_context,
                       const tasks::RuleScreen* screen, const tasks::TriageOptions& triage, bool json, bool quiet);

}  // namespace csq::app
