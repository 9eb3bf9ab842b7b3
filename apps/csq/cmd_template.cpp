// csq template: render chat messages with a model's own chat template (or a template file),
// printing the prompt exactly as the model would see it.
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "command.h"
#include "model_option.h"
#include "tokenizer/chat_template.h"

namespace csq::app {
namespace {

using ojson = nlohmann::ordered_json;

struct TemplateOptions {
  std::string model;
  std::string template_file;
  std::string messages_file;
  std::string tools_file;
  std::string kwargs;
  bool no_generation_prompt = false;
};

// Reads a JSON file ("-" is stdin); ordered so that tojson keeps the file's key order.
ojson read_json(const std::string& path, const std::string& what) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail_input(what + " " + path + ": cannot open the file");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  try {
    return ojson::parse(text);
  } catch (const ojson::parse_error& e) {
    fail_input(what + " " + path + ": invalid JSON: " + e.what());
  }
}

void run_template(const TemplateOptions& o) {
  if (o.model.empty() && o.template_file.empty()) fail_usage("give --model, --template, or both");
  std::optional<ChatTemplate> tmpl;
  if (o.template_file.empty()) {
    tmpl.emplace(ChatTemplate::from_model(o.model));
  } else {
    tmpl.emplace(ChatTemplate::from_file(o.template_file));
    if (!o.model.empty()) tmpl->set_special_tokens(load_special_tokens(o.model));
  }

  ojson messages = read_json(o.messages_file, "--messages");
  if (messages.is_object() && messages.contains("messages")) messages = messages["messages"];
  if (!messages.is_array())
    fail_input("--messages " + o.messages_file + ": expected a JSON array of messages or {\"messages\": [...]}");

  ChatRenderOptions options;
  options.add_generation_prompt = !o.no_generation_prompt;
  if (!o.tools_file.empty()) {
    options.tools = read_json(o.tools_file, "--tools");
    if (!options.tools.is_array()) fail_input("--tools " + o.tools_file + ": expected a JSON array of tools");
  }
  if (!o.kwargs.empty()) {
    try {
      options.extra = ojson::parse(o.kwargs);
    } catch (const ojson::parse_error& e) {
      fail_usage(std::string("--kwargs: invalid JSON: ") + e.what());
    }
    if (!options.extra.is_object()) fail_usage("--kwargs: expected a JSON object such as {\"enable_thinking\": false}");
  }
  std::cout << tmpl->render(messages, options) << std::flush;
}

const RegisterCommand kTemplate([](CLI::App& root) {
  auto opts = std::make_shared<TemplateOptions>();
  CLI::App* sub = root.add_subcommand("template", "Render chat messages with a model's chat template (no newline added)");
  add_model_option(sub, "--model", opts->model, "Model directory (tokenizer_config.json / chat_template.jinja) or .gguf");
  sub->add_option("--template", opts->template_file, "Jinja template file to use instead of the model's");
  sub->add_option("--messages", opts->messages_file, "JSON file: an array of messages or {\"messages\": [...]}; - for stdin")
      ->required();
  sub->add_option("--tools", opts->tools_file, "JSON file: an array of tool (function) definitions");
  sub->add_option("--kwargs", opts->kwargs, "Extra template variables as a JSON object, e.g. {\"enable_thinking\": false}");
  sub->add_flag("--no-generation-prompt", opts->no_generation_prompt, "Do not open an assistant turn at the end");
  sub->callback([opts] { run_template(*opts); });
});

}  // namespace
}  // namespace csq::app
