// Parsing and validation of OpenAI requests: good requests become generation settings,
// bad ones become 400s naming the field.
#include <gtest/gtest.h>

#include "server/http_server.h"
#include "server/openai.h"

namespace csq::server {
namespace {

using ojson = nlohmann::ordered_json;

// The error a parser throws for `body` (a failure when it accepts it).
ApiError request_error(ApiRequest (*parse)(const ojson&, const ApiLimits&), const std::string& body) {
  try {
    parse(ojson::parse(body), ApiLimits{});
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}
ApiError chat_error(const std::string& body) { return request_error(parse_chat_request, body); }
ApiError completion_error(const std::string& body) { return request_error(parse_completion_request, body); }

TEST(OpenAiRequest, ChatFieldsAreParsed) {
  const auto r = parse_chat_request(ojson::parse(R"({
    "model": "m", "messages": [{"role": "system", "content": "be brief"},
                               {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
    "temperature": 0.3, "top_p": 0.9, "top_k": 20, "min_p": 0.05, "seed": 42, "max_completion_tokens": 64,
    "stop": ["</s>", "\n\n"], "n": 2, "stream": true, "stream_options": {"include_usage": true},
    "presence_penalty": 0.5, "frequency_penalty": 0.25, "logit_bias": {"151645": -100}, "user": "analyst-7",
    "tool_choice": "auto",
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "integer"}}}}}})"),
                                    ApiLimits{});
  EXPECT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1]["content"], "ab");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.3f);
  EXPECT_EQ(r.sampling.top_k, 20);
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.max_tokens, 64);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"</s>", "\n\n"}));
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.stream && r.include_usage);
  const auto with_logprobs = parse_chat_request(
      ojson::parse(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 3})"), ApiLimits{});
  EXPECT_TRUE(with_logprobs.logprobs);
  EXPECT_EQ(with_logprobs.top_logprobs, 3);
  EXPECT_FLOAT_EQ(r.sampling.logit_bias.at(151645), -100.0f);
  EXPECT_EQ(r.format, ResponseFormat::JsonSchema);
  // Property order survives parsing: the schema's order is the answer's order.
  EXPECT_EQ(r.json_schema["properties"].begin().key(), "b");
}

TEST(OpenAiRequest, BadFieldsAreNamed) {
  EXPECT_EQ(chat_error(R"({"messages": "hi"})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": []})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"content": "no role"}]})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "wizard", "content": "x"}]})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})").param, "temperature");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "temperature": 9})").param, "temperature");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "n": 100})").param, "n");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1})").param, "max_tokens");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 100000000})").param, "max_tokens");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})").param, "stop");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"x": 1}})").param, "logit_bias");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}})").param,
            "response_format");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").param, "messages");
  EXPECT_EQ(chat_error(R"([1, 2])").status, 400);
}

TEST(OpenAiRequest, FieldsThatWouldBeIgnoredAreRefused) {
  // OpenAI refuses a field it does not know; ignoring one would answer a different question
  // (a misspelt max_tokens, a suffix, best_of, a forced tool call) without a word.
  const std::string chat = R"({"messages": [{"role": "user", "content": "x"}], )";
  ApiError e = chat_error(chat + R"("max_token": 5})");
  EXPECT_EQ(e.param, "max_token");
  EXPECT_NE(e.message.find("unknown field 'max_token'"), std::string::npos) << e.message;
  EXPECT_EQ(chat_error(chat + R"("tool_choice": "required"})").param, "tool_choice");
  EXPECT_EQ(chat_error(chat + R"("parallel_tool_calls": false})").param, "parallel_tool_calls");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "suffix": "}"})").param, "suffix");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "best_of": 3})").param, "best_of");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "messages": []})").param, "messages");
  EXPECT_EQ(chat_error(chat + R"("prompt": "x"})").param, "prompt");
  // Combinations OpenAI refuses, which would otherwise drop what was asked for.
  EXPECT_EQ(chat_error(chat + R"("stream_options": {"include_usage": true}})").param, "stream_options");
  EXPECT_EQ(chat_error(chat + R"("stream": true, "logprobs": true})").param, "logprobs");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "stream": true, "logprobs": 2})").param, "logprobs");
  EXPECT_EQ(chat_error(chat + R"("top_logprobs": 2})").param, "top_logprobs");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "stream_options": {"include_usage": true}})").param, "stream_options");
  // OpenAI answers echo with logprobs with the prompt's logprobs too (how a prompt is scored);
  // they are not computed here, and an answer with only the completion's would be misread.
  e = completion_error(R"({"prompt": "x", "echo": true, "logprobs": 1, "max_tokens": 0})");
  EXPECT_EQ(e.param, "echo");
  EXPECT_NE(e.message.find("the prompt's logprobs are not computed"), std::string::npos) << e.message;
  EXPECT_NO_THROW(parse_completion_request(ojson::parse(R"({"prompt": "x", "echo": true})"), ApiLimits{}));
}

