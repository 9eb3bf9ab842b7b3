// Byte-level BPE tokenizer of the Qwen2/Qwen3 and Llama-3 families, exact to Hugging Face
// `tokenizers` (encode with add_special_tokens=False, decode with skip_special_tokens=False).
//
// Encoding: added tokens are cut out of the raw text first (leftmost-longest; special ones
// only when `parse_special`, non-special ones always, as HF does with split_special_tokens);
// each remaining segment is made well-formed UTF-8, NFC-normalized when the tokenizer says so,
// split by the family's regex rule (pretokenizer.h), and each piece is BPE-merged over its
// bytes by merge rank (lowest rank first, leftmost on ties).
//
// Invalid UTF-8 input: every ill-formed subpart is replaced by U+FFFD before tokenizing —
// what Python's `text.decode("utf-8", errors="replace")` followed by HF would produce. So
// encode never fails on text, and decode(encode(x)) == x exactly when x is well-formed (and NFC
// for NFC tokenizers).
//
// Decoding: token bytes are concatenated and ill-formed UTF-8 is replaced by U+FFFD, as HF's
// ByteLevel decoder does. IncrementalDecoder does the same while streaming.
//
// Memory: encoding holds the ids, at most one sanitized/normalized copy of the text, and a
// scratch of about 20 bytes per byte of the longest piece (pieces are words, numbers and
// punctuation runs; only an unbroken multi-megabyte run of letters makes this large).
//
// A Tokenizer is immutable after loading; encode/decode may run on several threads at once
// (the word cache is per thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/pretokenizer.h"

namespace csq::io {
class GgufFile;
class GgufWriter;
}  // namespace csq::io

namespace csq {

// A byte range [begin, end) of a text.
struct TextRange {
  size_t begin = 0;
  size_t end = 0;
  bool operator==(const TextRange&) const = default;
};

enum class TokenKind : uint8_t {
  Absent,       // no token has this id (a gap in the vocabulary)
  Normal,       // a BPE vocabulary entry
  Special,      // added token with special=true (GGUF type 3, control)
  UserDefined,  // added token with special=false (GGUF type 4): always matched in text
  Unused,       // GGUF type 5 padding entries: decodable, never produced by encode
};

struct TokenizerSpec;  // the loaded description, see tokenizer.cpp

class Tokenizer {
 public:
  // Hugging Face files. `config_json` (tokenizer_config.json) may be empty or absent; it
  // supplies bos/eos/pad and add_bos_token. Errors name the file and the field.
  static Tokenizer from_hf_files(const std::string& tokenizer_json, const std::string& config_json);
  // GGUF metadata (tokenizer.ggml.*). Errors name the file and the key.
  static Tokenizer from_gguf(const io::GgufFile& gguf);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  void encode_append(std::string_view text, std::vector<int32_t>& out, bool parse_special = true) const;

  // Encodes a text that mixes trusted text (a chat template's scaffold) with untrusted ranges
  // (message content, log fields; sorted, disjoint, inside `text`). Outside them it encodes as
  // encode(text, true). No added token, special or not (<|im_end|>, <think>, <tool_call>...),
  // is matched inside an untrusted range or across its edge, and a merge that would produce an
  // added token id there is undone into byte tokens; so every id drawn from untrusted bytes is a
  // Normal one. Plain text still merges across the edges as Hugging Face would, so a prompt whose
  // content holds no added-token string gets exactly HF's ids. `token_text`, when given, receives
  // for each id the bytes of `text` it came from (a whole pre-tokenized segment for tokens of a
  // segment that UTF-8 repair or NFC changed). Throws csq::Error (Usage) on bad ranges.
  std::vector<int32_t> encode_guarded(std::string_view text, std::span<const TextRange> untrusted,
                                      std::vector<TextRange>* token_text = nullptr) const;

  // Fails (BadInput) naming the first id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids) const;

  int32_t vocab_size() const;  // one past the largest id
  TokenKind kind(int32_t id) const;  // Absent for ids out of range
  // The token's bytes as decode emits them (may be part of a UTF-8 character). Fails
  // naming the id when it has no token.
  std::string_view token_bytes(int32_t id) const;
  // The vocabulary string (byte-level text such as "Ġthe", or an added token's content).
  const std::string& token_string(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view token_string) const;

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  bool add_bos() const;  // whether prompts conventionally start with bos (Llama-3 yes, Qwen no)
  tok::SplitRule split_rule() const;
  bool nfc() const;

  // Writes the tokenizer as GGUF metadata (tokenizer.ggml.model = gpt2, pre, tokens,
  // token_type, merges, bos/eos/padding ids, add_bos_token), the inverse of from_gguf.
  // `n_vocab` pads the token list with "[PAD<i>]" unused entries up to the model's embedding
  // rows (0: the tokenizer's own size); gaps in the ids are padded the same way.
  void write_gguf_metadata(io::GgufWriter& writer, int32_t n_vocab = 0) const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerSpec> spec);
  void encode_impl(std::string_view text, bool parse_special, std::span<const TextRange> untrusted,
                   std::vector<int32_t>& out, std::vector<TextRange>* token_text) const;

  std::unique_ptr<TokenizerSpec> s_;
};

// Streams ids to text without ever splitting a UTF-8 character: bytes of an unfinished
// character are held back until the token that completes it arrives. The concatenation of
// every push() and a final finish() equals Tokenizer::decode of all the ids.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer) : tok_(&tokenizer) {}
  std::string push(int32_t id);
  std::string finish();  // emits what is held back (ill-formed, so as U+FFFD) and resets

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

// `model_path`: a directory holding tokenizer.json (and optionally tokenizer_config.json), a
// tokenizer.json file, or a .gguf file. Fails with BadInput explaining why the tokenizer is
// missing or unusable (e.g. a GGUF with a placeholder vocabulary).
Tokenizer load_tokenizer(const std::string& model_path);

// Why load_tokenizer(model_path) would fail, or nullopt when it would succeed; never throws
// csq::Error. It loads the tokenizer, so it costs as much as load_tokenizer.
std::optional<std::string> tokenizer_problem(const std::string& model_path);

}  // namespace csq
