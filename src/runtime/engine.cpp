#include "runtime/engine.h"

#include <algorithm>

#include "base/error.h"

namespace csq {

Engine load_engine(const std::string& model_path, const std::string& template_file,
                   const std::vector<std::string>& lora_specs, const std::string& tokenizer_path,
                   io::FileMemory memory) {
  std::unique_ptr<Model> model = Model::load(model_path, memory);
  model->set_adapters(load_lora_specs(lora_specs, model->config()));
  const std::string& vocab = tokenizer_path.empty() ? model_path : tokenizer_path;
  Engine e{std::move(model), load_tokenizer(vocab), std::nullopt, {}};
  if (e.tokenizer.vocab_size() > e.model->config().vocab_size)
    fail_input(vocab + ": the tokenizer has " + std::to_string(e.tokenizer.vocab_size()) + " tokens but the model " +
               model_path + " has only " + std::to_string(e.model->config().vocab_size));
  if (!template_file.empty()) {
    e.chat_template = ChatTemplate::from_file(template_file);
    e.chat_template->set_special_tokens(load_special_tokens(vocab));
  } else {
    try {
      e.chat_template = ChatTemplate::from_model(vocab);
    } catch (const Error&) {
      e.chat_template.reset();  // raw completion still works; chat commands report the absence
    }
  }
  e.eos_ids = e.model->config().eos_ids;
  auto add = [&](std::optional<int32_t> id) {
    if (id && std::find(e.eos_ids.begin(), e.eos_ids.end(), *id) == e.eos_ids.end()) e.eos_ids.push_back(*id);
  };
  add(e.tokenizer.eos_id());
  // The end-of-turn marker the template writes after each assistant message.
  if (e.chat_template)
    for (const char* marker : {"<|im_end|>", "<|eot_id|>", "<|end|>"})
      if (e.chat_template->source().find(marker) != std::string::npos) add(e.tokenizer.find_token(marker));
  return e;
}

std::string Engine::render(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const {
  if (!chat_template)
    fail_input("this model has no chat template; pass --template FILE or use `csq complete` for raw text");
  return chat_template->render(messages, options);
}

std::vector<int32_t> Engine::encode_chat(const std::string& rendered) const { return tokenizer.encode(rendered, true); }

std::vector<int32_t> Engine::encode_raw(const std::string& text) const {
  std::vector<int32_t> ids;
  if (tokenizer.add_bos() && tokenizer.bos_id()) ids.push_back(*tokenizer.bos_id());
  tokenizer.encode_append(text, ids, true);
  return ids;
}

ChatPrompt Engine::encode_messages(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const {
  if (!chat_template)
    fail_input("this model has no chat template; pass --template FILE or use `csq complete` for raw text");
  ChatPrompt p;
  if (options.parse_special_in_content) {
    p.text = chat_template->render(messages, options);
    p.ids = tokenizer.encode_guarded(p.text, {}, &p.token_text);
  } else {
    RenderedChat r = chat_template->render_marked(messages, options);
    p.ids = tokenizer.encode_guarded(r.text, r.untrusted_ranges(), &p.token_text);
    p.text = std::move(r.text);
    p.content = std::move(r.content);
  }
  // Read from the ids, not the text: a "<think>" written in content is plain text, not the token.
  const auto open = tokenizer.find_token("<think>");
  const auto close = tokenizer.find_token("</think>");
  if (open) {
    for (auto it = p.ids.rbegin(); it != p.ids.rend(); ++it) {
      if (close && *it == *close) break;
      if (*it == *open) {
        p.reasoning_open = true;
        break;
      }
    }
  }
  return p;
}

std::pair<size_t, size_t> ChatPrompt::tokens_of(TextRange range) const {
  size_t first = token_text.size();
  size_t last = 0;
  for (size_t i = 0; i < token_text.size(); ++i) {
    const TextRange& t = token_text[i];
    const bool overlaps = t.begin < range.end && range.begin < t.end;
    if (!overlaps) continue;
    first = std::min(first, i);
    last = i + 1;
  }
  return first < last ? std::make_pair(first, last) : std::make_pair(size_t(0), size_t(0));
}

}  // namespace csq
