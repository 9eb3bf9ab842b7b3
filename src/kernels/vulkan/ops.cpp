#include "kernels/vulkan/ops.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"

namespace csq::vulkan {
namespace {

constexpr uint32_t kGroup = 64;  // local_size_x of every shader

uint32_t ceil_div(int64_t a, int64_t b) { return uint32_t((a + b - 1) / b); }

// Splits `groups` workgroups over x and y (or z) when they exceed the device's x limit.
struct Grid {
  uint32_t x, rest;
};
Grid split(const Device& device, uint32_t groups) {
  const uint32_t x = std::max<uint32_t>(1, std::min(groups, device.max_groups_x()));
  return {x, ceil_div(groups, x)};
}

const char* type_suffix(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
    case DType::Q4_K: return "q4_k";
    case DType::Q5_K: return "q5_k";
    case DType::Q6_K: return "q6_k";
    default: return nullptr;
  }
}

std::string shader_name(const char* stem, DType t) { return std::string(stem) + "_" + type_suffix(t); }

// The kv_store or attention variant for the cache's element type.
std::string cache_shader(const char* stem, DType t) {
  if (t != DType::F16 && t != DType::F32 && t != DType::Q8_0)
    fail_usage(std::string("the Vulkan device keeps its KV cache as F16, F32 or Q8_0, not ") + dtype_info(t).name);
  return shader_name(stem, t);
}

}  // namespace

bool matmul_supported(DType type) { return type_suffix(type) != nullptr; }

DeviceMatrix upload_matrix(Device& device, const kernels::Matrix& m) {
  if (!matmul_supported(m.type))
    fail_input(std::string("the Vulkan device has no kernel for ") + dtype_info(m.type).name +
               " weights (it runs F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K)");
  DeviceMatrix d{m.type, m.rows, m.cols, nullptr};
  const uint64_t bytes = uint64_t(m.rows) * uint64_t(m.row_bytes());
  d.data = device.create_buffer(bytes);
  device.upload(*d.data, 0, m.data, bytes);
  return d;
}

std::unique_ptr<Buffer> upload_floats(Device& device, const float* values, int64_t n) {
  auto b = device.create_buffer(uint64_t(n) * 4);
  device.upload(*b, 0, values, uint64_t(n) * 4);
  return b;
}

std::unique_ptr<Buffer> upload_ints(Device& device, const int32_t* values, int64_t n) {
  auto b = device.create_buffer(uint64_t(n) * 4);
  device.upload(*b, 0, values, uint64_t(n) * 4);
  return b;
}

const char* matmul_kernel_name(MatmulKernel kernel) {
  switch (kernel) {
    case MatmulKernel::Vector: return "vector";
    case MatmulKernel::Tiled: return "tiled";
    case MatmulKernel::Cooperative: return "cooperative";
  }
  return "?";
}

MatmulKernel choose_matmul_kernel(const DeviceInfo& info, int64_t n_tokens) {
  if (n_tokens <= kVectorMaxTokens) return MatmulKernel::Vector;
  return info.coopmat_f16 ? MatmulKernel::Cooperative : MatmulKernel::Tiled;
}

void matmul(Device& device, const DeviceMatrix& w, const Buffer& x, uint64_t x_offset, int64_t n_tokens,
            const Buffer& y, uint64_t y_offset, bool accumulate, std::optional<MatmulKernel> kernel) {
  struct {
    uint32_t rows, cols, row_bytes, n_tokens, x_offset, y_offset, accumulate, row_threads;
  } push{uint32_t(w.rows),     uint32_t(w.cols),   uint32_t(row_bytes(w.type, w.cols)),
         uint32_t(n_tokens),   uint32_t(x_offset), uint32_t(y_offset),
         accumulate ? 1u : 0u, 0};
  const MatmulKernel chosen = kernel.value_or(choose_matmul_kernel(device.info(), n_tokens));
  if (chosen == MatmulKernel::Cooperative) {
    if (!device.info().coopmat_f16)
      fail_usage("Vulkan device " + std::to_string(device.info().index) + " (" + device.info().name +
                 ") has no 16x16x16 float16 cooperative-matrix support (VK_NV_cooperative_matrix)");
    device.dispatch(shader_name("matmul_coopmat", w.type).c_str(), {w.data.get(), &x, &y}, push, ceil_div(w.rows, 64),
                    ceil_div(n_tokens, 64));
    return;
  }
  if (chosen == MatmulKernel::Tiled) {
    // BM x BN tiles of TM x TN per invocation (specialisation constants of matmul_tiled.comp).
    const uint32_t bm = 64, bn = 32, bk = 32, tm = 4, tn = 4;
    device.dispatch(shader_name("matmul_tiled", w.type).c_str(), {w.data.get(), &x, &y}, push, ceil_div(w.rows, bm),
                    ceil_div(n_tokens, bn), 1, {bm, bn, bk, tm, tn, (bm / tm) * (bn / tn)});
    return;
  }
  // Threads per row: enough for one 8-element group each, a power of two up to the workgroup.
  uint32_t row_threads = 1;
  while (row_threads < kGroup && int64_t(row_threads) * 8 < w.cols) row_threads *= 2;
  push.row_threads = row_threads;
  const Grid groups = split(device, ceil_div(w.rows, kGroup / row_threads));
  device.dispatch(shader_name("matmul", w.type).c_str(), {w.data.get(), &x, &y}, push, groups.x, groups.rest);
}

