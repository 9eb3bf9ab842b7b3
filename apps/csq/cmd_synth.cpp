// csq synth — a random-weight GGUF or Hugging Face directory with the exact shapes of a real model,
// for benchmarks that need no downloaded weights. Tensors are generated, quantized and written one
// at a time; the same seed gives the same model in either format.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/half.h"
#include "base/progress_line.h"
#include "base/thread_pool.h"
#include "command.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "kernels/quantize.h"
#include "kernels/quants.h"
#include "model/model.h"
#include "quant_plan.h"
#include "tokenizer/tokenizer.h"

namespace csq::app {
namespace {

struct SynthOptions {
  std::string arch = "qwen3";
  std::string preset;
  std::string type;
  std::string out;
  std::string tokenizer;  // optional: a model whose tokenizer and chat template are copied
  std::string format = "gguf";  // or "hf": a Hugging Face model directory
  int64_t max_shard_mb = 5000;
  uint64_t seed = 1;
  int threads = 0;
};

// Qwen3's <|endoftext|> (also its bos and pad) and <|im_end|>.
constexpr int32_t kQwen3Bos = 151643, kQwen3ImEnd = 151645;

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

// Tensor `index` of the plan stored as `type`. The values depend only on (seed, index, row), so
// every format and thread count gets the same model: norms are drawn as bf16 values, which the
// GGUF's float vectors and a Hugging Face directory's bf16 ones hold alike.
void synth_tensor(const SynthOptions& o, const PlannedTensor& t, size_t index, DType type, ThreadPool& pool,
                  std::vector<uint8_t>& bytes) {
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
      for (float& v : row) v = vector ? bf16_to_f32(f32_to_bf16(1.0f + amplitude * rng.uniform())) : amplitude * rng.uniform();
      quantize_row(type, row.data(), bytes.data() + r * rb, cols);
    }
  });
}

// The progress line: tensors written of the model's, the last one's name and type, seconds.
class SynthProgress {
 public:
  explicit SynthProgress(size_t total) : total_(total) {}
  void tensor_done(const std::string& name, DType type) {
    const bool final = ++done_ == total_;
    if (!line_.due(final)) return;
    char text[256];
    std::snprintf(text, sizeof text, "[%zu/%zu] %s %s %.1f s", done_, total_, name.c_str(), dtype_info(type).name,
                  line_.seconds());
    line_.draw(text, final);
  }

 private:
  size_t total_, done_ = 0;
  ProgressLine line_;
};

void write_synth_gguf(const SynthOptions& o, const ModelConfig& c, const FileType& ft) {
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
  SynthProgress progress(tensors.size());
  w.write(o.out, [&](size_t index, std::vector<uint8_t>& bytes) {
    synth_tensor(o, tensors[index], index, types[index], pool, bytes);
    progress.tensor_done(tensors[index].name, types[index]);
  });
}

// config.json of a Qwen3 checkpoint (transformers 4.x form, as Qwen's own releases ship it).
nlohmann::ordered_json hf_config(const ModelConfig& c, const FileType& ft) {
  const char* dtype = ft.base == DType::BF16 ? "bfloat16" : ft.base == DType::F16 ? "float16" : "float32";
  return {{"architectures", {"Qwen3ForCausalLM"}}, {"attention_bias", false}, {"attention_dropout", 0.0},
          {"bos_token_id", kQwen3Bos}, {"eos_token_id", kQwen3ImEnd}, {"head_dim", c.head_dim},
          {"hidden_act", "silu"}, {"hidden_size", c.hidden_size}, {"initializer_range", 0.02},
          {"intermediate_size", c.ffn_size}, {"max_position_embeddings", c.max_context},
          {"max_window_layers", c.n_layers}, {"model_type", "qwen3"}, {"num_attention_heads", c.n_heads},
          {"num_hidden_layers", c.n_layers}, {"num_key_value_heads", c.n_kv_heads}, {"rms_norm_eps", c.rms_eps},
          {"rope_theta", c.rope.theta}, {"sliding_window", nullptr}, {"tie_word_embeddings", c.tied_embeddings},
          {"torch_dtype", dtype}, {"use_cache", true}, {"use_sliding_window", false}, {"vocab_size", c.vocab_size}};
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out.flush()) fail_runtime(path.string() + ": write failed");
}

// Where tensor `index` of the plan goes in a Hugging Face checkpoint: the embedding, the layers in
// order, the final norm, the head (the order of the model's state dict).
struct HfTensor {
  size_t index;
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order
  int64_t group;
};

std::vector<HfTensor> hf_tensors(const ModelConfig& c, const std::vector<PlannedTensor>& plan) {
  std::vector<HfTensor> out;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& t = plan[i];
    std::string name = hf_tensor_name(t.name);
    if (name.empty()) fail_runtime("internal: no Hugging Face name for " + t.name);
    const int64_t group = t.layer >= 0 ? 1 + t.layer : name == "model.embed_tokens.weight" ? 0
                          : name == "model.norm.weight"                                    ? c.n_layers + 1
                                                                                           : c.n_layers + 2;
    std::vector<int64_t> shape(t.dims.rbegin(), t.dims.rend());
    out.push_back({i, std::move(name), std::move(shape), group});
  }
  std::sort(out.begin(), out.end(), [](const HfTensor& a, const HfTensor& b) {
    return a.group != b.group ? a.group < b.group : a.name < b.name;
  });
  return out;
}

