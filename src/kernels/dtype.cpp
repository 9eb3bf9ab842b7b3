#include "kernels/dtype.h"

#include "base/error.h"
#include "base/half.h"
#include "kernels/quants.h"

namespace csq {
namespace {

struct Entry {
  uint32_t id;
  DTypeInfo info;
};

constexpr Entry kTypes[] = {
    {0, {"F32", 1, 4, true}},      {1, {"F16", 1, 2, true}},      {2, {"Q4_0", 32, 18, true}},
    {3, {"Q4_1", 32, 20, true}},   {6, {"Q5_0", 32, 22, true}},   {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},   {9, {"Q8_1", 32, 36, false}},  {10, {"Q2_K", 256, 84, true}},
    {11, {"Q3_K", 256, 110, true}}, {12, {"Q4_K", 256, 144, true}}, {13, {"Q5_K", 256, 176, true}},
    {14, {"Q6_K", 256, 210, true}}, {15, {"Q8_K", 256, 292, false}}, {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},    {26, {"I32", 1, 4, false}},    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},    {30, {"BF16", 1, 2, true}},
};

// ggml types csq knows by name only, so that a refusal can say what the file holds.
constexpr std::pair<uint32_t, const char*> kRefusedNames[] = {
    {4, "Q4_2 (removed from ggml)"}, {5, "Q4_3 (removed from ggml)"}, {16, "IQ2_XXS"}, {17, "IQ2_XS"},
    {18, "IQ3_XXS"}, {19, "IQ1_S"}, {20, "IQ4_NL"}, {21, "IQ3_S"}, {22, "IQ2_S"}, {23, "IQ4_XS"},
    {29, "IQ1_M"}, {34, "TQ1_0"}, {35, "TQ2_0"}, {39, "MXFP4"},
};

}  // namespace

const DTypeInfo* dtype_info(uint32_t ggml_type_id) {
  for (const Entry& e : kTypes)
    if (e.id == ggml_type_id) return &e.info;
  return nullptr;
}

const DTypeInfo& dtype_info(DType type) {
  const DTypeInfo* info = dtype_info(uint32_t(type));
  if (!info) fail_runtime("internal: unknown dtype id " + std::to_string(uint32_t(type)));
  return *info;
}

std::string ggml_type_name(uint32_t ggml_type_id) {
  if (const DTypeInfo* info = dtype_info(ggml_type_id)) return info->name;
  for (const auto& [id, name] : kRefusedNames)
    if (id == ggml_type_id) return name;
  return "unknown type id " + std::to_string(ggml_type_id);
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  using namespace quants;
  switch (type) {
    case DType::F32: {
      const float* s = static_cast<const float*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = s[i];
      return;
    }
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::Q4_0: return dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, n);
    case DType::Q4_1: return dequantize_q4_1(static_cast<const BlockQ4_1*>(src), dst, n);
    case DType::Q5_0: return dequantize_q5_0(static_cast<const BlockQ5_0*>(src), dst, n);
    case DType::Q5_1: return dequantize_q5_1(static_cast<const BlockQ5_1*>(src), dst, n);
    case DType::Q8_0: return dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, n);
    case DType::Q2_K: return dequantize_q2_k(static_cast<const BlockQ2_K*>(src), dst, n);
    case DType::Q3_K: return dequantize_q3_k(static_cast<const BlockQ3_K*>(src), dst, n);
    case DType::Q4_K: return dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, n);
    case DType::Q5_K: return dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, n);
    case DType::Q6_K: return dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, n);
    default: fail_input(std::string("cannot compute with tensors of type ") + dtype_info(type).name);
  }
}

std::vector<float> dequantize_vector(DType type, const void* src, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(type, src, out.data(), n);
  return out;
}

}  // namespace csq
