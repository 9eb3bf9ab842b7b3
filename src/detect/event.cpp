#include "detect/event.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/error.h"

namespace csq::detect {

namespace {

class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string name, bool owned) : fd_(fd), name_(std::move(name)), owned_(owned) {}
  ~FdSource() override {
    if (owned_) ::close(fd_);
  }
  size_t read(char* buf, size_t n) override {
    while (true) {
      const ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) return size_t(r);
      if (errno != EINTR) fail_runtime(name_ + ": read failed (" + std::strerror(errno) + ")");
    }
  }

 private:
  int fd_;
  std::string name_;
  bool owned_;
};

// Inflates gzip members one after another (concatenated .gz files are valid gzip).
class GzipSource : public ByteSource {
 public:
  GzipSource(std::unique_ptr<ByteSource> raw, std::string name) : raw_(std::move(raw)), name_(std::move(name)) {
    std::memset(&z_, 0, sizeof z_);
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) fail_runtime(name_ + ": cannot start gzip decompression");
    in_.resize(1 << 16);
  }
  ~GzipSource() override { inflateEnd(&z_); }

  size_t read(char* buf, size_t n) override {
    if (done_ || n == 0) return 0;
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = uInt(std::min<size_t>(n, 1u << 30));
    const uInt want = z_.avail_out;
    while (z_.avail_out == want) {
      if (z_.avail_in == 0) {
        const size_t got = raw_->read(in_.data(), in_.size());
        if (got == 0) {
          if (!member_done_) fail_input(name_ + ": gzip data ends early (truncated file)");
          done_ = true;
          break;
        }
        z_.next_in = reinterpret_cast<Bytef*>(in_.data());
        z_.avail_in = uInt(got);
      }
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_done_ = true;
        inflateReset(&z_);
      } else if (rc == Z_OK || (rc == Z_BUF_ERROR && z_.avail_in == 0)) {
        member_done_ = false;
      } else {
        fail_input(name_ + ": corrupt gzip data (" + (z_.msg ? z_.msg : "inflate error") + ")");
      }
    }
    return want - z_.avail_out;
  }

 private:
  std::unique_ptr<ByteSource> raw_;
  std::string name_;
  std::string in_;
  z_stream z_;
  bool member_done_ = true;
  bool done_ = false;
};

// Replays the bytes read to sniff the format, then reads on.
class PrefixedSource : public ByteSource {
 public:
  PrefixedSource(std::unique_ptr<ByteSource> raw, std::string head) : raw_(std::move(raw)), head_(std::move(head)) {}
  size_t read(char* buf, size_t n) override {
    if (off_ < head_.size()) {
      const size_t k = std::min(n, head_.size() - off_);
      std::memcpy(buf, head_.data() + off_, k);
      off_ += k;
      return k;
    }
    return raw_->read(buf, n);
  }

 private:
  std::unique_ptr<ByteSource> raw_;
  std::string head_;
  size_t off_ = 0;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string data) : data_(std::move(data)) {}
  size_t read(char* buf, size_t n) override {
    const size_t k = std::min(n, data_.size() - off_);
    std::memcpy(buf, data_.data() + off_, k);
    off_ += k;
    return k;
  }

 private:
  std::string data_;
  size_t off_ = 0;
};

}  // namespace

std::unique_ptr<ByteSource> ByteSource::from_string(std::string data, const std::string& name) {
  const bool gzip = data.size() >= 2 && uint8_t(data[0]) == 0x1f && uint8_t(data[1]) == 0x8b;
  auto raw = std::make_unique<MemorySource>(std::move(data));
  if (gzip) return std::make_unique<GzipSource>(std::move(raw), name);
  return raw;
}

