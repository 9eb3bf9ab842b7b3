// Throughput of `csq serve` on one model, the two figures issue 7 promises:
//  (a) aggregate generation rate with 1 stream and with N concurrent streams (greedy,
//      end-of-text ignored, fixed max_tokens; wall time of the round, short prompts included);
//  (b) time to first token when requests share a long prefix (a SOC playbook as system
//      prompt) followed by a different question each: the first request against the median of
//      the following ones, which should find the prefix in the cache.
//   csq_server_throughput --model F.gguf [--tokenizer DIR] [--threads 2] [--json]
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "base/error.h"
#include "server_client.h"
#include "tokenizer/tokenizer.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  csq::bench::ServerTarget target;
  int streams = 8;
  int max_tokens = 32;
  int prefix_tokens = 1000;
  int followers = 4;
  int64_t ctx = 1536;
  bool json_out = false;
};

struct Round {
  int64_t tokens = 0;
  double seconds = 0;
  double rate() const { return double(tokens) / seconds; }
};

// `streams` concurrent greedy completions of `max_tokens` each, prompts of equal shape.
Round generate(const std::string& url, int streams, int max_tokens) {
  std::vector<csq::bench::Reply> replies(static_cast<size_t>(streams));
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s)
    threads.emplace_back([&, s] {
      auto client = csq::bench::connect(url);
      const json body = {{"prompt", "Incident " + std::to_string(100 + s) + " timeline, one event per line:\n"},
                         {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}};
      replies[size_t(s)] = csq::bench::send(*client, "/v1/completions", body);
    });
  for (auto& t : threads) t.join();
  Round round;
  round.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& r : replies) {
    if (!r.error.empty()) csq::fail_runtime("a generation request failed: " + r.error);
    if (r.completion_tokens != max_tokens)
      csq::fail_runtime("a generation request ended after " + std::to_string(r.completion_tokens) + " of " +
                        std::to_string(max_tokens) + " tokens");
    round.tokens += r.completion_tokens;
  }
  return round;
}

// A SOC playbook of about `tokens` tokens, the same on every run.
std::string playbook(const csq::Tokenizer& tokenizer, int tokens) {
  static const char* const phases[] = {"preparation", "identification", "containment", "eradication", "recovery",
                                       "lessons learned"};
  static const char* const actions[] = {"collects", "validates", "isolates", "hashes", "reviews", "escalates",
                                        "documents", "correlates"};
  static const char* const artifacts[] = {"EDR process tree", "firewall log", "proxy log", "Windows security event 4625",
                                          "memory image", "mailbox audit log", "DNS query log", "VPN session record",
                                          "Sysmon event 1", "cloud trail entry", "disk image", "user account record"};
  std::string text = "You are the tier-2 analyst of a security operations centre. Follow this playbook exactly.\n";
  for (int step = 1; int64_t(tokenizer.encode(text, false).size()) < tokens; ++step) {
    text += "Step " + std::to_string(step) + " (" + phases[(step / 7) % 6] + "): the analyst " + actions[step % 8] +
            " the " + artifacts[(step * 5) % 12] + ", notes the time in UTC and links it to the case; if it shows " +
            artifacts[(step * 7 + 3) % 12] + " activity, the shift lead is told within " + std::to_string(5 + step % 4 * 5) +
            " minutes.\n";
  }
  return text;
}

std::string question(int k) {
  return "Alert " + std::to_string(4100 + k) + ": host WS-" + std::to_string(100 + k * 37 % 900) +
         " ran an encoded PowerShell command spawned by winword.exe at 0" + std::to_string(k % 10) +
         ":1" + std::to_string(k % 6) + "Z and then connected to 198.51.100." + std::to_string(k + 10) +
         " on port 443. Which playbook step applies first, and what evidence must be preserved?";
}

struct Ttft {
  double first_ms = 0;
  std::vector<double> later_ms;
  int64_t prompt_tokens = 0, first_cached = 0, later_cached_min = 0;
};

Ttft prefix_cache(const std::string& url, const std::string& system, int followers) {
  auto client = csq::bench::connect(url);
  Ttft out;
  for (int k = 0; k <= followers; ++k) {
    const json body = {{"messages", json::array({{{"role", "system"}, {"content", system}},
                                                 {{"role", "user"}, {"content", question(k)}}})},
                       {"max_tokens", 1}, {"temperature", 0}, {"ignore_eos", true}, {"stream", true},
                       {"stream_options", {{"include_usage", true}}}};
    const csq::bench::Reply r = csq::bench::send(*client, "/v1/chat/completions", body);
    if (!r.error.empty()) csq::fail_runtime("a prefix request failed: " + r.error);
    // A request cut off before its token (e.g. by the server's timeout) has no TTFT.
    if (r.completion_tokens != 1) csq::fail_runtime("a prefix request ended without its token");
    if (k == 0) {
      out.first_ms = r.first_token_ms;
      out.prompt_tokens = r.prompt_tokens;
      out.first_cached = r.cached_tokens;
      out.later_cached_min = r.prompt_tokens;
    } else {
      out.later_ms.push_back(r.first_token_ms);
      out.later_cached_min = std::min(out.later_cached_min, r.cached_tokens);
    }
  }
  return out;
}

