#include "detect/evtx_binxml.h"

#include "tokenizer/utf8.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace csq::detect::binxml {
namespace {

using Kind = ChunkDecoder::Kind;
using Node = ChunkDecoder::Node;
using Substitution = ChunkDecoder::Substitution;
constexpr uint32_t kNone = ChunkDecoder::kNone;

// BinXML value types (MS-EVEN6 2.2.6); 0x80 marks an array of the base type.
enum : uint8_t {
  kNull = 0x00, kString = 0x01, kAnsi = 0x02, kInt8 = 0x03, kUInt8 = 0x04, kInt16 = 0x05,
  kUInt16 = 0x06, kInt32 = 0x07, kUInt32 = 0x08, kInt64 = 0x09, kUInt64 = 0x0a, kReal32 = 0x0b,
  kReal64 = 0x0c, kBool = 0x0d, kBinary = 0x0e, kGuid = 0x0f, kSizeT = 0x10, kFileTime = 0x11,
  kSysTime = 0x12, kSid = 0x13, kHexInt32 = 0x14, kHexInt64 = 0x15, kEvtHandle = 0x20,
  kBinXml = 0x21, kEvtXml = 0x23, kArray = 0x80,
};

[[noreturn]] void fail(const std::string& what, size_t offset) {
  throw FormatError(what + " at chunk offset " + std::to_string(offset));
}

std::string hex_byte(uint8_t v) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[v >> 4] + digits[v & 15];
}

// Size of one item of a fixed-size type, 0 for variable-size ones.
size_t fixed_size(uint8_t base) {
  switch (base) {
    case kInt8: case kUInt8: return 1;
    case kInt16: case kUInt16: return 2;
    case kInt32: case kUInt32: case kReal32: case kBool: case kHexInt32: return 4;
    case kInt64: case kUInt64: case kReal64: case kFileTime: case kHexInt64: return 8;
    case kGuid: case kSysTime: return 16;
    default: return 0;
  }
}

bool known_type(uint8_t type) {
  if (type & kArray) {
    const uint8_t base = type & 0x7f;
    return base == kString || fixed_size(base) > 0 || base == kSid;
  }
  return type <= kHexInt64 || type == kEvtHandle || type == kBinXml || type == kEvtXml;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // little-endian hosts only (x86-64, aarch64)
  return v;
}

// UTF-16LE to UTF-8; unpaired surrogates become U+FFFD. `stop_at_nul`: values end at the first
// NUL (a sized string's padding), as evtx_dump reads them.
void append_utf16(std::string& out, std::span<const uint8_t> bytes, bool stop_at_nul) {
  const size_t units = bytes.size() / 2;
  out.reserve(out.size() + units);
  for (size_t i = 0; i < units; ++i) {
    uint32_t u = load<uint16_t>(bytes.data() + 2 * i);
    if (u == 0 && stop_at_nul) break;
    if (u < 0x80) {  // ASCII, most of any event log
      out += char(u);
      continue;
    }
    if (u >= 0xd800 && u < 0xdc00 && i + 1 < units) {
      const uint32_t low = load<uint16_t>(bytes.data() + 2 * i + 2);
      if (low >= 0xdc00 && low < 0xe000) {
        tok::append_utf8(0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00), out);
        ++i;
        continue;
      }
    }
    tok::append_utf8((u >= 0xd800 && u < 0xe000) ? 0xfffd : u, out);
  }
}

size_t utf16_units_before_nul(std::span<const uint8_t> bytes) {
  const size_t units = bytes.size() / 2;
  for (size_t i = 0; i < units; ++i)
    if (bytes[2 * i] == 0 && bytes[2 * i + 1] == 0) return i;
  return units;
}

// Windows-1252, evtx_dump's default code page for ANSI strings; NUL bytes are dropped.
void append_cp1252(std::string& out, std::span<const uint8_t> bytes) {
  static const uint16_t high[32] = {0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
                                    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
                                    0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
                                    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178};
  for (uint8_t c : bytes) {
    if (c == 0) continue;
    tok::append_utf8((c >= 0x80 && c < 0xa0) ? high[c - 0x80] : c, out);
  }
}

void append_hex_upper(std::string& out, std::span<const uint8_t> bytes) {
  static const char* digits = "0123456789ABCDEF";
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
}

void append_hex_prefixed(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  out += "0x";
  out.append(buf, r.ptr);
}

template <class T>
void append_number(std::string& out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Shortest round-trip form as Rust prints floats: "1.0", "0.25", "1e20", "1.5e-7".
template <class F>
void append_float(std::string& out, F v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
    const bool negative = exponent[0] == '-';
    if (exponent[0] == '+' || exponent[0] == '-') exponent.erase(0, 1);
    exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
    s = mantissa + "e" + (negative ? "-" : "") + exponent;
  } else if (s.find_first_of(".ni") == std::string::npos) {
    s += ".0";
  }
  out += s;
}

void append_guid(std::string& out, const uint8_t* g) {
  static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    append_hex_upper(out, std::span<const uint8_t>(g + order[i], 1));
  }
}

