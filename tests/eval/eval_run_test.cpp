// `csq eval run` end to end on the random-weight fixture model: every benchmark, resuming after
// --limit grows and after a SIGKILL, refusing foreign directories, and the --endpoint path
// against `csq serve` giving the in-process answers.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "eval/benchmarks.h"
#include "kernels/vulkan/device.h"
#include "child_process.h"
#include "eval_data.h"

extern char** environ;

namespace csq::test {
namespace {

namespace fs = std::filesystem;

std::string model() { return fixture("hf/qwen3-tiny-vocab"); }

std::vector<std::string> run_args(const std::string& benchmark, const std::string& out, size_t limit,
                                  const std::string& max_tokens = "4") {
  return {"eval", "run", "--benchmark", benchmark, "--protocol", "ctibench", "--model", model(), "--data", data_dir(),
          "--limit", std::to_string(limit), "--max-tokens", max_tokens, "--out", out, "--threads", "2", "--json"};
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::map<std::pair<int, size_t>, std::string> responses_of(const std::string& dir) {
  std::map<std::pair<int, size_t>, std::string> out;
  for (const auto& line : lines_of(dir + "/responses.jsonl")) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(out.emplace(std::pair{j["trial"].get<int>(), j["index"].get<size_t>()}, j["response"]).second) << line;
  }
  return out;
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = temp_dir() + "/" + name;
  fs::remove_all(dir);
  return dir;
}

TEST(EvalRun, EveryBenchmarkEndToEnd) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  for (const std::string& name : eval::benchmark_names()) {
    const std::string out = fresh_dir("run-" + name);
    const RunResult r = run_csq(run_args(name, out, 20));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
    const auto s = nlohmann::json::parse(r.out);
    EXPECT_EQ(s["benchmark"], name);
    EXPECT_EQ(s["item_count"], 20);
    ASSERT_EQ(s["trials"].size(), 1u) << name;
    EXPECT_EQ(s["trials"][0]["n"], 20) << name;
    EXPECT_EQ(s["protocol"]["max_new_tokens"], 4);
    EXPECT_NE(s["protocol"]["description"].get<std::string>().find("overridden to 4 from 2048"), std::string::npos);
    EXPECT_EQ(s["run"]["overrides"]["max_new_tokens"], 4);
    EXPECT_EQ(s["run"]["computed"], 20);
    EXPECT_EQ(s["run"]["resumed"], 0);
    EXPECT_GT(s["run"]["completion_tokens"].get<int64_t>(), 0);
    EXPECT_GT(s["run"]["tokens_per_s"].get<double>(), 0.0);
    EXPECT_EQ(s["run"]["backend"]["kind"], "local");
    EXPECT_EQ(lines_of(out + "/items.jsonl").size(), 20u);
    EXPECT_EQ(responses_of(out).size(), 20u);
    const auto item = nlohmann::json::parse(lines_of(out + "/items.jsonl")[0]);
    for (const char* key : {"index", "trial", "prompt", "response", "parsed", "answer", "gold", "correct"})
      EXPECT_TRUE(item.contains(key)) << name << " items.jsonl lacks " << key;
    std::ifstream md_in(out + "/report.md");
    const std::string md((std::istreambuf_iterator<char>(md_in)), {});
    EXPECT_NE(md.find("| ctibench |"), std::string::npos) << md;
    EXPECT_NE(md.find("## Run"), std::string::npos);
    EXPECT_NE(md.find("generated tokens/s"), std::string::npos);
    EXPECT_NE(md.find("not the published setting"), std::string::npos);
    EXPECT_TRUE(fs::exists(out + "/summary.json"));
    EXPECT_TRUE(fs::exists(out + "/manifest.json"));
  }
}

TEST(EvalRun, SampledTrialsUseTheProtocolSeeds) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  const std::string out = fresh_dir("run-trials");
  const RunResult r = run_csq({"eval", "run", "--benchmark", "cti-mcq", "--protocol", "cybersecqwen", "--model", model(),
                               "--data", data_dir(), "--limit", "4", "--trials", "2", "--max-tokens", "6", "--out", out,
                               "--threads", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["trials"].size(), 2u);
  EXPECT_EQ(s["protocol"]["seeds"], nlohmann::json::array({42, 43}));
  EXPECT_EQ(s["protocol"]["temperature"], 0.3);
  for (const auto& line : lines_of(out + "/responses.jsonl")) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["seed"], 42 + j["trial"].get<int>());
  }
  EXPECT_EQ(run_csq({"eval", "run", "--benchmark", "cti-mcq", "--protocol", "cybersecqwen", "--model", model(), "--data",
                     data_dir(), "--trials", "6", "--out", out})
                .exit_code,
            1);
}

