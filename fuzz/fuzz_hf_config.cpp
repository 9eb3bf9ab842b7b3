// Hugging Face config.json interpretation on arbitrary text: a config or csq::Error.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    csq::config_from_hf(j, "fuzz/config.json");
  } catch (const csq::Error&) {
  } catch (const nlohmann::json::exception&) {
    // A wrongly typed field must surface as csq::Error, never as a JSON exception.
    std::abort();
  }
  return 0;
}
