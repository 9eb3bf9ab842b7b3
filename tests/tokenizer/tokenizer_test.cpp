// The byte-level BPE tokenizer against Hugging Face's outputs (fixtures), through GGUF, on
// malformed inputs, and through the csq tokenize/detokenize commands.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_paths.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace csq {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string qwen_dir() { return test::fixture("hf/qwen3-tiny-vocab"); }

// Loading the 151k-token vocabulary takes a moment: share one instance.
const Tokenizer& qwen() {
  static const Tokenizer tok = load_tokenizer(qwen_dir());
  return tok;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

std::vector<std::string> pieces(std::string_view text, tok::SplitRule rule) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = tok::split_next(text, pos, rule);
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

// A small tokenizer.json: the 256 byte symbols (ids 0..255), then `extra` tokens, `merges`.
json tiny_tokenizer_json(const std::vector<std::string>& extra, const json& merges, tok::SplitRule rule) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[tok::byte_level_encode(std::string(1, char(b)))] = b;
  int next = 256;
  for (const auto& t : extra) vocab[t] = next++;
  json j;
  j["version"] = "1.0";
  j["added_tokens"] = json::array(
      {{{"id", next}, {"content", "<|end|>"}, {"special", true}, {"lstrip", false}, {"rstrip", false},
        {"single_word", false}, {"normalized", false}}});
  j["normalizer"] = rule == tok::SplitRule::Qwen2 ? json{{"type", "NFC"}} : json();
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Split"},
                     {"pattern", {{"Regex", std::string(tok::split_rule_pattern(rule))}}},
                     {"behavior", "Isolated"},
                     {"invert", false}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges},
                {"ignore_merges", rule == tok::SplitRule::Llama3}};
  return j;
}

std::string write_file(const std::string& name, const std::string& text) {
  const fs::path path = fs::path(test::temp_dir()) / name;
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

// The message of the csq::Error that `f` throws (fails the test when it throws none).
template <typename F>
std::string error_of(F&& f, ErrorCode expected = ErrorCode::BadInput) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a csq::Error";
  return "";
}

TEST(TokenizerVectors, IdsAndDecodedMatchHuggingFace) {
  CSQ_REQUIRE_FIXTURES();
  const auto vectors = read_jsonl(test::fixture("tokenizer/vectors.jsonl"));
  ASSERT_GT(vectors.size(), 400u);
  for (const json& v : vectors) {
    const std::string text = v["text"];
    const auto ids = qwen().encode(text);
    EXPECT_EQ(ids, ids_of(v["ids"])) << v["set"] << ": " << text.substr(0, 200);
    EXPECT_EQ(qwen().decode(ids_of(v["ids"])), v["decoded"].get<std::string>()) << text.substr(0, 200);
  }
}

TEST(TokenizerVectors, RenderedChatPrompts) {
  CSQ_REQUIRE_FIXTURES();
  const auto vectors = read_jsonl(test::fixture("tokenizer/chat_vectors.jsonl"));
  ASSERT_FALSE(vectors.empty());
  for (const json& v : vectors) EXPECT_EQ(qwen().encode(v["text"].get<std::string>()), ids_of(v["ids"]));
}

TEST(TokenizerVectors, SpecialTokensAndConfig) {
  CSQ_REQUIRE_FIXTURES();
  const Tokenizer& t = qwen();
  EXPECT_EQ(t.vocab_size(), 151669);
  EXPECT_EQ(t.eos_id(), 151645);  // tokenizer_config.json eos_token <|im_end|>
  EXPECT_EQ(t.pad_id(), 151643);
  EXPECT_FALSE(t.bos_id().has_value());
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.kind(151644), TokenKind::Special);
  EXPECT_EQ(t.kind(151667), TokenKind::UserDefined);  // <think>
  EXPECT_EQ(t.find_token("<|im_start|>"), 151644);

  // Without special-token parsing <|im_start|> is ordinary text; <think> (special=false) is
  // still matched, as HF does with split_special_tokens=True.
  const auto plain = t.encode("<|im_start|>user<think>", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 151644), 0);
  EXPECT_EQ(t.decode(plain), "<|im_start|>user<think>");
  EXPECT_EQ(plain.back(), 151667);
  EXPECT_EQ(t.encode("<|im_start|>user", true).front(), 151644);
}

