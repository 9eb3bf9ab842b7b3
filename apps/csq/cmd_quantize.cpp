// csq quantize — writes a GGUF of the requested type from a Hugging Face directory or a GGUF,
// following llama.cpp: its tensor names and metadata, its Q4_K_M/Q5_K_M type mixing, and its
// usual path from Hugging Face weights (convert to F16, then quantize from those values).
#include <cstdio>
#include <filesystem>
#include <optional>

#include "base/error.h"
#include "base/half.h"
#include "base/progress_line.h"
#include "base/thread_pool.h"
#include "command.h"
#include "model_option.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "kernels/quantize.h"
#include "model/model.h"
#include "quant_plan.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace csq::app {
namespace {

struct QuantizeOptions {
  std::string model;
  std::string type;
  std::string out;
  std::vector<std::string> loras;
  int threads = 0;
};

// Where the values of one output tensor come from.
struct Source {
  const kernels::Matrix* matrix = nullptr;
  std::vector<float> vector{};
  int64_t permute_heads = 0;  // Llama q/k from Hugging Face: rows reordered for adjacent-pair RoPE
  std::optional<LoraTarget> target{};  // the projection attached adapters may change (merged in)
};

Source find_source(const Model& model, const PlannedTensor& t) {
  const ModelWeights& w = model.weights();
  const ModelConfig& c = model.config();
  if (t.name == "token_embd.weight") return {.matrix = &w.token_embedding};
  if (t.name == "output.weight") return {.matrix = &w.lm_head};
  if (t.name == "output_norm.weight") return {.vector = w.output_norm};
  if (t.name == "rope_freqs.weight") {
    const io::GgufTensorInfo* info = model.gguf() ? model.gguf()->find_tensor(t.name) : nullptr;
    if (!info) return {.vector = llama3_rope_factors(c)};
    std::vector<float> factors(size_t(info->n_elements));
    dequantize_row(info->type, info->data, factors.data(), info->n_elements);
    return {.vector = factors};
  }
  const LayerWeights& l = w.layers[size_t(t.layer)];
  const std::string suffix = t.name.substr(t.name.find('.', 4) + 1);
  const bool permute = c.arch == Arch::Llama && model.checkpoint().format == CheckpointFormat::HuggingFace;
  if (suffix == "attn_q.weight") return {.matrix = &l.wq, .permute_heads = permute ? c.n_heads : 0, .target = LoraTarget::Q};
  if (suffix == "attn_k.weight") return {.matrix = &l.wk, .permute_heads = permute ? c.n_kv_heads : 0, .target = LoraTarget::K};
  if (suffix == "attn_v.weight") return {.matrix = &l.wv, .target = LoraTarget::V};
  if (suffix == "attn_output.weight") return {.matrix = &l.wo, .target = LoraTarget::O};
  if (suffix == "ffn_gate.weight") return {.matrix = &l.w_gate, .target = LoraTarget::Gate};
  if (suffix == "ffn_up.weight") return {.matrix = &l.w_up, .target = LoraTarget::Up};
  if (suffix == "ffn_down.weight") return {.matrix = &l.w_down, .target = LoraTarget::Down};
  if (suffix == "attn_norm.weight") return {.vector = l.attn_norm};
  if (suffix == "ffn_norm.weight") return {.vector = l.ffn_norm};
  if (suffix == "attn_q_norm.weight") return {.vector = l.q_norm};
  if (suffix == "attn_k_norm.weight") return {.vector = l.k_norm};
  if (suffix == "attn_q.bias") return {.vector = l.bq};
  if (suffix == "attn_k.bias") return {.vector = l.bk};
  if (suffix == "attn_v.bias") return {.vector = l.bv};
  fail_runtime("internal: no source for tensor " + t.name);
}

// Source row of output row r: llama.cpp's converter swaps the two halves of each head's rows
// into interleaved pairs (row 2i+j of a head comes from row j*head_dim/2 + i).
int64_t source_row(int64_t r, int64_t n_heads, int64_t rows) {
  if (n_heads == 0) return r;
  const int64_t head_dim = rows / n_heads, head = r / head_dim, within = r % head_dim;
  return head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
}

// GGUF input: the tokenizer and chat template metadata are copied as they are.
void copy_tokenizer_metadata(const io::GgufFile& g, io::GgufWriter& w) {
  for (const auto& [key, v] : g.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    switch (v.type) {
      case io::GgufType::String: w.set_string(key, std::string(v.str)); break;
      case io::GgufType::Bool: w.set_bool(key, v.u != 0); break;
      case io::GgufType::U32: case io::GgufType::U8: case io::GgufType::U16: w.set_u32(key, uint32_t(v.u)); break;
      case io::GgufType::I32: case io::GgufType::I8: case io::GgufType::I16: w.set_i32(key, int32_t(v.i)); break;
      case io::GgufType::F32: case io::GgufType::F64: w.set_f32(key, float(v.f)); break;
      case io::GgufType::Array: {
        if (v.array_type == io::GgufType::String) {
          std::vector<std::string> items;
          for (const auto& e : v.array) items.emplace_back(e.str);
          w.set_string_array(key, items);
        } else if (v.array_type == io::GgufType::F32) {
          std::vector<float> items;
          for (const auto& e : v.array) items.push_back(float(e.f));
          w.set_f32_array(key, items);
        } else {
          std::vector<int32_t> items;
          for (const auto& e : v.array) items.push_back(int32_t(e.is_integer() ? e.as_int(key) : 0));
          w.set_i32_array(key, items);
        }
        break;
      }
      default: std::fprintf(stderr, "warning: metadata %s not copied (64-bit value)\n", key.c_str());
    }
  }
}

// Hugging Face input: the tokenizer and chat template through the tokenizer layer.
void write_hf_tokenizer(const std::string& dir, const ModelConfig& c, io::GgufWriter& w) {
  if (auto problem = tokenizer_problem(dir)) {
    std::fprintf(stderr, "warning: no tokenizer written: %s\n", problem->c_str());
    return;
  }
  load_tokenizer(dir).write_gguf_metadata(w, int32_t(c.vocab_size));
  try {
    w.set_string("tokenizer.chat_template", ChatTemplate::from_model(dir).source());
  } catch (const Error& e) {
    std::fprintf(stderr, "warning: no chat template written: %s\n", e.what());
  }
}

}  // namespace

