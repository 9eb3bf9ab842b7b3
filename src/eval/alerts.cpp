#include "eval/alerts.h"

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/jsonl.h"
#include "detect/runner.h"

namespace csq::eval {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

ojson parse_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open");
  try {
    return ojson::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail_input(path + ": not valid JSON (" + e.what() + ")");
  }
}

std::vector<std::string> string_list(const ojson& value, const std::string& where, const std::string& field) {
  if (!value.is_array()) fail_input(where + ": \"" + field + "\" must be an array of strings");
  std::vector<std::string> out;
  for (const auto& v : value) {
    if (!v.is_string()) fail_input(where + ": \"" + field + "\" must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

bool is_technique_id(std::string_view s) {
  auto digits = [&](size_t from, size_t n) {
    for (size_t i = from; i < from + n; ++i)
      if (s[i] < '0' || s[i] > '9') return false;
    return true;
  };
  if (s.size() == 5) return s[0] == 'T' && digits(1, 4);
  return s.size() == 9 && s[0] == 'T' && digits(1, 4) && s[5] == '.' && digits(6, 3);
}

std::string alert_source(const ojson& alert) {
  if (!alert.is_object()) return "other";
  if (alert.contains("AnalysisComponent")) return "aminer";
  if (alert.contains("type") && alert["type"].is_string()) {
    const std::string type = alert["type"].get<std::string>();
    if (type == "sigma_alert" || type == "sigma_correlation") return "sigma";
  }
  if (detect::is_alert_json(alert)) return "sigma";
  if (alert.contains("rule") && alert["rule"].is_object() && alert["rule"].contains("level") &&
      alert["rule"]["level"].is_number() && (alert.contains("agent") || alert.contains("decoder")))
    return "wazuh";
  return "other";
}

int alert_severity(const ojson& alert) {
  // csq detect --json writes the rule's fields at the top, beside the event; others nest them.
  const ojson* rule = nullptr;
  if (detect::is_alert_json(alert)) rule = &alert;
  else if (alert.is_object() && alert.contains("rule") && alert["rule"].is_object()) rule = &alert["rule"];
  if (!rule || !rule->contains("level")) return -1;
  const auto& level = (*rule)["level"];
  if (level.is_number_integer() && level.get<long long>() >= 0 && level.get<long long>() <= 1000)
    return int(level.get<long long>());
  if (level.is_string()) {
    static const std::map<std::string, int> sigma = {
        {"informational", 1}, {"low", 2}, {"medium", 3}, {"high", 4}, {"critical", 5}};
    const auto it = sigma.find(level.get<std::string>());
    if (it != sigma.end()) return it->second;
  }
  return -1;
}

LabelledSet load_ait_aecid(const std::string& dir_in) {
  std::string dir = dir_in;
  if (!fs::exists(dir + "/labels.jsonl") && fs::exists(dir + "/alerts/labels.jsonl")) dir += "/alerts";
  const std::string labels_path = dir + "/labels.jsonl";
  if (!fs::exists(labels_path))
    fail_input(dir_in + ": no labels.jsonl (expected the ait-aecid alert folder, ../shared/data/alerts)");
  LabelledSet set;
  set.name = "ait-aecid";
  set.path = dir;

  const std::string techniques_path = dir + "/attack_mapping/mitre_attack_techniques.json";
  const ojson techniques = parse_json_file(techniques_path);
  if (!techniques.is_array()) fail_input(techniques_path + ": expected an array of {\"id\", \"name\"}");
  for (const auto& t : techniques) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_string() || !t.contains("name") || !t["name"].is_string())
      fail_input(techniques_path + ": expected an array of {\"id\", \"name\"}");
    set.technique_ids.insert(t["id"].get<std::string>());
    set.technique_id_by_name.emplace(t["name"].get<std::string>(), t["id"].get<std::string>());
  }

  std::map<std::string, std::vector<std::string>> files;  // alert file -> its lines
  std::ifstream in(labels_path, std::ios::binary);
  if (!in) fail_input(labels_path + ": cannot open");
  for_each_jsonl_line(in, labels_path, [&](const std::string& line, const std::string& at, size_t) {
    const ojson j = parse_jsonl_line<ojson>(line, at);
    if (!j.is_object()) fail_input(at + ": expected an object");
    for (const char* key : {"file", "line", "source", "label"})
      if (!j.contains(key)) fail_input(at + ": missing \"" + key + "\"");
    if (!j["file"].is_string() || !j["line"].is_number_unsigned() || !j["source"].is_string() ||
        !j["label"].is_string())
      fail_input(at + ": \"file\", \"source\", \"label\" must be strings and \"line\" a positive number");
    const std::string file = j["file"].get<std::string>();
    const size_t line_no = j["line"].get<size_t>();
    const std::string label = j["label"].get<std::string>();
    if (label != "attack" && label != "no_attack")
      fail_input(at + ": \"label\" must be \"attack\" or \"no_attack\", not \"" + label + "\"");
    if (file.find("..") != std::string::npos || file.starts_with("/"))
      fail_input(at + ": \"file\" must name a file inside " + dir);
    auto it = files.find(file);
    if (it == files.end()) it = files.emplace(file, read_lines(dir + "/" + file)).first;
    if (line_no == 0 || line_no > it->second.size())
      fail_input(at + ": line " + std::to_string(line_no) + " is outside " + file + " (" +
                 std::to_string(it->second.size()) + " lines)");
    LabelledAlert a;
    a.index = set.alerts.size();
    a.origin = file + ":" + std::to_string(line_no);
    a.raw = it->second[line_no - 1];
    a.alert = parse_jsonl_line<ojson>(a.raw, dir + "/" + a.origin);
    a.malicious = label == "attack";
    a.source = j["source"].get<std::string>();
    if (j.contains("attack_type") && j["attack_type"].is_string()) a.attack_type = j["attack_type"].get<std::string>();
    if (j.contains("allowed_techniques")) a.techniques = string_list(j["allowed_techniques"], at, "allowed_techniques");
    if (a.malicious && (a.attack_type.empty() || a.techniques.empty()))
      fail_input(at + ": an attack alert needs \"attack_type\" and \"allowed_techniques\"");
    set.alerts.push_back(std::move(a));
  });
  if (set.alerts.empty()) fail_input(labels_path + ": no alerts");
  return set;
}

LabelledSet load_labelled_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open labelled alerts");
  LabelledSet set;
  set.name = fs::path(path).stem().string();
  set.path = path;
  for_each_jsonl_line(in, path, [&](const std::string& line, const std::string& at, size_t) {
    const ojson j = parse_jsonl_line<ojson>(line, at);
    if (!j.is_object())
      fail_input(at + ": expected {\"alert\": {...}, \"label\": \"malicious\" | \"benign\", \"techniques\"?: [...]}");
    if (!j.contains("alert") || !j["alert"].is_object()) fail_input(at + ": \"alert\" must be a JSON object");
    if (!j.contains("label") || !j["label"].is_string()) fail_input(at + ": \"label\" must be \"malicious\" or \"benign\"");
    const std::string label = j["label"].get<std::string>();
    if (label != "malicious" && label != "benign")
      fail_input(at + ": \"label\" must be \"malicious\" or \"benign\", not \"" + label + "\"");
    for (const auto& [key, unused] : j.items())
      if (key != "alert" && key != "label" && key != "techniques" && key != "source" && key != "attack_type")
        fail_input(at + ": unknown field \"" + key + "\" (expected alert, label, techniques, source, attack_type)");
    LabelledAlert a;
    a.index = set.alerts.size();
    a.origin = at;
    a.alert = j["alert"];
    a.raw = a.alert.dump(-1, ' ', false, ojson::error_handler_t::replace);
    a.malicious = label == "malicious";
    if (j.contains("techniques")) {
      a.techniques = string_list(j["techniques"], at, "techniques");
      for (const auto& id : a.techniques)
        if (!is_technique_id(id))
          fail_input(at + ": \"techniques\": \"" + id + "\" is not an ATT&CK technique id (T1234 or T1234.001)");
    }
    if (j.contains("source")) {
      if (!j["source"].is_string() || j["source"].get<std::string>().empty())
        fail_input(at + ": \"source\" must be a non-empty string");
      a.source = j["source"].get<std::string>();
    } else {
      a.source = alert_source(a.alert);
    }
    if (j.contains("attack_type")) {
      if (!j["attack_type"].is_string()) fail_input(at + ": \"attack_type\" must be a string");
      a.attack_type = j["attack_type"].get<std::string>();
    }
    set.alerts.push_back(std::move(a));
  });
  if (set.alerts.empty()) fail_input(path + ": no labelled alerts");
  return set;
}

}  // namespace csq::eval
