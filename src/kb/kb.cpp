#include "kb/kb.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "base/error.h"
#include "base/jsonl.h"
#include "kb/search.h"

namespace csq::kb {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// The fields of one JSON Lines record, every error naming FILE:LINE and the field.
class Record {
 public:
  Record(const std::string& line, std::string where) : where_(std::move(where)), j_(parse_jsonl_line(line, where_)) {
    if (!j_.is_object()) fail_input(where_ + ": expected a JSON object");
  }
  const std::string& where() const { return where_; }

  std::string text(const char* field, bool allow_empty = false) const {
    const json& v = at(field);
    if (!v.is_string()) fail_input(where_ + ": field '" + field + "' must be a string");
    if (!allow_empty && v.get_ref<const std::string&>().empty()) fail_input(where_ + ": field '" + field + "' is empty");
    return v.get<std::string>();
  }
  std::string id(const char* field, const std::regex& pattern, const char* expected) const {
    std::string value = text(field);
    if (!std::regex_match(value, pattern))
      fail_input(where_ + ": field '" + field + "' is '" + value + "', expected " + expected);
    return value;
  }
  std::optional<std::string> optional_text(const char* field) const {
    const auto it = j_.find(field);
    if (it == j_.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail_input(where_ + ": field '" + field + "' must be a string or null");
    if (it->get_ref<const std::string&>().empty()) return std::nullopt;
    return it->get<std::string>();
  }
  std::vector<std::string> texts(const char* field) const {
    const json& v = at(field);
    if (!v.is_array()) fail_input(where_ + ": field '" + field + "' must be an array of strings");
    std::vector<std::string> out;
    for (const json& e : v) {
      if (!e.is_string()) fail_input(where_ + ": field '" + field + "' must be an array of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  bool flag(const char* field) const {
    const json& v = at(field);
    if (!v.is_boolean()) fail_input(where_ + ": field '" + field + "' must be true or false");
    return v.get<bool>();
  }
  // An array of objects, each read by `each(Record-like sub-object accessor)`.
  const json& objects(const char* field) const {
    const json& v = at(field);
    if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_object(); }))
      fail_input(where_ + ": field '" + field + "' must be an array of objects");
    return v;
  }
  std::string member_text(const json& object, const char* field, const char* array) const {
    const auto it = object.find(field);
    if (it == object.end() || !it->is_string())
      fail_input(where_ + ": every element of '" + array + "' needs a string '" + field + "'");
    return it->get<std::string>();
  }

