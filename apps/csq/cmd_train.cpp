// csq train — LoRA supervised fine-tuning (the CyberSecQwen recipe or your own settings).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/process.h"
#include "command.h"
#include "model_option.h"
#include "eval/benchmarks.h"
#include "eval/overlap.h"
#include "train/trainer.h"

namespace csq::app {
namespace {

struct TrainOptions {
  train::TrainConfig config;
  std::string recipe;
  std::string targets;
  std::string precision = "bf16";
  std::string eval_data;  // benchmark directory for the contamination check
  bool quiet = false;
};

// Before training: how much of every evaluation benchmark under `data_dir` the training data
// already holds (exact and 8-gram overlap, as `csq data overlap`), printed and saved with the run
// as OUT/overlap.json, so a later evaluation can say which scores are contaminated.
void check_overlap(const std::string& train_path, const std::string& data_dir, const std::string& out_dir) {
  const std::vector<std::string> texts = eval::read_training_texts(train_path);
  nlohmann::ordered_json reports = nlohmann::ordered_json::array();
  for (const std::string& name : eval::benchmark_names()) {
    nlohmann::ordered_json j;
    try {
      const eval::Benchmark bench = eval::load_benchmark(name, data_dir);
      const eval::OverlapReport rep = eval::compute_overlap(texts, bench);
      j = rep.to_json(false);
      j["benchmark"] = name;
      std::printf("overlap %-13s %zu of %zu items verbatim in the training data, %zu with >= %.0f%% of their %d-grams\n",
                  name.c_str(), rep.exact, rep.items, rep.above_threshold, 100 * rep.threshold, rep.n);
    } catch (const Error& e) {
      j["benchmark"] = name;
      j["error"] = e.what();
      std::printf("overlap %-13s not checked: %s\n", name.c_str(), e.what());
    }
    reports.push_back(std::move(j));
  }
  std::filesystem::create_directories(out_dir);
  const std::string path = out_dir + "/overlap.json";
  nlohmann::ordered_json doc;
  doc["train"] = train_path;
  doc["benchmark_data"] = data_dir;
  doc["benchmarks"] = std::move(reports);
  std::ofstream out(path);
  if (!(out << doc.dump(2) << "\n")) fail_runtime(path + ": cannot write");
}

void run_train(TrainOptions& o, const CLI::App& cmd) {
  train::TrainConfig& c = o.config;
  if (!o.recipe.empty()) {
    // A recipe sets the defaults; options given on the command line still win.
    train::TrainConfig given = c;
    train::apply_recipe(c, o.recipe);
    auto keep = [&](const char* flag, auto& field, const auto& value) {
      if (cmd.count(flag) > 0) field = value;
    };
    keep("--lora-r", c.lora_r, given.lora_r);
    keep("--lora-alpha", c.lora_alpha, given.lora_alpha);
    keep("--lora-dropout", c.lora_dropout, given.lora_dropout);
    keep("--lr", c.lr, given.lr);
    keep("--epochs", c.epochs, given.epochs);
    keep("--batch", c.batch, given.batch);
    keep("--grad-accum", c.grad_accum, given.grad_accum);
    keep("--seq-len", c.seq_len, given.seq_len);
    keep("--warmup-ratio", c.warmup_ratio, given.warmup_ratio);
    keep("--weight-decay", c.weight_decay, given.weight_decay);
  }
  if (!o.targets.empty()) {
    c.targets.clear();
    std::stringstream list(o.targets);
    for (std::string name; std::getline(list, name, ',');) c.targets.push_back(lora_target_from_name(name));
  }
  if (o.precision == "bf16") c.precision = train::Precision::BF16;
  else if (o.precision == "f32") c.precision = train::Precision::F32;
  else fail_usage("--precision must be bf16 or f32, not '" + o.precision + "'");
  c.progress = !o.quiet;

  if (o.eval_data.empty())
    if (const char* env = std::getenv("CSQ_DATA"); env && *env) o.eval_data = env;
  if (!o.eval_data.empty()) check_overlap(c.data, o.eval_data, c.out);
  else if (o.recipe == "cybersecqwen")
    std::printf("note: no contamination check (give --eval-data DIR to check the data against the benchmarks)\n");

  const train::TrainSummary s = train::run_training(c);
  std::printf("steps %lld  final loss %.4f", (long long)s.steps, s.final_loss);
  if (s.val_loss >= 0) std::printf("  validation loss %.4f", s.val_loss);
  std::printf("  %.1f tokens/s  %.1f s  peak memory %.0f MiB\n", s.tokens_per_s, s.seconds, double(peak_resident_kib()) / 1024.0);
  std::printf("adapter: %s/adapter_model.safetensors (PEFT)%s; log: %s/train_log.jsonl\n", c.out.c_str(),
              c.rslora ? "" : (", " + c.out + "/adapter.gguf (llama.cpp)").c_str(), c.out.c_str());
}

const RegisterCommand reg([](CLI::App& root) {
  auto o = std::make_shared<TrainOptions>();
  train::TrainConfig& c = o->config;
  CLI::App* cmd = root.add_subcommand("train", "Fine-tune a LoRA adapter on JSONL conversations (supervised, assistant turns only)");
  add_model_option(cmd, "--model,-m", c.model, "Base model: Hugging Face directory or .gguf (quantized bases train QLoRA-style)")
      ->required();
  cmd->add_option("--data", c.data, "JSONL: {\"prompt\", \"response\"} or {\"messages\": [...]} per line")->required();
  cmd->add_option("--out", c.out, "Output directory (adapter, log, checkpoints)")->required();
  cmd->add_option("--template", c.template_file, "Jinja chat template to use instead of the model's own");
  cmd->add_option("--eval-data", o->eval_data,
                  "Benchmark directory (as for csq eval): check the training data for overlap with every benchmark "
                  "before training; the report is saved as OUT/overlap.json (default: $CSQ_DATA)");
  cmd->add_option("--recipe", o->recipe, "Preset settings: cybersecqwen (explicit options override it)");
  cmd->add_option("--lora-r", c.lora_r, "LoRA rank")->capture_default_str();
  cmd->add_option("--lora-alpha", c.lora_alpha, "LoRA alpha (scale alpha/r)")->capture_default_str();
  cmd->add_option("--lora-dropout", c.lora_dropout, "Dropout on each adapted projection's input")->capture_default_str();
  cmd->add_flag("--rslora", c.rslora, "Rank-stabilised scaling alpha/sqrt(r)");
  cmd->add_option("--targets", o->targets, "Comma-separated projections (default: all seven: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)");
  cmd->add_option("--lr", c.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--epochs", c.epochs, "Passes over the data")->capture_default_str();
  cmd->add_option("--max-steps", c.max_steps, "Stop after N optimizer steps (overrides --epochs)");
  cmd->add_option("--batch", c.batch, "Packed sequences per micro-batch")->capture_default_str();
  cmd->add_option("--grad-accum", c.grad_accum, "Micro-batches per optimizer step")->capture_default_str();
  cmd->add_option("--seq-len", c.seq_len, "Tokens per packed sequence (longer examples are cut and reported)")
      ->capture_default_str();
  cmd->add_option("--warmup-ratio", c.warmup_ratio, "Fraction of steps of linear warm-up before the cosine decay")
      ->capture_default_str();
  cmd->add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  cmd->add_option("--max-grad-norm", c.max_grad_norm, "Clip gradients to this global norm (0: off)")->capture_default_str();
  cmd->add_option("--val-split", c.val_split, "Fraction of examples held out for a validation loss")->capture_default_str();
  cmd->add_option("--save-steps", c.save_steps, "Write a checkpoint every N steps (always at the end)");
  cmd->add_option("--seed", c.seed, "Seed for initialisation, shuffling and dropout")->capture_default_str();
  cmd->add_option("--precision", o->precision, "bf16 (mixed: bf16 products, float32 master weights) or f32")
      ->capture_default_str();
  cmd->add_flag("--stochastic-rounding", c.stochastic_rounding,
                "With bf16: round the LoRA weights' bfloat16 copies stochastically (unbiased) instead of to nearest");
  cmd->add_option("--resume", c.resume, "Continue from a checkpoint-N directory or an output directory's latest");
  cmd->add_option("--threads,-t", c.threads, "Worker threads (default: all cores)");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress line");
  cmd->callback([o, cmd] { run_train(*o, *cmd); });
});

}  // namespace
}  // namespace csq::app
