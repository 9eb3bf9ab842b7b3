// EVTX reader on arbitrary bytes: records or reported problems, never a crash. The first byte
// picks what the rest is: 0 a whole file, else the first chunk of a file whose 4 KiB header is
// valid (so that mutations reach the chunk, record and Binary XML parsers directly). The seeds
// in fuzz/corpus/fuzz_evtx are tests/detect/evtx_builder.h's sample_evtx(), cut after its
// records: "\x01" + its chunk, and "\x00" + the file.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "detect/evtx.h"
#include "../tests/detect/evtx_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> file;
  if (data[0] == 0) {
    file.assign(data + 1, data + size);
  } else {
    file = csq::detect::testing::evtx_file({}, 1);
    file.insert(file.end(), data + 1, data + size);
  }
  try {
    uint64_t records = 0, problems = 0;
    const auto stats = csq::detect::read_evtx(
        std::span<const uint8_t>(file), "fuzz.evtx",
        [&](csq::detect::EvtxRecord&& r) {
          ++records;
          if (r.time.size() < 27 || !r.event.is_object()) std::abort();
          (void)r.event.dump();  // every string must be valid UTF-8
        },
        [&](const csq::detect::EvtxProblem& p) {
          ++problems;
          if (p.reason.empty()) std::abort();
        });
    if (stats.records != records || stats.problems != problems) std::abort();
  } catch (const csq::Error&) {
  }
  return 0;
}
