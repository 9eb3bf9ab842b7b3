#include "tasks/answers.h"

#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "tasks/cvss.h"
#include "tasks/regex.h"

namespace csq::tasks {
namespace {

using Groups = std::vector<std::string>;

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return out;
}

std::string_view trim(std::string_view s, std::string_view chars = " \t\r\n") {
  const size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (true) {
    const size_t nl = text.find('\n', pos);
    lines.push_back(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    if (nl == std::string_view::npos) return lines;
    pos = nl + 1;
  }
}

std::string_view last_nonempty_line(std::string_view text) {
  const auto lines = split_lines(text);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (!trim(*it).empty()) return trim(*it);
  return {};
}

std::optional<Groups> last_of(std::vector<Groups> matches) {
  if (matches.empty()) return std::nullopt;
  return std::move(matches.back());
}

Answer accept(std::string value, bool proper = true) {
  Answer a;
  a.parsed = true;
  a.value = std::move(value);
  a.proper = proper;
  return a;
}

Answer cvss_answer(const std::string& vector, bool proper = true) {
  CvssVector v;
  if (!try_parse_cvss(vector, &v)) return {};
  return accept(v.str(), proper);
}

// Main technique ids of every T-number in `text`, sorted and unique, joined by commas.
std::string technique_set(std::string_view text) {
  static const Regex id(R"((?i)\bT\d{4}(?:\.\d{3})?\b)");
  std::set<std::string> ids;
  for (const auto& m : id.find_all(text)) ids.insert(main_technique(upper(m[0])));
  std::string out;
  for (const auto& t : ids) out += (out.empty() ? "" : ",") + t;
  return out;
}

// ---- shared by the cybersecqwen and ctibench protocols, which publish no rule for these ----

// The ids on the line of the last "Answer:" (CTI-ATE's instruction asks for a final line that
// begins with it), else those of the last non-empty line.
Answer attack_after_answer(std::string_view text) {
  static const Regex marker(R"((?i)\banswer\s*:([^\n]*))");
  const auto m = marker.find_all(text);
  std::string ids = technique_set(m.empty() ? last_nonempty_line(text) : std::string_view(m.back()[0]));
  if (ids.empty()) return {};
  return accept(std::move(ids));
}

// "Threat Actor: NAME" when present (last one), else the last non-empty line.
Answer actor_generic(std::string_view text) {
  static const Regex labelled(R"((?i)threat\s+actor\s*:[ \t*]*([^\n]+))");
  const auto m = labelled.find_all(text);
  std::string_view name = m.empty() ? last_nonempty_line(text) : std::string_view(m.back()[0]);
  name = trim(name, " \t\r\n*.\"'`");
  if (name.empty()) return {};
  return accept(std::string(name));
}

// ---- cybersecqwen ----

Answer cybersecqwen_mcq(std::string_view text) {
  // Each stage is a regex search: its first match wins. The authors' patterns carry an
  // ignore-case flag, so the letter matches in any case and is upper-cased; it must not be
  // followed by a word character, so that "Answer: Data ..." is not read as D.
  static const Regex stages[] = {
      Regex(R"((?i)answer\s*:\s*\(?([A-D])\)?(?!\w))"),
      Regex(R"((?i)answer\s+is\s*:?\s*\(?([A-D])\)?(?!\w))"),
  };
  static const Regex option(R"((?i)\boption\s+\(?([A-D])\)?(?!\w))");
  static const Regex lone_letter(R"(^[\s*(]*([A-Da-d])[\s*).]*$)");
  auto first_of = [](const Regex& r, std::string_view t) -> std::optional<std::string> {
    const auto all = r.find_all(t);
    if (all.empty()) return std::nullopt;
    return upper(all.front()[0]);
  };
  for (const auto& stage : stages)
    if (const auto letter = first_of(stage, text)) return accept(*letter);
  if (const auto g = last_of(lone_letter.find_all(last_nonempty_line(text)))) return accept(upper((*g)[0]));
  if (const auto letter = first_of(option, text)) return accept(*letter);
  return {};
}

Answer cybersecqwen_cwe(std::string_view text) {
  static const Regex cwe(R"((?i)CWE-\d+)");
  if (const auto g = last_of(cwe.find_all(text))) return accept(upper((*g)[0]));
  return {};
}

Answer cybersecqwen_cvss(std::string_view text) {
  static const Regex vec(
      R"((?i)(CVSS:3\.\d/)?(AV:[A-Z]+/AC:[A-Z]+/PR:[A-Z]+/UI:[A-Z]+/S:[A-Z]+/C:[A-Z]+/I:[A-Z]+/A:[A-Z]+))");
  const auto g = last_of(vec.find_all(text));
  if (!g) return {};
  return cvss_answer(upper(((*g)[0].empty() ? "CVSS:3.1/" : (*g)[0]) + (*g)[1]));
}

// ---- ctibench: format_mcq / format_rcm / format_vsp of model-prediction.ipynb, then the
// validity rules of evaluation.ipynb (upper-cased; MCQ valid in {A,B,C,D,X}; RCM valid when it
// starts with CWE-; VSP valid when "CVSS:3.0/" + answer parses) ----

bool is_abcd(char c) { return c >= 'A' && c <= 'D'; }

// One line of format_mcq: "A)" prefix, a trailing capital A-D, or a trailing "**" after the
// letter. Returns 0 for no rule, -1 where Python would raise (short "**" line).
int mcq_line_rule(std::string_view line) {
  if (line.size() >= 2 && is_abcd(line[0]) && line[1] == ')') return line[0];
  if (!line.empty() && is_abcd(line.back())) return line.back();
  if (line.ends_with("**")) return line.size() >= 3 ? line[line.size() - 3] : -1;
  return 0;
}

std::string_view rstrip(std::string_view s) {
  const size_t e = s.find_last_not_of(" \t\r\n\v\f");
  return e == std::string_view::npos ? std::string_view{} : s.substr(0, e + 1);
}

Answer ctibench_mcq(std::string_view text) {
  const auto lines = split_lines(text);
  std::string_view line = rstrip(lines.back());
  int rule = mcq_line_rule(line);
  if (rule == 0 && line.empty()) {
    if (lines.size() < 2) return {};  // IndexError in the notebook: recorded as 'Error'
    rule = mcq_line_rule(rstrip(lines[lines.size() - 2]));
  }
  if (rule < 0) return {};
  std::string value;
  if (rule > 0) {
    value = upper(std::string(1, char(rule)));
  } else {  // the notebook keeps the whole response, lines joined by spaces
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) value += ' ';
      value.append(lines[k]);
    }
    value = upper(value);
  }
  if (value != "A" && value != "B" && value != "C" && value != "D" && value != "X") return {};
  return accept(value);
}

