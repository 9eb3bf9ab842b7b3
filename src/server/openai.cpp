#include "server/openai.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <initializer_list>

#include "tokenizer/tokenizer.h"

namespace csq::server {
namespace {

using json = nlohmann::ordered_json;
using ojson = nlohmann::ordered_json;

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  ApiError e;
  e.status = 400;
  e.param = param;
  e.message = message;
  throw e;
}

const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* key, double lo, double hi) {
  const json* v = field(body, key);
  if (!v->is_number()) bad(key, std::string("'") + key + "' must be a number");
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) {
    char range[64];
    std::snprintf(range, sizeof range, "between %g and %g", lo, hi);
    bad(key, std::string("'") + key + "' must be " + range);
  }
  return x;
}

int64_t integer(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v->is_number_integer()) bad(key, std::string("'") + key + "' must be an integer");
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    bad(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return x;
}

bool boolean(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v->is_boolean()) bad(key, std::string("'") + key + "' must be true or false");
  return v->get<bool>();
}

// The fields both endpoints read. OpenAI's `user` (an end-user id for its abuse monitoring),
// `store` and `metadata` (whether and how OpenAI keeps the completion: nothing is kept here) and
// `service_tier` change no answer, so clients that send them by default are served and the
// fields are left (checked for their type only, see check_fields_without_effect).
constexpr std::string_view kCommonFields[] = {
    "model", "temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty",
    "seed", "max_tokens", "max_completion_tokens", "stop", "n", "stream", "stream_options", "ignore_eos", "logit_bias",
    "response_format", "user", "store", "metadata", "service_tier"};

void check_fields_without_effect(const json& body) {
  if (const json* v = field(body, "user"); v && !v->is_string()) bad("user", "'user' must be a string");
  if (field(body, "store")) boolean(body, "store");
  if (const json* v = field(body, "metadata"); v && !v->is_object()) bad("metadata", "'metadata' must be an object");
  if (const json* v = field(body, "service_tier"); v && !v->is_string()) bad("service_tier", "'service_tier' must be a string");
}

// A field the endpoint does not read is refused naming it, as OpenAI does: ignoring it would
// answer a different question (a misspelt max_tokens, a suffix, best_of) without a word.
void expect_known_fields(const json& body, std::initializer_list<std::string_view> own) {
  for (const auto& item : body.items()) {
    const std::string& key = item.key();
    const auto is_key = [&](std::string_view name) { return key == name; };
    if (std::none_of(std::begin(kCommonFields), std::end(kCommonFields), is_key) && std::none_of(own.begin(), own.end(), is_key))
      bad(key, "unknown field '" + key + "': this server does not support it");
  }
}

// Combinations that would drop what was asked for, refused as OpenAI refuses them.
void check_streaming(const json& body, const ApiRequest& r) {
  if (field(body, "stream_options") && !r.stream) bad("stream_options", "'stream_options' is only allowed with 'stream': true");
  if (r.stream && r.logprobs) bad("logprobs", "'logprobs' are not available with 'stream': true; ask without streaming");
}

