// Writes small EVTX files by hand, token by token, for the reader's tests and the fuzzer's seed
// corpus: a file header, one chunk, records made of a template instance (definition inline the
// first time, referenced afterwards) and typed substitution values.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace csq::detect::testing {

// BinXML value types used below (MS-EVEN6 2.2.6).
enum ValueType : uint8_t {
  kNull = 0x00, kString = 0x01, kAnsi = 0x02, kInt8 = 0x03, kUInt8 = 0x04, kInt16 = 0x05, kUInt16 = 0x06,
  kInt32 = 0x07, kUInt32 = 0x08, kInt64 = 0x09, kUInt64 = 0x0a, kReal32 = 0x0b, kReal64 = 0x0c, kBool = 0x0d,
  kBinary = 0x0e, kGuid = 0x0f, kSizeT = 0x10, kFileTime = 0x11, kSysTime = 0x12, kSid = 0x13,
  kHexInt32 = 0x14, kHexInt64 = 0x15, kBinXml = 0x21, kArray = 0x80,
};

class ChunkWriter;

struct Value {
  uint8_t type;
  std::vector<uint8_t> bytes;
  std::function<void(ChunkWriter&)> fragment = {};  // a nested Binary XML value, written in place
};

template <class T>
std::vector<uint8_t> le(T v) {
  std::vector<uint8_t> out(sizeof v);
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}
inline std::vector<uint8_t> utf16(const std::string& ascii, bool nul = false) {
  std::vector<uint8_t> out;
  for (char c : ascii) out.insert(out.end(), {uint8_t(c), 0});
  if (nul) out.insert(out.end(), {0, 0});
  return out;
}

class ChunkWriter {
 public:
  std::vector<uint8_t> chunk = std::vector<uint8_t>(65536);
  size_t pos = 512;

  void u8(uint8_t v) { chunk.at(pos++) = v; }
  void u16(uint16_t v) { put(le(v)); }
  void u32(uint32_t v) { put(le(v)); }
  void u64(uint64_t v) { put(le(v)); }
  void put(const std::vector<uint8_t>& b) {
    for (uint8_t x : b) u8(x);
  }
  void patch32(size_t at, uint32_t v) { std::memcpy(chunk.data() + at, &v, 4); }

  // A name reference: the chunk offset of the name, stored right here the first time.
  void name(const std::string& n) {
    auto it = names_.find(n);
    if (it != names_.end()) {
      u32(it->second);
      return;
    }
    const uint32_t at = uint32_t(pos + 4);
    names_[n] = at;
    u32(at);
    u32(0);  // next name in the hash bucket
    u16(0);  // hash (not checked by readers)
    u16(uint16_t(n.size()));
    put(utf16(n, true));
  }

  // Tokens. `in_template`: element starts carry a dependency identifier there.
  void fragment_header() { put({0x0f, 1, 1, 0}); }
  void open(const std::string& n, bool attributes, bool in_template = true) {
    u8(attributes ? 0x41 : 0x01);
    if (in_template) u16(0xffff);
    u32(0);  // element data size, not needed by readers
    name(n);
    if (attributes) u32(0);
  }
  void attribute(const std::string& n) { u8(0x06); name(n); }
  void text(const std::string& s) { u8(0x05); u8(kString); u16(uint16_t(s.size())); put(utf16(s)); }
  void substitution(uint16_t index, uint8_t type, bool optional = false) { u8(optional ? 0x0e : 0x0d); u16(index); u8(type); }
  void close_start() { u8(0x02); }
  void close_empty() { u8(0x03); }
  void end() { u8(0x04); }
  void entity(const std::string& n) { u8(0x09); name(n); }
  void char_ref(uint16_t c) { u8(0x08); u16(c); }
  void cdata(const std::string& s) { u8(0x07); u16(uint16_t(s.size())); put(utf16(s)); }
  void eof() { u8(0x00); }

  // A template instance; `definition` writes the template's tokens (between its fragment header
  // and EOF) the first time `id` is used.
  template <class Definition>
  void template_instance(uint32_t id, const Definition& definition, const std::vector<Value>& values) {
    u8(0x0c);
    u8(0x01);
    u32(id);
    auto it = templates_.find(id);
    if (it == templates_.end()) {
      const uint32_t at = uint32_t(pos + 4);
      templates_[id] = at;
      u32(at);
      u32(0);                     // next template in the bucket
      put(std::vector<uint8_t>(16, uint8_t(id)));  // GUID
      const size_t size_at = pos;
      u32(0);
      const size_t start = pos;
      fragment_header();
      definition(*this);
      eof();
      patch32(size_at, uint32_t(pos - start));
    } else {
      u32(it->second);
    }
    u32(uint32_t(values.size()));
    const size_t descriptors = pos;
    for (const auto& v : values) {
      u16(uint16_t(v.bytes.size()));
      u8(v.type);
      u8(0);
    }
    for (size_t i = 0; i < values.size(); ++i) {
      const size_t start = pos;
      if (values[i].fragment) values[i].fragment(*this);
      else put(values[i].bytes);
      const uint16_t size = uint16_t(pos - start);
      std::memcpy(chunk.data() + descriptors + 4 * i, &size, 2);
    }
  }