Answer ctibench_cwe(std::string_view text) {
  static const Regex cwe(R"(CWE-\d+)");
  const auto g = last_of(cwe.find_all(text));
  std::string value = upper(g ? std::string_view((*g)[0]) : text);
  if (!value.starts_with("CWE-")) return {};
  return accept(std::move(value));
}

Answer ctibench_cvss(std::string_view text) {
  static const Regex vec(
      R"(AV:[A-Za-z]+/AC:[A-Za-z]+/PR:[A-Za-z]+/UI:[A-Za-z]+/S:[A-Za-z]+/C:[A-Za-z]+/I:[A-Za-z]+/A:[A-Za-z]+)");
  const auto g = last_of(vec.find_all(text));
  return cvss_answer("CVSS:3.0/" + upper(g ? std::string_view((*g)[0]) : text));
}

// ---- faith: answer formats tried in order; the first that yields a value wins ----

struct FaithFormat {
  Regex pattern;
  bool unique;  // match_if_unique: several matches count if they agree; else match_if_singular
  std::function<std::string(const Groups&)> transform;
};

std::optional<std::pair<std::string, bool>> faith_match(const std::vector<FaithFormat>& formats,
                                                        std::string_view text) {
  for (size_t k = 0; k < formats.size(); ++k) {
    const auto& f = formats[k];
    const auto matches = f.pattern.find_all(text);
    if (matches.empty()) continue;
    if (matches.size() > 1 && !f.unique) continue;
    const std::string first = f.transform(matches[0]);
    bool agree = true;
    for (const auto& m : matches) agree = agree && f.transform(m) == first;
    if (agree) return std::make_pair(first, k == 0);
  }
  return std::nullopt;
}

std::string upper0(const Groups& g) { return upper(g[0]); }

Answer faith_mcq(std::string_view text) {
  static const std::vector<FaithFormat> formats = [] {
    std::vector<FaithFormat> f;
    f.push_back({Regex(R"((?i)\banswer\s*:\s*\(?([A-D])\b)"), true, upper0});
    f.push_back({Regex(R"((?i)\banswer\s+is:?\s+(?:\(|\*\*)?([A-Z])\b)"), true, upper0});
    f.push_back({Regex(R"(\(([A-Z])\))"), false, upper0});
    f.push_back({Regex(R"((?i)\boption\s+([A-Z])\b)"), false, upper0});
    f.push_back({Regex(R"((?i)^\W*([A-Z])\W*$)"), false, upper0});
    return f;
  }();
  const auto m = faith_match(formats, text);
  return m ? accept(m->first, m->second) : Answer{};
}

