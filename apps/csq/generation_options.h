// Command-line options shared by the commands that generate text (run, complete, chat, tasks).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "kernels/dtype.h"
#include "model/device_choice.h"
#include "runtime/generator.h"

namespace csq {
class Model;
struct Engine;
class TokenConstraint;
namespace tasks {
class ChatBackend;
}
}  // namespace csq

namespace csq::app {

// --device and --gpu-layers as typed (see add_device_option).
struct DeviceOption {
  std::string name = "cpu";
  int gpu_layers = -1;
};

struct GenerationOptions {
  std::string model;
  std::string template_file;
  std::vector<std::string> loras;  // "PATH[:STRENGTH]"
  bool mmap = false;
  bool parse_special_in_content = false;
  int threads = 0;
  int64_t ctx = 4096;
  std::string cache_type = "f16";
  DeviceOption device;
  int64_t max_tokens = 512;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  SamplingParams sampling;
  std::optional<uint64_t> seed;  // unset: a random seed, reported in --json output
  std::vector<std::string> logit_bias;  // "ID=BIAS"
  // Structured output (at most one).
  std::string choice;       // "A,B,C,D"
  std::string regex;
  std::string json_schema;  // a file
};

// Adds --model, --template, --lora, --mmap, --threads, --device, --ctx, --cache-type, --max-tokens, --stop, --ignore-eos and the
// sampling options.
void add_generation_options(CLI::App* cmd, GenerationOptions& o);
// Adds --cache-type {f16,f32,q8_0}: how the KV cache stores keys and values.
void add_cache_type_option(CLI::App* cmd, std::string& cache_type);
// The storage type a --cache-type value names.
DType cache_dtype(const std::string& cache_type);
// Adds --device cpu|vulkan|vulkan:N (default cpu) and --gpu-layers N.
void add_device_option(CLI::App* cmd, DeviceOption& device);
DeviceChoice device_choice(const DeviceOption& device);
// Places the model on the --device choice: a Vulkan choice without any Vulkan device says so in
// one line on stderr and keeps the CPU (model/device_model.h).
void use_device(Model& model, const DeviceOption& device);
// Adds --mmap: map the checkpoint from the page cache instead of loading it into memory.
void add_mmap_option(CLI::App* cmd, bool& mmap);
inline io::FileMemory weight_memory(bool mmap) { return mmap ? io::FileMemory::Mapped : io::FileMemory::Loaded; }
// Adds --parse-special-in-content: message content may become special tokens (exact HF parity).
CLI::Option* add_content_option(CLI::App* cmd, bool& parse_special_in_content);
// Adds --lora PATH[:STRENGTH] (repeatable).
void add_lora_option(CLI::App* cmd, std::vector<std::string>& loras);
// Adds --choice, --regex and --json-schema.
void add_constraint_options(CLI::App* cmd, GenerationOptions& o);

// Builds the request fields from the options (seed resolved, logit bias parsed); prompt left empty.
GenerationRequest make_request(const GenerationOptions& o, const Engine& engine);
// The constraint the options ask for, or nullptr; errors name the bad pattern or schema keyword.
std::unique_ptr<TokenConstraint> make_constraint(const GenerationOptions& o, const Engine& engine);

// Generates `request` on a fresh session of the options' context and threads, streaming
// through `stream` (may be empty).
GenerationResult run_generation(const Engine& engine, const GenerationOptions& o, const GenerationRequest& request,
                                const StreamCallback& stream);
// Prints `j` plus finish_reason, usage, timings and seed as one JSON line (run/complete --json).
void print_result_json(nlohmann::ordered_json j, const GenerationResult& result, uint64_t seed);

// Where chat answers come from (`csq eval run`, `csq triage`): the model in process or an
// OpenAI-compatible endpoint.
struct BackendOptions {
  std::string model, template_file, endpoint, api_model, api_key_file;
  std::vector<std::string> loras;
  bool parse_special_in_content = false;
  int parallel = 4;
  int threads = 0;
  int64_t ctx = 0;  // 0: the longest prompt plus its max tokens
  std::string cache_type = "f16";
  DeviceOption device;
  int retries = 5;
  int timeout_s = 600;
};
// Adds --model | --endpoint and what goes with each (--api-model, --api-key-file, --retries,
// --timeout; --template, --lora, --parse-special-in-content, --threads, --device, --ctx, --cache-type) and
// --parallel.
void add_backend_options(CLI::App* cmd, BackendOptions& o);
// The backend the options name; a usage error unless exactly one of --model and --endpoint is given.
std::unique_ptr<tasks::ChatBackend> make_backend(const BackendOptions& o);

// Reads a whole file or, for "-", standard input; errors name the path.
std::string read_input(const std::string& path);
// An endpoint's API key from a file (trailing newline and spaces dropped); errors name the path.
std::string read_api_key_file(const std::string& path);

}  // namespace csq::app
