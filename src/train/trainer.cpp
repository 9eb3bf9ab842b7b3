#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "io/mapped_file.h"
#include "runtime/engine.h"
#include "train/data.h"
#include "train/optimizer.h"

namespace csq::train {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

// The settings that determine the numbers: a checkpoint resumes only under the same ones.
ojson math_settings(const TrainConfig& c) {
  ojson targets = ojson::array();
  for (LoraTarget t : c.targets) targets.push_back(lora_target_name(t));
  return {{"data", fs::weakly_canonical(c.data).string()},
          {"lora_r", c.lora_r},
          {"lora_alpha", c.lora_alpha},
          {"lora_dropout", c.lora_dropout},
          {"rslora", c.rslora},
          {"targets", targets},
          {"lr", c.lr},
          {"epochs", c.epochs},
          {"max_steps", c.max_steps},
          {"batch", c.batch},
          {"grad_accum", c.grad_accum},
          {"seq_len", c.seq_len},
          {"warmup_ratio", c.warmup_ratio},
          {"weight_decay", c.weight_decay},
          {"max_grad_norm", c.max_grad_norm},
          {"val_split", c.val_split},
          {"seed", c.seed},
          {"precision", c.precision == Precision::BF16 ? "bf16" : "f32"},
          {"stochastic_rounding", c.stochastic_rounding}};
}

// One optimizer step: which micro-batches (of which epoch's packing) it consumes.
struct PlannedStep {
  int64_t epoch;
  size_t first_sequence;
  size_t sequences;
};

struct EpochPacking {
  std::vector<std::vector<size_t>> sequences;
};

// PyTorch's kaiming_uniform_(a = sqrt(5)) as PEFT initialises A: U(-1/sqrt(in), 1/sqrt(in)); B = 0.
void initialise(LoraAdapter& adapter, const ModelConfig& config, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& layer : adapter.layers)
    for (LoraTarget target : adapter.targets) {
      const double bound = 1.0 / std::sqrt(double(lora_target_shape(config, target)[1]));
      for (float& a : layer[size_t(target)].a) {
        const double u = double(rng() >> 11) * 0x1.0p-53;
        a = float((2.0 * u - 1.0) * bound);
      }
    }
}

std::vector<AdamWSlot> slots_of(LoraAdapter& p, LoraAdapter& g, LoraAdapter& m, LoraAdapter& v) {
  std::vector<AdamWSlot> slots;
  for (size_t l = 0; l < p.layers.size(); ++l)
    for (LoraTarget t : p.targets) {
      const size_t i = size_t(t);
      slots.push_back({&p.layers[l][i].a, &g.layers[l][i].a, &m.layers[l][i].a, &v.layers[l][i].a});
      slots.push_back({&p.layers[l][i].b, &g.layers[l][i].b, &m.layers[l][i].b, &v.layers[l][i].b});
    }
  return slots;
}

std::string find_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / "trainer_state.json")) return path;
  std::string best;
  int64_t best_step = -1;
  if (fs::is_directory(path))
    for (const auto& entry : fs::directory_iterator(path)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("checkpoint-", 0) != 0 || !fs::exists(entry.path() / "trainer_state.json")) continue;
      const int64_t step = std::atoll(name.c_str() + 11);
      if (step > best_step) best_step = step, best = entry.path().string();
    }
  if (best.empty()) fail_usage("--resume " + path + ": no checkpoint-N directory with a trainer_state.json");
  return best;
}

std::string format_duration(double seconds) {
  const int64_t s = int64_t(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                (long long)(s % 60));
  return buf;
}

void write_loss_svg(const std::string& path, const std::vector<double>& losses, double val_loss) {
  if (losses.empty()) return;
  const double w = 640, h = 360, left = 60, right = 20, top = 30, bottom = 40;
  double lo = *std::min_element(losses.begin(), losses.end()), hi = *std::max_element(losses.begin(), losses.end());
  if (hi - lo < 1e-9) hi = lo + 1;
  auto x = [&](size_t i) { return left + (w - left - right) * (losses.size() > 1 ? double(i) / double(losses.size() - 1) : 0.5); };
  auto y = [&](double v) { return top + (h - top - bottom) * (hi - v) / (hi - lo); };
  std::ofstream out(path);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out << "<text x=\"" << left << "\" y=\"18\">training loss per optimizer step"
      << (val_loss >= 0 ? " (validation " + std::to_string(val_loss) + ")" : std::string()) << "</text>\n";
  out << "<line x1=\"" << left << "\" y1=\"" << h - bottom << "\" x2=\"" << w - right << "\" y2=\"" << h - bottom
      << "\" stroke=\"black\"/>\n<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\""
      << h - bottom << "\" stroke=\"black\"/>\n";
  char label[64];
  for (double v : {lo, (lo + hi) / 2, hi}) {
    std::snprintf(label, sizeof label, "%.3f", v);
    out << "<text x=\"4\" y=\"" << y(v) + 4 << "\">" << label << "</text>\n";
  }
  out << "<text x=\"" << left << "\" y=\"" << h - 12 << "\">1</text><text x=\"" << w - right - 30 << "\" y=\""
      << h - 12 << "\">" << losses.size() << "</text>\n<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
  for (size_t i = 0; i < losses.size(); ++i) out << x(i) << "," << y(losses[i]) << " ";
  out << "\"/>\n</svg>\n";
}

}  // namespace

