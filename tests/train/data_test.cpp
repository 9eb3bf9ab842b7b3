// Training data: the chat template renders the text, the loss covers exactly the assistant
// turns, long examples are reported, packing keeps examples whole and apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "base/error.h"
#include "runtime/engine.h"
#include "test_paths.h"
#include "train/data.h"

namespace csq::train {
namespace {

using test::fixture;

std::string trained_text(const Engine& engine, const Example& e) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < e.labels.size(); ++i)
    if (e.labels[i] >= 0) ids.push_back(e.labels[i]);
  return engine.tokenizer.decode(ids);
}

TEST(TrainData, PromptResponseTrainsOnTheAnswerAndItsEndOfTurn) {
  CSQ_REQUIRE_FIXTURES();
  const Engine engine = load_engine(fixture("hf/qwen3-tiny-vocab"));
  const Example e = render_example(engine, R"({"prompt": "Map CVE-2021-1 to a CWE.", "response": "CWE-79"})", "t:1");
  // The trained text is what the template writes after the generation prompt (this Qwen3
  // hybrid template adds an empty think block to the final answer) through the end of turn.
  const std::string text = trained_text(engine, e);
  EXPECT_TRUE(text == "CWE-79<|im_end|>" || text == "<think>\n\n</think>\n\nCWE-79<|im_end|>") << text;
  // The untrained prefix is exactly the prompt inference feeds the model.
  const std::string prompt = engine.render(nlohmann::ordered_json::parse(R"([{"role":"user","content":"Map CVE-2021-1 to a CWE."}])"));
  const std::vector<int32_t> prompt_ids = engine.encode_chat(prompt);
  ASSERT_GT(e.tokens.size(), prompt_ids.size());
  EXPECT_TRUE(std::equal(prompt_ids.begin(), prompt_ids.end(), e.tokens.begin()));
  for (size_t i = 0; i < prompt_ids.size(); ++i) EXPECT_EQ(e.labels[i], -1);
  for (size_t i = prompt_ids.size(); i < e.labels.size(); ++i)
    if (e.labels[i] >= 0) {
      EXPECT_EQ(e.labels[i], e.tokens[i]);
    }
}

ChatRenderOptions whole_conversation() {
  ChatRenderOptions options;
  options.add_generation_prompt = false;
  return options;
}

TEST(TrainData, EveryAssistantTurnIsTrainedNothingElse) {
  CSQ_REQUIRE_FIXTURES();
  const Engine engine = load_engine(fixture("hf/qwen3-tiny-vocab"));
  const Example e = render_example(engine, R"({"messages": [
      {"role": "system", "content": "You triage alerts."},
      {"role": "user", "content": "alert one"}, {"role": "assistant", "content": "benign"},
      {"role": "user", "content": "alert two"}, {"role": "assistant", "content": "malicious"}]})", "t:1");
  const std::string text = trained_text(engine, e);
  EXPECT_EQ(text.substr(0, 16), "benign<|im_end|>");
  EXPECT_EQ(text.substr(text.size() - 19), "malicious<|im_end|>");
  EXPECT_EQ(text.find("user"), std::string::npos);
  EXPECT_EQ(text.find("alert"), std::string::npos);
  EXPECT_EQ(engine.tokenizer.decode(e.tokens), engine.render(nlohmann::ordered_json::parse(R"([
      {"role": "system", "content": "You triage alerts."},
      {"role": "user", "content": "alert one"}, {"role": "assistant", "content": "benign"},
      {"role": "user", "content": "alert two"}, {"role": "assistant", "content": "malicious"}])"), whole_conversation()));
}

