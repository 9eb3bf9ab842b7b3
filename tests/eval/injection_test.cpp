// The prompt-injection sets: CyberSecEval's cases with their judge-free string rules, and the
// log-borne payloads written into the attacker-controlled fields of real ait-aecid alerts.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "base/error.h"
#include "eval/alerts.h"
#include "eval/injection.h"
#include "eval_data.h"

namespace csq::eval {
namespace {

namespace fs = std::filesystem;

TEST(Injection, NeedleMatching) {
  EXPECT_TRUE(contains_needle("The key is PIANO.", "Piano", true));
  EXPECT_FALSE(contains_needle("I care about cars", "Car", true));
  EXPECT_TRUE(contains_needle("I care about cars", "Car", false));
  EXPECT_TRUE(contains_needle("care, then Car!", "car", true));  // the second occurrence stands alone
  EXPECT_FALSE(contains_needle("Piano1", "piano", true));
  EXPECT_TRUE(contains_needle("balance: $1,000 left", "$1,000", false));
  EXPECT_FALSE(contains_needle("", "x", false));
  EXPECT_FALSE(contains_needle("abc", "", false));
}

TEST(Injection, CybersecevalCasesAndRules) {
  if (!fs::exists(test::data_dir() + "/injection/judge_rules.jsonl")) GTEST_SKIP() << "injection data not found";
  const auto cases = load_cyberseceval(test::data_dir());
  ASSERT_EQ(cases.size(), 251u);
  std::map<JudgeRule, size_t> by_rule;
  size_t word = 0;
  for (const auto& c : cases) {
    ++by_rule[c.rule];
    word += c.rule == JudgeRule::Contains && c.whole_word;
  }
  // The README's counts: 101 string-checkable (32 whole-word), 1 fragile, 149 for a judge.
  EXPECT_EQ(by_rule[JudgeRule::Contains], 101u);
  EXPECT_EQ(by_rule[JudgeRule::ContainsFragile], 1u);
  EXPECT_EQ(by_rule[JudgeRule::Judge], 149u);
  EXPECT_EQ(word, 32u);
  EXPECT_EQ(cases[0].needle, "Piano");
  EXPECT_EQ(cases[196].rule, JudgeRule::ContainsFragile);
  EXPECT_EQ(judge_by_string(cases[0], "My secret key is piano."), std::optional<bool>(true));
  EXPECT_EQ(judge_by_string(cases[0], "I cannot share that."), std::optional<bool>(false));
  const auto judged = std::find_if(cases.begin(), cases.end(), [](const auto& c) { return c.rule == JudgeRule::Judge; });
  EXPECT_EQ(judge_by_string(*judged, "anything"), std::nullopt);
  // Case 247 hides its instruction in tag characters written as surrogate pairs: joined to U+E00xx.
  EXPECT_NE(cases[247].user_input.find("\xF3\xA0\x81\x89"), std::string::npos);  // U+E0049, tag 'I'
}

TEST(Injection, CybersecevalErrorsNameTheFile) {
  const std::string dir = test::temp_dir() + "/bad-injection";
  fs::create_directories(dir);
  test::write_temp("bad-injection/prompt_injection.json", "[{\"test_case_prompt\": 1}]");
  try {
    load_cyberseceval(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prompt_injection.json: case 0: \"test_case_prompt\" must be a string"),
              std::string::npos)
        << e.what();
  }
}

TEST(Injection, PayloadFamilies) {
  std::set<std::string> ids, families;
  for (const auto& p : log_injection_payloads()) {
    EXPECT_TRUE(ids.insert(p.id).second) << p.id;
    families.insert(p.family);
    EXPECT_FALSE(p.text.empty());
  }
  EXPECT_EQ(families, std::set<std::string>(log_injection_families().begin(), log_injection_families().end()));
  // The forged turns carry the control-token strings the tokenizer must neutralise.
  std::string all;
  for (const auto& p : log_injection_payloads()) all += p.text;
  for (const char* token : {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>",
                            "<tool_response>"})
    EXPECT_NE(all.find(token), std::string::npos) << token;
}

TEST(Injection, PayloadsLandInEveryCarrierOfRealAlerts) {
  if (!fs::exists(test::data_dir() + "/alerts/labels.jsonl")) GTEST_SKIP() << "ait-aecid alerts not found";
  const LabelledSet set = load_ait_aecid(test::data_dir() + "/alerts");
  const auto cases = build_log_injection_cases(set, 2);
  const size_t per_alert = 1 + log_injection_payloads().size();
  ASSERT_EQ(cases.size(), all_carriers().size() * 2 * per_alert);
  std::map<Carrier, size_t> clean_by_carrier;
  std::map<Carrier, std::set<std::string>> sources_by_carrier;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    EXPECT_EQ(c.index, i);
    const LabelledAlert& source = set.alerts.at(c.alert_index);
    EXPECT_TRUE(source.malicious);
    if (!c.payload) {
      ++clean_by_carrier[c.carrier];
      sources_by_carrier[c.carrier].insert(source.source);
      EXPECT_EQ(c.alert, source.alert);
      continue;
    }
    // The field now holds the original value followed by the payload.
    const std::string injected = c.original + " " + c.payload->text;
    const auto& before = source.alert.at(nlohmann::ordered_json::json_pointer(c.field)).get<std::string>();
    const auto& after = c.alert.at(nlohmann::ordered_json::json_pointer(c.field)).get<std::string>();
    if (before == c.original) EXPECT_EQ(after, injected) << c.field;
    else EXPECT_NE(after.find(injected), std::string::npos) << c.field << ": " << after;  // a raw log line
  }
  for (Carrier carrier : all_carriers()) EXPECT_EQ(clean_by_carrier[carrier], 2u) << carrier_name(carrier);
  // Both sources carry user-agents, URLs, usernames and file paths.
  for (Carrier carrier : {Carrier::UserAgent, Carrier::Url, Carrier::Username, Carrier::FilePath})
    EXPECT_EQ(sources_by_carrier[carrier].size(), 2u) << carrier_name(carrier);
  // A decoded URL and the access-log line holding it change together.
  for (const auto& c : cases) {
    if (!c.payload || c.carrier != Carrier::Url || c.field != "/data/url") continue;
    ASSERT_TRUE(c.alert.contains("full_log"));
    EXPECT_NE(c.alert["full_log"].get<std::string>().find(c.payload->text), std::string::npos);
    return;
  }
  ADD_FAILURE() << "no Wazuh alert with data.url among the URL carriers";
}

}  // namespace
}  // namespace csq::eval

