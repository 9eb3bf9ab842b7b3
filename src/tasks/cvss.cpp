#include "tasks/cvss.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"

namespace csq::tasks {
namespace {

struct MetricSpec {
  const char* name;
  const char* values;  // allowed value letters
  bool base;
};

// Table 15 of the specification (v3.1): base, temporal and environmental metrics.
constexpr MetricSpec kMetrics[] = {
    {"AV", "NALP", true},   {"AC", "LH", true},     {"PR", "NLH", true},    {"UI", "NR", true},
    {"S", "UC", true},      {"C", "HLN", true},     {"I", "HLN", true},     {"A", "HLN", true},
    {"E", "XUPFH", false},  {"RL", "XOTWU", false}, {"RC", "XURC", false},  {"CR", "XLMH", false},
    {"IR", "XLMH", false},  {"AR", "XLMH", false},  {"MAV", "XNALP", false}, {"MAC", "XLH", false},
    {"MPR", "XNLH", false}, {"MUI", "XNR", false},  {"MS", "XUC", false},   {"MC", "XNLH", false},
    {"MI", "XNLH", false},  {"MA", "XNLH", false},
};

bool fail(std::string* why, const std::string& message) {
  if (why) *why = message;
  return false;
}

double weight_av(char v) { return v == 'N' ? 0.85 : v == 'A' ? 0.62 : v == 'L' ? 0.55 : 0.2; }
double weight_ac(char v) { return v == 'L' ? 0.77 : 0.44; }
double weight_pr(char v, bool changed) {
  if (v == 'N') return 0.85;
  if (v == 'L') return changed ? 0.68 : 0.62;
  return changed ? 0.5 : 0.27;
}
double weight_ui(char v) { return v == 'N' ? 0.85 : 0.62; }
double weight_cia(char v) { return v == 'H' ? 0.56 : v == 'L' ? 0.22 : 0.0; }

}  // namespace

std::string CvssVector::str() const {
  std::string out = version == CvssVersion::V30 ? "CVSS:3.0" : "CVSS:3.1";
  const std::pair<const char*, char> parts[] = {{"AV", av}, {"AC", ac}, {"PR", pr}, {"UI", ui},
                                                {"S", s},   {"C", c},   {"I", i},   {"A", a}};
  for (const auto& [name, value] : parts) out += std::string("/") + name + ":" + value;
  return out;
}

bool try_parse_cvss(std::string_view text, CvssVector* out, std::string* why) {
  CvssVector v;
  std::string_view rest;
  if (text.starts_with("CVSS:3.1/")) {
    v.version = CvssVersion::V31;
  } else if (text.starts_with("CVSS:3.0/")) {
    v.version = CvssVersion::V30;
  } else {
    return fail(why, "CVSS vector '" + std::string(text) + "' must start with CVSS:3.1/ or CVSS:3.0/");
  }
  rest = text.substr(9);
  bool seen[std::size(kMetrics)] = {};
  char values[std::size(kMetrics)] = {};
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    const size_t colon = part.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail(why, "CVSS vector: '" + std::string(part) + "' is not METRIC:VALUE");
    const std::string_view name = part.substr(0, colon);
    const std::string_view value = part.substr(colon + 1);
    size_t m = 0;
    while (m < std::size(kMetrics) && name != kMetrics[m].name) ++m;
    if (m == std::size(kMetrics)) return fail(why, "CVSS vector: unknown metric '" + std::string(name) + "'");
    if (seen[m]) return fail(why, "CVSS vector: metric " + std::string(name) + " appears twice");
    if (value.size() != 1 || !std::strchr(kMetrics[m].values, value[0]))
      return fail(why, "CVSS vector: metric " + std::string(name) + " has value '" + std::string(value) +
                           "' (expected one of " + kMetrics[m].values + ")");
    seen[m] = true;
    values[m] = value[0];
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  for (size_t m = 0; m < std::size(kMetrics); ++m)
    if (kMetrics[m].base && !seen[m])
      return fail(why, std::string("CVSS vector: base metric ") + kMetrics[m].name + " is missing");
  v.av = values[0], v.ac = values[1], v.pr = values[2], v.ui = values[3];
  v.s = values[4], v.c = values[5], v.i = values[6], v.a = values[7];
  if (out) *out = v;
  return true;
}

CvssVector parse_cvss(std::string_view text) {
  CvssVector v;
  std::string why;
  if (!try_parse_cvss(text, &v, &why)) fail_input(why);
  return v;
}

double cvss_roundup(double x) {
  const long long scaled = std::llround(x * 100000.0);
  if (scaled % 10000 == 0) return double(scaled) / 100000.0;
  return double(scaled / 10000 + 1) / 10.0;
}

double cvss_base_score(const CvssVector& v) {
  const bool changed = v.s == 'C';
  const double iss = 1.0 - (1.0 - weight_cia(v.c)) * (1.0 - weight_cia(v.i)) * (1.0 - weight_cia(v.a));
  const double impact = changed ? 7.52 * (iss - 0.029) - 3.25 * std::pow(iss - 0.02, 15) : 6.42 * iss;
  const double exploitability = 8.22 * weight_av(v.av) * weight_ac(v.ac) * weight_pr(v.pr, changed) * weight_ui(v.ui);
  if (impact <= 0) return 0.0;
  return cvss_roundup(std::min(changed ? 1.08 * (impact + exploitability) : impact + exploitability, 10.0));
}

const char* cvss_severity(double score) {
  if (score == 0.0) return "None";
  if (score < 4.0) return "Low";
  if (score < 7.0) return "Medium";
  if (score < 9.0) return "High";
  return "Critical";
}

}  // namespace csq::tasks
