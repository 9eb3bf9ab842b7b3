// csq_detect_bench — Sigma detection speed and memory over the OTRF recordings.
//
//   memory mode (default): the events are decompressed into memory once, then matched --repeat
//     times; reports events/s and MB/s for parsing alone (normalisation) and for parsing plus
//     matching, so the difference is the matcher's share.
//   stream mode (--stream): the real input path (files → gunzip → records → batches → threads →
//     ordered alerts) over the input files listed --repeat times; reports events/s and the peak
//     resident memory, which must stay flat as --repeat grows.
//
//   csq_detect_bench --rules-limit 100 --threads 1
//   csq_detect_bench --stream --repeat 10 --threads 2
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/thread_pool.h"
#include "detect/runner.h"

namespace fs = std::filesystem;
using namespace csq::detect;

namespace {

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Sigma detection speed and memory (events/s, MB/s, peak RSS)");
  std::string data = CSQ_DATA_DIR;
  std::vector<std::string> rule_dirs, events;
  int limit = 0, threads = 1, repeat = 1;
  bool stream = false, json = false;
  app.add_option("--data", data, "Shared data directory (sigma/, otrf/)");
  app.add_option("--rules", rule_dirs, "Rule files or directories (default: all SigmaHQ rules under --data)");
  app.add_option("--events", events, "Event files (default: the 20 OTRF recordings)");
  app.add_option("--rules-limit", limit, "Use only the first N rules the pipeline maps (0: all)");
  app.add_option("--threads", threads, "Matching threads");
  app.add_option("--repeat", repeat, "Times the input is matched (memory) or read (stream)");
  app.add_flag("--stream", stream, "Measure the streaming path and peak memory instead");
  app.add_flag("--json", json, "One JSON object instead of text");
  CLI11_PARSE(app, argc, argv);

  if (rule_dirs.empty())
    for (const char* d : {"rules", "rules-emerging-threats", "rules-threat-hunting"})
      rule_dirs.push_back(data + "/sigma/" + d);
  if (events.empty()) {
    for (const auto& e : fs::directory_iterator(data + "/otrf"))
      if (e.path().string().ends_with(".jsonl.gz")) events.push_back(e.path().string());
    std::sort(events.begin(), events.end());
  }
  try {
    RuleSet all;
    for (const auto& d : rule_dirs) load_rules_path(d, {}, all);
    const Pipeline pipeline = Pipeline::windows_default();
    RuleSet chosen;
    for (const auto& r : all.rules) {
      if (limit > 0 && int(chosen.rules.size()) >= limit) break;
      if (!r->correlation && !pipeline.entries_for(r->logsource).empty()) chosen.rules.push_back(r);
    }
    const Detector detector(chosen, pipeline, {});
    const double rss_rules = peak_rss_mib();

    if (stream) {
      std::vector<std::string> inputs;
      for (int i = 0; i < repeat; ++i) inputs.insert(inputs.end(), events.begin(), events.end());
      RunOptions ro;
      ro.threads = threads;
      RunStats stats;
      run_detection(detector, inputs, ro, [](Alert&&) {}, [](const InputProblem&) {}, stats);
      const double eps = double(stats.events) / stats.seconds;
      if (json)
        std::printf("{\"mode\":\"stream\",\"rules\":%zu,\"threads\":%d,\"repeat\":%d,\"events\":%llu,\"alerts\":%llu,"
                    "\"seconds\":%.3f,\"events_per_s\":%.0f,\"peak_rss_mib\":%.1f,\"rss_after_rules_mib\":%.1f}\n",
                    detector.active_rules(), threads, repeat, (unsigned long long)stats.events,
                    (unsigned long long)stats.alerts, stats.seconds, eps, peak_rss_mib(), rss_rules);
      else
        std::printf("stream  rules %zu  threads %d  repeat %d: %llu events, %llu alerts, %.2f s, %.0f events/s, "
                    "peak RSS %.1f MiB (%.1f MiB after loading the rules)\n",
                    detector.active_rules(), threads, repeat, (unsigned long long)stats.events,
                    (unsigned long long)stats.alerts, stats.seconds, eps, peak_rss_mib(), rss_rules);
      return 0;
    }

    // Memory mode: records decompressed once.
    std::vector<Record> records;
    size_t bytes = 0;
    for (const auto& path : events) {
      RecordReader reader(ByteSource::open(path));
      Record rec;
      std::string problem;
      RecordReader::Status st;
      while ((st = reader.next(rec, problem)) != RecordReader::Status::End)
        if (st == RecordReader::Status::Ok) {
          bytes += rec.text.size();
          records.push_back(rec);
        }
    }
    // Parsing alone (the normaliser), then parsing and matching, on one thread each pass.
    Normalizer normalizer;
    NormalizedEvent ev;
    auto t0 = std::chrono::steady_clock::now();
    size_t fields = 0;
    for (int r = 0; r < repeat; ++r)
      for (const Record& rec : records) {
        normalizer.parse(rec.text, ev);
        fields += ev.fields.size();
      }
    const double parse_s = seconds_since(t0);

    std::vector<Detector::ScratchPtr> scratch;
    for (int i = 0; i < threads; ++i) scratch.push_back(detector.make_scratch());
    csq::ThreadPool pool(threads);
    std::vector<size_t> alerts(size_t(threads), 0);
    t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < repeat; ++r)
      pool.parallel_for_dynamic(int64_t(records.size()), 64, [&](int64_t begin, int64_t end, int thread) {
        std::vector<Match> out;
        for (int64_t i = begin; i < end; ++i) {
          detector.match(records[size_t(i)].text, *scratch[size_t(thread)], out);
          alerts[size_t(thread)] += out.size();
        }
      });
    const double match_s = seconds_since(t0);
    size_t total_alerts = 0;
    for (size_t a : alerts) total_alerts += a;
    const double n = double(records.size()) * repeat;
    const double mb = double(bytes) * repeat / 1e6;
    if (json)
      std::printf("{\"mode\":\"memory\",\"rules\":%zu,\"threads\":%d,\"events\":%.0f,\"mb\":%.1f,\"alerts\":%zu,"
                  "\"parse_events_per_s\":%.0f,\"parse_mb_per_s\":%.1f,\"events_per_s\":%.0f,\"mb_per_s\":%.1f,"
                  "\"parse_share\":%.3f,\"peak_rss_mib\":%.1f}\n",
                  detector.active_rules(), threads, n, mb, total_alerts, n / parse_s, mb / parse_s, n / match_s,
                  mb / match_s, threads == 1 ? parse_s / match_s : 0.0, peak_rss_mib());
    else
      std::printf("memory  rules %zu  threads %d: %.0f events (%.1f MB, %zu fields), %zu alerts\n"
                  "  parse only        %9.0f events/s  %7.1f MB/s  (1 thread)\n"
                  "  parse + match     %9.0f events/s  %7.1f MB/s  (%d thread%s)%s\n"
                  "  peak RSS %.1f MiB\n",
                  detector.active_rules(), threads, n, mb, fields, total_alerts, n / parse_s, mb / parse_s,
                  n / match_s, mb / match_s, threads, threads == 1 ? "" : "s",
                  threads == 1 ? ("; parsing is " + std::to_string(int(100 * parse_s / match_s)) + "% of the time").c_str()
                               : "",
                  peak_rss_mib());
  } catch (const csq::Error& e) {
    std::fprintf(stderr, "csq_detect_bench: %s\n", e.what());
    return int(e.code());
  }
  return 0;
}
