// Where the tests find the shared fixtures and the csq binary, and small helpers to run it.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace csq::test {

std::string fixtures_dir();           // ../shared/fixtures (CSQ_FIXTURES at configure time)
std::string data_dir();               // ../shared/data
std::string fixture(const std::string& relative);  // fixtures_dir() + "/" + relative
bool have_fixtures();
std::string temp_dir();               // a per-test-binary scratch directory, created on demand
std::string csq_binary();

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the csq binary with `args` (no shell interpretation), optional stdin text.
RunResult run_csq(const std::vector<std::string>& args, const std::string& stdin_text = "");

}  // namespace csq::test

// Skips the current test with a clear message when the shared fixtures are not present.
#define CSQ_REQUIRE_FIXTURES()                                                              \
  do {                                                                                     \
    if (!::csq::test::have_fixtures())                                                     \
      GTEST_SKIP() << "shared fixtures not found at " << ::csq::test::fixtures_dir()        \
                   << " (configure with -DCSQ_FIXTURES=...)";                              \
  } while (0)
