// csq triage — the model adjudicates alerts or events (JSON Lines from files, .gz, or a pipe),
// one JSON line out per input. docs/triage.md describes the prompt, the schema and the line.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/jsonl.h"
#include "base/progress_line.h"
#include "command.h"
#include "generation_options.h"
#include "detect/event.h"
#include "detect/engine.h"
#include "detect/evtx.h"
#include "eval/resumable.h"
#include "io/mapped_file.h"
#include "rule_options.h"
#include "runtime/engine.h"
#include "tasks/triage.h"
#include "triage_redis.h"
#include "whole_lines.h"

namespace csq::app {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct TriageCliOptions {
  BackendOptions backend;
  std::vector<std::string> inputs;
  std::string context_file;
  std::string out;
  std::string spotlight = "delimiters";
  tasks::TriageOptions triage;
  RuleOptions rules;  // hybrid mode when rules.rules is not empty
  uint64_t seed = 0;
  bool dry_run = false;
  bool json = false;
  bool quiet = false;
  TriageRedisOptions redis;
};

// Reads records from the inputs in order (JSON Lines or concatenated objects, plain or gzip),
// one at a time as they arrive.
class RecordSource {
 public:
  explicit RecordSource(std::vector<std::string> paths) : paths_(std::move(paths)) {
    if (paths_.empty()) paths_.push_back("-");
  }

  std::optional<tasks::TriageInput> next() {
    detect::Record rec;
    std::string problem;
    for (;;) {
      if (!reader_) {
        if (at_ == paths_.size()) return std::nullopt;
        name_ = paths_[at_] == "-" ? "stdin" : paths_[at_];
        if (detect::is_evtx_file(paths_[at_]))
          fail_input(name_ + ": an EVTX file; csq triage reads JSON: csq evtx --jsonl FILE | csq triage ... -");
        reader_ = std::make_unique<detect::RecordReader>(detect::ByteSource::open(paths_[at_++]));
      }
      const auto status = reader_->next(rec, problem);
      if (status == detect::RecordReader::Status::End) {
        reader_.reset();
        continue;
      }
      const std::string where = name_ + ":" + std::to_string(rec.number);
      if (status == detect::RecordReader::Status::Problem) fail_input(where + ": " + problem);
      tasks::TriageInput in;
      in.record = parse_jsonl_line<ojson>(rec.text, where);
      if (!in.record.is_object()) fail_input(where + ": expected a JSON object (an alert or an event)");
      in.id = tasks::triage_record_id(in.record, where);
      return in;
    }
  }

 private:
  std::vector<std::string> paths_;
  size_t at_ = 0;
  std::string name_;
  std::unique_ptr<detect::RecordReader> reader_;
};

// FNV-1a, for recording which site context a run used.
std::string digest(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The ids already answered in --out, in order. A torn last line (a run killed mid-write) is cut
// off the file; a bad line elsewhere means the file is not ours.
std::vector<std::string> read_done(const std::string& path) {
  std::vector<std::string> ids;
  if (!fs::exists(path)) return ids;
  const std::string text = io::read_text_file(path);
  size_t pos = 0, line_no = 0, good_end = 0;
  while (pos < text.size()) {
    ++line_no;
    const size_t nl = text.find('\n', pos);
    const std::string line = text.substr(pos, (nl == std::string::npos ? text.size() : nl) - pos);
    const auto j = nlohmann::json::parse(line, nullptr, false);
    const bool ok = nl != std::string::npos && !j.is_discarded() && j.is_object() && j.contains("id") && j["id"].is_string();
    if (!ok) {
      if (nl == std::string::npos || nl + 1 == text.size()) break;
      fail_input(path + ":" + std::to_string(line_no) + ": not a line of csq triage (expected {\"id\", \"verdict\", ...})");
    }
    ids.push_back(j["id"].get<std::string>());
    pos = good_end = nl + 1;
  }
  if (good_end < text.size()) fs::resize_file(path, good_end);
  return ids;
}

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  void update(size_t done, size_t resumed, size_t errors, int64_t tokens, bool final = false) {
    if (!enabled_ || (done == 0 && !final) || !line_.due(final)) return;
    const double s = line_.seconds();
    char text[192];
    std::snprintf(text, sizeof text, "csq triage: %zu done (%zu resumed), %zu errors, %.2f inputs/s, %.1f tok/s",
                  done + resumed, resumed, errors, s > 0 ? double(done) / s : 0.0, s > 0 ? double(tokens) / s : 0.0);
    line_.draw(text, final);
  }

 private:
  bool enabled_;
  ProgressLine line_;
};

// What a run needs besides the backend and the options: the site context and, in hybrid mode,
// the rules in front of the model. Per input, a front-end (the file/stdin loop below, the Redis
// worker) screens it and then calls tasks::triage_input() (triage_stream does the latter).
class Triager {
 public:
  explicit Triager(const TriageCliOptions& o) {
    if (!o.rules.rules.empty()) {
      rules_ = load_rules(o.rules);
      detector_ = std::make_unique<detect::Detector>(rules_->set, rules_->pipeline, detector_options(o.rules));
      print_rule_summary(*rules_, *detector_);
      if (!detector_->correlation_rules().empty())
        std::fprintf(stderr, "  %zu correlation rules are not applied in hybrid mode (they need csq detect's ordered stream)\n",
                     detector_->correlation_rules().size());
      screen_ = std::make_unique<tasks::RuleScreen>(*detector_);
    }
    if (!o.context_file.empty()) context_ = io::read_text_file(o.context_file);
  }

