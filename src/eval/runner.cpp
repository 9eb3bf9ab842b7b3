#include "eval/runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "eval/benchmarks.h"
#include "eval/protocol.h"
#include "eval/report.h"
#include "eval/scoring.h"

namespace csq::eval {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Record {
  size_t index = 0;
  int trial = 0;
  std::string response;
  std::string finish;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

using Key = std::pair<int, size_t>;  // (trial, index)

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_runtime(path + ": cannot read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!out || !(out << text)) fail_runtime(path + ": cannot write");
}

// The resume log. A run killed mid-write leaves at most one torn last line: it is cut off (the
// generation is redone). A bad line anywhere else means the file is not ours.
std::map<Key, Record> read_log(const std::string& path, size_t item_count) {
  std::map<Key, Record> out;
  if (!fs::exists(path)) return out;
  const std::string text = read_all(path);
  size_t pos = 0, line_no = 0, good_end = 0;
  while (pos < text.size()) {
    ++line_no;
    const size_t nl = text.find('\n', pos);
    const bool last = nl == std::string::npos || nl + 1 == text.size();
    const std::string line = text.substr(pos, (nl == std::string::npos ? text.size() : nl) - pos);
    const auto j = nlohmann::json::parse(line, nullptr, false);
    const bool ok = nl != std::string::npos && !j.is_discarded() && j.is_object() && j.contains("index") &&
                    j["index"].is_number_unsigned() && j.contains("trial") && j["trial"].is_number_unsigned() &&
                    j.contains("response") && j["response"].is_string();
    if (!ok) {
      if (last) break;
      fail_input(path + ":" + std::to_string(line_no) + ": not a line of csq eval run (expected {\"index\", \"trial\", "
                 "\"response\", ...})");
    }
    Record r;
    r.index = j["index"].get<size_t>();
    r.trial = j["trial"].get<int>();
    if (r.index >= item_count)
      fail_input(path + ":" + std::to_string(line_no) + ": index " + std::to_string(r.index) +
                 " is outside the benchmark (" + std::to_string(item_count) + " items)");
    r.response = j["response"].get<std::string>();
    r.finish = j.value("finish", std::string());
    r.prompt_tokens = j.value("prompt_tokens", int64_t(0));
    r.completion_tokens = j.value("completion_tokens", int64_t(0));
    if (!out.emplace(Key{r.trial, r.index}, std::move(r)).second)
      fail_input(path + ":" + std::to_string(line_no) + ": index " + std::to_string(j["index"].get<size_t>()) +
                 " of trial " + std::to_string(j["trial"].get<int>()) + " appears twice");
    good_end = nl + 1;
    pos = nl + 1;
  }
  if (good_end < text.size()) {
    std::fprintf(stderr, "csq eval run: %s: dropping an incomplete last line (an interrupted write)\n", path.c_str());
    fs::resize_file(path, good_end);
  }
  return out;
}

// The protocol as run: the first K trials, and max new tokens overridden for smoke runs (said in
// the description, so report.md's protocol table shows it).
Protocol effective_protocol(const RunConfig& c) {
  Protocol p = protocol_by_name(c.protocol);
  if (c.trials < 0 || c.trials > p.trials)
    fail_usage("--trials " + std::to_string(c.trials) + ": protocol " + p.name + " has " + std::to_string(p.trials) +
               " trials (seeds fixed by the protocol)");
  if (c.trials > 0) {
    p.trials = c.trials;
    p.seeds.resize(size_t(c.trials));
  }
  if (c.max_tokens < 0) fail_usage("--max-tokens must be positive");
  if (c.max_tokens > 0 && c.max_tokens != p.max_new_tokens) {
    p.description += " [max_new_tokens overridden to " + std::to_string(c.max_tokens) + " from " +
                     std::to_string(p.max_new_tokens) + ": not the published setting]";
    p.max_new_tokens = int(c.max_tokens);
  }
  return p;
}

// What must match for answers to be reusable: the benchmark, every protocol setting but the
// number of trials (trial t always uses seed t of the protocol), and who answers.
ojson manifest_of(const std::string& benchmark, const Protocol& p, const tasks::ChatBackend& backend) {
  ojson settings = p.to_json();
  settings.erase("trials");
  settings.erase("seeds");
  return {{"benchmark", benchmark}, {"protocol", settings}, {"backend", backend.identity()}};
}

void check_or_write_manifest(const std::string& dir, const ojson& manifest) {
  const std::string path = dir + "/manifest.json";
  if (!fs::exists(path)) {
    if (fs::exists(dir + "/responses.jsonl"))
      fail_usage(dir + " holds responses.jsonl but no manifest.json; use another --out");
    write_file(path, manifest.dump(2) + "\n");
    return;
  }
  const auto old = ojson::parse(read_all(path), nullptr, false);
  if (old.is_discarded() || !old.is_object()) fail_input(path + ": not valid JSON");
  for (const char* key : {"benchmark", "protocol", "backend"}) {
    if (old.contains(key) && old[key] == manifest[key]) continue;
    fail_usage(dir + " holds a run with a different " + std::string(key) + " (" +
               (old.contains(key) ? old[key].dump() : std::string("none")) + ", this run: " + manifest[key].dump() +
               "); its answers cannot be reused: use another --out");
  }
}

std::string clock_text(double seconds) {
  const long s = long(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

// The progress line: redrawn in place on a terminal, a line every 10 s otherwise.
class Progress {
 public:
  Progress(bool enabled, std::string name, size_t total, size_t resumed)
      : enabled_(enabled), tty_(isatty(2)), name_(std::move(name)), total_(total), resumed_(resumed) {}

  void update(size_t computed, int64_t tokens, bool final = false) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    if (!final && now - last_ < (tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000))) return;
    last_ = now;
    const size_t done = resumed_ + computed, left = total_ - done;
    const double rate = elapsed > 0 ? double(computed) / elapsed : 0;
    std::fprintf(stderr, "%s%s: %zu/%zu done (%zu resumed), %.2f items/s, %.1f tok/s, %s %s%s", tty_ ? "\r" : "",
                 name_.c_str(), done, total_, resumed_, rate, elapsed > 0 ? double(tokens) / elapsed : 0.0,
                 final ? "elapsed" : "ETA", final ? clock_text(elapsed).c_str()
                                              : (rate > 0 ? clock_text(double(left) / rate).c_str() : "?"),
                 tty_ ? (final ? "\033[K\n" : "\033[K") : "\n");
  }

 private:
  bool enabled_, tty_;
  std::string name_;
  size_t total_, resumed_;
  Clock::time_point start_ = Clock::now(), last_{};
};

std::string fmt(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

RunOutcome run_evaluation(const RunConfig& c, tasks::ChatBackend& backend) {
  const Protocol protocol = effective_protocol(c);
  Benchmark bench = load_benchmark(c.benchmark, c.data_dir);
  const size_t full_size = bench.items.size();
  if (c.limit > 0 && c.limit < bench.items.size()) bench.items.resize(c.limit);
  if (c.out_dir.empty()) fail_usage("no output directory");
  std::error_code ec;
  fs::create_directories(c.out_dir, ec);
  if (ec) fail_runtime(c.out_dir + ": cannot create directory (" + ec.message() + ")");
  // Two runs appending to one log would compute items twice; the lock goes with the process.
  const std::string lock_path = c.out_dir + "/.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) fail_runtime(lock_path + ": cannot create");
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    fail_usage("another csq eval run is writing " + c.out_dir);
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock_fd};
  check_or_write_manifest(c.out_dir, manifest_of(bench.name, protocol, backend));

  const std::string log_path = c.out_dir + "/responses.jsonl";
  std::map<Key, Record> records = read_log(log_path, full_size);

  // Every item × trial of this run; those already in the log are not generated again.
  std::vector<Key> pending;
  size_t resumed = 0;
  for (int t = 0; t < protocol.trials; ++t)
    for (size_t i = 0; i < bench.items.size(); ++i) {
      if (records.count({t, i})) ++resumed;
      else pending.push_back({t, i});
    }
  std::vector<tasks::ChatRequest> requests;
  requests.reserve(pending.size());
  for (const auto& [trial, index] : pending) {
    tasks::ChatRequest r;
    r.label = bench.name + " item " + std::to_string(index) + " trial " + std::to_string(trial);
    r.messages = ojson::array();
    if (!protocol.system_prompt.empty()) r.messages.push_back({{"role", "system"}, {"content", protocol.system_prompt}});
    r.messages.push_back({{"role", "user"}, {"content", build_prompt(protocol, bench, bench.items[index])}});
    r.sampling.temperature = float(protocol.temperature);
    r.sampling.top_p = float(protocol.top_p);
    r.sampling.seed = protocol.seeds.at(size_t(trial));
    r.max_tokens = protocol.max_new_tokens;
    requests.push_back(std::move(r));
  }

  const auto started = Clock::now();
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards the log, the counters and first_error
  std::exception_ptr first_error;
  size_t computed = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::map<std::string, size_t> finishes;
  Progress progress(c.progress, "csq eval run " + bench.name + "/" + protocol.name,
                    bench.items.size() * size_t(protocol.trials), resumed);
  if (!requests.empty()) {
    backend.prepare(requests);
    std::FILE* log = std::fopen(log_path.c_str(), "ab");
    if (!log) fail_runtime(log_path + ": cannot append");
    auto worker = [&] {
      for (size_t k; !failed && (k = next++) < requests.size();) {
        try {
          const tasks::ChatResult res = backend.complete(requests[k]);
          ojson line = {{"index", pending[k].second},
                        {"trial", pending[k].first},
                        {"response", res.text()},
                        {"finish", res.finish},
                        {"prompt_tokens", res.prompt_tokens},
                        {"completion_tokens", res.completion_tokens},
                        {"seed", requests[k].sampling.seed},
                        {"ms", std::round(res.ms * 10) / 10}};
          const std::string text = line.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
          std::lock_guard<std::mutex> lock(mutex);
          // One write per line and a flush, so a killed run leaves at most one torn line.
          if (std::fwrite(text.data(), 1, text.size(), log) != text.size() || std::fflush(log) != 0)
            fail_runtime(log_path + ": cannot append");
          Record r{pending[k].second, pending[k].first, res.text(), res.finish, res.prompt_tokens, res.completion_tokens};
          records[pending[k]] = std::move(r);
          ++computed;
          prompt_tokens += res.prompt_tokens;
          completion_tokens += res.completion_tokens;
          ++finishes[res.finish];
          progress.update(computed, completion_tokens);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!first_error) first_error = std::current_exception();
          failed = true;
        }
      }
    };
    std::vector<std::thread> threads;
    const size_t n_threads = std::min(requests.size(), size_t(std::max(1, backend.concurrency())));
    for (size_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    std::fclose(log);
    progress.update(computed, completion_tokens, true);
    if (first_error) std::rethrow_exception(first_error);
  }
  const double wall_s = std::chrono::duration<double>(Clock::now() - started).count();

  std::vector<Response> responses;
  for (const auto& [key, r] : records)
    if (key.first < protocol.trials && key.second < bench.items.size())
      responses.push_back({r.index, r.trial, r.response});
  const ScoreResult result = score_responses(bench, protocol, responses);

  RunOutcome outcome;
  outcome.computed = computed;
  outcome.resumed = resumed;
  ojson summary = summary_json(result);
  fs::path dir = fs::path(c.out_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  summary["label"] = c.label.empty() ? dir.filename().string() : c.label;
  ojson run;
  run["backend"] = backend.identity();
  run["settings"] = backend.settings();
  ojson overrides = ojson::object();
  if (c.trials > 0) overrides["trials"] = c.trials;
  if (c.max_tokens > 0) overrides["max_new_tokens"] = c.max_tokens;
  if (c.limit > 0) overrides["limit"] = c.limit;
  run["overrides"] = overrides;
  run["items"] = bench.items.size();
  run["computed"] = computed;
  run["resumed"] = resumed;
  run["wall_s"] = wall_s;
  run["prompt_tokens"] = prompt_tokens;
  run["completion_tokens"] = completion_tokens;
  run["tokens_per_s"] = wall_s > 0 ? double(completion_tokens) / wall_s : 0.0;
  run["items_per_s"] = wall_s > 0 ? double(computed) / wall_s : 0.0;
  run["finish_reasons"] = finishes;
  summary["run"] = run;
  outcome.summary = summary;

  write_items_jsonl(c.out_dir + "/items.jsonl", bench, result);
  write_file(c.out_dir + "/summary.json", summary.dump(2) + "\n");
  write_report(c.out_dir, {summary}, "csq eval run: " + bench.name + " under " + protocol.name);
  // Throughput belongs to this run, not to the comparison tables of write_report.
  std::string md = "## Run\n\n| setting | value |\n|---|---|\n";
  md += "| backend | " + run["backend"].dump() + " |\n";
  md += "| settings | " + run["settings"].dump() + " |\n";
  md += "| overrides | " + (overrides.empty() ? std::string("none") : overrides.dump()) + " |\n";
  md += "| generations | " + std::to_string(computed) + " computed, " + std::to_string(resumed) + " resumed |\n";
  md += "| wall time | " + fmt(wall_s, 1) + " s |\n";
  md += "| tokens | " + std::to_string(prompt_tokens) + " prompt, " + std::to_string(completion_tokens) +
        " generated |\n";
  md += "| throughput | " + fmt(run["tokens_per_s"].get<double>(), 1) + " generated tokens/s, " +
        fmt(run["items_per_s"].get<double>(), 2) + " items/s |\n";
  std::ofstream(c.out_dir + "/report.md", std::ios::app) << "\n" << md;
  return outcome;
}

}  // namespace csq::eval