size_t sid_size(std::span<const uint8_t> bytes) { return bytes.size() < 8 ? 0 : 8 + 4 * size_t(bytes[1]); }

void append_sid(std::string& out, std::span<const uint8_t> bytes) {
  if (bytes.size() < 8) {
    out += "S-?";
    return;
  }
  uint64_t authority = 0;
  for (int i = 2; i < 8; ++i) authority = (authority << 8) | bytes[i];
  out += "S-";
  append_number(out, unsigned(bytes[0]));
  out += '-';
  append_number(out, authority);
  for (size_t i = 0; i < bytes[1] && 8 + 4 * i + 4 <= bytes.size(); ++i) {
    out += '-';
    append_number(out, load<uint32_t>(bytes.data() + 8 + 4 * i));
  }
}

// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = unsigned(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = int64_t(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

std::string format_time(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s, unsigned micros) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", (long long)y, mo, d, h, mi, s, micros);
  return buf;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

std::string systemtime_iso(const uint8_t* p, size_t offset) {
  uint16_t f[8];
  for (int i = 0; i < 8; ++i) f[i] = load<uint16_t>(p + 2 * i);
  const unsigned year = f[0], month = f[1], day = f[3], hour = f[4], minute = f[5], second = f[6], ms = f[7];
  if (!year && !month && !day && !hour && !minute && !second && !ms) return filetime_iso(0);
  static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year > 9999 || month < 1 || month > 12 || day < 1 ||
      day > days[month - 1] + (month == 2 && leap(year) ? 1 : 0) || hour > 23 || minute > 59 || second > 59 ||
      ms > 999)
    fail("invalid SYSTEMTIME", offset);
  return format_time(year, month, day, hour, minute, second, ms * 1000);
}

// Text of one value (scalar or array) as evtx_dump renders it; arrays comma-separated.
void append_value_text(std::string& out, uint8_t type, std::span<const uint8_t> v, size_t offset) {
  const uint8_t base = type & 0x7f;
  if (type & kArray) {
    bool first = true;
    auto item = [&](std::span<const uint8_t> piece) {
      if (!first) out += ',';
      first = false;
      append_value_text(out, base, piece, offset);
    };
    if (base == kString) {
      size_t pos = 0;
      while (pos + 1 < v.size()) {
        const size_t units = utf16_units_before_nul(v.subspan(pos));
        item(v.subspan(pos, 2 * units));
        pos += 2 * units + 2;
      }
    } else if (base == kSid) {
      for (size_t pos = 0; pos < v.size();) {
        const size_t n = sid_size(v.subspan(pos));
        if (n == 0 || n > v.size() - pos) fail("truncated SID in an array", offset);
        item(v.subspan(pos, n));
        pos += n;
      }
    } else {
      const size_t n = fixed_size(base);
      for (size_t pos = 0; pos + n <= v.size(); pos += n) item(v.subspan(pos, n));
    }
    return;
  }
  const size_t need = fixed_size(base);
  if (v.size() < need) fail("value of type " + hex_byte(type) + " has " + std::to_string(v.size()) + " bytes, needs " + std::to_string(need), offset);
  const uint8_t* p = v.data();
  switch (base) {
    case kNull: break;
    case kString: append_utf16(out, v, true); break;
    case kAnsi: append_cp1252(out, v); break;
    case kInt8: append_number(out, int(int8_t(p[0]))); break;
    case kUInt8: append_number(out, unsigned(p[0])); break;
    case kInt16: append_number(out, load<int16_t>(p)); break;
    case kUInt16: append_number(out, load<uint16_t>(p)); break;
    case kInt32: append_number(out, load<int32_t>(p)); break;
    case kUInt32: append_number(out, load<uint32_t>(p)); break;
    case kInt64: append_number(out, load<int64_t>(p)); break;
    case kUInt64: append_number(out, load<uint64_t>(p)); break;
    case kReal32: append_float(out, load<float>(p)); break;
    case kReal64: append_float(out, load<double>(p)); break;
    case kBool: out += load<int32_t>(p) ? "true" : "false"; break;
    case kBinary: append_hex_upper(out, v); break;
    case kGuid: append_guid(out, p); break;
    case kSizeT:
      if (v.size() == 4) append_hex_prefixed(out, load<uint32_t>(p));
      else if (v.size() == 8) append_hex_prefixed(out, load<uint64_t>(p));
      else fail("size_t value of " + std::to_string(v.size()) + " bytes", offset);
      break;
    case kFileTime: out += filetime_iso(load<uint64_t>(p)); break;
    case kSysTime: out += systemtime_iso(p, offset); break;
    case kSid: append_sid(out, v); break;
    case kHexInt32: append_hex_prefixed(out, load<uint32_t>(p)); break;
    case kHexInt64: append_hex_prefixed(out, load<uint64_t>(p)); break;
    default: fail("value type " + hex_byte(type) + " cannot be rendered", offset);
  }
}

bool is_string_type(uint8_t type) { return type == kString || type == kAnsi; }

