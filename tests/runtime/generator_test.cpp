// The generation loop on the real-vocabulary fixture model: reproducibility, greedy equivalence
// with the engine, stop strings, end-of-generation ids and the context limit.
#include <gtest/gtest.h>

#include <fstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "runtime/engine.h"
#include "runtime/generator.h"
#include "test_paths.h"

namespace csq {
namespace {

class Generator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (test::have_fixtures()) engine_ = new Engine(load_engine(test::fixture("hf/qwen3-tiny-vocab")));
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override { CSQ_REQUIRE_FIXTURES(); }

  std::vector<int32_t> chat_prompt(const std::string& user) const {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", user}}});
    return engine_->encode_chat(engine_->render(messages));
  }
  GenerationResult run(GenerationRequest r, int64_t ctx = 512) const {
    ThreadPool pool(1);
    Session session(*engine_->model, ctx, pool);
    return generate(session, engine_->tokenizer, r);
  }
  static Engine* engine_;
};
Engine* Generator::engine_ = nullptr;

TEST_F(Generator, GreedyEqualsArgmaxContinuationOfTheRenderedPrompt) {
  GenerationRequest r;
  r.prompt = chat_prompt("Map CVE-2024-23848 to a CWE.");
  r.sampling.temperature = 0;
  r.max_tokens = 24;
  r.ignore_eos = true;
  const GenerationResult result = run(r);
  ASSERT_EQ(result.tokens.size(), 24u);

  ThreadPool pool(1);
  Session session(*engine_->model, 512, pool);
  std::vector<float> logits = session.feed(r.prompt);
  const int64_t vocab = engine_->model->config().vocab_size;
  for (size_t i = 0; i < result.tokens.size(); ++i) {
    const int32_t next = argmax(logits.data(), vocab);
    ASSERT_EQ(result.tokens[i], next) << "step " << i;
    logits = session.feed({next});
  }
}

TEST_F(Generator, SameSeedSameTextDifferentSeedDiffers) {
  GenerationRequest r;
  r.prompt = chat_prompt("Which ATT&CK technique covers credential dumping?");
  r.sampling.temperature = 1.0f;
  r.sampling.top_p = 0.95f;
  r.max_tokens = 32;
  r.ignore_eos = true;
  r.sampling.seed = 42;
  const GenerationResult a = run(r), b = run(r);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.content + a.reasoning, b.content + b.reasoning);
  r.sampling.seed = 43;
  EXPECT_NE(run(r).tokens, a.tokens);
}

TEST_F(Generator, StopStringSpanningTwoTokensIsHonouredAndNotEmitted) {
  GenerationRequest r;
  r.prompt = chat_prompt("hello");
  r.sampling.temperature = 0;
  r.max_tokens = 40;
  r.ignore_eos = true;
  r.split_reasoning = false;
  const GenerationResult free_run = run(r);
  // Build a stop string from the last character of one token and the first of the next.
  std::string full, stop;
  size_t cut = 0;
  for (size_t i = 0; i + 1 < free_run.tokens.size() && stop.empty(); ++i) {
    const std::string a = engine_->tokenizer.decode(std::vector<int32_t>{free_run.tokens[i]});
    const std::string b = engine_->tokenizer.decode(std::vector<int32_t>{free_run.tokens[i + 1]});
    full += a;
    auto ascii = [](const std::string& s) { return !s.empty() && static_cast<unsigned char>(s.back()) < 0x80; };
    if (i >= 2 && ascii(a) && !b.empty() && static_cast<unsigned char>(b[0]) < 0x80) {
      stop = a.substr(a.size() - 1) + b.substr(0, 1);
      cut = full.size() - 1;
    }
  }
  ASSERT_FALSE(stop.empty()) << "no token boundary with ASCII on both sides in: " << free_run.content;
  const std::string expected = free_run.content.substr(0, std::min(cut, free_run.content.find(stop)));
  r.stop = {stop};
  const GenerationResult stopped = run(r);
  EXPECT_EQ(stopped.finish, FinishReason::Stop);
  EXPECT_EQ(stopped.content, expected);
  EXPECT_EQ(stopped.content.find(stop), std::string::npos);
}

TEST_F(Generator, EndOfGenerationIdEndsTheAnswer) {
  GenerationRequest r;
  r.prompt = chat_prompt("hello");
  r.sampling.temperature = 0;
  r.max_tokens = 16;
  r.ignore_eos = true;
  const GenerationResult free_run = run(r);
  ASSERT_GE(free_run.tokens.size(), 6u);
  r.ignore_eos = false;
  r.eos_ids = {free_run.tokens[5]};
  const GenerationResult ended = run(r);
  EXPECT_EQ(ended.finish, FinishReason::Stop);
  ASSERT_LE(ended.tokens.size(), 6u);
  EXPECT_EQ(ended.tokens.back(), free_run.tokens[5]);
  // The end id's text is not part of the answer.
  std::vector<int32_t> before(ended.tokens.begin(), ended.tokens.end() - 1);
  EXPECT_EQ(ended.content + ended.reasoning, engine_->tokenizer.decode(before));
}

TEST_F(Generator, MaxTokensGivesFinishReasonLength) {
  GenerationRequest r;
  r.prompt = chat_prompt("hello");
  r.max_tokens = 5;
  r.ignore_eos = true;
  r.sampling.seed = 7;
  const GenerationResult result = run(r);
  EXPECT_EQ(result.tokens.size(), 5u);
  EXPECT_EQ(result.finish, FinishReason::Length);
}

