// Quantized weight rows of raw block bytes for the kernel tests: every byte pattern a file could
// hold, with finite fp16 scales patched in so the products stay comparable.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "base/half.h"
#include "kernels/dtype.h"
#include "kernels/quants.h"

namespace csq::kernels::test {

// Random bytes, all 0xFF (Q4_K: every scale, min and level at its largest; Q6_K: scale -1) or all
// 0x80 (Q6_K: scale -128 at level 0, the largest product; Q8_0: every level -128).
enum class WeightFill { Random, Ones, High };

// rows x cols weights of a Q4_K, Q6_K or Q8_0 type.
inline std::vector<uint8_t> raw_weight_rows(DType type, int64_t rows, int64_t cols, WeightFill fill, std::mt19937& rng) {
  const int64_t n_blocks = rows * cols / dtype_info(type).block_elems;
  std::vector<uint8_t> w(size_t(rows * csq::row_bytes(type, cols)));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& v : w) v = fill == WeightFill::Random ? uint8_t(byte(rng)) : fill == WeightFill::Ones ? 0xFF : 0x80;
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (int64_t b = 0; b < n_blocks; ++b) {
    if (type == DType::Q4_K) {
      auto& blk = reinterpret_cast<quants::BlockQ4_K*>(w.data())[b];
      blk.d = f32_to_f16(scale(rng));
      blk.dmin = f32_to_f16(scale(rng));
    } else if (type == DType::Q6_K) {
      reinterpret_cast<quants::BlockQ6_K*>(w.data())[b].d = f32_to_f16(scale(rng));
    } else {
      reinterpret_cast<quants::BlockQ8_0*>(w.data())[b].d = f32_to_f16(scale(rng));
    }
  }
  return w;
}

}  // namespace csq::kernels::test
