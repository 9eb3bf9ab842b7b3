// safetensors header parser on arbitrary bytes: parse or csq::Error, views inside the buffer.
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    csq::io::SafetensorsFile file(data, size, "fuzz.safetensors");
    for (const auto& t : file.tensors())
      if (t.data < data || t.data + t.n_bytes > data + size) std::abort();
  } catch (const csq::Error&) {
  }
  return 0;
}
