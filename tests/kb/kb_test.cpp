// The ATT&CK knowledge base (src/kb, `csq kb`): links against mitigates.jsonl read independently,
// errors on malformed data, the stemmer against Porter's published examples, and search ranking.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "kb/kb.h"
#include "kb/search.h"
#include "test_paths.h"

namespace csq::test {
namespace {

std::string attack_dir() { return data_dir() + "/attack"; }

#define CSQ_REQUIRE_ATTACK()                                                                   \
  do {                                                                                         \
    if (!std::filesystem::exists(attack_dir() + "/techniques.jsonl"))                          \
      GTEST_SKIP() << "ATT&CK data not found at " << attack_dir() << " (configure with -DCSQ_DATA=...)"; \
  } while (0)

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

const kb::KnowledgeBase& shared_kb() {
  static const auto kb = kb::KnowledgeBase::load(attack_dir());
  return *kb;
}

TEST(KbCli, EveryTechniqueListsExactlyTheMitigationsLinkedToIt) {
  CSQ_REQUIRE_ATTACK();
  std::map<std::string, std::map<std::string, std::string>> expected;  // technique -> mitigation -> how
  for (const auto& link : read_lines(attack_dir() + "/mitigates.jsonl"))
    expected[link["technique"]][link["mitigation"]] = link["description"];
  std::map<std::string, std::string> mitigation_names;
  for (const auto& m : read_lines(attack_dir() + "/mitigations.jsonl")) mitigation_names[m["id"]] = m["name"];
  std::vector<std::string> args = {"kb", "technique", "--json", "--kb", attack_dir()};
  const auto techniques = read_lines(attack_dir() + "/techniques.jsonl");
  for (const auto& t : techniques) args.push_back(t["id"]);
  ASSERT_EQ(techniques.size(), 691u);

  const RunResult r = run_csq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto answers = json_lines(r.out);
  ASSERT_EQ(answers.size(), techniques.size());
  size_t links = 0, with_mitigations = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    const std::string id = techniques[i]["id"];
    ASSERT_EQ(a["id"], id);
    EXPECT_EQ(a["name"], techniques[i]["name"]);
    EXPECT_EQ(a["description"], techniques[i]["description"]);
    EXPECT_EQ(a["platforms"], techniques[i]["platforms"]);
    ASSERT_EQ(a["tactics"].size(), techniques[i]["tactics"].size()) << id;
    for (size_t k = 0; k < a["tactics"].size(); ++k) EXPECT_EQ(a["tactics"][k]["shortname"], techniques[i]["tactics"][k]);
    std::map<std::string, std::string> got;
    for (const auto& m : a["mitigations"]) {
      EXPECT_TRUE(got.emplace(m["id"], m["how"]).second) << id << " lists " << m["id"] << " twice";
      EXPECT_EQ(m["name"], mitigation_names[m["id"]]);
    }
    EXPECT_EQ(got, expected[id]) << id;
    links += got.size();
    with_mitigations += !got.empty();
    EXPECT_NE(a["notice"].get<std::string>().find("The MITRE Corporation"), std::string::npos);
  }
  // The counts the data's README gives.
  EXPECT_EQ(links, 1445u);
  EXPECT_EQ(with_mitigations, 582u);
}

TEST(KbCli, TextOutputShowsTheTechniqueItsMitigationsAndTheNotice) {
  CSQ_REQUIRE_ATTACK();
  const RunResult r = run_csq({"kb", "technique", "t1059.001", "--kb", attack_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("T1059.001 PowerShell (sub-technique of T1059 Command and Scripting Interpreter)\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("Tactics: Execution (TA0002)"), std::string::npos);
  EXPECT_NE(r.out.find("Detection strategy DET0455"), std::string::npos);
  EXPECT_NE(r.out.find("  M1045 Code Signing: "), std::string::npos);
  EXPECT_EQ(r.out.find("(Citation:"), std::string::npos) << "citation markers are for the JSON only";
  EXPECT_NE(r.out.find("\xC2\xA9 2025 The MITRE Corporation. This work is reproduced and distributed with the permission "
                       "of The MITRE Corporation."),
            std::string::npos);

  const RunResult m = run_csq({"kb", "mitigation", "M1038", "--json", "--kb", attack_dir()});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  const auto j = nlohmann::json::parse(m.out);
  EXPECT_EQ(j["name"], "Execution Prevention");
  EXPECT_EQ(j["techniques"].size(), 80u);  // README: M1038 has 80 links

  const RunResult unknown = run_csq({"kb", "technique", "T1059.001", "T9999", "--kb", attack_dir()});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("technique 'T9999' is not in the knowledge base"), std::string::npos) << unknown.err;
  EXPECT_TRUE(unknown.out.empty()) << "nothing is printed when an id is unknown";
}

TEST(KbCli, TheDirectoryComesFromKbThenCsqKbAndIsCheckedToExist) {
  CSQ_REQUIRE_ATTACK();
  const RunResult missing = run_csq({"kb", "mitigation", "M1038", "--kb", "/nonexistent/attack"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no ATT&CK knowledge base at '/nonexistent/attack' (from --kb)"), std::string::npos) << missing.err;
  ::setenv("CSQ_KB", "/nonexistent/env-attack", 1);
  const RunResult env = run_csq({"kb", "mitigation", "M1038"});
  ::setenv("CSQ_KB", attack_dir().c_str(), 1);
  const RunResult ok = run_csq({"kb", "mitigation", "M1038"});
  ::unsetenv("CSQ_KB");
  EXPECT_EQ(env.exit_code, 1);
  EXPECT_NE(env.err.find("(from $CSQ_KB)"), std::string::npos) << env.err;
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// A small hand-written knowledge base, one file spoiled at a time.
class KbMalformed : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir() + "/kb-malformed-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    write("tactics.jsonl", R"({"id":"TA0002","name":"Execution","shortname":"execution"})" "\n");
    write("techniques.jsonl",
          R"({"id":"T1059","name":"Command and Scripting Interpreter","tactics":["execution"],"platforms":["Linux"],"description":"Shells.","detection":null,"is_subtechnique":false,"url":""})" "\n"
          R"({"id":"T1059.001","name":"PowerShell","tactics":["execution"],"platforms":["Windows"],"description":"PowerShell.","detection":null,"is_subtechnique":true,"url":""})" "\n");
    write("mitigations.jsonl", R"({"id":"M1038","name":"Execution Prevention","description":"Block.","url":""})" "\n");
    write("mitigates.jsonl", R"({"mitigation":"M1038","technique":"T1059.001","description":"Allow-list scripts."})" "\n");
  }
  void write(const std::string& file, const std::string& text) { std::ofstream(dir_ + "/" + file) << text; }
  std::string load_error() {
    try {
      kb::KnowledgeBase::load(dir_);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
      return e.what();
    }
    return "(loaded without an error)";
  }
  std::string dir_;
};

TEST_F(KbMalformed, TheHandWrittenBaseLoads) {
  const auto kb = kb::KnowledgeBase::load(dir_);
  ASSERT_NE(kb->technique("T1059.001"), nullptr);
  EXPECT_TRUE(kb->mitigates("M1038", "T1059.001"));
  EXPECT_FALSE(kb->mitigates("M1038", "T1059"));
  EXPECT_EQ(kb->technique("T1059.001")->mitigations.size(), 1u);
  EXPECT_EQ(kb->technique("T1059.001")->detection_strategy, nullptr);  // no detects.jsonl: fine
}

TEST_F(KbMalformed, ErrorsNameTheFileTheLineAndTheField) {
  write("techniques.jsonl",
        R"({"id":"T1059","name":"Command and Scripting Interpreter","tactics":["execution"],"platforms":["Linux"],"description":"x","detection":null,"is_subtechnique":false,"url":""})" "\n"
        "\n"
        R"({"id":"T1059.001","name":7,"tactics":["execution"],"platforms":["Windows"],"description":"x","detection":null,"is_subtechnique":true,"url":""})" "\n");
  EXPECT_NE(load_error().find("techniques.jsonl:3: field 'name' must be a string"), std::string::npos) << load_error();
  write("techniques.jsonl", R"({"id":"T59","name":"x","tactics":[],"platforms":[],"description":"x","detection":null,"is_subtechnique":false,"url":""})" "\n");
  EXPECT_NE(load_error().find("techniques.jsonl:1: field 'id' is 'T59', expected T followed by 4 digits"), std::string::npos) << load_error();
  write("techniques.jsonl", R"({"id":"T1059","name":"x","tactics":["nope"],"platforms":[],"description":"x","detection":null,"is_subtechnique":false,"url":""})" "\n");
  EXPECT_NE(load_error().find("techniques.jsonl:1: field 'tactics' names 'nope'"), std::string::npos) << load_error();
  write("techniques.jsonl", "{\"id\":\"T1059\",\n");
  EXPECT_NE(load_error().find("techniques.jsonl:1: not valid JSON"), std::string::npos) << load_error();
}

TEST_F(KbMalformed, LinksMustNameKnownIdsOnce) {
  write("mitigates.jsonl", R"({"mitigation":"M1038","technique":"T1059.002","description":"x"})" "\n");
  EXPECT_NE(load_error().find("mitigates.jsonl:1: field 'technique' names T1059.002, which is not in techniques.jsonl"),
            std::string::npos) << load_error();
  write("mitigates.jsonl", R"({"mitigation":"M1038","technique":"T1059.001","description":"x"})" "\n"
                           R"({"mitigation":"M1038","technique":"T1059.001","description":"y"})" "\n");
  EXPECT_NE(load_error().find("mitigates.jsonl:2: the link M1038 -> T1059.001 appears twice"), std::string::npos) << load_error();
  write("mitigations.jsonl", R"({"id":"M1038","name":"Execution Prevention","description":"Block.","url":""})" "\n"
                             R"({"id":"M1038","name":"Again","description":"Block.","url":""})" "\n");
  EXPECT_NE(load_error().find("mitigations.jsonl:2: mitigation M1038 appears twice"), std::string::npos) << load_error();
  SetUp();
  std::filesystem::remove(dir_ + "/mitigates.jsonl");
  EXPECT_NE(load_error().find("mitigates.jsonl: cannot read the ATT&CK file"), std::string::npos) << load_error();
}

TEST(KbSearch, PorterStemmerMatchesThePublishedExamples) {
  // Examples from Porter (1980), steps 1 to 5.
  const std::map<std::string, std::string> cases = {
      {"caresses", "caress"}, {"ponies", "poni"},      {"cats", "cat"},          {"feed", "feed"},
      {"agreed", "agre"},     {"plastered", "plaster"}, {"motoring", "motor"},    {"sing", "sing"},
      {"conflated", "conflat"}, {"hopping", "hop"},    {"filing", "file"},       {"happy", "happi"},
      {"relational", "relat"}, {"conditional", "condit"}, {"generalization", "gener"}, {"electrical", "electr"},
      {"hopefulness", "hope"}, {"adjustment", "adjust"}, {"probate", "probat"},   {"controll", "control"},
      {"connections", "connect"}, {"connecting", "connect"}, {"encoded", "encod"}, {"encoding", "encod"}};
  for (const auto& [word, stem] : cases) EXPECT_EQ(kb::porter_stem(word), stem) << word;
}

TEST(KbSearch, TermsKeepTechniqueIdsWholeAndDropStopWords) {
  EXPECT_EQ(kb::search_terms("The attack.t1059.001 tag, and T1003!"),
            (std::vector<std::string>{"attack", "t1059.001", "tag", "t1003"}));
  EXPECT_EQ(kb::search_terms("Encoded PowerShell commands"), (std::vector<std::string>{"encod", "powershel", "command"}));
}

TEST(KbSearch, RanksTheTechniqueAQueryDescribes) {
  CSQ_REQUIRE_ATTACK();
  const auto& kb = shared_kb();
  auto top = [&](const std::string& q) {
    const auto hits = kb.search(q, 5);
    return hits.empty() ? std::string() : hits[0].technique->id;
  };
  EXPECT_EQ(top("powershell encoded command"), "T1059.001");
  EXPECT_EQ(top("T1003.001"), "T1003.001");
  EXPECT_EQ(top("dump lsass process memory credentials"), "T1003.001");
  EXPECT_EQ(top("scheduled task persistence"), "T1053.005");
  EXPECT_EQ(top("brute force ssh"), "T1110");
  EXPECT_EQ(top("T1059"), "T1059");
  EXPECT_EQ(top("kerberoasting service ticket"), "T1558.003");
  EXPECT_TRUE(kb.search("zzzz qqqq", 5).empty());
  const auto hits = kb.search("phishing attachment", 10);
  ASSERT_EQ(hits.size(), 10u);
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].score, hits[i].score);
}

TEST(KbText, PlainTextDropsCitationsLinksAndCodeTags) {
  EXPECT_EQ(kb::plain_text("Run <code>powershell -enc</code>.(Citation: Foo 2020) See [PowerShell](https://attack.mitre.org/techniques/T1059/001)  now."),
            "Run powershell -enc. See PowerShell now.");
  EXPECT_EQ(kb::technique_id_from_tag("attack.t1059.001"), "T1059.001");
  EXPECT_EQ(kb::technique_id_from_tag("T1003"), "T1003");
  EXPECT_EQ(kb::technique_id_from_tag("attack.execution"), std::nullopt);
  EXPECT_EQ(kb::technique_id_from_tag("attack.g0016"), std::nullopt);
}

}  // namespace
}  // namespace csq::test
