#include "tokenizer/tokenizer.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>

#include "base/error.h"
#include "tokenizer/tokenizer_spec.h"
#include "tokenizer/utf8.h"

namespace csq {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  shift_ = 60;
  while (cap < 2 * n) {
    cap <<= 1;
    --shift_;
  }
  keys_.assign(cap, kEmpty);
  values_.assign(cap, kEmpty);
  mask_ = cap - 1;
}

void MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  const uint64_t key = pack(left, right);
  size_t i = slot(key);
  while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
  keys_[i] = key;
  values_[i] = (uint64_t(uint32_t(rank)) << 32) | uint32_t(merged);
}

void finalize(TokenizerSpec& s) {
  const size_t n = s.tokens.size();
  const std::string& src = s.source;
  s.string_to_id.reserve(n);
  s.bytes_offset.assign(1, 0);
  s.bytes_offset.reserve(n + 1);
  for (size_t id = 0; id < n; ++id) {
    const std::string& t = s.tokens[id];
    if (s.kinds[id] != TokenKind::Absent) {
      s.string_to_id.emplace(t, int32_t(id));
      // HF's ByteLevel decoder: a token outside the byte alphabet is emitted as its own UTF-8.
      const size_t at = s.bytes_arena.size();
      if (!tok::byte_level_decode(t, s.bytes_arena)) {
        s.bytes_arena.resize(at);
        s.bytes_arena += t;
      }
      if (s.ignore_merges && s.kinds[id] == TokenKind::Normal)
        s.bytes_to_id.emplace(s.bytes_arena.substr(at), int32_t(id));
    }
    s.bytes_offset.push_back(uint32_t(s.bytes_arena.size()));
  }

  for (int b = 0; b < 256; ++b) {
    std::string sym;
    tok::append_utf8(tok::byte_to_codepoint(uint8_t(b)), sym);
    const auto it = s.string_to_id.find(sym);
    if (it == s.string_to_id.end() || s.kinds[it->second] != TokenKind::Normal) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      fail_input(src + ": the vocabulary lacks the byte-level token '" + sym + "' for byte " + hex +
                 "; not a usable byte-level BPE tokenizer");
    }
    s.byte_ids[b] = it->second;
  }

  s.merges.clear();
  s.merges.reserve(s.merge_strings.size());
  s.merge_table.reserve(s.merge_strings.size());
  std::string joined;
  for (size_t rank = 0; rank < s.merge_strings.size(); ++rank) {
    // Named references, not a structured binding: the lambda below captures them.
    const std::string& a = s.merge_strings[rank].first;
    const std::string& b = s.merge_strings[rank].second;
    joined.assign(a).append(b);
    auto lookup = [&](const std::string& t, const char* what) {
      const auto it = s.string_to_id.find(t);
      if (it == s.string_to_id.end())
        fail_input(src + ": " + s.merges_field + "[" + std::to_string(rank) + "] '" + a + " " + b + "': " +
                   what + " '" + t + "' is not in the vocabulary");
      return it->second;
    };
    const int32_t left = lookup(a, "token");
    const int32_t right = lookup(b, "token");
    const int32_t merged = lookup(joined, "the merged token");
    s.merges.emplace_back(left, right);
    s.merge_table.insert(left, right, int32_t(rank), merged);
  }
  s.merge_strings.clear();
  s.merge_strings.shrink_to_fit();

  for (size_t i = 0; i < s.added.size(); ++i) {
    const AddedToken& t = s.added[i];
    if (t.content.empty()) fail_input(src + ": added token " + std::to_string(t.id) + " has empty content");
    s.added_by_first_byte[uint8_t(t.content[0])].push_back(int32_t(i));
  }
  for (auto& list : s.added_by_first_byte) {
    std::stable_sort(list.begin(), list.end(), [&](int32_t x, int32_t y) {
      return s.added[x].content.size() > s.added[y].content.size();
    });
  }

  auto check_id = [&](const std::optional<int32_t>& id, const char* what) {
    if (id && (*id < 0 || size_t(*id) >= n || s.kinds[*id] == TokenKind::Absent))
      fail_input(src + ": " + what + " token id " + std::to_string(*id) + " is not in the vocabulary");
  };
  check_id(s.bos, "bos");
  check_id(s.eos, "eos");
  check_id(s.pad, "pad");

  static std::atomic<uint64_t> next_owner{1};
  s.cache_owner = next_owner.fetch_add(1);
}

