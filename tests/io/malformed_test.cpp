// Truncated, corrupted and hostile model files: each must be refused with a csq::Error
// (exit code 2 from the CLI) whose message names what is wrong — never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "base/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_paths.h"

namespace csq {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

Bytes random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

// A complete, loadable qwen3 GGUF with hidden 32, 2 heads of 16, 1 kv head, ffn 64, vocab 64.
struct TinyGguf {
  std::string arch = "qwen3";
  bool alignment_not_power_of_two = false;
  bool duplicate_key = false;
  bool skip_block_count = false;
  std::string skip_tensor;
  std::string wrong_shape_tensor;
  DType q_type = DType::F32;

  Bytes build() const {
    io::GgufWriter w;
    w.set_string("general.architecture", arch);
    if (alignment_not_power_of_two) w.set_u32("general.alignment", 48);
    if (duplicate_key) w.set_string("general.architecture", arch);
    w.set_u32(arch + ".context_length", 256);
    w.set_u32(arch + ".embedding_length", 32);
    if (!skip_block_count) w.set_u32(arch + ".block_count", 1);
    w.set_u32(arch + ".feed_forward_length", 64);
    w.set_u32(arch + ".attention.head_count", 2);
    w.set_u32(arch + ".attention.head_count_kv", 1);
    w.set_u32(arch + ".attention.key_length", 16);
    w.set_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
    w.set_f32(arch + ".rope.freq_base", 1e6f);
    auto add = [&](const std::string& name, std::vector<int64_t> dims, DType type = DType::F32) {
      if (name == skip_tensor) return;
      if (name == wrong_shape_tensor) dims[0] *= 2;
      int64_t n = 1;
      for (int64_t d : dims) n *= d;
      Bytes bytes(size_t(row_bytes(type, n)));
      if (type == DType::F32) {
        std::vector<float> values(size_t(n), 0.01f);
        std::memcpy(bytes.data(), values.data(), bytes.size());
      }
      w.add_tensor(name, type, dims, std::move(bytes));
    };
    add("token_embd.weight", {32, 64});
    add("output_norm.weight", {32});
    add("blk.0.attn_norm.weight", {32});
    add("blk.0.attn_q.weight", {32, 32}, q_type);
    add("blk.0.attn_k.weight", {32, 16});
    add("blk.0.attn_v.weight", {32, 16});
    add("blk.0.attn_output.weight", {32, 32});
    add("blk.0.attn_q_norm.weight", {16});
    add("blk.0.attn_k_norm.weight", {16});
    add("blk.0.ffn_norm.weight", {32});
    add("blk.0.ffn_gate.weight", {32, 64});
    add("blk.0.ffn_up.weight", {32, 64});
    add("blk.0.ffn_down.weight", {64, 32});
    const std::string path = test::temp_dir() + "/tiny-build.gguf";
    w.write(path);
    return read_file(path);
  }
};

// Position just after the name string of tensor `name` in the tensor-info table.
size_t tensor_info_at(const Bytes& file, const std::string& name) {
  Bytes needle(8);
  const uint64_t len = name.size();
  std::memcpy(needle.data(), &len, 8);
  needle.insert(needle.end(), name.begin(), name.end());
  // The tensor-info entry is the last occurrence (metadata strings come first).
  auto it = std::find_end(file.begin(), file.end(), needle.begin(), needle.end());
  EXPECT_NE(it, file.end()) << name;
  return size_t(it - file.begin()) + needle.size();
}

template <typename T>
void patch(Bytes& file, size_t at, T value) {
  std::memcpy(file.data() + at, &value, sizeof(T));
}

struct Case {
  std::string name;
  std::function<Bytes()> make;
  std::string expected;  // a fragment the error message must contain
};

std::vector<Case> gguf_cases() {
  const Bytes good = TinyGguf{}.build();
  // Offsets inside the tensor-info entry of blk.0.attn_k.weight (2 dims).
  const size_t k_info = tensor_info_at(good, "blk.0.attn_k.weight");
  const size_t k_ndims = k_info, k_dim0 = k_info + 4, k_type = k_info + 20, k_offset = k_info + 24;
  auto with = [good](std::function<void(Bytes&)> edit) {
    return [good, edit] {
      Bytes b = good;
      edit(b);
      return b;
    };
  };
  auto tiny = [](std::function<void(TinyGguf&)> edit) {
    return [edit] {
      TinyGguf t;
      edit(t);
      return t.build();
    };
  };
  return {
      {"empty file", [] { return Bytes{}; }, "truncated"},
      {"bad magic", with([](Bytes& b) { b[0] = 'X'; }), "not a GGUF file"},
      {"version 1", with([](Bytes& b) { patch<uint32_t>(b, 4, 1); }), "version 1"},
      {"version 99", with([](Bytes& b) { patch<uint32_t>(b, 4, 99); }), "version 99"},
      {"truncated header", with([](Bytes& b) { b.resize(100); }), "truncated"},
      {"truncated tensor data", with([](Bytes& b) { b.resize(b.size() - 100); }), "past the end"},
      {"absurd tensor count", with([](Bytes& b) { patch<uint64_t>(b, 8, uint64_t(1) << 60); }), "tensor count"},
      {"absurd metadata count", with([](Bytes& b) { patch<uint64_t>(b, 16, uint64_t(1) << 58); }), "metadata count"},
      {"huge string length", with([](Bytes& b) { patch<uint64_t>(b, 24, ~uint64_t(0)); }), "string length"},
      {"unknown value type", with([](Bytes& b) { patch<uint32_t>(b, 24 + 8 + 20, 77); }), "unknown value type"},
      {"zero dimensions", with([=](Bytes& b) { patch<uint32_t>(b, k_ndims, 0); }), "dimensions"},
      {"seven dimensions", with([=](Bytes& b) { patch<uint32_t>(b, k_ndims, 7); }), "dimensions"},
      {"zero-sized dimension", with([=](Bytes& b) { patch<uint64_t>(b, k_dim0, 0); }), "dimension 0"},
      {"element count overflow", with([=](Bytes& b) { patch<uint64_t>(b, k_dim0, uint64_t(1) << 62); }), "overflow"},
      {"unknown tensor type", with([=](Bytes& b) { patch<uint32_t>(b, k_type, 99); }), "unknown type id 99"},
      {"unsupported IQ type", with([=](Bytes& b) { patch<uint32_t>(b, k_type, 16); }), "IQ2_XXS"},
      {"offset past end", with([=](Bytes& b) { patch<uint64_t>(b, k_offset, uint64_t(1) << 40); }), "past the end"},
      {"misaligned offset", with([=](Bytes& b) { patch<uint64_t>(b, k_offset, 3); }), "not aligned"},
      {"row not a block multiple", with([=](Bytes& b) { patch<uint32_t>(b, k_type, uint32_t(DType::Q4_K)); }), "block size"},
      {"alignment not a power of two", tiny([](TinyGguf& t) { t.alignment_not_power_of_two = true; }), "power of two"},
      {"duplicate metadata key", tiny([](TinyGguf& t) { t.duplicate_key = true; }), "appears twice"},
      {"wrong architecture", tiny([](TinyGguf& t) { t.arch = "gptneox"; }), "architecture 'gptneox'"},
      {"missing required metadata", tiny([](TinyGguf& t) { t.skip_block_count = true; }), "block_count"},
      {"missing tensor", tiny([](TinyGguf& t) { t.skip_tensor = "blk.0.ffn_down.weight"; }), "blk.0.ffn_down.weight"},
      {"shape mismatch", tiny([](TinyGguf& t) { t.wrong_shape_tensor = "blk.0.attn_v.weight"; }), "blk.0.attn_v.weight"},
      {"random bytes after magic", [] {
         Bytes b = random_bytes(4096, 7);
         std::memcpy(b.data(), "GGUF\x03\0\0\0", 8);
         return b;
       }, "count"},
  };
}

TEST(MalformedGguf, TinyModelLoads) {
  const std::string path = test::temp_dir() + "/tiny-ok.gguf";
  write_file(path, TinyGguf{}.build());
  auto model = Model::load(path);
  EXPECT_EQ(model->config().hidden_size, 32);
  EXPECT_TRUE(model->config().tied_embeddings);
}

TEST(MalformedGguf, EachIsRefusedWithAClearError) {
  const auto cases = gguf_cases();
  ASSERT_GE(cases.size(), 20u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = test::temp_dir() + "/malformed.gguf";
    write_file(path, c.make());
    try {
      Model::load(path);
      ADD_FAILURE() << "loaded without error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << "message: " << e.what();
      EXPECT_NE(std::string(e.what()).find("malformed.gguf"), std::string::npos) << "message must name the file";
    }
  }
}

TEST(MalformedGguf, CliExitsWithBadInput) {
  const std::string path = test::temp_dir() + "/cli-truncated.gguf";
  Bytes b = TinyGguf{}.build();
  b.resize(b.size() / 2);
  write_file(path, b);
  const auto r = test::run_csq({"generate", "--model", path, "--tokens", "1,2", "--max-tokens", "2", "--temperature",
                                "0", "--print-ids"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("cli-truncated.gguf"), std::string::npos) << r.err;
}

// Every prefix of a valid file either loads or fails cleanly (the fuzzers go further).
TEST(MalformedGguf, EveryTruncationFailsCleanly) {
  const Bytes good = TinyGguf{}.build();
  for (size_t n = 0; n < good.size(); n += 7) {
    try {
      io::GgufFile f(good.data(), n, "prefix");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
    }
  }
}

Bytes safetensors_file(const std::string& header, size_t payload) {
  Bytes b(8);
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + payload, 0);
  return b;
}

TEST(MalformedSafetensors, EachIsRefusedWithAClearError) {
  const std::vector<std::pair<std::string, Case>> cases = {
      {"short", {"shorter than its length field", [] { return Bytes{1, 2, 3}; }, "truncated"}},
      {"len", {"header length past end", [] {
                 Bytes b = safetensors_file("{}", 0);
                 b[0] = 0xff;
                 return b;
               }, "header length"}},
      {"json", {"header not JSON", [] { return safetensors_file("{not json", 0); }, "not a JSON object"}},
      {"dtype", {"unknown dtype", [] {
                   return safetensors_file(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2);
                 }, "F8_E4M3"}},
      {"range", {"offsets past the data", [] {
                   return safetensors_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
                 }, "outside"}},
      {"size", {"shape and size disagree", [] {
                  return safetensors_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16);
                }, "expected 12"}},
      {"overlap", {"overlapping tensors", [] {
                     return safetensors_file(
                         R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         12);
                   }, "overlap"}},
      {"shape", {"negative shape", [] {
                   return safetensors_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0);
                 }, "non-negative"}},
  };
  for (const auto& [id, c] : cases) {
    SCOPED_TRACE(c.name);
    const Bytes b = c.make();
    try {
      io::SafetensorsFile f(b.data(), b.size(), "bad.safetensors");
      ADD_FAILURE() << "parsed without error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
    }
  }
}

// A Hugging Face directory whose config.json is wrong in various ways.
TEST(MalformedHfDirectory, ConfigErrorsNameTheField) {
  CSQ_REQUIRE_FIXTURES();
  const std::string dir = test::temp_dir() + "/hf-bad";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(test::fixture("hf/qwen2-tiny/model.safetensors"), dir + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  const Bytes config = read_file(test::fixture("hf/qwen2-tiny/config.json"));
  const std::string good(config.begin(), config.end());
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {replace("\"hidden_size\": 128,", ""), "hidden_size"},
      {replace("\"model_type\": \"qwen2\"", "\"model_type\": \"mamba\""), "mamba"},
      {replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": \"two\""), "num_hidden_layers"},
      {replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 3"), "multiple"},
      {replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"), "model.layers.2"},
      {replace("\"hidden_size\": 128", "\"hidden_size\": 256"), "shape"},
      {"{\"model_type\": ", "invalid JSON"},
      {replace("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\""), "yarn"},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(expected);
    std::ofstream(dir + "/config.json", std::ios::trunc) << text;
    try {
      Model::load(dir);
      ADD_FAILURE() << "loaded without error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace csq
