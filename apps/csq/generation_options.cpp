#include "generation_options.h"

#include "model_option.h"

#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>

#include "base/error.h"
#include "io/mapped_file.h"
#include "model/device_model.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "tasks/chat_backend.h"

namespace csq::app {

void add_mmap_option(CLI::App* cmd, bool& mmap) {
  cmd->add_flag("--mmap", mmap,
                "Map the weights from the page cache instead of loading them into memory: starts at once and "
                "shares the pages with other processes, but generation is slower (4 KB pages)");
}

CLI::Option* add_content_option(CLI::App* cmd, bool& parse_special_in_content) {
  return cmd->add_flag("--parse-special-in-content", parse_special_in_content,
                "Let message content become special tokens (<|im_end|>, <think>...) as Hugging Face's "
                "apply_chat_template does; off: content is untrusted text and never does");
}

void add_generation_options(CLI::App* cmd, GenerationOptions& o) {
  add_model_option(cmd, "--model,-m", o.model, kModelHelp)->required();
  cmd->add_option("--template", o.template_file, "Jinja chat template to use instead of the model's own");
  add_lora_option(cmd, o.loras);
  add_mmap_option(cmd, o.mmap);
  cmd->add_option("--threads,-t", o.threads, "Worker threads (default: all cores)");
  add_device_option(cmd, o.device);
  cmd->add_option("--ctx,-c", o.ctx, "Context length in tokens (prompt + answer)")->capture_default_str();
  add_cache_type_option(cmd, o.cache_type);
  cmd->add_option("--max-tokens,-n", o.max_tokens, "Most tokens to generate")->capture_default_str();
  cmd->add_option("--stop", o.stop, "Stop string (repeatable); never printed");
  cmd->add_flag("--ignore-eos", o.ignore_eos, "Do not stop at end-of-generation tokens");
  cmd->add_option("--temperature", o.sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o.sampling.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o.sampling.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", o.sampling.min_p, "Drop tokens below min_p x the top probability")->capture_default_str();
  cmd->add_option("--repeat-penalty", o.sampling.repetition_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o.sampling.penalty_last_n, "Tokens the repetition penalty looks back (-1 = all)")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", o.sampling.presence_penalty, "OpenAI presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", o.sampling.frequency_penalty, "OpenAI frequency penalty")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Random seed; the same seed, options and thread count reproduce a run exactly");
  cmd->add_option("--logit-bias", o.logit_bias, "ID=BIAS added to a token's logit (repeatable)");
}

void add_device_option(CLI::App* cmd, DeviceOption& device) {
  cmd->add_option("--device", device.name,
                  "Where the model runs: cpu, vulkan (the first Vulkan device) or vulkan:N (see csq info --devices); "
                  "without a Vulkan device, the CPU")
      ->capture_default_str();
  cmd->add_option("--gpu-layers", device.gpu_layers,
                  "With --device vulkan: run the first N transformer layers on the device and the rest and the output "
                  "head on the CPU (0: all on the CPU; at least the model's layer count: all on the device). Default: "
                  "all when the weights fit the device's memory, else as many as fit")
      ->check(CLI::Range(0, 100000));
}

DeviceChoice device_choice(const DeviceOption& device) {
  DeviceChoice c = parse_device(device.name);
  c.gpu_layers = device.gpu_layers;
  return c;
}

void use_device(Model& model, const DeviceOption& device) { place_model(model, device_choice(device)); }

void add_cache_type_option(CLI::App* cmd, std::string& cache_type) {
  cmd->add_option("--cache-type", cache_type,
                  "KV cache storage: f16, f32, or q8_0 (about half of f16's memory, as llama.cpp's -ctk/-ctv q8_0)")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}))
      ->capture_default_str();
}

DType cache_dtype(const std::string& cache_type) {
  if (cache_type == "f32") return DType::F32;
  if (cache_type == "q8_0") return DType::Q8_0;
  if (cache_type == "f16") return DType::F16;
  fail_usage("--cache-type must be f16, f32 or q8_0, not " + cache_type);
}

void add_constraint_options(CLI::App* cmd, GenerationOptions& o) {
  auto* choice = cmd->add_option("--choice", o.choice, "The answer must be one of these comma-separated strings");
  auto* regex = cmd->add_option("--regex", o.regex, "The answer must match this regular expression entirely");
  auto* schema = cmd->add_option("--json-schema", o.json_schema, "The answer must be JSON valid against this schema file");
  // An empty value would otherwise read as no constraint at all.
  for (CLI::Option* option : {choice, regex, schema})
    option->check([](const std::string& value) { return value.empty() ? "must not be empty" : ""; });
  choice->excludes(regex)->excludes(schema);
  regex->excludes(schema);
}

void add_lora_option(CLI::App* cmd, std::vector<std::string>& loras) {
  cmd->add_option("--lora", loras,
                  "LoRA adapter applied at run time: a PEFT directory or a LoRA .gguf, optionally :STRENGTH "
                  "(repeatable)");
}

GenerationRequest make_request(const GenerationOptions& o, const Engine& engine) {
  GenerationRequest r;
  r.sampling = o.sampling;
  r.sampling.seed = o.seed ? *o.seed : std::random_device{}();
  for (const std::string& item : o.logit_bias) {
    const size_t eq = item.find('=');
    try {
      size_t used_id = 0, used_bias = 0;
      const std::string id_text = item.substr(0, eq), bias_text = eq == std::string::npos ? "" : item.substr(eq + 1);
      const long id = std::stol(id_text, &used_id);
      const float bias = std::stof(bias_text, &used_bias);
      if (used_id != id_text.size() || used_bias != bias_text.size()) throw std::invalid_argument("trailing text");
      r.sampling.logit_bias[int32_t(id)] = bias;
    } catch (const std::exception&) {
      fail_usage("--logit-bias '" + item + "': expected ID=BIAS, e.g. 151645=-100");
    }
  }
  r.max_tokens = o.max_tokens;
  r.stop = o.stop;
  r.eos_ids = engine.eos_ids;
  r.ignore_eos = o.ignore_eos;
  return r;
}

