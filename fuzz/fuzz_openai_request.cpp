// The OpenAI request parsers (src/server/openai.h) on arbitrary bodies, as chat and as
// completions: each body is accepted or refused with a 400 ApiError naming the problem; nothing
// else escapes, and what is accepted keeps the promises the handler relies on.
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "server/openai.h"

namespace {

using namespace csq::server;

void check(bool promise) {
  if (!promise) std::abort();
}

void check_accepted(const ApiRequest& r, const ApiLimits& limits) {
  check(r.n >= 1 && r.n <= limits.max_n);
  check(!r.max_tokens || (*r.max_tokens >= 0 && *r.max_tokens <= limits.max_tokens_cap));
  check(r.stop.size() <= size_t(limits.max_stop));
  check(r.top_logprobs >= 0 && r.top_logprobs <= limits.max_top_logprobs);
  if (r.chat) {
    check(r.messages.is_array() && !r.messages.empty());
    for (const auto& m : r.messages) check(m.at("role").is_string() && m.at("content").is_string());
  } else {
    const size_t prompts = r.prompts.size() + r.prompt_ids.size();
    check(prompts >= 1 && prompts <= size_t(limits.max_n));
    check(r.prompts.empty() || r.prompt_ids.empty());
    for (const auto& ids : r.prompt_ids)
      for (int32_t id : ids) check(id >= 0);
  }
  try {
    r.sampling.validate(151936);  // the scheduler's check, with the Qwen3 vocabulary
  } catch (const csq::Error&) {
  }
  // Echoing accepted text back must never throw, whatever bytes it holds.
  const std::string text = r.chat ? r.messages.back()["content"].get<std::string>()
                                  : (r.prompts.empty() ? std::string() : r.prompts[0]);
  (void)sse(chat_chunk("id", 0, r.model, 0, &text, nullptr, nullptr, true));
  (void)sse(completion_chunk("id", 0, r.model, 0, text, "stop"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ApiLimits limits;
  nlohmann::ordered_json body;
  try {
    body = parse_body(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const ApiError& e) {
    check(e.status == 400 && !e.message.empty());
    return 0;
  }
  for (const bool chat : {true, false}) {
    try {
      check_accepted(chat ? parse_chat_request(body, limits) : parse_completion_request(body, limits), limits);
    } catch (const ApiError& e) {
      check(e.status == 400 && !e.message.empty());
      (void)dump(e.body());
    }
  }
  return 0;
}
