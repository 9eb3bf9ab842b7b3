// Reads reference tensors (token ids, logits) from the fixtures' safetensors files.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace csq::test {

class Reference {
 public:
  explicit Reference(const std::string& path) : file_(path) {}
  bool has(const std::string& name) const { return file_.find(name) != nullptr; }
  const io::SafetensorsTensor& tensor(const std::string& name) const {
    const io::SafetensorsTensor* t = file_.find(name);
    if (!t) throw std::runtime_error(file_.path() + ": no reference tensor " + name);
    return *t;
  }
  std::vector<int32_t> ints(const std::string& name) const { return copy<int32_t>(name, DType::I32); }
  std::vector<float> floats(const std::string& name) const { return copy<float>(name, DType::F32); }

 private:
  template <typename T>
  std::vector<T> copy(const std::string& name, DType expected) const {
    const io::SafetensorsTensor& t = tensor(name);
    if (t.dtype != expected) throw std::runtime_error(name + ": unexpected dtype");
    std::vector<T> out(size_t(t.n_bytes) / sizeof(T));
    std::memcpy(out.data(), t.data, size_t(t.n_bytes));
    return out;
  }
  io::SafetensorsFile file_;
};

}  // namespace csq::test
