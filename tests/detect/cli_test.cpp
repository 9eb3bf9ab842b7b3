// csq detect end to end: rules and events from files and standard input, JSON Lines alerts,
// the summary on stderr, correlation alerts, `csq detect rules`, usage errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "child_process.h"
#include "test_paths.h"

extern char** environ;

namespace csq::test {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

const char* kRules = R"(title: Whoami
id: r-whoami
name: whoami
author: Jane Doe
status: test
level: medium
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\whoami.exe'
    condition: sel
---
title: Whoami burst
id: r-burst
author: John Roe
level: high
correlation:
    type: event_count
    rules: [whoami]
    generate: true
    group-by: [User]
    timespan: 1m
    condition: {gte: 2}
---
title: Broken
detection:
    sel:
        Image|nosuchmodifier: x
    condition: sel
logsource: {product: windows}
)";

std::string event(int sec) {
  return "{\"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"EventID\": 1, \"User\": \"bob\", "
         "\"UtcTime\": \"2024-01-01 10:00:" +
         std::string(sec < 10 ? "0" : "") + std::to_string(sec) + ".000\", \"Image\": \"C:\\\\Windows\\\\whoami.exe\"}\n";
}

TEST(DetectCli, StdinStreamToJsonLinesWithCorrelation) {
  const std::string rules = write("cli_rules.yml", kRules);
  const RunResult r = run_csq({"detect", "--rules", rules, "--events", "-", "--json"}, event(1) + "not json\n" + event(2));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> alerts;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) alerts.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(alerts.size(), 3u) << r.out;
  EXPECT_EQ(alerts[0]["rule_id"], "r-whoami");
  EXPECT_EQ(alerts[0]["author"], "Jane Doe");
  EXPECT_EQ(alerts[0]["record"], 1);
  EXPECT_EQ(alerts[0]["event"]["User"], "bob");
  EXPECT_EQ(alerts[1]["record"], 3);
  EXPECT_EQ(alerts[2]["rule_id"], "r-burst");
  EXPECT_EQ(alerts[2]["author"], "John Roe");
  EXPECT_EQ(alerts[2]["matched"]["count"], "2");
  EXPECT_NE(r.err.find("1 skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown modifier 'nosuchmodifier'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("events: 2 read, 1 unparseable"), std::string::npos) << r.err;
}

TEST(DetectCli, ACorrelationAlertNamesTheAuthorsOfTheRulesItCorrelates) {
  // The Detection Rule License 1.1: an alert based on the matches of "Whoami" (Jane Doe) keeps
  // her name beside the correlation's own author.
  const std::string rules = write("cli_rules6.yml", kRules);
  const RunResult r = run_csq({"detect", "--rules", rules, "--events", "-", "--json"}, event(1) + event(2));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> alerts;
  for (std::string line; std::getline(lines, line);) alerts.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(alerts.size(), 3u) << r.out;
  EXPECT_EQ(alerts[2]["author"], "John Roe");
  EXPECT_EQ(alerts[2]["event"]["rule_authors"], nlohmann::json::array({"Jane Doe"})) << alerts[2].dump();
}

TEST(DetectCli, RulesListingAndUsageErrors) {
  const std::string rules = write("cli_rules2.yml", kRules);
  const RunResult list = run_csq({"detect", "rules", "--rules", rules, "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("\"state\":\"skipped\""), std::string::npos);
  EXPECT_NE(list.out.find("\"line\":28"), std::string::npos) << list.out;
  EXPECT_EQ(run_csq({"detect", "--rules", rules}).exit_code, 1);
  EXPECT_EQ(run_csq({"detect", "--rules", rules, "--events", "-", "--min-level", "loud"}).exit_code, 1);
  EXPECT_EQ(run_csq({"detect", "--rules", "/nonexistent.yml", "--events", "-"}).exit_code, 2);
}

TEST(DetectCli, AnInputThatCannotBeReadIsExitCode2AfterTheOthers) {
  const std::string rules = write("cli_rules3.yml", kRules);
  const std::string good = write("cli_good.jsonl", event(1));
  const std::string missing = temp_dir() + "/cli_missing.jsonl";
  const RunResult r = run_csq({"detect", "--rules", rules, "--events", missing, good, "--json"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.out.find("\"rule_id\":\"r-whoami\""), std::string::npos) << r.out;  // the good input still runs
  EXPECT_NE(r.err.find(missing + ": cannot open"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 of 2 inputs could not be read"), std::string::npos) << r.err;
  EXPECT_EQ(run_csq({"detect", "--rules", rules, "--events", temp_dir(), "--json"}).exit_code, 2);
}

TEST(DetectCli, EventTextCannotForgeTableLinesOrReachTheTerminalAsControlCharacters) {
  const std::string rules = write("cli_rules5.yml", R"(title: Whoami
author: Jane Doe
level: medium
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|contains: whoami
    condition: sel
)");
  // One object over two lines (so the stream is read object by object), then junk holding ESC,
  // which the problem line on stderr quotes.
  const std::string forged = R"({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "UtcTime": "2024\u001b[2J",)"
                             "\n"
                             R"( "Image": "whoami.exe\n2024-01-01 10:00:00      critical      FORGED\u001b[31m\u009b"})"
                             "\nJunk\x1b[2J\n";
  const RunResult r = run_csq({"detect", "--rules", rules, "--events", "-"}, forged);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;  // the header and one alert
  EXPECT_NE(r.out.find(R"(Image=whoami.exe\n2024-01-01 10:00:00      critical      FORGED\x1b[31m\xc2\x9b)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(R"(2024\x1b[2J)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(R"(text outside a JSON object ('Junk\x1b[2J'))"), std::string::npos) << r.err;
  for (const std::string& text : {r.out, r.err})
    for (char c : text) EXPECT_TRUE(c == '\n' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f)) << int(c);
}

TEST(DetectCli, SigintWhileBlockedOnAFullPipeLeavesOnlyWholeLines) {
  // Alerts of about 6 KB (longer than stdio's 4 KiB buffer, so each line takes two write()s) into
  // a pipe nobody reads yet: csq detect blocks mid-stream, gets SIGINT, and what the reader then
  // finds must end with a whole line.
  const std::string rules = write("cli_rules4.yml", kRules);
  std::string events;
  for (int i = 0; i < 200; ++i) {
    std::string e = event(1);
    e.insert(e.find("\"Image\""), "\"Pad\": \"" + std::string(6000 + i, 'p') + "\", ");
    events += e;
  }
  const std::string events_path = write("cli_big.jsonl", events);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addclose(&actions, out[1]);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> args = {csq_binary(), "detect", "--rules", rules, "--events", events_path, "--json"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the pipe's 64 KiB fill at once
  const std::string got = interrupt_and_read(pid, out[0]);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), '\n') << "a torn last line of " << got.size() - got.rfind('\n') - 1 << " bytes";
  EXPECT_LT(got.size(), events.size());  // it stopped: not every alert was written
}

}  // namespace
}  // namespace csq::test
