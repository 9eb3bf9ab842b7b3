// csq pull — fetch a model from the Hugging Face Hub (or a mirror) into the shared cache or a
// directory, every file checked against the Hub's hash, and write csq.lock;
// csq verify — check a directory (or the cached snapshot) against a csq.lock, offline.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "io/hub_pull.h"
#include "io/mapped_file.h"
#include "io/model_lock.h"

namespace csq::app {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string bytes_text(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)bytes);
  else if (bytes < (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f KiB", double(bytes) / 1024);
  else if (bytes < (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1 << 20));
  else std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / (1 << 30));
  return buf;
}

std::string duration_text(double seconds) {
  if (seconds < 0 || seconds > 360000) return "--:--";
  const long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// A bar redrawn in place on a terminal; plain lines (events, and the totals every 10 s) otherwise.
class PullDisplay {
 public:
  PullDisplay() : terminal_(isatty(STDERR_FILENO)), start_(Clock::now()), last_line_(start_) {}

  void event(const io::hub::PullEvent& e) {
    using K = io::hub::PullEvent;
    std::string line;
    switch (e.kind) {
      case K::Start: line = "get      " + e.path + " (" + bytes_text(e.size) + ")"; break;
      case K::Resume:
        line = "resume   " + e.path + " at " + bytes_text(e.offset) + " of " + bytes_text(e.size);
        break;
      case K::Retry: line = "retry    " + e.path + ": " + e.message; break;
      case K::Verified: line = "verified " + e.path + " sha256 " + e.message; break;
      case K::Reused: line = "present  " + e.path + " sha256 " + e.message; break;
      case K::Failed: line = "FAILED   " + e.path + ": " + e.message; break;
    }
    std::fprintf(stderr, "%s%s\n", terminal_ ? "\r\x1b[K" : "", line.c_str());
  }

  void progress(const io::hub::PullProgress& p) {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? double(p.transferred_bytes) / elapsed : 0;
    const double left = rate > 0 ? double(p.total_bytes - std::min(p.done_bytes, p.total_bytes)) / rate : -1;
    const double fraction = p.total_bytes ? double(p.done_bytes) / double(p.total_bytes) : 1;
    char stats[160];
    std::snprintf(stats, sizeof stats, "%3d%%  %s / %s  %s/s  %s left  %d/%d files", int(fraction * 100),
                  bytes_text(p.done_bytes).c_str(), bytes_text(p.total_bytes).c_str(),
                  bytes_text(uint64_t(rate)).c_str(), duration_text(left).c_str(), p.files_done, p.files_total);
    if (terminal_) {
      constexpr int kWidth = 30;
      const int filled = int(fraction * kWidth);
      std::string bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '-') + "]";
      std::fprintf(stderr, "\r\x1b[K%s %s", bar.c_str(), stats);
      std::fflush(stderr);
    } else if (now - last_line_ >= std::chrono::seconds(10)) {
      std::fprintf(stderr, "progress %s\n", stats);
      last_line_ = now;
    }
  }

  void finish() {
    if (terminal_) std::fprintf(stderr, "\n");
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  bool terminal_;
  Clock::time_point start_, last_line_;
};

struct PullCommandOptions {
  std::string spec;
  std::vector<std::string> include, exclude;
  std::string dir, endpoint, token_file, lock_path;
  bool no_lock = false;
  bool json = false;
  int jobs = 4;
  int retries = 5;
};

void run_pull(const PullCommandOptions& c) {
  const std::optional<io::hub::RepoRef> ref = io::hub::parse_repo_ref(c.spec);
  if (!ref) fail_usage("'" + c.spec + "' is not a repository: expected ORG/NAME or ORG/NAME:REVISION");
  io::hub::PullOptions o;
  o.ref = *ref;
  o.include = c.include;
  o.exclude = c.exclude;
  o.dir = c.dir;
  o.cache = c.dir.empty() ? io::hub::cache_dir() : fs::path();
  o.endpoint = c.endpoint.empty() ? io::hub::default_endpoint() : c.endpoint;
  while (o.endpoint.size() > 1 && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.token = c.token_file.empty() ? io::hub::default_token() : io::read_text_file(c.token_file);
  while (!o.token.empty() && (o.token.back() == '\n' || o.token.back() == '\r' || o.token.back() == ' ')) o.token.pop_back();
  if (!c.token_file.empty() && o.token.empty()) fail_input(c.token_file + ": the token file is empty");
  o.jobs = c.jobs;
  o.retries = c.retries;

  // Decided before downloading, so a lock that cannot be written does not waste the download.
  std::string lock_path;
  if (!c.no_lock) {
    lock_path = !c.lock_path.empty() ? c.lock_path : c.dir.empty() ? "csq.lock" : (fs::path(c.dir) / "csq.lock").string();
    std::error_code ec;
    if (c.lock_path.empty() && fs::exists(lock_path, ec)) {
      const io::ModelLock existing = io::read_lock(lock_path);
      if (existing.repo != o.ref.repo)
        fail_usage(lock_path + " is the lock of " + existing.repo + "; pass --lock FILE (or --no-lock) to pull " +
                   o.ref.repo);
    }
  }

  PullDisplay display;
  std::fprintf(stderr, "pull %s:%s from %s into %s\n", o.ref.repo.c_str(), o.ref.revision.c_str(), o.endpoint.c_str(),
               c.dir.empty() ? o.cache.string().c_str() : c.dir.c_str());
  io::hub::PullCallbacks callbacks;
  callbacks.on_event = [&](const io::hub::PullEvent& e) { display.event(e); };
  callbacks.on_progress = [&](const io::hub::PullProgress& p) { display.progress(p); };
  io::hub::PullResult result;
  try {
    result = io::hub::pull(o, callbacks);
  } catch (...) {
    display.finish();
    throw;
  }
  display.finish();
  uint64_t total = 0;
  for (const auto& f : result.lock.files) total += f.size;
  std::fprintf(stderr, "pulled %s at %s: %zu files, %s (%s downloaded) in %.1f s\n", o.ref.repo.c_str(),
               result.lock.commit.c_str(), result.lock.files.size(), bytes_text(total).c_str(),
               bytes_text(result.downloaded_bytes).c_str(), display.elapsed());
  if (!lock_path.empty()) {
    io::write_lock(result.lock, lock_path);
    std::fprintf(stderr, "wrote %s\n", lock_path.c_str());
  }
  if (!c.json) {
    std::printf("%s\n", result.model_dir.string().c_str());
    return;
  }
  nlohmann::ordered_json j;
  j["repo"] = result.lock.repo;
  j["revision"] = result.lock.revision;
  j["commit"] = result.lock.commit;
  j["path"] = result.model_dir.string();
  j["lock"] = lock_path.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(lock_path);
  j["downloaded_bytes"] = result.downloaded_bytes;
  j["files"] = nlohmann::ordered_json::array();
  for (const auto& f : result.lock.files) j["files"].push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  std::printf("%s\n", j.dump().c_str());
}

struct VerifyOptions {
  std::string lock_path;
  std::string target;
  bool json = false;
};

void run_verify(const VerifyOptions& o) {
  const io::ModelLock lock = io::read_lock(o.lock_path);
  // Without a directory, the lock's own commit in the cache.
  const std::string dir = o.target.empty()
                              ? io::hub::resolve_model_path(lock.repo + ":" + lock.commit)
                              : io::hub::resolve_model_path(o.target);
  const fs::path model_dir = fs::is_directory(dir) ? fs::path(dir) : fs::path(dir).parent_path();
  const io::LockCheck check = io::check_directory(lock, model_dir, o.lock_path, [&](const io::FileCheck& f) {
    if (!o.json)
      std::printf("%-16s %s%s\n", io::file_status_name(f.status), f.path.c_str(),
                  f.detail.empty() ? "" : ("  (" + f.detail + ")").c_str());
  });
  if (o.json) {
    nlohmann::ordered_json j;
    j["lock"] = o.lock_path;
    j["repo"] = lock.repo;
    j["commit"] = lock.commit;
    j["path"] = model_dir.string();
    j["ok"] = check.ok();
    j["files"] = nlohmann::ordered_json::array();
    for (const auto& f : check.files) {
      nlohmann::ordered_json entry{{"path", f.path}, {"status", io::file_status_name(f.status)}};
      if (!f.detail.empty()) entry["detail"] = f.detail;
      j["files"].push_back(entry);
    }
    std::printf("%s\n", j.dump().c_str());
  }
  if (!check.ok())
    fail_input(model_dir.string() + " does not match " + o.lock_path + " (" + lock.repo + " at " + lock.commit + "):" +
               check.summary());
  if (!o.json)
    std::printf("%s matches %s: %zu files of %s at %s\n", model_dir.string().c_str(), o.lock_path.c_str(),
                lock.files.size(), lock.repo.c_str(), lock.commit.c_str());
}

const RegisterCommand reg_pull([](CLI::App& root) {
  auto c = std::make_shared<PullCommandOptions>();
  CLI::App* cmd = root.add_subcommand(
      "pull", "Download a model from the Hugging Face Hub into its cache (or --dir), verify it and write csq.lock");
  cmd->add_option("repo", c->spec, "ORG/NAME or ORG/NAME:REVISION (branch, tag or commit; default main)")->required();
  cmd->add_option("--include", c->include, "Only files matching this glob (repeatable), e.g. '*.json' '*Q4_K_M.gguf'");
  cmd->add_option("--exclude", c->exclude, "Skip files matching this glob (repeatable)");
  cmd->add_option("--dir", c->dir, "Plain files in this directory instead of the Hugging Face cache");
  cmd->add_option("--endpoint", c->endpoint, "Hub or mirror URL (default: $HF_ENDPOINT, else https://huggingface.co)");
  cmd->add_option("--token-file", c->token_file,
                  "File holding the access token for gated or private repositories (default: $HF_TOKEN, else "
                  "$HF_HOME/token); never printed");
  cmd->add_option("--lock", c->lock_path, "Where to write the lock (default: csq.lock here, or DIR/csq.lock with --dir)");
  cmd->add_flag("--no-lock", c->no_lock, "Do not write a lock file");
  cmd->add_option("--jobs,-j", c->jobs, "Files downloaded at once")->capture_default_str();
  cmd->add_option("--retries", c->retries, "Further attempts per file after a dropped connection (resumed where it stopped)")
      ->capture_default_str();
  cmd->add_flag("--json", c->json, "Print the result (path, commit, files with sizes and sha256) as JSON");
  cmd->callback([c] { run_pull(*c); });
});

const RegisterCommand reg_verify([](CLI::App& root) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* cmd = root.add_subcommand("verify", "Check a model directory against a csq.lock, offline");
  cmd->add_option("--lock", o->lock_path, "The lock file written by csq pull")->required();
  cmd->add_option("dir", o->target,
                  "Directory to check, or ORG/NAME[:REVISION] in the cache (default: the lock's commit in the cache)");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  cmd->callback([o] { run_verify(*o); });
});

}  // namespace
}  // namespace csq::app
