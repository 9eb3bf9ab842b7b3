// Prometheus text exposition of the server's counters, gauges and latency histograms.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "runtime/scheduler.h"

namespace csq::server {

class Histogram {
 public:
  void observe(double seconds);
  // Appends the _bucket/_sum/_count lines of metric `name`.
  void write(std::string& out, const std::string& name, const std::string& help) const;

 private:
  static constexpr std::array<double, 12> kBounds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  std::array<uint64_t, kBounds.size()> counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status);
  void observe_latency(double total_seconds, double first_token_seconds);
  // The whole exposition, including the scheduler's live figures.
  std::string render(const SchedulerStats& stats) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram latency_;
  Histogram first_token_;
};

}  // namespace csq::server
