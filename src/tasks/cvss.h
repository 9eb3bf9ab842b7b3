// CVSS v3.x base metrics: parse a vector string, compute the base score and severity with the
// formulas and the Roundup of the FIRST CVSS v3.1 specification (sections 7.1, 7.4, 5 and
// Appendix A).
#pragma once

#include <string>
#include <string_view>

namespace csq::tasks {

enum class CvssVersion { V30, V31 };

// The eight base metrics, each held as the letter of its value (AV 'N', AC 'L', ...).
struct CvssVector {
  CvssVersion version = CvssVersion::V31;
  char av = 0, ac = 0, pr = 0, ui = 0, s = 0, c = 0, i = 0, a = 0;

  // Canonical form: prefix and base metrics in the specification's order.
  std::string str() const;
  bool same_base(const CvssVector& o) const {
    return av == o.av && ac == o.ac && pr == o.pr && ui == o.ui && s == o.s && c == o.c && i == o.i &&
           a == o.a;
  }
};

// Parses "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" (or the CVSS:3.0 prefix). Metrics may come
// in any order (as the specification allows); every base metric is required, none may repeat,
// temporal and environmental metrics are validated and ignored. Case-sensitive, as specified.
// Throws csq::Error (BadInput) naming the offending metric.
CvssVector parse_cvss(std::string_view text);
// As parse_cvss, but returns false (and the reason in *why when given) instead of throwing.
bool try_parse_cvss(std::string_view text, CvssVector* out, std::string* why = nullptr);

// The specification's Roundup: the smallest one-decimal number >= x, computed on integers so
// that floating-point error cannot push a score up a tenth. With v3.0 vectors it gives the same
// scores as exact decimal arithmetic (checked over all 2,592 base vectors).
double cvss_roundup(double x);

double cvss_base_score(const CvssVector& v);
// "None" (0.0), "Low" (0.1-3.9), "Medium" (4.0-6.9), "High" (7.0-8.9), "Critical" (9.0-10.0).
const char* cvss_severity(double score);

}  // namespace csq::tasks
