// Reference encoders for the ggml block formats. Each reproduces ggml's quantize_row_*_ref
// (the path llama-quantize takes without an importance matrix) bit for bit, so a file csq
// writes holds the same bytes llama.cpp would write from the same float input.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/quants.h"

namespace csq::quants {

// n is a multiple of the block size of the format and the input is finite (as in ggml, NaN or
// infinity gives unspecified levels); blocks are independent, so a tensor can be encoded whole
// or row by row with the same result.
void quantize_q4_0(const float* src, BlockQ4_0* dst, int64_t n);
void quantize_q4_1(const float* src, BlockQ4_1* dst, int64_t n);
void quantize_q5_0(const float* src, BlockQ5_0* dst, int64_t n);
void quantize_q5_1(const float* src, BlockQ5_1* dst, int64_t n);
void quantize_q8_0(const float* src, BlockQ8_0* dst, int64_t n);
void quantize_q2_k(const float* src, BlockQ2_K* dst, int64_t n);
void quantize_q3_k(const float* src, BlockQ3_K* dst, int64_t n);
void quantize_q4_k(const float* src, BlockQ4_K* dst, int64_t n);
void quantize_q5_k(const float* src, BlockQ5_K* dst, int64_t n);
void quantize_q6_k(const float* src, BlockQ6_K* dst, int64_t n);
// Activations for the k-quant integer dot products.
void quantize_q8_k(const float* src, BlockQ8_K* dst, int64_t n);

}  // namespace csq::quants

namespace csq {

// Whether quantize_row can produce `type` (F32, F16, BF16 and every block format above).
bool can_quantize(DType type);

// Encodes n floats (a multiple of the block size) as `type` into dst (row_bytes(type, n) bytes).
// Fails with a csq::Error for types it cannot produce.
void quantize_row(DType type, const float* src, void* dst, int64_t n);

}  // namespace csq