int run(const Options& o) {
  if (o.streams < 2 || o.followers < 1 || o.max_tokens < 1) csq::fail_usage("--streams >= 2, --followers >= 1, --max-tokens >= 1");
  const csq::Tokenizer tokenizer = csq::load_tokenizer(o.target.tokenizer.empty() ? o.target.model : o.target.tokenizer);
  const std::string system = playbook(tokenizer, o.prefix_tokens);
  const int64_t system_tokens = int64_t(tokenizer.encode(system, false).size());
  csq::bench::ServerTarget target = o.target;
  // A 4B model on two busy threads takes many minutes for a 1,000-token prompt: no server
  // timeout may cut a measured request short.
  target.serve_args = {"--parallel", std::to_string(o.streams), "--ctx", std::to_string(o.ctx), "--timeout", "86400"};
  csq::bench::Server server(target);

  std::fprintf(stderr, "warming up (the first pass reads the weights in)\n");
  generate(server.url(), 1, 2);
  std::fprintf(stderr, "generation: 1 stream\n");
  const Round one = generate(server.url(), 1, o.max_tokens);
  std::fprintf(stderr, "generation: %d streams\n", o.streams);
  const Round many = generate(server.url(), o.streams, o.max_tokens);
  std::fprintf(stderr, "prefix cache: %lld-token playbook, %d + 1 questions\n", (long long)system_tokens, o.followers);
  const Ttft ttft = prefix_cache(server.url(), system, o.followers);
  const double rss = server.peak_rss_mib();
  server.stop();

  const double later = csq::bench::percentile(ttft.later_ms, 0.5);
  const double gen_ratio = many.rate() / one.rate(), ttft_ratio = ttft.first_ms / later;
  json out = {{"model", o.target.model},
              {"threads", o.target.threads},
              {"generation",
               {{"max_tokens", o.max_tokens},
                {"single", {{"tokens", one.tokens}, {"seconds", one.seconds}, {"tokens_per_s", one.rate()}}},
                {"concurrent", {{"streams", o.streams}, {"tokens", many.tokens}, {"seconds", many.seconds}, {"tokens_per_s", many.rate()}}},
                {"ratio", gen_ratio}}},
              {"prefix_cache",
               {{"system_prompt_tokens", system_tokens},
                {"prompt_tokens", ttft.prompt_tokens},
                {"first_ttft_ms", ttft.first_ms},
                {"first_cached_tokens", ttft.first_cached},
                {"later_ttft_ms", ttft.later_ms},
                {"later_ttft_median_ms", later},
                {"later_cached_tokens_min", ttft.later_cached_min},
                {"ratio", ttft_ratio}}},
              {"peak_rss_mib", rss}};
  if (o.json_out) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%s, %d threads\n", o.target.model.c_str(), o.target.threads);
  std::printf("generation (greedy, %d tokens per stream, end-of-text ignored)\n", o.max_tokens);
  std::printf("  %-10s %6lld tokens %8.2f s %9.2f tok/s\n", "1 stream", (long long)one.tokens, one.seconds, one.rate());
  std::printf("  %2d streams %6lld tokens %8.2f s %9.2f tok/s   %.2fx the single stream\n", o.streams,
              (long long)many.tokens, many.seconds, many.rate(), gen_ratio);
  std::printf("prefix cache (%lld-token system prompt + a different question, %lld prompt tokens)\n",
              (long long)system_tokens, (long long)ttft.prompt_tokens);
  std::printf("  first request    TTFT %9.1f ms   (%lld tokens from the cache)\n", ttft.first_ms, (long long)ttft.first_cached);
  std::printf("  later, median    TTFT %9.1f ms   (at least %lld tokens from the cache, %d requests)\n", later,
              (long long)ttft.later_cached_min, o.followers);
  std::printf("  first / later    %.2fx\n", ttft_ratio);
  std::printf("server peak RSS %.0f MiB\n", rss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("Throughput of csq serve: 1 vs N streams, and time to first token with a cached shared prefix");
  csq::bench::add_target_options(app, o.target, false);
  app.get_option("--model")->required();
  app.add_option("--streams", o.streams, "Concurrent streams of the batched round")->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "Tokens generated per stream")->capture_default_str();
  app.add_option("--prefix-tokens", o.prefix_tokens, "Length of the shared system prompt")->capture_default_str();
  app.add_option("--followers", o.followers, "Requests after the first that share its prefix")->capture_default_str();
  app.add_option("--ctx", o.ctx, "Context per sequence of the server")->capture_default_str();
  app.add_flag("--json", o.json_out, "JSON output");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const csq::Error& e) {
    std::fprintf(stderr, "csq_server_throughput: %s\n", e.what());
    return int(e.code());
  }
}
