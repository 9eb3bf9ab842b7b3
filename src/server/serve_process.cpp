#include "server/serve_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <regex>

#include "base/error.h"
#include "base/process.h"

extern char** environ;

namespace csq::server {
namespace {

constexpr size_t kMaxLog = 1 << 20;  // a long run logs a line per request; keep the newest MiB

}  // namespace

ServeProcess::ServeProcess(const std::string& binary, const std::vector<std::string>& args) {
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) fail_runtime(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  // The child starts with no blocked signals whatever the caller's thread had blocked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> storage = {binary, "serve", "--port", "0"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(err_pipe[1]);
  if (rc != 0) {
    close(err_pipe[0]);
    fail_runtime("cannot start " + binary + ": " + std::strerror(rc));
  }
  reader_ = std::thread([this, fd = err_pipe[0]] { read_log(fd); });
}

ServeProcess::~ServeProcess() {
  if (!status_) {
    signal(SIGKILL);
    wait_exit(std::chrono::hours(1));
  }
  reader_.join();  // the pipe closes with the process
}

void ServeProcess::read_log(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(mutex_);
    if (n <= 0) {
      log_closed_ = true;
      cv_.notify_all();
      break;
    }
    log_.append(buf, size_t(n));
    if (log_.size() > kMaxLog) log_.erase(0, log_.size() - kMaxLog);
    cv_.notify_all();
  }
  close(fd);
}

std::string ServeProcess::wait_listening(std::chrono::milliseconds timeout) {
  static const std::regex address(R"(on (http://[^/\s]+)/v1)");
  std::unique_lock<std::mutex> lock(mutex_);
  std::smatch match;
  const bool found = cv_.wait_for(lock, timeout, [&] { return std::regex_search(log_, match, address) || log_closed_; });
  if (found && !match.empty()) return match[1].str();
  fail_runtime(std::string("csq serve ") + (log_closed_ ? "exited" : "did not start listening in time") +
               "; its log:\n" + log_);
}

void ServeProcess::signal(int signo) const {
  if (!status_) kill(pid_, signo);
}

std::optional<int> ServeProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      break;
    }
    if (r < 0 && errno != EINTR) fail_runtime(std::string("waitpid: ") + std::strerror(errno));
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int64_t ServeProcess::peak_rss_kib() const { return peak_resident_kib(pid_); }

std::string ServeProcess::log() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return log_;
}

}  // namespace csq::server
