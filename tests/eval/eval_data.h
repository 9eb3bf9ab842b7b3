// Helpers for the evaluation tests that read ../shared/data (CSQ_DATA_DIR); they skip cleanly
// where the data is absent.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_paths.h"

namespace csq::test {

inline bool have_eval_data() { return std::filesystem::exists(data_dir() + "/cti-bench/cti-mcq.tsv"); }

inline std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace csq::test

#define CSQ_REQUIRE_EVAL_DATA()                                                                       \
  do {                                                                                                \
    if (!::csq::test::have_eval_data())                                                               \
      GTEST_SKIP() << "benchmark data not found at " << ::csq::test::data_dir() << " (configure with -DCSQ_DATA=...)"; \
  } while (0)
