// csq_detect_otrf — SigmaHQ's rules over the 20 OTRF attack recordings (../shared/data/otrf):
// alerts per dataset, and whether at least one alert carries the dataset's own ATT&CK
// technique (datasets.jsonl), for all rules and for SigmaHQ's Core and Core+ packages.
//
// A tag counts for technique T1003.001 when it is attack.t1003.001 (exact) — reported — or,
// in the "family" column, any tag of the same parent technique (attack.t1003, attack.t1003.002).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "detect/runner.h"

using namespace csq::detect;

namespace {

struct Result {
  size_t alerts = 0;
  bool exact = false, family = false;
};

std::string parent(const std::string& t) { return t.substr(0, t.find('.')); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Sigma rules over the OTRF recordings: alerts and technique hits per dataset");
  std::string data = CSQ_DATA_DIR;
  bool json = false;
  app.add_option("--data", data, "Shared data directory (sigma/, otrf/)");
  app.add_flag("--json", json, "One JSON object per dataset and package");
  CLI11_PARSE(app, argc, argv);
  try {
    RuleSet rules;
    for (const char* d : {"rules", "rules-emerging-threats", "rules-threat-hunting"})
      load_rules_path(data + "/sigma/" + d, {}, rules);
    const Pipeline pipeline = Pipeline::windows_default();
    const std::pair<const char*, Package> packages[] = {
        {"all", Package::All}, {"core+", Package::CorePlus}, {"core", Package::Core}};

    std::ifstream in(data + "/otrf/datasets.jsonl");
    if (!in) throw csq::Error(csq::ErrorCode::BadInput, data + "/otrf/datasets.jsonl: cannot open");
    std::vector<nlohmann::json> datasets;
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) datasets.push_back(nlohmann::json::parse(line));

    if (!json) std::printf("%-64s %7s | %-17s | %-17s | %-17s\n", "dataset (techniques)", "events", "all: alerts T/F",
                           "core+: alerts T/F", "core: alerts T/F");
    std::map<std::string, std::array<size_t, 3>> totals;  // package → alerts, exact hits, family hits
    for (const auto& ds : datasets) {
      const std::vector<std::string> techniques = ds["techniques"];
      std::vector<Result> results;
      for (const auto& [name, package] : packages) {
        DetectorOptions o;
        apply_package(package, o);
        const Detector detector(rules, pipeline, o);
        Result r;
        RunStats stats;
        run_detection(
            detector, {data + "/otrf/" + ds["file"].get<std::string>()}, {},
            [&](Alert&& a) {
              ++r.alerts;
              for (const std::string& tag : a.rule->tags) {
                if (!tag.starts_with("attack.t")) continue;
                const std::string t = "T" + tag.substr(8);
                for (const std::string& want : techniques) {
                  if (fold(t) == fold(want)) r.exact = true;
                  if (fold(parent(t)) == fold(parent(want))) r.family = true;
                }
              }
            },
            [](const InputProblem&) {}, stats);
        auto& tot = totals[name];
        tot[0] += r.alerts;
        tot[1] += r.exact;
        tot[2] += r.family;
        results.push_back(r);
        if (json)
          std::printf("{\"dataset\":\"%s\",\"package\":\"%s\",\"events\":%llu,\"alerts\":%zu,\"technique_exact\":%s,"
                      "\"technique_family\":%s}\n",
                      ds["file"].get<std::string>().c_str(), name, (unsigned long long)stats.events, r.alerts,
                      r.exact ? "true" : "false", r.family ? "true" : "false");
      }
      if (!json) {
        std::string label = ds["file"].get<std::string>();
        label = label.substr(0, label.find(".jsonl")) + " (" + ds["techniques"].dump() + ")";
        if (label.size() > 64) label = label.substr(0, 61) + "...";
        std::printf("%-64s %7d |", label.c_str(), ds["events"].get<int>());
        for (const Result& r : results)
          std::printf(" %6zu  %s / %s      |", r.alerts, r.exact ? "yes" : " no", r.family ? "yes" : " no");
        std::printf("\n");
      }
    }
    if (!json) {
      std::printf("totals over %zu datasets (alerts; datasets with an alert tagged with their technique: exact / family)\n",
                  datasets.size());
      for (const auto& [name, package] : packages)
        std::printf("  %-6s %6zu alerts; %zu exact, %zu family\n", name, totals[name][0], totals[name][1],
                    totals[name][2]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "csq_detect_otrf: %s\n", e.what());
    return 2;
  }
  return 0;
}