void write_tokenizer_metadata(const std::string& source, const ModelConfig& c, io::GgufWriter& w) {
  if (std::filesystem::is_directory(source)) return write_hf_tokenizer(source, c, w);
  const io::GgufFile g(source);
  copy_tokenizer_metadata(g, w);
}

void write_gguf_model(const Model& loaded, const std::string& model_path, const std::string& type,
                      const std::string& out, int threads) {
  const Model* model = &loaded;
  const FileType& ft = parse_file_type(type);
  const ModelConfig& c = model->config();
  const bool from_hf = model->checkpoint().format == CheckpointFormat::HuggingFace;
  std::vector<PlannedTensor> tensors = plan_tensors(c);
  // A Llama GGUF keeps its frequency factors as a tensor (the config carries none).
  const io::GgufFile* g = model->gguf();
  if (g && g->find_tensor("rope_freqs.weight") && c.rope.llama3_factor == 0)
    tensors.insert(tensors.begin() + (c.tied_embeddings ? 1 : 2), {"rope_freqs.weight", {c.head_dim / 2}});

  io::GgufWriter w;
  std::string name = std::filesystem::path(model_path).filename().string();
  if (g) name = g->get_string_opt("general.name").value_or(std::filesystem::path(model_path).stem().string());
  write_metadata(w, c, name, ft);
  if (g) copy_tokenizer_metadata(*g, w);
  else write_hf_tokenizer(model_path, c, w);

  std::vector<DType> types;
  for (const PlannedTensor& t : tensors) {
    types.push_back(tensor_type(ft, c, t));
    w.add_tensor_info(t.name, types.back(), t.dims);
  }

  ThreadPool pool(threads);
  ProgressLine progress;
  w.write(out, [&](size_t index, std::vector<uint8_t>& bytes) {
    const PlannedTensor& t = tensors[index];
    const DType type = types[index];
    const Source src = find_source(*model, t);
    const int64_t cols = t.dims[0], rows = t.dims.size() > 1 ? t.dims[1] : 1;
    const int64_t rb = row_bytes(type, cols);
    bytes.resize(size_t(rows * rb));
    if (!src.matrix) {
      quantize_row(type, src.vector.data(), bytes.data(), cols);
    } else {
      const kernels::Matrix& m = *src.matrix;
      // llama.cpp quantizes Hugging Face weights from its F16 conversion: round through F16
      // first so the blocks come out byte for byte the same.
      const bool via_f16 = from_hf && m.type != DType::F16 && type != DType::F16 && type != DType::BF16 &&
                           type != DType::F32;
      pool.parallel_for(rows, [&](int64_t begin, int64_t end, int) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = begin; r < end; ++r) {
          const int64_t from = source_row(r, src.permute_heads, rows);
          dequantize_row(m.type, m.row(from), row.data(), cols);
          if (src.target)
            for (const AttachedLora& lora : model->adapters()) {
              const LoraPair& pair = lora.adapter->layers[size_t(t.layer)][size_t(*src.target)];
              if (!pair.empty()) lora_add_to_row(pair, lora.adapter->rank, cols, lora.factor, from, row.data());
            }
          if (via_f16)
            for (float& v : row) v = f16_to_f32(f32_to_f16(v));
          quantize_row(type, row.data(), bytes.data() + r * rb, cols);
        }
      });
    }
    const bool last = index + 1 == tensors.size();
    if (!progress.due(last)) return;
    char line[160];
    std::snprintf(line, sizeof line, "[%zu/%zu] %-28s %-5s %7.1f s", index + 1, tensors.size(), t.name.c_str(),
                  dtype_info(type).name, progress.seconds());
    progress.draw(line, last);
  });
}

namespace {

void run_quantize(const QuantizeOptions& o) {
  parse_file_type(o.type);  // a usage error before minutes of loading
  auto model = Model::load(o.model, io::FileMemory::Mapped);
  model->set_adapters(load_lora_specs(o.loras, model->config()));
  write_gguf_model(*model, o.model, o.type, o.out, o.threads);
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = root.add_subcommand("quantize", "Write a GGUF of another type, as llama.cpp's converter and llama-quantize do");
  add_model_option(cmd, "--model", opts->model, kModelHelp)->required();
  cmd->add_option("--type", opts->type, "File type: " + file_type_names())->required();
  cmd->add_option("--out", opts->out, "Output .gguf file")->required();
  cmd->add_option("--lora", opts->loras, "Merge this LoRA adapter, PATH[:STRENGTH], into the weights (repeatable)");
  cmd->add_option("--threads,-t", opts->threads, "Worker threads (default: all cores)");
  cmd->callback([opts] { run_quantize(*opts); });
});

}  // namespace
}  // namespace csq::app
