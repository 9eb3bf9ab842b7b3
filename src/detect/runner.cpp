#include "detect/runner.h"

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/thread_pool.h"
#include "detect/evtx.h"

namespace csq::detect {

namespace {

// One record of a batch: either read and matched, or a problem.
struct Slot {
  Record record;
  std::string problem;
  std::string time;
  std::vector<Match> matches;
};

}  // namespace

namespace {

// An input by name: a file (read from disk) or, with `memory`, bytes already held.
struct NamedInput {
  std::string name;
  std::unique_ptr<ByteSource> memory;
};

void run_inputs(const Detector& detector, std::vector<NamedInput> inputs, const RunOptions& options,
                const std::function<void(Alert&&)>& on_alert,
                const std::function<void(const InputProblem&)>& on_problem, RunStats& stats) {
  const auto start = std::chrono::steady_clock::now();
  const int threads = std::max(1, options.threads);
  std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
  std::vector<Detector::ScratchPtr> scratch;
  for (int i = 0; i < threads; ++i) scratch.push_back(detector.make_scratch());
  std::vector<Slot> slots(std::max<size_t>(1, options.batch));

  auto problem = [&](const std::string& input, uint64_t record, const std::string& reason) {
    ++stats.unparseable;
    ++stats.problems_by_reason[reason];
    on_problem({input, record, reason});
  };

  // Matches slots [0, n) on the pool and delivers their alerts and problems in order.
  auto process = [&](const std::string& input, size_t n) {
    auto work = [&](int64_t begin, int64_t end, int thread) {
      for (int64_t i = begin; i < end; ++i) {
        Slot& slot = slots[size_t(i)];
        if (!slot.problem.empty()) continue;
        if (auto why = detector.match(slot.record.text, *scratch[size_t(thread)], slot.matches, &slot.time))
          slot.problem = std::move(*why);
      }
    };
    if (pool && n > 1) pool->parallel_for_dynamic(int64_t(n), 16, work);
    else work(0, int64_t(n), 0);

    for (size_t i = 0; i < n; ++i) {
      Slot& slot = slots[i];
      if (!slot.problem.empty()) {
        problem(input, slot.record.number, slot.problem);
        continue;
      }
      ++stats.events;
      if (slot.matches.empty()) continue;
      const std::string event = minify_json(slot.record.text);
      for (Match& m : slot.matches) {
        Alert a;
        a.rule = m.rule;
        a.source = input;
        a.record = slot.record.number;
        a.time = slot.time;
        a.fields = std::move(m.fields);
        a.event = event;
        ++stats.alerts;
        ++stats.alerts_by_level[size_t(a.rule->level)];
        on_alert(std::move(a));
      }
    }
    if (options.progress) options.progress(stats);
  };

  auto run_json = [&](const std::string& input, std::unique_ptr<ByteSource> source) {
    RecordReader reader(std::move(source), options.max_record_bytes);
    // Standard input is a stream: one record per batch, so alerts follow the events at once.
    const size_t batch = input == "-" ? 1 : slots.size();
    bool more = true;
    while (more) {
      size_t n = 0;
      while (n < batch) {
        Slot& slot = slots[n];
        slot.problem.clear();
        slot.matches.clear();
        RecordReader::Status status;
        try {
          status = reader.next(slot.record, slot.problem);
        } catch (const Error&) {
          process(input, n);  // the records read before the damage are the user's too
          throw;
        }
        if (status == RecordReader::Status::End) {
          more = false;
          break;
        }
        ++n;
      }
      process(input, n);
    }
  };

  auto run_evtx = [&](const std::string& input) {
    // The EVTX reader pushes records; they fill batches as JSON text in evtx_dump's layout.
    size_t n = 0;
    read_evtx(
        input,
        [&](EvtxRecord&& rec) {
          Slot& slot = slots[n++];
          slot.problem.clear();
          slot.matches.clear();
          slot.record.text = rec.event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          slot.record.text.reserve(slot.record.text.size() + simdjson::SIMDJSON_PADDING);
          slot.record.number = rec.record_id;
          if (n == slots.size()) {
            process(input, n);
            n = 0;
          }
        },
        [&](const EvtxProblem& p) {
          problem(input, p.record_id,
                  "chunk " + std::to_string(p.chunk) + ", offset " + std::to_string(p.offset) + ": " + p.reason);
        });
    process(input, n);
  };

  for (NamedInput& input : inputs) {
    try {
      if (input.memory) run_json(input.name, std::move(input.memory));
      else if (is_evtx_file(input.name)) run_evtx(input.name);
      else run_json(input.name, ByteSource::open(input.name));
    } catch (const Error& e) {
      // An unreadable or corrupt input (a truncated .gz, a read error) ends that input, not the run.
      ++stats.failed_inputs;
      problem(input.name, 0, e.what());
    }
  }
  stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void run_detection(const Detector& detector, const std::vector<std::string>& inputs, const RunOptions& options,
                   const std::function<void(Alert&&)>& on_alert,
                   const std::function<void(const InputProblem&)>& on_problem, RunStats& stats) {
  std::vector<NamedInput> named;
  for (const std::string& path : inputs) named.push_back({path, nullptr});
  run_inputs(detector, std::move(named), options, on_alert, on_problem, stats);
}

void run_detection_on_text(const Detector& detector, std::string records, const std::string& name,
                           const RunOptions& options, const std::function<void(Alert&&)>& on_alert,
                           const std::function<void(const InputProblem&)>& on_problem, RunStats& stats) {
  std::vector<NamedInput> named;
  named.push_back({name, ByteSource::from_string(std::move(records), name)});
  run_inputs(detector, std::move(named), options, on_alert, on_problem, stats);
}

std::string alert_json(const Alert& a) {
  nlohmann::ordered_json j;
  j["time"] = a.time;
  j["rule_id"] = a.rule->id;
  j["title"] = a.rule->title;
  j["level"] = level_name(a.rule->level);
  j["status"] = status_name(a.rule->status);
  j["author"] = a.rule->author;
  j["tags"] = a.rule->tags;
  j["rule_file"] = a.rule->file;
  j["source"] = a.source;
  j["record"] = a.record;
  nlohmann::ordered_json fields = nlohmann::ordered_json::object();
  for (const auto& [name, value] : a.fields) fields[name] = value;
  j["matched"] = std::move(fields);
  // The event is spliced in as the validated, minified JSON it was read as.
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.pop_back();
  text += ",\"event\":";
  text += a.event;
  text += '}';
  return text;
}

bool is_alert_json(const nlohmann::ordered_json& record) {
  if (!record.is_object()) return false;
  for (const char* key : {"rule_id", "title", "rule_file"})
    if (const auto it = record.find(key); it == record.end() || !it->is_string()) return false;
  const auto event = record.find("event");
  return event != record.end() && event->is_object();
}

}  // namespace csq::detect
