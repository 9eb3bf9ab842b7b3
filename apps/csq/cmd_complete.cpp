// csq complete — raw text completion, no chat template.
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "generation_options.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"

namespace csq::app {
namespace {

struct CompleteOptions {
  GenerationOptions gen;
  std::optional<std::string> prompt;  // set even when empty: --prompt "" is a prompt
  std::string prompt_file;
  bool json = false;
};

void run_complete(const CompleteOptions& o) {
  if (o.prompt.has_value() == !o.prompt_file.empty()) fail_usage("give exactly one of --prompt TEXT or --prompt-file F (- for stdin)");
  const std::string text = o.prompt ? *o.prompt : read_input(o.prompt_file);
  Engine engine = load_engine(o.gen.model, o.gen.template_file, o.gen.loras, "", weight_memory(o.gen.mmap));
  use_device(*engine.model, o.gen.device);
  GenerationRequest request = make_request(o.gen, engine);
  request.prompt = engine.encode_raw(text);
  request.split_reasoning = false;
  std::unique_ptr<TokenConstraint> constraint = make_constraint(o.gen, engine);
  request.constraint = constraint.get();
  StreamCallback stream;
  if (!o.json)
    stream = [](const std::string& content, const std::string&) {
      std::fputs(content.c_str(), stdout);
      std::fflush(stdout);
      return true;
    };
  const GenerationResult result = run_generation(engine, o.gen, request, stream);
  if (o.json)
    print_result_json({{"text", result.content}, {"tokens", result.tokens}}, result, request.sampling.seed);
  else
    std::fputs("\n", stdout);
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<CompleteOptions>();
  CLI::App* cmd = root.add_subcommand("complete", "Raw text completion without a chat template");
  add_generation_options(cmd, opts->gen);
  add_constraint_options(cmd, opts->gen);
  cmd->add_option("--prompt,-p", opts->prompt,
                  "The text to continue, read as a whole prompt: special-token text in it (<|im_start|>, "
                  "<think>...) becomes those tokens; for untrusted text use csq run, which keeps content data");
  cmd->add_option("--prompt-file,-f", opts->prompt_file, "Read the text from a file (- for stdin)");
  cmd->add_flag("--json", opts->json, "Print {text, tokens, finish_reason, usage, timings, seed} as JSON");
  cmd->callback([opts] { run_complete(*opts); });
});

}  // namespace
}  // namespace csq::app
