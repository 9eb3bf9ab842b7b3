// csq generate — continue a token sequence and print the generated ids.
#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "base/thread_pool.h"
#include "command.h"
#include "generation_options.h"
#include "model_option.h"
#include "model/model.h"
#include "runtime/session.h"

namespace csq::app {
namespace {

struct GenerateOptions {
  std::string model;
  std::string tokens;
  int64_t max_tokens = 32;
  double temperature = 0;
  bool ignore_eos = false;
  bool print_ids = false;
  int threads = 0;
  DeviceOption device;
};

void run_generate(const GenerateOptions& o) {
  if (o.temperature != 0)
    fail_usage("csq generate decodes greedily (--temperature 0); use `csq complete` or `csq run` for sampling");
  if (!o.print_ids) fail_usage("csq generate prints token ids: pass --print-ids (use `csq complete` for text)");
  if (o.max_tokens < 1) fail_usage("--max-tokens must be at least 1");
  const std::vector<int32_t> prompt = parse_token_list(o.tokens);
  auto model = Model::load(o.model);
  use_device(*model, o.device);
  ThreadPool pool(o.threads);
  Session session(*model, int64_t(prompt.size()) + o.max_tokens, pool);
  const auto& eos = model->config().eos_ids;
  const int64_t vocab = model->config().vocab_size;
  std::vector<int32_t> generated;
  const std::vector<float>* logits = &session.feed(prompt);
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    const int32_t next = argmax(logits->data(), vocab);
    generated.push_back(next);
    if (!o.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    if (i + 1 < o.max_tokens) logits = &session.feed({next});
  }
  for (size_t i = 0; i < generated.size(); ++i) std::printf("%s%d", i ? " " : "", generated[i]);
  std::printf("\n");
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<GenerateOptions>();
  CLI::App* cmd = root.add_subcommand("generate", "Greedy continuation of a token sequence, printed as ids");
  add_model_option(cmd, "--model", opts->model, kModelHelp)->required();
  cmd->add_option("--tokens", opts->tokens, "Comma-separated prompt token ids")->required();
  cmd->add_option("--max-tokens,-n", opts->max_tokens, "Number of tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", opts->temperature, "Must be 0 (greedy)")->capture_default_str();
  cmd->add_flag("--ignore-eos", opts->ignore_eos, "Keep generating past end-of-generation tokens");
  cmd->add_flag("--print-ids", opts->print_ids, "Print the generated ids, space-separated, on one line");
  cmd->add_option("--threads,-t", opts->threads, "Worker threads (default: all cores)");
  add_device_option(cmd, opts->device);
  cmd->callback([opts] { run_generate(*opts); });
});

}  // namespace
}  // namespace csq::app