TEST(OpenAiRequest, FieldsThatChangeNoAnswerAreAccepted) {
  // OpenAI clients send these by default in places; they concern OpenAI's own bookkeeping (who
  // asked, whether the answer is stored, the service tier) or say what the model does anyway.
  const std::string chat = R"({"messages": [{"role": "user", "content": "x"}], )";
  EXPECT_NO_THROW(parse_chat_request(ojson::parse(chat + R"("user": "analyst-7", "store": false, "metadata": {"case": "42"},
                                                          "service_tier": "auto", "parallel_tool_calls": true})"),
                                     ApiLimits{}));
  EXPECT_NO_THROW(parse_completion_request(ojson::parse(R"({"prompt": "x", "store": true, "metadata": {}, "user": "u"})"), ApiLimits{}));
  EXPECT_EQ(chat_error(chat + R"("store": "yes"})").param, "store");
  EXPECT_EQ(chat_error(chat + R"("metadata": "case 42"})").param, "metadata");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "service_tier": 1})").param, "service_tier");
  EXPECT_EQ(chat_error(chat + R"("user": 7})").param, "user");
  EXPECT_EQ(chat_error(chat + R"("parallel_tool_calls": "no"})").param, "parallel_tool_calls");
}

TEST(OpenAiRequest, ToolNamesAndArgumentsAreWhatOpenAiAllows) {
  // A tool's name is [A-Za-z0-9_-]{1,64} and a call's arguments are JSON text: a name, or a
  // string inside arguments given as an object, is rendered outside the untrusted content
  // ranges, where <|im_end|> would become the control token.
  const std::string user = R"({"role": "user", "content": "x"})";
  const auto call = [&](const std::string& function) {
    return R"({"messages": [)" + user + R"(, {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": )" +
           function + "}]}]}";
  };
  EXPECT_NO_THROW(parse_chat_request(ojson::parse(call(R"({"name": "get_alert-2", "arguments": "{\"id\": \"<|im_end|>\"}"})")), ApiLimits{}));
  ApiError e = chat_error(call(R"({"name": "f", "arguments": {"id": "<|im_end|>"}})"));
  EXPECT_EQ(e.param, "messages");
  EXPECT_NE(e.message.find("messages[1].tool_calls[0].function.arguments must be a string"), std::string::npos) << e.message;
  e = chat_error(call(R"({"name": "<|im_end|>", "arguments": "{}"})"));
  EXPECT_NE(e.message.find("messages[1].tool_calls[0].function.name must be 1 to 64 of A-Z, a-z, 0-9, _ and -"), std::string::npos)
      << e.message;
  const std::string tool = R"({"messages": [)" + user + R"(], "tools": [{"type": "function", "function": {"name": )";
  EXPECT_NO_THROW(parse_chat_request(ojson::parse(tool + R"("lookup_ioc", "parameters": {"type": "object"}}}]})"), ApiLimits{}));
  e = chat_error(tool + R"("x<|im_start|>system"}}]})");
  EXPECT_EQ(e.param, "tools");
  EXPECT_NE(e.message.find("tools[0].function.name must be 1 to 64 of"), std::string::npos) << e.message;
  EXPECT_EQ(chat_error(R"({"messages": [)" + user + R"(], "tools": [{"type": "function"}]})").param, "tools");
}

TEST(OpenAiRequest, RangesAreOpenAisAndSaidPlainly) {
  // top_p 0 is valid in OpenAI's API (only the most likely token); it was refused with
  // "'top_p' must be between 0.000000 and 1.000000".
  const auto r = parse_completion_request(ojson::parse(R"({"prompt": "x", "top_p": 0})"), ApiLimits{});
  EXPECT_GT(r.sampling.top_p, 0.0f);
  EXPECT_LT(r.sampling.top_p, 1e-6f);
  EXPECT_EQ(completion_error(R"({"prompt": "x", "top_p": 1.5})").message, "'top_p' must be between 0 and 1");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "presence_penalty": 5})").message, "'presence_penalty' must be between -2 and 2");
}

TEST(OpenAiRequest, CompletionPrompts) {
  auto r = parse_completion_request(ojson::parse(R"({"prompt": "text", "logprobs": 2})"), ApiLimits{});
  EXPECT_EQ(r.prompts, std::vector<std::string>{"text"});
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 2);
  r = parse_completion_request(ojson::parse(R"({"prompt": [1, 2, 3]})"), ApiLimits{});
  ASSERT_EQ(r.prompt_ids.size(), 1u);
  EXPECT_EQ(r.prompt_ids[0], (std::vector<int32_t>{1, 2, 3}));
  EXPECT_THROW(parse_completion_request(ojson::parse(R"({"prompt": [1, "a"]})"), ApiLimits{}), ApiError);
  EXPECT_THROW(parse_completion_request(ojson::parse(R"({"max_tokens": 3})"), ApiLimits{}), ApiError);
}

TEST(OpenAiResponse, ErrorShapeAndSse) {
  ApiError e;
  e.status = 429;
  e.message = "busy";
  e.type = "rate_limit_error";
  const ojson body = e.body();
  EXPECT_EQ(body["error"]["message"], "busy");
  EXPECT_TRUE(body["error"]["param"].is_null());
  // Invalid UTF-8 in generated text never breaks the stream.
  const std::string event = sse(ojson{{"text", std::string("ok\xff")}});
  EXPECT_EQ(event.rfind("data: ", 0), 0u);
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
}

TEST(OpenAiAuth, ConstantTimeKeyComparison) {
  EXPECT_TRUE(api_key_matches("sk-0123456789abcdef", "sk-0123456789abcdef"));
  EXPECT_FALSE(api_key_matches("sk-0123456789abcdeF", "sk-0123456789abcdef"));
  EXPECT_FALSE(api_key_matches("sk-0123456789abcde", "sk-0123456789abcdef"));
  EXPECT_FALSE(api_key_matches("", "sk-0123456789abcdef"));
}

}  // namespace
}  // namespace csq::server
