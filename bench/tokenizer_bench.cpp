// Tokenizer throughput on CTI-Bench prompts: one thread, tokenization only (no loading, no
// I/O in the timed part). Reports the median of several passes over every Prompt field.
//
//   csq_tokenizer_bench [DATA_DIR] [--model PATH] [--runs N]
//   DATA_DIR holds cti-bench/*.tsv (default: the configured shared/data).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The Prompt column of a CTI-Bench TSV (header row, tab-separated, one record per line).
std::vector<std::string> read_prompts(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) csq::fail_input(path.string() + ": cannot open");
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> header;
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, '\t');) header.push_back(cell);
  const auto col = std::find(header.begin(), header.end(), "Prompt") - header.begin();
  if (size_t(col) == header.size()) csq::fail_input(path.string() + ": no Prompt column in the header");
  std::vector<std::string> prompts;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::stringstream ls(line);
    std::string cell;
    for (ptrdiff_t i = 0; i <= col && std::getline(ls, cell, '\t'); ++i) {
      if (i == col) prompts.push_back(cell);
    }
  }
  return prompts;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU time of this thread: unlike wall time, not inflated when other processes share the cores.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = CSQ_DATA_DIR;
  std::string model = std::string(CSQ_FIXTURES_DIR) + "/hf/qwen3-tiny-vocab";
  int runs = 7;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) {
      model = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: csq_tokenizer_bench [DATA_DIR] [--model PATH] [--runs N]\n");
      return 0;
    } else {
      data = a;
    }
  }
  try {
    std::vector<std::string> prompts;
    const fs::path dir = fs::path(data) / "cti-bench";
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".tsv") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto p = read_prompts(f);
      prompts.insert(prompts.end(), p.begin(), p.end());
    }
    size_t bytes = 0;
    for (const auto& p : prompts) bytes += p.size();
    if (bytes == 0) csq::fail_input(dir.string() + ": no prompts found");

    auto t0 = Clock::now();
    const csq::Tokenizer tok = csq::load_tokenizer(model);
    const double load_s = seconds_since(t0);

    std::vector<double> times, cpu_times;
    size_t tokens = 0;
    std::vector<int32_t> ids;
    for (int r = 0; r < runs; ++r) {
      tokens = 0;
      t0 = Clock::now();
      const double cpu0 = thread_cpu_seconds();
      for (const auto& p : prompts) {
        ids.clear();
        tok.encode_append(p, ids);
        tokens += ids.size();
      }
      times.push_back(seconds_since(t0));
      cpu_times.push_back(thread_cpu_seconds() - cpu0);
    }
    std::sort(times.begin(), times.end());
    std::sort(cpu_times.begin(), cpu_times.end());
    const double median = times[times.size() / 2];
    const double cpu_median = cpu_times[cpu_times.size() / 2];
    std::printf("model %s (load %.2f s)\n", model.c_str(), load_s);
    std::printf("%zu prompts from %zu files, %.2f MB, %zu tokens\n", prompts.size(), files.size(), bytes / 1e6,
                tokens);
    std::printf("tokenize, 1 thread, median of %d: %.3f s  %.1f MB/s  %.2f M tokens/s  (min %.3f s, max %.3f s)\n",
                runs, median, bytes / 1e6 / median, tokens / 1e6 / median, times.front(), times.back());
    std::printf("thread CPU time, median: %.3f s  %.1f MB/s  %.2f M tokens/s\n", cpu_median, bytes / 1e6 / cpu_median,
                tokens / 1e6 / cpu_median);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "csq_tokenizer_bench: %s\n", e.what());
    return 2;
  }
  return 0;
}
