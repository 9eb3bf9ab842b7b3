// csq cwe | mcq | cvss | attack | ask end to end on the random-weight fixture model. Its answers
// are noise, so these check structure: JSON fields, --strict answers that always parse, valid
// CVSS vectors, batch order and exit codes.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "child_process.h"
#include "tasks/cvss.h"
#include "test_paths.h"

namespace csq::test {
namespace {

std::vector<std::string> task_args(const std::string& task, std::vector<std::string> extra) {
  std::vector<std::string> args = {task, "--model", fixture("hf/qwen3-tiny-vocab"), "--threads", "2"};
  if (std::find(extra.begin(), extra.end(), "--max-tokens") == extra.end()) args.insert(args.end(), {"--max-tokens", "16"});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

nlohmann::json run_json(const std::string& task, std::vector<std::string> extra, const std::string& stdin_text = "") {
  extra.push_back("--json");
  const RunResult r = run_csq(task_args(task, extra), stdin_text);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

const char* kCve = "SQL injection in the login form of Acme Portal 2.1 allows remote attackers to run arbitrary SQL "
                   "commands via the username parameter.";

TEST(TaskCli, FreeAnswersCarryTheRawTextAndTheParseOutcome) {
  CSQ_REQUIRE_FIXTURES();
  auto j = run_json("cwe", {"--text", kCve});
  EXPECT_EQ(j["task"], "cwe");
  EXPECT_TRUE(j["answer"].is_string());
  EXPECT_TRUE(j["parsed"].is_boolean());
  EXPECT_TRUE(j.contains("cwe") && j.contains("justification"));
  EXPECT_TRUE(j["finish"] == "stop" || j["finish"] == "length");
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 30);
  j = run_json("ask", {"--text", "What is Kerberoasting?", "--seed", "7", "--temperature", "0.7"});
  EXPECT_EQ(j["seed"], 7);
  EXPECT_TRUE(j["answer"].is_string());
  // Plain output: the answer, then the parsed value on the last line.
  const RunResult plain = run_csq(task_args("cwe", {"--text", kCve, "--strict"}));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_TRUE(std::regex_search(plain.out, std::regex("\nCWE: CWE-[0-9]+\n$"))) << plain.out;
}

TEST(TaskCli, StrictAnswersAlwaysParse) {
  CSQ_REQUIRE_FIXTURES();
  auto j = run_json("cwe", {"--text", kCve, "--strict"});
  ASSERT_TRUE(j["parsed"].get<bool>()) << j.dump();
  EXPECT_TRUE(std::regex_match(j["cwe"].get<std::string>(), std::regex("CWE-[1-9][0-9]{0,3}")));
  EXPECT_EQ(j["justification"], nullptr);  // a bare id has none

  for (const std::string seed : {"1", "2", "3"}) {
    j = run_json("mcq", {"--text", "Which port does SSH listen on by default?", "--option", "21", "--option", "22",
                         "--option", "23", "--strict", "--temperature", "1", "--seed", seed});
    ASSERT_TRUE(j["parsed"].get<bool>()) << j.dump();
    EXPECT_TRUE(std::regex_match(j["letter"].get<std::string>(), std::regex("[ABC]"))) << j.dump();  // three options
  }

  j = run_json("cvss", {"--text", kCve, "--strict", "--max-tokens", "64"});
  ASSERT_TRUE(j["parsed"].get<bool>()) << j.dump();
  const tasks::CvssVector v = tasks::parse_cvss(j["vector"].get<std::string>());
  EXPECT_DOUBLE_EQ(j["base_score"].get<double>(), tasks::cvss_base_score(v));
  EXPECT_EQ(j["severity"], tasks::cvss_severity(tasks::cvss_base_score(v)));

  j = run_json("attack", {"--text", "The actor used PowerShell and scheduled tasks.", "--strict", "--max-tokens", "96"});
  ASSERT_TRUE(j["parsed"].get<bool>()) << j.dump();
  ASSERT_FALSE(j["techniques"].empty());
  for (const auto& id : j["techniques"]) EXPECT_TRUE(std::regex_match(id.get<std::string>(), std::regex("T[0-9]{4}")));
}

TEST(TaskCli, BatchOutputFollowsInputOrder) {
  CSQ_REQUIRE_FIXTURES();
  const std::string input =
      R"({"question": "Q1?", "options": ["a", "b", "c", "d"]})" "\n\n"
      R"({"text": "Q2? A) x B) y"})" "\n"
      R"({"question": "Q3?", "options": ["a", "b"]})" "\n"
      R"({"question": "Q4?", "options": ["a", "b", "c"]})" "\n";
  const RunResult r = run_csq(task_args("mcq", {"--jsonl", "-", "--strict", "--parallel", "3"}), input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  const std::vector<int> numbers = {1, 3, 4, 5};  // input line numbers; the blank line is skipped
  const std::vector<std::string> allowed = {"[A-D]", "[A-D]", "[AB]", "[A-C]"};
  for (size_t k = 0; k < lines.size(); ++k) {
    EXPECT_EQ(lines[k]["line"], numbers[k]);
    ASSERT_TRUE(lines[k]["parsed"].get<bool>()) << lines[k].dump();
    EXPECT_TRUE(std::regex_match(lines[k]["letter"].get<std::string>(), std::regex(allowed[k]))) << lines[k].dump();
  }
  // The same inputs one at a time give the same answers (greedy, batching changes nothing).
  const auto alone = run_json("mcq", {"--text", "Q3?", "--option", "a", "--option", "b", "--strict"});
  EXPECT_EQ(alone["letter"], lines[2]["letter"]);
}

TEST(TaskCli, InputsFromFilesAndStdin) {
  CSQ_REQUIRE_FIXTURES();
  const std::string path = temp_dir() + "/cve.txt";
  std::ofstream(path) << kCve;
  const auto from_file = run_json("cwe", {"--file", path, "--strict"});
  const auto from_stdin = run_json("cwe", {"--file", "-", "--strict"}, kCve);
  const auto from_text = run_json("cwe", {"--text", kCve, "--strict"});
  EXPECT_EQ(from_file["cwe"], from_text["cwe"]);
  EXPECT_EQ(from_stdin["cwe"], from_text["cwe"]);
}

TEST(TaskCli, ExitCodes) {
  CSQ_REQUIRE_FIXTURES();
  RunResult r = run_csq(task_args("cwe", {}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exactly one of --text TEXT, --file F or --jsonl F"), std::string::npos) << r.err;
  r = run_csq(task_args("cwe", {"--text", "x", "--file", "y"}));
  EXPECT_EQ(r.exit_code, 1);
  r = run_csq(task_args("ask", {"--text", "x", "--strict"}));
  EXPECT_EQ(r.exit_code, 1);
  r = run_csq(task_args("mcq", {"--text", "q", "--option", "only one"}));
  EXPECT_EQ(r.exit_code, 1);
  r = run_csq(task_args("cwe", {"--text", "x", "--parser", "helm"}));
  EXPECT_EQ(r.exit_code, 1);
  r = run_csq(task_args("cwe", {"--file", temp_dir() + "/no-such-file.txt"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no-such-file.txt: cannot open"), std::string::npos) << r.err;
  r = run_csq(task_args("cwe", {"--text", "   "}));
  EXPECT_EQ(r.exit_code, 2);
  r = run_csq(task_args("cvss", {"--jsonl", "-"}), "{\"text\": \"a\"}\n{\"description\": 5}\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("-:2: \"description\" must be a string"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());  // nothing is generated before every line is read
  r = run_csq(task_args("attack", {"--jsonl", "-"}), "not json\n");
  EXPECT_EQ(r.exit_code, 2);
  r = run_csq({"cwe", "--model", temp_dir() + "/no-model", "--text", "x"});
  EXPECT_NE(r.exit_code, 0);
  // An empty --instruction silently kept CTI-Bench's (where --system "" means none).
  r = run_csq(task_args("cwe", {"--text", "x", "--instruction", ""}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--instruction: must not be empty"), std::string::npos) << r.err;
  for (const char* parallel : {"0", "-1", "257"}) {  // were taken as 1 without a word
    r = run_csq(task_args("cwe", {"--text", "x", "--parallel", parallel}));
    EXPECT_EQ(r.exit_code, 1) << parallel;
    EXPECT_NE(r.err.find("--parallel must be between 1 and 256"), std::string::npos) << r.err;
  }
  r = run_csq(task_args("attack", {"--text", "A report.", "--ctx", "64"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("exceeds the context of 64"), std::string::npos) << r.err;
}

TEST(TaskCli, SigintWhileBlockedOnAFullPipeLeavesOnlyWholeLines) {
  // Batch lines of about 6.5 KB (100 tokens of 64 '=' each, forced by a logit bias) into a pipe
  // of 4 KiB that nobody reads yet: the first line fills it and csq blocks in the middle of it;
  // SIGINT then must let the line finish, so the reader never finds a torn last line.
  CSQ_REQUIRE_FIXTURES();
  const std::string input = temp_dir() + "/sigint_batch.jsonl";
  std::ofstream(input) << "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n";
  std::vector<std::string> args = task_args("cwe", {"--jsonl", input, "--max-tokens", "100", "--ignore-eos",
                                                    "--logit-bias", "8152=100", "--parallel", "1"});
  args.insert(args.begin(), csq_binary());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_GT(fcntl(out[0], F_SETPIPE_SZ, 4096), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    dup2(out[1], 1);
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    close(out[0]);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  pollfd ready{out[0], POLLIN, 0};
  ASSERT_EQ(poll(&ready, 1, 60000), 1);  // the first line has begun to arrive
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string got = interrupt_and_read(pid, out[0]);
  ASSERT_GT(got.size(), 4096u);
  EXPECT_EQ(got.back(), '\n') << "a torn last line of " << got.size() - got.rfind('\n') - 1 << " bytes";
}

}  // namespace
}  // namespace csq::test
