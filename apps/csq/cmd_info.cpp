// csq info — what a checkpoint holds: architecture, hyper-parameters, tensor types, sizes,
// and whether it carries a usable tokenizer and chat template.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "model_option.h"
#include "io/gguf.h"
#include "kernels/ops.h"
#include "kernels/vulkan/device.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace csq::app {
namespace {

struct InfoOptions {
  std::string model;
  bool devices = false;
  bool json = false;
};

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

// The Vulkan devices --device can name, with what the kernels care about.
void print_devices(bool json) {
  const vulkan::DeviceList list = vulkan::list_devices();
  if (json) {
    nlohmann::ordered_json j;
    j["cpu"] = true;
    j["cpu_kernels"] = kernels::matmul_kernel_set();
    if (*kernels::matmul_amx_problem()) j["cpu_amx_problem"] = kernels::matmul_amx_problem();
    j["vulkan"] = nlohmann::ordered_json::array();
    for (const vulkan::DeviceInfo& d : list.devices)
      j["vulkan"].push_back({{"index", d.index},
                             {"device", "vulkan:" + std::to_string(d.index)},
                             {"name", d.name},
                             {"type", d.type},
                             {"driver", d.driver},
                             {"api_version", vulkan::version_string(d.api_version)},
                             {"device_local_bytes", d.device_local_bytes},
                             {"max_storage_buffer_bytes", d.max_storage_buffer_bytes},
                             {"subgroup_size", d.subgroup_size},
                             {"fp16", d.fp16},
                             {"int8", d.int8},
                             {"bf16", d.bf16},
                             {"cooperative_matrix", d.cooperative_matrix},
                             {"coopmat_f16", d.coopmat_f16}});
    if (!list.problem.empty()) j["vulkan_problem"] = list.problem;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("cpu            always available (--device cpu, the default); kernels %s\n", kernels::matmul_kernel_set());
  if (*kernels::matmul_amx_problem()) std::printf("               no AMX: %s\n", kernels::matmul_amx_problem());
  if (list.devices.empty()) std::printf("vulkan         none: %s\n", list.problem.c_str());
  for (const vulkan::DeviceInfo& d : list.devices) {
    std::printf("vulkan:%-7d %s (%s, Vulkan %s, %s)\n", d.index, d.name.c_str(), d.type.c_str(),
                vulkan::version_string(d.api_version).c_str(), d.driver.c_str());
    std::printf("               memory %s device-local, buffers up to %s; subgroup %u; fp16 %s, int8 %s, bf16 %s, "
                "cooperative matrix %s%s\n",
                human_bytes(d.device_local_bytes).c_str(), human_bytes(d.max_storage_buffer_bytes).c_str(),
                d.subgroup_size, d.fp16 ? "yes" : "no", d.int8 ? "yes" : "no", d.bf16 ? "yes" : "no",
                d.cooperative_matrix ? "yes" : "no", d.coopmat_f16 ? " (matmul_coopmat runs: 16x16x16 f16)" : "");
  }
}

void run_info(const InfoOptions& o) {
  if (o.devices) return print_devices(o.json);
  if (o.model.empty()) fail_usage("csq info needs --model PATH (a checkpoint to describe) or --devices");
  auto model = Model::load(o.model, io::FileMemory::Mapped);
  const ModelConfig& c = model->config();
  const CheckpointInfo& ck = model->checkpoint();
  const std::optional<std::string> tokenizer_issue = tokenizer_problem(o.model);
  std::optional<std::string> template_issue;
  std::string template_origin;
  try {
    template_origin = ChatTemplate::from_model(o.model).origin();
  } catch (const Error& e) {
    template_issue = e.what();
  }

  nlohmann::ordered_json j;
  j["path"] = ck.path;
  j["format"] = ck.format == CheckpointFormat::Gguf ? "gguf" : "safetensors";
  if (const io::GgufFile* g = model->gguf()) {
    j["gguf_version"] = g->version();
    if (auto name = g->get_string_opt("general.name")) j["name"] = *name;
  }
  j["architecture"] = arch_name(c.arch);
  j["parameters"] = ck.parameter_count;
  j["file_bytes"] = ck.file_bytes;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["layers"] = c.n_layers;
  j["attention_heads"] = c.n_heads;
  j["kv_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim;
  j["ffn_size"] = c.ffn_size;
  j["context_length"] = c.max_context;
  j["rope_theta"] = c.rope.theta;
  if (c.rope.llama3_factor > 0)
    j["rope_scaling"] = {{"type", "llama3"},
                         {"factor", c.rope.llama3_factor},
                         {"low_freq_factor", c.rope.llama3_low_freq_factor},
                         {"high_freq_factor", c.rope.llama3_high_freq_factor},
                         {"original_context", c.rope.llama3_original_context}};
  j["rms_norm_eps"] = c.rms_eps;
  j["tied_embeddings"] = c.tied_embeddings;
  j["qk_norm"] = c.qk_norm;
  j["qkv_bias"] = c.qkv_bias;
  j["eos_token_ids"] = c.eos_ids;
  j["tensor_types"] = ck.tensor_types;
  j["cpu_kernels"] = kernels::matmul_kernel_set();
  if (*kernels::matmul_amx_problem()) j["cpu_amx_problem"] = kernels::matmul_amx_problem();
  j["tokenizer"] = tokenizer_issue ? nlohmann::ordered_json{{"usable", false}, {"problem", *tokenizer_issue}}
                                   : nlohmann::ordered_json{{"usable", true}};
  j["chat_template"] = template_issue ? nlohmann::ordered_json{{"present", false}, {"problem", *template_issue}}
                                      : nlohmann::ordered_json{{"present", true}, {"source", template_origin}};
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::string types;
  for (const auto& [name, count] : ck.tensor_types) types += (types.empty() ? "" : ", ") + name + " x" + std::to_string(count);
  std::printf("model          %s\n", ck.path.c_str());
  std::printf("format         %s\n", ck.format == CheckpointFormat::Gguf
                                         ? ("GGUF v" + std::to_string(model->gguf()->version())).c_str()
                                         : "Hugging Face safetensors");
  std::printf("architecture   %s\n", arch_name(c.arch));
  std::printf("parameters     %lld (%.2f B)\n", (long long)ck.parameter_count, double(ck.parameter_count) / 1e9);
  std::printf("file size      %s\n", human_bytes(ck.file_bytes).c_str());
  std::printf("vocabulary     %lld\n", (long long)c.vocab_size);
  std::printf("hidden size    %lld\n", (long long)c.hidden_size);
  std::printf("layers         %lld\n", (long long)c.n_layers);
  std::printf("attention      %lld heads, %lld kv heads, head_dim %lld%s%s\n", (long long)c.n_heads,
              (long long)c.n_kv_heads, (long long)c.head_dim, c.qk_norm ? ", q/k norm" : "",
              c.qkv_bias ? ", q/k/v bias" : "");
  std::printf("feed-forward   %lld (SwiGLU)\n", (long long)c.ffn_size);
  std::printf("context        %lld\n", (long long)c.max_context);
  std::printf("rope           theta %g%s\n", c.rope.theta,
              c.rope.llama3_factor > 0 ? (", llama3 scaling x" + std::to_string(c.rope.llama3_factor)).c_str() : "");
  std::printf("rms norm eps   %g\n", c.rms_eps);
  std::printf("output head    %s\n", c.tied_embeddings ? "tied to the embedding" : "separate");
  std::printf("tensor types   %s\n", types.c_str());
  std::printf("cpu kernels    %s%s%s\n", kernels::matmul_kernel_set(), *kernels::matmul_amx_problem() ? "; no AMX: " : "",
              kernels::matmul_amx_problem());
  std::printf("tokenizer      %s\n", tokenizer_issue ? ("unusable: " + *tokenizer_issue).c_str() : "yes");
  std::printf("chat template  %s\n", template_issue ? ("none: " + *template_issue).c_str() : ("yes (" + template_origin + ")").c_str());
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* cmd = root.add_subcommand("info", "Describe a model checkpoint (directory or .gguf), or the compute devices");
  auto* model = add_model_option(cmd, "--model", opts->model, kModelHelp);
  cmd->add_flag("--devices", opts->devices, "List the devices --device can name (CPU, Vulkan devices and their features)")
      ->excludes(model);
  cmd->add_flag("--json", opts->json, "Print JSON instead of text");
  cmd->callback([opts] { run_info(*opts); });
});

}  // namespace
}  // namespace csq::app
