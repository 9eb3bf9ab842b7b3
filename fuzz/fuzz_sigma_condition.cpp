// The Sigma condition parser on arbitrary text: a tree or csq::Error, never a crash or a
// stack overflow (nesting is bounded).
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "detect/rule.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> names{"selection", "selection_img", "selection_cli", "filter_main",
                                              "filter_optional_x", "_hidden", "keywords"};
  try {
    csq::detect::parse_condition(std::string(reinterpret_cast<const char*>(data), size), names);
  } catch (const csq::Error&) {
  }
  return 0;
}
