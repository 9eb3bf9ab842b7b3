// csq kb technique ID | mitigation ID | search "QUERY" — the MITRE ATT&CK knowledge base
// (src/kb): a technique with its detection strategy and every linked mitigation, a mitigation
// with the techniques it mitigates, and a ranked search over the techniques. Needs no model.
#include <cstdio>
#include <memory>

#include "base/error.h"
#include "command.h"
#include "kb/kb.h"
#include "kb_options.h"

namespace csq::app {
namespace {

using ojson = nlohmann::ordered_json;

struct KbOptions {
  std::string kb;
  std::vector<std::string> ids;
  std::string query;
  size_t limit = 10;
  bool json = false;
};

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : separator) + s;
  return out;
}

// Multi-paragraph texts under an indented list item stay indented.
std::string indented(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '\n' ? std::string("\n    ") : std::string(1, c);
  return out;
}

void print_json(ojson j, const kb::KnowledgeBase& kb) {
  j["notice"] = kb.notice();
  std::printf("%s\n", j.dump(-1, ' ', false, ojson::error_handler_t::replace).c_str());
}

void print_technique(const kb::KnowledgeBase& kb, const kb::Technique& t) {
  std::printf("%s %s", t.id.c_str(), t.name.c_str());
  if (t.is_subtechnique)
    if (const kb::Technique* parent = kb.technique(t.id.substr(0, t.id.find('.'))))
      std::printf(" (sub-technique of %s %s)", parent->id.c_str(), parent->name.c_str());
  std::vector<std::string> tactics;
  for (const auto& shortname : t.tactics) {
    const kb::Tactic* tactic = kb.tactic_by_shortname(shortname);
    tactics.push_back(tactic->name + " (" + tactic->id + ")");
  }
  std::printf("\nTactics: %s\nPlatforms: %s\n%s\n\n%s\n", joined(tactics).c_str(), joined(t.platforms).c_str(),
              t.url.c_str(), kb::plain_text(t.description).c_str());
  if (t.detection) std::printf("\nDetection notes:\n%s\n", kb::plain_text(*t.detection).c_str());
  if (const kb::DetectionStrategy* s = t.detection_strategy) {
    std::printf("\nDetection strategy %s: %s\n", s->id.c_str(), s->name.c_str());
    if (!s->log_sources.empty()) std::printf("  Log sources: %s\n", joined(s->log_sources).c_str());
    if (!s->data_components.empty()) std::printf("  Data components: %s\n", joined(s->data_components).c_str());
    for (const kb::Analytic* a : s->analytics)
      std::printf("  %s [%s] %s\n", a->id.c_str(), joined(a->platforms).c_str(), kb::plain_text(a->description).c_str());
  }
  std::printf("\nMitigations (%zu):\n", t.mitigations.size());
  if (t.mitigations.empty()) std::printf("  none linked in ATT&CK\n");
  for (const kb::MitigationLink* link : t.mitigations)
    std::printf("  %s %s: %s\n", link->mitigation.c_str(), kb.mitigation(link->mitigation)->name.c_str(),
                indented(kb::plain_text(link->description)).c_str());
}

void print_mitigation(const kb::KnowledgeBase& kb, const kb::Mitigation& m) {
  std::printf("%s %s\n%s\n\n%s\n\nTechniques mitigated (%zu):\n", m.id.c_str(), m.name.c_str(), m.url.c_str(),
              kb::plain_text(m.description).c_str(), m.techniques.size());
  for (const kb::MitigationLink* link : m.techniques)
    std::printf("  %s %s: %s\n", link->technique.c_str(), kb.technique(link->technique)->name.c_str(),
                indented(kb::plain_text(link->description)).c_str());
}

// Every id is checked before anything is printed; --json gives one line per id.
template <class Find, class ToJson, class Print>
void run_lookup(const KbOptions& o, const char* kind, Find find, ToJson to_json, Print print) {
  const auto kb = load_kb(o.kb);
  std::vector<decltype(find(*kb, std::string()))> entries;
  for (const auto& id : o.ids) {
    entries.push_back(find(*kb, id));
    if (!entries.back()) fail_input(std::string(kind) + " '" + id + "' is not in the knowledge base at " + kb->dir());
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (o.json) {
      print_json(to_json(*kb, *entries[i]), *kb);
      continue;
    }
    if (i > 0) std::printf("\n----\n\n");
    print(*kb, *entries[i]);
  }
  if (!o.json) std::printf("\n%s\n", kb->notice().c_str());
}

void run_technique(const KbOptions& o) {
  run_lookup(o, "technique", [](const kb::KnowledgeBase& kb, const std::string& id) { return kb.technique(id); },
             kb::technique_json, print_technique);
}

void run_mitigation(const KbOptions& o) {
  run_lookup(o, "mitigation", [](const kb::KnowledgeBase& kb, const std::string& id) { return kb.mitigation(id); },
             kb::mitigation_json, print_mitigation);
}

void run_search(const KbOptions& o) {
  if (o.query.find_first_not_of(" \t\r\n") == std::string::npos) fail_usage("search: the query is empty");
  if (o.limit == 0) fail_usage("--limit must be at least 1");
  const auto kb = load_kb(o.kb);
  const auto hits = kb->search(o.query, o.limit);
  if (o.json) return print_json(kb::search_json(*kb, o.query, hits), *kb);
  if (hits.empty()) std::printf("No technique matches \"%s\".\n", o.query.c_str());
  for (const kb::SearchHit& h : hits) {
    std::vector<std::string> tactics;
    for (const auto& shortname : h.technique->tactics) tactics.push_back(kb->tactic_by_shortname(shortname)->name);
    std::printf("%7.3f  %-10s %s [%s]\n", h.score, h.technique->id.c_str(), h.technique->name.c_str(),
                joined(tactics).c_str());
  }
  std::printf("\n%s\n", kb->notice().c_str());
}

const RegisterCommand reg([](CLI::App& root) {
  auto o = std::make_shared<KbOptions>();
  CLI::App* kb = root.add_subcommand("kb", "Look up MITRE ATT&CK techniques and mitigations, or search the techniques");
  kb->require_subcommand(1);
  auto common = [&](CLI::App* cmd) {
    add_kb_option(cmd, o->kb);
    cmd->add_flag("--json", o->json, "Print JSON, one object a line (the ATT&CK notice under \"notice\")");
  };
  CLI::App* technique = kb->add_subcommand("technique", "A technique: tactics, platforms, description, detection, mitigations");
  technique->add_option("id", o->ids, "Technique ids, e.g. T1059.001 (several: one after another)")->required();
  common(technique);
  technique->callback([o] { run_technique(*o); });
  CLI::App* mitigation = kb->add_subcommand("mitigation", "A mitigation and every technique it mitigates");
  mitigation->add_option("id", o->ids, "Mitigation ids, e.g. M1038")->required();
  common(mitigation);
  mitigation->callback([o] { run_mitigation(*o); });
  CLI::App* search = kb->add_subcommand("search", "Techniques ranked by BM25 over their ids, names, descriptions and detection analytics");
  search->add_option("query", o->query, "Free text, e.g. \"powershell encoded command\"")->required();
  search->add_option("--limit", o->limit, "Most results")->capture_default_str();
  common(search);
  search->callback([o] { run_search(*o); });
});

}  // namespace
}  // namespace csq::app
