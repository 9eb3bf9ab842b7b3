// csq tokenize / csq detokenize: text <-> token ids with a model's tokenizer.
#include <nlohmann/json.hpp>

#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "base/error.h"
#include "command.h"
#include "model_option.h"
#include "tokenizer/tokenizer.h"

namespace csq::app {
namespace {

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

void print_ids(const std::vector<int32_t>& ids, std::string& out) {
  out += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
}

struct TokenizeOptions {
  std::string model;
  bool no_special = false;
  bool jsonl = false;
};

void run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tok = load_tokenizer(o.model);
  const std::string input = read_stdin();
  std::string out;
  if (!o.jsonl) {
    print_ids(tok.encode(input, !o.no_special), out);
    std::cout << out << '\n';
    return;
  }
  size_t line_no = 0;
  for (size_t pos = 0; pos < input.size();) {
    size_t end = input.find('\n', pos);
    if (end == std::string::npos) end = input.size();
    std::string_view line(input.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;  // blank lines (e.g. a final newline) carry no record
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail_input("stdin line " + std::to_string(line_no) + ": not valid JSON: " + e.what());
    }
    if (!record.is_object() || !record.contains("text") || !record["text"].is_string())
      fail_input("stdin line " + std::to_string(line_no) + ": expected an object {\"text\": \"...\"}");
    out += "{\"ids\": ";
    print_ids(tok.encode(record["text"].get<std::string>(), !o.no_special), out);
    out += "}\n";
  }
  std::cout << out;
}

void run_detokenize(const std::string& model) {
  const Tokenizer tok = load_tokenizer(model);
  nlohmann::json ids;
  try {
    ids = nlohmann::json::parse(read_stdin());
  } catch (const nlohmann::json::parse_error& e) {
    fail_input(std::string("stdin: expected a JSON array of token ids: ") + e.what());
  }
  if (!ids.is_array()) fail_input("stdin: expected a JSON array of token ids");
  std::vector<int32_t> list;
  list.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const nlohmann::json& v = ids[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab_size() ||
        tok.kind(int32_t(v.get<int64_t>())) == TokenKind::Absent)
      fail_input("stdin: element " + std::to_string(i) + " (" + v.dump() + ") is not a token id of " + model +
                 " (0.." + std::to_string(tok.vocab_size() - 1) + ")");
    list.push_back(int32_t(v.get<int64_t>()));
  }
  std::cout << tok.decode(list);
}

const RegisterCommand kTokenize([](CLI::App& root) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* sub = root.add_subcommand("tokenize", "Text on stdin -> token ids (a JSON array) on stdout");
  add_model_option(sub, "--model", opts->model, "Model directory (tokenizer.json), tokenizer.json or .gguf")->required();
  sub->add_flag("--no-special", opts->no_special, "Treat special-token strings such as <|im_start|> as plain text");
  sub->add_flag("--jsonl", opts->jsonl, "Read lines {\"text\": ...}, write lines {\"ids\": [...]} in the same order");
  sub->callback([opts] { run_tokenize(*opts); });
});

const RegisterCommand kDetokenize([](CLI::App& root) {
  auto model = std::make_shared<std::string>();
  CLI::App* sub = root.add_subcommand("detokenize", "Token ids (a JSON array) on stdin -> text on stdout");
  add_model_option(sub, "--model", *model, "Model directory (tokenizer.json), tokenizer.json or .gguf")->required();
  sub->callback([model] { run_detokenize(*model); });
});

}  // namespace
}  // namespace csq::app