TEST(TokenizerVectors, InvalidUtf8InputIsReplacedByU_FFFD) {
  CSQ_REQUIRE_FIXTURES();
  const Tokenizer& t = qwen();
  // Each maximal ill-formed subpart becomes one U+FFFD, as Python's errors="replace" does.
  EXPECT_EQ(t.encode("a\xFF" "b"), t.encode("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(t.encode("x\xE2\x82" "y"), t.encode("x\xEF\xBF\xBDy"));
  EXPECT_EQ(t.encode("\xED\xA0\x80"), t.encode("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));  // a surrogate
  EXPECT_EQ(t.encode("\xF0\x9F\x94"), t.encode("\xEF\xBF\xBD"));  // truncated at the end
  // Decoding an unfinished sequence gives U+FFFD too (HF's from_utf8_lossy).
  const int32_t b_e2 = *t.find_token(tok::byte_level_encode("\xE2"));
  const int32_t b_82 = *t.find_token(tok::byte_level_encode("\x82"));
  const int32_t b_ac = *t.find_token(tok::byte_level_encode("\xAC"));
  EXPECT_EQ(t.decode(std::vector<int32_t>{b_e2, b_82}), "\xEF\xBF\xBD");
  EXPECT_EQ(t.decode(std::vector<int32_t>{b_e2, b_82, b_ac}), "\xE2\x82\xAC");
}

TEST(TokenizerVectors, FiftyMegabytesWithBoundedMemory) {
  CSQ_REQUIRE_FIXTURES();
  const Tokenizer& t = qwen();
  // A chunk that starts with a letter and ends with a newline tokenizes the same wherever it
  // is repeated, so the big text's ids are the chunk's ids repeated.
  std::string chunk = "Start\n";
  for (const json& v : read_jsonl(test::fixture("tokenizer/vectors.jsonl"))) chunk += v["text"].get<std::string>() + "\n";
  const auto chunk_ids = t.encode(chunk);
  const size_t copies = 50'000'000 / chunk.size() + 1;
  std::string big;
  big.reserve(copies * chunk.size());
  for (size_t i = 0; i < copies; ++i) big += chunk;

  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const auto ids = t.encode(big);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);

  ASSERT_EQ(ids.size(), chunk_ids.size() * copies);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != chunk_ids[i % chunk_ids.size()]) {
      FAIL() << "id " << i << " differs";
    }
  }
  // Beyond the ids themselves, encoding holds at most a normalized copy of the text.
  const double grown_mb = double(after.ru_maxrss - before.ru_maxrss) / 1024.0;
  EXPECT_LT(grown_mb, 3.0 * big.size() / 1e6 + 64) << "peak RSS grew by " << grown_mb << " MB";
}

TEST(TokenizerDecoder, IncrementalNeverSplitsACharacter) {
  CSQ_REQUIRE_FIXTURES();
  const Tokenizer& t = qwen();
  for (const std::string text : {"emoji 🔐🛡️🚨👩\u200d💻 and flags 🇺🇸🇩🇪", "日本語のテキストと中文文本，한국어 텍스트",
                                 "ﬁ ligature and ＦＵＬＬＷＩＤＴＨ"}) {
    const auto ids = t.encode(text);
    IncrementalDecoder dec(t);
    std::string streamed;
    size_t held_back = 0;  // pushes that returned less than their token's bytes
    for (int32_t id : ids) {
      const std::string piece = dec.push(id);
      EXPECT_TRUE(tok::utf8_valid(piece)) << text;
      EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << text;
      if (piece.size() < t.token_bytes(id).size()) ++held_back;
      streamed += piece;
    }
    streamed += dec.finish();
    EXPECT_EQ(streamed, text);
    EXPECT_GT(held_back, 0u) << "the text should have characters split over tokens: " << text;
  }
}

TEST(TokenizerDecoder, IncrementalMatchesBatchOnInvalidBytes) {
  CSQ_REQUIRE_FIXTURES();
  const Tokenizer& t = qwen();
  // Single-byte tokens for E2 82 (an unfinished euro sign), then 'a'.
  const int32_t b_e2 = *t.find_token(tok::byte_level_encode("\xE2"));
  const int32_t b_82 = *t.find_token(tok::byte_level_encode("\x82"));
  const int32_t b_a = *t.find_token("a");
  IncrementalDecoder dec(t);
  EXPECT_EQ(dec.push(b_e2), "");
  EXPECT_EQ(dec.push(b_82), "");
  EXPECT_EQ(dec.push(b_a), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(t.decode(std::vector<int32_t>{b_e2, b_82, b_a}), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(dec.push(b_e2), "");
  EXPECT_EQ(dec.finish(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.push(b_82), "\xEF\xBF\xBD");  // a stray continuation byte is never held
}

TEST(TokenizerGguf, SameIdsFromExportedGguf) {
  CSQ_REQUIRE_FIXTURES();
  io::GgufWriter w;
  w.set_string("general.architecture", "qwen3");
  qwen().write_gguf_metadata(w, 151936);
  const std::string path = test::temp_dir() + "/tokenizer_vocab.gguf";
  w.write(path);

  const Tokenizer g = load_tokenizer(path);
  EXPECT_EQ(g.vocab_size(), 151936);
  EXPECT_EQ(g.kind(151700), TokenKind::Unused);
  EXPECT_EQ(g.kind(151644), TokenKind::Special);
  EXPECT_EQ(g.kind(151667), TokenKind::UserDefined);
  EXPECT_EQ(g.eos_id(), qwen().eos_id());
  EXPECT_EQ(g.pad_id(), qwen().pad_id());
  EXPECT_EQ(g.split_rule(), tok::SplitRule::Qwen2);
  EXPECT_TRUE(g.nfc());
  for (const json& v : read_jsonl(test::fixture("tokenizer/vectors.jsonl"))) {
    EXPECT_EQ(g.encode(v["text"].get<std::string>()), ids_of(v["ids"])) << v["text"];
    EXPECT_EQ(g.decode(ids_of(v["ids"])), v["decoded"].get<std::string>());
  }
}

TEST(TokenizerGguf, PlaceholderVocabularyIsReportedUnusable) {
  CSQ_REQUIRE_FIXTURES();
  const std::string path = test::fixture("gguf/qwen3-tiny-gqa-Q8_0.gguf");
  const auto problem = tokenizer_problem(path);
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find(path), std::string::npos) << *problem;
  EXPECT_NE(error_of([&] { load_tokenizer(path); }).find("tokenizer.ggml.pre"), std::string::npos);
  EXPECT_FALSE(tokenizer_problem(qwen_dir()).has_value());
  EXPECT_TRUE(tokenizer_problem(test::fixture("hf/qwen3-tiny-gqa")).has_value());  // no tokenizer.json
}

TEST(TokenizerGguf, MergeResultMissingFromVocabulary) {
  io::GgufWriter w;
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(tok::byte_level_encode(std::string(1, char(b))));
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "qwen2");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_string_array("tokenizer.ggml.merges", {"a b"});  // "ab" is not a token
  const std::string path = test::temp_dir() + "/tokenizer_bad_merge.gguf";
  w.write(path);
  const std::string msg = error_of([&] { load_tokenizer(path); });
  EXPECT_NE(msg.find("tokenizer.ggml.merges[0]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'ab'"), std::string::npos) << msg;
}

TEST(TokenizerHfJson, TinyVocabularyRoundTrip) {
  json j = tiny_tokenizer_json({"ab", "abc"}, json::array({"a b", json::array({"ab", "c"})}), tok::SplitRule::Qwen2);
  // An added token that swallows the whitespace around it.
  j["added_tokens"].push_back({{"id", 259}, {"content", "<m>"}, {"special", false}, {"lstrip", true},
                               {"rstrip", true}, {"single_word", false}, {"normalized", false}});
  const std::string path = write_file("tok_tiny/tokenizer.json", j.dump());
  const Tokenizer t = load_tokenizer(fs::path(path).parent_path().string());
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{257}));
  EXPECT_EQ(t.encode("abx<|end|>"), (std::vector<int32_t>{256, 'x', 258}));
  EXPECT_EQ(t.encode("x \t<m>\u3000 y"), (std::vector<int32_t>{'x', 259, 'y'}));
  EXPECT_EQ(t.encode("x <|end|> y"), (std::vector<int32_t>{'x', ' ', 258, ' ', 'y'}));
  EXPECT_EQ(t.decode(t.encode("héllo wörld\n")), "héllo wörld\n");
  EXPECT_EQ(t.decode(std::vector<int32_t>{258}), "<|end|>");
  EXPECT_NE(error_of([&] { t.decode(std::vector<int32_t>{260}); }).find("260"), std::string::npos);
}