std::unique_ptr<ByteSource> ByteSource::open(const std::string& path) {
  std::unique_ptr<ByteSource> raw;
  const std::string name = path == "-" ? std::string("<stdin>") : path;
  if (path == "-") {
    raw = std::make_unique<FdSource>(0, name, false);
  } else {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_input(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      fail_input(path + ": is a directory, not a file of events");
    }
    raw = std::make_unique<FdSource>(fd, name, true);
  }
  std::string head;
  while (head.size() < 2) {
    char c[2];
    const size_t r = raw->read(c, 2 - head.size());
    if (r == 0) break;
    head.append(c, r);
  }
  const bool gzip = head.size() == 2 && uint8_t(head[0]) == 0x1f && uint8_t(head[1]) == 0x8b;
  auto replay = std::make_unique<PrefixedSource>(std::move(raw), head);
  if (gzip) return std::make_unique<GzipSource>(std::move(replay), name);
  return replay;
}

// ---------------------------------------------------------------------------------------------
// Records

RecordReader::RecordReader(std::unique_ptr<ByteSource> source, size_t max_record_bytes)
    : source_(std::move(source)), max_bytes_(max_record_bytes), buf_(1 << 16) {}

bool RecordReader::fill() {
  if (eof_) return false;
  pos_ = 0;
  end_ = source_->read(buf_.data(), buf_.size());
  if (end_ == 0) eof_ = true;
  return end_ > 0;
}

int RecordReader::peek() {
  if (pos_ == end_ && !fill()) return -1;
  return uint8_t(buf_[pos_]);
}

namespace {

void finish_record(Record& rec) {
  if (!rec.text.empty() && rec.text.back() == '\r') rec.text.pop_back();
  rec.text.reserve(rec.text.size() + simdjson::SIMDJSON_PADDING);
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\f\v") == std::string::npos; }

std::string size_problem(uint64_t bytes, size_t limit) {
  // What happens next is the reader's caller's: csq detect skips the record, csq triage stops.
  return "record of " + std::to_string(bytes) + " bytes or more exceeds the limit of " + std::to_string(limit) +
         " bytes";
}

}  // namespace

RecordReader::Status RecordReader::next(Record& rec, std::string& problem) {
  if (mode_ == Mode::Unknown) {
    // JSON Lines when the first object closes on its first line; otherwise a stream of objects
    // (pretty-printed, concatenated, in an array, or after evtx_dump's "Record N" lines).
    while (true) {
      const int c = peek();
      if (c < 0) return Status::End;
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        if (c == '\n') ++line_;
        ++pos_;
        continue;
      }
      break;
    }
    // Decide on the first record: a newline before the object's depth returns to 0 → objects.
    // Read on until it closes or a line ends (the first read may hold only the two bytes that
    // were looked at for gzip), as far as the buffer holds.
    int depth = 0;
    bool in_string = false, escape = false, closed = false, newline = false;
    for (size_t i = pos_;; ++i) {
      if (i == end_) {
        if (eof_ || end_ - pos_ == buf_.size()) break;
        std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
        i = end_ -= pos_;
        pos_ = 0;
        const size_t got = source_->read(buf_.data() + end_, buf_.size() - end_);
        if (got == 0) {
          eof_ = true;
          break;
        }
        end_ += got;
      }
      const char c = buf_[i];
      if (in_string) {
        if (escape) escape = false;
        else if (c == '\\') escape = true;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == '"') in_string = true;
      else if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') {
        if (--depth == 0) {
          closed = true;
          break;
        }
      } else if (c == '\n') {
        newline = true;
        break;
      }
    }
    const char first_byte = buf_[pos_];
    mode_ = (first_byte == '{' && newline && !closed) || first_byte == 'R' || first_byte == '[' ? Mode::Objects
                                                                                                : Mode::Lines;
  }
  return mode_ == Mode::Lines ? next_line(rec, problem) : next_object(rec, problem);
}

