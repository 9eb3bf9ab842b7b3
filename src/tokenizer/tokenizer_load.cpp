// Loading a Tokenizer from Hugging Face files or GGUF metadata, and writing it back to GGUF.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_spec.h"

namespace csq {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return json::parse(buf.str());
  } catch (const json::parse_error& e) {
    fail_input(path + ": not valid JSON: " + e.what());
  }
}

// `obj[key]` for a JSON object, failing with the file and the dotted field name.
const json& field(const json& obj, const std::string& key, const std::string& file, const std::string& where) {
  if (!obj.is_object()) fail_input(file + ": '" + where + "' must be an object");
  const auto it = obj.find(key);
  if (it == obj.end()) fail_input(file + ": missing field '" + where + "." + key + "'");
  return *it;
}

std::string string_field(const json& obj, const std::string& key, const std::string& file, const std::string& where) {
  const json& v = field(obj, key, file, where);
  if (!v.is_string()) fail_input(file + ": '" + where + "." + key + "' must be a string");
  return v.get<std::string>();
}

bool bool_or(const json& obj, const std::string& key, bool fallback, const std::string& file, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail_input(file + ": '" + where + "." + key + "' must be true or false");
  return it->get<bool>();
}

void place_token(TokenizerSpec& s, int64_t id, const std::string& text, TokenKind kind, const std::string& where) {
  if (id < 0 || id > INT32_MAX - 1) fail_input(s.source + ": " + where + ": id " + std::to_string(id) + " out of range");
  if (size_t(id) >= s.tokens.size()) {
    s.tokens.resize(size_t(id) + 1);
    s.kinds.resize(size_t(id) + 1, TokenKind::Absent);
  }
  if (s.kinds[id] != TokenKind::Absent && s.tokens[id] != text)
    fail_input(s.source + ": " + where + ": id " + std::to_string(id) + " is given to both '" + s.tokens[id] +
               "' and '" + text + "'");
  s.tokens[id] = text;
  s.kinds[id] = kind;
}

void parse_normalizer(TokenizerSpec& s, const json& n) {
  const std::string& f = s.source;
  if (n.is_null()) return;
  const std::string type = string_field(n, "type", f, "normalizer");
  if (type == "NFC") {
    s.nfc = true;
  } else if (type == "Sequence" && field(n, "normalizers", f, "normalizer").is_array()) {
    for (const json& inner : n["normalizers"]) parse_normalizer(s, inner);
  } else {
    fail_input(f + ": normalizer '" + type + "' is not supported (expected NFC or none)");
  }
}

// The byte-level BPE families we know: Sequence[Split(regex, Isolated), ByteLevel(no regex)].
void parse_pre_tokenizer(TokenizerSpec& s, const json& pre) {
  const std::string& f = s.source;
  const std::string expected =
      " (expected Sequence[Split with the Qwen2 or Llama-3 regex, ByteLevel without add_prefix_space and regex])";
  if (pre.is_null()) fail_input(f + ": 'pre_tokenizer' is null" + expected);
  const json& list = field(pre, "pretokenizers", f, "pre_tokenizer");
  if (string_field(pre, "type", f, "pre_tokenizer") != "Sequence" || !list.is_array() || list.size() != 2)
    fail_input(f + ": unsupported 'pre_tokenizer'" + expected);
  const json& split = list[0];
  const json& byte_level = list[1];
  if (string_field(split, "type", f, "pre_tokenizer.pretokenizers[0]") != "Split" ||
      string_field(byte_level, "type", f, "pre_tokenizer.pretokenizers[1]") != "ByteLevel")
    fail_input(f + ": unsupported 'pre_tokenizer'" + expected);
  const std::string pattern = string_field(field(split, "pattern", f, "pre_tokenizer.pretokenizers[0]"), "Regex", f,
                                           "pre_tokenizer.pretokenizers[0].pattern");
  const auto rule = tok::split_rule_from_pattern(pattern);
  if (!rule) fail_input(f + ": pre-tokenizer regex '" + pattern + "' is not one we implement (Qwen2 or Llama-3)");
  s.rule = *rule;
  const std::string where = "pre_tokenizer.pretokenizers";
  if (string_field(split, "behavior", f, where + "[0]") != "Isolated" || bool_or(split, "invert", false, f, where + "[0]"))
    fail_input(f + ": '" + where + "[0]' must split with behavior Isolated, invert false");
  if (bool_or(byte_level, "add_prefix_space", false, f, where + "[1]") ||
      bool_or(byte_level, "use_regex", true, f, where + "[1]"))
    fail_input(f + ": '" + where + "[1]' (ByteLevel) must have add_prefix_space and use_regex false");
}

