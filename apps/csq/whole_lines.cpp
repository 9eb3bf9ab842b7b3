#include "whole_lines.h"

#include <signal.h>

#include <csignal>
#include <mutex>

namespace csq::app {
namespace {

volatile std::sig_atomic_t writing = 0;
volatile std::sig_atomic_t deferred = 0;

void end_with(int signo) {
  std::signal(signo, SIG_DFL);
  std::raise(signo);
}

void on_stop_signal(int signo) {
  if (writing && !deferred) deferred = signo;
  else end_with(signo);
}

}  // namespace

WholeLineGuard::WholeLineGuard() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    for (int signo : {SIGINT, SIGTERM}) {
      struct sigaction current {};
      if (sigaction(signo, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) continue;
      struct sigaction action {};
      action.sa_handler = on_stop_signal;
      action.sa_flags = SA_RESTART;  // the write goes on; the signal acts after it
      sigemptyset(&action.sa_mask);
      sigaction(signo, &action, nullptr);
    }
  });
  writing = 1;
}

WholeLineGuard::~WholeLineGuard() {
  writing = 0;
  if (deferred) end_with(deferred);
}

}  // namespace csq::app
