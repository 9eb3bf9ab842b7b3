// Reads text lines from a file, a gzip file (detected by its magic bytes, whatever its name) or
// standard input ("-"), one at a time. Reads return what the pipe holds, never waiting for a
// full buffer, so `producer | csq ...` is processed line by line as it flows.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <string>

namespace csq::io {

class LineReader {
 public:
  // Throws csq::Error (BadInput) naming the path when it cannot be opened.
  explicit LineReader(const std::string& path, size_t max_line_bytes = size_t(64) << 20);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its "\n" (and "\r"); false at the end. Throws csq::Error (BadInput)
  // naming PATH:LINE on a read error, corrupt or cut gzip data, or a line longer than the limit.
  bool next(std::string& line);
  size_t line_number() const { return line_no_; }    // of the line last returned
  const std::string& name() const { return name_; }  // the path, or "stdin"

 private:
  // Appends the next decoded bytes to buffer_; false at the end of the input.
  bool fill();
  size_t raw_read(char* data, size_t size);
  [[noreturn]] void fail(const std::string& what) const;

  int fd_ = -1;
  bool own_fd_ = false;
  std::string name_;
  size_t max_;
  size_t line_no_ = 0;
  std::string buffer_;  // decoded text, from pos_ on not yet returned
  size_t pos_ = 0;
  bool started_ = false, gzip_ = false, at_end_ = false;
  std::string raw_;  // compressed bytes not yet inflated
  z_stream z_{};
  bool z_open_ = false;
};

}  // namespace csq::io
