#include "io/line_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace csq::io {

LineReader::LineReader(const std::string& path, size_t max_line_bytes)
    : name_(path == "-" ? "stdin" : path), max_(max_line_bytes) {
  if (path == "-") {
    fd_ = 0;
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail_input(path + ": cannot open (" + std::strerror(errno) + ")");
    own_fd_ = true;
  }
}

LineReader::~LineReader() {
  if (z_open_) inflateEnd(&z_);
  if (own_fd_) ::close(fd_);
}

void LineReader::fail(const std::string& what) const {
  fail_input(name_ + ":" + std::to_string(line_no_ + 1) + ": " + what);
}

size_t LineReader::raw_read(char* data, size_t size) {
  for (;;) {
    const ssize_t n = ::read(fd_, data, size);
    if (n >= 0) return size_t(n);
    if (errno != EINTR) fail(std::string("read error (") + std::strerror(errno) + ")");
  }
}

bool LineReader::fill() {
  char chunk[1 << 16];
  if (!started_) {
    // The gzip magic needs two bytes; a pipe may deliver one at a time.
    while (raw_.size() < 2) {
      const size_t n = raw_read(chunk, 2 - raw_.size());
      if (n == 0) break;
      raw_.append(chunk, n);
    }
    started_ = true;
    gzip_ = raw_.size() == 2 && uint8_t(raw_[0]) == 0x1f && uint8_t(raw_[1]) == 0x8b;
    if (!gzip_) {
      buffer_ += raw_;
      raw_.clear();
      if (!buffer_.empty()) return true;
    }
  }
  if (!gzip_) {
    const size_t n = raw_read(chunk, sizeof chunk);
    buffer_.append(chunk, n);
    return n > 0;
  }
  for (;;) {
    if (raw_.empty()) {
      const size_t n = raw_read(chunk, sizeof chunk);
      if (n == 0) {
        if (z_open_) fail("the gzip data ends early");
        return false;
      }
      raw_.assign(chunk, n);
    }
    if (!z_open_) {
      z_ = z_stream{};
      if (inflateInit2(&z_, 15 + 16) != Z_OK) fail("cannot start gzip decoding");
      z_open_ = true;
    }
    char out[1 << 16];
    z_.next_in = reinterpret_cast<Bytef*>(raw_.data());
    z_.avail_in = uInt(raw_.size());
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = sizeof out;
    const int rc = inflate(&z_, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
      fail(std::string("corrupt gzip data (") + (z_.msg ? z_.msg : "inflate error") + ")");
    raw_.erase(0, raw_.size() - z_.avail_in);
    const size_t produced = sizeof out - z_.avail_out;
    buffer_.append(out, produced);
    if (rc == Z_STREAM_END) {  // another member may follow (concatenated gzip files)
      inflateEnd(&z_);
      z_open_ = false;
    }
    if (produced > 0) return true;
  }
}

bool LineReader::next(std::string& line) {
  line.clear();
  for (;;) {
    const size_t nl = buffer_.find('\n', pos_);
    const size_t end = nl == std::string::npos ? buffer_.size() : nl;
    line.append(buffer_, pos_, end - pos_);
    pos_ = end;
    if (line.size() > max_) fail("line longer than " + std::to_string(max_) + " bytes");
    if (nl != std::string::npos) {
      ++pos_;
      break;
    }
    buffer_.clear();
    pos_ = 0;
    if (at_end_ || !fill()) {
      at_end_ = true;
      if (line.empty()) return false;
      break;
    }
  }
  ++line_no_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace csq::io