// Fields shared by both endpoints.
void parse_common(const json& body, const ApiLimits& limits, ApiRequest& r) {
  if (!body.is_object()) bad("", "the request body must be a JSON object");
  check_fields_without_effect(body);
  if (const json* v = field(body, "model")) {
    if (!v->is_string()) bad("model", "'model' must be a string");
    r.model = v->get<std::string>();
  }
  if (field(body, "temperature")) r.sampling.temperature = float(number(body, "temperature", 0, 2));
  // top_p 0 (OpenAI's range is [0, 1]) keeps only the most likely token, as the smallest p does.
  if (field(body, "top_p")) r.sampling.top_p = std::max(float(number(body, "top_p", 0, 1)), std::numeric_limits<float>::min());
  if (field(body, "top_k")) {
    const int64_t k = integer(body, "top_k", -1, 1 << 20);
    r.sampling.top_k = k < 0 ? 0 : int32_t(k);  // vLLM uses -1 for "off"
  }
  if (field(body, "min_p")) r.sampling.min_p = float(number(body, "min_p", 0, 1));
  if (field(body, "presence_penalty")) r.sampling.presence_penalty = float(number(body, "presence_penalty", -2, 2));
  if (field(body, "frequency_penalty")) r.sampling.frequency_penalty = float(number(body, "frequency_penalty", -2, 2));
  if (field(body, "repetition_penalty")) r.sampling.repetition_penalty = float(number(body, "repetition_penalty", 0.01, 10));
  if (field(body, "seed")) {
    const json* v = field(body, "seed");
    if (!v->is_number_integer()) bad("seed", "'seed' must be an integer");
    r.sampling.seed = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
    r.seeded = true;
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (field(body, key)) r.max_tokens = integer(body, key, 0, limits.max_tokens_cap);
  if (const json* v = field(body, "stop")) {
    if (v->is_string()) {
      r.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (int32_t(v->size()) > limits.max_stop) bad("stop", "at most " + std::to_string(limits.max_stop) + " stop strings");
      for (const auto& s : *v) {
        if (!s.is_string()) bad("stop", "'stop' must be a string or an array of strings");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of strings");
    }
  }
  if (field(body, "n")) r.n = int32_t(integer(body, "n", 1, limits.max_n));
  if (field(body, "stream")) r.stream = boolean(body, "stream");
  if (field(body, "ignore_eos")) r.ignore_eos = boolean(body, "ignore_eos");
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (field(*v, "include_usage")) r.include_usage = boolean(*v, "include_usage");
  }
  if (const json* v = field(body, "logit_bias")) {
    if (!v->is_object()) bad("logit_bias", "'logit_bias' must map token ids to numbers");
    for (auto it = v->begin(); it != v->end(); ++it) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(it.key(), &used);
      } catch (const std::exception&) {
      }
      if (used != it.key().size() || id < 0 || id > INT32_MAX || !it.value().is_number())
        bad("logit_bias", "'logit_bias' key '" + it.key() + "' must be a token id with a numeric bias");
      const double bias = it.value().get<double>();
      if (!(bias >= -100 && bias <= 100)) bad("logit_bias", "logit_bias values must be between -100 and 100");
      r.sampling.logit_bias[int32_t(id)] = float(bias);
    }
  }
  if (const json* v = field(body, "response_format")) {
    if (!v->is_object() || !field(*v, "type") || !(*v)["type"].is_string())
      bad("response_format", "'response_format' must be an object with a 'type'");
    const std::string type = (*v)["type"].get<std::string>();
    if (type == "text") {
      r.format = ResponseFormat::Text;
    } else if (type == "json_object") {
      r.format = ResponseFormat::JsonObject;
    } else if (type == "json_schema") {
      const json* spec = field(*v, "json_schema");
      if (!spec || !spec->is_object() || !field(*spec, "schema") || !(*spec)["schema"].is_object())
        bad("response_format", "'response_format.json_schema.schema' must be a JSON Schema object");
      r.format = ResponseFormat::JsonSchema;
      r.json_schema = (*spec)["schema"];
    } else {
      bad("response_format", "response_format type '" + type + "' is not supported (text, json_object, json_schema)");
    }
  }
}

// Message content may be a string or an array of {"type": "text", "text": ...} parts.
std::string flatten_content(const json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return "";
  if (!content.is_array()) bad("messages", "messages[" + std::to_string(index) + "].content must be a string or an array of parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      bad("messages", "messages[" + std::to_string(index) + "]: only text content parts are supported");
    text += part["text"].get<std::string>();
  }
  return text;
}

// A function of `tools` or of a message's `tool_calls`, as OpenAI allows it: a name of 1 to 64
// of [A-Za-z0-9_-] and, for a call, arguments as JSON text. Names and object arguments are
// rendered outside the untrusted content ranges, where <|im_end|> would be the control token.
void check_function(const json& holder, const std::string& where, const char* param, bool call) {
  const json* fn = holder.is_object() ? field(holder, "function") : nullptr;
  if (!fn || !fn->is_object()) bad(param, where + " must be an object with a 'function' object");
  const json* name = field(*fn, "name");
  const std::string text = name && name->is_string() ? name->get<std::string>() : "";
  const auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; };
  if (text.empty() || text.size() > 64 || !std::all_of(text.begin(), text.end(), name_char))
    bad(param, where + ".function.name must be 1 to 64 of A-Z, a-z, 0-9, _ and -");
  if (const json* arguments = field(*fn, "arguments"); call && arguments && !arguments->is_string())
    bad(param, where + ".function.arguments must be a string (the arguments as JSON text, as OpenAI sends them)");
}

ojson logprob_entry(const Tokenizer& tok, int32_t id, float logprob) {
  const std::string_view bytes = id < tok.vocab_size() && tok.kind(id) != TokenKind::Absent ? tok.token_bytes(id) : "";
  ojson byte_list = ojson::array();
  for (unsigned char c : bytes) byte_list.push_back(int(c));
  return {{"token", std::string(bytes)}, {"logprob", logprob}, {"bytes", byte_list}};
}

}  // namespace

