#include "io/gguf.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "base/error.h"

namespace csq::io {
namespace {

constexpr uint64_t kMaxArrayDepth = 4;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// Bounds-checked little-endian cursor over the header; every read names what it was reading.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& file) : data_(data), size_(size), file_(file) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_string(const std::string& what) {
    const uint64_t len = read<uint64_t>(what + " (string length)");
    if (len > remaining())
      fail_input(file_ + ": " + what + ": string length " + std::to_string(len) + " exceeds the " +
                 std::to_string(remaining()) + " bytes left in the file (truncated or corrupt header)");
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

  void need(size_t n, const std::string& what) const {
    if (n > remaining())
      fail_input(file_ + ": truncated at byte " + std::to_string(pos_) + " while reading " + what + " (needs " +
                 std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left)");
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

GgufValue read_value(Cursor& cur, GgufType type, const std::string& key, const std::string& file, uint64_t depth) {
  GgufValue v;
  v.type = type;
  const std::string what = "value of '" + key + "'";
  switch (type) {
    case GgufType::U8: v.u = cur.read<uint8_t>(what); break;
    case GgufType::I8: v.i = cur.read<int8_t>(what); break;
    case GgufType::U16: v.u = cur.read<uint16_t>(what); break;
    case GgufType::I16: v.i = cur.read<int16_t>(what); break;
    case GgufType::U32: v.u = cur.read<uint32_t>(what); break;
    case GgufType::I32: v.i = cur.read<int32_t>(what); break;
    case GgufType::U64: v.u = cur.read<uint64_t>(what); break;
    case GgufType::I64: v.i = cur.read<int64_t>(what); break;
    case GgufType::F32: v.f = cur.read<float>(what); break;
    case GgufType::F64: v.f = cur.read<double>(what); break;
    case GgufType::Bool: {
      const uint8_t b = cur.read<uint8_t>(what);
      if (b > 1) fail_input(file + ": metadata '" + key + "': bool value " + std::to_string(b) + " is not 0 or 1");
      v.u = b;
      break;
    }
    case GgufType::String: v.str = cur.read_string(what); break;
    case GgufType::Array: {
      if (depth >= kMaxArrayDepth)
        fail_input(file + ": metadata '" + key + "': arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      const uint32_t elem = cur.read<uint32_t>(what + " (array element type)");
      if (!valid_type(elem))
        fail_input(file + ": metadata '" + key + "': unknown array element type " + std::to_string(elem));
      v.array_type = GgufType(elem);
      const uint64_t count = cur.read<uint64_t>(what + " (array length)");
      // Every element takes at least one byte (strings: 8), so a count beyond that is corrupt.
      const size_t min_elem = v.array_type == GgufType::String ? 8 : v.array_type == GgufType::Array ? 12
                                                                   : scalar_size(v.array_type);
      if (count > cur.remaining() / min_elem)
        fail_input(file + ": metadata '" + key + "': array length " + std::to_string(count) +
                   " cannot fit in the " + std::to_string(cur.remaining()) + " bytes left in the file");
      v.array.reserve(size_t(count));
      for (uint64_t k = 0; k < count; ++k) v.array.push_back(read_value(cur, v.array_type, key, file, depth + 1));
      break;
    }
  }
  return v;
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(type) <= 12 ? names[uint32_t(type)] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16: case GgufType::U32:
    case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}

int64_t GgufValue::as_int(const std::string& key) const {
  if (!is_integer())
    fail_input("metadata '" + key + "': expected an integer, found " + gguf_type_name(type));
  if (type == GgufType::U64 && u > uint64_t(std::numeric_limits<int64_t>::max()))
    fail_input("metadata '" + key + "': value " + std::to_string(u) + " out of range");
  switch (type) {
    case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64: return int64_t(u);
    default: return i;
  }
}

double GgufValue::as_float(const std::string& key) const {
  if (is_float()) return f;
  if (is_integer()) return double(as_int(key));
  fail_input("metadata '" + key + "': expected a number, found " + gguf_type_name(type));
}

GgufFile::GgufFile(const std::string& path, FileMemory memory)
    : map_(std::make_unique<MappedFile>(path, memory)), name_(path) {
  data_ = map_->data();
  size_ = map_->size();
  parse();
}

GgufFile::GgufFile(const uint8_t* data, size_t size, const std::string& name) : name_(name), data_(data), size_(size) {
  parse();
}

void GgufFile::parse() {
  Cursor cur(data_, size_, name_);
  cur.need(4, "the magic number");
  if (std::memcmp(data_, "GGUF", 4) != 0) fail_input(name_ + ": not a GGUF file (bad magic; expected 'GGUF')");
  cur.read<uint32_t>("magic");
  version_ = cur.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    fail_input(name_ + ": GGUF version " + std::to_string(version_) + " is not supported (expected 2 or 3)");
  const uint64_t n_tensors = cur.read<uint64_t>("tensor count");
  const uint64_t n_kv = cur.read<uint64_t>("metadata count");
  // Minimum encoded sizes: a key/value pair 8+1+4+1 bytes, a tensor info 8+1+4+8+4+8 bytes.
  if (n_kv > cur.remaining() / 14)
    fail_input(name_ + ": metadata count " + std::to_string(n_kv) + " cannot fit in a file of " +
               std::to_string(size_) + " bytes (truncated or corrupt header)");
  if (n_tensors > cur.remaining() / 33)
    fail_input(name_ + ": tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " +
               std::to_string(size_) + " bytes (truncated or corrupt header)");

  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string key(cur.read_string("metadata key #" + std::to_string(k)));
    const uint32_t type = cur.read<uint32_t>("type of '" + key + "'");
    if (!valid_type(type))
      fail_input(name_ + ": metadata '" + key + "' has unknown value type " + std::to_string(type));
    GgufValue value = read_value(cur, GgufType(type), key, name_, 0);
    if (!metadata_.emplace(key, std::move(value)).second)
      fail_input(name_ + ": metadata key '" + key + "' appears twice");
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::U32)
      fail_input(name_ + ": general.alignment must be u32, found " + gguf_type_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      fail_input(name_ + ": general.alignment " + std::to_string(a->u) + " is not a power of two");
    alignment_ = a->u;
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo info;
    info.name = std::string(cur.read_string("name of tensor #" + std::to_string(t)));
    const std::string where = name_ + ": tensor '" + info.name + "'";
    const uint32_t n_dims = cur.read<uint32_t>("dimension count of '" + info.name + "'");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail_input(where + ": " + std::to_string(n_dims) + " dimensions (expected 1 to " + std::to_string(kMaxDims) + ")");
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = cur.read<uint64_t>("dimensions of '" + info.name + "'");
      if (dim == 0 || dim > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(elements))
        fail_input(where + ": dimension " + std::to_string(d) + " = " + std::to_string(dim) +
                   " is zero or makes the element count overflow");
      info.dims.push_back(int64_t(dim));
      elements *= int64_t(dim);
    }
    info.n_elements = elements;
    const uint32_t type = cur.read<uint32_t>("type of '" + info.name + "'");
    const DTypeInfo* type_info = dtype_info(type);
    if (!type_info || !type_info->weight_type)
      fail_input(where + " has type " + ggml_type_name(type) +
                 ", which csq does not support (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
                 "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    info.type = DType(type);
    if (info.dims[0] % type_info->block_elems != 0)
      fail_input(where + ": row length " + std::to_string(info.dims[0]) + " is not a multiple of the " +
                 type_info->name + " block size " + std::to_string(type_info->block_elems));
    info.n_bytes = elements / type_info->block_elems * type_info->block_bytes;
    info.offset = cur.read<uint64_t>("data offset of '" + info.name + "'");
    if (info.offset % alignment_ != 0)
      fail_input(where + ": data offset " + std::to_string(info.offset) + " is not aligned to " +
                 std::to_string(alignment_) + " bytes");
    if (!tensor_index_.emplace(info.name, tensors_.size()).second) fail_input(where + " appears twice");
    tensors_.push_back(std::move(info));
  }

  const uint64_t data_start = (uint64_t(cur.pos()) + alignment_ - 1) / alignment_ * alignment_;
  if (data_start > size_ && !tensors_.empty())
    fail_input(name_ + ": truncated: the tensor data section would start at byte " + std::to_string(data_start) +
               " but the file has " + std::to_string(size_) + " bytes");
  for (GgufTensorInfo& info : tensors_) {
    const uint64_t available = size_ - data_start;
    if (info.offset > available || uint64_t(info.n_bytes) > available - info.offset)
      fail_input(name_ + ": tensor '" + info.name + "': data [" + std::to_string(info.offset) + ", +" +
                 std::to_string(info.n_bytes) + ") runs past the end of the file (" + std::to_string(available) +
                 " bytes of tensor data; truncated download?)");
    info.data = data_ + data_start + info.offset;
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string GgufFile::get_string(const std::string& key) const {
  auto v = get_string_opt(key);
  if (!v) fail_input(name_ + ": required metadata '" + key + "' is missing");
  return *v;
}

std::optional<std::string> GgufFile::get_string_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::String)
    fail_input(name_ + ": metadata '" + key + "': expected a string, found " + gguf_type_name(v->type));
  return std::string(v->str);
}

std::optional<int64_t> GgufFile::get_int_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  try {
    return v->as_int(key);
  } catch (const Error& e) {
    fail_input(name_ + ": " + e.what());
  }
}

std::optional<double> GgufFile::get_float_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  try {
    const double f = v->as_float(key);
    if (!std::isfinite(f)) fail_input("metadata '" + key + "': value is not finite");
    return f;
  } catch (const Error& e) {
    fail_input(name_ + ": " + e.what());
  }
}

std::optional<bool> GgufFile::get_bool_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::Bool)
    fail_input(name_ + ": metadata '" + key + "': expected a bool, found " + gguf_type_name(v->type));
  return v->u != 0;
}

namespace {
const GgufValue& require_array(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) fail_input(f.path() + ": required metadata '" + key + "' is missing");
  if (v->type != GgufType::Array)
    fail_input(f.path() + ": metadata '" + key + "': expected an array, found " + gguf_type_name(v->type));
  return *v;
}
}  // namespace

std::vector<std::string_view> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = require_array(*this, key);
  if (v.array_type != GgufType::String)
    fail_input(name_ + ": metadata '" + key + "': expected an array of strings, found an array of " +
               gguf_type_name(v.array_type));
  std::vector<std::string_view> out;
  out.reserve(v.array.size());
  for (const GgufValue& e : v.array) out.push_back(e.str);
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = require_array(*this, key);
  std::vector<int64_t> out;
  out.reserve(v.array.size());
  try {
    for (const GgufValue& e : v.array) out.push_back(e.as_int(key));
  } catch (const Error& e) {
    fail_input(name_ + ": " + e.what());
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = require_array(*this, key);
  std::vector<double> out;
  out.reserve(v.array.size());
  try {
    for (const GgufValue& e : v.array) out.push_back(e.as_float(key));
  } catch (const Error& e) {
    fail_input(name_ + ": " + e.what());
  }
  return out;
}

}  // namespace csq::io
