// csq bench — prompt-processing and generation speed in llama-bench's layout (token ids in,
// so tokenization is excluded), with the memory-bandwidth roofline of generation, the compute
// roofline of prompt processing and the peak resident memory.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/process.h"
#include "base/thread_pool.h"
#include "command.h"
#include "model_option.h"
#include "generation_options.h"
#include "io/gguf.h"
#include "kernels/ops.h"
#include "model/device_model.h"
#include "model/model.h"
#include "model/transformer.h"
#include "quant_plan.h"

namespace csq::app {
namespace {

struct BenchOptions {
  std::string model;
  int prompt = 128;
  int gen = 32;
  int threads = 2;
  int reps = 3;
  bool json = false;
  bool roofline = false;
  bool mmap = false;
  std::string cache_type = "f16";
  DeviceOption device;
  std::vector<int> streams;  // --streams: batched generation instead of pp/tg
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Stats {
  double mean = 0, sd = 0;
  std::vector<double> samples;
};

Stats stats(std::vector<double> samples) {
  Stats s;
  s.samples = std::move(samples);
  for (double v : s.samples) s.mean += v;
  s.mean /= double(s.samples.size());
  if (s.samples.size() > 1) {
    for (double v : s.samples) s.sd += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(s.sd / double(s.samples.size() - 1));
  }
  return s;
}

// Tokens spread over the vocabulary; the values do not change the work done.
std::vector<int32_t> bench_tokens(int n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[size_t(i)] = int32_t((int64_t(i) * 7919 + 13) % vocab);
  return ids;
}

// One prompt of n tokens through a fresh cache, logits for the last token only.
double time_prompt(const Model& model, ThreadPool& pool, const std::vector<int32_t>& ids, DType kv_type) {
  KvCache cache(model.config(), 1, int64_t(ids.size()), kv_type);
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], int32_t(i), 0, i + 1 == ids.size());
  std::vector<float> logits;
  const auto start = Clock::now();
  forward(model, batch, cache, pool, logits);
  return seconds_since(start);
}

// n tokens generated one at a time from an empty context (as llama-bench's tg test).
double time_generation(const Model& model, ThreadPool& pool, const std::vector<int32_t>& ids, DType kv_type) {
  KvCache cache(model.config(), 1, int64_t(ids.size()), kv_type);
  Batch batch;
  std::vector<float> logits;
  const auto start = Clock::now();
  for (size_t i = 0; i < ids.size(); ++i) {
    batch.clear();
    batch.add(ids[i], int32_t(i), 0, true);
    forward(model, batch, cache, pool, logits);
  }
  return seconds_since(start);
}

// llama-batched-bench's test for one stream count: n_streams prompts of n_prompt tokens (in
// batches of up to 512 tokens, its default micro-batch), then n_gen steps that each decode one
// token of every stream in a single batch, so every step reads the weights once for all streams.
struct StreamsTiming {
  double prompt_s = 0, gen_s = 0;
};

StreamsTiming time_streams(const Model& model, ThreadPool& pool, int n_streams, int n_prompt, int n_gen, DType kv_type) {
  constexpr int64_t kPromptBatch = 512;
  const int64_t vocab = model.config().vocab_size;
  KvCache cache(model.config(), n_streams, int64_t(n_prompt) + n_gen, kv_type);
  std::vector<float> logits;
  Batch batch;
  StreamsTiming timing;
  // Each stream its own prompt: stream s starts s tokens further along the same sequence of ids.
  const auto ids = bench_tokens(n_prompt + n_gen + n_streams, vocab);
  auto start = Clock::now();
  for (int s = 0; s < n_streams; ++s)
    for (int i = 0; i < n_prompt; ++i) {
      batch.add(ids[size_t(s + i)], i, s, i + 1 == n_prompt);
      if (batch.size() == kPromptBatch) {
        forward(model, batch, cache, pool, logits);
        batch.clear();
      }
    }
  if (batch.size() > 0) forward(model, batch, cache, pool, logits);
  timing.prompt_s = seconds_since(start);
  start = Clock::now();
  for (int g = 0; g < n_gen; ++g) {
    batch.clear();
    for (int s = 0; s < n_streams; ++s) batch.add(ids[size_t(s + n_prompt + g)], n_prompt + g, s, true);
    forward(model, batch, cache, pool, logits);
  }
  timing.gen_s = seconds_since(start);
  return timing;
}

// --streams: llama-batched-bench's table (-npp -ntg -npl), one line per stream count, the mean
// of -r runs after a warm-up.
void run_streams(const BenchOptions& o, const Model& model, ThreadPool& pool, DType kv_type) {
  if (o.prompt < 1 || o.gen < 1) fail_usage("--streams needs -p >= 1 and -n >= 1");
  for (int n : o.streams)
    if (n < 1 || n > 256) fail_usage("--streams: each stream count must be 1..256, got " + std::to_string(n));
  nlohmann::json rows = nlohmann::json::array();
  if (!o.json) {
    std::printf("|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |\n");
    std::printf("|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|\n");
  }
  time_streams(model, pool, 1, std::min(o.prompt, 8), 1, kv_type);  // warm-up: page in the weights
  for (int n : o.streams) {
    std::vector<double> pp_tps, tg_tps;
    StreamsTiming mean;
    for (int r = 0; r < o.reps; ++r) {
      std::fprintf(stderr, "\rstreams %d: run %d/%d", n, r + 1, o.reps);
      const StreamsTiming t = time_streams(model, pool, n, o.prompt, o.gen, kv_type);
      mean.prompt_s += t.prompt_s / o.reps;
      mean.gen_s += t.gen_s / o.reps;
      pp_tps.push_back(double(n) * o.prompt / t.prompt_s);
      tg_tps.push_back(double(n) * o.gen / t.gen_s);
    }
    std::fprintf(stderr, "\r%40s\r", "");
    const Stats pp = stats(pp_tps), tg = stats(tg_tps);
    const int64_t n_kv = int64_t(n) * (o.prompt + o.gen);
    const double total_s = mean.prompt_s + mean.gen_s;
    if (o.json) {
      rows.push_back({{"streams", n}, {"n_prompt", o.prompt}, {"n_gen", o.gen}, {"n_kv", n_kv},
                      {"t_pp_s", mean.prompt_s}, {"pp_tokens_per_s", pp.mean}, {"t_tg_s", mean.gen_s},
                      {"tg_tokens_per_s", tg.mean}, {"tg_tokens_per_s_sd", tg.sd}, {"tg_samples", tg.samples},
                      {"t_s", total_s}, {"tokens_per_s", double(n_kv) / total_s}});
    } else {
      std::printf("| %5d | %6d | %4d | %6lld | %8.3f | %8.2f | %8.3f | %8.2f | %8.3f | %8.2f |\n", o.prompt, o.gen, n,
                  static_cast<long long>(n_kv), mean.prompt_s, pp.mean, mean.gen_s, tg.mean, total_s,
                  double(n_kv) / total_s);
      std::fflush(stdout);
    }
  }
  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["n_threads"] = o.threads;
    j["kernels"] = kernels::matmul_kernel_set();
    j["repetitions"] = o.reps;
    j["cache_type"] = o.cache_type;
    j["peak_rss_bytes"] = uint64_t(double(peak_resident_kib()) * 1024.0);
    j["streams"] = rows;
    std::printf("%s\n", j.dump(2).c_str());
  }
}