ojson ApiError::body() const {
  ojson err = {{"message", message}, {"type", type}};
  err["param"] = param.empty() ? ojson(nullptr) : ojson(param);
  err["code"] = code.empty() ? ojson(nullptr) : ojson(code);
  return {{"error", err}};
}

ojson parse_body(std::string_view text) {
  const auto limit_depth = [](int depth, ojson::parse_event_t, ojson&) {
    if (depth > kMaxJsonDepth) bad("", "the request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return true;
  };
  ojson body = ojson::parse(text, limit_depth, false);
  if (body.is_discarded()) bad("", "the request body is not valid JSON");
  return body;
}

void parse_sampling_fields(const json& body, const ApiLimits& limits, ApiRequest& into) { parse_common(body, limits, into); }

ApiRequest parse_chat_request(const json& body, const ApiLimits& limits) {
  ApiRequest r;
  r.chat = true;
  parse_common(body, limits, r);
  expect_known_fields(body,
                      {"messages", "tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs", "chat_template_kwargs"});
  if (const json* v = field(body, "tool_choice"); v && *v != "auto")
    bad("tool_choice", "only 'tool_choice': \"auto\" is supported (the model decides whether to call a tool)");
  // true is OpenAI's default (the model may call several tools at once); false asks for at most
  // one call, which the model is not held to here.
  if (field(body, "parallel_tool_calls") && !boolean(body, "parallel_tool_calls"))
    bad("parallel_tool_calls", "'parallel_tool_calls': false is not supported (the model may call several tools at once)");
  const json* messages = field(body, "messages");
  if (!messages || !messages->is_array() || messages->empty()) bad("messages", "'messages' must be a non-empty array");
  r.messages = ojson::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      bad("messages", "messages[" + std::to_string(i) + "] must be an object with a string 'role'");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer")
      bad("messages", "messages[" + std::to_string(i) + "].role '" + role + "' is not one of system, developer, user, assistant, tool");
    if (const json* calls = field(m, "tool_calls")) {
      if (!calls->is_array()) bad("messages", "messages[" + std::to_string(i) + "].tool_calls must be an array");
      for (size_t k = 0; k < calls->size(); ++k)
        check_function((*calls)[k], "messages[" + std::to_string(i) + "].tool_calls[" + std::to_string(k) + "]", "messages", true);
    }
    ojson out = m;  // every field the template may use, in order
    out["content"] = flatten_content(m.contains("content") ? m["content"] : json(), i);
    if (role == "developer") out["role"] = "system";
    r.messages.push_back(std::move(out));
  }
  if (const json* tools = field(body, "tools")) {
    if (!tools->is_array()) bad("tools", "'tools' must be an array");
    for (size_t k = 0; k < tools->size(); ++k) check_function((*tools)[k], "tools[" + std::to_string(k) + "]", "tools", false);
    r.tools = *tools;
  }
  if (field(body, "logprobs")) r.logprobs = boolean(body, "logprobs");
  if (field(body, "top_logprobs")) r.top_logprobs = int32_t(integer(body, "top_logprobs", 0, limits.max_top_logprobs));
  if (const json* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r.chat_template_kwargs = *kwargs;
  }
  if (r.top_logprobs > 0 && !r.logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  check_streaming(body, r);
  return r;
}

ApiRequest parse_completion_request(const json& body, const ApiLimits& limits) {
  ApiRequest r;
  r.chat = false;
  parse_common(body, limits, r);
  expect_known_fields(body, {"prompt", "logprobs", "echo"});
  const json* prompt = field(body, "prompt");
  if (!prompt) bad("prompt", "'prompt' is required");
  auto as_ids = [](const json& arr) {
    std::vector<int32_t> ids;
    for (const auto& v : arr) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
        bad("prompt", "token-id prompts must hold non-negative integers");
      ids.push_back(int32_t(v.get<int64_t>()));
    }
    return ids;
  };
  if (prompt->is_string()) {
    r.prompts.push_back(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
    r.prompt_ids.push_back(as_ids(*prompt));
  } else if (prompt->is_array() && !prompt->empty()) {
    for (const auto& p : *prompt) {
      if (p.is_string()) r.prompts.push_back(p.get<std::string>());
      else if (p.is_array()) r.prompt_ids.push_back(as_ids(p));
      else bad("prompt", "'prompt' must be a string, an array of strings, or token ids");
    }
    if (!r.prompts.empty() && !r.prompt_ids.empty()) bad("prompt", "do not mix text and token-id prompts");
  } else {
    bad("prompt", "'prompt' must be a non-empty string, array of strings, or token ids");
  }
  if (r.prompts.size() + r.prompt_ids.size() > size_t(limits.max_n)) bad("prompt", "too many prompts in one request");
  if (const json* v = field(body, "logprobs")) {
    if (!v->is_number_integer()) bad("logprobs", "'logprobs' must be an integer for completions");
    r.logprobs = true;
    r.top_logprobs = int32_t(integer(body, "logprobs", 0, limits.max_top_logprobs));
  }
  if (field(body, "echo")) r.echo = boolean(body, "echo");
  if (r.echo && r.logprobs)
    bad("echo", "'echo' with 'logprobs' asks for the prompt's logprobs too, and the prompt's logprobs are not computed here");
  check_streaming(body, r);
  return r;
}

const char* api_finish_reason(const GenerationResult& result) {
  return result.finish == FinishReason::Stop ? "stop" : "length";
}

ojson usage_json(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", cached_tokens}}}};
}

ojson chat_response(const std::string& id, int64_t created, const std::string& model, const std::vector<Choice>& choices,
                    const Tokenizer& tokenizer, bool logprobs, const ojson& usage) {
  ojson out = {{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model}};
  ojson list = ojson::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const GenerationResult& r = choices[i].result;
    ojson message = {{"role", "assistant"}, {"content", r.content}};
    if (!r.reasoning.empty()) message["reasoning_content"] = r.reasoning;
    ojson choice = {{"index", i}, {"message", message}};
    if (logprobs) {
      ojson content = ojson::array();
      for (const TokenLogprob& lp : r.logprobs) {
        ojson entry = logprob_entry(tokenizer, lp.id, lp.logprob);
        entry["top_logprobs"] = ojson::array();
        for (const auto& [alt, alt_lp] : lp.top) entry["top_logprobs"].push_back(logprob_entry(tokenizer, alt, alt_lp));
        content.push_back(entry);
      }
      choice["logprobs"] = {{"content", content}};
    } else {
      choice["logprobs"] = nullptr;
    }
    choice["finish_reason"] = api_finish_reason(r);
    list.push_back(choice);
  }
  out["choices"] = list;
  out["usage"] = usage;
  return out;
}