RecordReader::Status RecordReader::next_line(Record& rec, std::string& problem) {
  while (true) {
    rec.text.clear();
    rec.number = rec.line = line_;
    uint64_t length = 0;
    bool any = false;
    while (true) {
      if (pos_ == end_ && !fill()) break;
      any = true;
      const char* start = buf_.data() + pos_;
      const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
      const size_t n = nl ? size_t(nl - start) : end_ - pos_;
      if (length + n <= max_bytes_) rec.text.append(start, n);
      length += n;
      pos_ += n;
      if (nl) {
        ++pos_;
        break;
      }
    }
    if (!any) return Status::End;
    ++line_;
    if (length > max_bytes_) {
      problem = size_problem(length, max_bytes_);
      rec.text.clear();
      rec.text.shrink_to_fit();
      return Status::Problem;
    }
    if (blank(rec.text)) continue;
    finish_record(rec);
    return Status::Ok;
  }
}

RecordReader::Status RecordReader::next_object(Record& rec, std::string& problem) {
  rec.text.clear();
  // Skip separators between objects: whitespace, array brackets and commas, and evtx_dump's
  // "Record N" header lines.
  while (true) {
    const int c = peek();
    if (c < 0) return Status::End;
    if (c == '{') break;
    if (c == '\n') ++line_;
    if (c == 'R') {
      std::string header;
      while (peek() >= 0 && peek() != '\n' && header.size() < 64) header += char(buf_[pos_++]);
      uint64_t id = 0;
      if (header.starts_with("Record ") &&
          std::from_chars(header.data() + 7, header.data() + header.size(), id).ec == std::errc()) {
        pending_record_id_ = id;
        continue;
      }
      rec.number = objects_ + 1;
      rec.line = line_;
      while (peek() >= 0 && peek() != '\n') ++pos_;
      problem = "line " + std::to_string(line_) + ": text outside a JSON object ('" + header.substr(0, 32) + "')";
      return Status::Problem;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == '[' || c == ']') {
      ++pos_;
      continue;
    }
    rec.number = objects_ + 1;
    rec.line = line_;
    std::string junk;
    while (peek() >= 0 && peek() != '\n' && peek() != '{') {
      if (junk.size() < 32) junk += char(buf_[pos_]);
      ++pos_;
    }
    problem = "line " + std::to_string(line_) + ": text outside a JSON object ('" + junk + "')";
    return Status::Problem;
  }
  rec.line = line_;
  rec.number = pending_record_id_ ? pending_record_id_ : objects_ + 1;
  pending_record_id_ = 0;
  ++objects_;
  uint64_t depth = 0, length = 0;
  bool in_string = false, escape = false;
  while (true) {
    if (pos_ == end_ && !fill()) {
      problem = "object starting on line " + std::to_string(rec.line) + " ends early (truncated input)";
      rec.text.clear();
      return Status::Problem;
    }
    const size_t start = pos_;
    bool closed = false;
    for (; pos_ < end_; ++pos_) {
      const char c = buf_[pos_];
      if (in_string) {
        if (escape) escape = false;
        else if (c == '\\') escape = true;
        else if (c == '"') in_string = false;
        else if (c == '\n') ++line_;
        continue;
      }
      if (c == '"') in_string = true;
      else if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') {
        if (--depth == 0) {
          ++pos_;
          closed = true;
          break;
        }
      } else if (c == '\n') ++line_;
    }
    const size_t n = pos_ - start;
    if (length + n <= max_bytes_) rec.text.append(buf_.data() + start, n);
    length += n;
    if (closed) break;
  }
  if (length > max_bytes_) {
    problem = size_problem(length, max_bytes_);
    rec.text.clear();
    rec.text.shrink_to_fit();
    return Status::Problem;
  }
  finish_record(rec);
  return Status::Ok;
}

// ---------------------------------------------------------------------------------------------
// Normalisation

Normalizer::Normalizer(size_t max_depth) {
  if (parser_.allocate(1 << 16, max_depth) != simdjson::SUCCESS) fail_runtime("cannot allocate the JSON parser");
}

