#include "io/gguf_writer.h"

#include <cstdio>
#include <cstring>

#include "base/error.h"
#include "io/gguf.h"
#include "io/partial_file.h"

namespace csq::io {
namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void put_key(std::vector<uint8_t>& out, const std::string& key, GgufType type) {
  put_string(out, key);
  put<uint32_t>(out, uint32_t(type));
}

}  // namespace

void GgufWriter::set_u32(const std::string& key, uint32_t value) {
  put_key(kv_, key, GgufType::U32);
  put(kv_, value);
  ++kv_count_;
  if (key == "general.alignment") alignment_ = value;
}
void GgufWriter::set_i32(const std::string& key, int32_t value) {
  put_key(kv_, key, GgufType::I32);
  put(kv_, value);
  ++kv_count_;
}
void GgufWriter::set_u64(const std::string& key, uint64_t value) {
  put_key(kv_, key, GgufType::U64);
  put(kv_, value);
  ++kv_count_;
}
void GgufWriter::set_f32(const std::string& key, float value) {
  put_key(kv_, key, GgufType::F32);
  put(kv_, value);
  ++kv_count_;
}
void GgufWriter::set_bool(const std::string& key, bool value) {
  put_key(kv_, key, GgufType::Bool);
  put<uint8_t>(kv_, value ? 1 : 0);
  ++kv_count_;
}
void GgufWriter::set_string(const std::string& key, const std::string& value) {
  put_key(kv_, key, GgufType::String);
  put_string(kv_, value);
  ++kv_count_;
}
void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& values) {
  put_key(kv_, key, GgufType::Array);
  put<uint32_t>(kv_, uint32_t(GgufType::String));
  put<uint64_t>(kv_, values.size());
  for (const auto& v : values) put_string(kv_, v);
  ++kv_count_;
}
void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& values) {
  put_key(kv_, key, GgufType::Array);
  put<uint32_t>(kv_, uint32_t(GgufType::I32));
  put<uint64_t>(kv_, values.size());
  for (int32_t v : values) put(kv_, v);
  ++kv_count_;
}
void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& values) {
  put_key(kv_, key, GgufType::Array);
  put<uint32_t>(kv_, uint32_t(GgufType::F32));
  put<uint64_t>(kv_, values.size());
  for (float v : values) put(kv_, v);
  ++kv_count_;
}

namespace {

// Bytes of a tensor of this shape and type; throws when dims[0] is not a whole number of blocks.
uint64_t tensor_bytes(const std::string& name, DType type, const std::vector<int64_t>& dims) {
  int64_t elements = 1;
  for (int64_t d : dims) elements *= d;
  const DTypeInfo& info = dtype_info(type);
  if (dims.empty() || dims[0] % info.block_elems != 0)
    fail_runtime("GgufWriter: tensor '" + name + "' has a row length that is not a whole number of " + info.name +
                 " blocks");
  return uint64_t(elements / info.block_elems * info.block_bytes);
}

}  // namespace

void GgufWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& dims,
                            std::vector<uint8_t> bytes) {
  const uint64_t size = tensor_bytes(name, type, dims);
  if (bytes.size() != size)
    fail_runtime("GgufWriter: tensor '" + name + "' has " + std::to_string(bytes.size()) +
                 " bytes, which does not match its shape and type " + dtype_info(type).name);
  tensors_.push_back({name, type, dims, std::move(bytes), size, false});
}

void GgufWriter::add_tensor_info(const std::string& name, DType type, const std::vector<int64_t>& dims) {
  tensors_.push_back({name, type, dims, {}, tensor_bytes(name, type, dims), true});
}

void GgufWriter::write(const std::string& path, const TensorProducer& produce) const {
  std::vector<uint8_t> header;
  header.insert(header.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(header, 3);
  put<uint64_t>(header, tensors_.size());
  put<uint64_t>(header, kv_count_);
  header.insert(header.end(), kv_.begin(), kv_.end());
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const Tensor& t : tensors_) {
    put_string(header, t.name);
    put<uint32_t>(header, uint32_t(t.dims.size()));
    for (int64_t d : t.dims) put<uint64_t>(header, uint64_t(d));
    put<uint32_t>(header, uint32_t(t.type));
    put<uint64_t>(header, offset);
    offsets.push_back(offset);
    offset += (t.size + alignment_ - 1) / alignment_ * alignment_;
  }
  header.resize((header.size() + alignment_ - 1) / alignment_ * alignment_, 0);

  PartialFile f(path);
  bool ok = std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
  const std::vector<uint8_t> padding(alignment_, 0);
  std::vector<uint8_t> streamed;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    const std::vector<uint8_t>* bytes = &t.bytes;
    if (t.streamed) {
      if (!produce) fail_runtime("GgufWriter: no producer for the bytes of tensor '" + t.name + "'");
      streamed.clear();
      produce(i, streamed);
      if (streamed.size() != t.size)
        fail_runtime("GgufWriter: tensor '" + t.name + "' was produced with " + std::to_string(streamed.size()) +
                     " bytes, expected " + std::to_string(t.size));
      bytes = &streamed;
    }
    ok = ok && std::fwrite(bytes->data(), 1, bytes->size(), f.get()) == bytes->size();
    const size_t pad = (alignment_ - bytes->size() % alignment_) % alignment_;
    ok = ok && std::fwrite(padding.data(), 1, pad, f.get()) == pad;
  }
  f.commit(ok);
}

}  // namespace csq::io
