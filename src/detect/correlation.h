// Sigma correlation rules over the stream of alerts, in the order the events arrive:
// event_count, value_count, temporal and temporal_ordered, each per group-by key within its
// timespan. State is kept per open window only: entries older than the timespan are dropped
// as time advances, and groups with nothing left are removed, so memory follows the open
// windows, not the input. A correlation may reference another correlation (chains).
//
// Firing: a correlation fires when its condition holds for a group; that group's window then
// starts afresh (one alert per burst, not one per further event).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "detect/rule.h"
#include "detect/runner.h"

namespace csq::detect {

// Milliseconds since 1970 from "YYYY-MM-DD[T ]HH:MM:SS[.fff...][Z]" (UTC assumed).
std::optional<int64_t> parse_time_ms(std::string_view text);

class CorrelationEngine {
 public:
  // `correlations` are resolved against `rules` (by id or name); those that cannot be are
  // returned by problems() and never fire.
  CorrelationEngine(const std::vector<std::shared_ptr<const Rule>>& correlations, const RuleSet& rules);

  // Whether alerts of this rule should still be shown on their own (not referenced, or every
  // referencing correlation says `generate: true`).
  bool shows(const Rule* rule) const;
  bool empty() const { return states_.empty(); }
  const std::vector<RuleProblem>& problems() const { return problems_; }

  // Feeds one alert (base rule or correlation); calls on_alert for each correlation that fires.
  void feed(const Alert& alert, const std::function<void(Alert&&)>& on_alert);

  size_t open_groups() const;  // for tests and memory checks

 private:
  struct Group {
    std::deque<std::pair<int64_t, std::string>> events;  // time, value (value_count) or rule index
    std::unordered_map<std::string, size_t> values;      // value_count: distinct values in window
    std::vector<int64_t> last_seen;                      // temporal: per rule, -1 none
    std::vector<int64_t> chain;                          // temporal_ordered: start time of prefix k+1, -1 none
    int64_t last = 0;
  };
  struct State {
    std::shared_ptr<const Rule> rule;
    std::vector<const Rule*> inputs;  // resolved references, in order
    std::unordered_map<std::string, Group> groups;
    int64_t watermark = INT64_MIN;
    uint64_t fed = 0;
  };
  void feed_one(State& st, size_t input_index, const Alert& alert, int64_t t,
                const std::map<std::string, std::string>& fields, const std::function<void(Alert&&)>& on_alert,
                int depth);
  void dispatch(const Alert& alert, const std::map<std::string, std::string>& fields,
                const std::function<void(Alert&&)>& on_alert, int depth);

  std::vector<State> states_;
  std::unordered_map<const Rule*, std::vector<std::pair<size_t, size_t>>> by_input_;  // rule → (state, input index)
  std::unordered_map<const Rule*, bool> shown_;
  void drop_cycles();

  std::vector<RuleProblem> problems_;
  Normalizer normalizer_;
};

}  // namespace csq::detect
