// safetensors reader (single files and sharded Hugging Face checkpoints) and writer.
// Tensors are used in place from the memory map; every offset and size is validated first.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "kernels/dtype.h"

namespace csq::io {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;   // F32, F16, BF16, I32, I64 or F64
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
  const uint8_t* data = nullptr;
  int64_t n_bytes = 0;
  int64_t n_elements() const;
  std::string shape_string() const;  // "[4096, 256]"
};

class SafetensorsFile {
 public:
  // Throws csq::Error naming the file and the offending tensor or field.
  explicit SafetensorsFile(const std::string& path, FileMemory memory = FileMemory::Mapped);
  SafetensorsFile(const uint8_t* data, size_t size, const std::string& name);  // for fuzzing and tests

  const std::string& path() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"

 private:
  void parse(const uint8_t* data, size_t size);

  std::unique_ptr<MappedFile> map_;
  std::string name_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All safetensors files of a Hugging Face model directory: `model.safetensors`, or the shards
// listed by `model.safetensors.index.json`.
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::string& dir, FileMemory memory = FileMemory::Mapped);
  const SafetensorsTensor* find(const std::string& name) const;
  std::vector<const SafetensorsTensor*> tensors() const;
  uint64_t total_bytes() const { return total_bytes_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsTensor*> index_;
  uint64_t total_bytes_ = 0;
};

// A tensor to write: `data` holds exactly n_elements * element size bytes.
struct SafetensorsOutput {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};
void write_safetensors(const std::string& path, const std::vector<SafetensorsOutput>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A tensor declared by name, dtype and shape whose bytes are produced only while the file is
// written, so that a checkpoint larger than memory can be written one tensor at a time.
struct SafetensorsDeclared {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t n_bytes() const;
};
// Fills `bytes` with exactly the data of declared tensor `index`; called once per tensor, in order.
using SafetensorsProducer = std::function<void(size_t index, std::vector<uint8_t>& bytes)>;
void write_safetensors(const std::string& path, const std::vector<SafetensorsDeclared>& tensors,
                       const SafetensorsProducer& produce, const std::map<std::string, std::string>& metadata = {});

}  // namespace csq::io
