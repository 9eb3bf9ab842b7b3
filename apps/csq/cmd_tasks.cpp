// csq cwe | mcq | cvss | attack | ask — the defender tasks: one input from --text, --file or
// stdin, or a batch over JSONL (one JSON line out per line in, in order, decoded together).
#include <unistd.h>

#include <cstdio>
#include <map>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "base/jsonl.h"
#include "command.h"
#include "generation_options.h"
#include "ordered_run.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "tasks/chat_backend.h"
#include "tasks/task.h"
#include "whole_lines.h"

namespace csq::app {
namespace {

using ojson = nlohmann::ordered_json;
using tasks::Task;

struct TaskOptions {
  GenerationOptions gen;
  std::string text, file, jsonl;
  std::vector<std::string> options;  // mcq
  std::string system = tasks::kCtiSystemPrompt;
  std::string instruction;
  std::string parser = "cybersecqwen";
  bool strict = false;
  bool json = false;
  int parallel = 4;
};

struct Input {
  std::string where;  // "--text", "FILE:LINE"
  size_t line = 0;    // in the --jsonl file
  tasks::TaskInput value;
};

std::vector<Input> read_inputs(Task task, const TaskOptions& o) {
  if (!o.text.empty() + !o.file.empty() + !o.jsonl.empty() != 1)
    fail_usage("give exactly one of --text TEXT, --file F or --jsonl F (- for stdin)");
  if (!o.options.empty() && (o.options.size() < 2 || o.options.size() > 4))
    fail_usage("--option: give 2 to 4 choices (A-D), not " + std::to_string(o.options.size()));
  std::vector<Input> inputs;
  if (o.jsonl.empty()) {
    Input in{o.text.empty() ? o.file : "--text", 0, {o.text.empty() ? read_input(o.file) : o.text, o.options}};
    if (in.value.text.find_first_not_of(" \t\r\n") == std::string::npos) fail_input(in.where + ": the input is empty");
    inputs.push_back(std::move(in));
    return inputs;
  }
  if (!o.options.empty()) fail_usage("--option is for a single question; in --jsonl give \"options\" per line");
  std::istringstream lines(read_input(o.jsonl));
  for_each_jsonl_line(lines, o.jsonl, [&](const std::string& line, const std::string& where, size_t n) {
    inputs.push_back({where, n, tasks::task_input_from_json(task, parse_jsonl_line(line, where), where)});
  });
  if (inputs.empty()) fail_input(o.jsonl + ": no input lines");
  return inputs;
}

// The plain-text summary line under the answer.
std::string summary_line(Task task, const ojson& r) {
  const bool ok = r["parsed"].get<bool>();
  switch (task) {
    case Task::Cwe: return "CWE: " + (ok ? r["cwe"].get<std::string>() : "none found");
    case Task::Mcq: return "Answer: " + (ok ? r["letter"].get<std::string>() : "none found");
    case Task::Cvss: {
      if (!ok) return "CVSS: none found";
      char score[16];
      std::snprintf(score, sizeof score, "%.1f", r["base_score"].get<double>());
      return "CVSS: " + r["vector"].get<std::string>() + " (base score " + score + ", " +
             r["severity"].get<std::string>() + ")";
    }
    case Task::Attack: {
      if (!ok) return "Techniques: none found";
      std::string ids;
      for (const auto& id : r["techniques"]) ids += (ids.empty() ? "" : ", ") + id.get<std::string>();
      return "Techniques: " + ids;
    }
    case Task::Ask: break;
  }
  return {};
}

void run_task(Task task, const TaskOptions& o) {
  const auto parser = tasks::parser_from_name(o.parser);
  if (!parser) fail_usage("--parser '" + o.parser + "': expected cybersecqwen, ctibench or faith");
  const std::optional<std::string> pattern = tasks::strict_pattern(task, o.options.size());
  if (o.strict && !pattern) fail_usage("--strict: csq ask answers in free text; there is nothing to constrain");
  if (o.parallel < 1 || o.parallel > 256) fail_usage("--parallel must be between 1 and 256");
  const std::vector<Input> inputs = read_inputs(task, o);

  auto engine = std::make_shared<Engine>(load_engine(o.gen.model, o.gen.template_file, o.gen.loras, "", weight_memory(o.gen.mmap)));
  use_device(*engine->model, o.gen.device);
  const GenerationRequest base = make_request(o.gen, *engine);
  // --strict: the answer is only the value, in a form the parser always reads. The template's
  // non-thinking mode is asked for, since a constrained answer has no room for a <think> block.
  std::map<size_t, std::unique_ptr<TokenConstraint>> constraints;  // by option count
  std::vector<tasks::ChatRequest> requests;
  for (const auto& in : inputs) {
    tasks::ChatRequest r;
    r.label = in.where;
    r.messages = ojson::array();
    if (!o.system.empty()) r.messages.push_back({{"role", "system"}, {"content", o.system}});
    r.messages.push_back({{"role", "user"}, {"content", tasks::task_prompt(task, in.value, o.instruction)}});
    r.sampling = base.sampling;
    r.max_tokens = base.max_tokens;
    r.stop = base.stop;
    r.ignore_eos = base.ignore_eos;
    if (o.strict) {
      auto& c = constraints[in.value.options.size()];
      if (!c) c = make_regex_constraint(engine->tokenizer, *tasks::strict_pattern(task, in.value.options.size()));
      r.constraint = c.get();
      r.template_kwargs = {{"enable_thinking", false}};
    }
    requests.push_back(std::move(r));
  }

  tasks::LocalBackendConfig config;
  config.model = o.gen.model;
  config.template_file = o.gen.template_file;
  config.parse_special_in_content = o.gen.parse_special_in_content;
  config.threads = o.gen.threads;
  config.ctx = o.gen.ctx;
  config.kv_type = cache_dtype(o.gen.cache_type);
  config.parallel = int(std::min<size_t>(size_t(o.parallel), requests.size()));
  auto backend = tasks::make_local_backend(config, engine);
  backend->prepare(requests);

  // Batch answers are decoded together and printed in input order as soon as each is ready.
  const bool batch = !o.jsonl.empty();
  const bool progress = batch && isatty(2);
  run_ordered(
      requests.size(), config.parallel,
      [&](size_t k) {
        const tasks::ChatResult res = backend->complete(requests[k]);
        ojson r;
        if (batch) r["line"] = inputs[k].line;
        r["task"] = tasks::task_name(task);
        r.update(tasks::task_result(task, *parser, res));
        r["seed"] = requests[k].sampling.seed;
        r["usage"] = {{"prompt_tokens", res.prompt_tokens}, {"completion_tokens", res.completion_tokens}};
        return r;
      },
      [&](size_t, const ojson& r) {
        const WholeLineGuard whole_line;
        if (batch || o.json) {
          std::printf("%s\n", r.dump(-1, ' ', false, ojson::error_handler_t::replace).c_str());
        } else {
          std::printf("%s\n", r["answer"].get<std::string>().c_str());
          if (task != Task::Ask) std::printf("\n%s\n", summary_line(task, r).c_str());
        }
        std::fflush(stdout);
      },
      [&](size_t done) {
        if (progress) std::fprintf(stderr, "\rcsq %s: %zu/%zu done", tasks::task_name(task), done, requests.size());
      });
  if (progress) std::fprintf(stderr, "\n");
}

void add_task(CLI::App& root, Task task, const std::string& help, const std::string& input_help) {
  auto o = std::make_shared<TaskOptions>();
  o->gen.sampling.temperature = 0;  // CTI-Bench's setting: greedy, reproducible
  CLI::App* cmd = root.add_subcommand(tasks::task_name(task), help);
  add_generation_options(cmd, o->gen);
  add_content_option(cmd, o->gen.parse_special_in_content);
  cmd->add_option("--text", o->text, input_help);
  cmd->add_option("--file", o->file, "Read the input from a file (- for stdin)");
  cmd->add_option("--jsonl", o->jsonl,
                  "Batch: one JSON object per line (\"text\"" +
                      std::string(task == Task::Mcq ? ", \"options\"" : "") + "); one JSON line out per line in, in order");
  if (task == Task::Mcq)
    cmd->add_option("--option", o->options, "A choice, in order A, B, C, D (repeat; or write them in the question)");
  cmd->add_option("--system", o->system, "System prompt (\"\" for none)")->capture_default_str();
  cmd->add_option("--instruction", o->instruction, "Replace the CTI-Bench instruction put before the input")
      ->check([](const std::string& text) { return text.empty() ? "must not be empty (it replaces CTI-Bench's)" : ""; });
  cmd->add_option("--parser", o->parser, "Answer parser: cybersecqwen, ctibench or faith")->capture_default_str();
  if (task != Task::Ask)
    cmd->add_flag("--strict", o->strict, "Constrain the answer to the bare value so that it always parses");
  cmd->add_option("--parallel", o->parallel, "Batch inputs decoded together")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print {answer, parsed, <value>, finish, seed, usage} as JSON");
  cmd->callback([o, task] { run_task(task, *o); });
}

const RegisterCommand reg([](CLI::App& root) {
  add_task(root, Task::Cwe, "Map a CVE description to its CWE id, with a justification", "The CVE description");
  add_task(root, Task::Mcq, "Answer a multiple-choice CTI question with a letter", "The question (with its options, or use --option)");
  add_task(root, Task::Cvss, "Score a CVE description: CVSS v3.1 vector, base score and severity", "The CVE description");
  add_task(root, Task::Attack, "Extract MITRE ATT&CK technique ids from a threat report", "The report text");
  add_task(root, Task::Ask, "Ask a free-form cyber threat intelligence question", "The question");
});

}  // namespace
}  // namespace csq::app
