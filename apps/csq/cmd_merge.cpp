// csq merge — LoRA adapters merged into the base weights: a Hugging Face directory (same dtype
// and shards as the base) or a GGUF of any file type (then no separate quantize step is needed).
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "command.h"
#include "model_option.h"
#include "model/model.h"
#include "quant_plan.h"
#include "train/merge.h"

namespace csq::app {
namespace {

struct MergeOptions {
  std::string model;
  std::vector<std::string> loras;
  std::string out;
  std::string type;
  int threads = 0;
};

void run_merge(const MergeOptions& o) {
  if (!o.type.empty()) parse_file_type(o.type);
  auto model = Model::load(o.model, io::FileMemory::Mapped);
  model->set_adapters(load_lora_specs(o.loras, model->config()));
  if (std::filesystem::path(o.out).extension() == ".gguf") {
    const bool bf16_base = model->weights().layers.front().wq.type == DType::BF16;
    write_gguf_model(*model, o.model, o.type.empty() ? (bf16_base ? "BF16" : "F16") : o.type, o.out, o.threads);
  } else {
    if (!o.type.empty()) fail_usage("--type applies to a .gguf output; a directory keeps the base model's dtype");
    train::write_merged_hf(*model, o.model, o.out);
  }
  std::printf("merged %zu adapter(s) into %s\n", o.loras.size(), o.out.c_str());
}

const RegisterCommand reg([](CLI::App& root) {
  auto o = std::make_shared<MergeOptions>();
  CLI::App* cmd = root.add_subcommand("merge", "Merge LoRA adapters into a model: a Hugging Face directory or a GGUF");
  add_model_option(cmd, "--model,-m", o->model, "Base model: Hugging Face directory or .gguf")->required();
  cmd->add_option("--lora", o->loras, "Adapter to merge, PATH[:STRENGTH] (PEFT directory or LoRA .gguf; repeatable)")
      ->required();
  cmd->add_option("--out", o->out, "Output: a directory (Hugging Face) or a file ending in .gguf")->required();
  cmd->add_option("--type", o->type, "GGUF file type (" + file_type_names() + "; default the base's BF16/F16)");
  cmd->add_option("--threads,-t", o->threads, "Worker threads (default: all cores)");
  cmd->callback([o] { run_merge(*o); });
});

}  // namespace
}  // namespace csq::app