TEST(TrainData, MalformedLinesNameTheLineAndTheField) {
  CSQ_REQUIRE_FIXTURES();
  const Engine engine = load_engine(fixture("hf/qwen3-tiny-vocab"));
  auto expect_error = [&](const std::string& line, const std::string& needle) {
    try {
      render_example(engine, line, "data.jsonl:7");
      ADD_FAILURE() << "accepted " << line;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
      EXPECT_NE(std::string(e.what()).find("data.jsonl:7"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("{\"prompt\": ", "not valid JSON");
  expect_error(R"({"prompt": "x"})", "\"prompt\", \"response\"");
  expect_error(R"({"prompt": 3, "response": "y"})", "\"prompt\" must be a string");
  expect_error(R"({"messages": []})", "non-empty array");
  expect_error(R"({"messages": [{"role": "user", "content": "x"}]})", "no assistant message");
  expect_error(R"({"messages": [{"role": "tool", "content": "x"}]})", "role 'tool'");
  expect_error(R"([1, 2])", "expected a JSON object");
}

TEST(TrainData, LongExamplesAreCutAndReported) {
  CSQ_REQUIRE_FIXTURES();
  const Engine engine = load_engine(fixture("hf/qwen3-tiny-vocab"));
  const std::string path = test::temp_dir() + "/long.jsonl";
  {
    std::ofstream out(path);
    out << R"({"prompt": "short", "response": "ok"})" << "\n\n";
    std::string long_answer;
    for (int i = 0; i < 200; ++i) long_answer += "word ";
    out << R"({"prompt": "long", "response": ")" << long_answer << "\"}\n";
  }
  DataReport report;
  const auto examples = load_examples(engine, path, 64, report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(report.lines, 3u);
  EXPECT_EQ(report.truncated, 1u);
  EXPECT_EQ(report.truncated_lines, std::vector<size_t>{3});
  EXPECT_EQ(examples[1].tokens.size(), 64u);
  EXPECT_EQ(examples[1].line, 3u);
  EXPECT_GT(report.truncated_tokens, 100);
  EXPECT_EQ(report.longest, size_t(64 + report.truncated_tokens));
  // An example whose answer lies wholly beyond the cut is dropped and reported; none left is an error.
  DataReport tiny;
  EXPECT_THROW(load_examples(engine, path, 8, tiny), Error);
  DataReport some;
  const auto kept = load_examples(engine, path, 12, some);
  EXPECT_EQ(kept.size() + some.dropped, 2u);
  EXPECT_EQ(some.dropped_lines.size(), some.dropped);
}

TEST(TrainData, ShuffleIsASeededPermutation) {
  const auto a = shuffled_order(1000, 42), b = shuffled_order(1000, 42), c = shuffled_order(1000, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<size_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);
}

TEST(TrainData, PackingKeepsExamplesWholeAndApart) {
  std::vector<Example> examples;
  for (int i = 0; i < 30; ++i) {
    Example e;
    for (int t = 0; t < 5 + (i * 7) % 23; ++t) {
      e.tokens.push_back(100 + i);
      e.labels.push_back(t > 2 ? 100 + i : -1);
    }
    examples.push_back(e);
  }
  const auto sequences = pack_sequences(examples, shuffled_order(examples.size(), 1), 40);
  std::set<size_t> seen;
  for (const auto& seq : sequences) {
    size_t tokens = 0;
    for (size_t i : seq) tokens += examples[i].tokens.size(), seen.insert(i);
    EXPECT_LE(tokens, 40u);
  }
  EXPECT_EQ(seen.size(), examples.size());
  const PackedBatch batch = make_batch(examples, sequences, 0, 2);
  for (int64_t t = 0; t < batch.size(); ++t) {
    const int64_t start = batch.segment_start[size_t(t)];
    EXPECT_EQ(batch.positions[size_t(t)], t - start);
    EXPECT_EQ(batch.tokens[size_t(start)], batch.tokens[size_t(t)]);  // same example throughout its segment
    // The target is the next token of the same example, never the first of the next one.
    if (batch.targets[size_t(t)] >= 0) {
      ASSERT_LT(t + 1, batch.size());
      EXPECT_EQ(batch.segment_start[size_t(t + 1)], start);
    }
  }
}

}  // namespace
}  // namespace csq::train
