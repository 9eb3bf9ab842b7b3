// Internal: what a loader fills in (the first block) and what finalize() derives from it for
// fast encoding. Shared by tokenizer.cpp and tokenizer_load.cpp only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace csq {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;  // the match swallows whitespace on its left
  bool rstrip = false;  // ... and on its right
};

// (left id, right id) -> (rank, merged id); open addressing, built once.
class MergeTable {
 public:
  void reserve(size_t n);
  void insert(int32_t left, int32_t right, int32_t rank, int32_t merged);  // a later duplicate wins, as in HF
  // Packs rank << 32 | merged id; ~0 when the pair does not merge.
  uint64_t find(int32_t left, int32_t right) const {
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == kEmpty) return kEmpty;
    }
  }
  static constexpr uint64_t kEmpty = ~uint64_t(0);

 private:
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  size_t slot(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }
  std::vector<uint64_t> keys_, values_;
  size_t mask_ = 0;
  int shift_ = 64;
};

// Lets the maps below be searched with a string_view, without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct TokenizerSpec {
  // Filled by a loader.
  std::string source;        // file named in errors
  std::string merges_field;  // "model.merges" or "tokenizer.ggml.merges"
  std::vector<std::string> tokens;  // by id; empty where kinds[id] == Absent
  std::vector<TokenKind> kinds;
  std::vector<std::pair<std::string, std::string>> merge_strings;  // by rank
  std::vector<AddedToken> added;
  tok::SplitRule rule = tok::SplitRule::Qwen2;
  bool nfc = false;
  bool ignore_merges = false;  // a piece that is itself a vocabulary entry skips merging
  std::optional<int32_t> bos, eos, pad;
  bool add_bos = false;

  // Derived by finalize().
  std::vector<std::pair<int32_t, int32_t>> merges;  // by rank
  MergeTable merge_table;
  std::string bytes_arena;  // decoded bytes of every token
  std::vector<uint32_t> bytes_offset;  // tokens.size() + 1 entries
  std::array<int32_t, 256> byte_ids{};  // the single-byte token of each byte
  StringMap string_to_id;
  StringMap bytes_to_id;  // Normal tokens by their bytes; built only for ignore_merges
  std::array<std::vector<int32_t>, 256> added_by_first_byte;  // indices into `added`, longest first
  uint64_t cache_owner = 0;  // tags this tokenizer's entries in the per-thread word cache
};

// Validates the loader's fields (naming `source` and the field on error) and builds the
// derived ones.
void finalize(TokenizerSpec& spec);

}  // namespace csq