TEST(EvalRun, GrowingTheLimitComputesOnlyTheNewItems) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  const std::string out = fresh_dir("run-limit");
  RunResult r = run_csq(run_args("cti-rcm", out, 10, "8"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto first = lines_of(out + "/responses.jsonl");
  ASSERT_EQ(first.size(), 10u);
  r = run_csq(run_args("cti-rcm", out, 20, "8"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["run"]["resumed"], 10);
  EXPECT_EQ(s["run"]["computed"], 10);
  EXPECT_EQ(s["trials"][0]["n"], 20);
  const auto second = lines_of(out + "/responses.jsonl");
  ASSERT_EQ(second.size(), 20u);
  for (size_t k = 0; k < first.size(); ++k) EXPECT_EQ(second[k], first[k]) << "line " << k + 1 << " was rewritten";
  EXPECT_EQ(lines_of(out + "/items.jsonl").size(), 20u);
  // Nothing left to do: a third run only rescores.
  r = run_csq(run_args("cti-rcm", out, 20, "8"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["run"]["computed"], 0);
}

TEST(EvalRun, ResumesAfterBeingKilled) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  const std::string out = fresh_dir("run-kill");
  std::vector<std::string> args = run_args("cti-rcm", out, 20, "64");
  args.insert(args.end(), {"--parallel", "1"});
  const pid_t pid = spawn_csq(args, temp_dir() + "/run-kill.log");
  ASSERT_GT(pid, 0);
  const std::string log = out + "/responses.jsonl";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (lines_of(log).size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  auto before = lines_of(log);
  ASSERT_GE(before.size(), 3u);
  ASSERT_LT(before.size(), 20u);
  // A torn last line, as a kill in the middle of a write leaves.
  {
    std::ifstream in(log, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    if (!text.empty() && text.back() != '\n') before.pop_back();  // the kill itself tore one
  }
  std::ofstream(log, std::ios::app | std::ios::binary) << R"({"index": 19, "trial": 0, "resp)";

  const RunResult r = run_csq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("dropping an incomplete last line"), std::string::npos) << r.err;
  const auto s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["run"]["resumed"], before.size());
  EXPECT_EQ(s["run"]["computed"], 20 - before.size());
  const auto after = lines_of(log);
  ASSERT_EQ(after.size(), 20u);
  for (size_t k = 0; k < before.size(); ++k) EXPECT_EQ(after[k], before[k]);
  EXPECT_EQ(responses_of(out).size(), 20u);
  EXPECT_EQ(lines_of(out + "/items.jsonl").size(), 20u);
}

TEST(EvalRun, RefusesADirectoryOfAnotherRun) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  const std::string out = fresh_dir("run-foreign");
  ASSERT_EQ(run_csq(run_args("cti-rcm", out, 2)).exit_code, 0);
  auto other_protocol = run_args("cti-rcm", out, 2);
  other_protocol[5] = "cybersecqwen";
  RunResult r = run_csq(other_protocol);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("holds a run with a different protocol"), std::string::npos) << r.err;
  r = run_csq(run_args("cti-rcm", out, 2, "5"));  // other max tokens: other answers
  EXPECT_EQ(r.exit_code, 1);
  auto other_model = run_args("cti-rcm", out, 2);
  other_model[7] = fixture("hf/qwen2-tiny");
  r = run_csq(other_model);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("holds a run with a different backend"), std::string::npos) << r.err;
  EXPECT_EQ(lines_of(out + "/responses.jsonl").size(), 2u);
}

