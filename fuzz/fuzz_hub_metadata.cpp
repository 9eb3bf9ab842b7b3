// What csq pull and csq verify read from elsewhere: the Hub's model info (from the network) and
// csq.lock (carried across an air gap). The first byte picks the parser; either gives a result
// or csq::Error.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "io/hub_pull.h"
#include "io/model_lock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] & 1) csq::io::hub::parse_model_info(text, "fuzz/model-info");
    else csq::io::parse_lock(text, "fuzz/csq.lock");
  } catch (const csq::Error&) {
  } catch (const nlohmann::json::exception&) {
    // A wrongly typed field must surface as csq::Error, never as a JSON exception.
    std::abort();
  }
  return 0;
}
