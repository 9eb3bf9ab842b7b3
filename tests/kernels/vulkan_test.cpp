// Every Vulkan kernel against its CPU reference, with odd sizes (rows, columns, tokens, heads
// and context lengths that fill no tile or workgroup evenly). Runs on lavapipe in CI.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "base/error.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/vulkan/ops.h"
#include "vulkan_device.h"

namespace csq {
namespace {

std::vector<float> random_floats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

// Random normal weights stored as `type`, and the matrix over those bytes.
struct StoredMatrix {
  std::vector<uint8_t> bytes;
  kernels::Matrix matrix;
};
StoredMatrix random_matrix(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> w = random_floats(rows * cols, seed);
  StoredMatrix m;
  const int64_t stride = row_bytes(type, cols);
  m.bytes.resize(size_t(rows * stride));
  for (int64_t r = 0; r < rows; ++r) quantize_row(type, w.data() + r * cols, m.bytes.data() + r * stride, cols);
  m.matrix = kernels::Matrix{type, rows, cols, m.bytes.data()};
  return m;
}

std::vector<float> download(vulkan::Device& device, const vulkan::Buffer& b, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  device.download(b, 0, v.data(), uint64_t(n) * 4);
  return v;
}

// Float32 sums in another order than the CPU's: within a few ulps of the magnitudes summed.
void expect_close(const std::vector<float>& ours, const std::vector<float>& ref, float tolerance, const char* what) {
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i)
    ASSERT_NEAR(ours[i], ref[i], tolerance * (1.0f + std::fabs(ref[i]))) << what << " element " << i;
}

TEST(VulkanDevices, ListedWithTheirFeatures) {
  const vulkan::DeviceList list = vulkan::list_devices();
  if (list.devices.empty()) GTEST_SKIP() << "no Vulkan device: " << list.problem;
  EXPECT_TRUE(list.problem.empty());
  for (const vulkan::DeviceInfo& d : list.devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.api_version, VK_API_VERSION_1_1);
    EXPECT_GT(d.max_storage_buffer_bytes, 0u);
    EXPECT_GT(d.subgroup_size, 0u);
  }
}

TEST(VulkanDevices, OpeningAMissingDeviceNamesTheCount) {
  const vulkan::DeviceList list = vulkan::list_devices();
  if (list.devices.empty()) GTEST_SKIP() << "no Vulkan device: " << list.problem;
  try {
    vulkan::Device::open(int(list.devices.size()));
    FAIL() << "opened a device that does not exist";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("this machine has " + std::to_string(list.devices.size())), std::string::npos)
        << e.what();
  }
}

struct MatmulCase {
  DType type;
  int64_t rows, cols, n_tokens;
};

class VulkanMatmul : public ::testing::TestWithParam<std::tuple<MatmulCase, vulkan::MatmulKernel>> {};

// The device decodes the stored blocks and multiplies in float32: the CPU reference
// (matmul_ref: the same decoded values, float32 dot products) up to summation order. The
// cooperative kernel rounds its inputs to float16 (11 significant bits) first. Every kernel
// runs every case, whatever choose_matmul_kernel would pick for its token count.
TEST_P(VulkanMatmul, MatchesTheReference) {
  CSQ_REQUIRE_VULKAN(device);
  const auto [c, kernel] = GetParam();
  if (kernel == vulkan::MatmulKernel::Cooperative && !device->info().coopmat_f16)
    GTEST_SKIP() << device->info().name << " has no float16 cooperative-matrix support";
  const StoredMatrix stored = random_matrix(c.type, c.rows, c.cols, uint32_t(c.rows * 7 + c.cols));
  const kernels::Matrix& m = stored.matrix;
  const std::vector<float> x = random_floats(c.n_tokens * c.cols, 99);
  std::vector<float> ref(size_t(c.n_tokens * c.rows));
  ThreadPool pool(1);
  kernels::matmul_ref(m, x.data(), c.n_tokens, ref.data(), pool);

  const vulkan::DeviceMatrix dm = vulkan::upload_matrix(*device, m);
  auto xb = vulkan::upload_floats(*device, x.data(), int64_t(x.size()));
  auto yb = device->create_buffer(uint64_t(ref.size()) * 4);
  vulkan::matmul(*device, dm, *xb, 0, c.n_tokens, *yb, 0, false, kernel);
  // Sums of cols products of unit normals: magnitude about sqrt(cols), rounding about cols ulps.
  const float ulps = kernel == vulkan::MatmulKernel::Cooperative ? 2e-3f : 2e-5f;
  expect_close(download(*device, *yb, int64_t(ref.size())), ref, ulps * std::sqrt(float(c.cols)), "y");

  // Accumulating into an offset output: y' = y + W x.
  vulkan::matmul(*device, dm, *xb, 0, c.n_tokens, *yb, 0, /*accumulate=*/true, kernel);
  std::vector<float> twice(ref);
  for (float& v : twice) v *= 2;
  expect_close(download(*device, *yb, int64_t(ref.size())), twice, 2 * ulps * std::sqrt(float(c.cols)), "2y");
}

