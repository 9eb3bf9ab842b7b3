#include "tokenizer/utf8.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <array>

#include "base/error.h"

namespace csq::tok {

int utf8_sequence(const uint8_t* s, size_t n) {
  const uint8_t b0 = s[0];
  if (b0 < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Unicode table 3-7)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int i = 1; i < need; ++i) {
    if (size_t(i) >= n) return -i;
    const uint8_t b = s[i];
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return -i;
  }
  return need;
}

size_t utf8_incomplete_tail(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  // A sequence is at most 4 bytes, so an unfinished one starts within the last 3.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t at = n - back;
    if ((p[at] & 0xC0) == 0x80) continue;  // continuation byte: look further back
    if (p[at] < 0xC2 || p[at] > 0xF4) return 0;  // ASCII or a byte that never starts a sequence
    const int r = utf8_sequence(p + at, back);
    // Unfinished exactly when every available byte fitted: r == -back.
    return r == -int(back) ? back : 0;
  }
  return 0;
}

bool utf8_valid(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const int r = utf8_sequence(p + i, n - i);
    if (r < 0) return false;
    i += size_t(r);
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const int r = utf8_sequence(p + i, n - i);
    if (r > 0) {
      out.append(s.data() + i, size_t(r));
      i += size_t(r);
    } else {
      out += "\xEF\xBF\xBD";
      i += size_t(-r);
    }
  }
  return out;
}

void nfc_append(std::string_view s, std::string& out) {
  bool may_change = false;
  for (unsigned char c : s) {
    if (c >= 0xCC) {
      may_change = true;
      break;
    }
  }
  if (!may_change) {
    out.append(s);
    return;
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) fail_runtime(std::string("ICU NFC normalizer unavailable: ") + u_errorName(status));
  const icu::StringPiece piece(s.data(), int32_t(s.size()));
  if (nfc->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) {
    out.append(s);
    return;
  }
  status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  nfc->normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) fail_runtime(std::string("ICU NFC normalization failed: ") + u_errorName(status));
}

namespace {

struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};  // the alphabet's code points are all below 256 + 68
  ByteAlphabet() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? uint32_t(b) : next++;
      to_byte[to_cp[b]] = int16_t(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return alphabet().to_cp[b]; }

int codepoint_to_byte(uint32_t cp) { return cp < 324 ? alphabet().to_byte[cp] : -1; }

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool byte_level_decode(std::string_view token, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(token.data());
  const size_t n = token.size();
  size_t i = 0;
  while (i < n) {
    const int r = utf8_sequence(p + i, n - i);
    if (r <= 0 || r > 2) return false;  // the alphabet lies below U+0800
    const uint32_t cp = r == 1 ? p[i] : (uint32_t(p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F);
    const int b = codepoint_to_byte(cp);
    if (b < 0) return false;
    out += char(b);
    i += size_t(r);
  }
  return true;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) append_utf8(byte_to_codepoint(c), out);
  return out;
}

}  // namespace csq::tok
