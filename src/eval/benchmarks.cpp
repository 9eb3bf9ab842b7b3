#include "eval/benchmarks.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "tasks/cvss.h"

namespace csq::eval {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open (is --data pointing at the benchmark data directory?)");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

std::string where(const TsvTable& t, size_t row) { return t.path + ":" + std::to_string(row + 2); }

// "T1071, T1573.001" -> "T1071,T1573" (main techniques, sorted, unique).
std::string technique_gold(const TsvTable& t, size_t row, std::string_view list) {
  std::vector<std::string> ids;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    const std::string id = upper(trim(list.substr(pos, comma - pos)));
    if (id.size() < 5 || id[0] != 'T' || id.find_first_not_of("0123456789.", 1) != std::string::npos)
      fail_input(where(t, row) + ": GT '" + std::string(list) + "' holds '" + id +
                 "' (expected ATT&CK ids like T1059)");
    ids.push_back(tasks::main_technique(id));
    pos = comma + 1;
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

// CyberMetric ships no prompt; this one follows CTI-MCQ's instruction word for word, with the
// benchmark named for what it is.
std::string mcq_prompt(const std::string& question, const std::vector<std::string>& options) {
  std::string p =
      "You are given a multiple-choice question (MCQ) from a cybersecurity knowledge benchmark dataset. "
      "Your task is to choose the best option among the four provided. Return your answer as a single "
      "uppercase letter: A, B, C, or D.  **Question:** " +
      question + "  **Options:**";
  for (size_t k = 0; k < options.size(); ++k) p += std::string(" ") + char('A' + k) + ") " + options[k];
  p += "  **Important:** The last line of your answer should contain only the single letter corresponding "
       "to the best option, with no additional text.";
  return p;
}

Benchmark load_cti(const std::string& name, const std::string& dir) {
  Benchmark b;
  b.name = name;
  b.path = dir + "/cti-bench/" + name + ".tsv";
  const TsvTable t = read_tsv(b.path);
  const size_t url = t.column("URL");
  const size_t prompt = t.column("Prompt");
  const bool has_gt = name != "cti-taa";
  const size_t gt = has_gt ? t.column("GT") : 0;
  std::vector<std::string> taa_gold;
  if (!has_gt) {  // CTI-TAA's gold attribution is published only beside the model responses
    const TsvTable r = read_tsv(dir + "/cti-bench/responses/cti-taa-responses.tsv");
    const size_t col = r.column("GT");
    if (r.rows.size() != t.rows.size())
      fail_input(r.path + ": " + std::to_string(r.rows.size()) + " rows, but " + t.path + " has " +
                 std::to_string(t.rows.size()) + " (expected one gold actor per report)");
    for (size_t k = 0; k < r.rows.size(); ++k) {
      taa_gold.push_back(trim(r.rows[k][col]));
      if (taa_gold.back().empty()) fail_input(where(r, k) + ": empty GT (expected a threat actor)");
    }
  }
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    Item it;
    it.index = r;
    it.source = row[url];
    it.prompt = row[prompt];
    const std::string g = has_gt ? trim(row[gt]) : taa_gold[r];
    if (name == "cti-mcq") {
      b.kind = tasks::AnswerKind::Mcq;
      it.question = row[t.column("Question")];
      for (const char* o : {"Option A", "Option B", "Option C", "Option D"}) it.options.push_back(row[t.column(o)]);
      it.gold = upper(g);
      if (it.gold.size() != 1 || it.gold[0] < 'A' || it.gold[0] > 'D')
        fail_input(where(t, r) + ": GT '" + g + "' (expected a letter A-D)");
    } else if (name == "cti-rcm" || name == "cti-rcm-2021") {
      b.kind = tasks::AnswerKind::Cwe;
      it.question = row[t.column("Description")];
      it.gold = upper(g);
      if (!it.gold.starts_with("CWE-") || it.gold.size() < 5 ||
          it.gold.find_first_not_of("0123456789", 4) != std::string::npos)
        fail_input(where(t, r) + ": GT '" + g + "' (expected a CWE id like CWE-79)");
    } else if (name == "cti-vsp") {
      b.kind = tasks::AnswerKind::Cvss;
      it.question = row[t.column("Description")];
      tasks::CvssVector v;
      std::string why;
      if (!tasks::try_parse_cvss(g, &v, &why)) fail_input(where(t, r) + ": GT: " + why);
      it.gold = v.str();
    } else if (name == "cti-ate") {
      b.kind = tasks::AnswerKind::Attack;
      it.question = row[t.column("Description")];
      it.platform = row[t.column("Platform")];
      it.gold = technique_gold(t, r, g);
    } else {
      b.kind = tasks::AnswerKind::Actor;
      it.question = row[t.column("Text")];
      it.gold = g;
    }
    b.items.push_back(std::move(it));
  }
  return b;
}

Benchmark load_cybermetric(const std::string& name, const std::string& dir) {
  Benchmark b;
  b.name = name;
  b.kind = tasks::AnswerKind::Mcq;
  const std::string size = name.substr(std::string("cybermetric-").size());
  b.path = dir + "/cybermetric/CyberMetric-" + size + "-v1.json";
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file(b.path));
  } catch (const nlohmann::json::parse_error& e) {
    fail_input(b.path + ": not valid JSON (" + e.what() + ")");
  }
  if (!doc.is_object() || !doc.contains("questions") || !doc["questions"].is_array())
    fail_input(b.path + ": expected an object with a \"questions\" array");
  const auto& qs = doc["questions"];
  for (size_t k = 0; k < qs.size(); ++k) {
    const auto& q = qs[k];
    const std::string at = b.path + ": questions[" + std::to_string(k) + "]";
    if (!q.is_object() || !q.contains("question") || !q["question"].is_string() || !q.contains("answers") ||
        !q["answers"].is_object() || !q.contains("solution") || !q["solution"].is_string())
      fail_input(at + ": expected {\"question\": string, \"answers\": {A..D}, \"solution\": letter}");
    Item it;
    it.index = k;
    it.question = trim(q["question"].get<std::string>());
    for (const char* letter : {"A", "B", "C", "D"}) {
      if (!q["answers"].contains(letter) || !q["answers"][letter].is_string())
        fail_input(at + ": answers." + letter + " is missing or not a string");
      it.options.push_back(q["answers"][letter].get<std::string>());
    }
    it.gold = upper(trim(q["solution"].get<std::string>()));
    if (it.gold.size() != 1 || it.gold[0] < 'A' || it.gold[0] > 'D')
      fail_input(at + ": solution '" + q["solution"].get<std::string>() + "' (expected a letter A-D)");
    it.prompt = mcq_prompt(it.question, it.options);
    b.items.push_back(std::move(it));
  }
  return b;
}

}  // namespace

