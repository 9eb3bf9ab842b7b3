#include "eval/scoring.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "eval_data.h"

namespace csq::eval {
namespace {

Benchmark tiny(tasks::AnswerKind kind, std::vector<std::string> golds) {
  Benchmark b;
  b.name = "tiny";
  b.kind = kind;
  for (size_t k = 0; k < golds.size(); ++k) {
    Item it;
    it.index = k;
    it.gold = golds[k];
    it.prompt = "p" + std::to_string(k);
    b.items.push_back(it);
  }
  return b;
}

TEST(EvalScoring, StrictLenientAndTrials) {
  const Benchmark b = tiny(tasks::AnswerKind::Mcq, {"A", "B", "C", "D"});
  const Protocol& p = protocol_by_name("cybersecqwen");
  std::vector<Response> rs = {
      {0, 0, "Answer: A"}, {1, 0, "Answer: B"}, {2, 0, "no idea"}, {3, 0, "Answer: A"},  // 2 of 4, 3 parseable
      {0, 1, "Answer: A"}, {1, 1, "Answer: B"}, {2, 1, "Answer: C"}, {3, 1, "Answer: D"},  // 4 of 4
  };
  const ScoreResult r = score_responses(b, p, rs);
  ASSERT_EQ(r.trials.size(), 2u);
  EXPECT_EQ(r.trials[0].parseable, 3u);
  EXPECT_EQ(r.trials[0].correct, 2u);
  EXPECT_DOUBLE_EQ(r.trials[0].values.at("strict_accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(r.trials[0].values.at("lenient_accuracy"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.trials[0].values.at("parse_failure_rate"), 0.25);
  EXPECT_DOUBLE_EQ(r.summary.at("strict_accuracy").mean, 0.75);
  EXPECT_NEAR(r.summary.at("strict_accuracy").sd, std::sqrt(0.125), 1e-12);  // sample sd of {0.5, 1}
  EXPECT_EQ(r.headline, "strict_accuracy");
  EXPECT_EQ(score_responses(b, protocol_by_name("ctibench"), rs).headline, "lenient_accuracy");
  const auto j = summary_json(r);
  EXPECT_EQ(j["protocol"]["seeds"].size(), 5u);
  EXPECT_EQ(j["protocol"]["parser"], "cybersecqwen");
  EXPECT_DOUBLE_EQ(j["headline"]["mean"].get<double>(), 0.75);
}

TEST(EvalScoring, MeanSd) {
  EXPECT_DOUBLE_EQ(mean_sd({0.7}).sd, 0.0);
  const MeanSd m = mean_sd({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.sd, 1.2909944487358056, 1e-12);
}

TEST(EvalScoring, VspDeviation) {
  const Benchmark b = tiny(tasks::AnswerKind::Cvss, {"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                                     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"});
  const ScoreResult r = score_responses(b, protocol_by_name("ctibench"),
                                        {{0, 0, "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},  // 9.8 vs 9.8
                                         {1, 0, "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}});  // 9.8 vs 7.5
  EXPECT_TRUE(r.items[0].correct);
  EXPECT_FALSE(r.items[1].correct);
  EXPECT_NEAR(r.summary.at("mad").mean, 1.15, 1e-9);
  const ScoreResult missing = score_responses(b, protocol_by_name("ctibench"),
                                              {{0, 0, "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}, {1, 0, "Error"}});
  EXPECT_NEAR(missing.summary.at("mad").mean, 0.0, 1e-9);
  EXPECT_NEAR(missing.summary.at("mad_strict").mean, 5.0, 1e-9);
  EXPECT_EQ(missing.headline, "mad");
}

TEST(EvalScoring, AttackF1AndJaccard) {
  const Benchmark b = tiny(tasks::AnswerKind::Attack, {"T1059,T1071,T1105"});
  const ItemResult r = score_item(b, protocol_by_name("cybersecqwen"), 0, 0, "Answer: T1059.001, T1071, T1027");
  // predicted {T1027, T1059, T1071}, gold {T1059, T1071, T1105}: 2 shared
  EXPECT_NEAR(r.f1, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.jaccard, 0.5, 1e-12);
  EXPECT_FALSE(r.correct);
  EXPECT_TRUE(score_item(b, protocol_by_name("cybersecqwen"), 0, 0, "Answer: T1105, T1071.001, T1059").correct);
  const ItemResult none = score_item(b, protocol_by_name("cybersecqwen"), 0, 0, "I cannot tell");
  EXPECT_EQ(none.f1, 0.0);
  EXPECT_EQ(none.jaccard, 0.0);
}

TEST(EvalScoring, ActorNamesNormalized) {
  EXPECT_EQ(normalize_actor(" Mustang-Panda "), "mustangpanda");
  const Benchmark b = tiny(tasks::AnswerKind::Actor, {"MUSTANG PANDA"});
  EXPECT_TRUE(score_item(b, protocol_by_name("ctibench"), 0, 0, "Mustang Panda ").correct);
  EXPECT_TRUE(score_item(b, protocol_by_name("faith"), 0, 0, "Threat Actor: Mustang Panda").correct);
  EXPECT_FALSE(score_item(b, protocol_by_name("ctibench"), 0, 0, "APT41").correct);
}

std::string error_of(const std::string& jsonl, size_t items) {
  try {
    read_responses(test::write_temp("r.jsonl", jsonl), items);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadInput);
    return e.what();
  }
  return "<no error>";
}

TEST(EvalScoring, ResponsesFileErrors) {
  const auto ok = read_responses(test::write_temp("ok.jsonl", "{\"index\":1,\"response\":\"B\"}\n\n"
                                                              "{\"index\":1,\"response\":\"C\",\"trial\":2}\n"),
                                 3);
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[1].trial, 2);
  EXPECT_NE(error_of("{\"index\":0,\"response\":\"A\"}\n{oops\n", 3).find("r.jsonl:2: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"index\":5,\"response\":\"A\"}\n", 3).find("r.jsonl:1: index 5 is outside the benchmark (3 items)"),
            std::string::npos);
  EXPECT_NE(error_of("{\"index\":0,\"response\":\"A\"}\n{\"index\":0,\"response\":\"B\"}\n", 3)
                .find("r.jsonl:2: index 0 of trial 0 appears twice"),
            std::string::npos);
  EXPECT_NE(error_of("{\"index\":0}\n", 3).find("\"response\" must be a string"), std::string::npos);
  EXPECT_NE(error_of("{\"index\":-1,\"response\":\"A\"}\n", 3).find("non-negative"), std::string::npos);
}

// ---- Reproducing CTI-Bench's published figures from the published (already extracted) answers ----
//
// Published numbers, by source:
//  * CTI-MCQ accuracy, CTI-RCM accuracy and CTI-VSP mean absolute deviation for all five models:
//    the CTI-Bench paper (arXiv 2406.07599, NeurIPS 2024), results table, as reproduced on the
//    project page (github.com/xashru/cti-bench docs/index.html): MCQ 71.0 / 54.1 / 65.4 / 65.7 /
//    61.3, RCM 72.0 / 67.2 / 66.6 / 65.9 / 44.7, VSP 1.31 / 1.57 / 1.09 / 1.83 / 1.91
//    (ChatGPT-4 / ChatGPT-3.5 / Gemini-1.5 / LLAMA3-70B / LLAMA3-8B).
//  * CTI-RCM-2021, ChatGPT-4: 68.0, printed by the authors' evaluation/evaluation.ipynb.
//  * The other CTI-RCM-2021 columns have no published figure that we found; they are pinned to
//    what the official rules give (exact counts below), so a change in parsing shows up.
//  * The extra figures: MCQ LLAMA3-8B 0.6132 (1533/2500), RCM Gemini-1.5 0.615 strict
//    and 0.6663 lenient (615 correct of 923 valid; 77 answers are "Error").

// The table prints accuracies cut (not rounded) to one decimal of a percent — LLAMA3-70B's 1644 of
// 2500 on CTI-MCQ (65.76 %) appears as 65.7 — and MADs rounded to two decimals. Accuracies are
// therefore compared in whole per-mille from the exact counts.
struct Accuracy {
  const char* model;
  size_t published_per_mille;
};

struct Deviation {
  const char* model;
  double published;
};

size_t per_mille(const ScoreResult& r) { return r.trials[0].correct * 1000 / r.trials[0].parseable; }

std::vector<Response> column_responses(const TsvTable& t, const std::string& model) {
  const size_t col = t.column(model);
  std::vector<Response> rs;
  for (size_t r = 0; r < t.rows.size(); ++r) rs.push_back({r, 0, t.rows[r][col]});
  return rs;
}

ScoreResult rescore(const std::string& benchmark, const std::string& file, const std::string& model,
                    const std::string& protocol = "ctibench") {
  const Benchmark b = load_benchmark(benchmark, test::data_dir());
  const TsvTable t = read_tsv(test::data_dir() + "/cti-bench/responses/" + file);
  EXPECT_EQ(t.rows.size(), b.items.size());
  return score_responses(b, protocol_by_name(protocol), column_responses(t, model));
}

void expect_gold_aligned(const std::string& benchmark, const std::string& file) {
  const Benchmark b = load_benchmark(benchmark, test::data_dir());
  const TsvTable t = read_tsv(test::data_dir() + "/cti-bench/responses/" + file);
  ASSERT_EQ(t.rows.size(), b.items.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    std::string gt = t.rows[r][t.column("GT")];
    for (char& c : gt) c = char(std::toupper(static_cast<unsigned char>(c)));
    ASSERT_EQ(gt, b.items[r].gold) << file << " row " << r;
  }
}

TEST(EvalReproduce, ResponsesAlignWithBenchmarkGold) {
  CSQ_REQUIRE_EVAL_DATA();
  expect_gold_aligned("cti-mcq", "cti-mcq-responses.tsv");
  expect_gold_aligned("cti-rcm", "cti-rcm-responses.tsv");
  expect_gold_aligned("cti-rcm-2021", "cti-rcm-2021-responses.tsv");
  expect_gold_aligned("cti-vsp", "cti-vsp-responses.tsv");
}

TEST(EvalReproduce, CtiMcq) {
  CSQ_REQUIRE_EVAL_DATA();
  const Accuracy cols[] = {{"ChatGPT-4", 710}, {"ChatGPT-3.5", 541}, {"Gemini-1.5", 654}, {"LLAMA3-70B", 657},
                           {"LLAMA3-8B", 613}};
  for (const auto& c : cols) {
    const ScoreResult r = rescore("cti-mcq", "cti-mcq-responses.tsv", c.model);
    EXPECT_EQ(per_mille(r), c.published_per_mille) << c.model;
    EXPECT_EQ(r.trials[0].parseable, 2500u) << c.model;  // Gemini's four refusals ("X") stay in
  }
  EXPECT_EQ(rescore("cti-mcq", "cti-mcq-responses.tsv", "LLAMA3-8B").trials[0].correct, 1533u);  // 0.6132
}

TEST(EvalReproduce, CtiRcm) {
  CSQ_REQUIRE_EVAL_DATA();
  const Accuracy cols[] = {{"ChatGPT-4", 720}, {"ChatGPT-3.5", 672}, {"Gemini-1.5", 666}, {"LLAMA3-70B", 659},
                           {"LLAMA3-8B", 447}};
  for (const auto& c : cols) EXPECT_EQ(per_mille(rescore("cti-rcm", "cti-rcm-responses.tsv", c.model)), c.published_per_mille) << c.model;
  const ScoreResult gemini = rescore("cti-rcm", "cti-rcm-responses.tsv", "Gemini-1.5");
  EXPECT_EQ(gemini.trials[0].correct, 615u);
  EXPECT_EQ(gemini.trials[0].parseable, 923u);
  EXPECT_NEAR(gemini.summary.at("strict_accuracy").mean, 0.615, 1e-12);
  EXPECT_NEAR(gemini.summary.at("lenient_accuracy").mean, 0.6663, 5e-5);
  // The same extracted answers under the cybersecqwen protocol: strict accuracy is the default.
  const ScoreResult q = rescore("cti-rcm", "cti-rcm-responses.tsv", "Gemini-1.5", "cybersecqwen");
  EXPECT_EQ(q.headline, "strict_accuracy");
  EXPECT_NEAR(q.summary.at("strict_accuracy").mean, 0.615, 1e-12);
}

TEST(EvalReproduce, CtiRcm2021) {
  CSQ_REQUIRE_EVAL_DATA();
  struct Counts {
    const char* model;
    size_t correct, valid;
  };
  const Counts counts[] = {{"ChatGPT-4", 680, 1000},   // 68.0, as printed by evaluation.ipynb
                           {"ChatGPT-3.5", 627, 1000},
                           {"Gemini-1.5", 647, 995},   // five "Error" answers dropped
                           {"LLAMA3-70B", 607, 999},   // one empty answer dropped
                           {"LLAMA3-8B", 483, 1000}};
  for (const auto& c : counts) {
    const ScoreResult r = rescore("cti-rcm-2021", "cti-rcm-2021-responses.tsv", c.model);
    EXPECT_EQ(r.trials[0].correct, c.correct) << c.model;
    EXPECT_EQ(r.trials[0].parseable, c.valid) << c.model;
    EXPECT_NEAR(r.summary.at("lenient_accuracy").mean, double(c.correct) / double(c.valid), 1e-12) << c.model;
  }
}

TEST(EvalReproduce, CtiVspMeanAbsoluteDeviation) {
  CSQ_REQUIRE_EVAL_DATA();
  const Deviation cols[] = {{"ChatGPT-4", 1.31}, {"ChatGPT-3.5", 1.57}, {"Gemini-1.5", 1.09}, {"LLAMA3-70B", 1.83},
                            {"LLAMA3-8B", 1.91}};
  for (const auto& c : cols) {
    const ScoreResult r = rescore("cti-vsp", "cti-vsp-responses.tsv", c.model);
    EXPECT_EQ(r.headline, "mad");
    EXPECT_EQ(r.trials[0].parseable, 1000u) << c.model;
    EXPECT_NEAR(r.summary.at("mad").mean, c.published, 0.005) << c.model;
  }
  // evaluation.ipynb prints 1.3100000000000027 for ChatGPT-4.
  EXPECT_NEAR(rescore("cti-vsp", "cti-vsp-responses.tsv", "ChatGPT-4").summary.at("mad").mean, 1.31, 1e-9);
}

}  // namespace
}  // namespace csq::eval