namespace {

// Per-thread direct-mapped cache of the BPE result of short pieces: text repeats words, and
// a hit costs one hash instead of a merge loop. Bounded (1 MiB per thread); entries are tagged
// with the tokenizer's owner id, so tokenizers never see each other's results.
struct CacheSlot {
  uint64_t owner = 0;
  uint8_t key_len = 0;
  uint8_t n_ids = 0;
  char key[22];
  int32_t ids[8];
};
static_assert(sizeof(CacheSlot) == 64);
constexpr size_t kCacheSlots = 1 << 14;
constexpr size_t kMaxCachedKey = sizeof(CacheSlot::key);
constexpr size_t kMaxCachedIds = sizeof(CacheSlot::ids) / sizeof(int32_t);

CacheSlot& cache_slot(std::string_view piece) {
  thread_local std::vector<CacheSlot> slots(kCacheSlots);
  return slots[std::hash<std::string_view>{}(piece) & (kCacheSlots - 1)];
}

struct BpeScratch {
  std::vector<int32_t> ids, prev, next;
  std::vector<uint64_t> heap;  // rank << 32 | position, as a min-heap
  std::string normalized, sanitized;
};

// Merges the bytes of one piece: repeatedly the lowest-rank adjacent pair, leftmost on ties
// (HF's order), with a heap of candidate pairs and a linked list of symbols. Stale heap
// entries are skipped by re-checking the pair at their position.
void merge_piece(const TokenizerSpec& s, std::string_view piece, std::vector<int32_t>& out, BpeScratch& sc) {
  const size_t n = piece.size();
  sc.ids.resize(n);
  sc.prev.resize(n);
  sc.next.resize(n);
  sc.heap.clear();
  for (size_t i = 0; i < n; ++i) {
    sc.ids[i] = s.byte_ids[uint8_t(piece[i])];
    sc.prev[i] = int32_t(i) - 1;
    sc.next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  }
  auto push_pair = [&](int32_t pos) {
    const int32_t right = sc.next[pos];
    if (right < 0) return;
    const uint64_t found = s.merge_table.find(sc.ids[pos], sc.ids[right]);
    if (found == MergeTable::kEmpty) return;
    sc.heap.push_back((found & 0xFFFFFFFF00000000ull) | uint32_t(pos));
    std::push_heap(sc.heap.begin(), sc.heap.end(), std::greater<>());
  };
  for (size_t i = 0; i + 1 < n; ++i) push_pair(int32_t(i));
  while (!sc.heap.empty()) {
    std::pop_heap(sc.heap.begin(), sc.heap.end(), std::greater<>());
    const uint64_t top = sc.heap.back();
    sc.heap.pop_back();
    const int32_t pos = int32_t(top & 0xFFFFFFFF);
    const int32_t right = sc.next[pos];
    if (sc.ids[pos] < 0 || right < 0) continue;  // merged away meanwhile
    const uint64_t found = s.merge_table.find(sc.ids[pos], sc.ids[right]);
    if (found == MergeTable::kEmpty || (found >> 32) != (top >> 32)) continue;  // stale
    sc.ids[pos] = int32_t(found & 0xFFFFFFFF);
    sc.ids[right] = -1;
    sc.next[pos] = sc.next[right];
    if (sc.next[pos] >= 0) sc.prev[sc.next[pos]] = pos;
    if (sc.prev[pos] >= 0) push_pair(sc.prev[pos]);
    push_pair(pos);
  }
  for (int32_t i = 0; i >= 0; i = sc.next[i]) out.push_back(sc.ids[i]);
}

void bpe(const TokenizerSpec& s, std::string_view piece, std::vector<int32_t>& out, BpeScratch& sc) {
  if (piece.size() == 1) {
    out.push_back(s.byte_ids[uint8_t(piece[0])]);
    return;
  }
  if (s.ignore_merges) {
    if (const auto it = s.bytes_to_id.find(piece); it != s.bytes_to_id.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (piece.size() > kMaxCachedKey) {
    merge_piece(s, piece, out, sc);
    return;
  }
  CacheSlot& slot = cache_slot(piece);
  if (slot.owner == s.cache_owner && slot.key_len == piece.size() &&
      std::memcmp(slot.key, piece.data(), piece.size()) == 0) {
    out.insert(out.end(), slot.ids, slot.ids + slot.n_ids);
    return;
  }
  const size_t first = out.size();
  merge_piece(s, piece, out, sc);
  const size_t count = out.size() - first;
  if (count <= kMaxCachedIds) {
    slot.owner = s.cache_owner;
    slot.key_len = uint8_t(piece.size());
    slot.n_ids = uint8_t(count);
    std::memcpy(slot.key, piece.data(), piece.size());
    std::copy(out.begin() + ptrdiff_t(first), out.end(), slot.ids);
  }
}

// Encodes text[begin, end). `untrusted`: the segment holds untrusted bytes, so a merge result
// that is not a Normal token (a vocabulary whose merges reach an added token) is split back into
// its byte tokens. `token_text`: receives each id's byte range in `text`.
void encode_segment(const TokenizerSpec& s, std::string_view text, size_t begin, size_t end, bool untrusted,
                    std::vector<int32_t>& out, std::vector<TextRange>* token_text, BpeScratch& sc) {
  if (begin >= end) return;
  std::string_view seg = text.substr(begin, end - begin);
  bool changed = false;
  if (!tok::utf8_valid(seg)) {
    sc.sanitized = tok::utf8_lossy(seg);
    seg = sc.sanitized;
    changed = true;
  }
  if (s.nfc) {
    sc.normalized.clear();
    tok::nfc_append(seg, sc.normalized);
    changed = changed || sc.normalized != seg;
    seg = sc.normalized;
  }
  const size_t first = out.size();
  for (size_t pos = 0; pos < seg.size();) {
    const size_t next = tok::split_next(seg, pos, s.rule);
    bpe(s, seg.substr(pos, next - pos), out, sc);
    pos = next;
  }
  if (untrusted) {
    for (size_t i = first; i < out.size(); ++i) {
      if (s.kinds[size_t(out[i])] == TokenKind::Normal) continue;
      const uint32_t a = s.bytes_offset[size_t(out[i])];
      const std::string bytes = s.bytes_arena.substr(a, s.bytes_offset[size_t(out[i]) + 1] - a);
      std::vector<int32_t> split;
      for (char c : bytes) split.push_back(s.byte_ids[uint8_t(c)]);
      out.erase(out.begin() + ptrdiff_t(i));
      out.insert(out.begin() + ptrdiff_t(i), split.begin(), split.end());
      i += split.size() - 1;
    }
  }
  if (!token_text) return;
  size_t at = begin;
  for (size_t i = first; i < out.size(); ++i) {
    if (changed) {
      token_text->push_back({begin, end});
      continue;
    }
    const uint32_t a = s.bytes_offset[size_t(out[i])];
    const size_t n = s.bytes_offset[size_t(out[i]) + 1] - a;
    token_text->push_back({at, at + n});
    at += n;
  }
}

// Whether the well-formed sequence of `len` bytes at p is a White_Space character.
bool is_whitespace(const uint8_t* p, int len) {
  uint32_t cp = len == 1 ? p[0] : p[0] & (0x7F >> len);
  for (int i = 1; i < len; ++i) cp = (cp << 6) | (p[i] & 0x3F);
  return u_isUWhiteSpace(UChar32(cp));
}

// Start of the whitespace run that ends at `end`, not before `floor` (lstrip).
size_t space_before(std::string_view text, size_t end, size_t floor) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  while (end > floor) {
    size_t at = end - 1;  // back over continuation bytes to the character's first byte
    while (at > floor && (p[at] & 0xC0) == 0x80 && end - at < 4) --at;
    const int len = tok::utf8_sequence(p + at, end - at);
    if (len != int(end - at) || !is_whitespace(p + at, len)) break;
    end = at;
  }
  return end;
}

// End of the whitespace run that starts at `pos`, not after `limit` (rstrip).
size_t space_after(std::string_view text, size_t pos, size_t limit) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  while (pos < limit) {
    const int len = tok::utf8_sequence(p + pos, limit - pos);
    if (len <= 0 || !is_whitespace(p + pos, len)) break;
    pos += size_t(len);
  }
  return pos;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<TokenizerSpec> spec) : s_(std::move(spec)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  encode_append(text, out, parse_special);
  return out;
}

void Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& out, bool parse_special) const {
  encode_impl(text, parse_special, {}, out, nullptr);
}