// Items of an array value as (offset, size) pieces of the chunk.
std::vector<std::pair<uint32_t, uint32_t>> array_items(const Node& n, std::span<const uint8_t> v) {
  std::vector<std::pair<uint32_t, uint32_t>> items;
  const uint8_t base = n.type & 0x7f;
  if (base == kString) {
    for (size_t pos = 0; pos + 1 < v.size();) {
      const size_t units = utf16_units_before_nul(v.subspan(pos));
      items.emplace_back(n.a + pos, 2 * units);
      pos += 2 * units + 2;
    }
  } else if (base == kSid) {
    for (size_t pos = 0; pos < v.size();) {
      const size_t size = sid_size(v.subspan(pos));
      if (size == 0 || size > v.size() - pos) break;
      items.emplace_back(n.a + pos, size);
      pos += size;
    }
  } else {
    const size_t size = fixed_size(base);
    for (size_t pos = 0; pos + size <= v.size(); pos += size) items.emplace_back(n.a + pos, size);
  }
  return items;
}

}  // namespace

std::string filetime_iso(uint64_t filetime) {
  const int64_t secs = int64_t(filetime / 10'000'000) - 11'644'473'600LL;
  const unsigned micros = unsigned((filetime % 10'000'000) / 10);
  const int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  const int64_t rem = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  if (y > 9999) throw FormatError("FILETIME " + std::to_string(filetime) + " is after the year 9999");
  return format_time(y, m, d, unsigned(rem / 3600), unsigned(rem / 60 % 60), unsigned(rem % 60), micros);
}

// Where tokens go while a record is read: the open elements, the element whose start tag is
// being read and its current attribute.
struct ChunkDecoder::Builder {
  std::vector<uint32_t> stack;
  uint32_t pending = kNone;
  uint32_t pending_attr = kNone;
  uint32_t root = kNone;
};

ChunkDecoder::ChunkDecoder(std::span<const uint8_t> chunk) : chunk_(chunk) {}

const std::string& ChunkDecoder::name_at(uint32_t offset, uint32_t& id) {
  auto it = name_ids_.find(offset);
  if (it != name_ids_.end()) {
    id = it->second;
    return names_[id];
  }
  // Name entry: next-name offset (4), hash (2), character count (2), UTF-16 characters, NUL.
  if (size_t(offset) + 8 > chunk_.size()) fail("name offset " + std::to_string(offset) + " outside the chunk", offset);
  const size_t chars = load<uint16_t>(chunk_.data() + offset + 6);
  if (size_t(offset) + 8 + 2 * chars > chunk_.size()) fail("name runs past the end of the chunk", offset);
  std::string name;
  append_utf16(name, chunk_.subspan(offset + 8, 2 * chars), false);
  id = uint32_t(names_.size());
  names_.push_back(std::move(name));
  name_ids_.emplace(offset, id);
  return names_[id];
}

uint32_t ChunkDecoder::read_name_ref(size_t& pos) {
  if (pos + 4 > chunk_.size()) fail("truncated name reference", pos);
  const uint32_t offset = load<uint32_t>(chunk_.data() + pos);
  pos += 4;
  uint32_t id;
  name_at(offset, id);
  if (offset == pos) {  // the name is stored here, inline: skip it
    pos += 8 + 2 * size_t(load<uint16_t>(chunk_.data() + offset + 6)) + 2;
    if (pos > chunk_.size()) fail("inline name runs past the end of the chunk", offset);
  }
  return id;
}

namespace {

// Reads the fixed parts of tokens with bounds checks against the chunk.
struct Reader {
  std::span<const uint8_t> d;
  size_t& pos;
  void need(size_t n, const char* what) const {
    if (pos > d.size() || d.size() - pos < n) fail(std::string("truncated ") + what, pos);
  }
  uint8_t u8(const char* what) { need(1, what); return d[pos++]; }
  uint16_t u16(const char* what) { need(2, what); pos += 2; return load<uint16_t>(d.data() + pos - 2); }
  uint32_t u32(const char* what) { need(4, what); pos += 4; return load<uint32_t>(d.data() + pos - 4); }
};

}  // namespace

nlohmann::ordered_json render_json(const ChunkDecoder& t, uint32_t root);

nlohmann::ordered_json ChunkDecoder::decode(uint32_t offset, uint32_t size) {
  elements_.clear();
  nodes_.clear();
  attrs_.clear();
  Builder b;
  parse(offset, size_t(offset) + size, false, nullptr, 0, b);
  if (b.root == kNone) {  // an empty fragment: evtx_dump shows an empty Event
    if (event_name_ == kNone) {
      event_name_ = uint32_t(names_.size());
      names_.push_back("Event");
    }
    elements_.push_back(Element{event_name_});
    b.root = uint32_t(elements_.size() - 1);
  }
  return render_json(*this, b.root);
}

namespace {

void check_budget(const ChunkDecoder& t, size_t pos) {
  if (t.nodes_.size() + t.elements_.size() + t.attrs_.size() > ChunkDecoder::kMaxNodes)
    fail("record expands to more than " + std::to_string(ChunkDecoder::kMaxNodes) + " nodes", pos);
}

}  // namespace

