// A progress line on stderr, shared by the long-running commands: on a terminal it is redrawn in
// place at most every 250 ms; into a file or pipe it is a new line every 10 s (a log stays short).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace csq {

class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;

  ProgressLine() : tty_(isatty(2) != 0) {}

  // Whether a line is due now (the final one always is); if so, the next is due an interval later.
  bool due(bool final = false) {
    const auto now = Clock::now();
    if (!final && now - last_ < (tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000))) return false;
    last_ = now;
    return true;
  }

  // `text` as the line: over the previous one on a terminal; the final line ends it.
  void draw(const std::string& text, bool final = false) const {
    std::fprintf(stderr, "%s%s%s", tty_ ? "\r" : "", text.c_str(), tty_ ? (final ? "\033[K\n" : "\033[K") : "\n");
  }

  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  bool tty() const { return tty_; }

 private:
  bool tty_;
  Clock::time_point start_ = Clock::now(), last_{};
};

}  // namespace csq
