#include "tokenizer/jinja/lexer.h"

#include <cctype>

#include "base/error.h"
#include "tokenizer/jinja/unicode.h"

namespace csq::jinja {
namespace {

// Decodes the code point at `pos` (valid UTF-8 assumed); returns its byte length.
size_t decode_at(const std::string& s, size_t pos, char32_t& cp) {
  const unsigned char c = s[pos];
  size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
  if (pos + len > s.size()) len = s.size() - pos;
  cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
  return len;
}

// Bytes of Python-regex whitespace (`\s`) at pos, 0 if none.
size_t space_at(const std::string& s, size_t pos) {
  if (pos >= s.size()) return 0;
  char32_t cp;
  const size_t len = decode_at(s, pos, cp);
  return py_is_space(cp) ? len : 0;
}

size_t skip_spaces(const std::string& s, size_t pos) {
  while (size_t n = space_at(s, pos)) pos += n;
  return pos;
}

// Length of `text` once trailing whitespace is removed (Python str.rstrip()).
size_t rstrip_length(const std::string& text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    char32_t cp;
    decode_at(text, start, cp);
    if (!py_is_space(cp)) break;
    end = start;
  }
  return end;
}

bool all_space(const std::string& s, size_t from) {
  if (from >= s.size()) return false;  // Jinja2 matches `\s+`: at least one character
  for (size_t p = from; p < s.size();) {
    const size_t n = space_at(s, p);
    if (!n) return false;
    p += n;
  }
  return true;
}

int count_newlines(const std::string& s, size_t from, size_t to) {
  int n = 0;
  for (size_t i = from; i < to; ++i) n += s[i] == '\n';
  return n;
}

class Lexer {
 public:
  Lexer(std::string source, const std::string& name, const LexOptions& options)
      : src_(std::move(source)), name_(name), opt_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const Opener open = find_opener(pos_);
      if (open.at == std::string::npos) {
        emit(Token::Type::Text, src_.substr(pos_), line_);
        line_ += count_newlines(src_, pos_, src_.size());
        pos_ = src_.size();
        break;
      }
      std::string text = src_.substr(pos_, open.at - pos_);
      const int text_line = line_;
      line_ += count_newlines(src_, pos_, open.at);
      text = apply_left_strip(std::move(text), open.sign, open.kind != '{');
      emit(Token::Type::Text, std::move(text), text_line);
      pos_ = open.after;
      if (open.raw) lex_raw();
      else if (open.kind == '#') lex_comment();
      else lex_tag(open.kind == '%');
    }
    tokens_.push_back({Token::Type::End, "", line_});
    return std::move(tokens_);
  }

 private:
  struct Opener {
    size_t at = std::string::npos;
    size_t after = 0;
    char kind = 0;  // '{', '%', '#'
    char sign = 0;  // '-', '+', or 0
    bool raw = false;
  };

  [[noreturn]] void fail(const std::string& what, int line) const {
    fail_input("chat template " + name_ + ", line " + std::to_string(line) + ": " + what);
  }

  void emit(Token::Type type, std::string value, int line) {
    if (type == Token::Type::Text && value.empty()) return;
    tokens_.push_back({type, std::move(value), line});
  }

  Opener find_opener(size_t from) const {
    Opener o;
    for (size_t p = src_.find('{', from); p != std::string::npos && p + 1 < src_.size(); p = src_.find('{', p + 1)) {
      const char k = src_[p + 1];
      if (k != '{' && k != '%' && k != '#') continue;
      o.at = p;
      o.kind = k;
      size_t q = p + 2;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) o.sign = src_[q++];
      o.after = q;
      if (k == '%') {
        // `{% raw %}` is recognised here, as its body is not lexed.
        size_t r = skip_spaces(src_, q);
        if (src_.compare(r, 3, "raw") == 0) {
          r = skip_spaces(src_, r + 3);
          if (src_.compare(r, 3, "-%}") == 0) {
            o.raw = true;
            o.after = skip_spaces(src_, r + 3);
          } else if (src_.compare(r, 2, "%}") == 0) {
            o.raw = true;
            o.after = r + 2;
          }
        }
      }
      return o;
    }
    return o;
  }

  // `-` strips all whitespace before the tag; lstrip_blocks strips the spaces that alone
  // precede a block or comment tag on its line.
  std::string apply_left_strip(std::string text, char sign, bool lstrip_applies) const {
    if (sign == '-') {
      text.resize(rstrip_length(text));
    } else if (sign != '+' && opt_.lstrip_blocks && lstrip_applies) {
      const size_t nl = text.rfind('\n');
      const size_t line_start = nl == std::string::npos ? 0 : nl + 1;
      if ((line_start > 0 || line_starting_) && all_space(text, line_start)) text.resize(line_start);
    }
    return text;
  }

  // After `%}` or `#}`: `-` eats following whitespace, `+` keeps it, otherwise
  // trim_blocks eats one newline. Returns the end of the consumed text.
  size_t block_end_suffix(size_t end_after, char sign) const {
    if (sign == '-') return skip_spaces(src_, end_after);
    if (sign == '+') return end_after;
    if (opt_.trim_blocks && end_after < src_.size() && src_[end_after] == '\n') return end_after + 1;
    return end_after;
  }

  void finish_tag(size_t end) {
    line_ += count_newlines(src_, pos_, end);
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  void lex_comment() {
    const int start_line = line_;
    for (size_t p = pos_; p + 1 < src_.size(); ++p) {
      char sign = 0;
      size_t close = p;
      if ((src_[p] == '-' || src_[p] == '+') && src_.compare(p + 1, 2, "#}") == 0) {
        sign = src_[p];
        close = p + 1;
      } else if (src_.compare(p, 2, "#}") != 0) {
        continue;
      }
      finish_tag(block_end_suffix(close + 2, sign));
      return;
    }
    fail("missing end of comment tag", start_line);
  }

  void lex_raw() {
    const int start_line = line_;
    for (size_t p = src_.find("{%", pos_); p != std::string::npos; p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_spaces(src_, q);
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q = skip_spaces(src_, q + 6);
      char end_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) continue;
      std::string text = apply_left_strip(src_.substr(pos_, p - pos_), sign, true);
      emit(Token::Type::Text, std::move(text), start_line);
      finish_tag(block_end_suffix(q + 2, end_sign));
      return;
    }
    fail("missing end of raw directive", start_line);
  }

  void lex_tag(bool block) {
    const int start_line = line_;
    emit(block ? Token::Type::BlockBegin : Token::Type::VarBegin, "", line_);
    std::vector<char> balance;
    size_t p = pos_;
    auto line_at = [&](size_t at) { return line_ + count_newlines(src_, pos_, at); };
    while (true) {
      if (p >= src_.size())
        fail(std::string("unexpected end of template, expected '") + (block ? "%}" : "}}") + "'", start_line);
      if (balance.empty()) {
        // The end of the tag, as Jinja2 checks it first at every position.
        if (block) {
          char sign = 0;
          size_t q = p;
          if (src_[q] == '-' || src_[q] == '+') sign = src_[q++];
          if (src_.compare(q, 2, "%}") == 0) {
            emit(Token::Type::BlockEnd, "", line_at(p));
            finish_tag(block_end_suffix(q + 2, sign));
            return;
          }
        } else if (src_.compare(p, 3, "-}}") == 0) {
          emit(Token::Type::VarEnd, "", line_at(p));
          finish_tag(skip_spaces(src_, p + 3));
          return;
        } else if (src_.compare(p, 2, "}}") == 0) {
          emit(Token::Type::VarEnd, "", line_at(p));
          finish_tag(p + 2);
          return;
        }
      }
      if (const size_t n = space_at(src_, p)) {
        p += n;
        continue;
      }
      const int line = line_at(p);
      const char c = src_[p];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        p = lex_number(p, line);
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t q = p;
        while (q < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
        emit(Token::Type::Name, src_.substr(p, q - p), line);
        p = q;
      } else if (c == '\'' || c == '"') {
        p = lex_string(p, line);
      } else {
        static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op;
        for (const char* two : kTwo)
          if (src_.compare(p, 2, two) == 0) op = two;
        if (op.empty()) {
          if (std::string("+-/*%~[](){}=<>.:|,;").find(c) == std::string::npos) {
            char32_t cp;
            decode_at(src_, p, cp);
            std::string shown;
            utf8_append(shown, cp);
            fail("unexpected character '" + shown + "' in tag", line);
          }
          op = std::string(1, c);
        }
        if (op == "(" || op == "[" || op == "{") {
          balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
        } else if (op == ")" || op == "]" || op == "}") {
          if (balance.empty()) fail("unexpected '" + op + "'", line);
          if (balance.back() != op[0]) fail("unexpected '" + op + "', expected '" + balance.back() + "'", line);
          balance.pop_back();
        }
        emit(Token::Type::Operator, op, line);
        p += op.size();
      }
    }
  }

  size_t lex_number(size_t p, int line) {
    auto digits = [&](size_t q) {  // (\d+_)*\d+
      size_t r = q;
      while (r < src_.size() && std::isdigit(static_cast<unsigned char>(src_[r]))) {
        while (r < src_.size() && std::isdigit(static_cast<unsigned char>(src_[r]))) ++r;
        if (r + 1 < src_.size() && src_[r] == '_' && std::isdigit(static_cast<unsigned char>(src_[r + 1]))) ++r;
        else break;
      }
      return r;
    };
    auto strip_underscores = [](std::string s) {
      std::erase(s, '_');
      return s;
    };
    // Float: digits with a fraction and/or an exponent.
    size_t q = digits(p);
    bool is_float = false;
    if (q + 1 < src_.size() && src_[q] == '.' && std::isdigit(static_cast<unsigned char>(src_[q + 1]))) {
      q = digits(q + 1);
      is_float = true;
    }
    if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
      size_t r = q + 1;
      if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
      if (r < src_.size() && std::isdigit(static_cast<unsigned char>(src_[r]))) {
        q = digits(r);
        is_float = true;
      }
    }
    if (is_float) {
      emit(Token::Type::Float, strip_underscores(src_.substr(p, q - p)), line);
      return q;
    }
    // Integer: 0b / 0o / 0x prefixes, decimal without leading zeros.
    if (src_[p] == '0' && p + 1 < src_.size() && std::string("bBoOxX").find(src_[p + 1]) != std::string::npos) {
      const char base = char(std::tolower(static_cast<unsigned char>(src_[p + 1])));
      auto ok = [&](char ch) {
        if (base == 'b') return ch == '0' || ch == '1';
        if (base == 'o') return ch >= '0' && ch <= '7';
        return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
      };
      size_t r = p + 2;
      while (r < src_.size() && (ok(src_[r]) || (src_[r] == '_' && r + 1 < src_.size() && ok(src_[r + 1])))) ++r;
      if (r > p + 2) {
        emit(Token::Type::Integer, strip_underscores(src_.substr(p, r - p)), line);
        return r;
      }
    }
    if (src_[p] == '0') {
      size_t r = p + 1;
      while (r < src_.size() && (src_[r] == '0' || (src_[r] == '_' && r + 1 < src_.size() && src_[r + 1] == '0'))) ++r;
      emit(Token::Type::Integer, "0", line);
      return r;
    }
    emit(Token::Type::Integer, strip_underscores(src_.substr(p, q - p)), line);
    return q;
  }

  // Python string literal with unicode-escape decoding of backslash sequences.
  size_t lex_string(size_t p, int line) {
    const char quote = src_[p];
    std::string value;
    size_t q = p + 1;
    while (true) {
      if (q >= src_.size()) fail("unterminated string literal", line);
      const char c = src_[q];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++q;
        continue;
      }
      if (q + 1 >= src_.size()) fail("unterminated string literal", line);
      const char e = src_[q + 1];
      q += 2;
      auto hex = [&](int n) {
        char32_t cp = 0;
        for (int i = 0; i < n; ++i, ++q) {
          if (q >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[q])))
            fail("truncated \\" + std::string(1, e) + " escape in string literal", line);
          const char h = char(std::tolower(static_cast<unsigned char>(src_[q])));
          cp = cp * 16 + char32_t(h <= '9' ? h - '0' : h - 'a' + 10);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("invalid code point escape in string literal", line);
        utf8_append(value, cp);
      };
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case 'x': hex(2); break;
        case 'u': hex(4); break;
        case 'U': hex(8); break;
        case 'N': fail("\\N{...} escapes are not supported in string literals", line);
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = char32_t(e - '0');
            for (int i = 0; i < 2 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++i, ++q)
              cp = cp * 8 + char32_t(src_[q] - '0');
            utf8_append(value, cp);
          } else {
            value += '\\';  // Python keeps unknown escapes as written
            value += e;
          }
      }
    }
    emit(Token::Type::String, std::move(value), line);
    return q + 1;
  }

  std::string src_;
  std::string name_;
  LexOptions opt_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const std::string& name, const LexOptions& options) {
  if (!is_valid_utf8(source)) fail_input("chat template " + name + ": not valid UTF-8");
  // Jinja2 normalises line endings to \n and drops one trailing newline (keep_trailing_newline=False).
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      text += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      text += source[i];
    }
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return Lexer(std::move(text), name, options).run();
}

}  // namespace csq::jinja