TEST_F(Generator, OverLongPromptIsAnErrorNamingBothLengths) {
  GenerationRequest r;
  r.prompt = chat_prompt(std::string(200, 'x') + " a long alert line");
  const std::string prompt_len = std::to_string(r.prompt.size());
  try {
    run(r, /*ctx=*/16);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadInput);
    EXPECT_NE(std::string(e.what()).find(prompt_len), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("16"), std::string::npos) << e.what();
  }
}

// csq run and csq generate agree through the command line too.
TEST_F(Generator, CliRunIsReproducibleAndGreedyMatchesGenerate) {
  const std::string model = test::fixture("hf/qwen3-tiny-vocab");
  auto run_json = [&](const std::string& seed) {
    const auto r = test::run_csq({"run", "--model", model, "--prompt", "Explain CVE-2021-44228.", "--max-tokens", "20",
                                  "--ignore-eos", "--temperature", "1.5", "--seed", seed, "--json", "-t", "1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  };
  const auto a = run_json("5"), b = run_json("5"), c = run_json("6");
  EXPECT_EQ(a["content"], b["content"]);
  EXPECT_EQ(a["reasoning"], b["reasoning"]);
  EXPECT_NE(a["content"].get<std::string>() + a["reasoning"].get<std::string>(),
            c["content"].get<std::string>() + c["reasoning"].get<std::string>());
  EXPECT_EQ(a["usage"]["completion_tokens"], 20);
  EXPECT_EQ(a["finish_reason"], "length");

  const auto prompt = chat_prompt("Explain CVE-2021-44228.");
  std::string ids;
  for (size_t i = 0; i < prompt.size(); ++i) ids += (i ? "," : "") + std::to_string(prompt[i]);
  const auto g = test::run_csq({"generate", "--model", model, "--tokens", ids, "--max-tokens", "20", "--temperature",
                                "0", "--ignore-eos", "--print-ids"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  std::vector<int32_t> generated;
  std::stringstream ss(g.out);
  for (int32_t id; ss >> id;) generated.push_back(id);
  GenerationRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = 20;
  r.ignore_eos = true;
  EXPECT_EQ(run(r).tokens, generated);
  const auto greedy = test::run_csq({"run", "--model", model, "--prompt", "Explain CVE-2021-44228.", "--max-tokens",
                                     "20", "--ignore-eos", "--temperature", "0", "--json"});
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  const auto j = nlohmann::json::parse(greedy.out);
  const GenerationResult in_process = run(r);
  EXPECT_EQ(j["content"], in_process.content);
  EXPECT_EQ(j["reasoning"], in_process.reasoning);
}

// An empty --choice or --regex was taken as no constraint, and a trailing comma dropped an empty
// choice: the answer was then free text where the user asked for one of a list.
TEST(CliRun, EmptyConstraintsAreUsageErrors) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/qwen3-tiny-vocab");
  for (const auto& [option, value, expected] :
       {std::tuple{"--choice", "", "--choice: "}, std::tuple{"--regex", "", "--regex: "},
        std::tuple{"--choice", "benign,malicious,", "choice 3 is empty"}}) {
    const auto r = test::run_csq({"run", "--model", model, "--prompt", "x", "--max-tokens", "2", option, value});
    EXPECT_EQ(r.exit_code, 1) << option << " '" << value << "': " << r.out;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  }
}

// Chat commands are whole words: "/systematic ..." is a message for the model, not "/system"
// with the text "atic ..."; a bare /save asks for its file instead of going to the model; a
// failed /save names the file and why.
TEST(CliChat, CommandsAreWholeWordsAndSaveErrorsNameTheFile) {
  CSQ_REQUIRE_FIXTURES();
  const std::string saved = test::temp_dir() + "/chat-saved.json";
  const auto r = test::run_csq({"chat", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--max-tokens", "2"},
                               "/systematic review of CVE-2021-44228\n/save\n/save /nonexistent-dir/x.json\n/save " +
                                   saved + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("(system message set"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[2 tokens"), std::string::npos) << r.err;  // the one answer, to /systematic
  EXPECT_NE(r.err.find("(usage: /save FILE)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(could not write /nonexistent-dir/x.json: "), std::string::npos) << r.err;
  std::ifstream in(saved);
  const auto messages = nlohmann::json::parse(in);
  ASSERT_EQ(messages.size(), 2u);  // the user turn and the answer; no system message
  EXPECT_EQ(messages[0]["content"], "/systematic review of CVE-2021-44228");
}

// `--prompt ""` (an empty shell variable) was refused with "give exactly one of --prompt TEXT or
// --prompt-file F", which it had given; it is read like an empty --prompt-file.
TEST(CliRun, AnEmptyPromptIsGivenNotMissing) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/qwen3-tiny-vocab");
  auto r = test::run_csq({"run", "--model", model, "--prompt", "", "--max-tokens", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = test::run_csq({"complete", "--model", model, "--prompt", "", "--max-tokens", "1"});
  EXPECT_NE(r.err.find("the prompt is empty"), std::string::npos) << r.err;
  r = test::run_csq({"complete", "--model", model, "--prompt", "a", "--prompt-file", "-", "--max-tokens", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("give exactly one of --prompt TEXT or --prompt-file F"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace csq
