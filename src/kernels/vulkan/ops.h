// The forward pass's kernels on a Vulkan device (shaders in shaders/*.comp). Each records a
// dispatch into the device's command stream; nothing runs until Device::finish() or a
// download. Buffers hold float32 activations unless named otherwise; offsets count floats.
// Each kernel is tested against its CPU reference in tests/kernels/vulkan_test.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "kernels/ops.h"
#include "kernels/vulkan/device.h"

namespace csq::vulkan {

// Kernels the device runs for these weight types (block layouts as kernels/quants.h).
bool matmul_supported(DType type);

// A weight matrix uploaded once, in its stored type.
struct DeviceMatrix {
  DType type = DType::F32;
  int64_t rows = 0, cols = 0;
  std::unique_ptr<Buffer> data;
};
// Throws csq::Error naming the type when the device has no kernel for it.
DeviceMatrix upload_matrix(Device& device, const kernels::Matrix& m);
std::unique_ptr<Buffer> upload_floats(Device& device, const float* values, int64_t n);
std::unique_ptr<Buffer> upload_ints(Device& device, const int32_t* values, int64_t n);

// The kernels behind matmul(): Vector (shaders/matmul.comp: rows split over invocations, 8
// tokens sharing each decoded weight; generation and small batches), Tiled
// (matmul_tiled.comp: shared-memory tiles of weights and activations; prompts and batches) and
// Cooperative (matmul_coopmat.comp: the tiled scheme on cooperative-matrix units, float16
// inputs and float32 sums).
enum class MatmulKernel { Vector, Tiled, Cooperative };
const char* matmul_kernel_name(MatmulKernel kernel);
// Batches of more tokens than this go to a tiled kernel.
constexpr int64_t kVectorMaxTokens = 8;
// The kernel matmul() runs for n_tokens on a device like `info`: Vector up to kVectorMaxTokens,
// then Cooperative where info.coopmat_f16, Tiled otherwise.
MatmulKernel choose_matmul_kernel(const DeviceInfo& info, int64_t n_tokens);

// y[y_offset + t * rows + r] = (or +=, with accumulate) sum_c W[r, c] x[x_offset + t * cols + c],
// with the kernel choose_matmul_kernel picks unless `kernel` names one (tests and benchmarks;
// Cooperative throws csq::Error on a device without coopmat_f16).
void matmul(Device& device, const DeviceMatrix& w, const Buffer& x, uint64_t x_offset, int64_t n_tokens,
            const Buffer& y, uint64_t y_offset, bool accumulate = false,
            std::optional<MatmulKernel> kernel = std::nullopt);
// out[t, :] = table row ids[t] decoded to float.
void embedding_lookup(Device& device, const DeviceMatrix& table, const Buffer& ids, int64_t n_tokens, const Buffer& out);
// y = x / sqrt(mean(x^2) + eps) * weight, n_rows rows of dim; x and y may be the same buffer.
void rmsnorm(Device& device, const Buffer& x, uint64_t x_offset, const Buffer& weight, const Buffer& y,
             uint64_t y_offset, int64_t n_rows, int64_t dim, float eps);

// cos and sin of every (position < n_positions, frequency) pair, computed on the host exactly
// as kernels::Rope::apply does.
std::unique_ptr<Buffer> rope_table(Device& device, const kernels::Rope& rope, int64_t n_positions);
// Rotates n_heads vectors of head_dim per token (token t's at t * stride) at the token's position;
// `meta` holds (position, sequence) int pairs per token.
void rope(Device& device, const Buffer& x, const Buffer& table, const Buffer& meta, int64_t n_tokens, int64_t n_heads,
          int64_t head_dim, int64_t stride, bool adjacent_pairs);

// gate[i] = silu(gate[i]) * up[i]
void silu_mul(Device& device, const Buffer& gate, const Buffer& up, int64_t n);
// x[x_offset + i] += scale * y[y_offset + i % period] for i < n.
void add(Device& device, const Buffer& x, uint64_t x_offset, const Buffer& y, uint64_t y_offset, int64_t n,
         int64_t period, float scale = 1.0f);

// Key/value caches of one layer: F16, F32 or Q8_0 elements (Q8_0: rows of a multiple of 64),
// sequence s's position p at element (s * n_ctx + p) * width. kv_store writes token t's row of
// `src` at its (position, sequence).
void kv_store(Device& device, DType cache_type, const Buffer& cache, const Buffer& src, const Buffer& meta,
              int64_t n_tokens, int64_t width, int64_t n_ctx);
// Causal attention for every (token, query head) over its sequence's positions 0..position:
// q, out: [n_tokens, n_heads * head_dim]; query head h uses key/value head h / (n_heads / n_kv_heads).
void attention(Device& device, DType cache_type, const Buffer& q, const Buffer& k, const Buffer& v, const Buffer& meta,
               const Buffer& out, int64_t n_tokens, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               int64_t n_ctx);

}  // namespace csq::vulkan
