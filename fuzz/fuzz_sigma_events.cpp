// The event readers on arbitrary bytes: record splitting (JSON Lines, object streams, gzip),
// normalisation of every layout and matching; every failure is a named problem.
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "detect/engine.h"

namespace {

const csq::detect::Detector& detector() {
  using namespace csq::detect;
  static const RuleSet rules = [] {
    RuleSet s;
    load_rules_text(R"(title: a
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\cmd.exe'
        CommandLine|contains|windash: ' -c '
    keywords: ['evil']
    condition: sel or keywords
)",
                    "fuzz.yml", {}, s);
    return s;
  }();
  static const Detector d(rules, Pipeline::windows_default(), {});
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace csq::detect;
  static auto scratch = detector().make_scratch();
  try {
    RecordReader reader(ByteSource::from_string(std::string(reinterpret_cast<const char*>(data), size), "fuzz"),
                        1 << 16);
    Record rec;
    std::string problem;
    std::vector<Match> out;
    for (int i = 0; i < 1000; ++i) {
      const auto st = reader.next(rec, problem);
      if (st == RecordReader::Status::End) break;
      if (st == RecordReader::Status::Ok) detector().match(rec.text, *scratch, out);
    }
  } catch (const csq::Error&) {
    // corrupt gzip
  }
  return 0;
}
