// redis-server for the worker tests: on a loopback port, AOF persistence with fsync on every
// write (a restart keeps every acknowledged change), in the test's own directory.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "child_process.h"
#include "test_paths.h"

namespace csq::test {

// An empty directory `temp_dir()/NAME-PID` for one test (what an earlier run left is removed).
inline std::filesystem::path fresh_test_dir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(temp_dir()) / (name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

class RedisServer {
 public:
  RedisServer(const std::filesystem::path& dir, int port, const std::string& password) : dir_(dir), port_(port), password_(password) {}
  void start() {
    server_ = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                 "--requirepass", password_, "--dir", dir_.string(), "--appendonly", "yes",
                                 "--appendfsync", "always", "--save", "", "--daemonize", "no"},
        dir_ / "redis.out", dir_ / "redis.err");
    ASSERT_TRUE(server_->started());
  }
  void stop() {
    server_->signal(SIGTERM);
    ASSERT_TRUE(server_->wait(std::chrono::seconds(30)));
  }
  int port() const { return port_; }
  std::string url(const std::string& password) const {
    return "redis://:" + password + "@127.0.0.1:" + std::to_string(port_);
  }

 private:
  std::filesystem::path dir_;
  int port_;
  std::string password_;
  std::unique_ptr<Child> server_;
};

}  // namespace csq::test
