#include "detect/correlation.h"

#include <algorithm>
#include <unordered_map>
#include <nlohmann/json.hpp>

namespace csq::detect {

std::optional<int64_t> parse_time_ms(std::string_view d) {
  auto digits = [&](size_t at, size_t n) -> std::optional<int64_t> {
    if (at + n > d.size()) return std::nullopt;
    int64_t v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (d[i] < '0' || d[i] > '9') return std::nullopt;
      v = v * 10 + (d[i] - '0');
    }
    return v;
  };
  const auto y = digits(0, 4), mo = digits(5, 2), da = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
             s = digits(17, 2);
  if (!y || !mo || !da || !h || !mi || !s || d[4] != '-' || d[7] != '-' || (d[10] != 'T' && d[10] != ' '))
    return std::nullopt;
  int64_t ms = 0;
  if (d.size() > 20 && d[19] == '.') {
    int64_t scale = 100;
    for (size_t i = 20; i < d.size() && d[i] >= '0' && d[i] <= '9'; ++i, scale /= 10)
      if (scale > 0) ms += (d[i] - '0') * scale;
  }
  // days from civil (proleptic Gregorian)
  int64_t yy = *y - (*mo <= 2);
  const int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  const int64_t yoe = yy - era * 400;
  const int64_t doy = (153 * (*mo + (*mo > 2 ? -3 : 9)) + 2) / 5 + *da - 1;
  const int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
  return ((days * 24 + *h) * 60 + *mi) * 60000 + *s * 1000 + ms;
}

CorrelationEngine::CorrelationEngine(const std::vector<std::shared_ptr<const Rule>>& correlations,
                                     const RuleSet& rules) {
  // By id, then name: one lookup per reference (a scan per reference was rules × references).
  std::unordered_map<std::string, const Rule*> by_id, by_name;
  for (const auto& r : rules.rules) {
    by_id.emplace(r->id, r.get());
    if (!r->name.empty()) by_name.emplace(r->name, r.get());
  }
  auto find = [&](const std::string& ref) -> const Rule* {
    if (const auto it = by_id.find(ref); it != by_id.end()) return it->second;
    if (const auto it = by_name.find(ref); it != by_name.end()) return it->second;
    return nullptr;
  };
  for (const auto& c : correlations) {
    State st;
    st.rule = c;
    std::string missing;
    for (const std::string& ref : c->correlation->rules) {
      const Rule* r = find(ref);
      if (!r) missing += (missing.empty() ? "" : ", ") + ref;
      else st.inputs.push_back(r);
    }
    if (!missing.empty()) {
      problems_.push_back({c->file, c->line, c->title, "correlation references unknown rules: " + missing});
      continue;
    }
    states_.push_back(std::move(st));
  }
  drop_cycles();
  for (size_t i = 0; i < states_.size(); ++i)
    for (size_t k = 0; k < states_[i].inputs.size(); ++k) {
      const Rule* r = states_[i].inputs[k];
      by_input_[r].push_back({i, k});
      auto it = shown_.find(r);
      const bool gen = states_[i].rule->correlation->generate;
      shown_[r] = it == shown_.end() ? gen : (it->second && gen);
    }
}

void CorrelationEngine::drop_cycles() {
  // A correlation that references itself, directly or through others, would feed its own alerts
  // back: every alert fires it again, multiplied by each reference, up to the chain depth.
  std::unordered_map<const Rule*, size_t> state_of;
  for (size_t i = 0; i < states_.size(); ++i) state_of[states_[i].rule.get()] = i;
  enum class Mark : uint8_t { New, Open, Done };
  std::vector<Mark> mark(states_.size(), Mark::New);
  std::vector<bool> on_cycle(states_.size(), false);
  std::vector<size_t> path;
  // Depth-first over correlation references; a reference to an open state closes a cycle.
  std::function<void(size_t)> visit = [&](size_t i) {
    mark[i] = Mark::Open;
    path.push_back(i);
    for (const Rule* input : states_[i].inputs) {
      const auto it = state_of.find(input);
      if (it == state_of.end()) continue;
      if (mark[it->second] == Mark::Open) {
        for (auto p = path.rbegin(); p != path.rend(); ++p) {
          on_cycle[*p] = true;
          if (*p == it->second) break;
        }
      } else if (mark[it->second] == Mark::New) {
        visit(it->second);
      }
    }
    path.pop_back();
    mark[i] = Mark::Done;
  };
  for (size_t i = 0; i < states_.size(); ++i)
    if (mark[i] == Mark::New) visit(i);
  std::vector<State> kept;
  for (size_t i = 0; i < states_.size(); ++i) {
    const Rule& r = *states_[i].rule;
    if (on_cycle[i]) problems_.push_back({r.file, r.line, r.title, "correlation chain references itself"});
    else kept.push_back(std::move(states_[i]));
  }
  states_ = std::move(kept);
}

bool CorrelationEngine::shows(const Rule* rule) const {
  const auto it = shown_.find(rule);
  return it == shown_.end() || it->second;
}

size_t CorrelationEngine::open_groups() const {
  size_t n = 0;
  for (const State& st : states_) n += st.groups.size();
  return n;
}