// Rows, columns and tokens that fill neither the vector kernel's 8-token tiles nor the tiled
// kernels' 64-row, 32-or-64-token, 32-column tiles.
INSTANTIATE_TEST_SUITE_P(
    Kernels, VulkanMatmul,
    ::testing::Combine(
        ::testing::Values(MatmulCase{DType::F32, 37, 203, 1}, MatmulCase{DType::F32, 5, 1000, 11},
                          MatmulCase{DType::F32, 70, 45, 37}, MatmulCase{DType::F16, 37, 203, 3},
                          MatmulCase{DType::F16, 64, 7, 9}, MatmulCase{DType::F16, 131, 97, 65},
                          MatmulCase{DType::BF16, 41, 517, 1}, MatmulCase{DType::BF16, 3, 64, 17},
                          MatmulCase{DType::BF16, 67, 99, 33}, MatmulCase{DType::Q8_0, 37, 96, 1},
                          MatmulCase{DType::Q8_0, 19, 1056, 13}, MatmulCase{DType::Q8_0, 70, 32, 9},
                          MatmulCase{DType::Q8_0, 129, 160, 70}, MatmulCase{DType::Q4_0, 37, 96, 1},
                          MatmulCase{DType::Q4_0, 23, 608, 9}, MatmulCase{DType::Q4_0, 65, 224, 41},
                          MatmulCase{DType::Q4_K, 37, 256, 1}, MatmulCase{DType::Q4_K, 21, 768, 10},
                          MatmulCase{DType::Q4_K, 97, 512, 33}, MatmulCase{DType::Q5_K, 37, 256, 1},
                          MatmulCase{DType::Q5_K, 21, 768, 10}, MatmulCase{DType::Q5_K, 66, 256, 35},
                          MatmulCase{DType::Q6_K, 37, 256, 1}, MatmulCase{DType::Q6_K, 21, 768, 10},
                          MatmulCase{DType::Q6_K, 71, 512, 40}),
        ::testing::Values(vulkan::MatmulKernel::Vector, vulkan::MatmulKernel::Tiled,
                          vulkan::MatmulKernel::Cooperative)),
    [](const auto& info) {
      const MatmulCase& c = std::get<0>(info.param);
      return std::string(dtype_info(c.type).name) + "_" + std::to_string(c.rows) + "x" + std::to_string(c.cols) + "_t" +
             std::to_string(c.n_tokens) + "_" + vulkan::matmul_kernel_name(std::get<1>(info.param));
    });

// Generation and small batches stay on the vector kernel; larger batches go to the
// cooperative kernel exactly where the device reports its shape, to the tiled one elsewhere.
TEST(VulkanMatmulChoice, FollowsTokenCountAndDeviceFeatures) {
  vulkan::DeviceInfo plain;
  vulkan::DeviceInfo tensor_cores;
  tensor_cores.coopmat_f16 = true;
  tensor_cores.cooperative_matrix = true;
  for (const vulkan::DeviceInfo& info : {plain, tensor_cores}) {
    EXPECT_EQ(vulkan::choose_matmul_kernel(info, 1), vulkan::MatmulKernel::Vector);
    EXPECT_EQ(vulkan::choose_matmul_kernel(info, vulkan::kVectorMaxTokens), vulkan::MatmulKernel::Vector);
  }
  EXPECT_EQ(vulkan::choose_matmul_kernel(plain, vulkan::kVectorMaxTokens + 1), vulkan::MatmulKernel::Tiled);
  EXPECT_EQ(vulkan::choose_matmul_kernel(plain, 512), vulkan::MatmulKernel::Tiled);
  EXPECT_EQ(vulkan::choose_matmul_kernel(tensor_cores, vulkan::kVectorMaxTokens + 1), vulkan::MatmulKernel::Cooperative);
  EXPECT_EQ(vulkan::choose_matmul_kernel(tensor_cores, 512), vulkan::MatmulKernel::Cooperative);
  // A device with the KHR extension only (whose GLSL Debian 12's glslang cannot compile) is a plain one.
  vulkan::DeviceInfo khr_only;
  khr_only.cooperative_matrix = true;
  EXPECT_EQ(vulkan::choose_matmul_kernel(khr_only, 512), vulkan::MatmulKernel::Tiled);
}