void embedding_lookup(Device& device, const DeviceMatrix& table, const Buffer& ids, int64_t n_tokens,
                      const Buffer& out) {
  struct {
    uint32_t cols, row_bytes, n_tokens;
  } push{uint32_t(table.cols), uint32_t(row_bytes(table.type, table.cols)), uint32_t(n_tokens)};
  device.dispatch(shader_name("get_rows", table.type).c_str(), {table.data.get(), &ids, &out}, push,
                  ceil_div(table.cols, 8 * kGroup), uint32_t(n_tokens));
}

void rmsnorm(Device& device, const Buffer& x, uint64_t x_offset, const Buffer& weight, const Buffer& y,
             uint64_t y_offset, int64_t n_rows, int64_t dim, float eps) {
  struct {
    uint32_t dim, n_rows, x_offset, y_offset;
    float eps;
  } push{uint32_t(dim), uint32_t(n_rows), uint32_t(x_offset), uint32_t(y_offset), eps};
  const Grid rows = split(device, uint32_t(n_rows));
  device.dispatch("rmsnorm", {&x, &weight, &y}, push, rows.x, 1, rows.rest);
}

std::unique_ptr<Buffer> rope_table(Device& device, const kernels::Rope& rope, int64_t n_positions) {
  const std::vector<float>& inv_freq = rope.inv_freq();
  const int64_t half = int64_t(inv_freq.size());
  std::vector<float> table(size_t(2 * half * n_positions));
  for (int64_t p = 0; p < n_positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = float(p) * inv_freq[size_t(i)];
      table[size_t(2 * (p * half + i))] = std::cos(angle);
      table[size_t(2 * (p * half + i) + 1)] = std::sin(angle);
    }
  return upload_floats(device, table.data(), int64_t(table.size()));
}

void rope(Device& device, const Buffer& x, const Buffer& table, const Buffer& meta, int64_t n_tokens, int64_t n_heads,
          int64_t head_dim, int64_t stride, bool adjacent_pairs) {
  struct {
    uint32_t n_heads, head_dim, stride, n_tokens, adjacent;
  } push{uint32_t(n_heads), uint32_t(head_dim), uint32_t(stride), uint32_t(n_tokens), adjacent_pairs ? 1u : 0u};
  device.dispatch("rope", {&x, &table, &meta}, push, ceil_div(n_heads * head_dim / 2, kGroup), uint32_t(n_tokens));
}

void silu_mul(Device& device, const Buffer& gate, const Buffer& up, int64_t n) {
  const Grid g = split(device, ceil_div(n, kGroup));
  struct {
    uint32_t n, groups_x;
  } push{uint32_t(n), g.x};
  device.dispatch("silu_mul", {&gate, &up}, push, g.x, g.rest);
}

void add(Device& device, const Buffer& x, uint64_t x_offset, const Buffer& y, uint64_t y_offset, int64_t n,
         int64_t period, float scale) {
  const Grid g = split(device, ceil_div(n, kGroup));
  struct {
    uint32_t n, period, x_offset, y_offset, groups_x;
    float scale;
  } push{uint32_t(n), uint32_t(period), uint32_t(x_offset), uint32_t(y_offset), g.x, scale};
  device.dispatch("add", {&x, &y}, push, g.x, g.rest);
}

void kv_store(Device& device, DType cache_type, const Buffer& cache, const Buffer& src, const Buffer& meta,
              int64_t n_tokens, int64_t width, int64_t n_ctx) {
  if (cache_type == DType::F16 && width % 2 != 0)
    fail_usage("an F16 KV cache on the Vulkan device needs an even row width, not " + std::to_string(width));
  // Each invocation writes two whole Q8_0 blocks (17 words), so rows hold pairs of blocks.
  if (cache_type == DType::Q8_0 && width % 64 != 0)
    fail_usage("a Q8_0 KV cache on the Vulkan device needs rows (KV heads x head_dim) of a multiple of 64 elements, not " +
               std::to_string(width) + "; use --cache-type f16");
  struct {
    uint32_t width, n_tokens, n_ctx;
  } push{uint32_t(width), uint32_t(n_tokens), uint32_t(n_ctx)};
  const int64_t threads = cache_type == DType::F16 ? width / 2 : cache_type == DType::Q8_0 ? width / 64 : width;
  device.dispatch(cache_shader("kv_store", cache_type).c_str(), {&cache, &src, &meta}, push, ceil_div(threads, kGroup),
                  uint32_t(n_tokens));
}

void attention(Device& device, DType cache_type, const Buffer& q, const Buffer& k, const Buffer& v, const Buffer& meta,
               const Buffer& out, int64_t n_tokens, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               int64_t n_ctx) {
  if (head_dim > 256) fail_usage("the Vulkan attention kernel takes head_dim up to 256, not " + std::to_string(head_dim));
  struct {
    uint32_t head_dim, n_heads, n_kv_heads, q_width, kv_width, n_ctx;
    float scale;
  } push{uint32_t(head_dim),
         uint32_t(n_heads),
         uint32_t(n_kv_heads),
         uint32_t(n_heads * head_dim),
         uint32_t(n_kv_heads * head_dim),
         uint32_t(n_ctx),
         1.0f / std::sqrt(float(head_dim))};
  device.dispatch(cache_shader("attention", cache_type).c_str(), {&q, &k, &v, &meta, &out}, push,
                  uint32_t(n_heads), uint32_t(n_tokens));
}

}  // namespace csq::vulkan
