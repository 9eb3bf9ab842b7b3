// csq data — checks on training data; `overlap` measures benchmark contamination.
#include <cstdio>
#include <cstdlib>

#include "base/error.h"
#include "command.h"
#include "eval/benchmarks.h"
#include "eval/overlap.h"

namespace csq::app {
namespace {

struct OverlapOptions {
  std::string train, benchmark, data;
  int ngram = 8;
  double threshold = 0.5;
  bool json = false, items = false;
};

void run_overlap(const OverlapOptions& o) {
  std::string data = o.data;
  if (data.empty()) {
    const char* env = std::getenv("CSQ_DATA");
    if (!env || !*env) fail_usage("no benchmark data directory: pass --data DIR (or set CSQ_DATA)");
    data = env;
  }
  if (o.threshold < 0 || o.threshold > 1) fail_usage("--threshold must be within [0, 1]");
  const eval::Benchmark bench = eval::load_benchmark(o.benchmark, data);
  const auto texts = eval::read_training_texts(o.train);
  const eval::OverlapReport rep = eval::compute_overlap(texts, bench, o.ngram, o.threshold);
  if (o.json) {
    auto j = rep.to_json(o.items);
    j["train"] = o.train;
    j["benchmark"] = bench.name;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  const double items = rep.items ? double(rep.items) : 1.0;
  std::printf("training records   %zu (%s)\n", rep.train_records, o.train.c_str());
  std::printf("benchmark items    %zu (%s)\n", rep.items, bench.name.c_str());
  std::printf("exact              %zu (%.1f%%)\n", rep.exact, 100.0 * double(rep.exact) / items);
  std::printf("any %d-gram         %zu (%.1f%%)\n", rep.n, rep.any_ngram, 100.0 * double(rep.any_ngram) / items);
  std::printf(">= %.0f%% of %d-grams %zu (%.1f%%)\n", 100 * rep.threshold, rep.n, rep.above_threshold,
              100.0 * double(rep.above_threshold) / items);
  std::printf("mean %d-gram share  %.4f\n", rep.n, rep.mean_fraction);
}

const RegisterCommand reg([](CLI::App& root) {
  CLI::App* data = root.add_subcommand("data", "Checks on training data");
  data->require_subcommand(1);
  auto o = std::make_shared<OverlapOptions>();
  CLI::App* overlap = data->add_subcommand("overlap", "Exact and n-gram overlap between a training set and a benchmark");
  overlap->add_option("--train", o->train, "Training JSONL: {\"prompt\",\"response\"}, {\"messages\"} or {\"text\"}")
      ->required();
  overlap->add_option("--benchmark", o->benchmark, "Benchmark name (see 'csq eval list')")->required();
  overlap->add_option("--data", o->data, "Benchmark data directory (default: $CSQ_DATA)");
  overlap->add_option("--ngram", o->ngram, "n-gram length in words (default 8)");
  overlap->add_option("--threshold", o->threshold, "Share of an item's n-grams that flags it (default 0.5)");
  overlap->add_flag("--items", o->items, "With --json, list every item");
  overlap->add_flag("--json", o->json, "Print JSON");
  overlap->callback([o] { run_overlap(*o); });
});

}  // namespace
}  // namespace csq::app
