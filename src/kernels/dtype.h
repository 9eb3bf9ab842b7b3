// Element types of weights and activations. The numeric values are ggml's type ids, so a
// GGUF tensor's type field maps straight onto DType; block layouts follow ggml exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace csq {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct DTypeInfo {
  const char* name;     // ggml's name: "Q4_K", "BF16", ...
  int64_t block_elems;  // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
  bool weight_type;     // csq can compute with it as a weight (dequantize_row works)
};

// Info for a ggml type id; nullptr for ids csq does not know at all.
const DTypeInfo* dtype_info(uint32_t ggml_type_id);
const DTypeInfo& dtype_info(DType type);
// Name of any ggml type id, including ones csq refuses (IQ2_XXS, TQ1_0, ...), for error messages.
std::string ggml_type_name(uint32_t ggml_type_id);

// Bytes taken by n elements of type `type`; n must be a multiple of the block size.
inline int64_t row_bytes(DType type, int64_t n) {
  const DTypeInfo& info = dtype_info(type);
  return n / info.block_elems * info.block_bytes;
}

// Decodes n consecutive elements (n a multiple of the block size) to float, bit-exactly
// as ggml's reference dequantizers do.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);
// The same, into a new vector.
std::vector<float> dequantize_vector(DType type, const void* src, int64_t n);

}  // namespace csq
