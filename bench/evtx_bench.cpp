// EVTX reading speed: records/s and MB/s over a set of .evtx files held in memory (disk I/O
// excluded), decoding into evtx_dump's JSON objects, and the same plus writing them as JSON text.
// Usage: csq_evtx_bench [--repeat N] [FILE|DIR ...]   (default: the SigmaHQ regression samples)
#include <algorithm>
#include <chrono>
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
  auto pass = [&](bool serialize, uint64_t& records, uint64_t& problems) {
    records = problems = 0;
    size_t text = 0;
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
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::printf("%zu files, %.1f MB\n", files.size(), double(bytes) / 1e6);
  for (bool serialize : {false, true}) {
    std::vector<double> seconds;
    uint64_t records = 0, problems = 0;
    for (int i = 0; i < repeat; ++i) seconds.push_back(pass(serialize, records, problems));
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    std::printf("%-28s %llu records, %llu problems: %.0f records/s, %.1f MB/s (median of %d, %.4f s)\n",
                serialize ? "decode + JSON text" : "decode to JSON objects", (unsigned long long)records,
                (unsigned long long)problems, double(records) / median, double(bytes) / 1e6 / median, repeat, median);
  }
  return 0;
}
