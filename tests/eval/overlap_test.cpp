#include "eval/overlap.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "eval_data.h"

namespace csq::eval {
namespace {

TEST(EvalOverlap, WordsIgnoreCaseAndPunctuation) {
  EXPECT_EQ(overlap_words("Buffer-overflow in FOO_bar 2.0!"),
            (std::vector<std::string>{"buffer", "overflow", "in", "foo", "bar", "2", "0"}));
}

TEST(EvalOverlap, ExactAndNgram) {
  Benchmark b;
  b.name = "toy";
  const char* questions[] = {
      "a heap overflow in the png decoder lets remote attackers run code",  // verbatim in record 0
      "a heap overflow in the png decoder lets local users crash it now",   // shares the first 8-grams
      "completely unrelated text about kerberos tickets and ldap servers",  // absent
      "tiny item",                                                          // shorter than one 8-gram, present
  };
  for (size_t k = 0; k < std::size(questions); ++k) {
    Item it;
    it.index = k;
    it.question = questions[k];
    b.items.push_back(it);
  }
  const std::vector<std::string> train = {
      "Prompt: A heap-overflow in the PNG decoder lets remote attackers run code. Answer: CWE-787",
      "something with a tiny item inside",
  };
  const OverlapReport r = compute_overlap(train, b, 8, 0.5);
  EXPECT_EQ(r.exact, 2u);
  EXPECT_TRUE(r.per_item[0].exact);
  EXPECT_DOUBLE_EQ(r.per_item[0].fraction, 1.0);
  EXPECT_FALSE(r.per_item[1].exact);
  EXPECT_NEAR(r.per_item[1].fraction, 1.0 / 6.0, 1e-12);  // 13 words: 6 8-grams, the first one shared
  EXPECT_EQ(r.per_item[2].fraction, 0.0);
  EXPECT_TRUE(r.per_item[3].exact);
  EXPECT_EQ(r.any_ngram, 3u);
  EXPECT_EQ(r.above_threshold, 2u);
  EXPECT_EQ(r.to_json(false)["exact"], 2);
}

TEST(EvalOverlap, TrainingFormats) {
  const std::string path = test::write_temp(
      "train.jsonl",
      "{\"prompt\":\"p1\",\"response\":\"r1\"}\n{\"messages\":[{\"role\":\"user\",\"content\":\"u\"},"
      "{\"role\":\"assistant\",\"content\":\"a\"}]}\n{\"text\":\"t\"}\n");
  const auto texts = read_training_texts(path);
  ASSERT_EQ(texts.size(), 3u);
  EXPECT_EQ(texts[0], "p1\nr1");
  EXPECT_EQ(texts[1], "u\na\n");
  try {
    read_training_texts(test::write_temp("bad-train.jsonl", "{\"prompt\":\"x\"}\n{\"foo\":1}\n"));
    ADD_FAILURE() << "accepted a record without text";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad-train.jsonl:2: expected"), std::string::npos) << e.what();
  }
}

TEST(EvalOverlap, CybersecqwenTrainingSetContainsCtiRcm2021) {
  CSQ_REQUIRE_EVAL_DATA();
  const std::string train = test::data_dir() + "/cybersecqwen-train/rcm_2021_train.jsonl";
  if (!std::filesystem::exists(train)) GTEST_SKIP() << train << " not found";
  const auto texts = read_training_texts(train);
  EXPECT_EQ(texts.size(), 6776u);
  const OverlapReport r = compute_overlap(texts, load_benchmark("cti-rcm-2021", test::data_dir()));
  // The data README counts 999 of 1,000 verbatim; the thousandth is row 921, whose description
  // begins with a literal '"' that a CSV-quoting reader (pandas) strips, so it stops matching.
  // Read as the plain TSV it is, it is in the training file verbatim too.
  EXPECT_EQ(r.exact, 1000u);
  EXPECT_EQ(r.above_threshold, 1000u);
  // The 2023-24 CVEs of cti-rcm are a different set: little overlap beyond boilerplate phrases.
  const OverlapReport fresh = compute_overlap(texts, load_benchmark("cti-rcm", test::data_dir()));
  EXPECT_LT(fresh.exact, 10u);
}

}  // namespace
}  // namespace csq::eval
