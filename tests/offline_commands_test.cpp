// No command but `csq pull` (and an explicit --endpoint) uses the network: every other command
// runs here inside a network namespace without interfaces (`unshare -n`: not even loopback),
// where any connection attempt fails, and must still succeed. `serve` is left out: it exists to
// listen on a socket (127.0.0.1 by default), which needs the loopback interface.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eval/eval_data.h"
#include "test_paths.h"

namespace csq::test {
namespace {
namespace fs = std::filesystem;

std::string quote(const std::string& text) { return "'" + text + "'"; }

RunResult run_offline(const std::string& args, const std::string& stdin_file = "/dev/null") {
  const std::string out = temp_dir() + "/offline.out", err = temp_dir() + "/offline.err";
  const std::string command = "unshare -n " + csq_binary() + " " + args + " <" + stdin_file + " >" + out + " 2>" + err;
  const int status = std::system(command.c_str());
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

TEST(Offline, EveryCommandButPullWorksWithoutANetwork) {
  CSQ_REQUIRE_FIXTURES();
  if (std::system("unshare -n true >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "unshare -n is not permitted here (needs root or user namespaces): not checked";
  const std::string dir = temp_dir() + "/offline";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string m = "--model " + quote(fixture("hf/qwen3-tiny-vocab"));
  const std::string gen = " --max-tokens 4 --threads 1 --temperature 0";
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string hello = write("hello.txt", "Hello\n");
  const std::string ids = write("ids.json", "[9707, 11, 1879]");
  const std::string messages = write("messages.json", R"([{"role": "user", "content": "Hi"}])");
  std::string train_data;
  for (int i = 0; i < 4; ++i)
    train_data += nlohmann::json{{"prompt", "Map CVE-2024-" + std::to_string(1000 + i) + " to a CWE."},
                                 {"response", "CWE-79"}}.dump() + "\n";
  const std::string train = write("train.jsonl", train_data);
  const std::string rule = write("whoami.yml", R"(title: Whoami
id: 5f1c9b1e-7a51-4c55-9d4b-2f3f3a0c9e01
status: test
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\whoami.exe'
  condition: selection
level: medium
)");
  const std::string events = write("events.jsonl", R"({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Image": "C:\\Windows\\System32\\whoami.exe"})"
                                                    "\n");

  const std::vector<std::pair<std::string, std::string>> commands = {
      {"info " + m + " --json", ""},
      {"run " + m + " --prompt Hi" + gen, ""},
      {"complete " + m + " --prompt Hi" + gen, ""},
      {"chat " + m + gen, hello},
      {"generate " + m + " --tokens 1,2,3 -n 4 --threads 1 --print-ids", ""},
      {"logits " + m + " --tokens 1,2,3 --threads 1 --out " + dir + "/logits.safetensors", ""},
      {"tokenize " + m, hello},
      {"detokenize " + m, ids},
      {"template " + m + " --messages " + messages, ""},
      {"cwe " + m + " --text 'SQL injection in a login form'" + gen, ""},
      {"cvss " + m + " --text 'Unauthenticated remote code execution'" + gen, ""},
      {"attack " + m + " --text 'The actor used PowerShell to dump LSASS'" + gen, ""},
      {"mcq " + m + " --text 'Which port does SSH use? A) 22 B) 80 C) 443 D) 25'" + gen, ""},
      {"ask " + m + " --text 'What is Kerberoasting?'" + gen, ""},
      {"bench " + m + " -p 8 -n 4 -r 1 -t 1", ""},
      {"quantize " + m + " --type Q8_0 --threads 1 --out " + dir + "/q8.gguf", ""},
      {"synth --preset tiny --type Q4_0 --threads 1 --out " + dir + "/synth.gguf", ""},
      {"train " + m + " --data " + train + " --out " + dir + "/lora --max-steps 1 --seq-len 64 --threads 1 --quiet "
       "--eval-data " + dir, ""},
      {"merge " + m + " --lora " + dir + "/lora --type Q8_0 --out " + dir + "/merged.gguf", ""},
      {"detect --rules " + rule + " --events " + events, ""},
  };
  for (const auto& [args, input] : commands) {
    const RunResult r = run_offline(args, input.empty() ? "/dev/null" : input);
    EXPECT_EQ(r.exit_code, 0) << "csq " << args << "\n" << r.err;
  }
  if (have_eval_data()) {
    const std::string out = dir + "/eval";
    RunResult r = run_offline("eval run --benchmark cti-mcq --protocol ctibench " + m + " --data " + quote(data_dir()) +
                              " --limit 2 --trials 1 --max-tokens 4 --threads 1 --quiet --out " + out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run_offline("data overlap --train " + train + " --benchmark cti-mcq --data " + quote(data_dir()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run_offline("kb technique T1059.001 --kb " + quote(data_dir() + "/attack"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run_offline("kb search 'encoded powershell' --kb " + quote(data_dir() + "/attack"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // The namespace is really cut off: pull, the one command that needs the network, fails.
  const RunResult pull = run_offline("pull org/model --no-lock --retries 0 --endpoint http://127.0.0.1:9");
  EXPECT_EQ(pull.exit_code, 3) << pull.err;
  EXPECT_NE(pull.err.find("cannot reach"), std::string::npos) << pull.err;
}

}  // namespace
}  // namespace csq::test
