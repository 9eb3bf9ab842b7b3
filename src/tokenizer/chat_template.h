// A model's chat template: found where transformers / llama.cpp look for it, rendered with
// the variables transformers' apply_chat_template passes (messages, tools, documents,
// add_generation_prompt, bos_token, eos_token, then any extra keyword arguments).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/template.h"
#include "tokenizer/tokenizer.h"

namespace csq {

struct ChatRenderOptions {
  nlohmann::ordered_json tools;             // null: no tools (the template sees tools = None)
  bool add_generation_prompt = true;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // e.g. {"enable_thinking": false}
  // Message content is untrusted text, never parsed for special tokens, unless this is set:
  // then the prompt is tokenized whole, exactly as Hugging Face's apply_chat_template does.
  bool parse_special_in_content = false;
};

// Where one untrusted string of the messages landed in a rendered prompt.
struct ContentSpan {
  size_t message = 0;   // index in the messages
  std::string field;    // "content", "content[2].text", "reasoning_content", "tool_calls[0].function.arguments"
  TextRange range;      // bytes of the rendered text
  size_t offset = 0;    // the byte of the original string at range.begin
};

// A rendered prompt that keeps the template's own text (trusted) apart from message content.
struct RenderedChat {
  std::string text;
  std::vector<ContentSpan> content;  // in text order, disjoint
  std::vector<TextRange> untrusted_ranges() const;
};

// The bos/eos token strings of a model (directory or .gguf); absent ones are nullopt.
struct SpecialTokens {
  std::optional<std::string> bos;
  std::optional<std::string> eos;
};
SpecialTokens load_special_tokens(const std::string& model_path);

class ChatTemplate {
 public:
  // From a model: a directory (chat_template.jinja, else tokenizer_config.json
  // "chat_template", a string or a list of {name, template} of which "default" is used)
  // or a .gguf file (tokenizer.chat_template). Also reads the bos/eos token strings.
  // Throws csq::Error (BadInput) naming the path and what is missing.
  static ChatTemplate from_model(const std::string& path);
  // From a template file (.jinja); no special tokens unless set_special_tokens is called.
  static ChatTemplate from_file(const std::string& path);

  ChatTemplate(const std::string& source, std::string origin);

  void set_special_tokens(SpecialTokens tokens) { tokens_ = std::move(tokens); }
  const SpecialTokens& special_tokens() const { return tokens_; }
  const std::string& source() const { return source_; }
  const std::string& origin() const { return origin_; }  // where the template came from

  // `messages`: a JSON array of objects with at least "role". Keys of `options.extra`
  // override the standard variables, as keyword arguments do in transformers.
  std::string render(const nlohmann::ordered_json& messages, const ChatRenderOptions& options = {}) const;

  // Renders with every untrusted string of the messages (content, text parts, reasoning_content,
  // string tool-call arguments) replaced by a marker that only this call knows, then puts each
  // string back verbatim where its marker landed and records the place. A template that only
  // places content gives exactly render()'s text; one that transforms it (Qwen3's splitting of
  // "</think>" out of assistant history, a startswith test) sees the marker instead, so the
  // content goes in unchanged: safety over parity, which parse_special_in_content restores.
  // Surrounding whitespace rides outside the marker, so `| trim` behaves as on the real text.
  // Throws csq::Error (BadInput) when the template cuts or escapes content (a marker comes out
  // broken), since its place could not be known.
  RenderedChat render_marked(const nlohmann::ordered_json& messages, const ChatRenderOptions& options = {}) const;

 private:
  std::string source_;
  std::string origin_;
  jinja::Template template_;
  SpecialTokens tokens_;
};

}  // namespace csq
