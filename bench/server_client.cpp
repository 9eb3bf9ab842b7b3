#include "server_client.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>

#include <CLI/CLI.hpp>

#include "base/error.h"

namespace csq::bench {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

void add_target_options(CLI::App& app, ServerTarget& target, bool url) {
  if (url) app.add_option("--url", target.url, "A running server (http://HOST:PORT)");
  app.add_option("--model,-m", target.model, url ? "Start csq serve on this model instead" : "Model to serve (HF directory or .gguf)");
  app.add_option("--tokenizer", target.tokenizer, "Tokenizer and template for the served model (csq serve --tokenizer)");
  app.add_option("--csq", target.csq, "The csq program to start")->capture_default_str();
  app.add_option("--threads", target.threads, "Compute threads of the server")->capture_default_str();
}

Server::Server(const ServerTarget& target) {
  if (!target.url.empty()) {
    url_ = target.url;
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    if (url_.ends_with("/v1")) url_.resize(url_.size() - 3);
    return;
  }
  if (target.model.empty()) fail_usage("give --url of a running server or --model to start one");
  std::vector<std::string> args = {"--model", target.model, "--threads", std::to_string(target.threads)};
  if (!target.tokenizer.empty()) args.insert(args.end(), {"--tokenizer", target.tokenizer});
  args.insert(args.end(), target.serve_args.begin(), target.serve_args.end());
  process_ = std::make_unique<server::ServeProcess>(target.csq, args);
  url_ = process_->wait_listening(std::chrono::minutes(10));
}

double Server::peak_rss_mib() const { return process_ ? double(process_->peak_rss_kib()) / 1024.0 : -1; }

void Server::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  const auto status = process_->wait_exit(std::chrono::minutes(1));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
    fail_runtime("csq serve did not stop cleanly on SIGTERM; its log ends:\n" +
                 process_->log().substr(process_->log().size() > 2000 ? process_->log().size() - 2000 : 0));
}

std::unique_ptr<httplib::Client> connect(const std::string& url) {
  auto client = std::make_unique<httplib::Client>(url);
  client->set_keep_alive(true);  // as the OpenAI SDKs do
  client->set_connection_timeout(30, 0);
  client->set_read_timeout(3600, 0);  // a 4B model on two threads is slow; the server has its own timeout
  client->set_write_timeout(60, 0);
  return client;
}

namespace {

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

void read_usage(const json& usage, Reply& reply) {
  if (!usage.is_object()) return;
  reply.prompt_tokens = usage.value("prompt_tokens", int64_t(0));
  reply.completion_tokens = usage.value("completion_tokens", int64_t(0));
  if (usage.contains("prompt_tokens_details") && usage["prompt_tokens_details"].is_object())
    reply.cached_tokens = usage["prompt_tokens_details"].value("cached_tokens", int64_t(0));
}

// The text a choice carries: a streamed delta (content or reasoning), a message, or completion text.
std::string choice_text(const json& choice) {
  std::string text;
  for (const char* holder : {"delta", "message"})
    if (choice.contains(holder) && choice[holder].is_object())
      for (const char* key : {"reasoning_content", "content"})
        if (choice[holder].contains(key) && choice[holder][key].is_string()) text += choice[holder][key].get<std::string>();
  if (choice.contains("text") && choice["text"].is_string()) text += choice["text"].get<std::string>();
  return text;
}

void check_whole(const std::string& body, Reply& reply) {
  const json answer = json::parse(body, nullptr, false);
  if (answer.is_discarded() || !answer.contains("choices") || !answer["choices"].is_array() || answer["choices"].empty()) {
    reply.error = "the answer is not a completion object: " + body.substr(0, 200);
    return;
  }
  for (const json& choice : answer["choices"])
    if (!choice.contains("finish_reason") || !choice["finish_reason"].is_string()) reply.error = "a choice has no finish_reason";
  reply.text = choice_text(answer["choices"][0]);
  read_usage(answer.value("usage", json()), reply);
}

}  // namespace

Reply send(httplib::Client& client, const std::string& path, const json& body) {
  Reply reply;
  const bool stream = body.value("stream", false);
  const auto start = Clock::now();
  httplib::Request request;
  request.method = "POST";
  request.path = path;
  request.set_header("Content-Type", "application/json");
  request.body = body.dump();

  std::string whole, pending;
  bool done = false, finished = false;
  if (stream) {
    // Server-sent events: "data: {json}\n\n" chunks, then "data: [DONE]\n\n".
    request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
      pending.append(data, size);
      for (size_t end; (end = pending.find("\n\n")) != std::string::npos; pending.erase(0, end + 2)) {
        const std::string event = pending.substr(0, end);
        if (!event.starts_with("data: ")) continue;
        const std::string payload = event.substr(6);
        if (payload == "[DONE]") {
          done = true;
          continue;
        }
        const json chunk = json::parse(payload, nullptr, false);
        if (chunk.is_discarded() || !chunk.contains("choices")) {
          reply.error = "a malformed event: " + payload.substr(0, 200);
          return false;
        }
        if (chunk.contains("error")) reply.error = "an error event: " + payload.substr(0, 200);
        read_usage(chunk.value("usage", json()), reply);
        for (const json& choice : chunk["choices"]) {
          const std::string text = choice_text(choice);
          const bool finish = choice.contains("finish_reason") && choice["finish_reason"].is_string();
          if ((!text.empty() || finish) && reply.first_token_ms < 0) reply.first_token_ms = ms_since(start);
          if (choice.value("index", 0) == 0) reply.text += text;
          finished = finished || finish;
        }
      }
      return true;
    };
  } else {
    request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
      whole.append(data, size);
      return true;
    };
  }
  const httplib::Result result = client.send(request);
  reply.total_ms = ms_since(start);
  if (!result) {
    reply.error = "no answer: " + httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  if (reply.status != 200) {
    reply.error = "HTTP " + std::to_string(reply.status) + ": " + (stream ? pending : whole).substr(0, 200);
    return reply;
  }
  if (!reply.error.empty()) return reply;
  if (stream) {
    if (!done) reply.error = "the stream did not end with [DONE]";
    else if (!finished) reply.error = "the stream carried no finish_reason";
  } else {
    check_whole(whole, reply);
  }
  return reply;
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = size_t(std::ceil(fraction * double(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

}  // namespace csq::bench