TEST(TokenizerHfJson, MalformedFilesNameTheProblem) {
  struct Case {
    const char* name;
    std::string text;
    std::string expect;  // a part of the message
  };
  json unknown_merge = tiny_tokenizer_json({"ab"}, json::array({"a b", "ab zz"}), tok::SplitRule::Qwen2);
  json missing_result = tiny_tokenizer_json({}, json::array({"a b"}), tok::SplitRule::Qwen2);
  json bad_regex = tiny_tokenizer_json({}, json::array(), tok::SplitRule::Qwen2);
  bad_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+";
  json no_model = tiny_tokenizer_json({}, json::array(), tok::SplitRule::Qwen2);
  no_model.erase("model");
  json bad_vocab = tiny_tokenizer_json({}, json::array(), tok::SplitRule::Qwen2);
  bad_vocab["model"]["vocab"]["x"] = "seven";
  json missing_byte = tiny_tokenizer_json({}, json::array(), tok::SplitRule::Qwen2);
  missing_byte["model"]["vocab"].erase("Ġ");
  json wordpiece = tiny_tokenizer_json({}, json::array(), tok::SplitRule::Qwen2);
  wordpiece["model"]["type"] = "WordPiece";
  const std::vector<Case> cases = {
      {"not_json", "{\"model\": ", "not valid JSON"},
      {"no_model", no_model.dump(), "'(top level).model'"},
      {"unknown_merge", unknown_merge.dump(), "model.merges[1] 'ab zz': token 'zz' is not in the vocabulary"},
      {"missing_result", missing_result.dump(), "the merged token 'ab'"},
      {"bad_regex", bad_regex.dump(), "\\w+"},
      {"bad_vocab", bad_vocab.dump(), "'x' must have an integer id"},
      {"missing_byte", missing_byte.dump(), "byte 0x20"},
      {"wordpiece", wordpiece.dump(), "WordPiece"},
  };
  for (const Case& c : cases) {
    const std::string path = write_file(std::string("tok_bad_") + c.name + "/tokenizer.json", c.text);
    const std::string msg = error_of([&] { load_tokenizer(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
  }
}

TEST(TokenizerSplit, QwenAndLlama3Rules) {
  using V = std::vector<std::string>;
  const auto q = tok::SplitRule::Qwen2;
  const auto l = tok::SplitRule::Llama3;
  // Llama-3 groups digits by up to three from the left; Qwen splits every digit.
  EXPECT_EQ(pieces("1234567 x", l), (V{"123", "456", "7", " x"}));
  EXPECT_EQ(pieces("1234567 x", q), (V{"1", "2", "3", "4", "5", "6", "7", " x"}));
  EXPECT_EQ(pieces("v12.345", l), (V{"v", "12", ".", "345"}));
  EXPECT_EQ(pieces("٣٤٥٦", l), (V{"٣٤٥", "٦"}));  // Arabic-Indic digits are \p{N}
  // Contractions in any case, then letters; a leading non-letter joins the word.
  EXPECT_EQ(pieces("I'M we'Re", l), (V{"I", "'M", " we", "'Re"}));
  EXPECT_EQ(pieces("'quoted'", q), (V{"'quoted", "'"}));
  // Whitespace: a run before a word leaves its last space to the word; at the end it stays whole.
  EXPECT_EQ(pieces("a   b   ", q), (V{"a", "  ", " b", "   "}));
  EXPECT_EQ(pieces("x  \n y", q), (V{"x", "  \n", " y"}));
  EXPECT_EQ(pieces("end.\r\n\tnext", q), (V{"end", ".\r\n", "\tnext"}));
  EXPECT_EQ(pieces("\xC2\xA0\xC2\xA0x", q), (V{"\xC2\xA0", "\xC2\xA0x"}));  // NBSP is \s
  EXPECT_EQ(pieces(" !!?\n\nx", q), (V{" !!?\n\n", "x"}));
}

TEST(TokenizerHfJson, Llama3IgnoreMergesAndDigits) {
  // "abc" is a vocabulary entry that the merges cannot build; ignore_merges finds it whole.
  const json j = tiny_tokenizer_json({"ab", "abc", "12", "123"}, json::array({"a b", "1 2", "12 3"}), tok::SplitRule::Llama3);
  const std::string path = write_file("tok_llama3/tokenizer.json", j.dump());
  const Tokenizer t = load_tokenizer(path);
  EXPECT_EQ(t.split_rule(), tok::SplitRule::Llama3);
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{257}));
  EXPECT_EQ(t.encode("abcd"), (std::vector<int32_t>{256, 'c', 'd'}));
  EXPECT_EQ(t.encode("12312"), (std::vector<int32_t>{259, 258}));
  io::GgufWriter w;
  t.write_gguf_metadata(w);
  const std::string gguf = test::temp_dir() + "/tokenizer_llama3.gguf";
  w.write(gguf);
  const Tokenizer g = load_tokenizer(gguf);
  EXPECT_EQ(g.encode("abc 12312"), t.encode("abc 12312"));
}

TEST(TokenizerCli, TokenizeAndDetokenize) {
  CSQ_REQUIRE_FIXTURES();
  const std::string text = "<|im_start|>user\nMap CVE-2024-3094 to a CWE 🔐<|im_end|>\n";
  auto r = test::run_csq({"tokenize", "--model", qwen_dir()}, text);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ids = json::parse(r.out).get<std::vector<int32_t>>();
  EXPECT_EQ(ids, qwen().encode(text));

  r = test::run_csq({"tokenize", "--model", qwen_dir(), "--no-special"}, text);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).get<std::vector<int32_t>>(), qwen().encode(text, false));

  r = test::run_csq({"detokenize", "--model", qwen_dir()}, json(ids).dump());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, text);

  r = test::run_csq({"detokenize", "--model", qwen_dir()}, "[9707, 200000]");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("200000"), std::string::npos) << r.err;
}

TEST(TokenizerCli, JsonLines) {
  CSQ_REQUIRE_FIXTURES();
  auto r = test::run_csq({"tokenize", "--model", qwen_dir(), "--jsonl"},
                         "{\"text\": \"Hello world\"}\n\n{\"text\": \"<|im_end|>\"}\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"ids\": [9707,1879]}\n{\"ids\": [151645]}\n");

  r = test::run_csq({"tokenize", "--model", qwen_dir(), "--jsonl"}, "{\"text\": \"ok\"}\n{\"txt\": 1}\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;

  r = test::run_csq({"tokenize", "--model", test::fixture("gguf/qwen3-tiny-gqa-F16.gguf")}, "hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tokenizer"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace csq