// Passes reading a buffer far larger than the caches with every thread, in bytes per second
// each: the best is the bandwidth a memory-bound generation step can hope for. Each pass asks for
// every cache line 4 KB ahead into L2, as the matrix kernels do: without that a plain loop stays
// latency-bound on some machines (VMs especially) and the roofline would sit below what the
// kernels reach. The passes alternate between two strides of the threads' ranges (one range per
// thread, and interleaved 1 MiB chunks) since which reads faster differs between machines.
std::vector<double> measure_read_bandwidth(ThreadPool& pool) {
  const size_t n = size_t(1) << 27;  // 1 GiB of uint64
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
  pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) buf[size_t(i)] = uint64_t(i);
  });
  std::vector<uint64_t> sinks(size_t(pool.size()) * 8);
  const auto read = [&](int64_t b, int64_t e) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
      __builtin_prefetch(&buf[size_t(i)] + 512, 0, 2);  // prefetcht1
      s0 += buf[size_t(i)];
      s1 += buf[size_t(i + 1)];
      s2 += buf[size_t(i + 2)];
      s3 += buf[size_t(i + 3)];
      s0 += buf[size_t(i + 4)];
      s1 += buf[size_t(i + 5)];
      s2 += buf[size_t(i + 6)];
      s3 += buf[size_t(i + 7)];
    }
    for (; i < e; ++i) s0 += buf[size_t(i)];
    return s0 + s1 + s2 + s3;
  };
  constexpr int64_t kChunk = int64_t(1) << 17;  // 1 MiB of uint64
  std::vector<double> passes;
  for (int pass = 0; pass < 6; ++pass) {
    const auto start = Clock::now();
    if (pass % 2 == 0) {
      pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int thread) { sinks[size_t(thread) * 8] += read(b, e); });
    } else {
      pool.parallel_for_dynamic(int64_t(n) / kChunk, 1, [&](int64_t b, int64_t e, int thread) {
        sinks[size_t(thread) * 8] += read(b * kChunk, e * kChunk);
      });
    }
    passes.push_back(double(n * sizeof(uint64_t)) / seconds_since(start));
  }
  return passes;
}