// Asking for the cooperative kernel where the device lacks it is an error naming the device.
TEST(VulkanMatmulChoice, CooperativeKernelRefusedWithoutSupport) {
  CSQ_REQUIRE_VULKAN(device);
  if (device->info().coopmat_f16) GTEST_SKIP() << device->info().name << " has cooperative-matrix support";
  const StoredMatrix stored = random_matrix(DType::F32, 4, 8, 1);
  const vulkan::DeviceMatrix dm = vulkan::upload_matrix(*device, stored.matrix);
  auto xb = device->create_buffer(8 * 16 * 4);
  auto yb = device->create_buffer(4 * 16 * 4);
  try {
    vulkan::matmul(*device, dm, *xb, 0, 16, *yb, 0, false, vulkan::MatmulKernel::Cooperative);
    FAIL() << "ran the cooperative kernel on " << device->info().name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cooperative-matrix"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(device->info().name), std::string::npos) << e.what();
  }
}

class VulkanEmbedding : public ::testing::TestWithParam<DType> {};

// Rows decoded by the same formulas: equal to the CPU's decoding.
TEST_P(VulkanEmbedding, DecodesTheRowsOfTheIds) {
  CSQ_REQUIRE_VULKAN(device);
  const DType type = GetParam();
  const int64_t rows = 29, cols = dtype_info(type).block_elems == 1 ? 203 : 512;
  const StoredMatrix stored = random_matrix(type, rows, cols, 5);
  const kernels::Matrix& m = stored.matrix;
  const std::vector<int32_t> ids = {28, 0, 7, 7, 13};
  std::vector<float> ref(ids.size() * size_t(cols));
  kernels::embedding_lookup(m, ids.data(), int64_t(ids.size()), ref.data());
  const vulkan::DeviceMatrix dm = vulkan::upload_matrix(*device, m);
  auto idb = vulkan::upload_ints(*device, ids.data(), int64_t(ids.size()));
  auto out = device->create_buffer(ref.size() * 4);
  vulkan::embedding_lookup(*device, dm, *idb, int64_t(ids.size()), *out);
  expect_close(download(*device, *out, int64_t(ref.size())), ref, 1e-6f, "row");
}

INSTANTIATE_TEST_SUITE_P(Kernels, VulkanEmbedding,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K,
                                           DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_info(info.param).name); });

TEST(VulkanKernels, RmsNormMatchesTheReference) {
  CSQ_REQUIRE_VULKAN(device);
  const int64_t rows = 7, dim = 333;
  const std::vector<float> x = random_floats(rows * dim, 1, 3.0f), w = random_floats(dim, 2);
  std::vector<float> ref(x.size());
  kernels::rmsnorm(x.data(), w.data(), ref.data(), rows, dim, 1e-6f);
  auto xb = vulkan::upload_floats(*device, x.data(), int64_t(x.size()));
  auto wb = vulkan::upload_floats(*device, w.data(), dim);
  auto yb = device->create_buffer(x.size() * 4 + 4 * dim);
  vulkan::rmsnorm(*device, *xb, 0, *wb, *yb, uint64_t(dim), rows, dim, 1e-6f);  // into an offset output
  std::vector<float> y = download(*device, *yb, rows * dim + dim);
  y.erase(y.begin(), y.begin() + dim);
  expect_close(y, ref, 1e-5f, "normed");
  // In place, on the rows after the first.
  vulkan::rmsnorm(*device, *xb, uint64_t(dim), *wb, *xb, uint64_t(dim), rows - 1, dim, 1e-6f);
  std::vector<float> in_place = download(*device, *xb, rows * dim);
  for (int64_t i = 0; i < dim; ++i) ASSERT_EQ(in_place[size_t(i)], x[size_t(i)]) << "row 0 must stay";
  in_place.erase(in_place.begin(), in_place.begin() + dim);
  expect_close(in_place, std::vector<float>(ref.begin() + dim, ref.end()), 1e-5f, "in place");
}

class VulkanRope : public ::testing::TestWithParam<bool> {};