void apply_recipe(TrainConfig& c, const std::string& recipe) {
  if (recipe != "cybersecqwen") fail_usage("unknown recipe '" + recipe + "' (known: cybersecqwen)");
  c.lora_r = 64;
  c.lora_alpha = 64;
  c.lora_dropout = 0.05;
  c.targets = {LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O, LoraTarget::Gate, LoraTarget::Up, LoraTarget::Down};
  c.lr = 5e-5;
  c.warmup_ratio = 0.05;
  c.weight_decay = 0.01;
  c.epochs = 10;
  c.batch = 1;
  c.grad_accum = 16;
  c.seq_len = 4096;
  c.precision = Precision::BF16;
}

TrainSummary run_training(const TrainConfig& cfg) {
  if (cfg.out.empty()) fail_usage("--out is required");
  if (cfg.lora_r <= 0 || cfg.batch <= 0 || cfg.grad_accum <= 0 || cfg.seq_len < 2 || cfg.epochs <= 0)
    fail_usage("--lora-r, --batch, --grad-accum and --epochs must be positive and --seq-len at least 2");
  if (cfg.lr <= 0 || cfg.warmup_ratio < 0 || cfg.warmup_ratio > 1 || cfg.val_split < 0 || cfg.val_split >= 1)
    fail_usage("--lr must be positive, --warmup-ratio in [0, 1], --val-split in [0, 1)");
  for (const auto& [option, value] : {std::pair{"--weight-decay", cfg.weight_decay}, {"--max-grad-norm", cfg.max_grad_norm},
                                      {"--max-steps", double(cfg.max_steps)}, {"--save-steps", double(cfg.save_steps)}})
    if (value < 0) fail_usage(std::string(option) + " must not be negative");
  // A new run never writes over an earlier one: the earlier run would be lost, its checkpoints
  // would stay beside the new ones, and a later --resume OUT could take one of them up.
  if (cfg.resume.empty() && fs::is_directory(cfg.out))
    for (const auto& entry : fs::directory_iterator(cfg.out)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("checkpoint-", 0) == 0 || name == "train_log.jsonl" || name == "adapter_config.json")
        fail_usage("--out " + cfg.out + " holds an earlier training run (" + name + "): continue it with --resume " + cfg.out +
                   ", or give another --out");
    }

  Engine engine = load_engine(cfg.model, cfg.template_file);
  const Model& model = *engine.model;
  const ModelConfig& mc = model.config();
  DataReport report;
  std::vector<Example> all = load_examples(engine, cfg.data, cfg.seq_len, report);
  std::fprintf(stderr, "csq train: %zu examples, %lld tokens (%lld trained on), longest %zu", report.examples,
               (long long)report.tokens, (long long)report.trained_tokens, report.longest);
  if (report.truncated) {
    std::string lines;
    for (size_t l : report.truncated_lines) lines += (lines.empty() ? "" : ", ") + std::to_string(l);
    std::fprintf(stderr, "; %zu cut to %lld tokens (%lld tokens dropped; lines %s%s)", report.truncated,
                 (long long)cfg.seq_len, (long long)report.truncated_tokens, lines.c_str(),
                 report.truncated > report.truncated_lines.size() ? ", ..." : "");
  }
  if (report.dropped) {
    std::string lines;
    for (size_t l : report.dropped_lines) lines += (lines.empty() ? "" : ", ") + std::to_string(l);
    std::fprintf(stderr, "; %zu dropped: no answer token left within %lld tokens (lines %s%s)", report.dropped,
                 (long long)cfg.seq_len, lines.c_str(), report.dropped > report.dropped_lines.size() ? ", ..." : "");
  }
  std::fprintf(stderr, "\n");

  // Validation examples: a seeded draw, disjoint from training.
  std::vector<Example> train_set, val_set;
  {
    const std::vector<size_t> order = shuffled_order(all.size(), cfg.seed ^ 0x5eedf00dull);
    const size_t n_val = size_t(std::llround(cfg.val_split * double(all.size())));
    if (n_val >= all.size()) fail_usage("--val-split leaves no training examples");
    std::vector<bool> is_val(all.size(), false);
    for (size_t i = 0; i < n_val; ++i) is_val[order[i]] = true;
    for (size_t i = 0; i < all.size(); ++i) (is_val[i] ? val_set : train_set).push_back(std::move(all[i]));
  }

  // The whole plan up front: each epoch's shuffled packing and the steps that consume it.
  std::vector<EpochPacking> epochs;
  std::vector<PlannedStep> plan;
  const size_t per_step = size_t(cfg.batch * cfg.grad_accum);
  for (int64_t e = 0; cfg.max_steps > 0 ? int64_t(plan.size()) < cfg.max_steps : e < cfg.epochs; ++e) {
    epochs.push_back({pack_sequences(train_set, shuffled_order(train_set.size(), cfg.seed + uint64_t(e)), cfg.seq_len)});
    const size_t n_seq = epochs.back().sequences.size();
    for (size_t first = 0; first < n_seq && (cfg.max_steps <= 0 || int64_t(plan.size()) < cfg.max_steps); first += per_step)
      plan.push_back({e, first, std::min(per_step, n_seq - first)});
  }
  const int64_t total_steps = int64_t(plan.size());
  const int64_t warmup_steps = int64_t(std::ceil(cfg.warmup_ratio * double(total_steps)));

  LoraAdapter params = LoraAdapter::zeros(mc, cfg.lora_r, cfg.lora_alpha, cfg.rslora, cfg.targets);
  initialise(params, mc, cfg.seed);
  LoraAdapter grads = LoraAdapter::zeros(mc, cfg.lora_r, cfg.lora_alpha, cfg.rslora, cfg.targets);
  LoraAdapter m = grads, v = grads;
  const ojson settings = math_settings(cfg);
  int64_t start_step = 0;
  fs::create_directories(cfg.out);
  const std::string log_path = cfg.out + "/train_log.jsonl";
  std::vector<double> losses;
  if (!cfg.resume.empty()) {
    const std::string dir = find_checkpoint(cfg.resume);
    const ojson state = ojson::parse(io::read_text_file(dir + "/trainer_state.json"));
    if (state["settings"] != settings)
      fail_usage(dir + ": the checkpoint was made with other training settings:\n  checkpoint " +
                 state["settings"].dump() + "\n  now        " + settings.dump());
    start_step = state["step"].get<int64_t>();
    params = read_peft_adapter(dir, mc);
    convert_rotary_order(params, mc, true);  // moments are kept in the model's order already
    m = read_peft_adapter(dir + "/optimizer_m", mc);
    v = read_peft_adapter(dir + "/optimizer_v", mc);
    params.rslora = m.rslora = v.rslora = cfg.rslora;
    // Keep the log up to the checkpoint; later lines are recomputed.
    std::vector<std::string> kept;
    if (std::ifstream in(log_path); in)
      for (std::string line; std::getline(in, line);) {
        const ojson entry = ojson::parse(line, nullptr, false);
        if (entry.is_object() && entry.value("step", int64_t(0)) <= start_step) {
          kept.push_back(line);
          losses.push_back(entry["loss"].get<double>());
        }
      }
    std::ofstream rewrite(log_path, std::ios::trunc);
    for (const auto& line : kept) rewrite << line << "\n";
    std::fprintf(stderr, "csq train: resuming %s at step %lld of %lld\n", dir.c_str(), (long long)start_step,
                 (long long)total_steps);
  } else {
    std::ofstream(log_path, std::ios::trunc);
  }

  ThreadPool pool(cfg.threads);
  GraphOptions graph_options{float(cfg.lora_dropout), cfg.seed, cfg.precision, cfg.stochastic_rounding};
  LoraGraph graph(model, params, grads, graph_options);
  const std::vector<AdamWSlot> slots = slots_of(params, grads, m, v);
  std::vector<std::vector<float>*> grad_vectors;
  for (const auto& s : slots) grad_vectors.push_back(s.grad);
  const AdamWConfig adamw{cfg.lr, 0.9, 0.999, 1e-8, cfg.weight_decay};
  const std::string base_name = fs::path(cfg.model).filename().string();

  // The graph trains B in the model's row order; files hold Hugging Face's.
  auto hf_order = [&](LoraAdapter adapter) {
    convert_rotary_order(adapter, mc, false);
    return adapter;
  };
  auto save_checkpoint = [&](int64_t step) {
    const std::string dir = cfg.out + "/checkpoint-" + std::to_string(step), tmp = dir + ".partial";
    fs::remove_all(tmp);
    write_peft_adapter(tmp, hf_order(params), mc, base_name, cfg.lora_dropout);
    write_peft_adapter(tmp + "/optimizer_m", m, mc, base_name);
    write_peft_adapter(tmp + "/optimizer_v", v, mc, base_name);
    std::ofstream(tmp + "/trainer_state.json") << ojson{{"step", step}, {"total_steps", total_steps}, {"settings", settings}}.dump(2)
                                               << "\n";
    fs::remove_all(dir);
    fs::rename(tmp, dir);  // a checkpoint is either whole or absent
  };

  const bool tty = isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  int64_t tokens_done = 0;
  TrainSummary summary;
  std::ofstream log(log_path, std::ios::app);
  for (int64_t step = start_step; step < total_steps; ++step) {
    const PlannedStep& p = plan[size_t(step)];
    const auto& sequences = epochs[size_t(p.epoch)].sequences;
    std::vector<PackedBatch> micro;
    int64_t loss_tokens = 0, step_tokens = 0;
    for (size_t first = p.first_sequence; first < p.first_sequence + p.sequences; first += size_t(cfg.batch)) {
      micro.push_back(make_batch(train_set, sequences, first,
                                 std::min(size_t(cfg.batch), p.first_sequence + p.sequences - first)));
      loss_tokens += micro.back().loss_tokens();
      step_tokens += micro.back().size();
    }
    for (const auto& s : slots) std::fill(s.grad->begin(), s.grad->end(), 0.0f);
    double loss_sum = 0;
    // The loss is the mean over every trained token of the step, as transformers computes it
    // across accumulated micro-batches.
    const float grad_scale = loss_tokens > 0 ? float(1.0 / double(loss_tokens)) : 0.0f;
    const auto step_start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < micro.size(); ++i)
      loss_sum += graph.forward_backward(micro[i], grad_scale, uint64_t(step) * 4096 + i, pool);
    const double loss = loss_tokens > 0 ? loss_sum / double(loss_tokens) : 0.0;
    const double grad_norm = clip_global_norm(grad_vectors, cfg.max_grad_norm);
    const double lr = cosine_with_warmup(cfg.lr, step, warmup_steps, total_steps);
    adamw_step(slots, {lr, adamw.beta1, adamw.beta2, adamw.eps, adamw.weight_decay}, step + 1, lr);
    const auto now = std::chrono::steady_clock::now();
    const double step_seconds = std::chrono::duration<double>(now - step_start).count();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    tokens_done += step_tokens;
    const double tokens_per_s = double(step_tokens) / std::max(step_seconds, 1e-9);
    losses.push_back(loss);
    ojson entry = {{"step", step + 1},
                   {"epoch", double(p.epoch) + double(p.first_sequence + p.sequences) /
                                                   double(std::max<size_t>(1, sequences.size()))},
                   {"loss", loss},
                   {"lr", lr},
                   {"grad_norm", grad_norm},
                   {"tokens", step_tokens},
                   {"trained_tokens", loss_tokens},
                   {"tokens_per_s", tokens_per_s}};
    log << entry.dump() << "\n" << std::flush;
    if (cfg.progress) {
      const int64_t done = step + 1 - start_step, left = total_steps - step - 1;
      const int width = 24, filled = int(width * (step + 1) / total_steps);
      std::fprintf(stderr, "%sstep %lld/%lld [%s%s] loss %.4f lr %.2e %.0f tok/s ETA %s%s",
                   tty ? "\r" : "", (long long)(step + 1), (long long)total_steps, std::string(size_t(filled), '#').c_str(),
                   std::string(size_t(width - filled), '.').c_str(), loss, lr, double(tokens_done) / elapsed,
                   format_duration(elapsed / double(done) * double(left)).c_str(), tty ? "" : "\n");
    }
    if (cfg.save_steps > 0 && (step + 1) % cfg.save_steps == 0 && step + 1 < total_steps) save_checkpoint(step + 1);
    summary.final_loss = loss;
  }
  if (cfg.progress && tty) std::fprintf(stderr, "\n");
  summary.steps = total_steps;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.tokens_per_s = summary.seconds > 0 ? double(tokens_done) / summary.seconds : 0;

  if (!val_set.empty()) {
    std::vector<std::vector<size_t>> sequences = pack_sequences(val_set, shuffled_order(val_set.size(), 0), cfg.seq_len);
    double sum = 0;
    int64_t count = 0;
    for (size_t s = 0; s < sequences.size(); s += size_t(cfg.batch)) {
      const PackedBatch b = make_batch(val_set, sequences, s, size_t(cfg.batch));
      sum += graph.loss(b, pool);
      count += b.loss_tokens();
    }
    summary.val_loss = sum / double(std::max<int64_t>(1, count));
  }
  save_checkpoint(total_steps);
  write_peft_adapter(cfg.out, hf_order(params), mc, base_name, cfg.lora_dropout);
  if (!cfg.rslora) write_gguf_adapter(cfg.out + "/adapter.gguf", hf_order(params), mc);
  write_loss_svg(cfg.out + "/loss.svg", losses, summary.val_loss);
  return summary;
}

}  // namespace csq::train