  // A record around Binary XML written by `body`.
  template <class Body>
  void record(uint64_t id, uint64_t filetime, const Body& body) {
    const size_t start = pos;
    put({0x2a, 0x2a, 0, 0});
    u32(0);
    u64(id);
    u64(filetime);
    body(*this);
    const uint32_t size = uint32_t(pos - start + 4);
    u32(size);
    patch32(start + 4, size);
    if (first_id_ == 0) first_id_ = id;
    last_id_ = id;
    last_offset_ = start;
  }

  // The 512-byte header: record numbers, free-space offset and both CRC32s.
  void finish_header() {
    std::memcpy(chunk.data(), "ElfChnk\0", 8);
    std::memcpy(chunk.data() + 8, &first_id_, 8);
    std::memcpy(chunk.data() + 16, &last_id_, 8);
    std::memcpy(chunk.data() + 24, &first_id_, 8);
    std::memcpy(chunk.data() + 32, &last_id_, 8);
    patch32(40, 128);
    patch32(44, uint32_t(last_offset_));
    patch32(48, uint32_t(pos));
    patch32(52, uint32_t(crc32(0L, chunk.data() + 512, uInt(pos - 512))));
    std::vector<uint8_t> h(chunk.begin(), chunk.begin() + 120);
    h.insert(h.end(), chunk.begin() + 128, chunk.begin() + 512);
    patch32(124, uint32_t(crc32(0L, h.data(), uInt(h.size()))));
  }

 private:
  std::map<std::string, uint32_t> names_;
  std::map<uint32_t, uint32_t> templates_;
  uint64_t first_id_ = 0, last_id_ = 0;
  size_t last_offset_ = 512;
};

// A 4096-byte file header for `chunks` chunks, then the chunks.
inline std::vector<uint8_t> evtx_file(const std::vector<std::vector<uint8_t>>& chunks, uint64_t next_record_id) {
  std::vector<uint8_t> f(4096);
  std::memcpy(f.data(), "ElfFile\0", 8);
  const uint64_t last_chunk = chunks.empty() ? 0 : chunks.size() - 1;
  std::memcpy(f.data() + 16, &last_chunk, 8);
  std::memcpy(f.data() + 24, &next_record_id, 8);
  const uint32_t header_size = 128;
  const uint16_t minor = 2, major = 3, block = 4096, count = uint16_t(chunks.size());
  std::memcpy(f.data() + 32, &header_size, 4);
  std::memcpy(f.data() + 36, &minor, 2);
  std::memcpy(f.data() + 38, &major, 2);
  std::memcpy(f.data() + 40, &block, 2);
  std::memcpy(f.data() + 42, &count, 2);
  const uint32_t crc = uint32_t(crc32(0L, f.data(), 120));
  std::memcpy(f.data() + 124, &crc, 4);
  for (const auto& c : chunks) f.insert(f.end(), c.begin(), c.end());
  return f;
}

