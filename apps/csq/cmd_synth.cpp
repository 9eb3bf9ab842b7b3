// csq synth — a random-weight GGUF with the exact shapes of a real model, for benchmarks that
// need no downloaded weights. Tensors are generated, quantized and written one at a time.
#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "command.h"
#include "io/gguf_writer.h"
#include "kernels/quantize.h"
#include "kernels/quants.h"
#include "quant_plan.h"

namespace csq::app {
namespace {

struct SynthOptions {
  std::string arch = "qwen3";
  std::string preset;
  std::string type;
  std::string out;
  std::string tokenizer;  // optional: a model whose tokenizer and chat template are copied
  uint64_t seed = 1;
  int threads = 0;
};

// Qwen3 dense models (config.json of Qwen/Qwen3-{0.6B,1.7B,4B,8B}).
ModelConfig qwen3_preset(const std::string& preset) {
  ModelConfig c;
  c.arch = Arch::Qwen3;
  c.vocab_size = 151936;
  c.head_dim = 128;
  c.n_kv_heads = 8;
  c.max_context = 40960;
  c.rms_eps = 1e-6;
  c.rope.theta = 1000000;
  c.qk_norm = true;
  c.tied_embeddings = true;
  if (preset == "0.6b") {
    c.hidden_size = 1024, c.n_layers = 28, c.n_heads = 16, c.ffn_size = 3072;
  } else if (preset == "1.7b") {
    c.hidden_size = 2048, c.n_layers = 28, c.n_heads = 16, c.ffn_size = 6144;
  } else if (preset == "4b") {
    c.hidden_size = 2560, c.n_layers = 36, c.n_heads = 32, c.ffn_size = 9728;
  } else if (preset == "8b") {
    c.hidden_size = 4096, c.n_layers = 36, c.n_heads = 32, c.ffn_size = 12288, c.tied_embeddings = false;
  } else if (preset == "tiny") {
    // For tests: the real vocabulary and head geometry, two narrow layers.
    c.hidden_size = 256, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.ffn_size = 768;
  } else {
    fail_usage("unknown preset '" + preset + "' (expected 0.6b, 1.7b, 4b, 8b or tiny)");
  }
  return c;
}

// splitmix64: a stream per (seed, tensor, row), so the weights do not depend on the thread count.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f; }  // [-1, 1)
};

// k-quant rows are drawn as random blocks directly (random levels and sub-block scales, fp16
// super-block scales sized to the wanted spread): the reference k-quant search would take tens
// of minutes for a 4B model, and speed does not depend on the values.
bool random_k_block_row(DType type, Rng& rng, float amplitude, uint8_t* dst, int64_t cols) {
  using namespace quants;
  if (type != DType::Q4_K && type != DType::Q5_K && type != DType::Q6_K) return false;
  const int64_t bytes = row_bytes(type, cols);
  for (int64_t i = 0; i < bytes; i += 8) {
    const uint64_t r = rng.next();
    std::memcpy(dst + i, &r, size_t(std::min<int64_t>(8, bytes - i)));
  }
  for (int64_t b = 0; b < cols / QK_K; ++b) {
    if (type == DType::Q6_K) {
      // levels -32..31 times scales -128..127 (rms about 18 and 74)
      reinterpret_cast<BlockQ6_K*>(dst)[b].d = f32_to_f16(amplitude / (18.f * 74.f));
    } else {
      // levels 0..15 (Q5_K 0..31) times scales 0..63, minus mins near the mean level
      const float levels = type == DType::Q4_K ? 4.6f : 9.2f;
      auto set = [&](auto* block) {
        block->d = f32_to_f16(amplitude / (levels * 36.f));
        block->dmin = f32_to_f16(amplitude / (levels * 36.f) * (type == DType::Q4_K ? 7.5f : 15.5f) / 2.f);
      };
      if (type == DType::Q4_K) set(&reinterpret_cast<BlockQ4_K*>(dst)[b]);
      else set(&reinterpret_cast<BlockQ5_K*>(dst)[b]);
    }
  }
  return true;
}

void run_synth(const SynthOptions& o) {
  if (o.arch != "qwen3") fail_usage("unknown architecture '" + o.arch + "' (only qwen3 has presets)");
  const ModelConfig c = qwen3_preset(o.preset);
  const FileType& ft = parse_file_type(o.type);
  const std::vector<PlannedTensor> tensors = plan_tensors(c);

  io::GgufWriter w;
  write_metadata(w, c, "qwen3-" + o.preset + "-synthetic", ft);
  if (!o.tokenizer.empty()) write_tokenizer_metadata(o.tokenizer, c, w);
  std::vector<DType> types;
  for (const PlannedTensor& t : tensors) {
    types.push_back(tensor_type(ft, c, t));
    w.add_tensor_info(t.name, types.back(), t.dims);
  }

  ThreadPool pool(o.threads);
  const auto start = std::chrono::steady_clock::now();
  w.write(o.out, [&](size_t index, std::vector<uint8_t>& bytes) {
    const PlannedTensor& t = tensors[index];
    const DType type = types[index];
    const int64_t cols = t.dims[0], rows = t.dims.size() > 1 ? t.dims[1] : 1;
    const int64_t rb = row_bytes(type, cols);
    bytes.resize(size_t(rows * rb));
    const bool vector = t.dims.size() == 1;
    // Linear layers like N(0, 1/fan_in) in spread (uniform of the same variance); norms near 1.
    const float amplitude = vector ? 0.1f : std::sqrt(3.0f / float(cols));
    pool.parallel_for(rows, [&](int64_t begin, int64_t end, int) {
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = begin; r < end; ++r) {
        Rng rng{o.seed * 0x100000001b3ull ^ (uint64_t(index) << 40) ^ uint64_t(r)};
        if (random_k_block_row(type, rng, amplitude, bytes.data() + r * rb, cols)) continue;
        for (float& v : row) v = (vector ? 1.0f : 0.0f) + amplitude * rng.uniform();
        quantize_row(type, row.data(), bytes.data() + r * rb, cols);
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\r[%zu/%zu] %-28s %-5s %7.1f s", index + 1, tensors.size(), t.name.c_str(),
                 dtype_info(type).name, s);
  });
  std::fprintf(stderr, "\n");
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<SynthOptions>();
  CLI::App* cmd = root.add_subcommand("synth", "Write a random-weight GGUF with the exact shapes of a real model (for benchmarks)");
  cmd->add_option("--arch", opts->arch, "Architecture (qwen3)")->capture_default_str();
  cmd->add_option("--preset", opts->preset, "Model size: 0.6b, 1.7b, 4b, 8b (or tiny, for tests)")->required();
  cmd->add_option("--type", opts->type, "File type: " + file_type_names())->required();
  cmd->add_option("--out", opts->out, "Output .gguf file")->required();
  cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  cmd->add_option("--tokenizer", opts->tokenizer,
                  "Copy the tokenizer and chat template of this model (Hugging Face directory or .gguf), so that "
                  "the synthetic model can chat and train");
  cmd->add_option("--threads,-t", opts->threads, "Worker threads (default: all cores)");
  cmd->callback([opts] { run_synth(*opts); });
});

}  // namespace
}  // namespace csq::app