void parse_model(TokenizerSpec& s, const json& model) {
  const std::string& f = s.source;
  if (model.contains("type") && string_field(model, "type", f, "model") != "BPE")
    fail_input(f + ": model type '" + model["type"].get<std::string>() + "' is not supported (expected BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      fail_input(f + ": 'model." + std::string(key) + "' must be empty for byte-level BPE");
  }
  if (const auto it = model.find("dropout"); it != model.end() && !it->is_null() &&
                                             !(it->is_number() && it->get<double>() == 0.0))
    fail_input(f + ": 'model.dropout' must be null (BPE dropout is for training only)");
  s.ignore_merges = bool_or(model, "ignore_merges", false, f, "model");

  const json& vocab = field(model, "vocab", f, "model");
  if (!vocab.is_object()) fail_input(f + ": 'model.vocab' must be an object of token: id");
  for (const auto& [text, id] : vocab.items()) {
    if (!id.is_number_integer()) fail_input(f + ": 'model.vocab' entry '" + text + "' must have an integer id");
    place_token(s, id.get<int64_t>(), text, TokenKind::Normal, "model.vocab['" + text + "']");
  }

  const json& merges = field(model, "merges", f, "model");
  if (!merges.is_array()) fail_input(f + ": 'model.merges' must be an array");
  s.merge_strings.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    const std::string where = f + ": 'model.merges[" + std::to_string(i) + "]'";
    if (m.is_string()) {  // the older "left right" form
      const std::string text = m.get<std::string>();
      const size_t space = text.find(' ', 1);
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
        fail_input(where + " = '" + text + "' must be two tokens separated by one space");
      s.merge_strings.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      s.merge_strings.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail_input(where + " must be \"left right\" or [\"left\", \"right\"]");
    }
  }
}

void parse_added_tokens(TokenizerSpec& s, const json& added) {
  const std::string& f = s.source;
  if (added.is_null()) return;
  if (!added.is_array()) fail_input(f + ": 'added_tokens' must be an array");
  for (size_t i = 0; i < added.size(); ++i) {
    const json& a = added[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    const json& id = field(a, "id", f, where);
    if (!id.is_number_integer()) fail_input(f + ": '" + where + ".id' must be an integer");
    AddedToken t;
    t.content = string_field(a, "content", f, where);
    t.id = int32_t(id.get<int64_t>());
    t.special = bool_or(a, "special", false, f, where);
    t.lstrip = bool_or(a, "lstrip", false, f, where);
    t.rstrip = bool_or(a, "rstrip", false, f, where);
    if (bool_or(a, "single_word", false, f, where))
      fail_input(f + ": '" + where + "' (" + t.content + ") uses single_word, which is not supported");
    place_token(s, id.get<int64_t>(), t.content, t.special ? TokenKind::Special : TokenKind::UserDefined, where);
    s.added.push_back(std::move(t));
  }
}

// HF's post_processor adds bos when its template starts with a special token (Llama-3).
bool template_adds_bos(const json& post) {
  if (!post.is_object() || post.value("type", "") != "TemplateProcessing") return false;
  const auto single = post.find("single");
  return single != post.end() && single->is_array() && !single->empty() && (*single)[0].contains("SpecialToken");
}

std::optional<int32_t> config_token(const TokenizerSpec& s, const json& config, const char* key, const std::string& file) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  std::string content;
  if (it->is_string()) {
    content = it->get<std::string>();
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    content = (*it)["content"].get<std::string>();
  } else {
    fail_input(file + ": '" + key + "' must be a string, {\"content\": ...} or null");
  }
  const auto found = s.string_to_id.find(content);
  if (found == s.string_to_id.end())
    fail_input(file + ": '" + key + "' = '" + content + "' is not a token of the vocabulary");
  return found->second;
}

}  // namespace