void ChunkDecoder::add_node(Builder& b, Node n, size_t pos) {
  check_budget(*this, pos);
  const uint32_t id = uint32_t(nodes_.size());
  if (b.pending != kNone) {
    if (b.pending_attr == kNone) return;  // a value before any attribute name: nowhere to go
    Attr& a = attrs_[b.pending_attr];
    nodes_.push_back(n);
    if (a.last == kNone) a.first = id; else nodes_[a.last].next = id;
    a.last = id;
  } else if (!b.stack.empty()) {
    Element& e = elements_[b.stack.back()];
    nodes_.push_back(n);
    if (e.last_child == kNone) e.first_child = id; else nodes_[e.last_child].next = id;
    e.last_child = id;
    if (n.kind == Kind::Element) e.has_element_child = true;
  }
}

// A finished element joins its parent (or becomes the root), repeated once per item of an array
// value it holds (MS-EVEN6 3.1.4.7.5).
void ChunkDecoder::attach_element(Builder& b, uint32_t element, size_t pos) {
  std::vector<uint32_t> expanded{element};
  for (size_t i = 0; i < expanded.size();) {
    // The first array value with more than one item, among the children then the attributes.
    uint32_t array_node = kNone;
    for (uint32_t c = elements_[expanded[i]].first_child; c != kNone && array_node == kNone; c = nodes_[c].next)
      if (nodes_[c].kind == Kind::Value && (nodes_[c].type & kArray) &&
          array_items(nodes_[c], bytes(nodes_[c].a, nodes_[c].b)).size() > 1)
        array_node = c;
    for (uint32_t a = elements_[expanded[i]].first_attr; a != kNone && array_node == kNone; a = attrs_[a].next)
      for (uint32_t c = attrs_[a].first; c != kNone && array_node == kNone; c = nodes_[c].next)
        if (nodes_[c].kind == Kind::Value && (nodes_[c].type & kArray) &&
            array_items(nodes_[c], bytes(nodes_[c].a, nodes_[c].b)).size() > 1)
          array_node = c;
    if (array_node == kNone) {
      ++i;
      continue;
    }
    const Node array = nodes_[array_node];
    std::vector<uint32_t> copies;
    for (const auto& item : array_items(array, bytes(array.a, array.b))) {
      const uint32_t item_offset = item.first, item_size = item.second;
      // Copy the element's own node lists with the array replaced by this item (an empty
      // string item leaves nothing); child elements are shared, not copied.
      const Element& source = elements_[expanded[i]];
      Element copy{source.name};
      copy.has_element_child = source.has_element_child;
      auto copy_list = [&](uint32_t first, uint32_t& out_first, uint32_t& out_last) {
        for (uint32_t c = first; c != kNone; c = nodes_[c].next) {
          check_budget(*this, pos);
          Node n = nodes_[c];
          n.next = kNone;
          if (c == array_node) {
            if ((array.type & 0x7f) == kString && item_size == 0) continue;
            n.type = array.type & 0x7f;
            n.a = item_offset;
            n.b = item_size;
          }
          const uint32_t id = uint32_t(nodes_.size());
          nodes_.push_back(n);
          if (out_last == kNone) out_first = id; else nodes_[out_last].next = id;
          out_last = id;
        }
      };
      copy_list(source.first_child, copy.first_child, copy.last_child);
      for (uint32_t a = source.first_attr; a != kNone; a = attrs_[a].next) {
        Attr na{attrs_[a].name};
        copy_list(attrs_[a].first, na.first, na.last);
        if (na.first == kNone) continue;
        const uint32_t id = uint32_t(attrs_.size());
        attrs_.push_back(na);
        if (copy.last_attr == kNone) copy.first_attr = id; else attrs_[copy.last_attr].next = id;
        copy.last_attr = id;
      }
      elements_.push_back(copy);
      copies.push_back(uint32_t(elements_.size() - 1));
    }
    expanded.erase(expanded.begin() + i);
    expanded.insert(expanded.begin() + i, copies.begin(), copies.end());
  }
  for (uint32_t e : expanded) {
    if (!b.stack.empty()) add_node(b, Node{Kind::Element, 0, 0, kNone, e, 0}, pos);
    else if (b.root == kNone) b.root = e;
  }

}