size_t TsvTable::column(std::string_view name) const {
  for (size_t k = 0; k < header.size(); ++k)
    if (header[k] == name) return k;
  fail_input(path + ": no column '" + std::string(name) + "' in the header row");
}

TsvTable read_tsv(const std::string& path) {
  TsvTable t;
  t.path = path;
  const std::string text = read_file(path);
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() && pos >= text.size()) break;  // the final newline
    std::vector<std::string> fields;
    size_t f = 0;
    while (true) {
      const size_t tab = line.find('\t', f);
      fields.emplace_back(line.substr(f, tab == std::string_view::npos ? std::string_view::npos : tab - f));
      if (tab == std::string_view::npos) break;
      f = tab + 1;
    }
    if (line_no == 1) {
      t.header = std::move(fields);
    } else if (fields.size() != t.header.size()) {
      fail_input(path + ":" + std::to_string(line_no) + ": " + std::to_string(fields.size()) +
                 " tab-separated fields (expected " + std::to_string(t.header.size()) + ", as in the header)");
    } else {
      t.rows.push_back(std::move(fields));
    }
  }
  if (t.header.empty()) fail_input(path + ": empty file (expected a header row)");
  return t;
}

const std::vector<std::string>& benchmark_names() {
  static const std::vector<std::string> names = {"cti-mcq", "cti-rcm", "cti-rcm-2021", "cti-vsp", "cti-ate",
                                                 "cti-taa", "cybermetric-80", "cybermetric-500", "cybermetric-2000"};
  return names;
}

Benchmark load_benchmark(std::string_view name, const std::string& data_dir) {
  const auto& names = benchmark_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    fail_usage("unknown benchmark '" + std::string(name) + "' (expected one of " + list + ")");
  }
  if (!std::filesystem::is_directory(data_dir)) fail_input("data directory '" + data_dir + "' does not exist");
  if (name.starts_with("cybermetric-")) return load_cybermetric(std::string(name), data_dir);
  return load_cti(std::string(name), data_dir);
}

}  // namespace csq::eval