std::string_view Normalizer::own(std::string s) {
  if (storage_used_ < storage_.size()) {
    storage_[storage_used_] = std::move(s);
  } else {
    storage_.push_back(std::move(s));
  }
  return storage_[storage_used_++];
}

void Normalizer::add_scalar(std::string_view name, simdjson::dom::element v, NormalizedEvent& out) {
  using simdjson::dom::element_type;
  Field f{name, {}, false};
  switch (v.type()) {
    case element_type::STRING:
      f.value = std::string_view(v.get_string().value_unsafe());
      break;
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: {
      char tmp[40];
      std::to_chars_result r;
      if (v.type() == element_type::INT64) r = std::to_chars(tmp, tmp + sizeof tmp, v.get_int64().value_unsafe());
      else if (v.type() == element_type::UINT64) r = std::to_chars(tmp, tmp + sizeof tmp, v.get_uint64().value_unsafe());
      else r = std::to_chars(tmp, tmp + sizeof tmp, v.get_double().value_unsafe());
      f.value = own(std::string(tmp, r.ptr));
      break;
    }
    case element_type::BOOL:
      f.value = v.get_bool().value_unsafe() ? "true" : "false";
      break;
    case element_type::NULL_VALUE:
      f.is_null = true;
      break;
    default:
      return;
  }
  out.fields.push_back(f);
}

void Normalizer::add(std::string_view name, simdjson::dom::element v, NormalizedEvent& out) {
  using simdjson::dom::element_type;
  if (v.type() == element_type::ARRAY) {
    // Multi-valued field: each scalar element is a value of the same name.
    const simdjson::dom::array items = v.get_array().value_unsafe();
    for (simdjson::dom::element item : items) {
      if (item.type() == element_type::OBJECT) flatten(name, item.get_object().value_unsafe(), out, 1);
      else if (item.type() != element_type::ARRAY) add_scalar(name, item, out);
    }
  } else if (v.type() == element_type::OBJECT) {
    flatten(name, v.get_object().value_unsafe(), out, 1);
  } else {
    add_scalar(name, v, out);
  }
}

void Normalizer::flatten(std::string_view prefix, simdjson::dom::object obj, NormalizedEvent& out, int depth) {
  // Nested objects become dotted names ("winlog.event_data.CommandLine"); the depth is bounded
  // by the parser's own limit.
  for (auto [key, value] : obj) {
    const std::string_view name = prefix.empty() ? key : own(std::string(prefix) + "." + std::string(key));
    if (value.type() == simdjson::dom::element_type::OBJECT) {
      flatten(name, value.get_object().value_unsafe(), out, depth + 1);
    } else {
      add(name, value, out);
    }
  }
}

void Normalizer::evtx_section(simdjson::dom::object obj, NormalizedEvent& out, int depth) {
  // EventData / UserData: the data items by name, nested elements (UserData's wrapper) opened.
  using simdjson::dom::element_type;
  for (auto [key, value] : obj) {
    if (key == "#attributes") continue;
    if (value.type() == element_type::OBJECT) {
      if (depth < 8) evtx_section(value.get_object().value_unsafe(), out, depth + 1);
    } else {
      // Sigma names data items without their spaces ("Source Name" is SourceName).
      std::string_view name = key == "#text" ? std::string_view("Data") : key;
      if (name.find(' ') != std::string_view::npos) {
        std::string stripped;
        for (char c : name)
          if (c != ' ') stripped += c;
        name = own(std::move(stripped));
      }
      add(name, value, out);
    }
  }
}