void CorrelationEngine::feed(const Alert& alert, const std::function<void(Alert&&)>& on_alert) {
  if (by_input_.find(alert.rule) == by_input_.end()) return;
  // The event's fields by Sigma name, for group-by and value_count fields.
  std::map<std::string, std::string> fields;
  std::string text = alert.event;
  text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  NormalizedEvent ev;
  if (!normalizer_.parse(text, ev))
    for (const Field& f : ev.fields)
      if (!f.is_null) fields.emplace(std::string(f.name), std::string(f.value));
  for (const auto& [k, v] : alert.fields) fields.emplace(k, v);
  dispatch(alert, fields, on_alert, 0);
}

void CorrelationEngine::dispatch(const Alert& alert, const std::map<std::string, std::string>& fields,
                                 const std::function<void(Alert&&)>& on_alert, int depth) {
  const auto it = by_input_.find(alert.rule);
  if (it == by_input_.end() || depth > 8) return;
  const auto t = parse_time_ms(alert.time);
  if (!t) return;  // an event without a readable time stamp cannot be placed in a window
  for (const auto& [state, input] : it->second) feed_one(states_[state], input, alert, *t, fields, on_alert, depth);
}

void CorrelationEngine::feed_one(State& st, size_t input_index, const Alert& alert, int64_t t,
                                 const std::map<std::string, std::string>& fields,
                                 const std::function<void(Alert&&)>& on_alert, int depth) {
  const Correlation& c = *st.rule->correlation;
  const int64_t span = c.timespan_ms;
  std::string key;
  std::map<std::string, std::string> group_values;
  for (const std::string& g : c.group_by) {
    const auto f = fields.find(g);
    const std::string v = f == fields.end() ? std::string() : f->second;
    key += v;
    key += '\x1f';
    group_values[g] = v;
  }
  st.watermark = std::max(st.watermark, t);
  Group& g = st.groups[key];
  g.last = std::max(g.last, t);
  const size_t n_inputs = st.inputs.size();
  if (g.last_seen.empty()) {
    g.last_seen.assign(n_inputs, -1);
    g.chain.assign(n_inputs + 1, -1);
  }
  // Drop what fell out of the window.
  while (!g.events.empty() && g.events.front().first < t - span) {
    if (c.type == CorrelationType::ValueCount) {
      auto v = g.values.find(g.events.front().second);
      if (v != g.values.end() && --v->second == 0) g.values.erase(v);
    }
    g.events.pop_front();
  }

  int64_t count = 0;
  switch (c.type) {
    case CorrelationType::EventCount:
      g.events.push_back({t, std::string()});
      count = int64_t(g.events.size());
      break;
    case CorrelationType::ValueCount: {
      const auto f = fields.find(c.field);
      if (f == fields.end()) return;  // no value to count
      g.events.push_back({t, f->second});
      ++g.values[f->second];
      count = int64_t(g.values.size());
      break;
    }
    case CorrelationType::Temporal: {
      g.last_seen[input_index] = t;
      for (int64_t seen : g.last_seen) count += seen >= 0 && seen >= t - span;
      break;
    }
    case CorrelationType::TemporalOrdered: {
      // chain[k]: latest start time of a run of the first k rules in order, still in the window.
      for (size_t k = 0; k <= n_inputs; ++k)
        if (g.chain[k] >= 0 && g.chain[k] < t - span) g.chain[k] = -1;
      if (input_index == 0) {
        g.chain[1] = std::max(g.chain[1], t);
      } else if (g.chain[input_index] >= 0) {
        g.chain[input_index + 1] = std::max(g.chain[input_index + 1], g.chain[input_index]);
      }
      for (size_t k = n_inputs; k > 0; --k)
        if (g.chain[k] >= 0) {
          count = int64_t(k);
          break;
        }
      break;
    }
  }

  if (c.count_matches(count)) {
    Alert a;
    a.rule = st.rule.get();
    a.source = alert.source;
    a.record = alert.record;
    a.time = alert.time;
    for (const auto& [k, v] : group_values) a.fields.emplace_back(k, v);
    a.fields.emplace_back("count", std::to_string(count));
    nlohmann::ordered_json summary;
    static const char* kTypes[] = {"event_count", "value_count", "temporal", "temporal_ordered"};
    summary["correlation"] = kTypes[int(c.type)];
    summary["group"] = group_values;
    summary["count"] = count;
    summary["timespan_ms"] = span;
    summary["last_rule"] = alert.rule->title;
    // The alert is based on the referenced rules' matches: the Detection Rule License 1.1 asks
    // for their authors too.
    nlohmann::ordered_json authors = nlohmann::ordered_json::array();
    for (const Rule* input : st.inputs) authors.push_back(input->author);
    summary["rule_authors"] = std::move(authors);
    a.event = summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // The window starts afresh after firing.
    g = Group{};
    g.last_seen.assign(n_inputs, -1);
    g.chain.assign(n_inputs + 1, -1);
    std::map<std::string, std::string> chained = group_values;
    const Alert& fired = a;
    on_alert(Alert(fired));
    dispatch(fired, chained, on_alert, depth + 1);
  }

  // Bounded memory: now and then drop groups whose window closed.
  if (++st.fed % 1024 == 0)
    for (auto it = st.groups.begin(); it != st.groups.end();)
      it = it->second.last < st.watermark - span ? st.groups.erase(it) : std::next(it);
}

}  // namespace csq::detect