Answer faith_cwe(std::string_view text) {
  static const std::vector<FaithFormat> formats = [] {
    std::vector<FaithFormat> f;
    f.push_back({Regex(R"((?i)\b(cwe-\d+)\b)"), true, upper0});
    f.push_back({Regex(R"((?i)\b(?:cwe|id):\s+(\d+)\b)"), true, [](const Groups& g) { return "CWE-" + g[0]; }});
    return f;
  }();
  const auto m = faith_match(formats, text);
  return m ? accept(m->first, m->second) : Answer{};
}

Answer faith_cvss(std::string_view text) {
  static const std::vector<FaithFormat> formats = [] {
    std::vector<FaithFormat> f;
    f.push_back({Regex(R"((?i)(cvss:3\.\d(?:/\w+:\w+)+)\b)"), true,
                 [](const Groups& g) { return upper(trim(g[0])); }});
    f.push_back({Regex(R"((?i)((?:/\w+:\w+){2,})\b)"), true,
                 [](const Groups& g) { return "CVSS:3.0" + upper(trim(g[0])); }});
    return f;
  }();
  const auto m = faith_match(formats, text);
  return m ? cvss_answer(m->first, m->second) : Answer{};
}

Answer faith_attack(std::string_view text) {
  static const std::vector<FaithFormat> formats = [] {
    std::vector<FaithFormat> f;
    f.push_back({Regex(R"((?i)\banswer\s*:\s*((?:t\d+,\s*)*t\d+)\b)"), true, upper0});
    return f;
  }();
  const auto m = faith_match(formats, text);
  if (!m) return {};
  std::string ids = technique_set(m->first);
  return ids.empty() ? Answer{} : accept(std::move(ids), m->second);
}

Answer faith_actor(std::string_view text) {
  static const std::vector<FaithFormat> formats = [] {
    std::vector<FaithFormat> f;
    f.push_back({Regex(R"((?i)threat actor:\s+((?:\w+ )*\w+)\b)"), true,
                 [](const Groups& g) {
                   std::string s(trim(g[0]));
                   for (char& c : s)
                     if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
                   return s;
                 }});
    return f;
  }();
  const auto m = faith_match(formats, text);
  return m ? accept(m->first, m->second) : Answer{};
}

}  // namespace

std::string main_technique(std::string_view id) {
  const size_t dot = id.find('.');
  return std::string(id.substr(0, dot));
}

std::string strip_think(std::string_view text) {
  const size_t close = text.rfind("</think>");
  if (close != std::string_view::npos) text = text.substr(close + 8);
  const size_t open = text.find("<think>");
  if (open != std::string_view::npos) text = text.substr(0, open);
  return std::string(text);
}

Answer parse_answer(AnswerParser parser, AnswerKind kind, std::string_view response) {
  const std::string text = strip_think(response);
  switch (parser) {
    case AnswerParser::Cybersecqwen:
      switch (kind) {
        case AnswerKind::Mcq: return cybersecqwen_mcq(text);
        case AnswerKind::Cwe: return cybersecqwen_cwe(text);
        case AnswerKind::Cvss: return cybersecqwen_cvss(text);
        case AnswerKind::Attack: return attack_after_answer(text);
        case AnswerKind::Actor: return actor_generic(text);
      }
      break;
    case AnswerParser::Ctibench:
      switch (kind) {
        case AnswerKind::Mcq: return ctibench_mcq(text);
        case AnswerKind::Cwe: return ctibench_cwe(text);
        case AnswerKind::Cvss: return ctibench_cvss(text);
        case AnswerKind::Attack: return attack_after_answer(text);
        case AnswerKind::Actor: return actor_generic(text);
      }
      break;
    case AnswerParser::Faith:
      switch (kind) {
        case AnswerKind::Mcq: return faith_mcq(text);
        case AnswerKind::Cwe: return faith_cwe(text);
        case AnswerKind::Cvss: return faith_cvss(text);
        case AnswerKind::Attack: return faith_attack(text);
        case AnswerKind::Actor: return faith_actor(text);
      }
      break;
  }
  return {};
}

const char* parser_name(AnswerParser parser) {
  switch (parser) {
    case AnswerParser::Cybersecqwen: return "cybersecqwen";
    case AnswerParser::Ctibench: return "ctibench";
    case AnswerParser::Faith: return "faith";
  }
  return "?";
}

std::optional<AnswerParser> parser_from_name(std::string_view name) {
  for (AnswerParser p : {AnswerParser::Cybersecqwen, AnswerParser::Ctibench, AnswerParser::Faith})
    if (name == parser_name(p)) return p;
  return std::nullopt;
}

}  // namespace csq::tasks
