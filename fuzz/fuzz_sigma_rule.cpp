// The Sigma rule reader on arbitrary YAML: rules load or become RuleProblems (never an
// exception, a crash or unbounded work: RuleLimits); loaded rules compile into a detector and
// run over a fixed event.
#include <cstdint>
#include <string>
#include <vector>

#include "detect/correlation.h"
#include "detect/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace csq::detect;
  const std::string text(reinterpret_cast<const char*>(data), size);
  RuleSet set;
  Placeholders ph{{"Admins", {"adm*", "root"}}};
  LoadOptions lo;
  lo.placeholders = &ph;
  load_rules_text(text, "fuzz.yml", lo, set);
  static const Pipeline pipeline = Pipeline::windows_default();
  for (const bool ignore : {false, true}) {
    DetectorOptions o;
    o.ignore_logsource = ignore;
    const Detector d(set, pipeline, o);
    auto scratch = d.make_scratch();
    std::vector<Match> out;
    std::string ev = R"({"Channel": "Security", "EventID": 4688, "NewProcessName": "C:\\a\\cmd.exe",
                         "CommandLine": "cmd /c whoami -all", "IpAddress": "10.1.2.3", "Count": 7,
                         "UtcTime": "2024-01-01 10:00:00.000", "User": "root"})";
    ev.reserve(ev.size() + 64);
    d.match(ev, *scratch, out);
    CorrelationEngine corr(d.correlation_rules(), set);
  }
  return 0;
}