TEST_P(VulkanRope, RotatesAsTheCpuDoes) {
  CSQ_REQUIRE_VULKAN(device);
  const bool adjacent = GetParam();
  const int64_t head_dim = 24, n_heads = 3, stride = n_heads * head_dim + 10;  // padding after the heads
  const kernels::Rope rope(head_dim, 10000.0, 8.0, 1.0, 4.0, 8192, adjacent);
  const std::vector<int32_t> positions = {0, 5, 1999, 37, 2};
  const int64_t n = int64_t(positions.size());
  const std::vector<float> x = random_floats(n * stride, 4);
  std::vector<float> ref(x);
  for (int64_t t = 0; t < n; ++t) rope.apply(ref.data() + t * stride, n_heads, positions[size_t(t)]);
  std::vector<int32_t> meta;
  for (int32_t p : positions) meta.insert(meta.end(), {p, 0});
  auto table = vulkan::rope_table(*device, rope, 2000);
  auto metab = vulkan::upload_ints(*device, meta.data(), int64_t(meta.size()));
  auto xb = vulkan::upload_floats(*device, x.data(), int64_t(x.size()));
  vulkan::rope(*device, *xb, *table, *metab, n, n_heads, head_dim, stride, adjacent);
  // The same cos/sin values, the same two products and sum per element: identical.
  expect_close(download(*device, *xb, int64_t(x.size())), ref, 1e-6f, "rotated");
}

INSTANTIATE_TEST_SUITE_P(Kernels, VulkanRope, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "AdjacentPairs" : "Halves"; });

TEST(VulkanKernels, SiluMulAndAddMatchTheReference) {
  CSQ_REQUIRE_VULKAN(device);
  const int64_t n = 1003, period = 17;
  const std::vector<float> gate = random_floats(n, 6, 4.0f), up = random_floats(n, 7), bias = random_floats(period, 8);
  std::vector<float> ref(gate);
  kernels::silu_mul(ref.data(), up.data(), n);
  auto gb = vulkan::upload_floats(*device, gate.data(), n);
  auto ub = vulkan::upload_floats(*device, up.data(), n);
  vulkan::silu_mul(*device, *gb, *ub, n);
  expect_close(download(*device, *gb, n), ref, 1e-6f, "silu_mul");

  // x[3 + i] += 0.5 * bias[i % 17] for i < n - 3: a bias broadcast over rows, scaled, at an offset.
  auto bb = vulkan::upload_floats(*device, bias.data(), period);
  vulkan::add(*device, *ub, 3, *bb, 0, n - 3, period, 0.5f);
  std::vector<float> added(up);
  for (int64_t i = 0; i < n - 3; ++i) added[size_t(3 + i)] += 0.5f * bias[size_t(i % period)];
  expect_close(download(*device, *ub, n), added, 0.0f, "add");
}

struct AttentionCase {
  DType cache;
  int64_t n_heads, n_kv_heads, head_dim;
};

class VulkanAttention : public ::testing::TestWithParam<AttentionCase> {};