  const std::string& context() const { return context_; }
  bool hybrid() const { return screen_ != nullptr; }

  // Hybrid mode: the rules look at the input first.
  void screen(tasks::TriageInput& in) const {
    if (screen_) screen_->screen(in);
  }
  const tasks::RuleScreen* rule_screen() const { return screen_.get(); }

 private:
  std::string context_;
  std::unique_ptr<LoadedRules> rules_;
  std::unique_ptr<detect::Detector> detector_;
  std::unique_ptr<tasks::RuleScreen> screen_;
};

void dry_run(const TriageCliOptions& o, const Triager& triager) {
  const BackendOptions& b = o.backend;
  if (b.model.empty()) fail_usage("--dry-run needs --model PATH (its tokenizer and chat template)");
  // Only the tokenizer and the template: the weights are not needed to show the prompt.
  Engine engine{nullptr, load_tokenizer(b.model), std::nullopt, {}};
  engine.chat_template = b.template_file.empty() ? ChatTemplate::from_model(b.model) : ChatTemplate::from_file(b.template_file);
  if (!b.template_file.empty()) engine.chat_template->set_special_tokens(load_special_tokens(b.model));
  ChatRenderOptions render;
  render.extra = {{"enable_thinking", false}};
  render.parse_special_in_content = b.parse_special_in_content;
  RecordSource source(o.inputs);
  while (auto in = source.next()) {
    triager.screen(*in);
    if (in->screened && (in->rules.empty() || !in->screen_problem.empty())) {
      const std::string why = in->screen_problem.empty() ? "no rule fired" : "not an event: " + in->screen_problem;
      if (o.json)
        std::printf("%s\n", ojson({{"id", in->id}, {"decided_by", "rules"}, {"reason", why}})
                                .dump(-1, ' ', false, ojson::error_handler_t::replace).c_str());
      else
        std::printf("=== %s: decided by the rules (%s), no prompt\n", in->id.c_str(), why.c_str());
      continue;
    }
    const tasks::TriagePrompt prompt = tasks::build_triage_prompt(*in, triager.context(), o.triage);
    const ChatPrompt encoded = engine.encode_messages(prompt.messages, render);
    const auto spans = tasks::locate_triage_spans(encoded, prompt);
    if (o.json) {
      ojson j;
      j["id"] = in->id;
      j["prompt"] = encoded.text;
      j["ids"] = encoded.ids;
      ojson u = ojson::array();
      for (const auto& s : spans)
        u.push_back({{"field", s.span.field}, {"part", s.span.key ? "key" : "value"}, {"text", {s.text.begin, s.text.end}},
                     {"tokens", {s.first_token, s.last_token}}, {"truncated", s.span.truncated}});
      j["untrusted"] = std::move(u);
      j["prompt_tokens"] = encoded.ids.size();
      j["truncated_fields"] = prompt.truncated_fields;
      j["omitted_fields"] = prompt.omitted_fields;
      std::printf("%s\n", j.dump(-1, ' ', false, ojson::error_handler_t::replace).c_str());
    } else {
      std::printf("=== %s: %zu tokens, %zu untrusted spans, %zu truncated, %zu omitted\n%s\n", in->id.c_str(),
                  encoded.ids.size(), spans.size(), prompt.truncated_fields, prompt.omitted_fields, encoded.text.c_str());
    }
    std::fflush(stdout);
  }
}

// The rule selection a hybrid run used, for the resume manifest.
std::string rules_identity(const RuleOptions& r) {
  if (r.rules.empty()) return "";
  std::string s = "rules=";
  for (const auto& p : r.rules) s += p + ";";
  s += " pipeline=" + r.pipeline + " placeholders=" + r.placeholders + " min_level=" + r.min_level + " package=" +
       r.package + " ignore_logsource=" + (r.ignore_logsource ? "1" : "0") + " status=";
  for (const auto& st : r.statuses) s += st + ",";
  return s;
}

void run_triage(TriageCliOptions o) {
  const auto spotlight = tasks::spotlight_from_name(o.spotlight);
  if (!spotlight) fail_usage("--spotlight '" + o.spotlight + "': expected none, delimiters or datamark");
  o.triage.spotlight = *spotlight;
  o.triage.sampling.seed = o.seed;
  const Triager triager(o);
  if (runs_as_worker(o.redis)) {
    if (!o.inputs.empty() || !o.out.empty() || o.dry_run)
      fail_usage("--redis reads alerts from --stream and writes to --out-stream: no input files, --out or --dry-run");
    return run_triage_worker(o.redis, o.backend, triager.context(), triager.rule_screen(), o.triage, o.json, o.quiet);
  }
  if (o.dry_run) return dry_run(o, triager);
  std::unique_ptr<tasks::ChatBackend> backend = make_backend(o.backend);

  std::vector<std::string> done;
  FILE* out = stdout;
  std::unique_ptr<FILE, int (*)(FILE*)> out_file(nullptr, fclose);
  if (!o.out.empty()) {
    ojson manifest;
    manifest["backend"] = backend->identity();
    manifest["spotlight"] = o.spotlight;
    manifest["max_field_bytes"] = o.triage.max_field_bytes;
    manifest["max_fields"] = o.triage.max_fields;
    manifest["max_tokens"] = o.triage.max_tokens;
    manifest["temperature"] = o.triage.sampling.temperature;
    manifest["seed"] = o.seed;
    manifest["site_context"] = o.context_file.empty() ? "" : digest(triager.context());
    if (triager.hybrid()) manifest["rules"] = rules_identity(o.rules);
    eval::require_manifest(o.out + ".manifest.json", manifest, o.out);
    done = read_done(o.out);
    out_file.reset(std::fopen(o.out.c_str(), "ab"));
    if (!out_file) fail_runtime(o.out + ": cannot open for writing");
    out = out_file.get();
  }
  backend->prepare({});

  RecordSource records(o.inputs);
  size_t skipped = 0;
  // Inputs answered by an earlier run are passed over, each checked against its line.
  auto source = [&]() -> std::optional<tasks::TriageInput> {
    for (;;) {
      auto in = records.next();
      if (!in || skipped == done.size()) {
        if (in) triager.screen(*in);
        return in;
      }
      if (in->id != done[skipped])
        fail_usage(o.out + ": line " + std::to_string(skipped + 1) + " answers '" + done[skipped] + "' but input " +
                   std::to_string(skipped + 1) + " is '" + in->id + "'; it was written for other inputs");
      ++skipped;
    }
  };
  Progress progress(!o.quiet);
  size_t computed = 0, errors = 0;
  int64_t tokens = 0;
  tasks::triage_stream(*backend, source, triager.context(), o.triage, [&](size_t, const tasks::TriageResult& r) {
    const std::string line = r.to_json().dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
    const WholeLineGuard whole_line;
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0)
      fail_runtime((o.out.empty() ? std::string("stdout") : o.out) + ": write failed");
    ++computed;
    if (!r.error.empty()) ++errors;
    tokens += r.answer_tokens;
    progress.update(computed, skipped, errors, tokens);
  });
  if (skipped < done.size())
    fail_usage(o.out + " holds " + std::to_string(done.size()) + " answers but the input has only " +
               std::to_string(skipped) + " records; it was written for other inputs");
  progress.update(computed, skipped, errors, tokens, true);
}