void ChunkDecoder::parse(size_t begin, size_t end, bool template_definition, const std::vector<Substitution>* values,
                         int nesting, Builder& b) {
  if (nesting > kMaxNesting) fail("Binary XML nested more than " + std::to_string(kMaxNesting) + " deep", begin);
  if (end > chunk_.size()) fail("Binary XML runs past the end of the chunk", begin);
  const size_t stack_at_entry = b.stack.size();
  const uint32_t pending_at_entry = b.pending;
  size_t pos = begin;
  Reader r{chunk_, pos};

  auto push_node = [&](Node n) { add_node(b, n, pos); };
  auto attach = [&](uint32_t element) { attach_element(b, element, pos); };
  auto finish_start = [&]() {
    if (b.pending == kNone || b.pending == pending_at_entry) fail("element start closed without an open element", pos);
    const uint32_t e = b.pending;
    b.pending = kNone;
    b.pending_attr = kNone;
    // Attributes left without any value disappear, as evtx_dump drops them.
    uint32_t* link = &elements_[e].first_attr;
    elements_[e].last_attr = kNone;
    for (uint32_t a = *link; a != kNone; a = attrs_[a].next) {
      if (attrs_[a].first == kNone) continue;
      *link = a;
      link = &attrs_[a].next;
      elements_[e].last_attr = a;
    }
    *link = kNone;
    return e;
  };

  bool eof = false;
  while (!eof && pos < end) {
    const size_t token_pos = pos;
    const uint8_t token = r.u8("token");
    switch (token) {
      case 0x00: eof = true; break;
      case 0x0f: r.need(3, "fragment header"); pos += 3; break;
      case 0x01: case 0x41: {  // open start element
        if (b.pending != kNone) fail("element start inside another element start", token_pos);
        if (template_definition) r.u16("dependency identifier");
        r.u32("element size");
        const uint32_t name = read_name_ref(pos);
        if (token & 0x40) r.u32("attribute list size");
        check_budget(*this, pos);
        elements_.push_back(Element{name});
        b.pending = uint32_t(elements_.size() - 1);
        b.pending_attr = kNone;
        break;
      }
      case 0x02: {  // close start element
        const uint32_t e = finish_start();
        if (b.stack.size() >= kMaxElementDepth) fail("elements nested more than " + std::to_string(kMaxElementDepth) + " deep", token_pos);
        b.stack.push_back(e);
        break;
      }
      case 0x03: attach(finish_start()); break;  // close empty element
      case 0x04: {                               // end element
        if (b.pending != kNone) fail("end element inside an element start", token_pos);
        if (b.stack.size() <= stack_at_entry) fail("end element without an open element", token_pos);
        const uint32_t e = b.stack.back();
        b.stack.pop_back();
        attach(e);
        break;
      }
      case 0x06: case 0x46: {  // attribute
        if (b.pending == kNone) fail("attribute outside an element start", token_pos);
        const uint32_t name = read_name_ref(pos);
        check_budget(*this, pos);
        attrs_.push_back(Attr{name});
        const uint32_t id = uint32_t(attrs_.size() - 1);
        Element& e = elements_[b.pending];
        if (e.last_attr == kNone) e.first_attr = id; else attrs_[e.last_attr].next = id;
        e.last_attr = id;
        b.pending_attr = id;
        break;
      }
      case 0x05: case 0x45: {  // value text
        const uint8_t type = r.u8("value type");
        if (type == kString) {
          const uint32_t chars = r.u16("string length");
          r.need(2 * size_t(chars), "string");
          push_node(Node{Kind::Value, kString, 0, kNone, uint32_t(pos), 2 * chars});
          pos += 2 * size_t(chars);
        } else if (type == kBinXml) {
          const uint32_t size = r.u16("fragment size");
          r.need(size, "fragment");
          if (b.pending != kNone) fail("Binary XML fragment inside an attribute value", token_pos);
          const size_t fragment = pos;
          pos += size;
          parse(fragment, fragment + size, false, nullptr, nesting + 1, b);
        } else if (!(type & kArray) && fixed_size(type) > 0) {
          r.need(fixed_size(type), "value");
          push_node(Node{Kind::Value, type, 0, kNone, uint32_t(pos), uint32_t(fixed_size(type))});
          pos += fixed_size(type);
        } else {
          fail("value text of type " + hex_byte(type) + " is not supported", token_pos);
        }
        break;
      }
      case 0x07: case 0x47: case 0x0b: {  // CDATA section, processing instruction data
        const uint32_t chars = r.u16(token == 0x0b ? "PI data length" : "CDATA length");
        r.need(2 * size_t(chars), token == 0x0b ? "PI data" : "CDATA");
        push_node(Node{token == 0x0b ? Kind::PIData : Kind::CData, 0, 0, kNone, uint32_t(pos), 2 * chars});
        pos += 2 * size_t(chars);
        break;
      }
      case 0x08: case 0x48: {  // character reference
        const uint16_t code = r.u16("character reference");
        push_node(Node{Kind::CharRef, 0, code, kNone, 0, 0});
        break;
      }
      case 0x09: case 0x49: case 0x0a: {  // entity reference, processing instruction target
        const uint32_t name = read_name_ref(pos);
        push_node(Node{token == 0x0a ? Kind::PITarget : Kind::EntityRef, 0, 0, kNone, name, 0});
        break;
      }
      case 0x0c:  // template instance
        if (template_definition) fail("template instance inside a template definition", token_pos);
        instantiate(pos, nesting, b);
        break;
      case 0x0d: case 0x0e: {  // normal / optional substitution
        const uint16_t index = r.u16("substitution index");
        const uint8_t type = r.u8("substitution type");
        if (!values) fail("substitution outside a template definition", token_pos);
        if (!known_type(type)) fail("substitution of unknown value type " + hex_byte(type), token_pos);
        if (index < values->size()) substitute((*values)[index], token == 0x0e, nesting, b);
        break;
      }
      default: fail("unknown Binary XML token " + hex_byte(token), token_pos);
    }
  }
  if (b.pending != pending_at_entry) fail("Binary XML ends inside an element start", pos);
  if (b.stack.size() != stack_at_entry) fail("Binary XML ends with " + std::to_string(b.stack.size() - stack_at_entry) + " element(s) open", pos);
}

