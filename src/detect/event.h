// Event input: byte streams (files, .gz, standard input), records (JSON Lines, or a stream of
// concatenated — possibly pretty-printed — JSON objects as evtx_dump writes them), and the
// normalisation of one record into Sigma's flat field names whatever the layout:
//   flat NXLog/OTRF objects      {"Channel": ..., "EventID": 1, "CommandLine": ...}
//   evtx_dump JSON               {"Event": {"System": {...}, "EventData": {...} | "UserData": {...}}}
//   Winlogbeat / ECS             {"winlog": {"channel": ..., "event_id": ..., "event_data": {...}}, ...}
// Every failure is a named problem for that record; memory is bounded by the record limit.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace csq::detect {

// A readable byte stream; gzip is recognised by its magic bytes and inflated on the fly.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; returns 0 at the end. Returns what is available (a pipe is not waited
  // on to fill the buffer). Throws csq::Error on I/O or decompression failure.
  virtual size_t read(char* buf, size_t n) = 0;
  // "-" is standard input.
  static std::unique_ptr<ByteSource> open(const std::string& path);
  // Bytes in memory (gzip recognised the same way), e.g. for tests and fuzzing.
  static std::unique_ptr<ByteSource> from_string(std::string data, const std::string& name);
};

struct Record {
  std::string text;     // the JSON text (a trailing \r removed); capacity padded for simdjson
  uint64_t number = 0;  // line number (JSON Lines) or object index (object streams)
  uint64_t line = 0;    // first line of the record in its file
};

class RecordReader {
 public:
  static constexpr size_t kDefaultMaxRecordBytes = 16u << 20;
  RecordReader(std::unique_ptr<ByteSource> source, size_t max_record_bytes = kDefaultMaxRecordBytes);

  enum class Status { Ok, Problem, End };
  // Ok: `rec` holds the next record. Problem: `problem` names what was wrong with a record that
  // was skipped (`rec.number`/`rec.line` say where). End: nothing more.
  Status next(Record& rec, std::string& problem);

 private:
  bool fill();
  int peek();
  Status next_line(Record& rec, std::string& problem);
  Status next_object(Record& rec, std::string& problem);

  std::unique_ptr<ByteSource> source_;
  size_t max_bytes_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  enum class Mode { Unknown, Lines, Objects } mode_ = Mode::Unknown;
  uint64_t line_ = 1;     // current line of the input
  uint64_t objects_ = 0;  // objects read (Objects mode)
  uint64_t pending_record_id_ = 0;  // from an evtx_dump "Record N" header line
};

// One field of a normalised event. Views point into the parser's buffers or the event's own
// storage: valid until the next parse with the same Normalizer.
struct Field {
  std::string_view name;
  std::string_view value;
  bool is_null = false;
};

struct NormalizedEvent {
  std::vector<Field> fields;
  std::string_view time;  // the event's own time stamp, as written; empty when none was found
};

class Normalizer {
 public:
  explicit Normalizer(size_t max_depth = 512);
  // Parses one JSON object (text.capacity() must leave SIMDJSON_PADDING bytes, as Record does);
  // on failure returns why (invalid JSON, UTF-8, nesting, not an object).
  std::optional<std::string> parse(const std::string& text, NormalizedEvent& out);

 private:
  void add(std::string_view name, simdjson::dom::element v, NormalizedEvent& out);
  void add_scalar(std::string_view name, simdjson::dom::element v, NormalizedEvent& out);
  void flatten(std::string_view prefix, simdjson::dom::object obj, NormalizedEvent& out, int depth);
  void evtx_section(simdjson::dom::object obj, NormalizedEvent& out, int depth);
  std::string_view own(std::string s);

  simdjson::dom::parser parser_;
  std::deque<std::string> storage_;  // composed names and rendered numbers of the current event
  size_t storage_used_ = 0;
};

// Minified JSON text of a record (for alerts).
std::string minify_json(const std::string& text);

}  // namespace csq::detect
