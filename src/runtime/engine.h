// Everything needed to chat with a model, loaded from one path: weights, tokenizer, chat
// template and the full set of end-of-generation ids.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace csq {

// A chat prompt ready for the model, with the places of its untrusted text.
struct ChatPrompt {
  std::string text;                   // the rendered prompt
  std::vector<int32_t> ids;
  std::vector<TextRange> token_text;  // per id, the bytes of `text` it came from
  std::vector<ContentSpan> content;   // where message content landed (empty when parsed as trusted)
  bool reasoning_open = false;        // the prompt ends inside an open <think> block

  // The tokens [first, second) whose text overlaps `range` of `text`.
  std::pair<size_t, size_t> tokens_of(TextRange range) const;
};

struct Engine {
  std::unique_ptr<Model> model;
  Tokenizer tokenizer;
  std::optional<ChatTemplate> chat_template;  // absent: only raw completion is possible
  std::vector<int32_t> eos_ids;  // config + generation_config + tokenizer eos + the template's end-of-turn token

  // Renders `messages` with the model's template (or `override_template`), add_generation_prompt on.
  std::string render(const nlohmann::ordered_json& messages, const ChatRenderOptions& options = {}) const;
  // Tokenizes a rendered chat prompt whole: special-token text becomes special ids, no BOS is
  // added (the template writes it when the model wants one), as apply_chat_template(tokenize=True)
  // does. For trusted text only (training data); chat requests go through encode_messages.
  std::vector<int32_t> encode_chat(const std::string& rendered) const;
  // Renders and tokenizes a chat request with its message content kept untrusted
  // (ChatTemplate::render_marked, Tokenizer::encode_guarded): no control or added token id comes
  // out of content, unless options.parse_special_in_content asks for Hugging Face's exact way.
  ChatPrompt encode_messages(const nlohmann::ordered_json& messages, const ChatRenderOptions& options = {}) const;
  // Tokenizes raw text for completion: BOS first when the tokenizer asks for it.
  std::vector<int32_t> encode_raw(const std::string& text) const;
};

// `template_file`: use this Jinja file instead of the model's own template (may be empty).
// `lora_specs`: LoRA adapters applied at run time, each "PATH" or "PATH:STRENGTH".
// `tokenizer_path`: take the tokenizer and template from this model directory or file instead
// of `model_path` (may be empty), e.g. for a synthetic GGUF with real shapes but no vocabulary.
// `memory`: see Model::load. Throws csq::Error naming what is missing (e.g. a GGUF without a
// usable tokenizer).
Engine load_engine(const std::string& model_path, const std::string& template_file = "",
                   const std::vector<std::string>& lora_specs = {}, const std::string& tokenizer_path = "",
                   io::FileMemory memory = io::FileMemory::Loaded);

}  // namespace csq
