#include "eval/benchmarks.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "eval_data.h"

namespace csq::eval {
namespace {

TEST(EvalBenchmarks, LoadsEveryBenchmark) {
  CSQ_REQUIRE_EVAL_DATA();
  const std::pair<const char*, size_t> expected[] = {
      {"cti-mcq", 2500}, {"cti-rcm", 1000},       {"cti-rcm-2021", 1000},   {"cti-vsp", 1000},          {"cti-ate", 60},
      {"cti-taa", 50},   {"cybermetric-80", 80}, {"cybermetric-500", 500}, {"cybermetric-2000", 2000},
  };
  ASSERT_EQ(benchmark_names().size(), std::size(expected));
  for (const auto& [name, count] : expected) {
    const Benchmark b = load_benchmark(name, test::data_dir());
    EXPECT_EQ(b.items.size(), count) << name;
    for (const auto& item : b.items) {
      ASSERT_FALSE(item.gold.empty()) << name << " item " << item.index;
      ASSERT_FALSE(item.prompt.empty()) << name << " item " << item.index;
      ASSERT_FALSE(item.question.empty()) << name << " item " << item.index;
    }
  }
}

TEST(EvalBenchmarks, GoldIsNormalized) {
  CSQ_REQUIRE_EVAL_DATA();
  const Benchmark mcq = load_benchmark("cti-mcq", test::data_dir());
  const TsvTable raw = read_tsv(test::data_dir() + "/cti-bench/cti-mcq.tsv");
  size_t lower = 0;
  for (size_t r = 0; r < raw.rows.size(); ++r) {
    const std::string& gt = raw.rows[r][raw.column("GT")];
    if (gt == "b") {
      ++lower;
      EXPECT_EQ(mcq.items[r].gold, "B");
    }
  }
  EXPECT_EQ(lower, 1u);  // the data README: one GT is lower case
  EXPECT_EQ(mcq.items[0].options.size(), 4u);

  const Benchmark ate = load_benchmark("cti-ate", test::data_dir());
  EXPECT_EQ(ate.items[0].gold, "T1070,T1071,T1083,T1573");  // "T1071, T1573, T1083, T1070", sorted
  EXPECT_EQ(ate.items[0].platform, "Enterprise");

  const Benchmark taa = load_benchmark("cti-taa", test::data_dir());
  EXPECT_EQ(taa.items[0].gold, "SideCopy");  // from responses/cti-taa-responses.tsv
  EXPECT_EQ(taa.items[1].gold, "MUSTANG PANDA");

  const Benchmark cm = load_benchmark("cybermetric-80", test::data_dir());
  EXPECT_EQ(cm.items[0].gold, "B");
  EXPECT_NE(cm.items[0].prompt.find("A) The RBG's output should have a length"), std::string::npos);
}

TEST(EvalBenchmarks, TsvFieldsAreNotQuoted) {
  CSQ_REQUIRE_EVAL_DATA();
  // Row 921 of cti-rcm-2021 begins with a literal quotation mark; a CSV-style reader would
  // swallow it.
  const Benchmark b = load_benchmark("cti-rcm-2021", test::data_dir());
  EXPECT_EQ(b.items[920].question.rfind("\"Clear History and Website Data\" did not clear", 0), 0u);
}

template <typename F>
std::string error_of(F f, ErrorCode* code = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "<no error>";
}

TEST(EvalBenchmarks, ErrorsNameFileAndLine) {
  const std::string path = test::write_temp("bad.tsv", "URL\tQuestion\tGT\nu\tq\tA\nu\tq\n");
  ErrorCode code{};
  const std::string msg = error_of([&] { read_tsv(path); }, &code);
  EXPECT_EQ(code, ErrorCode::BadInput);
  EXPECT_NE(msg.find(path + ":3: 2 tab-separated fields (expected 3"), std::string::npos) << msg;

  const TsvTable ok = read_tsv(test::write_temp("ok.tsv", "A\tB\r\n1\t2\r\n"));
  EXPECT_EQ(ok.rows.size(), 1u);
  EXPECT_EQ(ok.rows[0][1], "2");
  EXPECT_NE(error_of([&] { ok.column("GT"); }).find("no column 'GT'"), std::string::npos);

  EXPECT_NE(error_of([] { load_benchmark("cti-xyz", "/nonexistent"); }, &code).find("unknown benchmark 'cti-xyz'"),
            std::string::npos);
  EXPECT_EQ(code, ErrorCode::Usage);
  EXPECT_NE(error_of([] { load_benchmark("cti-mcq", "/nonexistent"); }, &code).find("does not exist"), std::string::npos);
  EXPECT_EQ(code, ErrorCode::BadInput);
}

TEST(EvalBenchmarks, BadGoldIsReported) {
  const std::string dir = test::temp_dir() + "/baddata";
  std::filesystem::create_directories(dir + "/cti-bench");
  std::ofstream(dir + "/cti-bench/cti-vsp.tsv") << "URL\tDescription\tPrompt\tGT\nu\td\tp\tCVSS:3.1/AV:N\n";
  const std::string msg = error_of([&] { load_benchmark("cti-vsp", dir); });
  EXPECT_NE(msg.find("cti-vsp.tsv:2: GT: CVSS vector: base metric AC is missing"), std::string::npos) << msg;
}

}  // namespace
}  // namespace csq::eval
