// csq respond — an incident-response plan for each alert (src/tasks/respond.h): techniques from
// the triage result, the alert's tags or the knowledge-base search, the model's answer
// constrained by the plan schema, then validated against ATT&CK. JSON Lines out (one plan per
// input, in order) or Markdown tickets.
#include <unistd.h>

#include <cstdio>
#include <random>

#include "base/error.h"
#include "command.h"
#include "generation_options.h"
#include "kb_options.h"
#include "ordered_run.h"
#include "runtime/engine.h"
#include "tasks/respond.h"
#include "whole_lines.h"

namespace csq::app {
namespace {

using ojson = nlohmann::ordered_json;

struct RespondOptions {
  GenerationOptions gen;
  std::string endpoint, api_model, api_key_file;
  int timeout_s = 600;
  std::string alert, text, kb;
  std::string format = "json";
  size_t retrieve = 3;
  int parallel = 1;
};

std::vector<tasks::RespondInput> read_inputs(const RespondOptions& o) {
  if (o.alert.empty() == o.text.empty()) fail_usage("give exactly one of --alert FILE (- for stdin) or --text TEXT");
  if (!o.text.empty()) {
    if (o.text.find_first_not_of(" \t\r\n") == std::string::npos) fail_input("--text: the input is empty");
    return {{"--text", nullptr, o.text}};
  }
  return tasks::read_alerts(read_input(o.alert), o.alert == "-" ? "stdin" : o.alert);
}

std::unique_ptr<tasks::ChatBackend> make_backend(const RespondOptions& o, std::shared_ptr<Engine> engine, size_t inputs) {
  if (engine) {
    tasks::LocalBackendConfig c;
    c.model = o.gen.model;
    c.template_file = o.gen.template_file;
    c.loras = o.gen.loras;
    c.threads = o.gen.threads;
    c.parallel = int(std::min<size_t>(size_t(o.parallel), inputs));
    c.ctx = o.gen.ctx;
    c.kv_type = cache_dtype(o.gen.cache_type);
    return tasks::make_local_backend(c, std::move(engine));
  }
  tasks::EndpointConfig c;
  c.url = o.endpoint;
  c.api_model = o.api_model;
  if (!o.api_key_file.empty()) c.api_key = read_api_key_file(o.api_key_file);
  c.concurrency = o.parallel;
  c.timeout = std::chrono::seconds(o.timeout_s);
  return tasks::make_endpoint_backend(c);
}

void run_respond(RespondOptions o) {
  if (o.gen.model.empty() == o.endpoint.empty()) fail_usage("give exactly one of --model PATH or --endpoint URL");
  if (o.format != "json" && o.format != "md") fail_usage("--format must be json or md, not " + o.format);
  if (o.parallel < 1 || o.parallel > 64) fail_usage("--parallel must be between 1 and 64");
  if (o.retrieve > tasks::kMaxRetrieve)  // -1 arrives wrapped to the largest size_t
    fail_usage("--retrieve must be between 0 and " + std::to_string(tasks::kMaxRetrieve));
  const std::vector<tasks::RespondInput> inputs = read_inputs(o);
  const auto kb = load_kb(o.kb);

  std::shared_ptr<Engine> engine;
  if (!o.gen.model.empty())
    engine = std::make_shared<Engine>(load_engine(o.gen.model, o.gen.template_file, o.gen.loras, "", weight_memory(o.gen.mmap)));
  const uint64_t seed = o.gen.seed ? *o.gen.seed : std::random_device{}();

  std::vector<std::vector<tasks::PlanTechnique>> techniques(inputs.size());
  std::vector<std::vector<std::string>> unknown(inputs.size());
  std::vector<tasks::ChatRequest> requests;
  for (size_t i = 0; i < inputs.size(); ++i) {
    techniques[i] = tasks::input_techniques(*kb, inputs[i], o.retrieve, &unknown[i]);
    SamplingParams sampling = o.gen.sampling;
    sampling.seed = seed + i;  // each alert of a batch its own draw, reproducible from --seed
    requests.push_back(tasks::respond_request(*kb, inputs[i], techniques[i], sampling, o.gen.max_tokens));
  }
  auto backend = make_backend(o, engine, inputs.size());
  backend->prepare(requests);

  const bool progress = inputs.size() > 1 && isatty(2);
  run_ordered(
      inputs.size(), o.parallel,
      [&](size_t k) {
        ojson plan = tasks::build_plan(*kb, inputs[k], techniques[k], unknown[k], backend->complete(requests[k]));
        plan["seed"] = requests[k].sampling.seed;
        return plan;
      },
      [&](size_t k, const ojson& plan) {
        const WholeLineGuard whole_line;
        if (o.format == "md") std::printf("%s%s", k ? "\n" : "", tasks::plan_markdown(plan).c_str());
        else std::printf("%s\n", plan.dump(-1, ' ', false, ojson::error_handler_t::replace).c_str());
        std::fflush(stdout);
      },
      [&](size_t done) {
        if (progress) std::fprintf(stderr, "\rcsq respond: %zu/%zu plans", done, inputs.size());
      });
  if (progress) std::fprintf(stderr, "\n");
}

const RegisterCommand reg([](CLI::App& root) {
  auto o = std::make_shared<RespondOptions>();
  o->gen.sampling.temperature = 0;  // greedy: the same alert gives the same plan
  o->gen.max_tokens = 4096;
  o->gen.ctx = 0;  // the longest prompt plus --max-tokens
  CLI::App* cmd = root.add_subcommand("respond", "Write an incident-response plan grounded in ATT&CK for each alert");
  add_generation_options(cmd, o->gen);
  CLI::Option* model = cmd->get_option("--model");
  model->required(false);
  CLI::Option* endpoint = cmd->add_option("--endpoint", o->endpoint,
                                          "Ask an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1, instead of "
                                          "--model (it must apply response_format json_schema, as csq serve does)");
  model->excludes(endpoint);
  cmd->add_option("--api-model", o->api_model, "Model name sent to the endpoint (default: the first it lists)")->needs(endpoint);
  cmd->add_option("--api-key-file", o->api_key_file, "File holding the endpoint's API key")->needs(endpoint);
  cmd->add_option("--timeout", o->timeout_s, "Endpoint: seconds one request may take")->capture_default_str()->needs(endpoint);
  cmd->add_option("--alert", o->alert,
                  "The alert: a JSON object, or JSON Lines of them (csq detect --json, csq triage, Wazuh, raw events); - for stdin");
  cmd->add_option("--text", o->text, "Free-text description of what was observed, instead of --alert");
  add_kb_option(cmd, o->kb);
  cmd->add_option("--retrieve", o->retrieve, "Techniques retrieved by search when the input names none (0: none)")
      ->capture_default_str();
  cmd->add_option("--format", o->format, "json (one plan per line, for SOAR) or md (a ticket)")->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "Alerts answered together")->capture_default_str();
  cmd->callback([o] { run_respond(*o); });
});

}  // namespace
}  // namespace csq::app