std::vector<int32_t> Tokenizer::encode_guarded(std::string_view text, std::span<const TextRange> untrusted,
                                               std::vector<TextRange>* token_text) const {
  size_t previous_end = 0;
  for (const TextRange& r : untrusted) {
    if (r.begin > r.end || r.end > text.size() || r.begin < previous_end)
      fail_usage("untrusted text ranges must be sorted, disjoint and inside the text (" + std::to_string(r.begin) +
                 ".." + std::to_string(r.end) + " of " + std::to_string(text.size()) + " bytes)");
    previous_end = r.end;
  }
  std::vector<int32_t> out;
  encode_impl(text, true, untrusted, out, token_text);
  return out;
}

void Tokenizer::encode_impl(std::string_view text, bool parse_special, std::span<const TextRange> untrusted,
                            std::vector<int32_t>& out, std::vector<TextRange>* token_text) const {
  const TokenizerSpec& s = *s_;
  BpeScratch sc;
  size_t next_range = 0;  // the first untrusted range that does not end before the scan position
  // Whether text[begin, end) overlaps a non-empty untrusted range.
  auto touches_untrusted = [&](size_t begin, size_t end) {
    auto r = std::partition_point(untrusted.begin(), untrusted.end(), [&](const TextRange& u) { return u.end <= begin; });
    for (; r != untrusted.end() && r->begin < end; ++r)
      if (r->end > r->begin) return true;
    return false;
  };
  auto emit_segment = [&](size_t begin, size_t end) {
    encode_segment(s, text, begin, end, touches_untrusted(begin, end), out, token_text, sc);
  };
  size_t seg_start = 0;
  size_t floor = 0;  // lstrip never reaches back into untrusted text
  size_t i = 0;
  while (i < text.size()) {
    while (next_range < untrusted.size() && untrusted[next_range].end <= i) ++next_range;
    size_t limit = text.size();  // a match must end by here: untrusted text is never part of one
    if (next_range < untrusted.size()) {
      const TextRange& r = untrusted[next_range];
      if (r.begin <= i) {
        i = floor = r.end;
        continue;
      }
      limit = r.begin;
    }
    const auto& candidates = s.added_by_first_byte[uint8_t(text[i])];
    const AddedToken* hit = nullptr;
    for (int32_t c : candidates) {
      const AddedToken& t = s.added[c];
      if ((t.special && !parse_special) || limit - i < t.content.size()) continue;
      if (std::memcmp(text.data() + i, t.content.data(), t.content.size()) == 0) {
        hit = &t;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t start = i;
    size_t end = i + hit->content.size();
    if (hit->lstrip) start = space_before(text, start, std::max(seg_start, floor));
    if (hit->rstrip) end = space_after(text, end, limit);
    emit_segment(seg_start, start);
    out.push_back(hit->id);
    if (token_text) token_text->push_back({start, end});
    seg_start = i = end;
  }
  emit_segment(seg_start, text.size());
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string bytes;
  for (int32_t id : ids) bytes += token_bytes(id);
  return tok::utf8_valid(bytes) ? bytes : tok::utf8_lossy(bytes);
}

int32_t Tokenizer::vocab_size() const { return int32_t(s_->tokens.size()); }

TokenKind Tokenizer::kind(int32_t id) const {
  return id >= 0 && size_t(id) < s_->kinds.size() ? s_->kinds[id] : TokenKind::Absent;
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (kind(id) == TokenKind::Absent)
    fail_input("token id " + std::to_string(id) + " is not in the vocabulary of " + s_->source + " (" +
               std::to_string(vocab_size()) + " ids)");
  const uint32_t a = s_->bytes_offset[id];
  return std::string_view(s_->bytes_arena).substr(a, s_->bytes_offset[id + 1] - a);
}

const std::string& Tokenizer::token_string(int32_t id) const {
  token_bytes(id);  // validates the id
  return s_->tokens[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view token_string) const {
  const auto it = s_->string_to_id.find(token_string);
  if (it == s_->string_to_id.end()) return std::nullopt;
  return it->second;
}

std::optional<int32_t> Tokenizer::bos_id() const { return s_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return s_->eos; }
std::optional<int32_t> Tokenizer::pad_id() const { return s_->pad; }
bool Tokenizer::add_bos() const { return s_->add_bos; }
tok::SplitRule Tokenizer::split_rule() const { return s_->rule; }
bool Tokenizer::nfc() const { return s_->nfc; }

std::string IncrementalDecoder::push(int32_t id) {
  pending_ += tok_->token_bytes(id);
  const size_t ready = pending_.size() - tok::utf8_incomplete_tail(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return tok::utf8_valid(out) ? out : tok::utf8_lossy(out);
}

std::string IncrementalDecoder::finish() {
  std::string out = tok::utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace csq
