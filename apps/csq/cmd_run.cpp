// csq run — one chat turn through the model's own template, streamed to stdout.
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

struct RunOptions {
  GenerationOptions gen;
  std::string system;
  std::optional<std::string> prompt;  // set even when empty: --prompt "" is a prompt
  std::string prompt_file;
  bool json = false;
  bool show_reasoning = false;
};

void run_chat_turn(const RunOptions& o) {
  if (o.prompt.has_value() == !o.prompt_file.empty()) fail_usage("give exactly one of --prompt TEXT or --prompt-file F (- for stdin)");
  const std::string user_text = o.prompt ? *o.prompt : read_input(o.prompt_file);
  Engine engine = load_engine(o.gen.model, o.gen.template_file, o.gen.loras, "", weight_memory(o.gen.mmap));
  use_device(*engine.model, o.gen.device);
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  messages.push_back({{"role", "user"}, {"content", user_text}});
  ChatRenderOptions render;
  render.parse_special_in_content = o.gen.parse_special_in_content;
  ChatPrompt prompt = engine.encode_messages(messages, render);

  GenerationRequest request = make_request(o.gen, engine);
  request.prompt = std::move(prompt.ids);
  request.reasoning_open = prompt.reasoning_open;
  std::unique_ptr<TokenConstraint> constraint = make_constraint(o.gen, engine);
  request.constraint = constraint.get();

  bool reasoning_printed = false;
  StreamCallback stream;
  if (!o.json) {
    stream = [&](const std::string& content, const std::string& reasoning) {
      if (o.show_reasoning && !reasoning.empty()) {
        if (!reasoning_printed) std::fputs("<think>", stdout);
        reasoning_printed = true;
        std::fputs(reasoning.c_str(), stdout);
      }
      if (!content.empty()) {
        if (reasoning_printed) {
          std::fputs("</think>\n\n", stdout);
          reasoning_printed = false;
        }
        std::fputs(content.c_str(), stdout);
      }
      std::fflush(stdout);
      return true;
    };
  }
  const GenerationResult result = run_generation(engine, o.gen, request, stream);
  if (o.json)
    print_result_json({{"content", result.content}, {"reasoning", result.reasoning}}, result, request.sampling.seed);
  else
    std::fputs("\n", stdout);
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<RunOptions>();
  CLI::App* cmd = root.add_subcommand("run", "One chat turn through the model's chat template, streamed to stdout");
  add_generation_options(cmd, opts->gen);
  add_constraint_options(cmd, opts->gen);
  add_content_option(cmd, opts->gen.parse_special_in_content);
  cmd->add_option("--system", opts->system, "System message");
  cmd->add_option("--prompt,-p", opts->prompt, "The user message");
  cmd->add_option("--prompt-file,-f", opts->prompt_file, "Read the user message from a file (- for stdin)");
  cmd->add_flag("--json", opts->json,
                "Print {content, reasoning, finish_reason, usage, timings, seed} as JSON instead of streaming");
  cmd->add_flag("--show-reasoning", opts->show_reasoning, "Also stream the <think> block (hidden by default)");
  cmd->callback([opts] { run_chat_turn(*opts); });
});

}  // namespace
}  // namespace csq::app
