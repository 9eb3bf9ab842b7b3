// GGUF header parser and model-config extraction on arbitrary bytes: every input must either
// parse or fail with csq::Error; tensor data views must stay inside the buffer.
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "io/gguf.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    csq::io::GgufFile gguf(data, size, "fuzz.gguf");
    for (const auto& t : gguf.tensors())
      if (t.data < data || t.data + t.n_bytes > data + size) std::abort();
    csq::config_from_gguf(gguf);
  } catch (const csq::Error&) {
  }
  return 0;
}