void ChunkDecoder::instantiate(size_t& pos, int nesting, Builder& b) {
  const size_t token_pos = pos - 1;
  Reader r{chunk_, pos};
  if (b.pending != kNone) fail("template instance inside an element start", token_pos);
  r.u8("template instance");
  r.u32("template id");
  const uint32_t definition = r.u32("template definition offset");
  // Template definition: next-template offset (4), GUID (16), data size (4), then its Binary XML.
  auto definition_size = [&](size_t at) -> uint32_t {
    if (at + 24 > chunk_.size()) fail("template definition header outside the chunk", at);
    const uint32_t size = load<uint32_t>(chunk_.data() + at + 20);
    if (size > chunk_.size() - at - 24) fail("template definition runs past the end of the chunk", at);
    return size;
  };
  const uint32_t size = definition_size(definition);
  if (definition == pos) pos += 24 + size_t(size);  // defined here, the first time it is used

  const uint32_t count = r.u32("substitution count");
  if (size_t(count) * 4 > chunk_.size() - std::min(pos, chunk_.size())) fail("substitution count " + std::to_string(count) + " exceeds the chunk", token_pos);
  std::vector<Substitution> values(count);
  for (auto& v : values) {
    v.size = r.u16("substitution size");
    v.type = r.u8("substitution type");
    r.u8("substitution padding");
    if (!known_type(v.type)) fail("substitution value of unknown type " + hex_byte(v.type), pos - 2);
    const uint8_t base = v.type & 0x7f;
    if ((v.type & kArray) && base != kString && base != kSid && v.size % fixed_size(base) != 0)
      fail("array of type " + hex_byte(v.type) + " with " + std::to_string(v.size) + " bytes", pos - 4);
    if (v.type == kString && v.size % 2) fail("UTF-16 string value of odd size " + std::to_string(v.size), pos - 4);
  }
  for (auto& v : values) {
    v.offset = uint32_t(pos);
    r.need(v.size, "substitution value");
    pos += v.size;
  }
  parse(size_t(definition) + 24, size_t(definition) + 24 + size, true, &values, nesting + 1, b);
}

void ChunkDecoder::substitute(const Substitution& v, bool optional, int nesting, Builder& b) {
  const auto data = bytes(v.offset, v.size);
  bool empty = false;
  switch (v.type) {
    case kNull: empty = true; break;
    case kString: empty = utf16_units_before_nul(data) == 0; break;
    case kAnsi: empty = std::all_of(data.begin(), data.end(), [](uint8_t c) { return c == 0; }); break;
    case kBinary: case kBinXml: empty = v.size == 0; break;
    default:
      if (v.type & kArray) empty = array_items(Node{Kind::Value, v.type, 0, kNone, v.offset, v.size}, data).empty();
  }
  if (optional && empty) return;
  if (v.type == kEvtHandle || v.type == kEvtXml) fail("substitution value of type " + hex_byte(v.type) + " is not supported", v.offset);
  if (v.type == kBinXml && v.size > 0) {
    if (b.pending != kNone) fail("Binary XML fragment inside an attribute value", v.offset);
    parse(v.offset, size_t(v.offset) + v.size, false, nullptr, nesting + 1, b);
    return;
  }
  add_node(b, Node{Kind::Value, uint8_t(v.type == kBinXml ? uint8_t(kNull) : v.type), 0, kNone, v.offset, v.size}, v.offset);
}

// ---- JSON, the layout of evtx_dump -o json ----------------------------------------------------
//
// An element becomes a key; its value is a number or string when it holds one value, null when
// empty, else an object with "#attributes" (attributes that have a value), "#text" (its text)
// and its child elements (a repeated name gets _1, _2 ...). Inside EventData and UserData,
// <Data Name="X">v</Data> becomes "X": v (an empty one ""), and Data without names become
// "Data": {"#text": v or [v, ...]}. Numbers are the integer and boolean values; everything else
// is text (GUIDs without braces, SIDs, hex, times as 2019-05-14T03:41:52.123456Z).
namespace {

using Json = nlohmann::ordered_json;

class JsonRenderer {
 public:
  explicit JsonRenderer(const ChunkDecoder& t) : t_(t) {}

  Json root(uint32_t e) {
    Json out = Json::object();
    out[t_.name(t_.elements_[e].name)] = element_value(e, false);
    return out;
  }

