#include "eval/resumable.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "io/mapped_file.h"

namespace csq::eval {
namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!out || !(out << text)) fail_runtime(path + ": cannot write");
}

}  // namespace

void require_manifest(const std::string& path, const ojson& manifest, const std::string& owner) {
  if (!fs::exists(path)) {
    write_file(path, manifest.dump(2) + "\n");
    return;
  }
  const auto old = ojson::parse(io::read_text_file(path), nullptr, false);
  if (old.is_discarded() || !old.is_object()) fail_input(path + ": not valid JSON");
  for (const auto& [key, value] : manifest.items()) {
    if (old.contains(key) && old[key] == value) continue;
    fail_usage(owner + " holds a run with a different " + key + " (" +
               (old.contains(key) ? old[key].dump() : std::string("none")) + ", this run: " + value.dump() +
               "); its answers cannot be reused: use another --out");
  }
}

RunDirectory::RunDirectory(const std::string& dir, const ojson& manifest, const std::string& tool) {
  if (dir.empty()) fail_usage("no output directory");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail_runtime(dir + ": cannot create directory (" + ec.message() + ")");
  // Two runs appending to one log would compute items twice; the lock goes with the process.
  const std::string lock_path = dir + "/.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) fail_runtime(lock_path + ": cannot create");
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    fail_usage("another " + tool + " is writing " + dir);
  }
  try {
    const std::string path = dir + "/manifest.json";
    if (!fs::exists(path) && fs::exists(dir + "/responses.jsonl"))
      fail_usage(dir + " holds responses.jsonl but no manifest.json; use another --out");
    require_manifest(path, manifest, dir);
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

RunDirectory::~RunDirectory() { ::close(lock_fd_); }

std::map<GenerationKey, Generation> read_generation_log(const std::string& path, size_t item_count,
                                                        const std::string& tool) {
  std::map<GenerationKey, Generation> out;
  if (!fs::exists(path)) return out;
  const std::string text = io::read_text_file(path);
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
      fail_input(path + ":" + std::to_string(line_no) + ": not a line of " + tool +
                 " (expected {\"index\", \"trial\", \"response\", ...})");
    }
    Generation g;
    g.index = j["index"].get<size_t>();
    g.trial = j["trial"].get<int>();
    if (g.index >= item_count)
      fail_input(path + ":" + std::to_string(line_no) + ": index " + std::to_string(g.index) +
                 " is outside the data (" + std::to_string(item_count) + " items)");
    g.response = j["response"].get<std::string>();
    g.finish = j.value("finish", std::string());
    g.prompt_tokens = j.value("prompt_tokens", int64_t(0));
    g.completion_tokens = j.value("completion_tokens", int64_t(0));
    g.seed = j.value("seed", uint64_t(0));
    g.ms = j.value("ms", 0.0);
    if (!out.emplace(GenerationKey{g.trial, g.index}, std::move(g)).second)
      fail_input(path + ":" + std::to_string(line_no) + ": index " + std::to_string(j["index"].get<size_t>()) +
                 " of trial " + std::to_string(j["trial"].get<int>()) + " appears twice");
    good_end = nl + 1;
    pos = nl + 1;
  }
  if (good_end < text.size()) {
    std::fprintf(stderr, "%s: %s: dropping an incomplete last line (an interrupted write)\n", tool.c_str(),
                 path.c_str());
    fs::resize_file(path, good_end);
  }
  return out;
}

std::string clock_text(double seconds) {
  const long s = long(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

Progress::Progress(bool enabled, std::string name, size_t total, size_t resumed)
    : enabled_(enabled), name_(std::move(name)), total_(total), resumed_(resumed) {}

void Progress::update(size_t computed, int64_t tokens, bool final) {
  if (!enabled_ || !line_.due(final)) return;
  const double elapsed = line_.seconds();
  const size_t done = resumed_ + computed, left = total_ - done;
  const double rate = elapsed > 0 ? double(computed) / elapsed : 0;
  char text[256];
  std::snprintf(text, sizeof text, "%s: %zu/%zu done (%zu resumed), %.2f items/s, %.1f tok/s, %s %s", name_.c_str(),
                done, total_, resumed_, rate, elapsed > 0 ? double(tokens) / elapsed : 0.0, final ? "elapsed" : "ETA",
                final ? clock_text(elapsed).c_str() : (rate > 0 ? clock_text(double(left) / rate).c_str() : "?"));
  line_.draw(text, final);
}

GenerationTotals run_generations(const std::string& log_path, const std::vector<GenerationKey>& pending,
                                 const std::function<Generation(const GenerationKey&)>& generate, int concurrency,
                                 std::map<GenerationKey, Generation>& records, Progress& progress) {
  GenerationTotals totals;
  if (pending.empty()) return totals;
  std::FILE* log = std::fopen(log_path.c_str(), "ab");
  if (!log) fail_runtime(log_path + ": cannot append");
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards the log, records, totals and first_error
  std::exception_ptr first_error;
  auto worker = [&] {
    for (size_t k; !failed && (k = next++) < pending.size();) {
      try {
        Generation g = generate(pending[k]);
        g.trial = pending[k].first;
        g.index = pending[k].second;
        const ojson line = {{"index", g.index},
                            {"trial", g.trial},
                            {"response", g.response},
                            {"finish", g.finish},
                            {"prompt_tokens", g.prompt_tokens},
                            {"completion_tokens", g.completion_tokens},
                            {"seed", g.seed},
                            {"ms", std::round(g.ms * 10) / 10}};
        const std::string text = line.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
        std::lock_guard<std::mutex> lock(mutex);
        // One write per line and a flush, so a killed run leaves at most one torn line.
        if (std::fwrite(text.data(), 1, text.size(), log) != text.size() || std::fflush(log) != 0)
          fail_runtime(log_path + ": cannot append");
        ++totals.computed;
        totals.prompt_tokens += g.prompt_tokens;
        totals.completion_tokens += g.completion_tokens;
        ++totals.finishes[g.finish];
        records[pending[k]] = std::move(g);
        progress.update(totals.computed, totals.completion_tokens);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t n_threads = std::min(pending.size(), size_t(std::max(1, concurrency)));
  for (size_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  std::fclose(log);
  progress.update(totals.computed, totals.completion_tokens, true);
  if (first_error) std::rethrow_exception(first_error);
  return totals;
}

Generation complete_generation(tasks::ChatBackend& backend, const tasks::ChatRequest& request) {
  const tasks::ChatResult res = backend.complete(request);
  Generation g;
  g.response = res.text();
  g.finish = res.finish;
  g.prompt_tokens = res.prompt_tokens;
  g.completion_tokens = res.completion_tokens;
  g.seed = request.sampling.seed;
  g.ms = res.ms;
  return g;
}

}  // namespace csq::eval