// A Hugging Face model directory: config.json, generation_config.json, model.safetensors (or
// shards of at most max_shard_mb with model.safetensors.index.json, as save_pretrained splits
// them), and the tokenizer files of --tokenizer.
void write_synth_hf(const SynthOptions& o, const ModelConfig& c, const FileType& ft) {
  namespace fs = std::filesystem;
  if (ft.base != DType::BF16 && ft.base != DType::F16 && ft.base != DType::F32)
    fail_usage(std::string("--format hf writes BF16, F16 or F32 tensors, not ") + ft.name +
               " (quantize the directory with csq quantize)");
  if (!o.tokenizer.empty() && !fs::is_directory(o.tokenizer))
    fail_usage("--format hf copies the tokenizer files of a Hugging Face directory; " + o.tokenizer + " is not one");
  std::error_code ec;
  if (fs::exists(o.out, ec) && (!fs::is_directory(o.out, ec) || !fs::is_empty(o.out, ec)))
    fail_usage("--out " + o.out + ": exists and is not an empty directory");
  fs::create_directories(o.out, ec);
  if (ec) fail_runtime(o.out + ": cannot create the directory: " + ec.message());

  const std::vector<PlannedTensor> plan = plan_tensors(c);
  const std::vector<HfTensor> order = hf_tensors(c, plan);
  std::vector<std::vector<const HfTensor*>> shards(1);
  int64_t shard_bytes = 0, total_bytes = 0;
  const int64_t max_bytes = o.max_shard_mb * 1'000'000;
  for (const HfTensor& t : order) {
    const int64_t bytes = io::SafetensorsDeclared{t.name, ft.base, t.shape}.n_bytes();
    if (!shards.back().empty() && shard_bytes + bytes > max_bytes) shards.emplace_back(), shard_bytes = 0;
    shards.back().push_back(&t);
    shard_bytes += bytes, total_bytes += bytes;
  }

  ThreadPool pool(o.threads);
  SynthProgress progress(plan.size());
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = shards.size() == 1 ? "model.safetensors" : name;
    std::vector<io::SafetensorsDeclared> declared;
    for (const HfTensor* t : shards[s]) {
      declared.push_back({t->name, ft.base, t->shape});
      weight_map[t->name] = file;
    }
    io::write_safetensors(
        (fs::path(o.out) / file).string(), declared,
        [&](size_t i, std::vector<uint8_t>& bytes) {
          const HfTensor& t = *shards[s][i];
          synth_tensor(o, plan[t.index], t.index, ft.base, pool, bytes);
          progress.tensor_done(t.name, ft.base);
        },
        {{"format", "pt"}});
  }
  if (shards.size() > 1)
    write_text(fs::path(o.out) / "model.safetensors.index.json",
               nlohmann::json{{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}}.dump(2) + "\n");
  write_text(fs::path(o.out) / "config.json", hf_config(c, ft).dump(2) + "\n");
  // Qwen3's own generation settings (its instruct models stop at <|im_end|> or <|endoftext|>).
  write_text(fs::path(o.out) / "generation_config.json",
             nlohmann::ordered_json{{"bos_token_id", kQwen3Bos}, {"do_sample", true}, {"eos_token_id", {kQwen3ImEnd, kQwen3Bos}},
                                    {"pad_token_id", kQwen3Bos}, {"temperature", 0.6}, {"top_k", 20}, {"top_p", 0.95}}
                     .dump(2) + "\n");
  if (o.tokenizer.empty()) return;
  if (auto problem = tokenizer_problem(o.tokenizer))
    std::fprintf(stderr, "warning: the tokenizer of %s is not usable: %s\n", o.tokenizer.c_str(), problem->c_str());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
                        "added_tokens.json", "chat_template.jinja", "chat_template.json"}) {
    const fs::path from = fs::path(o.tokenizer) / f;
    if (!fs::exists(from)) continue;
    fs::copy_file(from, fs::path(o.out) / f, ec);
    if (ec) fail_runtime(from.string() + ": cannot copy to " + o.out + ": " + ec.message());
  }
}

void run_synth(const SynthOptions& o) {
  if (o.arch != "qwen3") fail_usage("unknown architecture '" + o.arch + "' (only qwen3 has presets)");
  if (o.format != "gguf" && o.format != "hf") fail_usage("unknown --format '" + o.format + "' (expected gguf or hf)");
  if (o.max_shard_mb < 1) fail_usage("--max-shard-mb must be at least 1");
  const ModelConfig c = qwen3_preset(o.preset);
  const FileType& ft = parse_file_type(o.type);
  if (o.format == "hf") write_synth_hf(o, c, ft);
  else write_synth_gguf(o, c, ft);
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<SynthOptions>();
  CLI::App* cmd = root.add_subcommand(
      "synth", "Write a random-weight GGUF or Hugging Face directory with the exact shapes of a real model (for benchmarks)");
  cmd->add_option("--arch", opts->arch, "Architecture (qwen3)")->capture_default_str();
  cmd->add_option("--preset", opts->preset, "Model size: 0.6b, 1.7b, 4b, 8b (or tiny, for tests)")->required();
  cmd->add_option("--type", opts->type, "File type: " + file_type_names())->required();
  cmd->add_option("--out", opts->out, "Output .gguf file, or directory with --format hf")->required();
  cmd->add_option("--format", opts->format,
                  "gguf, or hf: a Hugging Face directory (config.json, safetensors, tokenizer files; --type BF16, "
                  "F16 or F32) holding the same weights as the GGUF of the same seed")
      ->capture_default_str();
  cmd->add_option("--max-shard-mb", opts->max_shard_mb,
                  "--format hf: split the weights into model-0000X-of-0000N.safetensors of at most this many MB")
      ->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  cmd->add_option("--tokenizer", opts->tokenizer,
                  "Copy the tokenizer and chat template of this model (Hugging Face directory or .gguf), so that "
                  "the synthetic model can chat and train");
  cmd->add_option("--threads,-t", opts->threads, "Worker threads (default: all cores)");
  cmd->callback([opts] { run_synth(*opts); });
});

}  // namespace
}  // namespace csq::app