 private:
  const ChunkDecoder::Node& node(uint32_t i) const { return t_.nodes_[i]; }
  const ChunkDecoder::Element& element(uint32_t i) const { return t_.elements_[i]; }
  std::span<const uint8_t> bytes(const Node& n) const { return t_.bytes(n.a, n.b); }

  // Substituted strings are plain text in evtx_dump's tree, every other value stays typed.
  bool is_text(const Node& n) const {
    return n.kind == Kind::CData || (n.kind == Kind::Value && is_string_type(n.type));
  }
  bool text_empty(const Node& n) const {
    if (n.kind == Kind::CData) return n.b == 0;
    return n.type == kString ? utf16_units_before_nul(bytes(n)) == 0
                             : std::all_of(bytes(n).begin(), bytes(n).end(), [](uint8_t c) { return c == 0; });
  }
  bool value_empty(const Node& n) const {
    if (n.type == kNull) return true;
    if (is_string_type(n.type)) return text_empty(n);
    if (n.type == kBinary) return n.b == 0;
    if (n.type & kArray) return array_items(n, bytes(n)).empty();
    return false;
  }
  bool is_content(const Node& n) const {
    switch (n.kind) {
      case Kind::CData: return n.b > 0;
      case Kind::EntityRef: case Kind::CharRef: return true;
      case Kind::Value: return !value_empty(n);
      default: return false;
    }
  }
  bool has_content(uint32_t first) const {
    for (uint32_t c = first; c != kNone; c = node(c).next)
      if (is_content(node(c))) return true;
    return false;
  }

  void count_text(size_t n) {
    text_bytes_ += n;
    if (text_bytes_ > ChunkDecoder::kMaxTextBytes)
      throw FormatError("record renders to more than " + std::to_string(ChunkDecoder::kMaxTextBytes) + " bytes of text");
  }

  std::string text_content(uint32_t first) {
    std::string out;
    for (uint32_t c = first; c != kNone; c = node(c).next) {
      const Node& n = node(c);
      switch (n.kind) {
        case Kind::Value: append_value_text(out, n.type, bytes(n), n.a); break;
        case Kind::CData: append_utf16(out, bytes(n), false); break;
        case Kind::CharRef:
          if (n.code >= 0xd800 && n.code < 0xe000) out += "&#" + std::to_string(n.code) + ";";
          else tok::append_utf8(n.code, out);
          break;
        case Kind::EntityRef: {
          const std::string& name = t_.name(n.a);
          if (name == "quot") out += '"';
          else if (name == "apos") out += '\'';
          else if (name == "amp") out += '&';
          else if (name == "lt") out += '<';
          else if (name == "gt") out += '>';
          else out += "&" + name + ";";
          break;
        }
        default: break;  // elements and processing instructions carry no text
      }
    }
    count_text(out.size());
    return out;
  }

  // Integer and boolean values as JSON numbers and booleans.
  bool value_as_number(const Node& n, Json& out) const {
    const uint8_t* p = bytes(n).data();
    if (n.b < fixed_size(n.type)) return false;
    switch (n.type) {
      case kInt8: out = int8_t(p[0]); return true;
      case kUInt8: out = p[0]; return true;
      case kInt16: out = load<int16_t>(p); return true;
      case kUInt16: out = load<uint16_t>(p); return true;
      case kInt32: out = load<int32_t>(p); return true;
      case kUInt32: out = load<uint32_t>(p); return true;
      case kInt64: out = load<int64_t>(p); return true;
      case kUInt64: out = load<uint64_t>(p); return true;
      case kBool: out = load<int32_t>(p) != 0; return true;
      default: return false;
    }
  }

  // A number when the content is exactly one integer value (`skip_elements`: ignoring child
  // elements and empty pieces, for "#text").
  bool try_number(uint32_t first, bool skip_elements, Json& out) const {
    const Node* single = nullptr;
    for (uint32_t c = first; c != kNone; c = node(c).next) {
      const Node& n = node(c);
      if (n.kind == Kind::Element) {
        if (skip_elements) continue;
        return false;
      }
      if (is_text(n)) {
        if (skip_elements) {
          if (!text_empty(n)) return false;
        } else {
          if (single || !text_empty(n)) return false;
          single = &n;
        }
      } else if (n.kind == Kind::Value) {
        if (skip_elements && value_empty(n)) continue;
        if (single) return false;
        single = &n;
      } else if (n.kind == Kind::CharRef || n.kind == Kind::EntityRef) {
        return false;
      } else if (!skip_elements) {  // processing instructions
        if (single) return false;
        single = &n;
      }
    }
    return single && single->kind == Kind::Value && !is_string_type(single->type) && value_as_number(*single, out);
  }

  Json content_value(uint32_t first, bool skip_elements) {
    Json out;
    if (try_number(first, skip_elements, out)) return out;
    return text_content(first);
  }

