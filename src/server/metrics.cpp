#include "server/metrics.h"

#include <cstdio>

namespace csq::server {

void Histogram::observe(double seconds) {
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (seconds <= kBounds[i]) ++counts_[i];
  ++count_;
  sum_ += seconds;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  char line[160];
  for (size_t i = 0; i < kBounds.size(); ++i) {
    std::snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), kBounds[i], (unsigned long long)counts_[i]);
    out += line;
  }
  std::snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name.c_str(),
                (unsigned long long)count_, name.c_str(), sum_, name.c_str(), (unsigned long long)count_);
  out += line;
}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::observe_latency(double total_seconds, double first_token_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  latency_.observe(total_seconds);
  first_token_.observe(first_token_seconds);
}

std::string Metrics::render(const SchedulerStats& s) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP csq_requests_total HTTP requests by endpoint and status.\n# TYPE csq_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "csq_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  auto gauge = [&](const char* name, const char* type, const char* help, double value) {
    char line[64];
    std::snprintf(line, sizeof line, "%.6g", value);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + line + "\n";
  };
  gauge("csq_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", double(s.prompt_tokens));
  gauge("csq_prompt_tokens_cached_total", "counter", "Prompt tokens served from the prefix cache.",
        double(s.cached_prompt_tokens));
  gauge("csq_prefix_cache_hit_ratio", "gauge", "Share of prompt tokens served from the prefix cache.",
        s.prompt_tokens ? double(s.cached_prompt_tokens) / double(s.prompt_tokens) : 0.0);
  gauge("csq_generated_tokens_total", "counter", "Generated tokens.", double(s.generated_tokens));
  gauge("csq_requests_completed_total", "counter", "Generation requests completed.", double(s.completed));
  gauge("csq_queue_depth", "gauge", "Requests waiting for a sequence slot.", double(s.queue_depth));
  gauge("csq_active_sequences", "gauge", "Sequences being processed.", double(s.active));
  gauge("csq_batch_tokens", "gauge", "Tokens in the latest forward pass.", double(s.last_batch_tokens));
  gauge("csq_batch_sequences", "gauge", "Sequences in the latest forward pass.", double(s.last_batch_sequences));
  gauge("csq_forward_passes_total", "counter", "Forward passes run by the scheduler.", double(s.forward_passes));
  latency_.write(out, "csq_request_duration_seconds", "Time from request to last token.");
  first_token_.write(out, "csq_time_to_first_token_seconds", "Time from request to first token.");
  return out;
}

}  // namespace csq::server