ojson completion_response(const std::string& id, int64_t created, const std::string& model,
                          const std::vector<Choice>& choices, const Tokenizer& tokenizer, bool logprobs, const ojson& usage) {
  ojson out = {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model}};
  ojson list = ojson::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const GenerationResult& r = choices[i].result;
    ojson choice = {{"index", i}, {"text", choices[i].text_prefix + r.content}};
    if (logprobs) {
      ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array();
      for (const TokenLogprob& lp : r.logprobs) {
        tokens.push_back(logprob_entry(tokenizer, lp.id, 0)["token"]);
        token_logprobs.push_back(lp.logprob);
        ojson alternatives = ojson::object();
        for (const auto& [alt, alt_lp] : lp.top) alternatives[logprob_entry(tokenizer, alt, 0)["token"].get<std::string>()] = alt_lp;
        top.push_back(alternatives);
      }
      choice["logprobs"] = {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}};
    } else {
      choice["logprobs"] = nullptr;
    }
    choice["finish_reason"] = api_finish_reason(r);
    list.push_back(choice);
  }
  out["choices"] = list;
  out["usage"] = usage;
  return out;
}

ojson chat_chunk(const std::string& id, int64_t created, const std::string& model, int32_t index,
                 const std::string* content, const std::string* reasoning, const char* finish_reason, bool first) {
  ojson delta = ojson::object();
  if (first) delta["role"] = "assistant";
  if (content) delta["content"] = *content;
  if (reasoning) delta["reasoning_content"] = *reasoning;
  ojson choice = {{"index", index}, {"delta", delta}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason ? ojson(finish_reason) : ojson(nullptr);
  return {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
          {"choices", ojson::array({choice})}};
}

ojson completion_chunk(const std::string& id, int64_t created, const std::string& model, int32_t index,
                       const std::string& text, const char* finish_reason) {
  ojson choice = {{"index", index}, {"text", text}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason ? ojson(finish_reason) : ojson(nullptr);
  return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model},
          {"choices", ojson::array({choice})}};
}

std::string dump(const ojson& value) { return value.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string sse(const ojson& event) { return "data: " + dump(event) + "\n\n"; }

}  // namespace csq::server