TEST(EvalRun, UsageErrors) {
  CSQ_REQUIRE_EVAL_DATA();
  RunResult r = run_csq({"eval", "run", "--benchmark", "cti-rcm", "--protocol", "ctibench", "--data", data_dir()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exactly one of --model PATH or --endpoint URL"), std::string::npos) << r.err;
  r = run_csq({"eval", "run", "--benchmark", "cti-rcm", "--protocol", "ctibench", "--data", data_dir(), "--endpoint",
               "localhost:8080"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("expected http://HOST[:PORT]/PATH"), std::string::npos) << r.err;
  // Port 1 on loopback: nothing listens, so the error is immediate and names the server.
  r = run_csq({"eval", "run", "--benchmark", "cti-rcm", "--protocol", "ctibench", "--data", data_dir(), "--endpoint",
               "http://127.0.0.1:1/v1", "--api-model", "m", "--retries", "0", "--limit", "1", "--out",
               fresh_dir("run-unreachable"), "--quiet"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("http://127.0.0.1:1/v1: cti-rcm item 0 trial 0: cannot reach the server"), std::string::npos)
      << r.err;
}

// A negative --limit wrapped around to the largest count and ran the whole benchmark (hours).
TEST(EvalRun, ANegativeLimitIsAUsageError) {
  CSQ_REQUIRE_EVAL_DATA();
  const std::string out = fresh_dir("run-negative-limit");
  std::vector<std::string> args = run_args("cti-rcm", out, 1);
  *std::find(args.begin(), args.end(), "1") = "-3";
  const RunResult r = run_csq(args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--limit"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(EvalRun, EndpointAnswersEqualInProcessAnswers) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  const std::string log = temp_dir() + "/serve.log";
  const pid_t server = spawn_csq({"serve", "--model", model(), "--port", "0", "--parallel", "2", "--threads", "2"}, log);
  ASSERT_GT(server, 0);
  std::string url;
  for (int k = 0; k < 6000 && url.empty(); ++k) {
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    const size_t at = text.find("on http://");
    if (at != std::string::npos && text.find("/v1", at) != std::string::npos)
      url = text.substr(at + 3, text.find("/v1", at) + 3 - at - 3);
    else std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(url.empty()) << "csq serve did not start";

  const std::string remote = fresh_dir("run-endpoint"), local = fresh_dir("run-local");
  const RunResult via_server =
      run_csq({"eval", "run", "--benchmark", "cti-rcm", "--protocol", "ctibench", "--endpoint", url, "--data",
               data_dir(), "--limit", "6", "--max-tokens", "12", "--parallel", "2", "--out", remote, "--json"});
  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
  ASSERT_EQ(via_server.exit_code, 0) << via_server.err;
  const auto s = nlohmann::json::parse(via_server.out);
  EXPECT_EQ(s["run"]["backend"]["kind"], "endpoint");
  EXPECT_EQ(s["run"]["backend"]["api_model"], "qwen3-tiny-vocab");
  EXPECT_GT(s["run"]["completion_tokens"].get<int64_t>(), 0);

  ASSERT_EQ(run_csq(run_args("cti-rcm", local, 6, "12")).exit_code, 0);
  const auto a = responses_of(remote), b = responses_of(local);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a, b);
}

// `csq eval run --device vulkan` (device 0; lavapipe in CI) gives the CPU's greedy responses.
TEST(EvalRun, VulkanDeviceAnswersEqualCpuAnswers) {
  CSQ_REQUIRE_FIXTURES();
  CSQ_REQUIRE_EVAL_DATA();
  const vulkan::DeviceList devices = vulkan::list_devices();
  if (devices.devices.empty()) GTEST_SKIP() << "no Vulkan device: " << devices.problem;
  const std::string on_device = fresh_dir("run-vulkan"), on_cpu = fresh_dir("run-cpu");
  std::vector<std::string> args = run_args("cti-rcm", on_device, 3, "6");
  args.insert(args.end(), {"--device", "vulkan"});
  const RunResult r = run_csq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("running on the CPU"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["run"]["computed"], 3);
  ASSERT_EQ(run_csq(run_args("cti-rcm", on_cpu, 3, "6")).exit_code, 0);
  const auto a = responses_of(on_device), b = responses_of(on_cpu);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace csq::test
