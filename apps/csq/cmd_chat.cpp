// csq chat — an interactive conversation. Commands: /reset, /system TEXT, /save FILE, /quit.
// Ctrl-C stops the current answer and returns to the prompt; Ctrl-C at the prompt or Ctrl-D quits.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "generation_options.h"
#include "runtime/engine.h"

namespace csq::app {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

struct ChatOptions {
  GenerationOptions gen;
  std::string system;
  bool show_reasoning = false;
};

void run_chat(const ChatOptions& o) {
  Engine engine = load_engine(o.gen.model, o.gen.template_file, o.gen.loras, "", weight_memory(o.gen.mmap));
  use_device(*engine.model, o.gen.device);
  if (!engine.chat_template) fail_input(o.gen.model + ": no chat template; pass --template FILE");
  ThreadPool pool(o.gen.threads);
  Session session(*engine.model, o.gen.ctx, pool, 512, cache_dtype(o.gen.cache_type));
  GenerationRequest base = make_request(o.gen, engine);
  std::string system = o.system;
  nlohmann::ordered_json history = nlohmann::ordered_json::array();

  // No SA_RESTART: Ctrl-C interrupts a blocking read at the prompt so that it can quit.
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);

  std::fprintf(stderr, "csq chat — /reset, /system TEXT, /save FILE, /quit; Ctrl-C stops an answer\n");
  for (;;) {
    std::fputs("> ", stderr);
    std::string line;
    g_interrupted = 0;
    if (!std::getline(std::cin, line)) break;  // Ctrl-D, or Ctrl-C at the prompt
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      history = nlohmann::ordered_json::array();
      std::fputs("(conversation cleared)\n", stderr);
      continue;
    }
    // A command is a whole word: "/systematic ..." is a message like any other.
    const std::string command = line.substr(0, line.find(' '));
    const std::string argument = command.size() < line.size() ? line.substr(command.size() + 1) : "";
    if (command == "/system") {
      system = argument;
      history = nlohmann::ordered_json::array();
      std::fputs("(system message set; conversation cleared)\n", stderr);
      continue;
    }
    if (command == "/save") {
      if (argument.empty()) {
        std::fputs("(usage: /save FILE)\n", stderr);
        continue;
      }
      nlohmann::ordered_json all = nlohmann::ordered_json::array();
      if (!system.empty()) all.push_back({{"role", "system"}, {"content", system}});
      for (const auto& m : history) all.push_back(m);
      errno = 0;
      std::ofstream out(argument);
      out << all.dump(2) << "\n";
      out.flush();
      if (out) std::fprintf(stderr, "(saved %zu messages to %s)\n", all.size(), argument.c_str());
      else std::fprintf(stderr, "(could not write %s: %s)\n", argument.c_str(), std::strerror(errno ? errno : EIO));
      continue;
    }
    history.push_back({{"role", "user"}, {"content", line}});
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    for (const auto& m : history) messages.push_back(m);
    ChatRenderOptions render;
    render.parse_special_in_content = o.gen.parse_special_in_content;
    ChatPrompt prompt = engine.encode_messages(messages, render);
    GenerationRequest request = base;
    request.prompt = std::move(prompt.ids);
    request.reasoning_open = prompt.reasoning_open;
    request.sampling.seed = base.sampling.seed + history.size();
    g_interrupted = 0;
    GenerationResult result;
    try {
      result = generate(session, engine.tokenizer, request, [&](const std::string& content, const std::string& reasoning) {
        if (o.show_reasoning) std::fputs(reasoning.c_str(), stderr);
        std::fputs(content.c_str(), stdout);
        std::fflush(stdout);
        return g_interrupted == 0;
      });
    } catch (const Error& e) {
      history.erase(history.size() - 1);
      std::fprintf(stderr, "error: %s\n", e.what());
      continue;
    }
    history.push_back({{"role", "assistant"}, {"content", result.content}});
    std::fprintf(stderr, "\n[%zu tokens, %.1f tok/s, prompt %.0f ms%s]\n", result.tokens.size(),
                 result.tokens_per_second(), result.prompt_ms,
                 result.finish == FinishReason::Cancelled ? ", stopped" : "");
  }
  std::fputs("\n", stderr);
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<ChatOptions>();
  CLI::App* cmd = root.add_subcommand("chat", "Interactive chat with history (/reset, /system TEXT, /save FILE, /quit)");
  add_generation_options(cmd, opts->gen);
  add_content_option(cmd, opts->gen.parse_special_in_content);
  cmd->add_option("--system", opts->system, "Initial system message");
  cmd->add_flag("--show-reasoning", opts->show_reasoning, "Show the <think> block on stderr");
  cmd->callback([opts] { run_chat(*opts); });
});

}  // namespace
}  // namespace csq::app
