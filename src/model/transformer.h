// The decoder forward pass over a batch of tokens from independent sequences, with a
// key/value cache per sequence. Used for prompt chunks, single-sequence decoding and the
// server's continuous batching alike.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/thread_pool.h"
#include "model/model.h"

namespace csq {

struct DeviceKvCache;

// Tokens to run through the model together. Token i of sequence seq_ids[i] sits at
// positions[i]; it attends to positions 0..positions[i] of that sequence's cache, so earlier
// positions must be in the cache already or earlier in this batch.
struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<int32_t> seq_ids;
  std::vector<uint8_t> want_logits;  // 1: produce logits for this token

  void add(int32_t token, int32_t position, int32_t seq_id, bool logits) {
    tokens.push_back(token);
    positions.push_back(position);
    seq_ids.push_back(seq_id);
    want_logits.push_back(logits ? 1 : 0);
  }
  int64_t size() const { return int64_t(tokens.size()); }
  void clear() { *this = Batch(); }
};

// Keys and values (after RoPE) of every layer, for n_seqs sequences of up to n_ctx positions,
// stored as F16 by default (as llama.cpp does: half the memory and half the bytes each attention
// step reads, and the quantized paths only reproduce llama.cpp's results with its rounding), F32,
// or Q8_0 (llama.cpp's -ctk/-ctv q8_0: about half of F16 again, for long contexts on small
// machines; rows quantized in blocks of 32 as they are stored).
// Memory is reserved up front but only touched as positions are written.
class KvCache {
 public:
  KvCache(const ModelConfig& config, int32_t n_seqs, int64_t n_ctx, DType type = DType::F16);
  ~KvCache();

  int32_t n_seqs() const { return n_seqs_; }
  int64_t n_ctx() const { return n_ctx_; }
  DType type() const { return type_; }
  int64_t row_width() const { return width_; }  // elements per position: n_kv_heads * head_dim
  uint64_t bytes() const { return uint64_t(2 * n_layers_ * n_seqs_ * n_ctx_) * uint64_t(row_bytes_); }

  // Stores the key and value (row_width floats each) of one position, converted to type().
  void store(int64_t layer, int32_t seq, int64_t position, const float* key, const float* value);
  // Position p of the sequence starts at element p * row_width() (of type()).
  const void* keys(int64_t layer, int32_t seq) const { return k_.get() + offset(layer, seq); }
  const void* values(int64_t layer, int32_t seq) const { return v_.get() + offset(layer, seq); }
  // Copies positions [0, n) of sequence `from` into sequence `to` (shared prompt prefixes).
  void copy_prefix(int32_t from, int32_t to, int64_t n);

  // The copy in a device's memory, made by the first forward pass of a model placed on a
  // device (model/device_model.h); the host arrays stay untouched then.
  DeviceKvCache* device() const { return device_.get(); }
  void set_device(std::unique_ptr<DeviceKvCache> device);
  int64_t n_layers() const { return n_layers_; }

 private:
  int64_t offset(int64_t layer, int32_t seq) const { return ((layer * n_seqs_) + seq) * n_ctx_ * row_bytes_; }
  int64_t n_layers_, width_;
  int32_t n_seqs_;
  int64_t n_ctx_;
  DType type_;
  int64_t row_bytes_;
  std::unique_ptr<uint8_t[]> k_, v_;
  std::unique_ptr<DeviceKvCache> device_;
};

// Runs `batch` through the model, writing keys/values into `cache` and, for every token with
// want_logits, one row of vocab_size logits to `logits` (in batch order). Throws csq::Error when a
// token id, position or sequence id is out of range.
void forward(const Model& model, const Batch& batch, KvCache& cache, ThreadPool& pool, std::vector<float>& logits);

}  // namespace csq
