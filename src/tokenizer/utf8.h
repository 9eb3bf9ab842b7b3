// UTF-8 helpers of the tokenizer: validation with the "maximal subpart" replacement rule that
// Python's errors='replace' and Rust's from_utf8_lossy share, NFC normalization, and the GPT-2
// byte-level alphabet (bytes_to_unicode).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace csq::tok {

// Length of the well-formed UTF-8 sequence starting at s[0] (1..4), or, when it is ill-formed,
// minus the length of its maximal subpart (the bytes one U+FFFD replaces). n >= 1.
int utf8_sequence(const uint8_t* s, size_t n);

// Bytes at the end of `s` that start a well-formed sequence but are too few to finish it
// (0..3): what a streaming decoder must hold back.
size_t utf8_incomplete_tail(std::string_view s);

bool utf8_valid(std::string_view s);
// `s` with every ill-formed subpart replaced by U+FFFD (EF BF BD).
std::string utf8_lossy(std::string_view s);

// NFC of well-formed UTF-8 `s` appended to `out`. Text without a code point >= U+0300 is
// already NFC (nothing below U+0300 composes with what precedes it), so that is a plain copy.
void nfc_append(std::string_view s, std::string& out);

// GPT-2 byte-level alphabet: byte b is written as code point byte_to_codepoint(b), which is
// b itself for printable Latin-1 and 256+k for the others.
uint32_t byte_to_codepoint(uint8_t b);
// The byte a code point of the byte-level alphabet stands for, or -1.
int codepoint_to_byte(uint32_t cp);

// Appends code point cp as UTF-8.
void append_utf8(uint32_t cp, std::string& out);

// Raw bytes of a byte-level vocabulary string; false when a character is outside the
// alphabet (then the string is not byte-level text).
bool byte_level_decode(std::string_view token, std::string& out);
std::string byte_level_encode(std::string_view bytes);

}  // namespace csq::tok
