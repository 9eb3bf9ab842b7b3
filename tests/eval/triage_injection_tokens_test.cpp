// Acceptance for issue 17: on the real Qwen3 tokenizer (../shared/fixtures/hf/qwen3-tiny-vocab),
// no control or added token id lies inside an untrusted span, for every payload of the
// log-borne injection set (in every carrier field of real alerts, under every spotlight mode)
// and for every CyberSecEval prompt-injection case.
#include <gtest/gtest.h>

#include <filesystem>

#include "eval/alerts.h"
#include "eval/injection.h"
#include "runtime/engine.h"
#include "tasks/triage.h"
#include "test_paths.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace csq::eval {
namespace {

namespace fs = std::filesystem;

Engine tokenizer_engine() {
  const std::string model = test::fixture("hf/qwen3-tiny-vocab");
  Engine engine{nullptr, load_tokenizer(model), std::nullopt, {}};
  engine.chat_template = ChatTemplate::from_model(model);
  return engine;
}

ChatRenderOptions render_options() {
  ChatRenderOptions render;
  render.extra = {{"enable_thinking", false}};
  return render;
}

// The ids of tokens [first, last) that are not plain vocabulary entries, as "id (text)".
std::string non_normal(const Engine& engine, const ChatPrompt& encoded, size_t first, size_t last) {
  std::string out;
  for (size_t t = first; t < last; ++t)
    if (engine.tokenizer.kind(encoded.ids[t]) != TokenKind::Normal)
      out += std::to_string(encoded.ids[t]) + " (" + engine.tokenizer.token_string(encoded.ids[t]) + ") ";
  return out;
}

TEST(TriageInjectionTokens, NoControlTokenInsideAnyUntrustedSpanOfTheLogBorneSet) {
  CSQ_REQUIRE_FIXTURES();
  if (!fs::exists(test::data_dir() + "/alerts/labels.jsonl")) GTEST_SKIP() << "ait-aecid alerts not found";
  const Engine engine = tokenizer_engine();
  const LabelledSet set = load_ait_aecid(test::data_dir() + "/alerts");
  const auto cases = build_log_injection_cases(set, 2);
  size_t prompts = 0, spans = 0, control_strings_seen = 0;
  for (const auto spotlight : {tasks::Spotlight::None, tasks::Spotlight::Delimiters, tasks::Spotlight::Datamark}) {
    tasks::TriageOptions options;
    options.spotlight = spotlight;
    for (const auto& c : cases) {
      if (!c.payload) continue;
      tasks::TriageInput input;
      input.id = "case " + std::to_string(c.index);
      input.record = c.alert;
      const tasks::TriagePrompt prompt = tasks::build_triage_prompt(input, "", options);
      const ChatPrompt encoded = engine.encode_messages(prompt.messages, render_options());
      for (const auto& s : tasks::locate_triage_spans(encoded, prompt)) {
        const std::string bad = non_normal(engine, encoded, s.first_token, s.last_token);
        EXPECT_TRUE(bad.empty()) << c.payload->id << " in " << carrier_name(c.carrier) << " ("
                                 << tasks::spotlight_name(spotlight) << "), field " << s.span.field << ": " << bad;
        ++spans;
      }
      // Not vacuous: unmarked, the forged turns reach the prompt as the very strings that
      // would be control tokens if parsed.
      if (spotlight == tasks::Spotlight::None && c.payload->family == "forged_chat" &&
          encoded.text.find("<|im_end|>") != std::string::npos &&
          encoded.text.find("<|im_end|>") < encoded.text.rfind("<|im_start|>assistant"))
        ++control_strings_seen;
      ++prompts;
    }
  }
  EXPECT_EQ(prompts, 3 * (cases.size() - cases.size() / (1 + log_injection_payloads().size())));
  EXPECT_GT(spans, prompts);
  EXPECT_GT(control_strings_seen, 0u);
}

TEST(TriageInjectionTokens, NoControlTokenInsideAnyCybersecevalCase) {
  CSQ_REQUIRE_FIXTURES();
  if (!fs::exists(test::data_dir() + "/injection/judge_rules.jsonl")) GTEST_SKIP() << "injection data not found";
  const Engine engine = tokenizer_engine();
  const auto cases = load_cyberseceval(test::data_dir() + "/injection");
  ASSERT_EQ(cases.size(), 251u);
  for (const auto& c : cases) {
    const nlohmann::ordered_json messages = nlohmann::ordered_json::array(
        {{{"role", "system"}, {"content", c.system_prompt}}, {{"role", "user"}, {"content", c.user_input}}});
    const ChatPrompt encoded = engine.encode_messages(messages, render_options());
    ASSERT_EQ(encoded.content.size(), 2u) << "case " << c.index;
    for (const auto& span : encoded.content) {
      const auto [first, last] = encoded.tokens_of(span.range);
      EXPECT_EQ(non_normal(engine, encoded, first, last), "") << "case " << c.index << ", message " << span.message;
    }
  }
}

}  // namespace
}  // namespace csq::eval