std::optional<std::string> Normalizer::parse(const std::string& text, NormalizedEvent& out) {
  using simdjson::dom::element_type;
  out.fields.clear();
  out.time = {};
  storage_used_ = 0;
  simdjson::dom::element root;
  const bool padded = text.capacity() >= text.size() + simdjson::SIMDJSON_PADDING;
  if (auto err = parser_.parse(text.data(), text.size(), !padded).get(root))
    return std::string("not valid JSON: ") + simdjson::error_message(err);
  if (root.type() != element_type::OBJECT) return std::string("not a JSON object");
  const simdjson::dom::object top = root.get_object().value_unsafe();

  simdjson::dom::object event;
  if (top.size() <= 2 && top["Event"].get(event) == simdjson::SUCCESS) {
    // evtx_dump: System header fields by name, XML attributes as Tag_Attribute (Sigma's convention).
    simdjson::dom::object system;
    if (event["System"].get(system) == simdjson::SUCCESS) {
      for (auto [key, value] : system) {
        if (value.type() != element_type::OBJECT) {
          add_scalar(key, value, out);
          continue;
        }
        const simdjson::dom::object parts = value.get_object().value_unsafe();
        for (auto [sub, subvalue] : parts) {
          if (sub == "#text") {
            add_scalar(key, subvalue, out);
          } else if (sub == "#attributes" && subvalue.type() == element_type::OBJECT) {
            const simdjson::dom::object attrs = subvalue.get_object().value_unsafe();
            for (auto [attr, attr_value] : attrs) {
              add_scalar(own(std::string(key) + "_" + std::string(attr)), attr_value, out);
              if (key == "TimeCreated" && attr == "SystemTime" && attr_value.is_string())
                out.time = attr_value.get_string().value_unsafe();
            }
          }
        }
      }
    }
    for (const char* section : {"EventData", "UserData"}) {
      simdjson::dom::element data;
      if (event[section].get(data) != simdjson::SUCCESS) continue;
      if (data.type() == element_type::OBJECT) evtx_section(data.get_object().value_unsafe(), out, 0);
      else if (data.type() != element_type::NULL_VALUE) add("Data", data, out);
    }
    return std::nullopt;
  }

  simdjson::dom::object winlog;
  if (top["winlog"].get(winlog) == simdjson::SUCCESS) {
    // Winlogbeat / ECS: event data by its own name, the header under Sigma's names, the rest dotted.
    static const std::pair<const char*, const char*> kHeader[] = {
        {"channel", "Channel"},       {"event_id", "EventID"},        {"provider_name", "Provider_Name"},
        {"computer_name", "Computer"}, {"record_id", "EventRecordID"}, {"provider_guid", "Provider_Guid"},
        {"task", "Task"},             {"opcode", "Opcode"},           {"version", "Version"}};
    for (auto [key, value] : winlog) {
      if ((key == "event_data" || key == "user_data") && value.type() == element_type::OBJECT) {
        evtx_section(value.get_object().value_unsafe(), out, 0);
        continue;
      }
      bool header = false;
      for (const auto& [from, to] : kHeader)
        if (key == from) {
          add_scalar(to, value, out);
          header = true;
        }
      if (!header) add(own("winlog." + std::string(key)), value, out);
    }
    for (auto [key, value] : top)
      if (key != "winlog") add(key, value, out);
  } else {
    // Flat (NXLog, OTRF, Splunk-style): top-level names are Sigma's names.
    bool has_provider = false;
    std::string_view source_name;
    for (auto [key, value] : top) {
      add(key, value, out);
      if (key == "Provider_Name") has_provider = true;
      if (key == "SourceName" && value.is_string()) source_name = value.get_string().value_unsafe();
    }
    // NXLog names the provider SourceName; Sigma rules test Provider_Name.
    if (!has_provider && !source_name.empty()) out.fields.push_back({"Provider_Name", source_name, false});
  }
  for (const char* name : {"@timestamp", "TimeCreated", "EventTime", "UtcTime", "timestamp"}) {
    for (const Field& f : out.fields)
      if (f.name == name && !f.value.empty()) {
        out.time = f.value;
        break;
      }
    if (!out.time.empty()) break;
  }
  return std::nullopt;
}

std::string minify_json(const std::string& text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  if (simdjson::minify(text.data(), text.size(), out.data(), len) != simdjson::SUCCESS) return text;
  out.resize(len);
  return out;
}

}  // namespace csq::detect