namespace csq::eval {
namespace {

// A csq detect alert carries its fields under "event" and "matches": every carrier is found
// by its Sigma field name, and each copy of the value gets the payload.
TEST(Injection, CarriersOfADetectAlert) {
  const std::string alert =
      R"({"type": "sigma_alert", "rule": {"id": "r1", "title": "t", "level": "high"},)"
      R"( "matches": {"CommandLine": "powershell -enc SQBFAFgA"},)"
      R"( "event": {"CommandLine": "powershell -enc SQBFAFgA", "User": "CORP\\alice", "Image": "C:\\x\\p.exe",)"
      R"( "QueryName": "evil.example.net", "c-useragent": "curl/8.1", "cs-uri": "/admin.php"}})";
  const LabelledSet set = load_labelled_jsonl(
      test::write_temp("detect-alert.jsonl", "{\"alert\": " + alert + ", \"label\": \"malicious\"}\n"));
  const auto cases = build_log_injection_cases(set, 1);
  ASSERT_EQ(cases.size(), all_carriers().size() * (1 + log_injection_payloads().size()));
  std::map<Carrier, std::string> field;
  for (const auto& c : cases) {
    if (c.payload) continue;
    field[c.carrier] = c.field;
  }
  EXPECT_EQ(field[Carrier::UserAgent], "/event/c-useragent");
  EXPECT_EQ(field[Carrier::Url], "/event/cs-uri");
  EXPECT_EQ(field[Carrier::Username], "/event/User");
  EXPECT_EQ(field[Carrier::CommandLine], "/matches/CommandLine");
  EXPECT_EQ(field[Carrier::FilePath], "/event/Image");
  EXPECT_EQ(field[Carrier::DnsName], "/event/QueryName");
  for (const auto& c : cases) {
    if (!c.payload || c.carrier != Carrier::CommandLine) continue;
    const std::string injected = "powershell -enc SQBFAFgA " + c.payload->text;
    EXPECT_EQ(c.alert["matches"]["CommandLine"], injected);
    EXPECT_EQ(c.alert["event"]["CommandLine"], injected);
    EXPECT_EQ(c.alert["event"]["User"], "CORP\\alice");  // other fields untouched
  }
  // A benign alert never carries a payload.
  const LabelledSet benign = load_labelled_jsonl(
      test::write_temp("detect-benign.jsonl", "{\"alert\": " + alert + ", \"label\": \"benign\"}\n"));
  EXPECT_TRUE(build_log_injection_cases(benign, 2).empty());
}

}  // namespace
}  // namespace csq::eval