const RegisterCommand reg([](CLI::App& root) {
  auto o = std::make_shared<TriageCliOptions>();
  CLI::App* cmd = root.add_subcommand(
      "triage", "Adjudicate alerts or events (JSON Lines) with the model: verdict, confidence, ATT&CK techniques, "
                "rationale and next steps, one JSON line per input");
  cmd->add_option("inputs", o->inputs, "JSON Lines files (.gz too); - or none: standard input, as a stream");
  o->backend.ctx = 4096;  // inputs arrive as a stream: the context cannot be sized from them
  add_backend_options(cmd, o->backend);
  cmd->add_option("--context", o->context_file,
                  "Site context for the system turn: asset roles, known admin tools, maintenance windows (a text file)");
  cmd->add_option("--out,-o", o->out,
                  "Write the lines to this file instead of stdout; a run killed midway resumes here");
  cmd->add_option("--spotlight", o->spotlight, "How record text is marked: delimiters, datamark or none")
      ->capture_default_str();
  cmd->add_option("--max-field-bytes", o->triage.max_field_bytes, "Longest value shown; longer ones are cut and marked")
      ->capture_default_str();
  cmd->add_option("--max-fields", o->triage.max_fields, "Most fields of a record shown; the rest are counted")
      ->capture_default_str();
  cmd->add_option("--max-tokens,-n", o->triage.max_tokens, "Most answer tokens")->capture_default_str();
  cmd->add_option("--temperature", o->triage.sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
  cmd->add_flag("--dry-run", o->dry_run, "Print each rendered prompt instead of answering (needs --model for the tokenizer)");
  cmd->add_flag("--json", o->json, "With --dry-run: one JSON line per input with the prompt, its token ids and the "
                                   "token ranges of the untrusted spans; with --redis: the worker's final counts");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress line");
  add_triage_redis_options(cmd, o->redis);
  add_rule_options(cmd, o->rules);
  add_triage_eval_command(*cmd);
  // CLI11 runs the parent's callback after the subcommand's.
  cmd->callback([o, cmd] {
    if (cmd->got_subcommand("eval")) return;
    run_triage(*o);
  });
});

}  // namespace
}  // namespace csq::app