  // An element whose only child is one value: that value ("" or null when empty).
  bool try_leaf(const ChunkDecoder::Element& e, bool empty_as_string, Json& out) {
    if (e.has_element_child || e.first_child == kNone || node(e.first_child).next != kNone) return false;
    const Node& n = node(e.first_child);
    if (n.kind != Kind::Value) return false;
    if (value_empty(n)) {
      out = empty_as_string ? Json("") : Json(nullptr);
      return true;
    }
    if (!is_string_type(n.type) && value_as_number(n, out)) return true;
    out = text_content(e.first_child);
    return true;
  }

  // (has text, has child elements)
  std::pair<bool, bool> layout(const ChunkDecoder::Element& e) const {
    bool text = false, elements = e.has_element_child;
    for (uint32_t c = e.first_child; c != kNone && !(text && elements); c = node(c).next) {
      if (node(c).kind == Kind::Element) elements = true;
      else if (is_content(node(c))) text = true;
    }
    return {text, elements};
  }

  bool attrs_have_text(const ChunkDecoder::Element& e) const {
    for (uint32_t a = e.first_attr; a != kNone; a = t_.attrs_[a].next)
      if (has_content(t_.attrs_[a].first)) return true;
    return false;
  }

  Json attributes(const ChunkDecoder::Element& e) {
    Json out = Json::object();
    for (uint32_t a = e.first_attr; a != kNone; a = t_.attrs_[a].next) {
      const auto& attr = t_.attrs_[a];
      if (!has_content(attr.first)) continue;
      Json v;
      out[t_.name(attr.name)] = try_number(attr.first, false, v) ? v : Json(text_content(attr.first));
    }
    return out;
  }

  uint32_t name_attr(const ChunkDecoder::Element& e) const {
    for (uint32_t a = e.first_attr; a != kNone; a = t_.attrs_[a].next)
      if (t_.name(t_.attrs_[a].name) == "Name") return a;
    return kNone;
  }

  Json element_value(uint32_t id, bool data_container) {
    const auto& e = element(id);
    Json out;
    if (e.first_attr == kNone && try_leaf(e, false, out)) return out;
    const auto [text, elements] = layout(e);
    const bool attr_text = attrs_have_text(e);
    if (!elements && !text && !attr_text) return nullptr;
    if (!elements && !attr_text) return content_value(e.first_child, false);
    return body(e, data_container, false, text);
  }

  Json data_value(uint32_t id) {
    const auto& e = element(id);
    Json out;
    if (try_leaf(e, true, out)) return out;
    const auto [text, elements] = layout(e);
    if (!text && !elements) return "";
    if (elements) return body(e, false, true, text);
    return content_value(e.first_child, false);
  }

  Json body(const ChunkDecoder::Element& e, bool data_container, bool omit_attributes, bool text) {
    Json out = Json::object();
    auto is_data = [&](uint32_t child) { return t_.name(element(child).name) == "Data"; };
    bool named_data = false;
    size_t positional = 0;
    if (data_container) {
      for (uint32_t c = e.first_child; c != kNone; c = node(c).next) {
        if (node(c).kind != Kind::Element || !is_data(node(c).a)) continue;
        ++positional;
        const uint32_t a = name_attr(element(node(c).a));
        if (a != kNone && has_content(t_.attrs_[a].first)) named_data = true;
      }
      if (named_data) positional = 0;
    }
    if (!omit_attributes && attrs_have_text(e)) out["#attributes"] = attributes(e);
    if (text) out["#text"] = content_value(e.first_child, true);

    std::vector<std::pair<uint32_t, unsigned>> seen;  // name id -> times used
    bool positional_done = false;
    for (uint32_t c = e.first_child; c != kNone; c = node(c).next) {
      if (node(c).kind != Kind::Element) continue;
      const uint32_t child = node(c).a;
      if (data_container && is_data(child)) {
        if (named_data) {
          const uint32_t a = name_attr(element(child));
          if (a == kNone || !has_content(t_.attrs_[a].first)) continue;
          const std::string key = text_content(t_.attrs_[a].first);
          out[key] = data_value(child);
        } else if (!positional_done && positional > 0) {
          positional_done = true;
          Json items;
          if (positional == 1) {
            items = data_value(child);
          } else {
            items = Json::array();
            for (uint32_t d = c; d != kNone; d = node(d).next)
              if (node(d).kind == Kind::Element && is_data(node(d).a)) items.push_back(data_value(node(d).a));
          }
          out["Data"] = Json{{"#text", std::move(items)}};
        }
        continue;
      }
      const uint32_t name = element(child).name;
      unsigned suffix = 0;
      auto it = std::find_if(seen.begin(), seen.end(), [&](auto& s) { return s.first == name; });
      if (it == seen.end()) seen.emplace_back(name, 1);
      else suffix = it->second++;
      const std::string& n = t_.name(name);
      const bool container = n == "EventData" || n == "UserData";
      out[suffix ? n + "_" + std::to_string(suffix) : n] = element_value(child, container);
    }
    return out;
  }

  const ChunkDecoder& t_;
  size_t text_bytes_ = 0;
};

}  // namespace

nlohmann::ordered_json render_json(const ChunkDecoder& t, uint32_t root) { return JsonRenderer(t).root(root); }

}  // namespace csq::detect::binxml