 private:
  const json& at(const char* field) const {
    const auto it = j_.find(field);
    if (it == j_.end()) fail_input(where_ + ": field '" + field + "' is missing");
    return *it;
  }
  std::string where_;
  json j_;
};

const std::regex& technique_pattern() {
  static const std::regex re("T[0-9]{4}(\\.[0-9]{3})?");
  return re;
}
const std::regex& mitigation_pattern() {
  static const std::regex re("M[0-9]{4}");
  return re;
}

template <class OnRecord>
void read_jsonl(const std::string& dir, const char* file, bool required, OnRecord&& on_record) {
  const std::string path = dir + "/" + file;
  std::ifstream in(path);
  if (!in) {
    if (!required) return;
    fail_input(path + ": cannot read the ATT&CK file (a knowledge-base directory holds tactics.jsonl, "
               "techniques.jsonl, mitigations.jsonl and mitigates.jsonl)");
  }
  for_each_jsonl_line(in, path, [&](const std::string& line, const std::string& where, size_t) {
    on_record(Record(line, where));
  });
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The "© YEAR The MITRE Corporation. ..." designation quoted in the licence file.
std::string read_notice(const std::string& dir) {
  const char* trademark = "MITRE ATT&CK and ATT&CK are registered trademarks of The MITRE Corporation.";
  std::ifstream in(dir + "/LICENSE-ATTACK.txt");
  for (std::string line; in && std::getline(in, line);) {
    const size_t start = line.find("\"\xC2\xA9 ");
    const size_t end = line.rfind('"');
    if (start != std::string::npos && end > start) return line.substr(start + 1, end - start - 1) + " " + trademark;
  }
  return std::string("\xC2\xA9 The MITRE Corporation. This work is reproduced and distributed with the permission of "
                     "The MITRE Corporation. ") + trademark;
}

}  // namespace

KnowledgeBase::~KnowledgeBase() = default;

std::unique_ptr<KnowledgeBase> KnowledgeBase::load(const std::string& dir) {
  std::unique_ptr<KnowledgeBase> kb(new KnowledgeBase());
  kb->dir_ = dir;
  kb->notice_ = read_notice(dir);

  read_jsonl(dir, "tactics.jsonl", true, [&](const Record& r) {
    kb->tactics_.push_back({r.id("id", std::regex("TA[0-9]{4}"), "TA followed by 4 digits"), r.text("name"), r.text("shortname")});
  });
  read_jsonl(dir, "techniques.jsonl", true, [&](const Record& r) {
    Technique t;
    t.id = r.id("id", technique_pattern(), "T followed by 4 digits, optionally .3 digits");
    t.name = r.text("name");
    t.tactics = r.texts("tactics");
    for (const auto& tactic : t.tactics)
      if (!kb->tactic_by_shortname(tactic))
        fail_input(r.where() + ": field 'tactics' names '" + tactic + "', which is not in tactics.jsonl");
    t.platforms = r.texts("platforms");
    t.description = r.text("description", true);
    t.detection = r.optional_text("detection");
    t.is_subtechnique = r.flag("is_subtechnique");
    if (t.is_subtechnique != (t.id.find('.') != std::string::npos))
      fail_input(r.where() + ": field 'is_subtechnique' disagrees with the id " + t.id);
    t.url = r.text("url", true);
    if (!kb->technique_index_.emplace(t.id, kb->techniques_.size()).second)
      fail_input(r.where() + ": technique " + t.id + " appears twice");
    kb->techniques_.push_back(std::move(t));
  });
  read_jsonl(dir, "mitigations.jsonl", true, [&](const Record& r) {
    Mitigation m;
    m.id = r.id("id", mitigation_pattern(), "M followed by 4 digits");
    m.name = r.text("name");
    m.description = r.text("description", true);
    m.url = r.text("url", true);
    if (!kb->mitigation_index_.emplace(m.id, kb->mitigations_.size()).second)
      fail_input(r.where() + ": mitigation " + m.id + " appears twice");
    kb->mitigations_.push_back(std::move(m));
  });
  read_jsonl(dir, "mitigates.jsonl", true, [&](const Record& r) {
    MitigationLink link{r.text("mitigation"), r.text("technique"), r.text("description", true)};
    const Mitigation* m = kb->mitigation(link.mitigation);
    if (!m) fail_input(r.where() + ": field 'mitigation' names " + link.mitigation + ", which is not in mitigations.jsonl");
    const Technique* t = kb->technique(link.technique);
    if (!t) fail_input(r.where() + ": field 'technique' names " + link.technique + ", which is not in techniques.jsonl");
    link.mitigation = m->id;
    link.technique = t->id;
    if (!kb->link_keys_.insert(link.mitigation + ">" + link.technique).second)
      fail_input(r.where() + ": the link " + link.mitigation + " -> " + link.technique + " appears twice");
    kb->links_.push_back(std::move(link));
  });
  std::unordered_map<std::string, size_t> analytic_index;
  read_jsonl(dir, "analytics.jsonl", false, [&](const Record& r) {
    Analytic a;
    a.id = r.text("id");
    a.platforms = r.texts("platforms");
    a.description = r.text("description", true);
    for (const json& s : r.objects("log_sources")) {
      std::string source = r.member_text(s, "name", "log_sources");
      const auto channel = s.find("channel");
      if (channel != s.end() && channel->is_string() && !channel->get_ref<const std::string&>().empty())
        source += " (" + channel->get<std::string>() + ")";
      a.log_sources.push_back(std::move(source));
    }
    if (!analytic_index.emplace(a.id, kb->analytics_.size()).second)
      fail_input(r.where() + ": analytic " + a.id + " appears twice");
    kb->analytics_.push_back(std::move(a));
  });
  std::vector<std::pair<std::string, std::vector<std::string>>> strategy_refs;  // technique, analytic ids
  read_jsonl(dir, "detects.jsonl", false, [&](const Record& r) {
    DetectionStrategy s;
    const std::string technique = r.text("technique");
    if (!kb->technique(technique))
      fail_input(r.where() + ": field 'technique' names " + technique + ", which is not in techniques.jsonl");
    s.id = r.text("strategy");
    s.name = r.text("strategy_name");
    s.platforms = r.texts("platforms");
    for (const json& dc : r.objects("data_components"))
      s.data_components.push_back(r.member_text(dc, "id", "data_components") + " " + r.member_text(dc, "name", "data_components"));
    s.log_sources = r.texts("log_sources");
    s.url = r.text("url", true);
    std::vector<std::string> analytics = r.texts("analytics");
    if (!analytic_index.empty())
      for (const auto& id : analytics)
        if (!analytic_index.count(id))
          fail_input(r.where() + ": field 'analytics' names " + id + ", which is not in analytics.jsonl");
    strategy_refs.emplace_back(technique, std::move(analytics));
    kb->strategies_.push_back(std::move(s));
  });
  // Pointers into the vectors only now that they have stopped growing.
  for (size_t i = 0; i < kb->strategies_.size(); ++i) {
    Technique& t = kb->techniques_[kb->technique_index_.at(upper(strategy_refs[i].first))];
    t.detection_strategy = &kb->strategies_[i];
    for (const auto& id : strategy_refs[i].second)
      if (const auto it = analytic_index.find(id); it != analytic_index.end())
        kb->strategies_[i].analytics.push_back(&kb->analytics_[it->second]);
  }
  kb->index_references();
  return kb;
}

void KnowledgeBase::index_references() {
  for (const MitigationLink& link : links_) {
    techniques_[technique_index_.at(link.technique)].mitigations.push_back(&link);
    mitigations_[mitigation_index_.at(link.mitigation)].techniques.push_back(&link);
  }
  for (auto& t : techniques_)
    std::sort(t.mitigations.begin(), t.mitigations.end(),
              [](const MitigationLink* a, const MitigationLink* b) { return a->mitigation < b->mitigation; });
  for (auto& m : mitigations_)
    std::sort(m.techniques.begin(), m.techniques.end(),
              [](const MitigationLink* a, const MitigationLink* b) { return a->technique < b->technique; });
}

const Technique* KnowledgeBase::technique(std::string_view id) const {
  const auto it = technique_index_.find(upper(id));
  return it == technique_index_.end() ? nullptr : &techniques_[it->second];
}

const Mitigation* KnowledgeBase::mitigation(std::string_view id) const {
  const auto it = mitigation_index_.find(upper(id));
  return it == mitigation_index_.end() ? nullptr : &mitigations_[it->second];
}

const Tactic* KnowledgeBase::tactic_by_shortname(std::string_view shortname) const {
  for (const auto& t : tactics_)
    if (t.shortname == shortname) return &t;
  return nullptr;
}

bool KnowledgeBase::mitigates(std::string_view mitigation, std::string_view technique) const {
  return link_keys_.count(upper(mitigation) + ">" + upper(technique)) > 0;
}

std::vector<SearchHit> KnowledgeBase::search(std::string_view query, size_t limit) const {
  std::call_once(index_once_, [this] {
    std::vector<SearchIndex::Document> documents;
    documents.reserve(techniques_.size());
    for (const auto& t : techniques_) {
      // The detection analytics describe what the technique looks like in logs (encoded command
      // lines, process trees), which is what alerts and analysts' queries contain.
      std::string body = plain_text(t.description);
      if (const DetectionStrategy* s = t.detection_strategy) {
        body += "\n" + s->name;
        for (const Analytic* a : s->analytics) body += "\n" + plain_text(a->description);
      }
      documents.push_back({t.id, t.name, std::move(body)});
    }
    index_ = std::make_unique<SearchIndex>(documents);
  });
  std::vector<SearchHit> hits;
  for (const auto& h : index_->search(query, limit)) hits.push_back({&techniques_[h.document], h.score});
  return hits;
}

std::string resolve_kb_dir(const std::string& flag, const std::string& fallback) {
  std::string dir = flag, origin = "--kb";
  if (dir.empty()) {
    if (const char* env = std::getenv("CSQ_KB"); env && *env) {
      dir = env;
      origin = "$CSQ_KB";
    } else {
      dir = fallback;
      origin = "the build's default (CSQ_DATA/attack)";
    }
  }
  if (dir.empty() || !std::filesystem::is_directory(dir))
    fail_usage("no ATT&CK knowledge base at '" + dir + "' (from " + origin +
               "); give --kb DIR or set CSQ_KB to a directory holding techniques.jsonl etc.");
  return dir;
}

std::string plain_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 11, "(Citation: ") == 0) {
      const size_t close = s.find(')', i);
      if (close != std::string_view::npos) {
        i = close + 1;
        continue;
      }
    }
    if (s[i] == '[') {  // [text](url) -> text
      const size_t mid = s.find("](", i);
      const size_t close = mid == std::string_view::npos ? mid : s.find(')', mid);
      if (close != std::string_view::npos && s.find('\n', i) > close) {
        out.append(s.substr(i + 1, mid - i - 1));
        i = close + 1;
        continue;
      }
    }
    if (s.compare(i, 6, "<code>") == 0) {
      i += 6;
      continue;
    }
    if (s.compare(i, 7, "</code>") == 0) {
      i += 7;
      continue;
    }
    if ((s[i] == ' ' || s[i] == '\t') && !out.empty() && (out.back() == ' ' || out.back() == '\n')) {
      ++i;
      continue;
    }
    out += s[i] == '\t' ? ' ' : s[i];
    ++i;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  return out;
}

