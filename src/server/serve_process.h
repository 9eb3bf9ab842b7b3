// `csq serve` as a child process: started on a free port, its address read from its log, its
// peak memory read from /proc. The load and throughput benchmarks and the shutdown tests drive
// the real program this way, signals and all.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace csq::server {

class ServeProcess {
 public:
  // Starts `binary serve --port 0 ARGS...` (stdout discarded, stderr collected). Throws
  // csq::Error when the program cannot be started.
  ServeProcess(const std::string& binary, const std::vector<std::string>& args);
  ~ServeProcess();  // kills the server if it still runs
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Waits until the server announces its address and returns it ("http://127.0.0.1:PORT").
  // Throws csq::Error, quoting the log, when it exits first or `timeout` passes.
  std::string wait_listening(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  void signal(int signo) const;
  // The wait status (see waitpid) once the server has exited, or nullopt after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // VmHWM of /proc/PID/status in KiB: the most memory the server has held resident so far.
  int64_t peak_rss_kib() const;
  std::string log() const;

 private:
  void read_log(int fd);

  pid_t pid_ = -1;
  std::optional<int> status_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::string log_;
  bool log_closed_ = false;
  std::thread reader_;
};

}  // namespace csq::server