std::unique_ptr<TokenConstraint> make_constraint(const GenerationOptions& o, const Engine& engine) {
  if (!o.choice.empty()) {
    std::vector<std::string> choices;
    // Every comma separates two choices, so a trailing one leaves an empty choice to refuse.
    for (size_t begin = 0, comma;; begin = comma + 1) {
      comma = o.choice.find(',', begin);
      choices.push_back(o.choice.substr(begin, comma - begin));
      if (comma == std::string::npos) break;
    }
    return make_choice_constraint(engine.tokenizer, choices);
  }
  if (!o.regex.empty()) return make_regex_constraint(engine.tokenizer, o.regex);
  if (!o.json_schema.empty()) {
    const auto schema = nlohmann::json::parse(read_input(o.json_schema), nullptr, false);
    if (schema.is_discarded()) fail_input(o.json_schema + ": not valid JSON");
    return make_json_schema_constraint(engine.tokenizer, schema);
  }
  return nullptr;
}

GenerationResult run_generation(const Engine& engine, const GenerationOptions& o, const GenerationRequest& request,
                                const StreamCallback& stream) {
  ThreadPool pool(o.threads);
  Session session(*engine.model, o.ctx, pool, 512, cache_dtype(o.cache_type));
  return generate(session, engine.tokenizer, request, stream);
}

void print_result_json(nlohmann::ordered_json j, const GenerationResult& result, uint64_t seed) {
  j["finish_reason"] = finish_reason_name(result.finish);
  j["usage"] = {{"prompt_tokens", result.prompt_tokens}, {"completion_tokens", result.tokens.size()}};
  j["timings"] = {{"prompt_ms", result.prompt_ms}, {"tokens_per_s", result.tokens_per_second()}};
  j["seed"] = seed;
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
}

void add_backend_options(CLI::App* cmd, BackendOptions& o) {
  auto* model = add_model_option(cmd, "--model,-m", o.model,
                                 "Run in process: Hugging Face model directory, .gguf file, or ORG/NAME[:REVISION] "
                                 "from the cache (csq pull)");
  auto* endpoint = cmd->add_option("--endpoint", o.endpoint,
                                   "Run through an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 "
                                   "(nothing is sent anywhere without it)");
  model->excludes(endpoint);
  cmd->add_option("--api-model", o.api_model, "Model name sent to the endpoint (default: the first it lists)")
      ->needs(endpoint);
  cmd->add_option("--api-key-file", o.api_key_file, "File holding the endpoint's API key (sent as a Bearer token)")
      ->needs(endpoint);
  cmd->add_option("--retries", o.retries, "Endpoint: retries on connection errors, 408, 429 and 5xx")
      ->capture_default_str()
      ->needs(endpoint);
  cmd->add_option("--timeout", o.timeout_s, "Endpoint: seconds one request may take")->capture_default_str()->needs(endpoint);
  cmd->add_option("--template", o.template_file, "Jinja chat template replacing the model's own")->needs(model);
  cmd->add_option("--lora", o.loras, "LoRA adapter applied at run time, PATH[:STRENGTH] (repeatable)")->needs(model);
  add_content_option(cmd, o.parse_special_in_content)->needs(model);
  cmd->add_option("--parallel", o.parallel, "Requests in flight (in process: sequences decoded together)")
      ->capture_default_str();
  cmd->add_option("--threads,-t", o.threads, "In process: compute threads (default: all cores)")->needs(model);
  add_device_option(cmd, o.device);
  cmd->add_option("--ctx,-c", o.ctx, "In process: context per sequence in tokens (0: the longest prompt plus its max tokens)")
      ->capture_default_str()
      ->needs(model);
  add_cache_type_option(cmd, o.cache_type);
}

std::unique_ptr<tasks::ChatBackend> make_backend(const BackendOptions& o) {
  if (o.model.empty() == o.endpoint.empty()) fail_usage("give exactly one of --model PATH or --endpoint URL");
  if (!o.model.empty()) {
    tasks::LocalBackendConfig c;
    c.model = o.model;
    c.template_file = o.template_file;
    c.loras = o.loras;
    c.threads = o.threads;
    c.parallel = o.parallel;
    c.ctx = o.ctx;
    c.kv_type = cache_dtype(o.cache_type);
    c.device = device_choice(o.device);
    c.parse_special_in_content = o.parse_special_in_content;
    return tasks::make_local_backend(c);
  }
  tasks::EndpointConfig c;
  c.url = o.endpoint;
  c.api_model = o.api_model;
  if (!o.api_key_file.empty()) c.api_key = read_api_key_file(o.api_key_file);
  c.concurrency = o.parallel;
  c.retries = o.retries;
  c.timeout = std::chrono::seconds(o.timeout_s);
  return tasks::make_endpoint_backend(c);
}

std::string read_input(const std::string& path) {
  std::ostringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return io::read_text_file(path);
}

std::string read_api_key_file(const std::string& path) {
  std::string key = io::read_text_file(path);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) fail_input(path + ": the API key file is empty");
  return key;
}

}  // namespace csq::app