// Several sequences at once: tokens of different sequences and positions in one batch, each
// attending to its own sequence's positions 0..position of a cache stored by kv_store. A Q8_0
// cache is quantized on the device as quantize_q8_0 does on the CPU.
TEST_P(VulkanAttention, MatchesTheReferencePerHead) {
  CSQ_REQUIRE_VULKAN(device);
  const AttentionCase c = GetParam();
  const int64_t n_seqs = 3, n_ctx = 150, width = c.n_kv_heads * c.head_dim, q_width = c.n_heads * c.head_dim;
  const std::vector<int32_t> lengths = {1, 131, 70};  // positions filled per sequence
  // Fill the caches through kv_store, one batch with every position of every sequence.
  std::vector<int32_t> meta;
  for (int32_t s = 0; s < n_seqs; ++s)
    for (int32_t p = 0; p < lengths[size_t(s)]; ++p) meta.insert(meta.end(), {p, s});
  const int64_t n_rows = int64_t(meta.size()) / 2;
  const std::vector<float> keys = random_floats(n_rows * width, 11), values = random_floats(n_rows * width, 12);
  auto kc = device->create_buffer(uint64_t(row_bytes(c.cache, n_seqs * n_ctx * width)));
  auto vc = device->create_buffer(uint64_t(row_bytes(c.cache, n_seqs * n_ctx * width)));
  auto metab = vulkan::upload_ints(*device, meta.data(), int64_t(meta.size()));
  auto kb = vulkan::upload_floats(*device, keys.data(), int64_t(keys.size()));
  auto vb = vulkan::upload_floats(*device, values.data(), int64_t(values.size()));
  vulkan::kv_store(*device, c.cache, *kc, *kb, *metab, n_rows, width, n_ctx);
  vulkan::kv_store(*device, c.cache, *vc, *vb, *metab, n_rows, width, n_ctx);

  // Queries: the last position of each sequence, and an earlier one of the long sequence.
  const std::vector<std::pair<int32_t, int32_t>> queries = {{0, 0}, {130, 1}, {69, 2}, {64, 1}};
  std::vector<int32_t> qmeta;
  for (auto [p, s] : queries) qmeta.insert(qmeta.end(), {p, s});
  const int64_t nq = int64_t(queries.size());
  const std::vector<float> q = random_floats(nq * q_width, 13, 2.0f);
  auto qb = vulkan::upload_floats(*device, q.data(), int64_t(q.size()));
  auto qmetab = vulkan::upload_ints(*device, qmeta.data(), int64_t(qmeta.size()));
  auto out = device->create_buffer(q.size() * 4);
  vulkan::attention(*device, c.cache, *qb, *kc, *vc, *qmetab, *out, nq, c.n_heads, c.n_kv_heads, c.head_dim, n_ctx);
  const std::vector<float> ours = download(*device, *out, int64_t(q.size()));

  // The reference reads the same rows rounded to the cache type.
  auto rounded = [&](const std::vector<float>& rows) {
    std::vector<uint8_t> stored(size_t(row_bytes(c.cache, width)));
    std::vector<float> r(rows.size());
    for (int64_t i = 0; i < n_rows; ++i) {
      quantize_row(c.cache, rows.data() + i * width, stored.data(), width);
      dequantize_row(c.cache, stored.data(), r.data() + i * width, width);
    }
    return r;
  };
  const std::vector<float> kr = rounded(keys), vr = rounded(values);
  std::vector<float> ref(static_cast<size_t>(c.head_dim)), scores(static_cast<size_t>(n_ctx));
  const int64_t group = c.n_heads / c.n_kv_heads;
  for (int64_t t = 0; t < nq; ++t) {
    const auto [pos, seq] = queries[size_t(t)];
    int64_t first_row = 0;
    for (int32_t s = 0; s < seq; ++s) first_row += lengths[size_t(s)];
    for (int64_t h = 0; h < c.n_heads; ++h) {
      const int64_t g = h / group;
      kernels::attention_head(q.data() + t * q_width + h * c.head_dim, kr.data() + first_row * width + g * c.head_dim,
                              vr.data() + first_row * width + g * c.head_dim, width, pos + 1, c.head_dim, ref.data(),
                              scores.data());
      for (int64_t d = 0; d < c.head_dim; ++d)
        ASSERT_NEAR(ours[size_t(t * q_width + h * c.head_dim + d)], ref[size_t(d)], 2e-5f * (1.f + std::fabs(ref[size_t(d)])))
            << "token " << t << " head " << h << " dim " << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, VulkanAttention,
                         ::testing::Values(AttentionCase{DType::F16, 4, 2, 32}, AttentionCase{DType::F32, 3, 1, 24},
                                           AttentionCase{DType::F16, 2, 2, 130}, AttentionCase{DType::F32, 8, 2, 256},
                                           AttentionCase{DType::Q8_0, 4, 2, 32}, AttentionCase{DType::Q8_0, 6, 3, 128}),
                         [](const auto& info) {
                           return std::string(dtype_info(info.param.cache).name) + "_h" +
                                  std::to_string(info.param.n_heads) + "_kv" + std::to_string(info.param.n_kv_heads) +
                                  "_d" + std::to_string(info.param.head_dim);
                         });

// Q8_0 rows are stored two blocks per invocation; a row of an odd number of blocks is refused
// with the width and the way out, not written over its neighbour's words.
TEST(VulkanKernels, Q8_0CacheRowsOfAnOddBlockCountAreRefused) {
  CSQ_REQUIRE_VULKAN(device);
  auto cache = device->create_buffer(uint64_t(row_bytes(DType::Q8_0, 4 * 96)));
  auto src = device->create_buffer(96 * 4);
  auto meta = device->create_buffer(8);
  try {
    vulkan::kv_store(*device, DType::Q8_0, *cache, *src, *meta, 1, 96, 4);
    FAIL() << "stored a 96-wide Q8_0 row";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not 96"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--cache-type f16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace csq