Tokenizer Tokenizer::from_hf_files(const std::string& tokenizer_json, const std::string& config_json) {
  auto s = std::make_unique<TokenizerSpec>();
  s->source = tokenizer_json;
  s->merges_field = "model.merges";
  {
    const json j = read_json(tokenizer_json);
    if (!j.is_object()) fail_input(tokenizer_json + ": expected a JSON object");
    parse_model(*s, field(j, "model", tokenizer_json, "(top level)"));
    parse_added_tokens(*s, j.value("added_tokens", json()));
    parse_normalizer(*s, j.value("normalizer", json()));
    parse_pre_tokenizer(*s, j.value("pre_tokenizer", json()));
    const json decoder = j.value("decoder", json());
    if (!decoder.is_object() || decoder.value("type", "") != "ByteLevel")
      fail_input(tokenizer_json + ": 'decoder' must be ByteLevel");
    s->add_bos = template_adds_bos(j.value("post_processor", json()));
  }
  finalize(*s);
  if (!config_json.empty() && fs::exists(config_json)) {
    const json c = read_json(config_json);
    if (!c.is_object()) fail_input(config_json + ": expected a JSON object");
    s->bos = config_token(*s, c, "bos_token", config_json);
    s->eos = config_token(*s, c, "eos_token", config_json);
    s->pad = config_token(*s, c, "pad_token", config_json);
    s->add_bos = bool_or(c, "add_bos_token", s->add_bos, config_json, "(top level)");
  }
  return Tokenizer(std::move(s));
}

Tokenizer Tokenizer::from_gguf(const io::GgufFile& gguf) {
  auto s = std::make_unique<TokenizerSpec>();
  const std::string& f = gguf.path();
  s->source = f;
  s->merges_field = "tokenizer.ggml.merges";
  const auto model = gguf.get_string_opt("tokenizer.ggml.model");
  if (!model) fail_input(f + ": no tokenizer (metadata 'tokenizer.ggml.model' is absent)");
  if (*model != "gpt2")
    fail_input(f + ": tokenizer.ggml.model '" + *model + "' is not supported (expected gpt2, byte-level BPE)");
  const std::string pre = gguf.get_string_opt("tokenizer.ggml.pre").value_or("");
  // HF's Qwen2 tokenizers normalize to NFC; Llama-3's skip merging for whole-word vocabulary
  // entries (ignore_merges). GGUF records neither, so both follow from the pre-tokenizer name.
  if (pre == "qwen2") {
    s->rule = tok::SplitRule::Qwen2;
    s->nfc = true;
  } else if (pre == "llama-bpe") {
    s->rule = tok::SplitRule::Llama3;
    s->ignore_merges = true;
  } else {
    fail_input(f + ": tokenizer.ggml.pre '" + pre + "' is not supported (expected qwen2 or llama-bpe)");
  }

  const auto tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  std::vector<int64_t> types(tokens.size(), 1);
  if (gguf.find("tokenizer.ggml.token_type")) {
    types = gguf.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != tokens.size())
      fail_input(f + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries, tokens has " +
                 std::to_string(tokens.size()));
  }
  s->tokens.reserve(tokens.size());
  s->kinds.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    s->tokens.emplace_back(tokens[id]);
    TokenKind kind = TokenKind::Normal;
    switch (types[id]) {
      case 3: kind = TokenKind::Special; break;
      case 4: kind = TokenKind::UserDefined; break;
      case 5: kind = TokenKind::Unused; break;
      case 1: case 2: case 6: break;
      default:
        fail_input(f + ": tokenizer.ggml.token_type[" + std::to_string(id) + "] = " + std::to_string(types[id]) +
                   " is not a token type (1..6)");
    }
    s->kinds.push_back(kind);
    if (kind == TokenKind::Special || kind == TokenKind::UserDefined)
      s->added.push_back({std::string(tokens[id]), int32_t(id), kind == TokenKind::Special, false, false});
  }

  const auto merges = gguf.get_string_array("tokenizer.ggml.merges");
  s->merge_strings.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string_view m = merges[i];
    const size_t space = m.find(' ', 1);
    if (space == std::string_view::npos)
      fail_input(f + ": tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + std::string(m) +
                 "' must be two tokens separated by a space");
    s->merge_strings.emplace_back(std::string(m.substr(0, space)), std::string(m.substr(space + 1)));
  }
  auto id_key = [&](const char* key) -> std::optional<int32_t> {
    const auto v = gguf.get_int_opt(key);
    if (!v) return std::nullopt;
    if (*v < 0 || *v >= int64_t(tokens.size()))
      fail_input(f + ": " + key + " = " + std::to_string(*v) + " is outside the " + std::to_string(tokens.size()) +
                 " tokens");
    return int32_t(*v);
  };
  s->bos = id_key("tokenizer.ggml.bos_token_id");
  s->eos = id_key("tokenizer.ggml.eos_token_id");
  s->pad = id_key("tokenizer.ggml.padding_token_id");
  s->add_bos = gguf.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(false);
  finalize(*s);
  return Tokenizer(std::move(s));
}

