#include "tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "io/gguf.h"

namespace csq {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail_input(path + ": read error");
  return ss.str();
}

// bos_token / eos_token in tokenizer_config.json: a string, an AddedToken {"content": ...} or null.
std::optional<std::string> token_string(const ojson& config, const char* key, const std::string& path) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail_input(path + ": '" + key + "' must be a string or an object with a string \"content\"");
}

std::optional<std::string> gguf_token(const io::GgufFile& gguf, const char* id_key) {
  const auto id = gguf.get_int_opt(id_key);
  if (!id) return std::nullopt;
  if (!gguf.find("tokenizer.ggml.tokens"))
    fail_input(gguf.path() + ": '" + id_key + "' is set but 'tokenizer.ggml.tokens' is missing");
  const std::vector<std::string_view> tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  if (*id < 0 || size_t(*id) >= tokens.size())
    fail_input(gguf.path() + ": '" + id_key + "' = " + std::to_string(*id) + " is outside the vocabulary of " +
               std::to_string(tokens.size()) + " tokens");
  return std::string(tokens[size_t(*id)]);
}

SpecialTokens gguf_special_tokens(const io::GgufFile& gguf) {
  return {gguf_token(gguf, "tokenizer.ggml.bos_token_id"), gguf_token(gguf, "tokenizer.ggml.eos_token_id")};
}

// tokenizer_config.json of a model directory; an empty object when the file is absent.
ojson read_tokenizer_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "tokenizer_config.json").string();
  if (!fs::exists(path)) return ojson::object();
  ojson config;
  try {
    config = ojson::parse(read_file(path));
  } catch (const ojson::parse_error& e) {
    fail_input(path + ": invalid JSON: " + e.what());
  }
  if (!config.is_object()) fail_input(path + ": expected a JSON object");
  return config;
}

SpecialTokens config_special_tokens(const ojson& config, const std::string& dir) {
  const std::string path = (fs::path(dir) / "tokenizer_config.json").string();
  return {token_string(config, "bos_token", path), token_string(config, "eos_token", path)};
}

ChatTemplate from_gguf(const std::string& path) {
  const io::GgufFile gguf(path);
  const auto source = gguf.get_string_opt("tokenizer.chat_template");
  if (!source) fail_input(path + ": no chat template (metadata 'tokenizer.chat_template' is missing)");
  ChatTemplate t(*source, path + ":tokenizer.chat_template");
  t.set_special_tokens(gguf_special_tokens(gguf));
  return t;
}

ChatTemplate from_directory(const std::string& dir) {
  const ojson config = read_tokenizer_config(dir);
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  // transformers (4.43+) prefers a separate chat_template.jinja over the config entry.
  const fs::path jinja_path = fs::path(dir) / "chat_template.jinja";
  std::optional<ChatTemplate> t;
  if (fs::exists(jinja_path)) {
    t.emplace(read_file(jinja_path.string()), jinja_path.string());
  } else {
    const auto it = config.find("chat_template");
    if (it == config.end() || it->is_null())
      fail_input(dir + ": no chat template (neither chat_template.jinja nor \"chat_template\" in tokenizer_config.json)");
    const std::string origin = config_path + ":chat_template";
    if (it->is_string()) {
      t.emplace(it->get<std::string>(), origin);
    } else if (it->is_array()) {
      std::string names;
      for (const auto& entry : *it) {
        if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
            !entry.contains("template") || !entry["template"].is_string())
          fail_input(origin + ": each entry must be {\"name\": string, \"template\": string}");
        const std::string name = entry["name"].get<std::string>();
        if (name == "default") {
          t.emplace(entry["template"].get<std::string>(), origin + "[default]");
          break;
        }
        names += (names.empty() ? "" : ", ") + name;
      }
      if (!t) fail_input(origin + ": several templates (" + names + ") and none is named \"default\"");
    } else {
      fail_input(origin + ": expected a string or a list of {name, template}");
    }
  }
  t->set_special_tokens(config_special_tokens(config, dir));
  return std::move(*t);
}

bool is_gguf_path(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && fs::path(path).extension() == ".gguf";
}

void require_model_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec) || is_gguf_path(path)) return;
  if (fs::exists(path, ec))
    fail_input(path + ": expected a model directory or a .gguf file (use --template for a template file)");
  fail_input(path + ": no such model directory or file");
}

// A marker is "<open><index><close>", open and close two private-use characters that appear
// nowhere in the messages, the options or the template (so no input can forge or hide one);
// digits only inside, so case filters leave a marker intact.
struct MarkChars {
  std::string open, close;
};

MarkChars pick_mark_chars(const std::string& haystack) {
  for (uint32_t cp = 0xE000; cp < 0xF8FF; cp += 2) {
    auto utf8 = [](uint32_t c) {
      return std::string{char(0xE0 | (c >> 12)), char(0x80 | ((c >> 6) & 0x3F)), char(0x80 | (c & 0x3F))};
    };
    MarkChars m{utf8(cp), utf8(cp + 1)};
    if (haystack.find(m.open) == std::string::npos && haystack.find(m.close) == std::string::npos) return m;
  }
  fail_input("chat messages: every private-use character pair is taken; cannot mark the content");
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// The untrusted strings of the messages, each swapped for its marker in `marked`.
struct Marked {
  ojson messages;
  MarkChars chars;
  struct Entry {
    size_t message;
    std::string field;
    std::string lead;  // leading whitespace, kept outside the marker
    std::string core;
    std::string trail;
  };
  std::vector<Entry> entries;

  void mark(ojson& value, size_t message, std::string field) {
    if (!value.is_string()) return;
    const std::string s = value.get<std::string>();
    size_t lead = 0;
    while (lead < s.size() && is_space(s[lead])) ++lead;
    size_t trail = 0;
    while (trail < s.size() - lead && is_space(s[s.size() - 1 - trail])) ++trail;
    if (lead == s.size()) return;  // empty or whitespace only: nothing a marker needs to find
    value = s.substr(0, lead) + chars.open + std::to_string(entries.size()) + chars.close + s.substr(s.size() - trail);
    entries.push_back({message, std::move(field), s.substr(0, lead), s.substr(lead, s.size() - lead - trail),
                       s.substr(s.size() - trail)});
  }
};

}  // namespace