// Bytes of weights one generation step reads: every layer matrix and the output head (the
// embedding lookup reads a single row).
uint64_t weight_bytes_per_token(const Model& model) {
  auto bytes = [](const kernels::Matrix& m) { return uint64_t(m.rows * m.row_bytes()); };
  const ModelWeights& w = model.weights();
  uint64_t total = bytes(w.lm_head);
  for (const LayerWeights& l : w.layers)
    total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.w_gate) + bytes(l.w_up) + bytes(l.w_down);
  return total;
}

// Multiply-adds of one prompt token in the layer matrices (the output head runs for the last
// token only; attention adds under 1% at these lengths), split by the arithmetic matmul uses.
struct PromptMacs {
  double int8 = 0, floats = 0, bf16 = 0, amx_bf16 = 0, amx_int8 = 0, reference = 0;
  double total() const { return int8 + floats + bf16 + amx_bf16 + amx_int8 + reference; }
};

PromptMacs prompt_macs_per_token(const Model& model) {
  PromptMacs macs;
  const auto add = [&](const kernels::Matrix& m) {
    const double n = double(m.rows) * double(m.cols);
    switch (kernels::matmul_arithmetic(m.type)) {
      case kernels::MatmulArithmetic::Int8: macs.int8 += n; break;
      case kernels::MatmulArithmetic::Float: macs.floats += n; break;
      case kernels::MatmulArithmetic::BF16: macs.bf16 += n; break;
      case kernels::MatmulArithmetic::AmxBF16Split: macs.amx_bf16 += n; break;
      case kernels::MatmulArithmetic::AmxInt8: macs.amx_int8 += n; break;
      case kernels::MatmulArithmetic::Reference: macs.reference += n; break;
    }
  };
  for (const LayerWeights& l : model.weights().layers)
    for (const kernels::Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) add(*m);
  return macs;
}

// Prompt tokens per second if every layer matrix ran at the machine's peak for its arithmetic;
// 0 where some matrix has no fast kernel here (the probes do not describe the reference path).
// The AMX bf16 product splits each activation in two parts, the AMX int8 one splits k-quant weights
// in two byte planes (Q8_0: half-depth tiles): two tile multiply-adds per model one either way.
double prompt_roofline(const PromptMacs& macs, const kernels::ComputePeak& peak) {
  double seconds = 0;
  for (const auto& [work, rate] : {std::pair{macs.int8, peak.int8_macs_per_s}, std::pair{macs.floats, peak.float_macs_per_s},
                                  std::pair{macs.bf16, peak.bf16_macs_per_s},
                                  std::pair{2 * macs.amx_bf16, peak.amx_bf16_macs_per_s},
                                  std::pair{2 * macs.amx_int8, peak.amx_int8_macs_per_s}}) {
    if (work <= 0) continue;
    if (rate <= 0) return 0;
    seconds += work / rate;
  }
  return macs.reference > 0 || seconds <= 0 ? 0 : 1.0 / seconds;
}

