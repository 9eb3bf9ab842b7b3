// The resumable part of an evaluation run, shared by `csq eval run` and `csq triage eval`: an
// output directory owned by one process (a lock) and tied to one setting (a manifest), and a
// JSON Lines log of finished generations that a killed run picks up again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/progress_line.h"
#include "tasks/chat_backend.h"

namespace csq::eval {

// One finished generation: a line of the log {"index", "trial", "response", "finish",
// "prompt_tokens", "completion_tokens", "seed", "ms"}.
struct Generation {
  size_t index = 0;
  int trial = 0;
  std::string response;
  std::string finish;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  uint64_t seed = 0;
  double ms = 0;
};

using GenerationKey = std::pair<int, size_t>;  // (trial, index)

// Ties `owner` (an output directory or file) to one setting: writes `manifest` to `path` the
// first time; later, every key of `manifest` must hold the same value there, else a Usage error
// names the key that differs (an unreadable manifest is a BadInput error).
void require_manifest(const std::string& path, const nlohmann::ordered_json& manifest, const std::string& owner);

// Holds DIR's lock for its lifetime and makes sure DIR belongs to this setting: the first run
// writes DIR/manifest.json; a later one must present the same value for every key of
// `manifest`, else a Usage error says which key differs. `tool` names the command in errors.
class RunDirectory {
 public:
  RunDirectory(const std::string& dir, const nlohmann::ordered_json& manifest, const std::string& tool);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

 private:
  int lock_fd_ = -1;
};

// The log at `path` (none yet: empty). A run killed mid-write leaves at most one torn last line:
// it is cut off (the generation is redone). A bad line elsewhere, an index >= item_count or a
// repeated (trial, index) is a BadInput error naming the line.
std::map<GenerationKey, Generation> read_generation_log(const std::string& path, size_t item_count,
                                                        const std::string& tool);

// The run's progress line on stderr (items done of all, rates, ETA).
class Progress {
 public:
  Progress(bool enabled, std::string name, size_t total, size_t resumed);
  void update(size_t computed, int64_t tokens, bool final = false);

 private:
  bool enabled_;
  ProgressLine line_;
  std::string name_;
  size_t total_, resumed_;
};

struct GenerationTotals {
  size_t computed = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::map<std::string, size_t> finishes;
};

// generate(key) for every pending key, from `concurrency` threads; each result is appended to the
// log at `log_path` (one write and a flush per line) and stored in `records` as it finishes. The
// first error stops the run and is rethrown once the threads have stopped; what finished is kept.
GenerationTotals run_generations(const std::string& log_path, const std::vector<GenerationKey>& pending,
                                 const std::function<Generation(const GenerationKey&)>& generate, int concurrency,
                                 std::map<GenerationKey, Generation>& records, Progress& progress);

// "h:mm:ss".
std::string clock_text(double seconds);

// One request answered by the backend, as the resume log records it.
Generation complete_generation(tasks::ChatBackend& backend, const tasks::ChatRequest& request);

}  // namespace csq::eval