void Tokenizer::write_gguf_metadata(io::GgufWriter& w, int32_t n_vocab) const {
  const TokenizerSpec& s = *s_;
  std::string pre;
  if (s.rule == tok::SplitRule::Qwen2 && s.nfc && !s.ignore_merges) pre = "qwen2";
  if (s.rule == tok::SplitRule::Llama3 && !s.nfc && s.ignore_merges) pre = "llama-bpe";
  if (pre.empty())
    fail_input(s.source + ": this tokenizer's combination of split rule, normalizer and ignore_merges has no GGUF "
               "pre-tokenizer name");
  const size_t n = std::max(size_t(n_vocab), s.tokens.size());
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, 5);
  for (size_t id = 0; id < n; ++id) {
    const TokenKind k = id < s.kinds.size() ? s.kinds[id] : TokenKind::Absent;
    if (k == TokenKind::Absent) {
      tokens[id] = "[PAD" + std::to_string(id) + "]";
      continue;
    }
    tokens[id] = s.tokens[id];
    types[id] = k == TokenKind::Normal ? 1 : k == TokenKind::Special ? 3 : k == TokenKind::UserDefined ? 4 : 5;
  }
  std::vector<std::string> merges;
  merges.reserve(s.merges.size());
  for (const auto& [a, b] : s.merges) merges.push_back(s.tokens[a] + " " + s.tokens[b]);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", merges);
  if (s.bos) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(*s.bos));
  if (s.eos) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(*s.eos));
  if (s.pad) w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(*s.pad));
  w.set_bool("tokenizer.ggml.add_bos_token", s.add_bos);
}

Tokenizer load_tokenizer(const std::string& model_path) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) {
    const fs::path json_path = fs::path(model_path) / "tokenizer.json";
    if (!fs::exists(json_path, ec))
      fail_input(model_path + ": no tokenizer.json in this directory (a byte-level BPE tokenizer is required)");
    return Tokenizer::from_hf_files(json_path.string(), (fs::path(model_path) / "tokenizer_config.json").string());
  }
  if (!fs::exists(model_path, ec)) fail_input(model_path + ": no such file or directory");
  char magic[4] = {};
  std::ifstream(model_path, std::ios::binary).read(magic, 4);
  if (std::string_view(magic, 4) == "GGUF") return Tokenizer::from_gguf(io::GgufFile(model_path));
  const fs::path config = fs::path(model_path).parent_path() / "tokenizer_config.json";
  return Tokenizer::from_hf_files(model_path, config.string());
}

std::optional<std::string> tokenizer_problem(const std::string& model_path) {
  try {
    load_tokenizer(model_path);
    return std::nullopt;
  } catch (const Error& e) {
    return std::string(e.what());
  }
}

}  // namespace csq