// Which peaks a prompt's compute roofline divides by, named for the report.
std::string prompt_arithmetic(const PromptMacs& macs) {
  std::string out;
  for (const auto& [work, name] : {std::pair{macs.int8, "int8 vector"}, std::pair{macs.floats, "float FMA"},
                                   std::pair{macs.bf16, "bf16 dot product, split activations"},
                                   std::pair{macs.amx_bf16, "AMX bf16, split activations"},
                                   std::pair{macs.amx_int8, "AMX int8, two tile products per multiply-add"}})
    if (work > 0) out += (out.empty() ? "" : " + ") + std::string(name);
  return out;
}

std::string model_type_name(const Model& model) {
  if (const io::GgufFile* g = model.gguf())
    if (auto ft = g->get_int_opt("general.file_type"))
      if (const char* name = file_type_name(uint32_t(*ft))) return name;
  std::string best;
  int count = 0;
  for (const auto& [name, n] : model.checkpoint().tensor_types)
    if (n > count && name != "F32") best = name, count = n;
  return best;
}

std::string params_label(int64_t params) {
  char buf[32];
  if (params >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2f B", double(params) / 1e9);
  else std::snprintf(buf, sizeof buf, "%.2f M", double(params) / 1e6);
  return buf;
}

void run_bench(const BenchOptions& o) {
  if (o.prompt < 0 || o.gen < 0 || o.reps < 1 || o.threads < 1 || (o.prompt == 0 && o.gen == 0))
    fail_usage("need -p >= 0, -n >= 0 (not both 0), -r >= 1 and -t >= 1");
  const DType kv_type = cache_dtype(o.cache_type);
  auto model = Model::load(o.model, weight_memory(o.mmap));
  use_device(*model, o.device);
  const std::string backend = model->device() ? "Vulkan" : "CPU";
  const ModelConfig& c = model->config();
  ThreadPool pool(o.threads);
  if (!o.streams.empty()) return run_streams(o, *model, pool, kv_type);

  struct Test {
    std::string name;
    int tokens;
    Stats tps;
  };
  std::vector<Test> tests;
  // The machine's bandwidth drifts (other tenants of a VM host): measured before and after the
  // tests, and the better of the two taken, so the roofline fraction errs on the low side.
  std::vector<double> bandwidth_probes = o.roofline ? measure_read_bandwidth(pool) : std::vector<double>{};
  const kernels::ComputePeak peak_before = o.roofline ? kernels::measure_compute_peak(pool) : kernels::ComputePeak{};
  if (o.roofline && !reset_peak_resident())
    std::fprintf(stderr, "note: the peak memory below includes the 1 GiB bandwidth buffer\n");
  if (o.prompt > 0) {
    const auto ids = bench_tokens(o.prompt, c.vocab_size);
    time_prompt(*model, pool, ids, kv_type);  // warm-up: page in the weights
    std::vector<double> tps;
    for (int r = 0; r < o.reps; ++r) {
      tps.push_back(o.prompt / time_prompt(*model, pool, ids, kv_type));
      std::fprintf(stderr, "\rpp%d: run %d/%d", o.prompt, r + 1, o.reps);
    }
    tests.push_back({"pp" + std::to_string(o.prompt), o.prompt, stats(tps)});
  }
  if (o.gen > 0) {
    const auto ids = bench_tokens(o.gen, c.vocab_size);
    time_generation(*model, pool, std::vector<int32_t>(ids.begin(), ids.begin() + 1), kv_type);  // warm-up
    std::vector<double> tps;
    for (int r = 0; r < o.reps; ++r) {
      tps.push_back(o.gen / time_generation(*model, pool, ids, kv_type));
      std::fprintf(stderr, "\rtg%d: run %d/%d", o.gen, r + 1, o.reps);
    }
    tests.push_back({"tg" + std::to_string(o.gen), o.gen, stats(tps)});
  }
  std::fprintf(stderr, "\r%40s\r", "");

  const double rss = double(peak_resident_kib()) * 1024.0;
  const uint64_t per_token = weight_bytes_per_token(*model);
  if (o.roofline)
    for (double v : measure_read_bandwidth(pool)) bandwidth_probes.push_back(v);
  const double bandwidth = bandwidth_probes.empty() ? 0 : *std::max_element(bandwidth_probes.begin(), bandwidth_probes.end());
  const double roof_tps = bandwidth > 0 ? bandwidth / double(per_token) : 0;
  kernels::ComputePeak peak;
  if (o.roofline) {
    const kernels::ComputePeak after = kernels::measure_compute_peak(pool);
    peak.int8_macs_per_s = std::max(peak_before.int8_macs_per_s, after.int8_macs_per_s);
    peak.float_macs_per_s = std::max(peak_before.float_macs_per_s, after.float_macs_per_s);
    peak.bf16_macs_per_s = std::max(peak_before.bf16_macs_per_s, after.bf16_macs_per_s);
    peak.amx_bf16_macs_per_s = std::max(peak_before.amx_bf16_macs_per_s, after.amx_bf16_macs_per_s);
    peak.amx_int8_macs_per_s = std::max(peak_before.amx_int8_macs_per_s, after.amx_int8_macs_per_s);
  }
  const PromptMacs macs = prompt_macs_per_token(*model);
  const double pp_roof_tps = o.roofline ? prompt_roofline(macs, peak) : 0;
  const std::string pp_arithmetic = prompt_arithmetic(macs);
  const auto roofline_of = [&](const Test& t) { return t.name[0] == 't' ? roof_tps : pp_roof_tps; };
  char size_class[16];
  std::snprintf(size_class, sizeof size_class, "%.1fB", double(model->checkpoint().parameter_count) / 1e9);
  const std::string model_label = std::string(arch_name(c.arch)) + " " + size_class + " " + model_type_name(*model);
  const double size = double(model->checkpoint().file_bytes);
  const double kv_bytes = double(KvCache(c, 1, std::max(o.prompt, o.gen), kv_type).bytes());

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["model_type"] = model_label;
    j["model_size"] = model->checkpoint().file_bytes;
    j["model_n_params"] = model->checkpoint().parameter_count;
    j["n_threads"] = o.threads;
    j["backend"] = backend;
    if (model->device()) j["device"] = model->device()->info().name;
    j["kernels"] = kernels::matmul_kernel_set();
    j["weights"] = o.mmap ? "mapped" : "loaded";
    j["cache_type"] = o.cache_type;
    j["repetitions"] = o.reps;
    j["peak_rss_bytes"] = uint64_t(rss);
    j["kv_cache_bytes"] = uint64_t(kv_bytes);  // the memory bound is model_size + this + 10%
    j["weight_bytes_per_token"] = per_token;
    if (o.roofline) {
      j["read_bandwidth_bytes_per_s"] = bandwidth;
      j["bandwidth_probes"] = bandwidth_probes;
      j["tg_roofline_tokens_per_s"] = roof_tps;
      j["int8_peak_macs_per_s"] = peak.int8_macs_per_s;
      j["float_peak_macs_per_s"] = peak.float_macs_per_s;
      if (peak.bf16_macs_per_s > 0) j["bf16_peak_macs_per_s"] = peak.bf16_macs_per_s;
      if (peak.amx_bf16_macs_per_s > 0) j["amx_bf16_peak_macs_per_s"] = peak.amx_bf16_macs_per_s;
      if (peak.amx_int8_macs_per_s > 0) j["amx_int8_peak_macs_per_s"] = peak.amx_int8_macs_per_s;
      j["pp_roofline_arithmetic"] = pp_arithmetic;
      j["prompt_macs_per_token"] = macs.total();
      if (pp_roof_tps > 0) j["pp_roofline_tokens_per_s"] = pp_roof_tps;
    }
    for (const Test& t : tests) {
      nlohmann::json r;
      r["test"] = t.name;
      r["n_tokens"] = t.tokens;
      r["avg_ts"] = t.tps.mean;
      r["stddev_ts"] = t.tps.sd;
      r["samples_ts"] = t.tps.samples;
      if (o.roofline && roofline_of(t) > 0) r["roofline_fraction"] = t.tps.mean / roofline_of(t);
      if (t.name[0] == 't') r["implied_bandwidth_bytes_per_s"] = t.tps.mean * double(per_token);
      j["results"].push_back(r);
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("| model                          |       size |     params | backend | threads |  test |                  t/s |\n");
  std::printf("| ------------------------------ | ---------: | ---------: | ------- | ------: | ----: | -------------------: |\n");
  for (const Test& t : tests)
    std::printf("| %-30s | %6.2f GiB | %10s | %-7s | %7d | %5s | %11.2f ± %6.2f |\n", model_label.c_str(),
                size / (1024.0 * 1024 * 1024), params_label(model->checkpoint().parameter_count).c_str(),
                backend.c_str(), o.threads,
                t.name.c_str(), t.tps.mean, t.tps.sd);
  std::printf("\npeak resident memory %.2f GiB (file %.2f GiB + %s KV cache %.2f GiB = %.2f GiB)\n",
              rss / (1024.0 * 1024 * 1024), size / (1024.0 * 1024 * 1024), o.cache_type.c_str(), kv_bytes / (1024.0 * 1024 * 1024),
              (size + kv_bytes) / (1024.0 * 1024 * 1024));
  if (model->device()) std::printf("device: vulkan:%d %s\n", model->device()->info().index, model->device()->info().name.c_str());
  std::printf("kernels: %s; weights %s\n", kernels::matmul_kernel_set(),
              o.mmap ? "mapped from the page cache (--mmap)" : "loaded into memory");
  if (o.roofline) {
    const auto [low, high] = std::minmax_element(bandwidth_probes.begin(), bandwidth_probes.end());
    std::printf("read bandwidth %.1f GB/s with %d threads (best of %zu probes, %.1f-%.1f); generation reads %.2f GB of "
                "weights per token\n",
                bandwidth / 1e9, o.threads, bandwidth_probes.size(), *low / 1e9, *high / 1e9, double(per_token) / 1e9);
    if (peak.int8_macs_per_s > 0) {
      std::string bf16;
      if (peak.bf16_macs_per_s > 0) bf16 = ", " + std::to_string(int(peak.bf16_macs_per_s / 1e9)) + " G/s bf16";
      if (peak.amx_bf16_macs_per_s > 0)
        bf16 += ", AMX " + std::to_string(int(peak.amx_bf16_macs_per_s / 1e9)) + " G/s bf16 and " +
                std::to_string(int(peak.amx_int8_macs_per_s / 1e9)) + " G/s int8";
      std::printf("multiply-add peak %.1f G/s int8, %.1f G/s float%s with %d threads; a prompt token takes %.2f G "
                  "multiply-adds in the layer matrices\n",
                  peak.int8_macs_per_s / 1e9, peak.float_macs_per_s / 1e9, bf16.c_str(), o.threads, macs.total() / 1e9);
    } else {
      std::printf("no compute roofline: this CPU runs the reference kernels\n");
    }
    for (const Test& t : tests)
      if (roofline_of(t) > 0) {
        char implied[64] = "";
        if (t.name[0] == 't') std::snprintf(implied, sizeof implied, " (reads %.1f GB/s)", t.tps.mean * double(per_token) / 1e9);
        const std::string kind = t.name[0] == 't' ? "bandwidth" : "compute (" + pp_arithmetic + ")";
        std::printf("%s %s roofline %.2f tok/s: achieved %.1f%%%s\n", t.name.c_str(), kind.c_str(), roofline_of(t),
                    100.0 * t.tps.mean / roofline_of(t), implied);
      }
  }
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* cmd = root.add_subcommand("bench", "Measure prompt (pp) and generation (tg) speed as llama-bench does");
  add_model_option(cmd, "--model,-m", opts->model, kModelHelp)->required();
  cmd->add_option("-p,--n-prompt", opts->prompt, "Prompt tokens (0: skip the pp test)")->capture_default_str();
  cmd->add_option("-n,--n-gen", opts->gen, "Generated tokens (0: skip the tg test)")->capture_default_str();
  cmd->add_option("-t,--threads", opts->threads, "Worker threads")->capture_default_str();
  cmd->add_option("-r,--repetitions", opts->reps, "Repetitions of each test")->capture_default_str();
  add_cache_type_option(cmd, opts->cache_type);
  add_device_option(cmd, opts->device);
  add_mmap_option(cmd, opts->mmap);
  cmd->add_option("--streams", opts->streams,
                  "Batched generation instead: for each stream count (comma-separated, e.g. 1,4,8,16), -p prompt "
                  "tokens per stream, then -n steps decoding one token of every stream, in llama-batched-bench's layout")
      ->delimiter(',');
  cmd->add_flag("--json", opts->json, "Print the results as JSON");
  cmd->add_flag("--roofline", opts->roofline, "Measure read bandwidth and multiply-add peaks; report tg and pp as fractions of their rooflines");
  cmd->callback([opts] { run_bench(*opts); });
});

}  // namespace
}  // namespace csq::app
