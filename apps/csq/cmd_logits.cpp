// csq logits — the model's logits for a token sequence, written as safetensors.
#include <cstring>

#include "base/thread_pool.h"
#include "command.h"
#include "generation_options.h"
#include "model_option.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "runtime/session.h"

namespace csq::app {
namespace {

struct LogitsOptions {
  std::string model;
  std::string tokens;
  std::string out;
  bool all_positions = false;
  int threads = 0;
  DeviceOption device;
};

void run_logits(const LogitsOptions& o) {
  const std::vector<int32_t> ids = parse_token_list(o.tokens);
  auto model = Model::load(o.model);
  use_device(*model, o.device);
  ThreadPool pool(o.threads);
  Session session(*model, int64_t(ids.size()), pool);
  const std::vector<float>& logits = session.feed(ids, o.all_positions);
  const int64_t vocab = model->config().vocab_size;
  const int64_t rows = o.all_positions ? int64_t(ids.size()) : 1;
  io::SafetensorsOutput out{"logits", DType::F32, {rows, vocab}, {}};
  out.data.resize(logits.size() * sizeof(float));
  std::memcpy(out.data.data(), logits.data(), out.data.size());
  io::write_safetensors(o.out, {out});
}

const RegisterCommand reg([](CLI::App& root) {
  auto opts = std::make_shared<LogitsOptions>();
  CLI::App* cmd = root.add_subcommand("logits", "Compute the logits of a token sequence and save them as safetensors");
  add_model_option(cmd, "--model", opts->model, kModelHelp)->required();
  cmd->add_option("--tokens", opts->tokens, "Comma-separated token ids, e.g. 1,2,3")->required();
  cmd->add_option("--out", opts->out, "Output .safetensors file (tensor 'logits', f32 [1, V] or [T, V])")->required();
  cmd->add_flag("--all-positions", opts->all_positions, "Write the logits of every position, not only the last");
  cmd->add_option("--threads,-t", opts->threads, "Worker threads (default: all cores)");
  add_device_option(cmd, opts->device);
  cmd->callback([opts] { run_logits(*opts); });
});

}  // namespace
}  // namespace csq::app
