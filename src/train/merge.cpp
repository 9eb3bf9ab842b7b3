#include "train/merge.h"

#include <cstring>
#include <filesystem>
#include <regex>

#include "base/error.h"
#include "io/safetensors.h"
#include "kernels/quantize.h"

namespace csq::train {
namespace {

namespace fs = std::filesystem;

// "model.layers.N.self_attn.q_proj.weight" -> (N, Q).
bool adapted_projection(const std::string& name, int64_t& layer, LoraTarget& target) {
  static const std::regex pattern(R"(model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+_proj)\.weight)");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return false;
  layer = std::stoll(m[1].str());
  try {
    target = lora_target_from_name(m[2].str());
  } catch (const Error&) {
    return false;
  }
  return true;
}

}  // namespace

void write_merged_hf(const Model& model, const std::string& base_dir, const std::string& out_dir) {
  if (model.checkpoint().format != CheckpointFormat::HuggingFace)
    fail_usage("merging into a Hugging Face directory needs a Hugging Face base; for a GGUF base write a .gguf");
  std::error_code ec;
  if (fs::equivalent(base_dir, out_dir, ec)) fail_usage(out_dir + ": the output must not be the base model's directory");
  fs::create_directories(out_dir);
  for (const auto& entry : fs::directory_iterator(base_dir)) {
    // csq.lock (csq pull --dir) pins the base's bytes, which the merge changes.
    if (!entry.is_regular_file() || entry.path().filename() == "csq.lock") continue;
    const fs::path file = entry.path();
    const fs::path target_path = fs::path(out_dir) / file.filename();
    if (file.extension() != ".safetensors") {
      fs::copy_file(file, target_path, fs::copy_options::overwrite_existing);
      continue;
    }
    const io::SafetensorsFile shard(file.string());
    std::vector<io::SafetensorsOutput> tensors;
    for (const io::SafetensorsTensor& t : shard.tensors()) {
      io::SafetensorsOutput out{t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)};
      int64_t layer = 0;
      LoraTarget target;
      if (adapted_projection(t.name, layer, target) && layer < model.config().n_layers && t.shape.size() == 2) {
        const int64_t rows = t.shape[0], cols = t.shape[1], row_bytes = csq::row_bytes(t.dtype, cols);
        std::vector<float> row(static_cast<size_t>(cols));
        for (const AttachedLora& lora : model.adapters()) {
          const LoraPair& pair = lora.adapter->layers[size_t(layer)][size_t(target)];
          if (pair.empty()) continue;
          for (int64_t r = 0; r < rows; ++r) {
            uint8_t* bytes = out.data.data() + r * row_bytes;
            dequantize_row(t.dtype, bytes, row.data(), cols);
            lora_add_to_row(pair, lora.adapter->rank, cols, lora.factor, r, row.data());
            quantize_row(t.dtype, row.data(), bytes, cols);
          }
        }
      }
      tensors.push_back(std::move(out));
    }
    io::write_safetensors(target_path.string(), tensors, shard.metadata());
  }
}

}  // namespace csq::train
