// csq evtx — Windows event logs (.evtx) as JSON, the layout `evtx_dump -o json` writes, with
// damaged chunks and records reported on stderr instead of ending the dump.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "detect/evtx.h"

namespace csq::app {
namespace {

struct EvtxOptions {
  std::vector<std::string> files;
  bool jsonl = false;
  bool json = false;
};

void run_evtx(const EvtxOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  nlohmann::ordered_json summary = {{"files", nlohmann::ordered_json::array()}};
  uint64_t chunks = 0, records = 0, problems = 0, bytes = 0;
  std::string first_error;
  for (const std::string& path : o.files) {
    nlohmann::ordered_json file = {{"path", path}};
    nlohmann::ordered_json file_problems = nlohmann::ordered_json::array();
    uint64_t seen = 0;
    auto last_progress = std::chrono::steady_clock::now();
    try {
      const detect::EvtxStats stats = detect::read_evtx(
          path,
          [&](detect::EvtxRecord&& r) {
            // A progress line on long files (every 2 s), not a line per record.
            if (!o.json && (++seen & 1023) == 0 && std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(2)) {
              last_progress = std::chrono::steady_clock::now();
              std::fprintf(stderr, "csq evtx: %s: %llu records so far\n", path.c_str(), (unsigned long long)seen);
            }
            if (o.jsonl) {
              std::printf("%s\n", r.event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
            } else {
              std::printf("Record %llu\n%s\n", (unsigned long long)r.record_id,
                          r.event.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
            }
          },
          [&](const detect::EvtxProblem& p) {
            if (!o.json) std::fprintf(stderr, "%s: %s (file offset %llu)\n", path.c_str(), p.reason.c_str(), (unsigned long long)p.offset);
            file_problems.push_back({{"chunk", p.chunk}, {"record_id", p.record_id}, {"offset", p.offset}, {"reason", p.reason}});
          });
      std::fflush(stdout);
      chunks += stats.chunks;
      records += stats.records;
      problems += stats.problems;
      std::error_code ec;
      bytes += std::filesystem::file_size(path, ec);
      file["chunks"] = stats.chunks;
      file["records"] = stats.records;
      file["problems"] = file_problems;
      if (!o.json)
        std::fprintf(stderr, "csq evtx: %s: %llu chunks, %llu records, %llu problems\n", path.c_str(),
                     (unsigned long long)stats.chunks, (unsigned long long)stats.records, (unsigned long long)stats.problems);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::BadInput) throw;
      if (first_error.empty()) first_error = e.what();
      file["error"] = e.what();
      if (!o.json) std::fprintf(stderr, "csq evtx: %s\n", e.what());
    }
    summary["files"].push_back(std::move(file));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary["chunks"] = chunks;
  summary["records"] = records;
  summary["problems"] = problems;
  summary["seconds"] = seconds;
  if (o.json) {
    std::fprintf(stderr, "%s\n", summary.dump(2).c_str());
  } else if (o.files.size() > 1) {
    std::fprintf(stderr, "csq evtx: %zu files, %llu chunks, %llu records, %llu problems, %.0f records/s, %.1f MB/s\n",
                 o.files.size(), (unsigned long long)chunks, (unsigned long long)records, (unsigned long long)problems,
                 seconds > 0 ? double(records) / seconds : 0.0, seconds > 0 ? double(bytes) / 1e6 / seconds : 0.0);
  }
  if (!first_error.empty()) fail_input(first_error);
}

const RegisterCommand reg([](CLI::App& root) {
  auto o = std::make_shared<EvtxOptions>();
  CLI::App* cmd = root.add_subcommand(
      "evtx",
      "Dump Windows event logs (.evtx) as JSON in evtx_dump's layout; damaged chunks and records are "
      "reported on stderr and skipped");
  cmd->add_option("files", o->files, "EVTX files")->required();
  cmd->add_flag("--jsonl", o->jsonl, "One event per line (JSON Lines) instead of 'Record N' and indented JSON");
  cmd->add_flag("--json", o->json, "The summary (per file: chunks, records, problems with reasons) as JSON on stderr");
  cmd->callback([o] { run_evtx(*o); });
});

}  // namespace
}  // namespace csq::app