std::optional<std::string> technique_id_from_tag(std::string_view tag) {
  if (tag.substr(0, 7) == "attack." || tag.substr(0, 7) == "ATTACK.") tag.remove_prefix(7);
  std::string id = upper(tag);
  if (!std::regex_match(id, technique_pattern())) return std::nullopt;
  return id;
}

ojson technique_json(const KnowledgeBase& kb, const Technique& t) {
  ojson j;
  j["id"] = t.id;
  j["name"] = t.name;
  if (t.is_subtechnique) {
    const Technique* parent = kb.technique(t.id.substr(0, t.id.find('.')));
    j["parent"] = parent ? ojson{{"id", parent->id}, {"name", parent->name}} : ojson();
  }
  j["tactics"] = ojson::array();
  for (const auto& shortname : t.tactics) {
    const Tactic* tactic = kb.tactic_by_shortname(shortname);
    j["tactics"].push_back({{"id", tactic->id}, {"name", tactic->name}, {"shortname", tactic->shortname}});
  }
  j["platforms"] = t.platforms;
  j["description"] = t.description;
  j["detection"] = t.detection ? ojson(*t.detection) : ojson();
  if (const DetectionStrategy* s = t.detection_strategy) {
    ojson analytics = ojson::array();
    for (const Analytic* a : s->analytics)
      analytics.push_back({{"id", a->id}, {"platforms", a->platforms}, {"description", a->description},
                           {"log_sources", a->log_sources}});
    j["detection_strategy"] = {{"id", s->id},           {"name", s->name},
                               {"platforms", s->platforms}, {"data_components", s->data_components},
                               {"log_sources", s->log_sources}, {"analytics", analytics},
                               {"url", s->url}};
  } else {
    j["detection_strategy"] = nullptr;
  }
  j["mitigations"] = ojson::array();
  for (const MitigationLink* link : t.mitigations)
    j["mitigations"].push_back(
        {{"id", link->mitigation}, {"name", kb.mitigation(link->mitigation)->name}, {"how", link->description}});
  j["url"] = t.url;
  return j;
}

ojson mitigation_json(const KnowledgeBase& kb, const Mitigation& m) {
  ojson j;
  j["id"] = m.id;
  j["name"] = m.name;
  j["description"] = m.description;
  j["techniques"] = ojson::array();
  for (const MitigationLink* link : m.techniques)
    j["techniques"].push_back(
        {{"id", link->technique}, {"name", kb.technique(link->technique)->name}, {"how", link->description}});
  j["url"] = m.url;
  return j;
}

ojson search_json(const KnowledgeBase& kb, std::string_view query, const std::vector<SearchHit>& hits) {
  ojson results = ojson::array();
  for (const SearchHit& h : hits) {
    ojson tactics = ojson::array();
    for (const auto& shortname : h.technique->tactics) tactics.push_back(kb.tactic_by_shortname(shortname)->name);
    results.push_back({{"id", h.technique->id}, {"name", h.technique->name}, {"tactics", tactics},
                       {"score", std::round(h.score * 1000) / 1000}});
  }
  return {{"query", std::string(query)}, {"results", results}};
}

}  // namespace csq::kb
