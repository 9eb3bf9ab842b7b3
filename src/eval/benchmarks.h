// The evaluation benchmarks, read from a data directory laid out as ../shared/data:
// cti-bench/*.tsv (+ responses/ for CTI-TAA's gold) and cybermetric/CyberMetric-N-v1.json.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tasks/answers.h"

namespace csq::eval {

struct Item {
  size_t index = 0;                  // 0-based row of the benchmark
  std::string source;                // URL of the item where the dataset gives one
  std::string question;              // the item's own text: question, CVE description, report
  std::vector<std::string> options;  // MCQ choices A..D
  std::string platform;              // CTI-ATE: Enterprise or Mobile
  std::string prompt;                // the dataset's instruction prompt (built for CyberMetric)
  std::string gold;                  // normalized: "B", "CWE-79", CVSS vector, "T1059,T1071", actor
};

struct Benchmark {
  std::string name;
  tasks::AnswerKind kind = tasks::AnswerKind::Mcq;
  std::string path;  // the file the items came from
  std::vector<Item> items;
};

// cti-mcq, cti-rcm, cti-rcm-2021, cti-vsp, cti-ate, cti-taa, cybermetric-80, -500, -2000.
const std::vector<std::string>& benchmark_names();
// Throws csq::Error: Usage for an unknown name, BadInput (naming file and line) for bad data.
Benchmark load_benchmark(std::string_view name, const std::string& data_dir);

// A tab-separated file with a header row. The CTI-Bench files use no quoting (a field may
// begin with a literal '"'), so fields are split on tabs only.
struct TsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // rows[r] is on line r + 2 of the file
  size_t column(std::string_view name) const;  // throws naming the file and the column
};
TsvTable read_tsv(const std::string& path);

}  // namespace csq::eval
