// The MITRE ATT&CK knowledge base: techniques, mitigations, the "mitigates" links between them
// and the v18 detection strategies, read from the compact JSON Lines of ../shared/data/attack
// (its README gives the layout), with a lexical search over the techniques (kb/search.h).
// Needs no model; the CLI (`csq kb`), the server (/v1/kb/...) and `csq respond` share it.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace csq::kb {

class SearchIndex;

struct Tactic {
  std::string id;         // TA0002
  std::string name;       // Execution
  std::string shortname;  // execution (the name techniques list)
};

// One "mitigates" relationship: how `mitigation` applies to `technique`.
struct MitigationLink {
  std::string mitigation;  // M1038
  std::string technique;   // T1059.001
  std::string description;
};

struct Analytic {
  std::string id;  // AN1252
  std::vector<std::string> platforms;
  std::string description;
  std::vector<std::string> log_sources;  // "name (channel)"
};

// The v18 detection model: one strategy per technique, with its analytics.
struct DetectionStrategy {
  std::string id;    // DET0455
  std::string name;
  std::vector<std::string> platforms;
  std::vector<std::string> data_components;  // "DC0032 Process Creation"
  std::vector<std::string> log_sources;
  std::vector<const Analytic*> analytics;    // those in analytics.jsonl (absent file: none)
  std::string url;
};

struct Technique {
  std::string id;  // T1059 or T1059.001
  std::string name;
  std::vector<std::string> tactics;  // shortnames, in matrix order
  std::vector<std::string> platforms;
  std::string description;           // verbatim, with (Citation: ...) markers
  std::optional<std::string> detection;  // the pre-v18 free-text notes (empty in v18)
  bool is_subtechnique = false;
  std::string url;
  std::vector<const MitigationLink*> mitigations;  // by mitigation id
  const DetectionStrategy* detection_strategy = nullptr;
};

struct Mitigation {
  std::string id;  // M1038
  std::string name;
  std::string description;
  std::string url;
  std::vector<const MitigationLink*> techniques;  // by technique id
};

struct SearchHit {
  const Technique* technique;
  double score;  // BM25; higher is better
};

class KnowledgeBase {
 public:
  // Reads DIR/{tactics,techniques,mitigations,mitigates}.jsonl (required) and
  // DIR/{detects,analytics}.jsonl (optional: releases before v18 have none). Throws csq::Error
  // (BadInput) naming FILE:LINE and the field on malformed data, duplicate ids or links to
  // unknown ids; (BadInput) naming the path when a required file is missing.
  static std::unique_ptr<KnowledgeBase> load(const std::string& dir);
  ~KnowledgeBase();

  const std::string& dir() const { return dir_; }
  // The copyright designation the ATT&CK licence asks to be shown with its data: the line
  // quoted in DIR/LICENSE-ATTACK.txt when present, and the trademark notice.
  const std::string& notice() const { return notice_; }

  const std::vector<Tactic>& tactics() const { return tactics_; }
  const std::vector<Technique>& techniques() const { return techniques_; }  // sorted by id
  const std::vector<Mitigation>& mitigations() const { return mitigations_; }
  const std::vector<MitigationLink>& links() const { return links_; }

  // Case-insensitive ("t1059.001" finds T1059.001); nullptr when unknown.
  const Technique* technique(std::string_view id) const;
  const Mitigation* mitigation(std::string_view id) const;
  const Tactic* tactic_by_shortname(std::string_view shortname) const;
  // Whether `mitigation` is linked to `technique` by a "mitigates" relationship.
  bool mitigates(std::string_view mitigation, std::string_view technique) const;

  // Ranked techniques for a free-text query (BM25 over ids, names, descriptions and the detection
  // strategy's analytics; the index is built on the first call, thread-safe). Empty when no query
  // term occurs in the data.
  std::vector<SearchHit> search(std::string_view query, size_t limit = 10) const;

 private:
  KnowledgeBase() = default;
  void index_references();

  std::string dir_, notice_;
  std::vector<Tactic> tactics_;
  std::vector<Technique> techniques_;
  std::vector<Mitigation> mitigations_;
  std::vector<MitigationLink> links_;
  std::vector<DetectionStrategy> strategies_;
  std::vector<Analytic> analytics_;
  std::unordered_map<std::string, size_t> technique_index_, mitigation_index_;
  std::unordered_set<std::string> link_keys_;  // "M1038>T1059.001"
  mutable std::once_flag index_once_;
  mutable std::unique_ptr<SearchIndex> index_;
};

// Where the knowledge base is: `flag` (--kb) if given, else $CSQ_KB, else `fallback` (the
// build's CSQ_DATA/attack). Throws csq::Error (Usage) when the chosen directory does not exist,
// saying which of the three chose it.
std::string resolve_kb_dir(const std::string& flag, const std::string& fallback);

// Description text for people and prompts: (Citation: ...) markers dropped, Markdown links
// reduced to their text, <code> tags removed, whitespace runs inside lines collapsed.
std::string plain_text(std::string_view description);

// Normalises an ATT&CK id as written in alerts and Sigma tags ("attack.t1059.001", "t1059.001",
// "T1059.001") to "T1059.001"; nullopt when the text is not a technique id.
std::optional<std::string> technique_id_from_tag(std::string_view tag);

// JSON for the CLI and the server. A technique carries its tactics (id and name), platforms,
// description, detection notes, detection strategy (with its analytics) and every linked
// mitigation with its id, name and how it applies; a mitigation every technique it mitigates.
nlohmann::ordered_json technique_json(const KnowledgeBase& kb, const Technique& t);
nlohmann::ordered_json mitigation_json(const KnowledgeBase& kb, const Mitigation& m);
nlohmann::ordered_json search_json(const KnowledgeBase& kb, std::string_view query, const std::vector<SearchHit>& hits);

}  // namespace csq::kb
