#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/partial_file.h"

namespace csq::io {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // safetensors' own limit

struct DTypeName {
  const char* name;
  DType type;
  int64_t size;
};
constexpr DTypeName kDTypes[] = {
    {"F32", DType::F32, 4}, {"F16", DType::F16, 2}, {"BF16", DType::BF16, 2},
    {"I32", DType::I32, 4}, {"I64", DType::I64, 8}, {"F64", DType::F64, 8},
};

const DTypeName* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* dtype_str(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.name;
  fail_runtime("safetensors: cannot write dtype " + std::string(dtype_info(t).name));
}

int64_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.size;
  return 0;
}

// Where a safetensors file's tensor data starts (8 + the header length its first 8 bytes give),
// or 0 where they cannot be read (parse() then names the problem).
size_t payload_offset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t header_len = 0;
  if (!in.read(reinterpret_cast<char*>(&header_len), 8) || header_len > kMaxHeaderBytes) return 0;
  return size_t(8 + header_len);
}

}  // namespace

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string SafetensorsTensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsFile::SafetensorsFile(const std::string& path, FileMemory memory)
    : map_(std::make_unique<MappedFile>(path, memory, payload_offset(path))), name_(path) {
  parse(map_->data(), map_->size());
}

SafetensorsFile::SafetensorsFile(const uint8_t* data, size_t size, const std::string& name) : name_(name) {
  parse(data, size);
}

void SafetensorsFile::parse(const uint8_t* data, size_t size) {
  if (size < 8) fail_input(name_ + ": truncated: " + std::to_string(size) + " bytes, no safetensors header");
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    fail_input(name_ + ": header length " + std::to_string(header_len) + " exceeds the file size " +
               std::to_string(size) + " (truncated or not a safetensors file)");
  const char* header_begin = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header = nlohmann::json::parse(header_begin, header_begin + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object())
    fail_input(name_ + ": the header is not a JSON object (not a safetensors file?)");
  const uint8_t* payload = data + 8 + header_len;
  const uint64_t payload_size = size - 8 - header_len;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& entry = it.value();
    if (key == "__metadata__") {
      if (!entry.is_object()) fail_input(name_ + ": __metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m)
        if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    const std::string where = name_ + ": tensor '" + key + "'";
    if (!entry.is_object()) fail_input(where + ": entry is not an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) fail_input(where + ": missing string field 'dtype'");
    if (shape_it == entry.end() || !shape_it->is_array()) fail_input(where + ": missing array field 'shape'");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
      fail_input(where + ": 'data_offsets' must be an array [begin, end]");
    const std::string dtype = dtype_it->get<std::string>();
    const DTypeName* dt = find_dtype(dtype);
    if (!dt) fail_input(where + ": dtype " + dtype + " is not supported (expected F32, F16, BF16, I32, I64 or F64)");

    SafetensorsTensor t;
    t.name = key;
    t.dtype = dt->type;
    uint64_t elements = 1;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned()) fail_input(where + ": shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && elements > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(dt->size) / dim)
        fail_input(where + ": shape is too large");
      elements *= dim;
      t.shape.push_back(int64_t(dim));
    }
    const auto& begin_j = (*offsets_it)[0];
    const auto& end_j = (*offsets_it)[1];
    if (!begin_j.is_number_unsigned() || !end_j.is_number_unsigned())
      fail_input(where + ": data_offsets must be non-negative integers");
    const uint64_t begin = begin_j.get<uint64_t>(), end = end_j.get<uint64_t>();
    if (begin > end || end > payload_size)
      fail_input(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] lie outside the " + std::to_string(payload_size) + " data bytes (truncated file?)");
    if (end - begin != elements * uint64_t(dt->size))
      fail_input(where + ": " + std::to_string(end - begin) + " bytes of data for shape " + t.shape_string() +
                 " of " + dtype + " (expected " + std::to_string(elements * uint64_t(dt->size)) + ")");
    t.data = payload + begin;
    t.n_bytes = int64_t(end - begin);
    if (end > begin) ranges.emplace_back(begin, end);
    index_[key] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) fail_input(name_ + ": tensor data ranges overlap (corrupt file)");
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& dir, FileMemory memory) : dir_(dir) {
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::vector<std::string> shard_names;
  if (file_exists(index_path)) {
    nlohmann::json index = nlohmann::json::parse(read_text_file(index_path), nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail_input(index_path + ": expected a JSON object with a 'weight_map' object");
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail_input(index_path + ": weight_map['" + it.key() + "'] is not a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard == "..")
        fail_input(index_path + ": shard name '" + shard + "' must be a plain file name in the model directory");
      if (std::find(shard_names.begin(), shard_names.end(), shard) == shard_names.end()) shard_names.push_back(shard);
    }
  } else if (file_exists(dir + "/model.safetensors")) {
    shard_names.push_back("model.safetensors");
  } else {
    fail_input(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const std::string& shard : shard_names) {
    files_.push_back(std::make_unique<SafetensorsFile>(dir + "/" + shard, memory));
    for (const SafetensorsTensor& t : files_.back()->tensors()) {
      if (!index_.emplace(t.name, &t).second)
        fail_input(dir + "/" + shard + ": tensor '" + t.name + "' also appears in another shard");
      total_bytes_ += uint64_t(t.n_bytes);
    }
  }
}

const SafetensorsTensor* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<const SafetensorsTensor*> SafetensorsCheckpoint::tensors() const {
  std::vector<const SafetensorsTensor*> out;
  for (const auto& [name, t] : index_) out.push_back(t);
  return out;
}

int64_t SafetensorsDeclared::n_bytes() const {
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  return elements * dtype_size(dtype);
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsDeclared>& tensors,
                       const SafetensorsProducer& produce, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const uint64_t size = uint64_t(t.n_bytes());
    header[t.name] = {{"dtype", dtype_str(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string text = header.dump();
  // The payload on a 64-byte boundary (the format asks for 8): mapped weights then start on a
  // cache line, as loaded ones do (MappedFile::kLoadAlignment).
  text.append((64 - (8 + text.size()) % 64) % 64, ' ');
  PartialFile f(path);
  const uint64_t len = text.size();
  bool ok = std::fwrite(&len, 8, 1, f.get()) == 1 && std::fwrite(text.data(), 1, text.size(), f.get()) == text.size();
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < tensors.size() && ok; ++i) {
    bytes.clear();
    produce(i, bytes);
    if (int64_t(bytes.size()) != tensors[i].n_bytes())
      fail_runtime("write_safetensors: tensor '" + tensors[i].name + "' data size does not match its shape");
    ok = std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size();
  }
  f.commit(ok);
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsOutput>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsDeclared> declared;
  for (const auto& t : tensors) declared.push_back({t.name, t.dtype, t.shape});
  write_safetensors(
      path, declared, [&](size_t i, std::vector<uint8_t>& bytes) { bytes = tensors[i].data; }, metadata);
}

}  // namespace csq::io
