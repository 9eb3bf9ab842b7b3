// Chat templates: loading from model directories and GGUF files, rendering the reference
// vectors byte for byte, and `csq template` end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <string>

#include "base/error.h"
#include "io/gguf_writer.h"
#include "test_paths.h"
#include "tokenizer/chat_template.h"

namespace csq {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A fresh scratch directory for one test.
std::string scratch(const std::string& name) {
  const fs::path dir = fs::path(test::temp_dir()) / ("chat_template_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::vector<ojson> read_jsonl(const std::string& path) {
  std::vector<ojson> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(ojson::parse(line));
  return rows;
}

TEST(ChatTemplateVectors, BothTemplatesByteForByte) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = test::fixture("chat_templates");
  // The vectors call CyberSecQwen's template "csq.jinja"; the file is cybersecqwen.jinja.
  const ChatTemplate qwen3 = ChatTemplate::from_file(dir + "/qwen3.jinja");
  const ChatTemplate csq = ChatTemplate::from_file(dir + "/cybersecqwen.jinja");
  const auto rows = read_jsonl(dir + "/vectors.jsonl");
  ASSERT_GE(rows.size(), 90u);
  std::map<std::string, int> seen;
  for (const auto& row : rows) {
    const std::string name = row["template"].get<std::string>();
    ASSERT_TRUE(name == "qwen3.jinja" || name == "csq.jinja") << name;
    ChatTemplate t = name == "qwen3.jinja" ? qwen3 : csq;
    t.set_special_tokens({std::nullopt, "<|im_end|>"});
    ChatRenderOptions options;
    options.add_generation_prompt = row["add_generation_prompt"].get<bool>();
    options.extra = row["kwargs"];
    EXPECT_EQ(t.render(row["messages"], options), row["expected"].get<std::string>())
        << name << " / " << row["conversation"] << " / kwargs " << row["kwargs"].dump();
    ++seen[name];
  }
  EXPECT_GT(seen["qwen3.jinja"], 0);
  EXPECT_GT(seen["csq.jinja"], 0);
}

TEST(ChatTemplateVectors, TokenizerChatVectorsFromModelDirectory) {
  CSQ_REQUIRE_FIXTURES();
  const ChatTemplate t = ChatTemplate::from_model(test::fixture("hf/qwen3-tiny-vocab"));
  EXPECT_FALSE(t.special_tokens().bos.has_value());
  EXPECT_EQ(t.special_tokens().eos, "<|im_end|>");
  const auto rows = read_jsonl(test::fixture("tokenizer/chat_vectors.jsonl"));
  ASSERT_FALSE(rows.empty());
  for (const auto& row : rows) EXPECT_EQ(t.render(row["messages"]), row["text"].get<std::string>());
}

TEST(ChatTemplateLoad, JinjaFileTakesPrecedenceOverConfig) {
  const std::string dir = scratch("precedence");
  write_text(dir + "/tokenizer_config.json",
             R"({"chat_template": "from config", "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"})");
  EXPECT_EQ(ChatTemplate::from_model(dir).render(ojson::array()), "from config");
  write_text(dir + "/chat_template.jinja", "{{ bos_token }}from file{{ eos_token }}\n");
  const ChatTemplate t = ChatTemplate::from_model(dir);
  EXPECT_EQ(t.special_tokens().bos, "<s>");
  EXPECT_EQ(t.render(ojson::array()), "<s>from file</s>");
}

TEST(ChatTemplateLoad, ListOfNamedTemplatesPicksDefault) {
  const std::string dir = scratch("named");
  write_text(dir + "/tokenizer_config.json",
             R"({"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "plain"}]})");
  EXPECT_EQ(ChatTemplate::from_model(dir).render(ojson::array()), "plain");
  write_text(dir + "/tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "tools"}]})");
  try {
    ChatTemplate::from_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("default"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplateLoad, MissingTemplateIsABadInputError) {
  const std::string dir = scratch("missing");
  write_text(dir + "/tokenizer_config.json", R"({"eos_token": "</s>"})");
  try {
    ChatTemplate::from_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadInput);
    EXPECT_NE(std::string(e.what()).find("no chat template"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate::from_model(dir + "/does-not-exist"), Error);
}

TEST(ChatTemplateLoad, GgufMetadataAndSpecialTokens) {
  const std::string dir = scratch("gguf");
  io::GgufWriter w;
  w.set_string("general.architecture", "qwen3");
  w.set_string("tokenizer.chat_template", "{{ bos_token }}|{{ messages[0].content }}|{{ eos_token }}");
  w.set_string_array("tokenizer.ggml.tokens", {"<a>", "<bos>", "<eos>"});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.write(dir + "/m.gguf");
  const ChatTemplate t = ChatTemplate::from_model(dir + "/m.gguf");
  EXPECT_EQ(t.render(ojson::parse(R"([{"role": "user", "content": "hi"}])")), "<bos>|hi|<eos>");
  EXPECT_EQ(load_special_tokens(dir + "/m.gguf").eos, "<eos>");
}

TEST(ChatTemplateRender, VariablesAsTransformersPassesThem) {
  const ChatTemplate t(
      "{{ tools is none }}|{{ documents is none }}|{{ add_generation_prompt }}|{{ enable_thinking is defined }}|"
      "{{ messages[0].extra.k }}|{{ messages[0]|tojson }}",
      "inline");
  const ojson messages = ojson::parse(R"([{"role": "user", "content": "x", "extra": {"k": "v"}, "a": 1}])");
  EXPECT_EQ(t.render(messages),
            R"(True|True|True|False|v|{"role": "user", "content": "x", "extra": {"k": "v"}, "a": 1})");
  ChatRenderOptions options;
  options.add_generation_prompt = false;
  options.tools = ojson::parse(R"([{"name": "f"}])");
  options.extra = ojson::parse(R"({"enable_thinking": false})");
  EXPECT_EQ(t.render(messages, options).substr(0, 28), "False|True|False|True|v|{\"ro");
  EXPECT_THROW(t.render(ojson::parse(R"([{"content": "no role"}])")), Error);
}

// ---- csq template, end to end ----

TEST(ChatTemplateCli, RendersExactlyWithoutTrailingNewline) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = scratch("cli");
  write_text(dir + "/messages.json", R"({"messages": [{"role": "user", "content": "hi"}]})");
  const auto r = test::run_csq({"template", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--messages", dir + "/messages.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");

  const auto thinking = test::run_csq({"template", "--model", test::fixture("hf/qwen3-tiny-vocab"), "--messages",
                                       dir + "/messages.json", "--kwargs", R"({"enable_thinking": false})"});
  ASSERT_EQ(thinking.exit_code, 0) << thinking.err;
  EXPECT_EQ(thinking.out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");

  write_text(dir + "/tools.json", R"([{"type": "function", "function": {"name": "f"}}])");
  const auto tools = test::run_csq({"template", "--template", test::fixture("chat_templates/qwen3.jinja"), "--messages",
                                    dir + "/messages.json", "--tools", dir + "/tools.json", "--no-generation-prompt"});
  ASSERT_EQ(tools.exit_code, 0) << tools.err;
  EXPECT_NE(tools.out.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"f\"}}\n</tools>"), std::string::npos)
      << tools.out;
  EXPECT_EQ(tools.out.substr(tools.out.size() - 30), "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplateCli, ExitCodes) {
  const std::string dir = scratch("cli_errors");
  write_text(dir + "/messages.json", R"([{"role": "user", "content": "hi"}])");
  write_text(dir + "/raise.jinja", "{{ raise_exception('no system role') }}");
  const auto raised = test::run_csq({"template", "--template", dir + "/raise.jinja", "--messages", dir + "/messages.json"});
  EXPECT_EQ(raised.exit_code, 2);
  EXPECT_NE(raised.err.find("no system role"), std::string::npos) << raised.err;

  write_text(dir + "/ok.jinja", "{{ messages[0].content }}");
  EXPECT_EQ(test::run_csq({"template", "--template", dir + "/ok.jinja", "--messages", dir + "/messages.json",
                           "--kwargs", "[1]"}).exit_code, 1);
  EXPECT_EQ(test::run_csq({"template", "--messages", dir + "/messages.json"}).exit_code, 1);
  write_text(dir + "/bad.json", "{not json");
  EXPECT_EQ(test::run_csq({"template", "--template", dir + "/ok.jinja", "--messages", dir + "/bad.json"}).exit_code, 2);
  const auto stdin_run = test::run_csq({"template", "--template", dir + "/ok.jinja", "--messages", "-"},
                                       R"([{"role": "user", "content": "from stdin"}])");
  EXPECT_EQ(stdin_run.exit_code, 0) << stdin_run.err;
  EXPECT_EQ(stdin_run.out, "from stdin");
}

}  // namespace
}  // namespace csq