std::vector<TextRange> RenderedChat::untrusted_ranges() const {
  std::vector<TextRange> ranges;
  for (const ContentSpan& c : content) ranges.push_back(c.range);
  return ranges;
}

ChatTemplate::ChatTemplate(const std::string& source, std::string origin)
    : source_(source), origin_(std::move(origin)), template_(source, origin_) {}

SpecialTokens load_special_tokens(const std::string& model_path) {
  require_model_path(model_path);
  if (is_gguf_path(model_path)) return gguf_special_tokens(io::GgufFile(model_path));
  return config_special_tokens(read_tokenizer_config(model_path), model_path);
}

ChatTemplate ChatTemplate::from_model(const std::string& path) {
  require_model_path(path);
  return is_gguf_path(path) ? from_gguf(path) : from_directory(path);
}

ChatTemplate ChatTemplate::from_file(const std::string& path) { return ChatTemplate(read_file(path), path); }

std::string ChatTemplate::render(const ojson& messages, const ChatRenderOptions& options) const {
  if (!messages.is_array()) fail_input("chat messages: expected a JSON array of messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      fail_input("chat messages: message " + std::to_string(i) + " must be an object with a string \"role\"");
  }
  if (!options.extra.is_object()) fail_input("chat template arguments: expected a JSON object");
  ojson context = ojson::object();
  context["messages"] = messages;
  context["tools"] = options.tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = options.add_generation_prompt;
  context["bos_token"] = tokens_.bos ? ojson(*tokens_.bos) : ojson(nullptr);
  context["eos_token"] = tokens_.eos ? ojson(*tokens_.eos) : ojson(nullptr);
  for (const auto& [k, v] : options.extra.items()) context[k] = v;
  return template_.render(context);
}

RenderedChat ChatTemplate::render_marked(const ojson& messages, const ChatRenderOptions& options) const {
  if (!messages.is_array()) fail_input("chat messages: expected a JSON array of messages");
  const auto dump = [](const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); };
  const std::string haystack = dump(messages) + dump(options.tools) + dump(options.extra) + source_ +
                               tokens_.bos.value_or("") + tokens_.eos.value_or("");
  Marked m{messages, pick_mark_chars(haystack), {}};
  for (size_t i = 0; i < m.messages.size(); ++i) {
    ojson& msg = m.messages[i];
    if (!msg.is_object()) continue;  // render() names the problem
    if (msg.contains("content")) {
      ojson& content = msg["content"];
      if (content.is_array()) {
        for (size_t k = 0; k < content.size(); ++k)
          if (content[k].is_object() && content[k].contains("text"))
            m.mark(content[k]["text"], i, "content[" + std::to_string(k) + "].text");
      } else {
        m.mark(content, i, "content");
      }
    }
    if (msg.contains("reasoning_content")) m.mark(msg["reasoning_content"], i, "reasoning_content");
    if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
      ojson& calls = msg["tool_calls"];
      for (size_t k = 0; k < calls.size(); ++k)
        if (calls[k].is_object() && calls[k].contains("function") && calls[k]["function"].is_object() &&
            calls[k]["function"].contains("arguments"))
          m.mark(calls[k]["function"]["arguments"], i, "tool_calls[" + std::to_string(k) + "].function.arguments");
    }
  }
  const std::string marked = render(m.messages, options);

  RenderedChat out;
  out.text.reserve(marked.size());
  const std::string& open = m.chars.open;
  const std::string& close = m.chars.close;
  const auto refuse = [&] {
    fail_input(origin_ + ": the template cuts, escapes or rewrites message content, so its place in the prompt "
               "cannot be known; use --parse-special-in-content to render it as Hugging Face does");
  };
  size_t at = 0;
  for (;;) {
    const size_t found = marked.find(open, at);
    if (found == std::string::npos) break;
    size_t digits_end = found + open.size();
    while (digits_end < marked.size() && marked[digits_end] >= '0' && marked[digits_end] <= '9') ++digits_end;
    const std::string digits = marked.substr(found + open.size(), digits_end - found - open.size());
    if (marked.compare(digits_end, close.size(), close) != 0 || digits.empty() || digits.size() > 9 ||
        std::stoul(digits) >= m.entries.size())
      refuse();
    const Marked::Entry& e = m.entries[std::stoul(digits)];
    out.text.append(marked, at, found - at);
    // Whitespace that stayed beside the marker (no `| trim`) belongs to the content too.
    const bool lead = !e.lead.empty() && out.text.ends_with(e.lead);
    const size_t after = digits_end + close.size();
    const bool trail = !e.trail.empty() && marked.compare(after, e.trail.size(), e.trail) == 0;
    const size_t begin = out.text.size() - (lead ? e.lead.size() : 0);
    out.text += e.core;
    if (trail) out.text += e.trail;
    out.content.push_back({e.message, e.field, {begin, out.text.size()}, lead ? 0 : e.lead.size()});
    at = after + (trail ? e.trail.size() : 0);
  }
  out.text.append(marked, at, std::string::npos);
  // A piece of a marker left over (content sliced or escaped): the content went somewhere unknown.
  if (out.text.find(open) != std::string::npos || out.text.find(close) != std::string::npos) refuse();
  return out;
}

}  // namespace csq