// A chunk of Sysmon-like records covering every value type the reader renders: a template with
// attributes, optional substitutions, EventData items by name, entity and character references,
// CDATA, an array expanded into repeated elements and a nested Binary XML fragment (UserData).
inline std::vector<uint8_t> sample_evtx() {
  ChunkWriter w;
  auto definition = [](ChunkWriter& t) {
    t.open("Event", true);
    t.attribute("xmlns");
    t.text("http://schemas.microsoft.com/win/2004/08/events/event");
    t.close_start();
    t.open("System", false);
    t.close_start();
    t.open("Provider", true);
    t.attribute("Name");
    t.text("Test-Provider");
    t.attribute("Guid");
    t.substitution(0, kGuid);
    t.close_empty();
    t.open("EventID", false); t.close_start(); t.substitution(1, kUInt16); t.end();
    t.open("Level", false); t.close_start(); t.substitution(2, kUInt8); t.end();
    t.open("Keywords", false); t.close_start(); t.substitution(3, kHexInt64); t.end();
    t.open("TimeCreated", true); t.attribute("SystemTime"); t.substitution(4, kFileTime); t.close_empty();
    t.open("EventRecordID", false); t.close_start(); t.substitution(5, kUInt64); t.end();
    t.open("Correlation", true); t.attribute("ActivityID"); t.substitution(6, kGuid, true); t.close_empty();
    t.open("Channel", false); t.close_start(); t.substitution(7, kString); t.end();
    t.open("Security", true); t.attribute("UserID"); t.substitution(8, kSid, true); t.close_empty();
    t.end();  // System
    t.open("EventData", false);
    t.close_start();
    const char* names[] = {"CommandLine", "Signed", "Ratio", "When", "Blob", "Size", "Ansi", "Missing", "Offset", "Small"};
    const uint8_t types[] = {kString, kBool, kReal64, kSysTime, kBinary, kSizeT, kAnsi, kString, kInt32, kInt8};
    for (int i = 0; i < 10; ++i) {
      t.open("Data", true);
      t.attribute("Name");
      t.text(names[i]);
      t.close_start();
      t.substitution(uint16_t(9 + i), types[i], i == 7);
      t.end();
    }
    t.open("Data", true);
    t.attribute("Name");
    t.text("Text");
    t.close_start();
    t.text("a ");
    t.entity("amp");
    t.text(" b ");
    t.cdata("<c>");
    t.char_ref(0x41);
    t.end();
    t.end();  // EventData
    t.open("Ports", false); t.close_start(); t.substitution(19, kUInt16 | kArray); t.end();
    t.substitution(20, kBinXml, true);  // UserData, present in some records
    t.end();  // Event
  };
  const std::vector<uint8_t> guid = {0x5f, 0x38, 0x70, 0x57, 0x2a, 0xc2, 0xe0, 0x43,
                                     0xbf, 0x4c, 0x06, 0xf5, 0x69, 0x8f, 0xfb, 0xd9};
  const std::vector<uint8_t> sid = {1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0};  // S-1-5-18
  std::vector<uint8_t> systime;
  for (uint16_t f : {2019, 5, 2, 14, 3, 41, 52, 123}) {
    const auto b = le(f);
    systime.insert(systime.end(), b.begin(), b.end());
  }
  auto values = [&](uint64_t id, const std::vector<uint8_t>& user_data) {
    std::vector<uint8_t> ports = le(uint16_t(80));
    const auto p2 = le(uint16_t(443));
    ports.insert(ports.end(), p2.begin(), p2.end());
    return std::vector<Value>{
        {kGuid, guid},
        {kUInt16, le(uint16_t(4688))},
        {kUInt8, le(uint8_t(4))},
        {kHexInt64, le(uint64_t(0x8020000000000000ull))},
        {kFileTime, le(uint64_t(132022872521234567ull))},
        {kUInt64, le(id)},
        {kNull, {}},
        {kString, utf16("Security", true)},
        {kSid, sid},
        {kString, utf16("\"C:\\Windows\\cmd.exe\" /c echo \xe9")},  // Latin-1 é, as one UTF-16 unit
        {kBool, le(int32_t(1))},
        {kReal64, le(0.25)},
        {kSysTime, systime},
        {kBinary, {0xde, 0xad, 0xbe, 0xef}},
        {kSizeT, le(uint64_t(0x1000))},
        {kAnsi, {'a', 'n', 's', 'i', 0x80, 0}},
        {kString, {}},
        {kInt32, le(int32_t(-5))},
        {kInt8, le(int8_t(-1))},
        {uint8_t(kUInt16 | kArray), ports},
        {user_data.empty() ? uint8_t(kNull) : uint8_t(kBinXml), user_data},
    };
  };
  w.record(1, 132022872521234567ull, [&](ChunkWriter& r) {
    r.fragment_header();
    r.template_instance(7, definition, values(1, {}));
    r.eof();
  });
  // The second record refers to the template by offset and carries UserData as a nested fragment.
  w.record(2, 132022872531234567ull, [&](ChunkWriter& r) {
    r.fragment_header();
    auto v = values(2, {});
    v.back() = Value{kBinXml, {}, [](ChunkWriter& f) {
                       f.fragment_header();
                       f.open("UserData", false, false);
                       f.close_start();
                       f.open("Note", false, false);
                       f.close_start();
                       f.text("hello");
                       f.end();
                       f.end();
                       f.eof();
                     }};
    r.template_instance(7, definition, v);
    r.eof();
  });
  w.finish_header();
  return evtx_file({w.chunk}, 3);
}

}  // namespace csq::detect::testing
