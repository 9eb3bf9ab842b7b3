// Writes GGUF v3 files: metadata in insertion order, tensors aligned to general.alignment.
// Used by the quantizer, the synthetic-model generator, converters and tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace csq::io {

class GgufWriter {
 public:
  void set_u32(const std::string& key, uint32_t value);
  void set_i32(const std::string& key, int32_t value);
  void set_u64(const std::string& key, uint64_t value);
  void set_f32(const std::string& key, float value);
  void set_bool(const std::string& key, bool value);
  void set_string(const std::string& key, const std::string& value);
  void set_string_array(const std::string& key, const std::vector<std::string>& values);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& values);
  void set_f32_array(const std::string& key, const std::vector<float>& values);

  // dims in ggml order (dims[0] contiguous); `bytes` must be exactly the tensor's size.
  void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& dims,
                  std::vector<uint8_t> bytes);

  // Declares a tensor whose bytes are produced only while the file is written (see the
  // write overload below), so that a model larger than memory can be written tensor by tensor.
  void add_tensor_info(const std::string& name, DType type, const std::vector<int64_t>& dims);

  // Fills `bytes` with the data of tensor `index` (in add order); called once per tensor
  // declared with add_tensor_info, in file order.
  using TensorProducer = std::function<void(size_t index, std::vector<uint8_t>& bytes)>;

  // Writes the file; throws csq::Error naming the path on I/O failure, or when a tensor was
  // declared without bytes and no producer is given.
  void write(const std::string& path) const { write(path, nullptr); }
  void write(const std::string& path, const TensorProducer& produce) const;

 private:
  std::vector<uint8_t> kv_;  // encoded key/value pairs
  uint64_t kv_count_ = 0;
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> bytes;  // empty when streamed
    uint64_t size = 0;
    bool streamed = false;
  };
  std::vector<Tensor> tensors_;
  uint64_t alignment_ = 32;
};

}  // namespace csq::io
