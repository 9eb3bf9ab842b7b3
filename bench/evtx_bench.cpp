// EVTX reading speed: records/s and MB/s over a set of .evtx files held in memory (disk I/O
// excluded), decoding into evtx_dump's JSON objects, and the same plus writing them as JSON text.
// Usage: csq_evtx_bench [--repeat N] [FILE|DIR ...]   (default: the SigmaHQ regression samples)
// Rates are given per wall-clock second and per second of this thread's CPU time (the reader is
// single-threaded; CPU time stays meaningful on a machine busy with other work).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "detect/evtx.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int repeat = 5;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else inputs.push_back(argv[i]);
  }
  if (inputs.empty()) inputs.push_back(std::string(CSQ_DATA_DIR) + "/sigma/regression_data");
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files;
  size_t bytes = 0;
  auto add = [&](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    files.emplace_back(p.string(), std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}));
    bytes += files.back().second.size();
  };
  for (const auto& input : inputs) {
    if (fs::is_directory(input)) {
      for (const auto& e : fs::recursive_directory_iterator(input))
        if (e.path().extension() == ".evtx") add(e.path());
    } else {
      add(input);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "no .evtx files found\n");
    return 2;
  }
  auto cpu_seconds = [] {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
  };
  auto pass = [&](bool serialize, uint64_t& records, uint64_t& problems, double& cpu) {
    records = problems = 0;
    size_t text = 0;
    const double cpu_start = cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    for (const auto& [name, data] : files) {
      try {
        csq::detect::read_evtx(
            std::span<const uint8_t>(data), name,
            [&](csq::detect::EvtxRecord&& r) {
              ++records;
              if (serialize) text += r.event.dump().size();
            },
            [&](const csq::detect::EvtxProblem&) { ++problems; });
      } catch (const csq::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
      }
    }
    if (text == 1) std::printf(" ");  // keeps the serialisation from being optimised away
    cpu = cpu_seconds() - cpu_start;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::printf("%zu files, %.1f MB\n", files.size(), double(bytes) / 1e6);
  for (bool serialize : {false, true}) {
    std::vector<double> seconds, cpu;
    uint64_t records = 0, problems = 0;
    for (int i = 0; i < repeat; ++i) {
      double c = 0;
      seconds.push_back(pass(serialize, records, problems, c));
      cpu.push_back(c);
    }
    std::sort(seconds.begin(), seconds.end());
    std::sort(cpu.begin(), cpu.end());
    const double wall = seconds[seconds.size() / 2], busy = cpu[cpu.size() / 2];
    std::printf("%-24s %llu records, %llu problems: wall %.0f records/s %.1f MB/s; CPU time %.0f records/s %.1f MB/s "
                "(medians of %d)\n",
                serialize ? "decode + JSON text" : "decode to JSON objects", (unsigned long long)records,
                (unsigned long long)problems, double(records) / wall, double(bytes) / 1e6 / wall, double(records) / busy,
                double(bytes) / 1e6 / busy, repeat);
  }
  return 0;
}
